"""Measured economics (billshape.usage) on DuckDB: reconciliation to the cent, nothing lost, nothing twice."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape import usage
from billshape.usage import engine as E
from billshape.usage.readers import raw_record
from conftest import assert_one_line_error
from usage_gen import make_logs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("logs")
    files, expect = make_logs(root)
    return [str(f) for f in files], expect


@pytest.fixture(scope="module")
def ingested(logs, tmp_path_factory):
    files, expect = logs
    db = str(tmp_path_factory.mktemp("db") / "u.duckdb")
    res = usage.ingest(files, db, mapping={"tenant": "customer"})
    return db, res, expect


def test_rows_in_equal_priced_plus_quarantined(ingested):
    _, res, e = ingested
    assert res.rows_read == res.rows_priced + res.rows_quarantined
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (e.rows_read, e.priced, e.quarantined)
    assert sum(res.quarantine_reasons.values()) == res.rows_quarantined
    assert res.files_skipped and res.files_skipped[0].endswith("requests_copy.csv")  # duplicated file
    assert res.records_ignored == 2  # the agent span and the HTTP span are not usage rows


def test_total_reconciles_to_the_micro_dollar_and_to_genai_prices_within_a_cent(ingested):
    _, res, e = ingested
    assert res.total_micro_usd == e.micro  # per-component rounding, computed independently in usage_gen
    # genai-prices' own unrounded Decimal total: at most 0.5 micro-dollar per component away
    assert abs(Decimal(res.total_micro_usd) / 1_000_000 - e.genai_usd) < Decimal("0.01")


def test_quarantine_reasons_name_the_problem(ingested):
    reasons = " | ".join(ingested[1].quarantine_reasons)
    for needle in ("negative output_tokens", "no price for model no-such-model-xyz", "wrong type for input_tokens",
                   "invalid JSON", "duplicate row", "cache tokens exceed input tokens", "bad timestamp"):
        assert needle in reasons, needle


def test_report_by_customer_and_model_reconcile(ingested):
    db, res, e = ingested
    by_c = usage.report(db, "customer")
    assert {r["key"]: r["usd_micro"] for r in by_c.rows} == dict(e.by_customer)
    assert by_c.total_micro_usd == res.total_micro_usd
    by_m = usage.report(db, "model")
    assert {r["key"]: r["usd_micro"] for r in by_m.rows} == dict(e.by_model)
    for by in ("feature", "day", "month", "project", "user", "provider"):
        rep = usage.report(db, by)
        assert sum(r["usd_micro"] for r in rep.rows) == res.total_micro_usd
        assert sum(r["requests"] for r in rep.rows) == e.requests
    assert [r["key"] for r in usage.report(db, "month").rows] == ["2025-03"]


def test_reingest_adds_nothing(ingested, logs):
    db, res, _ = ingested
    files, _ = logs
    again = usage.ingest(files, db, mapping={"tenant": "customer"})
    assert again.rows_read == 0 and again.rows_priced == 0 and again.total_micro_usd == 0
    assert sorted(again.files_skipped) == sorted(files)
    assert usage.report(db, "customer").total_micro_usd == res.total_micro_usd


def test_interrupted_ingest_leaves_the_database_as_it_was(tmp_path, monkeypatch):
    db = str(tmp_path / "u.duckdb")
    first = usage.ingest([str(EXAMPLES / "openai_usage.json")], db)
    calls = {"n": 0}
    real = E.DuckDBStore.append

    def crash_after_one(self, name, expr):
        calls["n"] += 1
        real(self, name, expr)
        if calls["n"] == 2:  # quarantine and ledger rows written, files table not yet
            raise KeyboardInterrupt("killed midway")

    monkeypatch.setattr(E.DuckDBStore, "append", crash_after_one)
    with pytest.raises(KeyboardInterrupt):
        usage.ingest([str(EXAMPLES / "spans.otlp.json"), str(EXAMPLES / "requests.csv")], db, mapping={"tenant": "customer"})
    monkeypatch.setattr(E.DuckDBStore, "append", real)
    after = usage.report(db, "model")
    assert after.total_micro_usd == first.total_micro_usd and after.rows_quarantined == 0
    # and the files were not marked as ingested: a retry lands them
    retry = usage.ingest([str(EXAMPLES / "spans.otlp.json")], db)
    assert retry.rows_priced == 3 and not retry.files_skipped


def test_example_logs_with_self_hosted_prices(tmp_path):
    db = str(tmp_path / "u.duckdb")
    no_prices = usage.ingest([str(EXAMPLES / "requests.csv")], db, mapping={"tenant": "customer"})
    assert "no price for model llama-3.1-8b-ours (provider selfhosted)" in no_prices.quarantine_reasons  # never $0
    db2 = str(tmp_path / "v.duckdb")
    res = usage.ingest([str(EXAMPLES / "requests.csv")], db2, mapping={"tenant": "customer"},
                       prices_csv=str(EXAMPLES / "selfhosted_prices.csv"))
    assert res.rows_priced == no_prices.rows_priced + 1
    # 4000 x $0.05/M + 1000 x $0.08/M = 200 + 80 micro-dollars
    assert res.total_micro_usd - no_prices.total_micro_usd == 280


# --- provider token semantics ------------------------------------------------------------------

def test_openai_cached_tokens_are_inside_input():
    r = raw_record({"ts": "2025-03-01T00:00:00Z", "response": {"model": "gpt-4o", "usage": {
        "prompt_tokens": 1000, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 800},
        "completion_tokens_details": {"reasoning_tokens": 20}}}})
    assert (r["input_tokens"], r["cache_read_tokens"], r["output_tokens"], r["reasoning_tokens"]) == (1000, 800, 50, 20)


def test_openai_responses_api_usage():
    r = raw_record({"ts": 1740787200, "response": {"model": "o3-mini", "usage": {
        "input_tokens": 500, "output_tokens": 90, "input_tokens_details": {"cached_tokens": 100}, "output_tokens_details": {"reasoning_tokens": 60}}}})
    assert (r["input_tokens"], r["cache_read_tokens"], r["output_tokens"], r["provider"]) == (500, 100, 90, "openai")


def test_anthropic_cache_tokens_are_added_to_input():
    r = raw_record({"ts": "2025-03-01T00:00:00Z", "response": {"type": "message", "model": "claude-3-5-haiku-20241022", "usage": {
        "input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 700, "cache_creation_input_tokens": 300}}})
    assert (r["input_tokens"], r["cache_read_tokens"], r["cache_write_tokens"], r["provider"]) == (1010, 700, 300, "anthropic")


def test_gemini_cached_inside_prompt_and_thoughts_billed_as_output():
    r = raw_record({"ts": "2025-03-01T00:00:00Z", "response": {"modelVersion": "gemini-2.5-flash", "usageMetadata": {
        "promptTokenCount": 900, "cachedContentTokenCount": 400, "candidatesTokenCount": 100, "thoughtsTokenCount": 250}}})
    assert (r["input_tokens"], r["cache_read_tokens"], r["output_tokens"], r["reasoning_tokens"], r["provider"]) == (900, 400, 350, 250, "google")


def test_otel_anthropic_span_that_excludes_cache_is_recognised(tmp_path):
    span = {"traceId": "t", "spanId": "s", "startTimeUnixNano": "1741000000000000000", "attributes": [
        {"key": "gen_ai.system", "value": {"stringValue": "anthropic"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "claude-3-5-haiku-20241022"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "20"}},
        {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "10"}},
        {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "1000"}}]}
    p = tmp_path / "a.json"
    p.write_text(json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}))
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(p)], db)
    # 20 uncached at $0.8/M + 1000 cache reads at $0.08/M + 10 output at $4/M = 16 + 80 + 40 micro-dollars
    assert res.rows_priced == 1 and res.total_micro_usd == 136


def test_price_is_timestamp_aware(tmp_path):
    """The price is the one genai-prices has in force on the request's UTC day."""
    from genai_prices import data_snapshot

    _, info = data_snapshot.get_snapshot().find_provider_model("gpt-4o", None, "openai", None)
    p = tmp_path / "r.csv"
    p.write_text("timestamp,provider,model,input_tokens,output_tokens\n2024-06-01T00:00:00Z,openai,gpt-4o,1000000,0\n")
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"))
    when = dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone.utc)
    assert res.total_micro_usd == int(Decimal(info.get_prices(when).input_mtok) * 1_000_000)


