"""Connectors (billshape.usage.connectors): Anthropic Admin usage and cost reports, LiteLLM SpendLogs, Langfuse
observations, OTel spans with a cost attribute. Each shipped sample ingests with rows read = priced + quarantined;
the totals are recomputed here from the files, with genai-prices' own prices (usage_gen.expected_micro); the
reported cost column equals the source's cost."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billshape import usage
from billshape.usage import connectors as C
from billshape.usage import engine as E
from billshape.usage import readers as R
from billshape.usage.schema import LEDGER, QUARANTINE
from conftest import assert_one_line_error
from usage_gen import expected_micro

SAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage" / "connectors"
ANTHROPIC_USAGE = SAMPLES / "anthropic_usage_report.json"
ANTHROPIC_COST = SAMPLES / "anthropic_cost_report.json"
LITELLM_JSON = SAMPLES / "litellm_spend_logs.json"
LITELLM_CSV = SAMPLES / "litellm_spend_logs.csv"
LANGFUSE = SAMPLES / "langfuse_observations.json"
OTEL = SAMPLES / "otel_cost_spans.otlp.json"


def ts(text) -> dt.datetime:
    if isinstance(text, str) and text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1e9, tz=dt.timezone.utc)
    out = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return out if out.tzinfo else out.replace(tzinfo=dt.timezone.utc)


def micro(usd) -> int:
    """USD (a JSON number or text) to micro-dollars, rounded half up: the test's own conversion."""
    return int((Decimal(str(usd)) * 1_000_000).to_integral_value(rounding=ROUND_HALF_UP))


class Expect:
    """What a sample must give: rows read / priced / quarantined, ignored records, money, reported costs by row key."""

    def __init__(self):
        self.read = self.priced = self.quarantined = self.ignored = self.micro = 0
        self.reported: dict[str, int | None] = {}
        self.reasons: set[str] = set()

    def price(self, key, provider, model, when, inp, cr, cw, out, reported=None, w1h=0):
        self.read += 1
        self.priced += 1
        self.micro += expected_micro(provider, model, when, inp, cr, cw, out, w1h)
        self.reported[key] = reported

    def price_batch(self, provider, model, when, inp, cr, cw, out):
        """A batch-tier row: every token price halved (and rounded to 1e-9) before the per-component rounding."""
        from billshape import api_prices

        q = api_prices.quote(model, provider, when.date())
        half = lambda x: (Decimal(x) * Decimal("0.5")).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)  # noqa: E731
        ip = half(q.input_mtok)
        parts = [(inp - cr - cw) * ip, cr * (half(q.cache_read_mtok) if q.cache_read_mtok is not None else ip),
                 cw * (half(q.cache_write_mtok) if q.cache_write_mtok is not None else ip), out * half(q.output_mtok)]
        self.read += 1
        self.priced += 1
        self.micro += sum(int(x.to_integral_value(rounding=ROUND_HALF_UP)) for x in parts)

    def price_tier(self, provider, model, when, inp, cr, cw, out, mult):
        """A row at its tier's multipliers ``(input and cache, output)``, each price rounded to 1e-9 first."""
        from billshape import api_prices

        q = api_prices.quote(model, provider, when.date())
        m_in, m_out = (Decimal(x) for x in mult)
        at = lambda x, m: (Decimal(x) * m).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)  # noqa: E731
        ip = at(q.input_mtok, m_in)
        parts = [(inp - cr - cw) * ip, cr * (at(q.cache_read_mtok, m_in) if q.cache_read_mtok is not None else ip),
                 cw * (at(q.cache_write_mtok, m_in) if q.cache_write_mtok is not None else ip), out * at(q.output_mtok, m_out)]
        self.read += 1
        self.priced += 1
        self.micro += sum(int(x.to_integral_value(rounding=ROUND_HALF_UP)) for x in parts)

    def bad(self, reason):
        self.read += 1
        self.quarantined += 1
        self.reasons.add(reason)


# --- the expectations, read from the files with the documented rules ---------------------------------------------

