"""Anthropic 1-hour prompt-cache writes: read from responses and the Admin usage report as ``cache_write_1h_tokens``
(a part of ``cache_write_tokens``), priced at 2x the base input price (Anthropic, "Prompt caching", Pricing:
"1-hour cache write tokens are 2x the base input tokens price"), the 5-minute writes at the cache-write price.
Every expectation is recomputed here with Decimal from genai-prices' quote and that rule."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import ibis
import pyarrow as pa
import pytest

from billshape import api_prices, usage
from billshape.usage import engine as E
from billshape.usage import readers as R

SONNET = "claude-sonnet-4-20250514"
DAY = dt.date(2025, 10, 1)
SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "usage" / "connectors" / "anthropic_usage_report.json"
#: Anthropic's rule, stated here on its own (not read from the catalog): a 1-hour write costs 2x the base input price
ONE_HOUR = Decimal(2)


def micro(tokens: int, usd_per_mtok) -> int:
    return int((Decimal(tokens) * Decimal(usd_per_mtok)).to_integral_value(rounding=ROUND_HALF_UP))


def msg(rid, inp, w5, w1h, out, tier=None, total=True, ts="2025-10-01T12:00:00Z", model=SONNET):
    """An Anthropic Messages API response: ``input_tokens`` excludes the cache; the writes split by TTL."""
    u = {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": 0,
         "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1h}}
    if total:
        u["cache_creation_input_tokens"] = w5 + w1h
    if tier:
        u["service_tier"] = tier
    return {"ts": ts, "response": {"id": rid, "type": "message", "model": model, "usage": u}}


def jsonl(path: Path, items) -> str:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return str(path)


def ledger(db) -> dict[str, dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {r["row_key"]: r for r in con.execute("select * from ledger").to_arrow_table().to_pylist()}
    finally:
        con.close()


def test_anthropic_response_prices_1h_writes_at_twice_the_input_price(tmp_path):
    """1,000 5-minute and 2,000 1-hour writes on Claude Sonnet 4: 1,000 x cache_write_mtok + 2,000 x 2 x input_mtok
    (and the uncached input and the output at theirs); the same with the split alone (no
    cache_creation_input_tokens); the batch tier halves every price, the 1-hour one too."""
    q = api_prices.quote(SONNET, "anthropic", DAY)
    db = tmp_path / "u.duckdb"
    res = usage.ingest([jsonl(tmp_path / "r.jsonl", [msg("a", 500, 1_000, 2_000, 100), msg("b", 500, 1_000, 2_000, 100, total=False),
                                                     msg("c", 500, 1_000, 2_000, 100, tier="batch")])], str(db))
    assert res.rows_quarantined == 0
    rows = ledger(db)
    a = rows["raw:a"]
    assert (a["input_tokens"], a["cache_write_tokens"], a["cache_write_1h_tokens"]) == (3_500, 3_000, 2_000)
    cache_write = micro(1_000, q.cache_write_mtok) + micro(2_000, ONE_HOUR * q.input_mtok)
    assert a["usd_micro_cache_write"] == cache_write == 3_750 + 12_000
    assert a["usd_micro"] == micro(500, q.input_mtok) + cache_write + micro(100, q.output_mtok)
    assert {k: v for k, v in rows["raw:b"].items() if k.startswith("usd_micro")} == \
        {k: v for k, v in a.items() if k.startswith("usd_micro")}
    half = Decimal("0.5")  # data/service_tiers.csv: Anthropic batch, every price x 0.5 (the cache_write component)
    assert rows["raw:c"]["usd_micro_cache_write"] == micro(1_000, q.cache_write_mtok * half) + micro(2_000, ONE_HOUR * q.input_mtok * half)
    # genai-prices' own 1-hour price for the model agrees with the rule
    assert q.cache_write_1h_mtok == ONE_HOUR * q.input_mtok


def test_long_context_request_prices_1h_writes_at_twice_the_long_context_input_price(tmp_path):
    """A single Sonnet 4 request over 200K input tokens: every token at the long-context rates, the 1-hour writes at
    2 x the long-context input price ($6, Anthropic's long-context pricing: 2x the $3 input) = $12 per million."""
    q = api_prices.quote(SONNET, "anthropic", DAY)
    lc_input = 2 * q.input_mtok
    db = tmp_path / "u.duckdb"
    usage.ingest([jsonl(tmp_path / "r.jsonl", [msg("long", 240_000, 10_000, 30_000, 1_000)])], str(db))
    r = ledger(db)["raw:long"]
    assert r["input_tokens"] == 280_000
    assert r["usd_micro_cache_write"] == micro(10_000, 2 * q.cache_write_mtok) + micro(30_000, ONE_HOUR * lc_input)
    assert r["usd_micro"] == micro(240_000, lc_input) + r["usd_micro_cache_write"] + micro(1_000, Decimal("1.5") * q.output_mtok)


def test_usage_report_sample_total_rises_by_the_1h_premium(tmp_path):
    """The shipped Admin usage report has one row with 64,000 1-hour writes (Claude Sonnet 4, standard): its total is
    the same report's total with those writes counted as 5-minute ones plus 64,000 x (2 x $3 - $3.75) per million
    = $0.144; the cost report's "1h Cache Write" line for them is $0.384 = 64,000 x 2 x $3 per million."""
    page = json.loads(SAMPLE.read_text())
    as_5m = copy.deepcopy(page)
    moved = 0
    for bucket in as_5m["data"]:
        for r in bucket["results"]:
            cc = r["cache_creation"]
            moved += cc["ephemeral_1h_input_tokens"]
            cc["ephemeral_5m_input_tokens"] += cc["ephemeral_1h_input_tokens"]
            cc["ephemeral_1h_input_tokens"] = 0
    assert moved == 64_000
    f = tmp_path / "as_5m.json"
    f.write_text(json.dumps(as_5m))
    with_1h = usage.ingest([str(SAMPLE)], str(tmp_path / "a.duckdb"))
    without = usage.ingest([str(f)], str(tmp_path / "b.duckdb"))
    q = api_prices.quote(SONNET, "anthropic", dt.date(2025, 6, 2))
    premium = micro(64_000, ONE_HOUR * q.input_mtok) - micro(64_000, q.cache_write_mtok)
    assert premium == 144_000
    assert with_1h.total_micro_usd - without.total_micro_usd == premium
    cost = json.loads(SAMPLE.with_name("anthropic_cost_report.json").read_text())
    line = [r for b in cost["data"] for r in b["results"] if r.get("token_type") == "cache_creation.ephemeral_1h_input_tokens"]
    assert [Decimal(r["amount"]) * 10_000 for r in line] == [micro(64_000, ONE_HOUR * q.input_mtok)]  # cents -> micro-dollars
    # and the ledger now prices the usage report to the cost report's total, to the micro-dollar ($0.144 short before)
    assert with_1h.total_micro_usd == sum(Decimal(r["amount"]) for b in cost["data"] for r in b["results"]) * 10_000


def test_more_1h_writes_than_cache_writes_are_quarantined(tmp_path):
    """1-hour writes are a part of the cache writes: a response, a usage-report result and a CSV row (fast and
    row-by-row paths) with more of them are quarantined with the reason."""
    reason = R.CACHE_1H_REASON
    with pytest.raises(R.RowError, match=reason):
        R.raw_record({"response": {"id": "x", "type": "message", "model": SONNET, "created_at": "2025-10-01T00:00:00Z",
                                   "usage": {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 10,
                                             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 11}}}})
    csv = tmp_path / "u.csv"
    csv.write_text("timestamp,provider,model,input_tokens,cache_write_tokens,cache_write_1h_tokens,output_tokens\n"
                   f"2025-10-01T00:00:00Z,anthropic,{SONNET},100,10,11,5\n"
                   f"2025-10-01T00:00:00Z,anthropic,{SONNET},100,10,10,5\n")
    dirty = tmp_path / "d.csv"  # a value that does not cast makes the batch go row by row
    dirty.write_text(csv.read_text() + f"2025-10-01T00:00:00Z,anthropic,{SONNET},100,ten,0,5\n")
    for path in (csv, dirty):
        db = tmp_path / f"{path.stem}.duckdb"
        res = usage.ingest([str(path)], str(db))
        assert res.rows_priced == 1
        assert reason in res.quarantine_reasons
    q = api_prices.quote(SONNET, "anthropic", DAY)
    row = next(iter(ledger(tmp_path / "u.duckdb").values()))  # 10 writes, all 1-hour
    assert row["usd_micro_cache_write"] == micro(10, ONE_HOUR * q.input_mtok)


