"""Fault corpus for the usage readers: whatever the bytes, rows in = rows priced + rows quarantined, every good row
is priced, and each bad row is quarantined alone with its position and a reason.

Every file is generated here (tests/usage_gen.py); every expected total is computed from the generated rows
(genai-prices' prices, rounded per component), never from billshape's output.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import usage
from billshape.usage import readers
from billshape.usage import salvage as S
from usage_gen import (
    csv_file, csv_line, fault_rows, openai_micro, openai_page, openai_rows, otlp_doc, otlp_span, rows_micro,
)

N = 20_000
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def rows():
    return fault_rows(N)


@pytest.fixture
def small_blocks(monkeypatch):
    """64 KiB CSV blocks (20,000 rows then span ~25 blocks), a 256 KiB field cap and a 1 MiB row cap."""
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 1 << 16, raising=False)
    monkeypatch.setattr(readers, "MAX_FIELD_BYTES", 1 << 18, raising=False)
    monkeypatch.setattr(readers, "MAX_RECORD_BYTES", 1 << 20, raising=False)


def _ingest(tmp_path: Path, name: str, data: bytes, **kw):
    p = tmp_path / name
    p.write_bytes(data)
    db = str(tmp_path / f"{name}.duckdb")
    return usage.ingest([str(p)], db, **kw), db


def _check(res, n_in: int, n_bad: int, micro: int) -> None:
    assert res.rows_read == res.rows_priced + res.rows_quarantined
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (n_in, n_in - n_bad, n_bad), res.quarantine_reasons
    assert res.total_micro_usd == micro


def _positions(db: str) -> tuple[list[int], list[tuple[int, str, str]]]:
    con = duckdb.connect(db, read_only=True)
    led = sorted(r[0] for r in con.sql("select row_index from ledger").fetchall())
    q = sorted(con.sql("select row_index, reason, detail from quarantine").fetchall())
    con.close()
    return led, q


def _bad_byte(r: dict, byte: bytes = b"\xff") -> bytes:
    """Row ``r`` with an invalid UTF-8 byte in its model name."""
    return csv_line(r).replace(r["model"].encode(), r["model"].encode()[:3] + byte + r["model"].encode()[3:])


# --------------------------------------------------------------------------------------------- CSV: bad bytes

POSITIONS = {"first row": [0], "middle": [N // 2], "last row": [N - 1], "several": [0, 137, 4_999, 5_000, 12_345, N - 2, N - 1]}


@pytest.mark.parametrize("blocks", ["default blocks", "64 KiB blocks"])
@pytest.mark.parametrize("where", sorted(POSITIONS))
def test_csv_invalid_utf8_rows_are_quarantined_alone(tmp_path, rows, request, where, blocks):
    if blocks != "default blocks":
        request.getfixturevalue("small_blocks")
    bad = POSITIONS[where]
    res, db = _ingest(tmp_path, "u.csv", csv_file(rows, {i: _bad_byte(rows[i]) for i in bad}))
    good = [r for i, r in enumerate(rows) if i not in bad]
    _check(res, N, len(bad), rows_micro(good))
    assert res.quarantine_reasons == {"invalid UTF-8": len(bad)}
    led, q = _positions(db)
    assert led == [i for i in range(N) if i not in bad]  # good rows keep their positions in the file
    assert [x[0] for x in q] == bad
    for (i, _, detail) in q:
        assert detail.startswith(f"line {i + 2}: byte 0xff at column ")  # line 1 is the header


def test_csv_latin1_byte_in_a_2000_row_file(tmp_path, rows):
    rows = rows[:2000]
    line = csv_line({**rows[1000], "customer": "café"}).replace("café".encode(), "café".encode("latin-1"))
    res, db = _ingest(tmp_path, "latin.csv", csv_file(rows, {1000: line}))
    _check(res, 2000, 1, rows_micro(rows[:1000] + rows[1001:]))
    _, q = _positions(db)
    assert q[0][:2] == (1000, "invalid UTF-8") and "byte 0xe9" in q[0][2] and "caf\\xe9" in q[0][2]


def test_csv_bad_bytes_with_bom_crlf_short_rows_and_quoted_newlines(tmp_path, rows, small_blocks):
    rows = [dict(r) for r in rows]
    for i in range(3, N, 997):
        rows[i]["customer"] = 'multi\nline, "inc"'  # a quoted field holding a line break, a comma and quotes
    bad = {10: _bad_byte(rows[10]), 7_000: b"2025-03-01T00:00:01Z,gpt\xff,100", 15_000: csv_line(rows[15_000]) + b",extra",
           15_001: _bad_byte(rows[15_001], b"\xc3\x28")}
    res, db = _ingest(tmp_path, "mixed.csv", csv_file(rows, bad, bom=True, newline=b"\r\n"))
    _check(res, N, len(bad), rows_micro([r for i, r in enumerate(rows) if i not in bad]))
    assert res.quarantine_reasons == {"invalid UTF-8": 3, "wrong number of fields (10, the header has 9)": 1}
    led, q = _positions(db)
    assert led == [i for i in range(N) if i not in bad]
    assert [x[0] for x in q] == sorted(bad)
    by_customer = {r["key"]: r["requests"] for r in usage.report(db, "customer").rows}
    assert by_customer['multi\nline, "inc"'] == len(range(3, N, 997))


def test_csv_random_bytes_keep_stderr_clean_and_the_good_rows(tmp_path, rows):
    rng = random.Random(4)
    noise = bytes(b for b in (rng.randrange(256) for _ in range(30_000)) if b != 0x22)  # no quote: lines are rows
    good = rows[:3000]
    data = csv_file(good[:1500]) + noise + b"\n" + b"\n".join(csv_line(r) for r in good[1500:]) + b"\n"
    p = tmp_path / "noise.csv"
    p.write_bytes(data)
    env = {**os.environ, "PYTHONPATH": str(Path(readers.__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-m", "billshape", "usage", "ingest", str(p), "--db", str(tmp_path / "n.duckdb"), "--json"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    res = json.loads(out.stdout)
    n_noise = len([x for x in noise.splitlines() if x])
    assert res["rows_read"] == res["rows_priced"] + res["rows_quarantined"] == 3000 + n_noise
    assert res["rows_priced"] == 3000 and res["total_micro_usd"] == rows_micro(good)


def test_csv_of_random_bytes_only(tmp_path):
    rng = random.Random(9)
    res, _ = _ingest(tmp_path, "r.csv", bytes(rng.randrange(256) for _ in range(5000)))
    assert res.rows_read == res.rows_priced + res.rows_quarantined
    assert res.rows_priced == 0 and res.total_micro_usd == 0


# --------------------------------------------------------------------------------------------- CSV: huge fields

def test_csv_field_bigger_than_the_block_does_not_lose_neighbours(tmp_path, rows):
    rows = [dict(r) for r in rows[:2000]]
    rows[1000]["customer"] = "x" * (5 << 20)  # 5 MiB: straddles the 4 MiB blocks, over the 1 MiB field cap
    res, db = _ingest(tmp_path, "huge.csv", csv_file(rows))
    _check(res, 2000, 1, rows_micro(rows[:1000] + rows[1001:]))
    led, q = _positions(db)
    assert led == [i for i in range(2000) if i != 1000]
    assert q[0][0] == 1000 and q[0][1].startswith(("field over 1 MiB", "row over"))


def test_csv_field_over_the_cap_inside_a_block_is_quarantined(tmp_path, rows):
    rows = [dict(r) for r in rows[:2000]]
    rows[7]["customer"] = "y" * (2 << 20)  # 2 MiB: fits in a 4 MiB block, over the 1 MiB cap
    res, db = _ingest(tmp_path, "big.csv", csv_file(rows))
    _check(res, 2000, 1, rows_micro(rows[:7] + rows[8:]))
    _, q = _positions(db)
    assert q == [(7, "field over 1 MiB", "column customer: 2,097,152 bytes")]


def test_csv_huge_fields_with_small_caps(tmp_path, rows, small_blocks):
    rows = [dict(r) for r in rows[:N]]
    rows[3_000]["customer"] = "a" * 100_000  # over the 64 KiB block (the streaming reader stops), under the caps: read
    rows[5_000]["customer"] = "b" * 300_000  # over the 256 KiB field cap
    rows[9_000]["customer"] = "c" * 2_000_000  # over the 1 MiB row cap: never held in memory
    rows[9_001]["customer"] = '"' * 10 + "d" * 2_000_000  # ... also when quoted
    short = {i: b"2025-03-01T00:00:01Z,gpt-4o,1" for i in (50, 2_000, 2_001, 2_999, 3_001, 9_500)}  # wrong field counts
    res, db = _ingest(tmp_path, "caps.csv", csv_file(rows, short))
    bad = sorted([5_000, 9_000, 9_001, *short])
    _check(res, N, len(bad), rows_micro([r for i, r in enumerate(rows) if i not in bad]))
    led, q = _positions(db)
    assert led == [i for i in range(N) if i not in bad]  # rows read before and after the reader switched: once each
    assert [i for i, _, _ in q] == bad
    reasons = {i: reason for i, reason, _ in q}
    assert (reasons[5_000], reasons[9_000], reasons[9_001]) == ("field over 256 KiB", "row over 1 MiB", "row over 1 MiB")
    assert {reasons[i] for i in short} == {"wrong number of fields (3, the header has 9)"}
    assert {r["key"] for r in usage.report(db, "customer").rows} >= {"a" * 100_000}


# --------------------------------------------------------------------------------------------- empty files

@pytest.mark.parametrize("name, data", [("e.csv", b""), ("h.csv", csv_file([])), ("b.csv", BOM), ("n.csv", b"\n\n\r\n"),
                                        ("e.json", b""), ("w.json", b" \n\t\n"), ("b.json", BOM), ("e.jsonl", b""),
                                        ("n.jsonl", b"\n\n")])
def test_empty_files_read_no_rows(tmp_path, name, data):
    res, _ = _ingest(tmp_path, name, data)
    _check(res, 0, 0, 0)


# --------------------------------------------------------------------------------------------- BOM, every format

def test_bom_on_every_format(tmp_path, rows):
    rows = rows[:400]
    pairs = openai_rows(5)
    raw = [{"ts": r["ts"].isoformat(), "customer": r["customer"], "response": {"id": f"chatcmpl-{i}", "model": r["model"], "usage": {
        "prompt_tokens": r["input_tokens"], "completion_tokens": r["output_tokens"], "prompt_tokens_details": {"cached_tokens": r["cache_read_tokens"]}}}}
        for i, r in enumerate(rows) if r["provider"] == "openai"]
    files = {
        "a.csv": (csv_file(rows, bom=True), len(rows), rows_micro(rows)),
        "otlp.json": (BOM + json.dumps(otlp_doc(rows)).encode(), len(rows), rows_micro(rows)),
        "otlp.jsonl": (BOM + b"\n".join(json.dumps(otlp_doc(rows[k:k + 40], first=k)).encode() for k in range(0, len(rows), 40)) + b"\n", len(rows), rows_micro(rows)),
        "page.json": (BOM + json.dumps(openai_page(pairs)).encode(), len(pairs), openai_micro(pairs)),
        "raw.jsonl": (BOM + b"\n".join(json.dumps(x).encode() for x in raw), len(raw), rows_micro([r for r in rows if r["provider"] == "openai"])),
        "raw.json": (BOM + json.dumps(raw).encode(), len(raw), rows_micro([r for r in rows if r["provider"] == "openai"])),
    }
    for name, (data, n, micro) in files.items():
        res, _ = _ingest(tmp_path, name, data)
        _check(res, n, 0, micro)


# --------------------------------------------------------------------------------------------- truncated JSON

def _spans_and_ends(rows, per_scope: int = 7):
    doc = otlp_doc(rows, per_scope)
    text = json.dumps(doc)
    ends = []
    for i, r in enumerate(rows):
        s = json.dumps(otlp_span(r, i))
        start = text.index(s)
        ends.append(start + len(s))
    return text.encode(), ends


def _cuts(n: int, step: int, seed: int):
    rng = random.Random(seed)
    return sorted({1, 2, n - 1, n - 2, *range(0, n, step), *(rng.randrange(n) for _ in range(40))})


def _read(tmp_path: Path, name: str, data: bytes):
    """What the reader yields for a file: (input_tokens, model) of each good record, and the bad rows."""
    p = tmp_path / name
    p.write_bytes(data)
    good, bad = [], []
    for chunk in readers.read(str(p), "h", None, {}):
        if chunk.batch is not None:
            good += list(zip(chunk.batch.column("input_tokens").to_pylist(), chunk.batch.column("model").to_pylist()))
        bad += chunk.bad
    return good, bad


def test_truncated_otlp_document_yields_every_complete_span(tmp_path, rows):
    rows = rows[:60]
    data, ends = _spans_and_ends(rows)
    for c in _cuts(len(data), 211, 1):
        good, bad = _read(tmp_path, "cut.json", data[:c])
        assert good == [(r["input_tokens"], r["model"]) for r, e in zip(rows, ends) if e <= c], c
        assert [b.reason.split(" (")[0] for b in bad] == ([] if c == 0 else ["invalid JSON"]), c


def test_truncated_otlp_document_reconciles(tmp_path, rows):
    rows = rows[:60]
    data, ends = _spans_and_ends(rows)
    for c in (len(data) // 3, len(data) - 5):
        res, _ = _ingest(tmp_path, f"cut{c}.json", data[:c])
        done = [r for r, e in zip(rows, ends) if e <= c]
        _check(res, len(done) + 1, 1, rows_micro(done))
        assert list(res.quarantine_reasons) == ["invalid JSON"]


def test_truncated_otlp_document_names_the_byte_offset(tmp_path, rows):
    rows = rows[:500]
    data, ends = _spans_and_ends(rows, per_scope=50)
    cut = (ends[316] + ends[317]) // 2  # in the middle of span 317
    res, db = _ingest(tmp_path, "t.json", data[:cut])
    _check(res, 318, 1, rows_micro(rows[:317]))
    _, q = _positions(db)
    assert len(q) == 1
    m = re.fullmatch(r"invalid JSON \(Unterminated string starting at byte (\d+); the file ends at byte (\d+)\)", q[0][1])
    assert m and cut - 100 < int(m[1]) < cut and int(m[2]) == cut, q


def test_truncated_openai_page_yields_every_complete_result(tmp_path):
    pairs = openai_rows(12)
    text = json.dumps(openai_page(pairs))
    ends = []
    for _, res in pairs:
        s = json.dumps(res)
        ends.append(text.index(s) + len(s))
    data = text.encode()
    for c in _cuts(len(data), 97, 2):
        good, bad = _read(tmp_path, "cut.json", data[:c])
        assert good == [(res["input_tokens"], res["model"]) for (_, res), e in zip(pairs, ends) if e <= c], c
        assert len(bad) == (0 if c == 0 else 1), c
    c = ends[13] + 3
    res, _ = _ingest(tmp_path, "page.json", data[:c])
    _check(res, 15, 1, openai_micro(pairs[:14]))


def test_truncated_jsonl_keeps_the_complete_lines_and_spans(tmp_path, rows):
    rows = rows[:300]
    lines = [json.dumps(otlp_doc(rows[k:k + 30], per_scope=10, first=k)).encode() for k in range(0, 300, 30)]
    last = json.dumps(otlp_doc(rows[270:300], per_scope=10, first=270))
    s = json.dumps(otlp_span(rows[283], 283))  # span 13 of the last line
    cut = last.index(s) + len(s) // 2
    data = b"\n".join(lines[:-1]) + b"\n" + last[:cut].encode()
    res, db = _ingest(tmp_path, "t.jsonl", data)
    _check(res, 270 + 13 + 1, 1, rows_micro(rows[:283]))
    _, q = _positions(db)
    assert q[0][0] == 9 and q[0][1].startswith("invalid JSON")  # the record: line 10 of the file


def test_truncated_raw_list(tmp_path, rows):
    rows = [r for r in rows[:200] if r["provider"] == "openai"]
    raw = [{"ts": r["ts"].isoformat(), "response": {"id": f"c{i}", "model": r["model"], "usage": {
        "prompt_tokens": r["input_tokens"], "completion_tokens": r["output_tokens"], "prompt_tokens_details": {"cached_tokens": r["cache_read_tokens"]}}}}
        for i, r in enumerate(rows)]
    text = json.dumps(raw)
    cut = text.index('"c50"')  # inside response 50
    res, _ = _ingest(tmp_path, "raw.json", text[:cut].encode())
    _check(res, 51, 1, rows_micro(rows[:50]))
    res, _ = _ingest(tmp_path, "one.json", json.dumps(raw[0])[:-9].encode())  # one raw response, cut: nothing half-read
    _check(res, 1, 1, 0)


# --------------------------------------------------------------------------------------------- JSON: bad bytes

def test_jsonl_invalid_utf8_quarantines_only_the_record_it_is_in(tmp_path, rows):
    rows = rows[:200]
    lines = [json.dumps(otlp_doc([r], first=i)).encode() for i, r in enumerate(rows)]
    lines[10] = lines[10].replace(rows[10]["customer"].encode(), b"caf\xe9")  # in a dimension: that row is quarantined
    lines[20] = lines[20].replace(b'"name": "chat"', b'"name": "ch\xffat"')  # in a field the ledger does not keep: priced
    res, db = _ingest(tmp_path, "u.jsonl", b"\n".join(lines))
    _check(res, 200, 1, rows_micro(rows[:10] + rows[11:]))
    _, q = _positions(db)
    assert [x[:2] for x in q] == [(10, "invalid UTF-8 in customer")]


def test_json_document_with_a_bad_byte(tmp_path, rows):
    rows = rows[:100]
    data = json.dumps(otlp_doc(rows)).encode().replace(rows[42]["model"].encode(), b"gpt\xff", 1)
    idx = next(i for i, r in enumerate(rows) if r["model"] == rows[42]["model"])  # the first span with that model
    res, _ = _ingest(tmp_path, "d.json", data)
    _check(res, 100, 1, rows_micro(rows[:idx] + rows[idx + 1:]))
    assert res.quarantine_reasons == {"invalid UTF-8 in model": 1}


# --------------------------------------------------------------------------------------------- the record splitter

CSV_PIECES = st.sampled_from(['a', 'b1', ',', '"', '""', '\n', '\r\n', '\r', ' ', 'x"y', '"q,\nr"', 'é'])


@settings(max_examples=300, deadline=None)
@given(st.lists(CSV_PIECES, max_size=40), st.integers(1, 9))
def test_csv_records_split_like_arrow(pieces, chunk):
    """salvage.csv_records finds the records Arrow's parser finds (quotes, line breaks inside quotes, CRLF,
    empty lines), whatever the chunk boundaries."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pcsv

    data = ("h1,h2\n" + "".join(pieces)).encode()
    got = [rec for _, rec, _ in S.csv_records(io.BytesIO(data), chunk, 1 << 20)][1:]
    rows = []
    try:
        table = pcsv.read_csv(io.BytesIO(data), read_options=pcsv.ReadOptions(use_threads=False),
                              parse_options=pcsv.ParseOptions(invalid_row_handler=lambda r: rows.append(r.number) or "skip"),
                              convert_options=pcsv.ConvertOptions(column_types={"h1": pa.string(), "h2": pa.string()}))
    except pa.ArrowInvalid:
        return  # a quote open at the end of the file: Arrow gives up, csv_records yields it as one record
    assert len(got) == table.num_rows + len(rows)
    assert S.first_invalid_utf8(io.BytesIO(data), chunk) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60), st.integers(1, 7))