def expect_anthropic_usage() -> Expect:
    e = Expect()
    page = json.loads(ANTHROPIC_USAGE.read_text())
    for bucket in page["data"]:
        for r in bucket["results"]:
            cc = r["cache_creation"]
            cw = cc["ephemeral_5m_input_tokens"] + cc["ephemeral_1h_input_tokens"]
            # 1-hour writes (2 x input) are priced below on standard short-context rows only: the sample has none elsewhere
            assert cc["ephemeral_1h_input_tokens"] == 0 or (r["service_tier"], r["context_window"]) == ("standard", "0-200k")
            if r["context_window"] == "200k-1M":  # every request over 200K: the standard_long_context tier (2x in, 1.5x out)
                e.price_tier("anthropic", r["model"], ts(bucket["starting_at"]), r["uncached_input_tokens"] + r["cache_read_input_tokens"] + cw,
                             r["cache_read_input_tokens"], cw, r["output_tokens"], {"standard": ("2", "1.5"), "batch": ("1", "0.75")}[r["service_tier"]])
            elif r["output_tokens"] < 0:
                e.bad("negative output_tokens")
            else:
                inp = r["uncached_input_tokens"] + r["cache_read_input_tokens"] + cw
                searches = (r.get("server_tool_use") or {}).get("web_search_requests") or 0
                if searches:  # web-search requests at genai-prices' price per thousand (x 0.5 in the batch tier)
                    from billshape import api_prices

                    q = api_prices.quote(r["model"], "anthropic", ts(bucket["starting_at"]).date())
                    if q.usd_per_web_search is None:
                        e.bad(f"no price for web_search_calls (model {r['model']})")
                        continue
                    m = Decimal("0.5") if r["service_tier"] == "batch" else Decimal(1)
                    per = (q.usd_per_web_search * m).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)
                    e.micro += searches * int((per * 1_000_000).to_integral_value(rounding=ROUND_HALF_UP))
                if r["service_tier"] == "batch":  # data/service_tiers.csv: Anthropic batch = half of every token price
                    e.price_batch("anthropic", r["model"], ts(bucket["starting_at"]), inp, r["cache_read_input_tokens"], cw, r["output_tokens"])
                else:
                    e.price(None, "anthropic", r["model"], ts(bucket["starting_at"]), inp, r["cache_read_input_tokens"], cw, r["output_tokens"],
                            w1h=cc["ephemeral_1h_input_tokens"])
    return e


LITELLM_PROVIDER = {"gemini": "google", "azure": "azure", "openai": "openai", "anthropic": "anthropic"}


def expect_litellm(rows: list[dict]) -> Expect:
    e = Expect()
    for r in rows:
        meta = r["metadata"] if isinstance(r["metadata"], dict) else json.loads(r["metadata"])
        if meta["status"] == "failure" or str(r["cache_hit"]) == "True":
            e.ignored += 1
            continue
        aux = meta["additional_usage_values"]
        cr = aux.get("cache_read_input_tokens") or aux.get("prompt_tokens_details", {}).get("cached_tokens", 0)
        cw = aux.get("cache_creation_input_tokens", 0)
        no_tokens = not int(r["prompt_tokens"] or 0) and not int(r["completion_tokens"] or 0) if str(r["prompt_tokens"]).isdigit() else False
        stored = r.get("proxy_server_request")
        stored = json.loads(stored) if isinstance(stored, str) and stored else stored
        if "image" in r["call_type"] and no_tokens:  # per image: counted from the stored request; dall-e-3 has no price
            e.bad("no price for model dall-e-3 (provider openai)" if stored else "call type aimage_generation: no image count (neither the "
                  "response nor the request is stored)")
        elif "transcription" in r["call_type"] and no_tokens:
            e.bad("call type atranscription: billed per minute of audio (not a ledger unit)")
        elif r["call_type"] == "aimage_generation":  # gpt-image-1: text input, image input tokens, image output tokens
            from billshape import api_prices

            q = api_prices.quote(r["model"], "openai", ts(r["startTime"]).date())
            image_in = aux["prompt_tokens_details"]["image_tokens"]
            m = lambda n, p: int((n * p).to_integral_value(rounding=ROUND_HALF_UP))  # noqa: E731
            e.read += 1
            e.priced += 1
            e.micro += m(int(r["prompt_tokens"]) - image_in, q.input_mtok) + m(image_in, q.input_image_mtok) + m(int(r["completion_tokens"]), q.output_mtok)
            e.reported[f"litellm:{r['request_id']}"] = micro(r["spend"])
        elif not str(r["prompt_tokens"]).isdigit():
            e.bad(f"wrong type for prompt_tokens: {r['prompt_tokens']!r}")
        elif float(r["spend"]) < 0:
            e.bad("negative spend")
        elif r["model"].startswith("text-embedding"):
            e.bad("no token price for openai/text-embedding-3-small")
        else:
            e.price(f"litellm:{r['request_id']}", LITELLM_PROVIDER[r["custom_llm_provider"]], r["model"], ts(r["startTime"]),
                    int(r["prompt_tokens"]), cr, cw, int(r["completion_tokens"]), micro(r["spend"]))
    return e


