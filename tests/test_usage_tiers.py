"""Service tiers and non-token units in the usage ledger: every total recomputed here from the files with the
documented rules (data/service_tiers.csv multipliers; image/audio tokens at their prices; per image, per second,
per web search), independently of the engine's expressions."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from billshape import api_prices, catalog, usage
from billshape.usage import engine as E
from billshape.usage import prices as P
from billshape.usage import readers as R
from billshape.usage.schema import LEDGER, QUARANTINE, UNIT_COST_FIELDS, UNIT_FIELDS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
DAY = dt.date(2025, 10, 1)
NINE = Decimal("1e-9")


def rnd(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def times(price, m) -> Decimal:
    """A price times a tier multiplier, rounded half up to 1e-9 (the price type)."""
    return (Decimal(price) * Decimal(m)).quantize(NINE, rounding=ROUND_HALF_UP)


def token_micro(q, inp, out, cr=0, m="1", tier=False) -> int:
    """Micro-dollars of a text row at quote ``q`` (``tier``: the long-context prices), multiplier ``m``."""
    ip = q.tier_input_mtok if tier else q.input_mtok
    op = q.tier_output_mtok if tier else q.output_mtok
    crp = (q.tier_cache_read_mtok if tier else q.cache_read_mtok) or ip
    return rnd((inp - cr) * times(ip, m)) + rnd(cr * times(crp, m)) + rnd(out * times(op, m))


def raw(path: Path, items: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return str(path)


def ledger_rows(db: str) -> list[dict]:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute("SELECT * FROM ledger ORDER BY row_key").to_arrow_table().to_pylist()
    finally:
        con.close()


def quarantine_reasons(db: str) -> dict[str, str]:
    con = duckdb.connect(db, read_only=True)
    try:
        return dict(con.execute("SELECT row_key, reason FROM quarantine").fetchall())
    finally:
        con.close()


# --------------------------------------------------------------------------------------------- catalog

def test_service_tier_catalog_rows_have_source_and_date():
    rows = catalog.read_rows(P.TIERS_FILE)
    assert {(r["provider"], r["tier"]) for r in rows} >= {("openai", "batch"), ("openai", "flex"), ("anthropic", "batch"), ("google", "batch")}
    for r in rows:
        assert r["source"].strip() and dt.date.fromisoformat(r["as_of"])
        assert r["component"] in P.TIER_COMPONENTS
    # most specific first: model rows, then provider rows, then any-provider rows
    order = [(t.model == "", t.provider == "") for t in P.tier_rows()]
    assert order == sorted(order)


# --------------------------------------------------------------------------------------------- tiers

def openai_chat(rid, model, inp, out, tier=None, cached=0, ts="2025-10-01T12:00:00Z", **details):
    body = {"id": rid, "object": "chat.completion", "created": 0, "model": model,
            "usage": {"prompt_tokens": inp, "completion_tokens": out, "prompt_tokens_details": {"cached_tokens": cached, **details.get("pd", {})},
                      "completion_tokens_details": details.get("cd", {})}}
    if tier is not None:
        body["service_tier"] = tier
    return {"ts": ts, "provider": "openai", "response": body}


def test_openai_batch_flex_priority_and_unknown_tier(tmp_path):
    items = [
        openai_chat("std", "gpt-4.1", 100_000, 20_000, tier="default", cached=30_000),
        openai_chat("none", "gpt-4.1", 100_000, 20_000),
        openai_chat("flex", "gpt-4.1", 100_000, 20_000, tier="flex", cached=30_000),
        openai_chat("prio", "gpt-4.1", 100_000, 20_000, tier="priority", cached=30_000),
        openai_chat("scale", "gpt-4.1", 100_000, 20_000, tier="scale"),
        openai_chat("prio-dated", "gpt-4o-2024-05-13", 1000, 100, tier="priority"),
    ]
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([raw(tmp_path / "r.jsonl", items)], db)
    q = api_prices.quote("gpt-4.1", "openai", DAY)
    expect = {
        "raw:std": token_micro(q, 100_000, 20_000, 30_000),
        "raw:none": token_micro(q, 100_000, 20_000),
        "raw:flex": token_micro(q, 100_000, 20_000, 30_000, m="0.5"),
        "raw:prio": token_micro(q, 100_000, 20_000, 30_000, m="1.75"),
    }
    got = {r["row_key"]: r["usd_micro"] for r in ledger_rows(db)}
    assert got == expect
    assert res.total_micro_usd == sum(expect.values())
    # flex is half of standard, priority 1.75x (gpt-4.1 prices are round numbers, so exactly)
    assert 2 * got["raw:flex"] == got["raw:std"] and 4 * got["raw:prio"] == 7 * got["raw:std"]
    tiers = {r["row_key"]: r["service_tier"] for r in ledger_rows(db)}
    assert tiers == {"raw:std": "default", "raw:none": None, "raw:flex": "flex", "raw:prio": "priority"}
    reasons = quarantine_reasons(db)
    assert reasons["raw:scale"] == "unknown service tier scale for provider openai and model gpt-4.1 (no row in service_tiers.csv)"
    assert "unknown service tier priority" in reasons["raw:prio-dated"] and "gpt-4o-2024-05-13" in reasons["raw:prio-dated"]
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (6, 4, 2)


def test_openai_usage_export_batch_rows_are_priced_at_half(tmp_path):
    page = {"object": "page", "data": [{"object": "bucket", "start_time": 1759320000, "end_time": 1759406400, "results": [
        {"object": "organization.usage.completions.result", "input_tokens": 2_000_000, "output_tokens": 300_000,
         "input_cached_tokens": 500_000, "num_model_requests": 900, "project_id": "p", "model": "gpt-4o-mini", "batch": False},
        {"object": "organization.usage.completions.result", "input_tokens": 2_000_000, "output_tokens": 300_000,
         "input_cached_tokens": 500_000, "num_model_requests": 900, "project_id": "p", "model": "gpt-4o-mini", "batch": True},
    ]}], "has_more": False}
    f = tmp_path / "usage.json"
    f.write_text(json.dumps(page))
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(f)], db)
    q = api_prices.quote("gpt-4o-mini", "openai", DAY)
    std, batch = token_micro(q, 2_000_000, 300_000, 500_000), token_micro(q, 2_000_000, 300_000, 500_000, m="0.5")
    assert res.rows_quarantined == 0 and res.total_micro_usd == std + batch
    assert sorted((r["service_tier"] or "", r["usd_micro"]) for r in ledger_rows(db)) == [("", std), ("batch", batch)]


def anthropic_msg(rid, model, inp, out, cr=0, cw=0, tier=None, searches=None, ts="2025-10-01T12:00:00Z"):
    u = {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": cr, "cache_creation_input_tokens": cw}
    if tier:
        u["service_tier"] = tier
    if searches is not None:
        u["server_tool_use"] = {"web_search_requests": searches}
    return {"ts": ts, "response": {"id": rid, "type": "message", "model": model, "usage": u}}


def test_anthropic_batch_long_context_and_web_search(tmp_path):
    model = "claude-sonnet-4-5"
    items = [
        anthropic_msg("a-std", model, 10_000, 2_000, cr=4_000),
        anthropic_msg("a-batch", model, 10_000, 2_000, cr=4_000, tier="batch"),
        anthropic_msg("a-long", model, 250_000, 3_000, tier="standard"),  # one request over the 200k threshold
        anthropic_msg("a-long-batch", model, 250_000, 3_000, tier="batch"),
        anthropic_msg("a-search", model, 5_000, 500, searches=3),
        anthropic_msg("a-prio", model, 5_000, 500, tier="priority"),  # Priority Tier is committed capacity: no multiplier
    ]
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([raw(tmp_path / "a.jsonl", items)], db)
    q = api_prices.quote(model, "anthropic", DAY)
    assert q.tier_start == 200_000 and q.usd_per_web_search == Decimal("0.01")
    # the reader adds cache reads to Anthropic's input_tokens: input = 14_000 of which 4_000 cached
    expect = {
        "raw:a-std": token_micro(q, 14_000, 2_000, 4_000),
        "raw:a-batch": token_micro(q, 14_000, 2_000, 4_000, m="0.5"),
        "raw:a-long": token_micro(q, 250_000, 3_000, tier=True),
        "raw:a-long-batch": token_micro(q, 250_000, 3_000, m="0.5", tier=True),
        "raw:a-search": token_micro(q, 5_000, 500) + 3 * 10_000,  # $10 per thousand searches
    }
    rows = {r["row_key"]: r for r in ledger_rows(db)}
    assert {k: r["usd_micro"] for k, r in rows.items()} == expect
    assert rows["raw:a-search"]["usd_micro_web_search"] == 30_000 and rows["raw:a-search"]["web_search_calls"] == 3
    assert rows["raw:a-long"]["usd_micro_input"] == 250_000 * 6  # $6/M above 200k
    assert "unknown service tier priority for provider anthropic" in quarantine_reasons(db)["raw:a-prio"]
    assert res.total_micro_usd == sum(expect.values())


def test_anthropic_usage_report_batch_tier_is_priced(tmp_path):
    bucket = {"starting_at": "2025-10-01T00:00:00Z", "ending_at": "2025-10-02T00:00:00Z", "results": [
        {"uncached_input_tokens": 1_000_000, "cache_read_input_tokens": 0, "output_tokens": 100_000, "model": "claude-sonnet-4-5",
         "service_tier": tier, "context_window": "0-200k", "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
         "workspace_id": tier} for tier in ("standard", "batch", "flex")]}
    f = tmp_path / "report.json"
    f.write_text(json.dumps({"data": [bucket], "has_more": False, "next_page": None}))
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(f)], db, fmt="anthropic-usage")
    q = api_prices.quote("claude-sonnet-4-5", "anthropic", DAY)
    assert res.total_micro_usd == token_micro(q, 1_000_000, 100_000) + token_micro(q, 1_000_000, 100_000, m="0.5")
    assert list(res.quarantine_reasons) == ["unknown service tier flex for provider anthropic and model claude-sonnet-4-5 (no row in service_tiers.csv)"]


# --------------------------------------------------------------------------------------------- units

def test_image_generation_priced_per_image_and_per_second():
    """The seed case: an image-generation start-up's log, priced per image (and per video second) by its own table."""
    import csv

    prices = {(r["provider"], r["model"]): r for r in csv.DictReader((EXAMPLES / "images" / "image_prices.csv").open())}
    expect, bad = 0, 0
    for r in csv.DictReader((EXAMPLES / "images" / "image_generations.csv").open()):
        p = prices.get((r["provider"], r["model"]))
        if p is None:
            bad += 1
            continue
        if r["images"]:
            expect += int(r["images"]) * rnd(Decimal(p["usd_per_image"]) * 1_000_000)
        if r["seconds"]:
            expect += int(r["seconds"]) * rnd(Decimal(p["usd_per_second"]) * 1_000_000)
    assert expect == (4 + 1 + 2) * 50_000 + 8 * 3_000 + 6 * 120_000
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "u.duckdb")
        res = usage.ingest([str(EXAMPLES / "images" / "image_generations.csv")], db, prices_csv=str(EXAMPLES / "images" / "image_prices.csv"),
                           mapping={"images": "images_generated", "seconds": "seconds_generated"})
        assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (6, 6 - bad, bad)
        assert res.total_micro_usd == expect
        assert list(res.quarantine_reasons) == ["no price for model sdxl-turbo (provider fal)"]
        rows = ledger_rows(db)
        assert sum(r["usd_micro_images"] for r in rows) == 7 * 50_000 + 8 * 3_000
        assert sum(r["usd_micro_seconds"] for r in rows) == 6 * 120_000
        assert {r["images_generated"] for r in rows if r["model"] == "flux-schnell"} == {8}