def test_first_invalid_utf8_matches_python(data, chunk):
    import io

    try:
        data.decode("utf-8")
        want = None
    except UnicodeDecodeError as exc:
        want = exc.start
    assert S.first_invalid_utf8(io.BytesIO(data), chunk) == want


def test_jsonl_whose_first_lines_are_broken_is_still_read_line_by_line(tmp_path, rows):
    rows = rows[:50]
    lines = [json.dumps(otlp_doc([r], first=i)).encode() for i, r in enumerate(rows)]
    lines[0] = lines[0][:-30]  # cut short
    lines[1] = b"\xff\xfe garbage"
    res, _ = _ingest(tmp_path, "b.jsonl", b"\n".join(lines) + b"\n")
    _check(res, 50, 2, rows_micro(rows[2:]))


def test_pretty_printed_document_is_one_document(tmp_path, rows):
    rows = rows[:30]
    pairs = openai_rows(6)
    for name, doc, n, micro in (("spans.json", otlp_doc(rows), 30, rows_micro(rows)), ("page.json", openai_page(pairs), len(pairs), openai_micro(pairs))):
        text = json.dumps(doc, indent=2)
        res, _ = _ingest(tmp_path, name, text.encode())
        _check(res, n, 0, micro)
        res, _ = _ingest(tmp_path, "cut-" + name, text[: len(text) * 2 // 3].encode())
        assert res.rows_read == res.rows_priced + res.rows_quarantined and res.rows_quarantined == 1 and 0 < res.rows_priced < n