def litellm_csv_rows() -> list[dict]:
    with LITELLM_CSV.open(newline="") as f:
        return list(csv.DictReader(f))


def expect_langfuse(observations: list[dict]) -> Expect:
    e = Expect()
    for o in observations:
        if o["type"] not in ("GENERATION", "EMBEDDING"):
            e.ignored += 1
            continue
        u = o["usageDetails"]
        inp = sum(v for k, v in u.items() if "input" in k)
        out = sum(v for k, v in u.items() if "output" in k)
        cr = sum(v for k, v in u.items() if k in ("input_cached_tokens", "cache_read_input_tokens"))
        cw = u.get("cache_creation_input_tokens", 0)
        if out < 0:
            e.bad("negative usageDetails.output")
        elif o["model"].startswith("text-embedding"):
            e.bad("no price for model text-embedding-3-small")
        else:
            e.price(f"langfuse:{o['id']}", None, o["model"], ts(o["startTime"]), inp, cr, cw, out,
                    micro(o["costDetails"]["total"]) if o["costDetails"] else None)
    return e


def expect_otel() -> Expect:
    e = Expect()
    doc = json.loads(OTEL.read_text())
    provider = {"openai": "openai", "anthropic": "anthropic", "gcp.gemini": "google"}
    for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        a = {x["key"]: next(iter(x["value"].values())) for x in s["attributes"]}
        cost = a.get("gen_ai.usage.cost", a.get("llm.cost.total"))
        if "langfuse.observation.cost_details" in a:
            cost = json.loads(a["langfuse.observation.cost_details"])["total"]
        if "gen_ai.usage.input_cost" in a:
            cost = None
            parts = micro(a["gen_ai.usage.input_cost"]) + micro(a["gen_ai.usage.output_cost"])
        if cost == "n/a":
            e.bad("wrong type for gen_ai.usage.cost: 'n/a'")
            continue
        reported = parts if "gen_ai.usage.input_cost" in a else (None if cost is None else micro(cost))
        cr = int(a.get("gen_ai.usage.cache_read.input_tokens", 0))
        e.price(f"otel:{s['traceId']}:{s['spanId']}", provider[a.get("gen_ai.provider.name", a.get("gen_ai.system"))],
                a.get("gen_ai.response.model", a["gen_ai.request.model"]), ts(s["startTimeUnixNano"]),
                int(a["gen_ai.usage.input_tokens"]), cr, 0, int(a["gen_ai.usage.output_tokens"]), reported)
    return e


CASES = {
    "anthropic-usage": (ANTHROPIC_USAGE, expect_anthropic_usage),
    "litellm-json": (LITELLM_JSON, lambda: expect_litellm(json.loads(LITELLM_JSON.read_text()))),
    "litellm-csv": (LITELLM_CSV, lambda: expect_litellm(litellm_csv_rows())),
    "langfuse": (LANGFUSE, lambda: expect_langfuse(json.loads(LANGFUSE.read_text())["data"])),
    "otel-cost": (OTEL, expect_otel),
}


