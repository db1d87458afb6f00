"""The rest of the whole bill (issue 14): long-context rows, LiteLLM media rows, the ingest text table, whatif's
tier look-up, reconcile causes read from the quarantine, one OpenAI cost reader, --snapshot/--max-age-days on the
usage verbs. Each test recomputes its figures from the files with the documented rules."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

from billshape import usage

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
CONNECTORS = EXAMPLES / "connectors"


def ledger_rows(db) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select * from ledger order by source_file, row_index").to_arrow_table().to_pylist()
    finally:
        con.close()


def quarantine_reasons(db) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("select row_key, reason from quarantine").fetchall())
    finally:
        con.close()


def micro(tokens: int, usd_per_mtok: str) -> int:
    return int((Decimal(tokens) * Decimal(usd_per_mtok)).to_integral_value(rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------------------------- the text table

def test_ingest_table_shows_rows_already_present_and_rekeyed(cli, tmp_path):
    """The JSON had ``rows_already_present`` and ``rows_rekeyed``; the table now shows both."""
    log = tmp_path / "a.csv"
    log.write_text("timestamp,model,input_tokens,output_tokens\n2025-06-01T00:00:00Z,gpt-4o-mini,100,10\n"
                   "2025-06-01T00:01:00Z,gpt-4o-mini,200,20\n")
    db = tmp_path / "u.duckdb"
    assert cli("usage", "ingest", log, "--db", db).code == 0
    log2 = tmp_path / "b.csv"  # the same two rows and a new one: a corrected copy
    log2.write_text(log.read_text() + "2025-06-01T00:02:00Z,gpt-4o-mini,300,30\n")
    res = cli("usage", "ingest", log2, "--db", db)
    assert res.code == 0, res.err
    line = next(ln for ln in res.out.splitlines() if "rows already present" in ln)
    assert line.rstrip(" │").endswith("2")
    assert "re-keyed" in res.out


# --------------------------------------------------------------------------------------------- one OpenAI cost reader

def test_one_openai_cost_reader_for_json_and_csv():
    """The Costs API JSON and the dashboard CSV go through one reader and give the same lines."""
    import importlib

    R = importlib.import_module("billshape.usage.reconcile")

    assert not hasattr(R, "read_openai_costs_csv")
    doc = json.loads((EXAMPLES / "invoices" / "openai_costs.json").read_text())
    from_json = R.read_openai_costs(doc, "o.json")
    rows = ["start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,line_item,project_id"]
    for b in doc["data"]:
        for r in b.get("results") or []:
            rows.append(f"{b['start_time']},{b['end_time']},,,{r['amount']['value']},{r['amount']['currency']},"
                        f"\"{r.get('line_item') or ''}\",{r.get('project_id') or ''}")
        if not b.get("results"):
            rows.append(f"{b['start_time']},{b['end_time']},,,,,,")
    from_csv = R.read_openai_costs("\n".join(rows) + "\n", "o.csv")
    assert from_json.format == "openai-costs" and from_csv.format == "openai-costs-csv"
    assert from_json.lines == from_csv.lines and from_json.days == from_csv.days and len(from_json.lines) > 3
    total = sum(Decimal(str(r["amount"]["value"])) for b in doc["data"] for r in b.get("results") or [])
    assert sum(line.micro_usd for line in from_json.lines) == int((total * 10**6).to_integral_value(rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------------------------- tier look-up key

def _chat(rid, model, inp, out, tier=None, ts="2025-10-01T12:00:00Z"):
    body = {"id": rid, "object": "chat.completion", "created": 0, "model": model,
            "usage": {"prompt_tokens": inp, "completion_tokens": out}}
    if tier is not None:
        body["service_tier"] = tier
    return {"ts": ts, "provider": "openai", "response": body}


def _write_jsonl(path: Path, items) -> str:
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return str(path)


def _times(price, m) -> Decimal:
    return (Decimal(price) * Decimal(m)).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)


def test_priority_multiplier_is_found_by_the_pricing_key_at_ingest_and_in_whatif(tmp_path):
    """``gpt-4o-2024-08-06`` is ``openai/gpt-4o`` to genai-prices; the catalog's priority row is ``gpt-4o`` (1.7x):
    the row is priced at 1.7x (it was quarantined as an unknown tier). A what-if route of its requests to
    ``gpt-4.1-2025-04-14`` takes gpt-4.1's priority multiplier (1.75x, not the FROM model's 1.7x)."""
    import datetime as dt

    from billshape import api_prices

    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([_write_jsonl(tmp_path / "r.jsonl", [_chat("p1", "gpt-4o-2024-08-06", 100_000, 20_000, "priority"),
                                                              _chat("s1", "gpt-4o-2024-08-06", 100_000, 20_000)])], db)
    q = api_prices.quote("gpt-4o", "openai", dt.date(2025, 10, 1))
    prio = micro(100_000, _times(q.input_mtok, "1.7")) + micro(20_000, _times(q.output_mtok, "1.7"))
    std = micro(100_000, q.input_mtok) + micro(20_000, q.output_mtok)
    assert res.rows_quarantined == 0 and res.total_micro_usd == prio + std
    q41 = api_prices.quote("gpt-4.1", "openai", dt.date(2025, 10, 1))
    to_prio = micro(100_000, _times(q41.input_mtok, "1.75")) + micro(20_000, _times(q41.output_mtok, "1.75"))
    to_std = micro(100_000, q41.input_mtok) + micro(20_000, q41.output_mtok)
    wi = usage.whatif(db, ["gpt-4o-2024-08-06:1->gpt-4.1-2025-04-14"])
    assert wi.whatif_micro_usd == to_prio + to_std
    assert wi.routes[0]["to_usd_if_all"] == (to_prio + to_std) / 1e6


# --------------------------------------------------------------------------------------------- long context

def _anthropic_msg(rid, model, inp, out, cr=0, tier=None):
    u = {"input_tokens": inp - cr, "output_tokens": out, "cache_read_input_tokens": cr, "cache_creation_input_tokens": 0}
    if tier:
        u["service_tier"] = tier
    return {"ts": "2025-10-01T12:00:00Z", "provider": "anthropic",
            "response": {"id": rid, "type": "message", "model": model, "usage": u}}


def test_sonnet_4_request_over_200k_is_priced_at_long_context_rates(tmp_path):
    """genai-prices 0.2.3 has no long-context tier for Claude Sonnet 4: a request over 200K input tokens was priced
    at $3/$15; Anthropic bills it at $6 in, $22.50 out, $0.60 cache reads (service_tiers.csv standard_long_context,
    constants.csv anthropic_long_context_threshold_tokens). At 200K exactly it stays at the base rates."""
    db = str(tmp_path / "u.duckdb")
    items = [_anthropic_msg("long", "claude-sonnet-4-20250514", 250_000, 3_000, cr=50_000),
             _anthropic_msg("edge", "claude-sonnet-4-20250514", 200_000, 3_000),
             _anthropic_msg("batch", "claude-sonnet-4-20250514", 250_000, 3_000, tier="batch")]
    res = usage.ingest([_write_jsonl(tmp_path / "r.jsonl", items)], db)
    rows = {r["row_key"]: r for r in ledger_rows(db)}
    assert res.rows_quarantined == 0
    assert rows["raw:long"]["usd_micro"] == micro(200_000, "6") + micro(50_000, "0.6") + micro(3_000, "22.5")
    assert rows["raw:edge"]["usd_micro"] == micro(200_000, "3") + micro(3_000, "15")
    assert rows["raw:batch"]["usd_micro"] == micro(250_000, "3") + micro(3_000, "11.25")


def _usage_report(results) -> dict:
    return {"data": [{"starting_at": "2025-06-03T00:00:00Z", "ending_at": "2025-06-04T00:00:00Z", "results": results}],
            "has_more": False, "next_page": None}


def _long_row(tier, uncached=1_450_000, cr=100_000, out=18_400):
    return {"uncached_input_tokens": uncached, "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
            "cache_read_input_tokens": cr, "output_tokens": out, "server_tool_use": {"web_search_requests": 0},
            "workspace_id": tier, "model": "claude-sonnet-4-20250514", "service_tier": tier, "context_window": "200k-1M"}


def test_anthropic_usage_report_long_context_rows_are_priced(tmp_path):
    """A 200k-1M row holds only requests over 200K: priced at 2x input and cache, 1.5x output (x 0.5 in batch);
    it was quarantined. A tier without a long-context row (priority) is quarantined as an unknown tier."""
    f = tmp_path / "rep.json"
    f.write_text(json.dumps(_usage_report([_long_row("standard"), _long_row("batch"), _long_row("priority")])))
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(f)], db)
    got = {r["service_tier"]: r["usd_micro"] for r in ledger_rows(db)}
    assert got == {"standard_long_context": micro(1_450_000, "6") + micro(100_000, "0.6") + micro(18_400, "22.5"),
                   "batch_long_context": micro(1_450_000, "3") + micro(100_000, "0.3") + micro(18_400, "11.25")}
    assert res.rows_read == 3 and res.rows_priced == 2
    assert list(res.quarantine_reasons) == ["unknown service tier priority_long_context for provider anthropic and model "
                                            "claude-sonnet-4-20250514 (no row in service_tiers.csv)"]


def test_long_context_line_of_the_sample_cost_report_reconciles(tmp_path):
    """The shipped usage report's long-context row prices to the cost report's two long-context lines ($8.70 + $0.414)."""
    db = str(tmp_path / "u.duckdb")
    usage.ingest([str(CONNECTORS / "anthropic_usage_report.json")], db)
    rec = usage.reconcile(db, str(CONNECTORS / "anthropic_cost_report.json"))
    line = next(r for r in rec.lines if r["service_tier"] == "standard_long_context")
    assert (line["invoice_micro_usd"], line["ledger_micro_usd"], line["likely_cause"]) == (9_114_000, 9_114_000, "matched")
    cost = json.loads((CONNECTORS / "anthropic_cost_report.json").read_text())
    long_cents = sum(Decimal(r["amount"]) for b in cost["data"] for r in b["results"] if r.get("context_window") == "200k-1M")
    assert long_cents * 10_000 == 9_114_000


# --------------------------------------------------------------------------------------------- LiteLLM media rows

def test_litellm_image_and_audio_rows_are_counted_and_priced(tmp_path):
    """The shipped SpendLogs sample: dall-e-3 (no tokens, the stored request's n = 1) counts 1 image, priced by a user
    table at $0.04 per image; gpt-image-1 is priced by its tokens (48 text + 12 image input, 4,160 image output);
    whisper-1 (billed per minute of audio, no tokens logged) is quarantined with its reason. All were quarantined."""
    import datetime as dt

    from billshape import api_prices

    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok,usd_per_image,source,as_of\n"
                      "openai,dall-e-3,,,0.04,OpenAI pricing: DALL-E 3 standard 1024x1024 $0.04 per image,2025-06-01\n")
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(CONNECTORS / "litellm_spend_logs.json")], db, prices_csv=str(prices))
    rows = {r["row_key"]: r for r in ledger_rows(db)}
    img = rows["litellm:img-Bd51Hh8"]
    assert (img["images_generated"], img["input_tokens"], img["usd_micro"], img["reported_usd_micro"]) == (1, 0, 40_000, 40_000)
    q = api_prices.quote("gpt-image-1", "openai", dt.date(2025, 6, 2))
    gi = rows["litellm:img-Bd52Mm14"]
    assert gi["input_image_tokens"] == 12 and gi["images_generated"] == 0
    assert gi["usd_micro"] == micro(48, q.input_mtok) + micro(12, q.input_image_mtok) + micro(4160, q.output_mtok) == 166_760
    reasons = quarantine_reasons(db)
    assert reasons["litellm:tr-Bd53Nn15"] == "call type atranscription: billed per minute of audio (not a ledger unit)"
    assert "call type aimage_generation: not billed by tokens" not in res.quarantine_reasons
    assert res.rows_read == res.rows_priced + res.rows_quarantined


def test_litellm_image_row_without_a_stored_count_is_quarantined():
    from billshape.usage import connectors

    row = {"request_id": "x", "call_type": "aimage_generation", "spend": 0.04, "prompt_tokens": 0, "completion_tokens": 0,
           "startTime": "2025-06-02T14:10:00Z", "model": "dall-e-3", "custom_llm_provider": "openai", "metadata": {"status": "success"}}
    import pytest

    with pytest.raises(ValueError, match="no image count"):
        connectors.litellm_record(row)
    stored = connectors.litellm_record({**row, "response": json.dumps({"data": [{"url": "a"}, {"url": "b"}]})})
    assert stored["images_generated"] == 2


# --------------------------------------------------------------------------------------------- reconcile causes

def test_reconcile_names_unpriced_tier_from_the_quarantine(tmp_path):
    """Two invoice lines the ledger has no cost for, both of a non-standard tier: the one whose rows the ingest
    quarantined for their tier (``scale``: no catalog row) is ``unpriced tier``, with the quarantine's facts; the
    one with no rows at all (``batch`` of gpt-4o, never logged) is ``missing rows``. The old rule called both
    ``unpriced tier`` from the tier's name."""
    db = str(tmp_path / "u.duckdb")
    items = [_chat("s1", "gpt-4.1", 100_000, 20_000, "scale", ts="2025-10-01T10:00:00Z"),
             _chat("s2", "gpt-4.1", 50_000, 2_000, "scale", ts="2025-10-01T11:00:00Z"),
             _chat("d1", "gpt-4.1-2025-04-14", 10_000, 1_000, ts="2025-10-01T12:00:00Z")]
    res = usage.ingest([_write_jsonl(tmp_path / "r.jsonl", items)], db)
    assert res.rows_quarantined == 2
    std = ledger_rows(db)[0]["usd_micro"]
    day = 1759276800  # 2025-10-01T00:00:00Z
    doc = {"object": "page", "data": [{"object": "bucket", "start_time": day, "end_time": day + 86400, "results": [
        {"amount": {"value": str(Decimal(std) / 10**6), "currency": "usd"}, "line_item": "gpt-4.1-2025-04-14, input"},
        {"amount": {"value": "0.9", "currency": "usd"}, "line_item": "gpt-4.1-2025-04-14, scale tier"},
        {"amount": {"value": "0.4", "currency": "usd"}, "line_item": "gpt-4o-2024-08-06, batch"}]}]}
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps(doc))
    rec = usage.reconcile(db, str(inv))
    by = {(r["model"], r["service_tier"]): r for r in rec.lines}
    scale = by[("gpt-4-1", "scale")]
    assert scale["likely_cause"] == "unpriced tier" and scale["residual_micro_usd"] == 900_000
    assert scale["quarantined"] == {"unknown service tier scale for provider openai and model gpt-4.1 (no row in service_tiers.csv)": 2}
    batch = by[("gpt-4o", "batch")]
    assert batch["likely_cause"] == "missing rows" and batch["quarantined"] == {}
    assert by[("gpt-4-1", "standard")]["likely_cause"] == "matched"


