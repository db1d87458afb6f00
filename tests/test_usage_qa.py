"""Regression tests for QA findings on ``billshape usage`` (fuzzer and new-user walkthrough)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from billshape import usage
from billshape.usage.schema import MAX_TOKENS_PER_ROW
from conftest import assert_one_line_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
HEADER = "timestamp,model,input_tokens,output_tokens\n"
HUGE = "99999999999999999999999"  # > int64: used to crash the whole ingest with OverflowError


def _row(i: int, inp="100", out="10") -> str:
    return f"2025-03-01T00:00:{i:02d}Z,gpt-4o-mini,{inp},{out}\n"


def _otel(tmp_path, input_tokens) -> Path:
    attrs = [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
             {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
             {"key": "gen_ai.usage.input_tokens", "value": {"intValue": input_tokens}},
             {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "10"}}]
    spans = [{"traceId": "t1", "spanId": f"s{i}", "name": "chat", "startTimeUnixNano": "1740787200000000000",
              "attributes": attrs if i == 1 else [*attrs[:2], {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}}, attrs[3]]}
             for i in range(3)]
    p = tmp_path / "spans.json"
    p.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    return p


# --- 1. a token count beyond int64 is one quarantined row, not an internal error ---------------------

@pytest.mark.parametrize("value", [HUGE, str(MAX_TOKENS_PER_ROW + 1), "1e30", str(2**63)])
def test_csv_token_count_out_of_range_is_quarantined(tmp_path, value):
    p = tmp_path / "big.csv"
    p.write_text(HEADER + _row(1) + _row(2, inp=value) + _row(3))
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"))
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (3, 2, 1)
    assert list(res.quarantine_reasons) == ["input_tokens out of range (> 1e12 per row)"]


def test_csv_token_count_at_the_cap_is_priced(tmp_path):
    p = tmp_path / "cap.csv"
    p.write_text(HEADER + _row(1, inp=str(MAX_TOKENS_PER_ROW), out=str(MAX_TOKENS_PER_ROW)) + _row(2))
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"))
    assert (res.rows_priced, res.rows_quarantined) == (2, 0)
    # gpt-4o-mini: $0.15/M input, $0.60/M output -> 1e12 tokens cost 1.5e5 + 6e5 USD, exact in micro-dollars
    assert res.total_micro_usd == 750_000 * 1_000_000 + 15 + 6


@pytest.mark.parametrize("value", [HUGE, int(HUGE)])
def test_otel_int_value_out_of_range_is_quarantined(tmp_path, value):
    res = usage.ingest([str(_otel(tmp_path, value))], str(tmp_path / "u.duckdb"))
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (3, 2, 1)
    assert list(res.quarantine_reasons) == ["input_tokens out of range (> 1e12 per row)"]


def test_cli_out_of_range_row_exit_0(cli, tmp_path):
    p = tmp_path / "big.csv"
    p.write_text(HEADER + _row(1) + _row(2, inp=HUGE))
    res = cli("usage", "ingest", p, "--db", tmp_path / "u.duckdb", "--json")
    assert res.code == 0, res.err
    assert res.json()["rows_quarantined"] == 1


# --- 2. a CSV row with a missing or extra field is quarantined alone --------------------------------

@pytest.mark.parametrize("bad", ["2025-03-01T00:00:09Z,gpt-4o-mini,100\n", "2025-03-01T00:00:09Z,gpt-4o-mini,100,10,7\n"])
def test_csv_row_with_wrong_field_count_is_quarantined_alone(tmp_path, bad):
    p = tmp_path / "short.csv"
    p.write_text(HEADER + _row(1) + _row(2) + bad + _row(3) + _row(4) + _row(5))
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(p)], db)
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (6, 5, 1)
    assert len(res.quarantine_reasons) == 1 and next(iter(res.quarantine_reasons)).startswith("wrong number of fields")
    con = duckdb.connect(db, read_only=True)
    q = con.sql("select row_index, detail from quarantine").fetchall()
    led = sorted(r[0] for r in con.sql("select row_index from ledger").fetchall())
    con.close()
    assert q == [(2, "line 4: " + bad.strip())]  # the row's position in the file and its line
    assert led == [0, 1, 3, 4, 5]  # good rows keep their positions


def test_csv_dirty_value_after_the_first_block_does_not_stop_the_reader(tmp_path):
    # the reader used to infer column types from the first 4 MiB block and give up on the rest of the file
    p = tmp_path / "long.csv"
    n = 120_000
    with p.open("w") as f:
        f.write(HEADER)
        f.writelines(_row(i % 60) for i in range(n))
        f.write(_row(1, inp="x"))
        f.writelines(_row(i % 60) for i in range(10))
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"))
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (n + 11, n + 10, 1)
    assert list(res.quarantine_reasons) == ["wrong type for input_tokens: 'x'"]


def test_csv_float_formatted_integers_are_read(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text(HEADER + _row(1, inp="100.0", out="1e1") + _row(2, inp="100.5"))
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"))
    assert (res.rows_priced, res.rows_quarantined) == (1, 1)