def ledger(db: str, what: str = "row_key, reported_usd_micro") -> list[tuple]:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.sql(f"select {what} from ledger order by row_key").fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_sample_ingests_with_exact_totals_and_reported_costs(case, tmp_path):
    path, expect = CASES[case]
    e = expect()
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(path)], db)
    assert res.rows_read == res.rows_priced + res.rows_quarantined
    assert (res.rows_read, res.rows_priced, res.rows_quarantined, res.records_ignored) == (e.read, e.priced, e.quarantined, e.ignored)
    assert set(res.quarantine_reasons) == e.reasons  # every malformed record is quarantined with its reason
    assert res.total_micro_usd == e.micro
    rows = ledger(db)
    if case == "anthropic-usage":  # the usage report carries no cost
        assert [r for _, r in rows] == [None] * e.priced
    else:  # the reported cost column equals the source's cost, row by row
        assert dict(rows) == e.reported
    rep = usage.report(db, "model")
    assert rep.total_micro_usd == e.micro
    carried = {k: v for k, v in e.reported.items() if v is not None}
    if carried:
        assert rep.reported_cost["rows"] == len(carried)
        assert rep.reported_cost["reported_micro_usd"] == sum(carried.values())
    else:
        assert rep.reported_cost is None


def test_detection_picks_each_format():
    assert R.detect_format(str(LITELLM_CSV)) == "litellm"
    assert R.detect_format(str(SAMPLES.parent / "requests.csv")) == "csv"  # an ordinary CSV stays csv
    docs = {p.name: json.loads(p.read_text()) for p in SAMPLES.glob("*.json")}
    assert R.sniff(docs["anthropic_usage_report.json"]) == "anthropic-usage"
    assert R.sniff(docs["anthropic_cost_report.json"]) == "anthropic-cost"
    assert R.sniff(docs["litellm_spend_logs.json"]) == "litellm"  # a /spend/logs list
    assert R.sniff(docs["litellm_spend_logs.json"][0]) == "litellm"  # one row (JSON lines)
    assert R.sniff({"data": docs["litellm_spend_logs.json"], "total": 12, "page": 1, "page_size": 50, "total_pages": 1}) == "litellm"
    assert R.sniff(docs["langfuse_observations.json"]) == "langfuse"
    assert R.sniff(docs["otel_cost_spans.otlp.json"]) == "otel"
    # the existing formats keep theirs, an OpenAI page (even an empty one) is not an Anthropic page
    assert R.sniff(json.loads((SAMPLES.parent / "openai_usage.json").read_text())) == "openai"
    assert R.sniff({"object": "page", "data": [], "has_more": False, "next_page": None}) == "openai"
    assert R.sniff({"data": [], "has_more": False, "next_page": None}) == "anthropic-usage"  # an empty Anthropic page
    assert R.sniff(docs["anthropic_usage_report.json"]["data"][0]) == "anthropic-usage"  # one bucket (JSON lines)


def test_anthropic_cost_report_is_kept_for_reconciliation(tmp_path):
    lines = C.read_anthropic_cost(ANTHROPIC_COST.read_bytes())
    page = json.loads(ANTHROPIC_COST.read_text())
    amounts = [r["amount"] for b in page["data"] for r in b["results"]]
    assert len(lines) == len(amounts) == 27
    assert sum(x["usd_micro"] for x in lines) == sum(int(Decimal(a) * 10_000) for a in amounts)
    assert sum(x["usd"] for x in lines) == sum(Decimal(a) for a in amounts) / 100  # exact
    first = lines[0]
    assert first["currency"] == "USD" and first["day"] == dt.date(2025, 6, 2) and first["cost_type"] == "tokens"
    assert {x["cost_type"] for x in lines} == {"tokens", "web_search"}
    # an ingest reads no ledger rows from it: its lines are money, counted as records that are not usage rows
    res = usage.ingest([str(ANTHROPIC_COST)], str(tmp_path / "u.duckdb"))
    assert (res.rows_read, res.records_ignored, res.total_micro_usd) == (0, 27, 0)