# --- FOCUS -------------------------------------------------------------------------------------

def test_focus_export_has_the_mandatory_columns_and_types(ingested, tmp_path):
    from billshape.usage.focus import MANDATORY, NOT_NULL

    db, res, _ = ingested
    out = tmp_path / "focus.parquet"
    summary = usage.export_focus(db, str(out))
    table = pq.read_table(out)
    # FOCUS 1.2 mandatory columns (FOCUS_Spec tag v1.2, specification/columns/*.md): 21 columns
    assert len(MANDATORY) == 21 and set(MANDATORY) <= set(table.column_names)
    import pyarrow as pa

    kinds = {"Decimal": pa.types.is_decimal, "String": pa.types.is_string, "Date/Time": pa.types.is_timestamp}
    for col, kind in MANDATORY.items():
        assert kinds[kind](table.schema.field(col).type), col
    for col in NOT_NULL:
        assert table.column(col).null_count == 0, col
    rows = table.to_pylist()
    assert {r["ConsumedUnit"] for r in rows} <= {"Tokens", "Requests"} and all(r["ConsumedQuantity"] > 0 for r in rows)
    assert all(c.startswith("x_") for c in table.column_names if c[0].islower())
    total = sum(r["BilledCost"] for r in rows)
    assert total == Decimal(res.total_micro_usd) / 1_000_000 == Decimal(summary["billed_cost_micro_usd"]) / 1_000_000
    assert all(r["ChargePeriodEnd"] - r["ChargePeriodStart"] == dt.timedelta(days=1) for r in rows)
    assert all(r["BillingPeriodStart"] <= r["ChargePeriodStart"] < r["BillingPeriodEnd"] for r in rows)
    tokens = sum(int(r["ConsumedQuantity"]) for r in rows if r["ConsumedUnit"] == "Tokens")
    e = ingested[2]
    assert tokens == e.input_tokens + e.output_tokens


