"""JSON documents of a usage log: split a JSON file (one document or several) or a JSON-lines file into parsed
documents, salvage the complete records of a document cut short, and tell a document's format (:func:`sniff`).

Used by :mod:`billshape.usage.readers` (split out of it to keep each module under 800 lines).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from billshape.usage import salvage as S


def _json_error(exc: json.JSONDecodeError, text: str, base: int, size: int | None) -> str:
    """The reason for a document that does not parse: where it stops (the character of a JSON line; the byte of
    a JSON file, and where the file ends)."""
    if size is None:
        return f"invalid JSON ({exc.msg} at char {exc.pos})"
    at = base + len(text[:exc.pos].encode("utf-8", "surrogateescape"))
    return f"invalid JSON ({exc.msg.removesuffix(' at')} at byte {at}; the file ends at byte {size})"


def _salvaged(text: str, pos: int, exc: json.JSONDecodeError, base: int, size: int | None) -> tuple[object | None, str]:
    """The complete records of a document that does not parse, and the quarantine reason for the rest."""
    try:
        doc, _ = S.salvage_json(text, pos)
    except RecursionError:
        doc = None
    if isinstance(doc, dict) and sniff(doc) not in ("otel", "openai"):
        doc = None  # a single raw response cut short: nothing of it is read
    return doc, _json_error(exc, text, base, size)


def _json_docs(path: str) -> Iterator[tuple[int, object | None, str]]:
    """(index, parsed document or None, error) for a JSON file (one document, or several one after another) or
    a JSON-lines file. A document that does not parse (cut short by a killed exporter, say) yields its
    complete records and then its error; a UTF-8 byte-order mark is skipped; an empty file yields nothing."""
    with open(path, "rb") as f:
        first_line = f.readline()
        bom = len(S.UTF8_BOM) if first_line.startswith(S.UTF8_BOM) else 0
        first_line = first_line[bom:]
        lines = not first_line.lstrip().startswith(b"[") and (_one_doc(first_line) or _lines_after(f, bool(first_line.strip())))
        f.seek(bom)
        if not lines:
            text = S.decode_utf8(f.read())
            pos, index = 0, 0
            while True:
                pos = S._WS.match(text, pos).end()
                if pos >= len(text):
                    return
                try:
                    doc, pos = S._DEC.raw_decode(text, pos)
                except json.JSONDecodeError as exc:
                    doc, error = _salvaged(text, pos, exc, bom, os.fstat(f.fileno()).st_size)
                    yield index, doc, ""
                    yield index, None, error
                    return
                except RecursionError:
                    yield index, None, "invalid JSON (nested too deeply)"
                    return
                yield index, doc, ""
                index += 1
        for i, raw in enumerate(f):
            if not raw.strip():
                continue
            line = S.decode_utf8(raw)
            try:
                yield i, json.loads(line), ""
            except json.JSONDecodeError as exc:
                doc, error = _salvaged(line, 0, exc, 0, None)
                yield i, doc, ""
                yield i, None, error
            except RecursionError:
                yield i, None, "invalid JSON (nested too deeply)"


def _lines_after(f, first: bool, n: int = 20) -> bool:
    """A file whose first line is not a JSON document is JSON lines all the same when the next lines are usage
    documents on their own (two of the next ``n``, or all of them if fewer): a pretty-printed document has at
    most one such line (the last element of an array)."""
    if not first:
        return False
    seen = ok = 0
    for line in f:
        if line.strip():
            seen += 1
            ok += _one_doc(line, usage_only=True)
            if seen >= n or ok >= 2:
                break
    return ok >= min(2, seen) and ok > 0


def _one_doc(line: bytes, usage_only: bool = False) -> bool:
    """``line`` is a JSON document on its own (with ``usage_only``: one of a usage format)."""
    try:
        doc = json.loads(S.decode_utf8(line))
    except (json.JSONDecodeError, RecursionError):
        return False
    return not usage_only or (isinstance(doc, dict) and sniff(doc) is not None)


def sniff(doc) -> str | None:
    """The format of one parsed JSON document (``otel``, ``openai``, ``raw``, a connector's) or ``None``."""
    from billshape.usage import connectors  # first: an Anthropic report page looks like an OpenAI one

    if kind := connectors.sniff(doc):
        return kind
    if isinstance(doc, dict):
        if "resourceSpans" in doc:
            return "otel"
        if doc.get("object") == "page" or (isinstance(doc.get("data"), list) and doc["data"] and isinstance(doc["data"][0], dict) and "results" in doc["data"][0]):
            return "openai"
        if doc.get("object") == "bucket" and "results" in doc:
            return "openai"
        body = doc.get("response", doc)
        if isinstance(body, dict) and ("usage" in body or "usageMetadata" in body):
            return "raw"
    if isinstance(doc, list) and doc and all(isinstance(x, dict) for x in doc):
        kinds = {sniff(x) for x in doc[:5]}
        if len(kinds) == 1:
            return kinds.pop()
    return None