def test_usage_report_reconciles_with_the_cost_report_line_by_line(tmp_path):
    """The usage-report sample, reconciled against the cost-report sample: every line matched to the cent, the
    web-search lines too (the report books them without a model, the ledger under the model that searched: their
    cost is moved to the invoice's web_search line, and out of the model's): each web_search line's ledger cost is
    the day's web-search amount in the cost report, to the cent."""
    db = str(tmp_path / "u.duckdb")
    usage.ingest([str(ANTHROPIC_USAGE)], db)
    res = usage.reconcile(db, str(ANTHROPIC_COST))
    assert {c: v["lines"] for c, v in res.causes.items()} == {"matched": 8} and res.residual_micro_usd == 0
    page = json.loads(ANTHROPIC_COST.read_text())
    invoiced = {b["starting_at"][:10]: sum(Decimal(r["amount"]) for r in b["results"] if r["cost_type"] == "web_search")
                for b in page["data"]}
    web = {r["day"]: r for r in res.lines if r["model"] == "web_search"}
    assert set(web) == {d for d, v in invoiced.items() if v} and len(web) == 2
    for day, line in web.items():
        assert Decimal(str(line["ledger_usd"])) == Decimal(str(line["invoice_usd"])) == invoiced[day] / 100
    # under a contract (15 % off every Anthropic line) each line, the web-search lines too, is at contracted cost
    from billshape.usage.contracts import contracted_micro_usd

    disc = usage.reconcile(db, str(ANTHROPIC_COST), contract=str(SAMPLES.parent / "invoices" / "contract.csv"))
    by_line = {(r["day"], r["model"], r["service_tier"]): r for r in res.lines}
    for r in disc.lines:
        listed = round(Decimal(str(by_line[(r["day"], r["model"], r["service_tier"])]["ledger_usd"])) * 10**6)
        assert round(Decimal(str(r["ledger_usd"])) * 10**6) == contracted_micro_usd(listed, "0.15")
    assert sum(1 for r in disc.lines if r["model"] == "web_search" and r["ledger_usd"] > 0) == 2


def test_malformed_cost_line_is_quarantined_and_refused_by_the_parser(tmp_path):
    page = json.loads(ANTHROPIC_COST.read_text())
    page["data"][1]["results"][2]["amount"] = "12,50"
    p = tmp_path / "cost.json"
    p.write_text(json.dumps(page))
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"), fmt="anthropic-cost")
    assert (res.rows_read, res.rows_quarantined, res.records_ignored) == (1, 1, 26)
    assert res.quarantine_reasons == {"cost report line: wrong type for amount: '12,50'": 1}
    with pytest.raises(ValueError, match="document 0 bucket 1 result 2: wrong type for amount"):
        C.read_anthropic_cost(p.read_bytes())
    with pytest.raises(ValueError, match="not an Anthropic cost report"):
        C.read_anthropic_cost(ANTHROPIC_USAGE.read_bytes())


def test_langfuse_csv_export_reads_like_the_json(tmp_path):
    obs = json.loads(LANGFUSE.read_text())["data"]
    cols = ["id", "traceId", "type", "name", "startTime", "endTime", "model", "usageDetails", "costDetails", "metadata", "userId"]
    p = tmp_path / "observations.csv"
    with p.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for o in obs:
            w.writerow([json.dumps(o[c]) if isinstance(o.get(c), (dict, list)) else ("" if o.get(c) is None else o[c]) for c in cols])
    assert R.detect_format(str(p)) == "langfuse"
    a = usage.ingest([str(LANGFUSE)], str(tmp_path / "a.duckdb"))
    b = usage.ingest([str(p)], str(tmp_path / "b.duckdb"))
    assert (b.rows_read, b.rows_priced, b.total_micro_usd, b.records_ignored) == (a.rows_read, a.rows_priced, a.total_micro_usd, a.records_ignored)
    assert ledger(str(tmp_path / "a.duckdb")) == ledger(str(tmp_path / "b.duckdb"))


def test_request_ids_are_the_row_keys(tmp_path):
    db = str(tmp_path / "u.duckdb")
    first = usage.ingest([str(LITELLM_JSON)], db)
    again = tmp_path / "again.jsonl"  # the same rows as JSON lines: another file, the same requests
    again.write_text("\n".join(json.dumps(r) for r in json.loads(LITELLM_JSON.read_text())) + "\n")
    second = usage.ingest([str(again)], db)
    assert second.rows_priced == 0 and second.quarantine_reasons.get("duplicate row (already ingested)") == first.rows_priced
    assert all(k.startswith("litellm:") for k, _ in ledger(db))