# --- economics and what-if -----------------------------------------------------------------------

def test_economics_are_ratios_of_the_ledger(ingested):
    db, res, e = ingested
    eco = usage.economics(db)
    assert eco.requests == e.requests and eco.total_micro_usd == res.total_micro_usd
    assert eco.usd_per_request == pytest.approx(res.total_usd / e.requests)
    assert eco.input_tokens_per_request == pytest.approx(e.input_tokens / e.requests)
    assert eco.users == 7 and eco.users_from == "user_id"
    assert sum(eco.model_shares.values()) == pytest.approx(1.0)


def test_whatif_identity_and_direction(ingested):
    db, res, _ = ingested
    same = usage.whatif(db, ["gpt-4o:1->openai/gpt-4o"])
    assert same.whatif_micro_usd == res.total_micro_usd
    cheaper = usage.whatif(db, ["gpt-4o:0.4->gpt-4o-mini"])
    assert cheaper.whatif_usd < res.total_usd
    half, full = usage.whatif(db, ["gpt-4o:0.5->gpt-4o-mini"]), usage.whatif(db, ["gpt-4o:1->gpt-4o-mini"])
    assert abs(2 * (half.whatif_micro_usd - res.total_micro_usd) - (full.whatif_micro_usd - res.total_micro_usd)) <= 1
    more_cache = usage.whatif(db, cache_hit_rate=0.9)
    no_cache = usage.whatif(db, cache_hit_rate=0.0)
    assert more_cache.whatif_usd < res.total_usd < no_cache.whatif_usd


# --- CLI -----------------------------------------------------------------------------------------

def test_cli_contract(cli, tmp_path):
    db = str(tmp_path / "u.duckdb")
    res = cli("usage", "ingest", EXAMPLES / "spans.otlp.json", EXAMPLES / "openai_usage.json", EXAMPLES / "requests.csv",
              "--db", db, "--map", "tenant=customer", "--prices", EXAMPLES / "selfhosted_prices.csv", "--json")
    assert res.code == 0, res.err
    data = res.json()
    assert {"rows_read", "rows_priced", "rows_quarantined", "quarantine_reasons", "total_usd"} <= set(data)
    assert data["rows_read"] == data["rows_priced"] + data["rows_quarantined"] == 12
    rep = cli("usage", "report", "--db", db, "--by", "customer", "--json").json()
    assert all({"key", "requests", "input_tokens", "output_tokens", "usd"} <= set(r) for r in rep["rows"])
    assert round(sum(r["usd"] for r in rep["rows"]), 6) == data["total_usd"]
    out = tmp_path / "f.csv"
    ex = cli("usage", "export", "--db", db, "--format", "focus", "-o", out)
    assert ex.code == 0 and out.read_text().startswith('"BilledCost"')
    wi = cli("usage", "whatif", "--db", db, "--route", "gpt-4o-2024-08-06:0.4->gpt-4o-mini", "--json").json()
    assert wi["whatif_usd"] < wi["baseline_usd"]
    eco = cli("usage", "economics", "--db", db, "--json").json()
    assert eco["requests"] > 0 and eco["usd_per_request"] > 0


