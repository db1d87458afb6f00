"""Tools of the usage readers for damaged files: where a file stops being UTF-8, a CSV split into records as
Arrow's parser splits it (and read record by record where Arrow's streaming reader cannot go on), and the
complete part of a truncated JSON document.

The readers (:mod:`billshape.usage.readers`) use them to quarantine exactly the rows that are damaged and to
read every other row; nothing here knows the usage schema.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

import pyarrow as pa

UTF8_BOM = b"\xef\xbb\xbf"


def first_invalid_utf8(f: BinaryIO, chunk_bytes: int = 1 << 24) -> int | None:
    """Byte offset of the first byte of ``f`` that is not UTF-8 (``None`` when all of it is UTF-8), streamed."""
    offset, carry = 0, b""
    while True:
        chunk = f.read(chunk_bytes)
        data = carry + chunk if carry else chunk
        if not data:
            return None
        try:
            data.decode("utf-8")
            offset, carry = offset + len(data), b""
        except UnicodeDecodeError as exc:
            if chunk and exc.end == len(data) and len(data) - exc.start < 4:  # a character cut by the chunk
                offset, carry = offset + exc.start, data[exc.start:]
            else:
                return offset + exc.start
        if not chunk:
            return None if not carry else offset


def is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def printable(text: str) -> str:
    """``text`` as valid UTF-8: a byte that was not UTF-8 (read with ``surrogateescape``) as ``\\xNN``."""
    if is_unicode(text):
        return text
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # lone surrogates from JSON escapes such as \ud800
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def decode_utf8(data: bytes) -> str:
    """UTF-8 text; bytes that are not UTF-8 stay as lone surrogates (the records holding them are quarantined)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------------------------- CSV records

# Arrow's CSV parser (default options: ``,`` delimiter, ``"`` quotes, doubled quotes inside, no escape
# character): a quote opens a quoted field only at the start of a field; inside it, a line break is part of the
# value; after the closing quote the field goes on unquoted, where a quote is an ordinary character.
_FIELD = rb'(?:"(?:[^"]|"")*+"[^,]*|[^,"][^,]*|)'
_COMPLETE = re.compile(_FIELD + rb"(?:," + _FIELD + rb")*")  # a line that ends outside quotes
_CONTINUED = re.compile(rb'(?:[^"]|"")*+"[^,]*(?:,' + _FIELD + rb")*")  # ... when it starts inside a quoted field
_BREAKS = (b"\n", b"\r")