def test_dimensions_come_from_each_source(tmp_path):
    db = str(tmp_path / "u.duckdb")
    usage.ingest([str(LITELLM_JSON), str(ANTHROPIC_USAGE), str(LANGFUSE)], db)
    got = {k: (c, f, p, u) for k, c, f, p, u in ledger(db, "row_key, customer, feature, project, user_id")}
    assert got["litellm:msg_01XyZ4kLm3"] == ("globex", "chat", "team-support-5c1f", "u-omar")  # end_user, spend_logs_metadata, team
    assert got["langfuse:gen-7a3"] == ("acme", "support", None, "u-lena")  # metadata, userId
    workspaces = {p for k, (_, _, p, _) in got.items() if k.startswith("anthropic-usage:")}
    assert workspaces == {"wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "wrkspc_01Kq3Zt6Y2SUPPORTbotW8Rn"}  # workspace -> project
    mapped = usage.ingest([str(ANTHROPIC_USAGE)], str(tmp_path / "m.duckdb"), mapping={"api_key_id": "customer"})
    assert mapped.rows_priced == expect_anthropic_usage().priced
    assert {c for _, c in ledger(str(tmp_path / "m.duckdb"), "row_key, customer")} >= {"apikey_01Rj2N8SVvo6BePZj99NhmiT"}


def test_report_json_shows_the_reported_total_beside_ours(cli, tmp_path):
    db = str(tmp_path / "u.duckdb")
    cli("usage", "ingest", LITELLM_JSON, OTEL, ANTHROPIC_USAGE, "--db", db, "--json")
    out = cli("usage", "report", "--db", db, "--by", "model", "--json").json()
    e = expect_litellm(json.loads(LITELLM_JSON.read_text()))
    o = expect_otel()
    carried = {**{k: v for k, v in e.reported.items() if v is not None}, **{k: v for k, v in o.reported.items() if v is not None}}
    rc = out["reported_cost"]
    assert (rc["rows"], rc["reported_micro_usd"]) == (len(carried), sum(carried.values()))
    assert rc["reported_usd"] == float(Decimal(rc["reported_micro_usd"]) / 1_000_000)
    assert rc["micro_usd"] < out["total_micro_usd"]  # ours over the same rows; the Anthropic report rows carry no cost
    by_model = {r["key"]: r["reported_usd_micro"] for r in out["rows"]}
    assert by_model["claude-opus-4-20250514"] is None  # only the usage report has it
    assert {"key", "requests", "usd", "usd_micro"} <= set(out["rows"][0])  # the existing keys stay


def test_cli_format_choices_include_the_connectors(cli, tmp_path):
    db = str(tmp_path / "u.duckdb")
    res = cli("usage", "ingest", LITELLM_CSV, "--db", db, "--format", "litellm", "--json")
    assert res.code == 0 and res.json()["rows_priced"] == expect_litellm(litellm_csv_rows()).priced
    wrong = cli("usage", "ingest", LITELLM_JSON, "--db", db, "--format", "anthropic-usage", "--json").json()
    assert wrong["quarantine_reasons"] == {"litellm record in a file read as --format anthropic-usage": 1}
    assert_one_line_error(cli("usage", "ingest", LITELLM_JSON, "--db", db, "--format", "litelm"), "--format")


def test_an_old_ledger_opens_and_gains_the_column(tmp_path):
    db = str(tmp_path / "old.duckdb")
    con = duckdb.connect(db)
    for name, schema in (("ledger", LEDGER), ("quarantine", QUARANTINE), ("files", E.TABLES["files"])):
        # a database from before reported_usd_micro (and the columns added after it: service_tier, the units)
        cut = schema.names.index("reported_usd_micro") if "reported_usd_micro" in schema.names else len(schema)
        old = pa.schema(list(schema)[:cut]).empty_table()
        con.register("_old", old)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _old")
        con.unregister("_old")
    con.close()
    rep = usage.report(db)  # read-only: the column is absent, the report says nothing reported
    assert rep.rows == [] and rep.reported_cost is None
    res = usage.ingest([str(LITELLM_JSON)], db)
    cols = [r[0] for r in duckdb.connect(db, read_only=True).sql(
        "select column_name from information_schema.columns where table_name = 'ledger' order by ordinal_position").fetchall()]
    assert cols == LEDGER.names
    assert usage.report(db).reported_cost["rows"] == res.rows_priced


# --- units ---------------------------------------------------------------------------------------------------------

@given(st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False))
def test_usd_micro_is_exact_for_micro_dollar_amounts(amount):
    assert C.usd_micro(str(amount), "cost") == int(amount * 1_000_000)
    assert C.usd_micro(float(amount), "cost") == int((Decimal(repr(float(amount))) * 1_000_000).to_integral_value(rounding=ROUND_HALF_UP))