@pytest.fixture(scope="module")
def sample_ledger(tmp_path_factory):
    """One ingest of the OpenAI sample, copied for each test that needs a ledger to be wrong about."""
    db = tmp_path_factory.mktemp("sample") / "u.duckdb"
    assert usage.ingest([str(EXAMPLES / "openai_usage.json")], str(db)).rows_priced > 0
    return db


@pytest.mark.parametrize("args, field", [
    (("usage", "report", "--db", "{db}", "--by", "planet"), "--by"),
    (("usage", "whatif", "--db", "{db}", "--route", "gpt-4o->mini"), "--route"),
    (("usage", "whatif", "--db", "{db}", "--route", "gpt-4o:1.5->gpt-4o-mini"), "--route"),
    (("usage", "whatif", "--db", "{db}", "--route", "nosuch:0.5->gpt-4o-mini"), "--route"),
    (("usage", "whatif", "--db", "{db}", "--cache-hit-rate", "2"), "--cache-hit-rate"),
    (("usage", "ingest", "nofile.json", "--db", "{db}"), "FILES"),
    (("usage", "ingest", "{ex}", "--db", "{db}", "--map", "tenant"), "--map"),
    (("usage", "ingest", "{ex}", "--db", "{db}", "--format", "xml"), "--format"),
    (("usage", "report", "--db", "{missing}"), "--db"),
    (("usage", "export", "--db", "{db}", "-o", "{tmp}/f.xlsx"), "-o"),
])
def test_cli_bad_input(cli, tmp_path, sample_ledger, args, field):
    import shutil

    db = str(tmp_path / "u.duckdb")
    shutil.copy(sample_ledger, db)
    fill = {"db": db, "ex": str(EXAMPLES / "requests.csv"), "missing": str(tmp_path / "none.duckdb"), "tmp": str(tmp_path)}
    assert_one_line_error(cli(*[a.format(**fill) for a in args]), field)


# --- property: nothing lost, nothing twice, for any mix of good and bad CSV rows --------------------

ROW = st.tuples(
    st.sampled_from(["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-20241022", "unknown-model-q"]),
    st.one_of(st.integers(-5, 50_000), st.sampled_from(["x", "1.5", ""])),
    st.one_of(st.integers(-5, 5_000), st.sampled_from(["y"])),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(ROW, min_size=1, max_size=25))
def test_property_rows_in_equal_priced_plus_quarantined(tmp_path_factory, rows):
    d = tmp_path_factory.mktemp("p")
    p = d / "r.csv"
    lines = ["timestamp,model,input_tokens,output_tokens"] + [f"2025-03-01T00:00:{i % 60:02d}Z,{m},{a},{b}" for i, (m, a, b) in enumerate(rows)]
    p.write_text("\n".join(lines) + "\n")
    res = usage.ingest([str(p)], str(d / "u.duckdb"))
    good = [r for r in rows if r[0] != "unknown-model-q" and isinstance(r[1], int) and r[1] >= 0 and isinstance(r[2], int) and r[2] >= 0]
    assert res.rows_read == len(rows) == res.rows_priced + res.rows_quarantined
    assert res.rows_priced == len(good)
    assert res.total_micro_usd >= 0


def test_report_hints_at_map_when_spend_has_no_customer(cli, tmp_path):
    # An OpenAI usage export carries no customer: all spend lands under "(none)", and the report says how to map it.
    ex = Path(__file__).resolve().parents[1] / "examples" / "usage" / "openai_usage.json"
    db = str(tmp_path / "oa.duckdb")
    assert cli("usage", "ingest", str(ex), "--db", db, "--json").code == 0
    rep = cli("usage", "report", "--db", db, "--by", "customer", "--json").json()
    assert [r["key"] for r in rep["rows"]] == ["(none)"]
    assert len(rep["hints"]) == 1 and "--map project_id=customer" in rep["hints"][0]
    human = cli("usage", "report", "--db", db)
    assert human.code == 0 and "--map project_id=customer" in " ".join(human.out.split())
    assert cli("usage", "report", "--db", db, "--by", "model", "--json").json()["hints"] == []
    mapped = str(tmp_path / "mapped.duckdb")
    assert cli("usage", "ingest", str(ex), "--map", "project_id=customer", "--db", mapped, "--json").code == 0
    rep = cli("usage", "report", "--db", mapped, "--json").json()
    assert "(none)" not in [r["key"] for r in rep["rows"]] and rep["hints"] == []
