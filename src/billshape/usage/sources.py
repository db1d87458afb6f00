"""Log inputs of an ingest: a path, bytes, a binary file object, or a ``(name, bytes | file object)`` pair.

A path is read where it lies (streamed, no size cap: a ledger takes logs of any size). An in-memory input (bytes,
a file object, a pair) is capped at :data:`billshape.io.MAX_BYTES`, like every other upload, and handed to the
readers as a file of its own name inside the ingest's staging folder (the readers stream from files; the folder is
the one the ingest stages its rows in and removes when it ends). Its name picks the format (``.csv``,
``.parquet``, else JSON) and is what the ledger records as the source file; rows are keyed by the SHA-256 of the
content either way, so the same log ingested from a path and then as bytes adds nothing the second time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billshape.errors import BillshapeInputError
from billshape.io import MAX_BYTES

ALLOWED = "an existing file, bytes, a binary file object, or a (name, bytes) pair"


@dataclass(frozen=True)
class LogInput:
    """One log to read: ``path`` on disk (given, or written by :meth:`spool`) and the ``name`` it goes by."""

    given: Any  # what the caller passed (a path as given, for messages and ``files_skipped``)
    name: str  # the source file name the ledger records
    path: str | None = None  # a file to read; ``None`` until an in-memory input is spooled
    data: bytes | None = None


def _sniffed_name(data: bytes) -> str:
    """A name for unnamed bytes: Parquet by its magic number, JSON when it opens like JSON, else CSV."""
    if data[:4] == b"PAR1":
        return "bytes.parquet"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "bytes.json" if head in (b"{", b"[") else "bytes.csv"


def _name(given: Any) -> str:
    """The base name of a given name ("" when it has none)."""
    name = Path(os.fspath(given)).name
    return "" if name in ("", ".", "..") else name


def _read_capped(data: Any, field: str, name: str) -> bytes:
    if hasattr(data, "read"):
        data = data.read(MAX_BYTES + 1)
        if isinstance(data, str):  # a text file object: its UTF-8 bytes
            data = data.encode("utf-8")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BillshapeInputError(field, type(data).__name__, ALLOWED)
    raw = bytes(data)
    if len(raw) > MAX_BYTES:
        raise BillshapeInputError(field, name, f"at most {MAX_BYTES / 1024 / 1024:g} MB in memory",
                                  "the input is too large; pass a path to ingest a larger log")
    return raw


def log_input(source: Any, field: str) -> LogInput:
    """One log input, checked: a path must be an existing file; in-memory data is read (capped) now."""
    if isinstance(source, tuple):
        if len(source) != 2 or not isinstance(source[0], (str, os.PathLike)):
            raise BillshapeInputError(field, "tuple", ALLOWED)
        name = _name(source[0])
        raw = _read_capped(source[1], field, name or "<bytes>")
        return LogInput(os.fspath(source[0]), name or _sniffed_name(raw), data=raw)
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = _read_capped(source, field, "<bytes>")
        return LogInput("<bytes>", _sniffed_name(raw), data=raw)
    if hasattr(source, "read"):
        name = _name(str(getattr(source, "name", "") or ""))
        raw = _read_capped(source, field, name or "<file>")
        return LogInput(name or "<file>", name or _sniffed_name(raw), data=raw)
    if not isinstance(source, (str, os.PathLike)):
        raise BillshapeInputError(field, type(source).__name__, ALLOWED)
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise BillshapeInputError(field, path, "existing files")
    return LogInput(path, os.path.basename(path), path=path)


def log_inputs(sources: Any, field: str = "files") -> list[LogInput]:
    """The ingest's inputs: each item of ``sources`` (a single path, bytes or file object is one input)."""
    pair = isinstance(sources, tuple) and len(sources) == 2 and (
        isinstance(sources[1], (bytes, bytearray, memoryview)) or hasattr(sources[1], "read"))
    if pair or isinstance(sources, (str, os.PathLike, bytes, bytearray, memoryview)) or hasattr(sources, "read"):
        sources = [sources]
    return [log_input(s, f"{field}[{i}]") for i, s in enumerate(sources)]


def spool(item: LogInput, folder: str, index: int) -> LogInput:
    """An in-memory input written under ``folder`` with its own name (a path input is returned as it is)."""
    if item.path is not None:
        return item
    where = os.path.join(folder, f"in{index}")
    os.makedirs(where, exist_ok=True)
    path = os.path.join(where, item.name)
    with open(path, "wb") as f:
        f.write(item.data or b"")
    return LogInput(item.given, item.name, path=path)