def test_whatif_reprices_a_unit_priced_at_the_readers_cap(tmp_path):
    """A per-unit price at the readers' cap ($1,000 per image): ``usage whatif --cache-hit-rate`` re-prices every
    row with the decimal formula, whose micro-dollar price overflowed decimal(18, 9) there (an internal error, exit
    1). Image rows have no input tokens, so the what-if total is the measured one: 3 x $1,000 + 2 x $999.999999."""
    f = tmp_path / "img.csv"
    f.write_text("timestamp,model,provider,images_generated\n2025-10-01T00:00:00Z,flux-pro,fal,3\n"
                 "2025-10-01T00:00:00Z,flux-max,fal,2\n")
    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,usd_per_image\nfal,flux-pro,1000\nfal,flux-max,999.999999\n")
    db = str(tmp_path / "u.duckdb")
    expect = 3 * 1_000 * 10**6 + 2 * 999_999_999
    assert usage.ingest([str(f)], db, prices_csv=str(prices)).total_micro_usd == expect
    wi = usage.whatif(db, cache_hit_rate=0.5, prices_csv=str(prices))
    assert wi.baseline_micro_usd == wi.whatif_micro_usd == expect


def test_per_image_row_without_a_per_image_price_is_quarantined(tmp_path):
    f = tmp_path / "img.csv"
    f.write_text("timestamp,model,provider,images_generated\n2025-10-01T00:00:00Z,gpt-4o,openai,2\n"
                 "2025-10-01T00:00:00Z,flux-pro,fal,1\n")
    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,usd_per_image\nfal,flux-pro,0.05\n")
    res = usage.ingest([str(f)], str(tmp_path / "u.duckdb"), prices_csv=str(prices))
    assert res.total_micro_usd == 50_000
    assert list(res.quarantine_reasons) == ["no price for images_generated (model gpt-4o)"]