def csv_records(f: BinaryIO, chunk_bytes: int, max_record_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """The records of a CSV file as Arrow counts them: ``(number, bytes, size)`` with ``number`` 1-based (the
    header is 1; empty lines are not records) and ``bytes`` the record with its line break, or ``None`` for a
    record longer than ``max_record_bytes`` (it is never held in memory; it ends at the first line break after
    an even number of quote characters).

    Any bytes are accepted: the records are not decoded.
    """
    n = 0
    parts: list[bytes] = []  # the lines of a record whose quoted field spans line breaks
    size = 0
    over = False  # inside a record longer than the cap
    parity = 0  # quote characters seen in that record, mod 2
    carry = b""
    while True:
        chunk = f.read(chunk_bytes)
        data = carry + chunk if carry else chunk
        if chunk:  # keep the unfinished last line (and a final \r, which may be half of \r\n)
            cut = max(data.rfind(b"\n"), data.rfind(b"\r", 0, len(data) - 1)) + 1
            block, carry = data[:cut], data[cut:]
        else:
            block, carry = data, b""
        for line in block.splitlines(keepends=True):
            if over:
                size += len(line)
                parity ^= line.count(b'"') & 1
                if not parity and line.endswith(_BREAKS):
                    n += 1
                    yield n, None, size
                    over = False
                continue
            if parts:
                parts.append(line)
                size += len(line)
                if _CONTINUED.fullmatch(line.rstrip(b"\r\n")):
                    n += 1
                    yield n, b"".join(parts), size
                    parts = []
                elif size > max_record_bytes:
                    over, parity, parts = True, sum(p.count(b'"') for p in parts) & 1, []
                continue
            body = line.rstrip(b"\r\n")
            if not body:
                continue
            if b'"' in body and not _COMPLETE.fullmatch(body):
                parts, size = [line], len(line)
                if size > max_record_bytes:
                    over, parity, parts = True, line.count(b'"') & 1, []
                continue
            n += 1
            yield (n, None, len(line)) if len(line) > max_record_bytes else (n, line, len(line))
        if not chunk:
            break
        if over or len(carry) + size * bool(parts) > max_record_bytes:  # a line longer than the cap: count, drop
            if not over:
                over = True
                parity = (sum(p.count(b'"') for p in parts) + carry.count(b'"')) & 1 if parts else carry.count(b'"') & 1
                size = (size if parts else 0) + len(carry)
                parts = []
            else:
                size += len(carry)
                parity ^= carry.count(b'"') & 1
            ends = carry.endswith(b"\r")
            carry = b""
            if ends and not parity:
                n += 1
                yield n, None, size
                over = False
    if over:
        yield n + 1, None, size
    elif parts:  # a quoted field still open at the end of the file
        yield n + 1, b"".join(parts), size


def size_text(n_bytes: int) -> str:
    """``1 MiB``, ``256 KiB``, ``1,500 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= size and n_bytes % size == 0:
            return f"{n_bytes // size} {unit}"
    return f"{n_bytes:,} bytes"


#: A quarantined CSV row: (0-based data row, reason, detail).
BadRow = tuple[int, str, str]


def csv_rows(path: str, *, chunk_bytes: int, max_record_bytes: int, done: Callable[[int], bool],
             batch_rows: int) -> Iterator[tuple[list[str], pa.Table | None, list[int], list[BadRow]]]:
    """A CSV file read record by record (:func:`csv_records`), for files Arrow's streaming reader stops on:
    ``(column names, table of text columns, the rows' positions, bad rows)`` per batch.

    A record that is not UTF-8, or over ``max_record_bytes``, is a bad row; the others are parsed by Arrow
    in batches (of ``batch_rows`` rows or ``chunk_bytes`` bytes), so that a record has the same fields as in
    a streaming read; a batch Arrow cannot parse is parsed record by record. Positions for which
    ``done(position)`` is true (read before) are skipped.
    """
    with open(path, "rb") as f:
        records = csv_records(f, chunk_bytes, max_record_bytes)
        head = next(records, None)
        if head is None:
            return
        names = _header(head[1])
        buf: list[tuple[int, int, bytes]] = []
        bad: list[BadRow] = []
        size = 0
        for number, data, n_bytes in records:
            pos = number - 2  # line 1 is the header
            if done(pos):
                continue
            if data is None:
                bad.append((pos, f"row over {size_text(max_record_bytes)}", f"line {number}: {n_bytes:,} bytes"))
                continue
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as exc:
                text = data.decode("utf-8", "backslashreplace").rstrip("\r\n")
                bad.append((pos, "invalid UTF-8", f"line {number}: byte 0x{data[exc.start]:02x} at column {exc.start + 1}: {text}"[:200]))
                continue
            buf.append((pos, number, data))
            size += len(data)
            if len(buf) >= batch_rows or size >= chunk_bytes:
                table, idx, invalid = _parse(buf, names)
                yield names, table, idx, sorted(bad + invalid)
                buf, bad, size = [], [], 0
        if buf or bad:
            table, idx, invalid = _parse(buf, names)
            yield names, table, idx, sorted(bad + invalid)


def _header(data: bytes | None) -> list[str]:
    """Column names of a header record (none when it is too long or does not parse)."""
    if data is None:
        return []
    import pyarrow.csv as pcsv

    data = data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data
    text = data.decode("utf-8", "replace").encode("utf-8")
    try:
        return pcsv.read_csv(io.BytesIO(text), read_options=pcsv.ReadOptions(use_threads=False, block_size=len(text) + 1)).schema.names
    except (pa.ArrowInvalid, ValueError):
        return []


def _parse(buf: list[tuple[int, int, bytes]], names: list[str]) -> tuple[pa.Table | None, list[int], list[BadRow]]:
    """Arrow's parse of records: (text columns, positions of the parsed rows, rows with a wrong field count)."""
    if not buf:
        return None, [], []
    if not names:
        return None, [], [(pos, "no header row", f"line {number}") for pos, number, _ in buf]
    parsed = _parse_blob(buf, names)
    if parsed is not None:
        return parsed
    tables, idx, bad = [], [], []
    for rec in buf:  # Arrow splits these records otherwise than csv_records: one at a time
        one = _parse_blob([rec], names)
        if one is None:
            bad.append((rec[0], "unparseable CSV row", f"line {rec[1]}: " + rec[2].decode("utf-8").rstrip("\r\n")[:180]))
        else:
            if one[0] is not None and one[0].num_rows:
                tables.append(one[0])
            idx += one[1]
            bad += one[2]
    return (pa.concat_tables(tables) if tables else None), idx, bad


def _parse_blob(buf: list[tuple[int, int, bytes]], names: list[str]) -> tuple[pa.Table | None, list[int], list[BadRow]] | None:
    import pyarrow.csv as pcsv

    blob = b"".join(d if d.endswith(_BREAKS) else d + b"\n" for _, _, d in buf)
    invalid: list = []

    def handler(row) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pcsv.read_csv(
            io.BytesIO(blob), read_options=pcsv.ReadOptions(column_names=names, block_size=len(blob) + 1, use_threads=False),
            parse_options=pcsv.ParseOptions(invalid_row_handler=handler),
            convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=True, auto_dict_encode=False))
    except (pa.ArrowInvalid, ValueError):
        return None
    skipped = {row.number - 1 for row in invalid if row.number is not None}
    if table.num_rows + len(invalid) != len(buf) or len(skipped) != len(invalid) or not skipped <= set(range(len(buf))):
        return None
    bad = [(buf[row.number - 1][0], f"wrong number of fields ({row.actual_columns}, the header has {row.expected_columns})",
            f"line {buf[row.number - 1][1]}: {row.text}"[:200]) for row in invalid]
    return table, [pos for k, (pos, _, _) in enumerate(buf) if k not in skipped], bad


# --------------------------------------------------------------------------------------------- JSON

#: Arrays whose elements are usage records: a record cut short is dropped, never read in part.
RECORD_ARRAYS = frozenset({"spans", "results"})
_DEC = json.JSONDecoder()
_WS = re.compile(r"[ \t\n\r]*")


def salvage_json(text: str, pos: int = 0) -> tuple[object | None, int]:
    """The complete part of the JSON value at ``pos`` in ``text``, which does not parse (cut short or broken),
    and the position where it stops parsing.

    Containers open at that point are closed. An element of a record array (:data:`RECORD_ARRAYS`, or a
    top-level list) that is not complete is dropped, and so is a scalar that ends where the text ends (a
    number may have been cut). Other containers keep their complete part: a page or a resource whose records
    are cut after the tenth keeps the first ten. ``None`` when nothing is left.
    """
    pos = _WS.match(text, pos).end()
    if pos >= len(text) or text[pos] not in "{[":
        return None, pos
    value, _, stop = _container(text, pos, None, True)
    return value, stop


def _container(text: str, i: int, key: str | None, top: bool) -> tuple[object, bool, int]:
    """(value, complete, where it stops) for the container at ``text[i]``."""
    try:
        value, end = _DEC.raw_decode(text, i)
        return value, True, end
    except (json.JSONDecodeError, RecursionError):
        pass
    n = len(text)
    is_obj = text[i] == "{"
    out: dict | list = {} if is_obj else []
    records = not is_obj and (top or key in RECORD_ARRAYS)
    j = _WS.match(text, i + 1).end()
    stop = j
    while j < n:
        if is_obj:
            if text[j] != '"':
                break
            try:
                k, j = _DEC.raw_decode(text, j)
            except json.JSONDecodeError:
                break
            j = _WS.match(text, j).end()
            if j >= n or text[j] != ":":
                stop = j
                break
            j = _WS.match(text, j + 1).end()
        stop = j
        if j >= n:
            break
        if text[j] in "{[":
            v, complete, end = _container(text, j, k if is_obj else None, False)
            if not complete:
                stop = end
                if not records:  # a structure around records keeps its complete part
                    if is_obj:
                        out[k] = v
                    else:
                        out.append(v)
                break
        else:
            try:
                v, end = _DEC.raw_decode(text, j)
            except json.JSONDecodeError:
                break
            if _WS.match(text, end).end() >= n:  # may be cut short
                break
        if is_obj:
            out[k] = v
        else:
            out.append(v)
        j = _WS.match(text, end).end()
        stop = j
        if j < n and text[j] == ",":
            j = _WS.match(text, j + 1).end()
            continue
        break
    return out, False, stop