@pytest.mark.parametrize("value, reason", [("abc", "wrong type for cost: 'abc'"), (-0.01, "negative cost"), (float("nan"), "wrong type for cost"),
                                           (True, "wrong type for cost: bool"), (2e12, "cost out of range")])
def test_usd_micro_refuses_what_is_not_a_cost(value, reason):
    with pytest.raises(R.RowError, match=reason):
        C.usd_micro(value, "cost")


@pytest.mark.parametrize("attrs, expected", [
    ({"gen_ai.usage.cost": 0.0125}, 12_500),
    ({"llm.cost.total": "0.0125"}, 12_500),
    ({"langfuse.observation.cost_details": '{"input": 0.01, "output": 0.0025, "total": 0.0125}'}, 12_500),
    ({"langfuse.observation.cost_details": '{"input": 0.01, "output": 0.0025}'}, 12_500),
    ({"gen_ai.usage.input_cost": 0.01, "gen_ai.usage.output_cost": 0.0025}, 12_500),
    ({"gen_ai.usage.cost": 0.0125, "llm.cost.total": 99}, 12_500),  # the first name found wins
    ({"gen_ai.usage.input_tokens": 10}, None),
])
def test_otel_cost_attribute_names(attrs, expected):
    assert C.otel_reported_cost(attrs) == expected


def test_anthropic_usage_record_normalises_the_input():
    bucket = {"starting_at": "2025-06-02T00:00:00Z", "ending_at": "2025-06-03T00:00:00Z"}
    r = {"uncached_input_tokens": 100, "cache_read_input_tokens": 50, "output_tokens": 7, "model": "claude-sonnet-4-20250514",
         "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 5}}
    rec = C.anthropic_usage_record(r, bucket)
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["cache_write_tokens"], rec["output_tokens"], rec["requests"]) == (175, 50, 25, 7, 0)
    with pytest.raises(R.RowError, match="missing model"):
        C.anthropic_usage_record({**r, "model": None}, bucket)
    assert C.anthropic_usage_record({**r, "service_tier": "Priority"}, bucket)["service_tier"] == "priority"  # priced (or not) by the ledger


def test_litellm_anthropic_counts_below_the_cache_are_completed():
    """Older LiteLLM versions logged Anthropic's prompt_tokens without the cache: counts that cannot be a part of
    the input show it, and the cache is added (as for Anthropic's own usage)."""
    row = {"request_id": "r", "call_type": "acompletion", "startTime": "2025-06-02T10:00:00Z", "model": "claude-3-5-haiku-20241022",
           "custom_llm_provider": "anthropic", "prompt_tokens": 100, "completion_tokens": 5, "spend": 0.001,
           "metadata": {"additional_usage_values": {"cache_read_input_tokens": 900, "cache_creation_input_tokens": 50}}}
    rec = C.litellm_record(row)
    assert (rec["input_tokens"], rec["cache_read_tokens"], rec["cache_write_tokens"], rec["reported_usd_micro"]) == (1050, 900, 50, 1000)
    within = C.litellm_record({**row, "prompt_tokens": 1000})
    assert within["input_tokens"] == 1000