def test_user_price_table_1h_price_wins_else_the_rule_for_anthropic_models_only(tmp_path):
    """A user price table's cache_write_1h_usd_per_mtok is used as given; without it an Anthropic model's 1-hour writes
    cost 2 x its input price, and another provider's model (no 1-hour price of its own) prices them as cache writes."""
    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok,cache_write_usd_per_mtok,cache_write_1h_usd_per_mtok\n"
                      "anthropic,claude-own,1,5,1.25,2.5\nanthropic,claude-rule,1,5,1.25,\nacme,m,1,5,1.25,\n")
    items = [msg("own", 0, 100, 1_000, 0, model="claude-own"), msg("rule", 0, 100, 1_000, 0, model="claude-rule"),
             {**msg("acme", 0, 100, 1_000, 0, model="m"), "provider": "acme"}]
    db = tmp_path / "u.duckdb"
    res = usage.ingest([jsonl(tmp_path / "r.jsonl", items)], str(db), prices_csv=str(prices))
    assert res.rows_quarantined == 0
    got = {k: r["usd_micro_cache_write"] for k, r in ledger(db).items()}
    assert got == {"raw:own": micro(100, "1.25") + micro(1_000, "2.5"), "raw:rule": micro(100, "1.25") + micro(1_000, ONE_HOUR * 1),
                   "raw:acme": micro(100, "1.25") + micro(1_000, "1.25")}