def test_audio_tokens_priced_from_genai_prices_and_quarantined_without_a_price(tmp_path):
    items = [
        openai_chat("rt", "gpt-realtime", 10_000, 4_000, cached=1_000, pd={"audio_tokens": 6_000}, cd={"audio_tokens": 3_000}),
        openai_chat("4o", "gpt-4o", 10_000, 4_000, pd={"audio_tokens": 6_000}),  # gpt-4o has no audio price
    ]
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([raw(tmp_path / "a.jsonl", items)], db)
    q = api_prices.quote("gpt-realtime", "openai", DAY)
    assert (q.input_audio_mtok, q.output_audio_mtok) == (Decimal(32), Decimal(64))
    expect = (rnd((10_000 - 1_000 - 6_000) * q.input_mtok) + rnd(1_000 * q.cache_read_mtok) + rnd((4_000 - 3_000) * q.output_mtok)
              + rnd(6_000 * q.input_audio_mtok) + rnd(3_000 * q.output_audio_mtok))
    assert res.total_micro_usd == expect
    row = ledger_rows(db)[0]
    assert (row["input_audio_tokens"], row["output_audio_tokens"], row["usd_micro_audio"]) == (6_000, 3_000, 6_000 * 32 + 3_000 * 64)
    assert list(res.quarantine_reasons) == ["no price for input_audio_tokens (model gpt-4o)"]


