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


# --- 3. a --db that cannot be a DuckDB database is a one-line --db error, in every verb ---------------

VERBS = {
    "ingest": ("usage", "ingest", str(EXAMPLES / "openai_usage.json")),
    "reprice": ("usage", "reprice"),
    "report": ("usage", "report"),
    "economics": ("usage", "economics"),
    "whatif": ("usage", "whatif", "--route", "gpt-4o:0.5->gpt-4o-mini"),
    "export": ("usage", "export", "-o", "{tmp}/f.csv"),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("kind", ["directory", "not duckdb", "empty file", "missing folder"])
def test_cli_db_that_is_not_a_duckdb_database(cli, tmp_path, verb, kind):
    if kind == "directory":
        db = tmp_path / "d"
        db.mkdir()
    elif kind == "not duckdb":
        db = tmp_path / "u.duckdb"
        db.write_text(HEADER + _row(1))
    elif kind == "empty file":
        db = tmp_path / "u.duckdb"
        db.write_bytes(b"")
    else:
        db = tmp_path / "no" / "such" / "u.duckdb"
    args = [a.format(tmp=tmp_path) for a in VERBS[verb]]
    res = cli(*args, "--db", db)
    assert_one_line_error(res, "--db")
    assert "internal error" not in res.err
    if kind == "not duckdb":
        assert db.read_text() == HEADER + _row(1)  # left as it was


def test_cli_db_in_a_missing_folder_says_which_folder(cli, tmp_path):
    res = cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", tmp_path / "no" / "u.duckdb")
    assert_one_line_error(res, "--db")
    assert "does not exist" in res.err
    assert not (tmp_path / "no").exists()


# --- 4. human ingest: nothing on stderr when stderr is not a terminal --------------------------------

def test_cli_human_ingest_writes_nothing_to_stderr(cli, tmp_path):
    res = cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", tmp_path / "u.duckdb")
    assert res.code == 0, res.err
    assert res.err == ""
    assert "rows read" in res.out


def test_cli_human_ingest_error_is_exactly_one_stderr_line(cli, tmp_path):
    res = cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", tmp_path / "u.duckdb", "--format", "xml")
    assert res.code == 2
    assert len(res.err.splitlines()) == 1, repr(res.err)


# --- 5. a file flag that is not UTF-8 names the flag --------------------------------------------------

def test_cli_prices_not_utf8_names_the_flag(cli, tmp_path):
    p = tmp_path / "p.csv"
    p.write_bytes(b"provider,model,input_usd_per_mtok,output_usd_per_mtok\n,m\xff,1,2\n")
    for verb in (("usage", "ingest", EXAMPLES / "openai_usage.json"), ("usage", "whatif", "--route", "a:0.5->b")):
        res = cli(*verb, "--db", tmp_path / "u.duckdb", "--prices", p)
        assert_one_line_error(res, "--prices")
        assert "not UTF-8" in res.err


def test_cli_self_hosted_file_not_utf8_names_the_flag(cli, tmp_path):
    p = tmp_path / "sh.yaml"
    p.write_bytes(b"- name: caf\xe9\n  model: llama-3.1-8b\n")
    res = cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", tmp_path / "u.duckdb", "--self-hosted", p)
    assert_one_line_error(res, "--self-hosted")
    assert "not UTF-8" in res.err


@pytest.mark.parametrize("price, allowed", [("1e9", "[0, 1,000,000]"), ("-1", "[0, 1,000,000]"), ("0.0000000001", "at most 9 decimals")])
def test_cli_prices_out_of_range(cli, tmp_path, price, allowed):
    p = tmp_path / "p.csv"
    p.write_text(f"provider,model,input_usd_per_mtok,output_usd_per_mtok\n,m,{price},2\n")
    res = cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", tmp_path / "u.duckdb", "--prices", p)
    assert_one_line_error(res, "--prices")
    assert allowed in res.err


# --- 6. defaults are labelled as defaults, user input only when given -------------------------------

def _source(data: dict, name: str) -> str:
    return next(a["source"] for a in data["assumptions"] if a["name"] == name)


def test_cli_engine_and_by_provenance(cli, tmp_path):
    db = tmp_path / "u.duckdb"
    res = cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", db, "--json").json()
    assert _source(res, "engine") == "billshape default (--engine duckdb)"
    res = cli("usage", "ingest", EXAMPLES / "requests.csv", "--db", db, "--engine", "duckdb", "--json").json()
    assert _source(res, "engine") == "user input (--engine)"
    assert _source(cli("usage", "reprice", "--db", db, "--json").json(), "engine") == "billshape default (--engine duckdb)"
    rep = cli("usage", "report", "--db", db, "--json").json()
    assert rep["by"] == "customer" and _source(rep, "by") == "billshape default (--by customer)"
    assert _source(cli("usage", "report", "--db", db, "--by", "model", "--json").json(), "by") == "user input (--by)"


# --- 7. what-if: negative money as -$0.80, two distinct change rows ---------------------------------

def test_cli_whatif_human_money_and_labels(cli, tmp_path):
    db = tmp_path / "u.duckdb"
    assert cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", db).code == 0
    data = cli("usage", "whatif", "--db", db, "--route", "gpt-4o-2024-08-06:0.4->gpt-4o-mini", "--json").json()
    assert data["delta_usd"] < 0
    res = cli("usage", "whatif", "--db", db, "--route", "gpt-4o-2024-08-06:0.4->gpt-4o-mini")
    assert res.code == 0, res.err
    assert "$-" not in res.out
    assert f"-${abs(data['delta_usd']):,.2f}" in res.out
    assert "change (USD)" in res.out and "change (%)" in res.out
    assert f"{data['delta_pct']:+.2f} %" in res.out


def test_usd_formatting():
    from billshape.cli.cmd_usage import _usd

    assert _usd(-0.8) == "-$0.80"
    assert _usd(0.8, signed=True) == "+$0.80"
    assert _usd(1234.5) == "$1,234.50"
    assert _usd(0.0) == "$0.00"
    assert _usd(-0.000042) == "-$0.000042"


def test_cli_merge_into_not_utf8_names_the_flag(cli, tmp_path):
    db = tmp_path / "u.duckdb"
    assert cli("usage", "ingest", EXAMPLES / "openai_usage.json", "--db", db).code == 0
    base = tmp_path / "s.yaml"
    base.write_bytes(b"product:\n  name: caf\xe9\n")
    res = cli("usage", "economics", "--db", db, "--scenario-out", tmp_path / "o.yaml", "--merge-into", base)
    assert_one_line_error(res, "--merge-into")
    assert "not UTF-8" in res.err