# --------------------------------------------------------------------------------------------- --snapshot, --max-age-days

from test_snapshots import data_dir, refresh_args, server  # noqa: E402,F401  (the snapshot fixtures, shared)


def test_usage_verbs_take_snapshot_and_max_age_days(cli, server, data_dir, tmp_path, monkeypatch):  # noqa: F811
    """ingest, report, whatif, reconcile take --snapshot and --max-age-days: the ingest prices from the snapshot's
    genai-prices file (gpt-4.1-mini $0.20/$0.80 there, $0.40/$1.60 bundled) and says so (``snapshot``, a dated
    price source); a price data older than --max-age-days is a warning; bad values are one-line errors."""
    from conftest import assert_one_line_error

    import datetime as dt

    # a snapshot is dated by the clock when it is taken: price on that day (the fixture's fixed day would make
    # today's snapshot "dated after the pricing date")
    monkeypatch.setenv("BILLSHAPE_TODAY", dt.datetime.now(tz=dt.timezone.utc).date().isoformat())
    sid = cli(*refresh_args(server), "--json").json()["id"]
    snap_day = dt.date(int(sid[:4]), int(sid[4:6]), int(sid[6:8]))
    monkeypatch.setenv("BILLSHAPE_TODAY", snap_day.isoformat())
    log = tmp_path / "a.csv"
    log.write_text("request_id,timestamp,provider,model,input_tokens,output_tokens\nr1,2025-06-01T00:00:00Z,openai,gpt-4.1-mini,1000000,100000\n")
    db = tmp_path / "u.duckdb"
    js = cli("usage", "ingest", log, "--db", db, "--snapshot", sid, "--json").json()
    assert js["total_micro_usd"] == 200_000 + 80_000 and js["snapshot"] == sid
    src = next(a for a in js["assumptions"] if a["name"] == "price source")
    assert sid in src["source"] and src["as_of"] == f"{sid[:4]}-{sid[4:6]}-{sid[6:8]}", src
    assert "warnings" not in js, js["warnings"]
    shipped = cli("usage", "ingest", log, "--db", tmp_path / "v.duckdb", "--snapshot", "shipped", "--json").json()
    assert shipped["total_micro_usd"] == 400_000 + 160_000 and "snapshot" not in shipped
    monkeypatch.setenv("BILLSHAPE_TODAY", "2027-03-03")  # 90 days after the shipped price data (2026-12-03)
    wi = cli("usage", "whatif", "--db", db, "--cache-hit-rate", "0.5", "--max-age-days", "30", "--json").json()
    assert wi["warnings"] == ["stale: prices is 90 days old on 2027-03-03 (as_of 2026-12-03; prices go stale after 30 days)"]
    assert cli("usage", "whatif", "--db", db, "--cache-hit-rate", "0.5", "--json").json().get("warnings") is None  # 90 days: not over 90
    rep = cli("usage", "report", "--db", db, "--snapshot", sid, "--json").json()
    assert rep["snapshot"] == sid
    inv = EXAMPLES / "invoices" / "openai_costs.json"
    assert cli("usage", "reconcile", "--db", db, "--invoice", inv, "--snapshot", sid, "--json").json()["snapshot"] == sid
    text = cli("usage", "ingest", log, "--db", tmp_path / "w.duckdb", "--max-age-days", "10")
    assert text.code == 0 and "warning: stale: price source" in text.out
    for verb in (("ingest", log), ("report",), ("whatif", "--cache-hit-rate", "0.5"), ("reconcile", "--invoice", inv)):
        assert_one_line_error(cli("usage", *verb, "--db", db, "--max-age-days", "-1"), "--max-age-days")
        assert_one_line_error(cli("usage", *verb, "--db", db, "--snapshot", "nope"), "--snapshot")


def test_whatif_route_to_a_model_without_the_moved_rows_tier_is_an_error(tmp_path, cli):
    """Priority rows of gpt-4o moved to gpt-4o-mini (no priority row in the catalog) are not priced at gpt-4o-mini's
    standard price: one-line error naming the route."""
    from conftest import assert_one_line_error

    db = str(tmp_path / "u.duckdb")
    usage.ingest([_write_jsonl(tmp_path / "r.jsonl", [_chat("p1", "gpt-4o-2024-08-06", 1000, 100, "priority")])], db)
    res = cli("usage", "whatif", "--db", db, "--route", "gpt-4o-2024-08-06:0.5->gpt-4o-mini")
    assert_one_line_error(res, "--route")
    assert "no priority row for gpt-4o-mini" in res.err