def test_content_key_of_rows_without_1h_writes_is_unchanged():
    """Rows keyed by their content keep the key they had before the column (a file ingested again stays a duplicate):
    the hash of a row without the column equals that of the row with it null or 0, and differs with 1-hour writes."""
    base = {"ts": [dt.datetime(2025, 10, 1, tzinfo=dt.timezone.utc)], "provider": ["anthropic"], "model": [SONNET],
            "requests": [1], "input_tokens": [100], "cache_read_tokens": [0], "cache_write_tokens": [10], "output_tokens": [5],
            "reasoning_tokens": [0], **{d: pa.array([None], pa.string()) for d in ("customer", "feature", "project", "user_id",
                                                                                   "service_tier")}, **{f: [0] for f in ("input_image_tokens", "output_image_tokens", "input_audio_tokens",
                                                       "output_audio_tokens", "images_generated", "seconds_generated",
                                                       "web_search_calls")}}
    con = ibis.duckdb.connect()
    out = []
    for extra in ({}, {"cache_write_1h_tokens": pa.array([None], pa.int64())}, {"cache_write_1h_tokens": [0]},
                  {"cache_write_1h_tokens": [7]}):
        t = pa.table({**base, **extra})
        name = f"t{len(out)}"
        con.con.register(name, t)
        out.append(con.table(name).select(h=E.content_hash(con.table(name))).to_pyarrow().column("h")[0].as_py())
    assert out[0] == out[1] == out[2] != out[3]


def _logs(tmp_path) -> list[str]:
    """Responses with 1-hour writes (one over 200K, one batch), the usage-report sample, and a CSV without request
    ids (content-keyed) with a cache_write_1h_tokens column."""
    csv = tmp_path / "noid.csv"
    csv.write_text("timestamp,provider,model,input_tokens,cache_write_tokens,cache_write_1h_tokens,output_tokens\n"
                   f"2025-10-01T00:00:00Z,anthropic,{SONNET},5000,3000,2000,50\n"
                   f"2025-10-01T00:00:00Z,anthropic,{SONNET},5000,3000,0,50\n")
    items = [msg("a", 500, 1_000, 2_000, 100), msg("c", 500, 1_001, 2_001, 100, tier="batch"), msg("long", 240_000, 10_000, 30_000, 1_000)]
    return [jsonl(tmp_path / "r.jsonl", items), str(SAMPLE), str(csv)]


def test_focus_export_adds_up_with_1h_writes(tmp_path):
    """The FOCUS exports' cache-write rows carry both TTLs: BilledCost sums to the ledger's total."""
    from billshape.usage.focus import focus13_table, focus_table

    db = str(tmp_path / "u.duckdb")
    res = usage.ingest(_logs(tmp_path), db)
    for table in (focus_table(db), focus13_table(db)):
        assert sum(table.column("x_BilledCostMicroUsd").to_pylist()) == res.total_micro_usd


# DuckDB and Spark agree on these rows (costs to the micro-dollar, content keys): one Spark ingest, in
# tests/test_usage_tiers.py::test_duckdb_and_spark_agree_on_tiers_and_units (each Spark ingest costs ~10 s).


def test_whatif_cache_hit_rate_caps_the_1h_writes_with_the_writes(tmp_path):
    """``whatif --cache-hit-rate 0.9`` on 500 uncached + 1,000 5-minute + 2,000 1-hour writes (3,500 input): 3,150
    cache reads, the writes capped to the 350 left, and so the 1-hour part (never more than the writes)."""
    q = api_prices.quote(SONNET, "anthropic", DAY)
    db = str(tmp_path / "u.duckdb")
    usage.ingest([jsonl(tmp_path / "r.jsonl", [msg("a", 500, 1_000, 2_000, 100)])], db)
    w = usage.whatif(db, cache_hit_rate=0.9)
    assert w.whatif_micro_usd == micro(3_150, q.cache_read_mtok) + micro(350, ONE_HOUR * q.input_mtok) + micro(100, q.output_mtok)
