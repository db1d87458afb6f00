"""Readers' one entry point: a path, text, bytes or a (binary or text) file object, with a size cap.

:func:`read_source` lets every reader (demand curves, model ladders, measured benchmarks) take what a shell has in
hand: the CLI a path, the app an upload's bytes, a notebook a string, so that no shell writes temp files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from billshape.errors import BillshapeInputError, unknown_name

#: the largest input a reader accepts [bytes]: far above any real demand curve, ladder or benchmark file
MAX_BYTES = 20 * 1024 * 1024


def _cap_text(max_bytes: int) -> str:
    return f"at most {max_bytes / 1024 / 1024:g} MB"


def _decode(raw: bytes, field: str, name: str, not_utf8: tuple[str, str] | None = None) -> str:
    try:
        return raw.decode("utf-8-sig")  # a byte-order mark is dropped
    except UnicodeDecodeError as exc:
        allowed, hint = not_utf8 or ("UTF-8 text", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at position {exc.start}")
        raise BillshapeInputError(field, name, allowed, hint) from None


def _looks_like_text(given: str) -> bool:
    """A string that is content rather than a file name: several lines, or a JSON/YAML document opening."""
    return "\n" in given or given.lstrip().startswith(("{", "["))


def read_source(source: Any, field: str, max_bytes: int = MAX_BYTES, shipped: dict[str, str] | None = None,
                what: str = "a readable file", not_found_hint: bool = True,
                not_utf8: tuple[str, str] | None = None) -> tuple[str, str]:
    """The text of ``source`` and a name for it (for messages and provenance).

    Parameters
    ----------
    source : str | os.PathLike | bytes | file object
        A path (``str`` or :class:`~pathlib.Path`); the text itself (a ``str`` with a newline, or one that opens
        with ``{`` or ``[``); ``bytes``; an open binary or text file (``.read()``); or a name in ``shipped``.
        An existing file wins over a shipped name.
    field : str
        The field named in errors (``"demand"``).
    max_bytes : int
        Size cap [bytes]; a larger source is a :class:`BillshapeInputError` naming ``field`` and the cap.
    shipped : dict, optional
        Shipped inputs: name -> file in ``billshape/data``.
    what : str
        What a valid source is, for the error when it cannot be read.
    not_found_hint : bool
        Add "no such file" to the error for a missing path that has a file suffix.
    not_utf8 : (str, str), optional
        The ``allowed`` and ``hint`` of the error for bytes that are not UTF-8 (default: the offending byte).

    Returns
    -------
    (str, str)
        The UTF-8 text, and the source's name: the path as given, ``"<text>"``, ``"<bytes>"``, a file object's
        ``name`` (or ``"<file>"``), or ``"NAME (shipped billshape/data/FILE)"``.
    """
    shipped = shipped or {}
    if isinstance(source, (bytes, bytearray, memoryview)):
        raw = bytes(source)
        name = "<bytes>"
    elif hasattr(source, "read"):
        name = str(getattr(source, "name", "") or "<file>")
        data = source.read(max_bytes + 1)
        if isinstance(data, str):
            if len(data) > max_bytes:
                raise BillshapeInputError(field, name, _cap_text(max_bytes), "the input is too large")
            return data.removeprefix("\ufeff"), name
        raw = bytes(data or b"")
    elif isinstance(source, str) and _looks_like_text(source):
        if len(source) > max_bytes:
            raise BillshapeInputError(field, "<text>", _cap_text(max_bytes), "the input is too large")
        return source.removeprefix("\ufeff"), "<text>"
    else:
        if not isinstance(source, (str, os.PathLike)):
            raise BillshapeInputError(field, type(source).__name__, what + ": a path, text, bytes or a file object")
        given = os.fspath(source)
        p = Path(given)
        key = given.strip().lower()
        try:
            is_file = p.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte
            is_file = False
        if is_file:
            try:
                if p.stat().st_size > max_bytes:
                    raise BillshapeInputError(field, given, _cap_text(max_bytes), "the file is too large")
                raw = p.read_bytes()
            except OSError as exc:
                raise BillshapeInputError(field, given, what, exc.strerror or type(exc).__name__) from None
            name = given
        elif key in shipped:
            from importlib import resources

            raw = resources.files("billshape.data").joinpath(shipped[key]).read_bytes()
            name = f"{key} (shipped billshape/data/{shipped[key]})"
        else:
            names = ", ".join(sorted(shipped))
            allowed = what + (f", or a shipped name: {names}" if shipped else "")
            hint = None
            if shipped and "/" not in given and "\\" not in given and "." not in given:
                hint = unknown_name(field, given, shipped).hint  # looks like a name: suggest the closest
            raise BillshapeInputError(field, given, allowed,
                                      hint or ("no such file" if p.suffix and not_found_hint else None))
    if len(raw) > max_bytes:
        raise BillshapeInputError(field, name, _cap_text(max_bytes), "the input is too large")
    return _decode(raw, field, name, not_utf8), name


def source_name(source: Any) -> str:
    """A short name for a source (a file's base name, ``"<text>"``, ``"<bytes>"``), without reading it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if hasattr(source, "read"):
        return Path(str(getattr(source, "name", "") or "<file>")).name
    if isinstance(source, str) and _looks_like_text(source):
        return "<text>"
    return Path(os.fspath(source)).name


# Inputs shipped in billshape/data that ``ladder`` / ``demand`` accept by name, so that the examples work from an
# installed package as well as from a repository checkout (a path to a file always works too).
SHIPPED_LADDERS = {"frugalgpt-headlines": "ladder_frugalgpt.yaml"}
SHIPPED_DEMANDS = {"example-week": "demand_week.csv"}


def read_input_text(path, field: str, shipped: dict | None = None, what: str = "a readable file") -> tuple[str, str]:
    """Text of a user input, or of a shipped input named in ``shipped`` (name -> file in billshape/data).

    ``path`` is a path, the text itself, bytes or a file object (:func:`read_source`). Returns ``(text, label)``.
    A file that exists wins over a shipped name. Text is UTF-8 (a byte-order mark is dropped); anything else is a
    :class:`BillshapeInputError` naming ``field``.
    """
    return read_source(path, field, shipped=shipped, what=what)