def test_image_tokens_and_gemini_modalities(tmp_path):
    gemini = {"ts": "2025-10-01T12:00:00Z", "response": {"responseId": "g", "modelVersion": "gemini-2.5-flash", "usageMetadata": {
        "promptTokenCount": 2_000, "candidatesTokenCount": 300, "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 700}, {"modality": "IMAGE", "tokenCount": 500}, {"modality": "AUDIO", "tokenCount": 800}]}}}
    img = {"ts": "2025-10-01T12:00:00Z", "provider": "openai", "response": {"id": "img", "created": 0, "model": "gpt-image-1", "data": [{"b64_json": "..."}],
           "usage": {"input_tokens": 300, "output_tokens": 4_160, "input_tokens_details": {"text_tokens": 100, "image_tokens": 200}}}}
    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok,output_image_usd_per_mtok\nopenai,gpt-image-1,5,10,40\n")
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([raw(tmp_path / "m.jsonl", [gemini, img])], db, prices_csv=str(prices))
    g = api_prices.quote("gemini-2.5-flash", "google", DAY)
    # Gemini: image input at the text input price (no image price), audio at the audio price
    g_micro = rnd(700 * g.input_mtok) + rnd(500 * g.input_mtok) + rnd(800 * g.input_audio_mtok) + rnd(300 * g.output_mtok)
    # gpt-image-1 (user table): image input tokens at the input price (no input image price given), output image tokens at $40/M
    i_micro = rnd(100 * Decimal(5)) + rnd(200 * Decimal(5)) + rnd(4_160 * Decimal(40))
    assert res.rows_quarantined == 0 and res.total_micro_usd == g_micro + i_micro
    rows = {r["model"]: r for r in ledger_rows(db)}
    assert (rows["gemini-2.5-flash"]["input_image_tokens"], rows["gemini-2.5-flash"]["input_audio_tokens"]) == (500, 800)
    assert rows["gpt-image-1"]["output_image_tokens"] == 4_160


def test_csv_map_targets_tier_and_units(tmp_path):
    f = tmp_path / "u.csv"
    f.write_text("timestamp,model,provider,in,out,tier,searches\n"
                 "2025-10-01T00:00:00Z,claude-sonnet-4-5,anthropic,1000,100,Batch,2\n"
                 "2025-10-01T00:00:00Z,claude-sonnet-4-5,anthropic,1000,100,,\n")
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(f)], db, mapping={"in": "input_tokens", "out": "output_tokens", "tier": "service_tier", "searches": "web_search_calls"})
    q = api_prices.quote("claude-sonnet-4-5", "anthropic", DAY)
    # web searches are multiplied too ("all" components): the catalog row names no exception
    assert res.total_micro_usd == token_micro(q, 1000, 100, m="0.5") + 2 * rnd(times(q.usd_per_web_search, "0.5") * 1_000_000) + token_micro(q, 1000, 100)
    assert sorted(r["service_tier"] or "" for r in ledger_rows(db)) == ["", "batch"]


def test_per_request_fees_are_read_from_genai_prices(tmp_path):
    """Perplexity Sonar bills per thousand requests (genai-prices ``requests_kcount``) on top of its tokens."""
    items = [{"ts": "2025-10-01T12:00:00Z", "provider": "perplexity",
              "response": {"id": "s", "model": "sonar", "usage": {"prompt_tokens": 1_000, "completion_tokens": 200}}}]
    res = usage.ingest([raw(tmp_path / "s.jsonl", items)], str(tmp_path / "u.duckdb"))
    q = api_prices.quote("sonar", "perplexity", DAY)
    assert q.requests_kpr is not None and q.requests_kpr > 0
    assert res.total_micro_usd == token_micro(q, 1_000, 200) + rnd(q.requests_kpr * 1000)


def test_unit_counts_are_validated():
    with pytest.raises(R.RowError, match="image and audio tokens exceed uncached input tokens"):
        R.make_record(row_key="k", row_index=0, ts="2025-10-01T00:00:00Z", provider="openai", model="m", input_tokens=10,
                      output_tokens=1, cache_read_tokens=5, input_audio_tokens=6)
    with pytest.raises(R.RowError, match="images_generated out of range"):
        R.make_record(row_key="k", row_index=0, ts="2025-10-01T00:00:00Z", provider="x", model="m", images_generated=10**10)
    rec = R.make_record(row_key="k", row_index=0, ts="2025-10-01T00:00:00Z", provider="x", model="m", images_generated=3)
    assert (rec["input_tokens"], rec["output_tokens"], rec["images_generated"]) == (0, 0, 3)


# --------------------------------------------------------------------------------------------- old ledgers

def _old(schema: pa.Schema) -> pa.Schema:
    added = {"service_tier", *UNIT_FIELDS, *UNIT_COST_FIELDS}
    return pa.schema([f for f in schema if f.name not in added])


def test_old_ledger_gains_the_columns(tmp_path):
    db = str(tmp_path / "old.duckdb")
    con = duckdb.connect(db)
    for name, schema in (("ledger", LEDGER), ("quarantine", QUARANTINE), ("files", E.FILES)):
        empty = _old(schema).empty_table()  # noqa: F841 - read by DuckDB's replacement scan
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM empty")
    con.close()
    items = [openai_chat("x", "gpt-4.1", 1000, 100, tier="flex")]
    res = usage.ingest([raw(tmp_path / "r.jsonl", items)], db)
    q = api_prices.quote("gpt-4.1", "openai", DAY)
    assert res.total_micro_usd == token_micro(q, 1000, 100, m="0.5")
    con = duckdb.connect(db, read_only=True)
    cols = [r[0] for r in con.execute("DESCRIBE ledger").fetchall()]
    con.close()
    assert cols[-len(UNIT_COST_FIELDS) - len(UNIT_FIELDS) - 1:] == ["service_tier", *UNIT_FIELDS, *UNIT_COST_FIELDS]
    assert usage.report(db, "model").rows[0]["usd"] == pytest.approx(res.total_micro_usd / 1e6)


# --------------------------------------------------------------------------------------------- Spark

@pytest.mark.spark
@pytest.mark.slow
def test_duckdb_and_spark_agree_on_tiers_and_units(tmp_path):
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("PySpark needs Java (java not on PATH)")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("BILLSHAPE_SPARK_MASTER", "local[1]")
    os.environ.setdefault("BILLSHAPE_SPARK_PARTITIONS", "2")
    items = [
        openai_chat("flex", "gpt-4.1", 100_000, 20_000, tier="flex", cached=30_000),
        openai_chat("prio", "gpt-4.1", 100_000, 20_000, tier="priority"),
        openai_chat("scale", "gpt-4.1", 100, 20, tier="scale"),
        openai_chat("rt", "gpt-realtime", 10_000, 4_000, cached=1_000, pd={"audio_tokens": 6_000}, cd={"audio_tokens": 3_000}),
        anthropic_msg("long", "claude-sonnet-4-5", 250_000, 3_000, tier="batch"),
        anthropic_msg("search", "claude-sonnet-4-5", 5_000, 500, searches=3),
    ]
    from test_usage_cache_1h import _logs  # Anthropic 1-hour cache writes, and a CSV of them without request ids

    (tmp_path / "h1").mkdir()
    files = [raw(tmp_path / "r.jsonl", items), str(EXAMPLES / "images" / "image_generations.csv"), *_logs(tmp_path / "h1")]
    kw = {"prices_csv": str(EXAMPLES / "images" / "image_prices.csv"), "mapping": {"images": "images_generated", "seconds": "seconds_generated"}}
    a = usage.ingest(files, str(tmp_path / "u.duckdb"), **kw)
    b = usage.ingest(files, str(tmp_path / "u.spark"), engine="spark", **kw)
    assert a.total_micro_usd == b.total_micro_usd and a.total_micro_usd > 0
    assert (a.rows_priced, a.rows_quarantined, a.quarantine_reasons) == (b.rows_priced, b.rows_quarantined, b.quarantine_reasons)
    ra = sorted(usage.report(str(tmp_path / "u.duckdb"), "model").rows, key=lambda r: r["key"])
    rb = sorted(usage.report(str(tmp_path / "u.spark"), "model", engine="spark").rows, key=lambda r: r["key"])
    assert ra == rb
    # row by row: the same keys (content keys hash the 1-hour part where non-zero) and the same costs
    cols = ("row_key", "cache_write_1h_tokens", *UNIT_COST_FIELDS, "usd_micro_cache_write", "usd_micro")
    duck = sorted(tuple(r[c] for c in cols) for r in ledger_rows(str(tmp_path / "u.duckdb")))
    store = E.open_store(str(tmp_path / "u.spark"), "spark", read_only=True)
    try:
        spark = sorted(tuple(r[c] for c in cols) for r in store.frame(store.table("ledger").select(*cols)).to_pylist())
    finally:
        store.close()
    assert spark == duck
    assert sum(1 for r in duck if r[1]) >= 3 and sum(1 for r in duck if r[0].startswith("row:")) == 2


def test_focus_exports_carry_the_unit_and_modality_costs(tmp_path):
    """FOCUS 1.2 and 1.3 BilledCost add up to the ledger's total when rows carry images, seconds, audio and image
    tokens and web searches: each unit term is its own charge row (Images, Seconds, Searches, image/audio tokens),
    and the text-token rows count only the text tokens."""
    from billshape.usage.focus import focus13_table, focus_table

    items = [anthropic_msg("search", "claude-sonnet-4-5", 5_000, 500, searches=3)]
    files = [raw(tmp_path / "r.jsonl", items), str(EXAMPLES / "images" / "image_generations.csv")]
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest(files, db, prices_csv=str(EXAMPLES / "images" / "image_prices.csv"),
                       mapping={"images": "images_generated", "seconds": "seconds_generated"})
    for table in (focus_table(db), focus13_table(db)):
        micro = sum(table.column("x_BilledCostMicroUsd").to_pylist())
        assert micro == res.total_micro_usd
        units = set(table.column("PricingUnit").to_pylist())
        assert {"Images", "Seconds", "Searches"} <= units
