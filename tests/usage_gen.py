"""Generate usage logs with known totals (OTLP spans, OpenAI usage buckets, raw responses, CSV, Parquet),
including malformed rows: truncated JSON, wrong types, negative token counts, unknown models, duplicated
files, mixed formats. The expected money is computed here independently of billshape's engine, with
genai-prices' own Decimal arithmetic (``calc_price``) per row, and per component rounded to micro-dollars.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

MODELS = [  # (provider as logged, genai-prices provider, model)
    ("openai", "openai", "gpt-4o-mini"),
    ("openai", "openai", "gpt-4o"),
    ("anthropic", "anthropic", "claude-3-5-haiku-20241022"),
    ("gcp.gemini", "google", "gemini-2.0-flash"),
]
CUSTOMERS = ["acme", "globex", "initech", "umbrella"]
FEATURES = ["chat", "search", "summarise"]
START = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)


def _price(provider: str, model: str, when: dt.datetime):
    from genai_prices import data_snapshot

    _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
    return info.get_prices(when)


def _round(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_HALF_UP))


def expected_micro(provider: str, model: str, when: dt.datetime, inp: int, cr: int, cw: int, out: int, w1h: int = 0) -> int:
    """Integer micro-dollars, rounded per component like the ledger (inp includes cr and cw; ``w1h`` of the cw
    cache writes are Anthropic 1-hour writes: 2 x the base input price, Anthropic's prompt-caching pricing, each
    TTL rounded on its own)."""
    p = _price(provider, model, when)
    ip = Decimal(p.input_mtok)
    parts = [(inp - cr - cw) * ip, cr * Decimal(p.cache_read_mtok or ip), (cw - w1h) * Decimal(p.cache_write_mtok or ip),
             w1h * 2 * ip, out * Decimal(p.output_mtok)]
    return sum(_round(x) for x in parts)


def genai_total(provider: str, model: str, when: dt.datetime, inp: int, cr: int, cw: int, out: int) -> Decimal:
    """genai-prices' own total in USD (unrounded Decimal)."""
    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=inp, cache_read_tokens=cr, cache_write_tokens=cw, output_tokens=out)
    return calc_price(usage, model, provider_id=provider, genai_request_timestamp=when).total_price


class Expect:
    def __init__(self):
        self.rows_read = 0
        self.priced = 0
        self.quarantined = 0
        self.micro = 0
        self.genai_usd = Decimal(0)
        self.by_customer: dict[str, int] = defaultdict(int)
        self.by_model: dict[str, int] = defaultdict(int)
        self.requests = 0
        self.input_tokens = 0
        self.output_tokens = 0

    def good(self, gp, model, when, inp, cr, cw, out, customer, requests=1):
        m = expected_micro(gp, model, when, inp, cr, cw, out)
        self.rows_read += 1
        self.priced += 1
        self.micro += m
        self.genai_usd += genai_total(gp, model, when, inp, cr, cw, out)
        self.by_customer[customer or "(none)"] += m
        self.by_model[model] += m
        self.requests += requests
        self.input_tokens += inp
        self.output_tokens += out

    def bad(self, n=1):
        self.rows_read += n
        self.quarantined += n


def _attr(k, v):
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def make_logs(root: Path, n: int = 60, seed: int = 7) -> tuple[list[Path], Expect]:
    """Write a set of logs under ``root``; return their paths and what a correct ingest must report."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    e = Expect()
    files = []

    # 1. OTLP JSON lines: good spans + a negative count + an unknown model + a wrong type + a truncated line
    lines = []
    for i in range(n):
        logged, gp, model = MODELS[i % len(MODELS)]
        when = START + dt.timedelta(hours=rng.randrange(0, 24 * 20), seconds=rng.randrange(3600))
        inp = rng.randrange(100, 20000)
        cr = rng.randrange(0, inp // 2) if gp != "google" else 0
        cw = rng.randrange(0, inp // 4) if gp == "anthropic" else 0
        out = rng.randrange(1, 3000)
        cust, feat = rng.choice(CUSTOMERS), rng.choice(FEATURES)
        key = "gen_ai.provider.name" if i % 2 else "gen_ai.system"  # the older attribute too
        attrs = [_attr("gen_ai.operation.name", "chat"), _attr(key, logged), _attr("gen_ai.request.model", model),
                 _attr("gen_ai.usage.input_tokens", inp), _attr("gen_ai.usage.output_tokens", out),
                 _attr("gen_ai.usage.cache_read.input_tokens", cr), _attr("gen_ai.usage.cache_creation.input_tokens", cw),
                 _attr("customer", cust), _attr("feature", feat), _attr("user.id", f"u{i % 7}")]
        span = {"traceId": f"t{i}", "spanId": f"s{i}", "name": "chat", "startTimeUnixNano": str(int(when.timestamp() * 1e9)), "attributes": attrs}
        lines.append({"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "app")]}, "scopeSpans": [{"spans": [span]}]}]})
        e.good(gp, model, when, inp, cr, cw, out, cust)
    t0 = str(int(START.timestamp() * 1e9))
    bad_spans = [
        [_attr("gen_ai.system", "openai"), _attr("gen_ai.request.model", "gpt-4o"), _attr("gen_ai.usage.input_tokens", 10), _attr("gen_ai.usage.output_tokens", -3)],
        [_attr("gen_ai.system", "openai"), _attr("gen_ai.request.model", "no-such-model-xyz"), _attr("gen_ai.usage.input_tokens", 10), _attr("gen_ai.usage.output_tokens", 3)],
        [_attr("gen_ai.system", "openai"), _attr("gen_ai.request.model", "gpt-4o"), {"key": "gen_ai.usage.input_tokens", "value": {"stringValue": "ten"}}, _attr("gen_ai.usage.output_tokens", 3)],
    ]
    for j, attrs in enumerate(bad_spans):
        span = {"traceId": f"bad{j}", "spanId": f"b{j}", "startTimeUnixNano": t0, "attributes": attrs}
        lines.append({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
        e.bad()
    # an agent span (its usage repeats its children's) and a non-GenAI span: not usage rows
    lines.append({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "x", "spanId": "agent", "startTimeUnixNano": t0, "attributes": [_attr("gen_ai.operation.name", "invoke_agent"), _attr("gen_ai.usage.input_tokens", 5), _attr("gen_ai.usage.output_tokens", 5)]},
        {"traceId": "x", "spanId": "http", "startTimeUnixNano": t0, "attributes": [_attr("http.method", "GET")]}]}]}]})
    p = root / "spans.jsonl"
    text = "\n".join(json.dumps(line) for line in lines) + "\n"
    text += json.dumps(lines[0])[:-40] + "\n"  # truncated last line (a killed exporter)
    e.bad()
    p.write_text(text)
    files.append(p)

    # 2. OpenAI usage API buckets
    data = []
    for d in range(3):
        start = START + dt.timedelta(days=d)
        results = []
        for model in ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"):
            inp = rng.randrange(10_000, 2_000_000)
            cr = rng.randrange(0, inp // 2)
            out = rng.randrange(1_000, 400_000)
            nreq = rng.randrange(1, 2000)
            results.append({"object": "organization.usage.completions.result", "input_tokens": inp, "output_tokens": out,
                            "input_cached_tokens": cr, "num_model_requests": nreq, "project_id": "proj_a", "user_id": None,
                            "api_key_id": None, "model": model, "batch": False})
            e.good("openai", model, start, inp, cr, 0, out, None, requests=nreq)
        data.append({"object": "bucket", "start_time": int(start.timestamp()), "end_time": int(start.timestamp()) + 86400, "results": results})
    data[0]["results"].append({"object": "organization.usage.completions.result", "input_tokens": 5, "output_tokens": 5,
                               "input_cached_tokens": 9, "num_model_requests": 1, "model": "gpt-4o"})  # cached > input
    e.bad()
    p = root / "openai_usage.json"
    p.write_text(json.dumps({"object": "page", "data": data, "has_more": False}))
    files.append(p)

    # 3. raw provider responses (JSONL), mixed with one OTLP line (mixed formats in one file)
    raw_lines = []
    when = START + dt.timedelta(days=4, hours=3)
    raw_lines.append({"ts": when.isoformat(), "customer": "acme", "response": {"id": "chatcmpl-1", "model": "gpt-4o-mini", "usage": {
        "prompt_tokens": 3000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 2048}, "completion_tokens_details": {"reasoning_tokens": 0}}}})
    e.good("openai", "gpt-4o-mini", when, 3000, 2048, 0, 500, "acme")
    raw_lines.append({"ts": when.isoformat(), "customer": "globex", "response": {"id": "msg_1", "type": "message", "model": "claude-3-5-haiku-20241022",
        "usage": {"input_tokens": 100, "output_tokens": 400, "cache_read_input_tokens": 5000, "cache_creation_input_tokens": 1000}}})
    e.good("anthropic", "claude-3-5-haiku-20241022", when, 6100, 5000, 1000, 400, "globex")  # Anthropic: input excludes cache
    raw_lines.append({"ts": when.isoformat(), "customer": "initech", "response": {"modelVersion": "gemini-2.0-flash", "responseId": "g1", "usageMetadata": {
        "promptTokenCount": 4000, "cachedContentTokenCount": 1000, "candidatesTokenCount": 300, "thoughtsTokenCount": 200, "totalTokenCount": 4500}}})
    e.good("google", "gemini-2.0-flash", when, 4000, 1000, 0, 500, "initech")  # Gemini: thoughts billed as output
    raw_lines.append({"ts": when.isoformat(), "response": {"id": "chatcmpl-2", "model": "gpt-4o", "usage": {"prompt_tokens": "many", "completion_tokens": 1}}})
    e.bad()
    raw_lines.append(lines[1])  # an OTLP line in the raw file: read by its own format
    lines1_key = True
    p = root / "responses.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in raw_lines) + "\n")
    files.append(p)
    # the OTLP line duplicates span t1/s1 of spans.jsonl: quarantined as a duplicate row
    e.bad()
    assert lines1_key

    # 4. CSV with a mapped customer column, a bad row, an unknown model
    p = root / "requests.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "timestamp", "provider", "model", "tenant", "feature", "input_tokens", "output_tokens", "cache_read_tokens"])
        for i in range(n):
            _, gp, model = MODELS[i % len(MODELS)]
            when = START + dt.timedelta(days=5 + i % 9, minutes=i)
            inp, out = rng.randrange(10, 9000), rng.randrange(1, 900)
            cr = rng.randrange(0, inp) if gp == "openai" else 0
            cust = rng.choice(CUSTOMERS)
            w.writerow([f"csv{i}", when.strftime("%Y-%m-%dT%H:%M:%SZ"), gp, model, cust, "chat", inp, out, cr])
            e.good(gp, model, when, inp, cr, 0, out, cust)
        w.writerow(["csvbad1", "2025-03-05T00:00:00Z", "openai", "gpt-4o", "acme", "chat", "12.5", 1, 0])
        w.writerow(["csvbad2", "2025-03-05T00:00:00Z", "openai", "llama-private", "acme", "chat", 100, 1, 0])
        w.writerow(["csvbad3", "not a time", "openai", "gpt-4o", "acme", "chat", 100, 1, 0])
        e.bad(3)
    files.append(p)

    # 5. the same CSV content again under another name (a duplicated file): skipped, adds nothing
    dup = root / "requests_copy.csv"
    dup.write_bytes(p.read_bytes())
    files.append(dup)
    return files, e


# --------------------------------------------------------------------------------------------- fault corpus
# Clean rows and documents with known money, and the raw bytes of files with faults in them (invalid UTF-8,
# huge fields, BOMs, truncated JSON, empty files): tests/test_usage_faults.py. The expected totals are computed
# here from the generated rows, never from billshape's output.

CSV_HEADER = b"request_id,timestamp,provider,model,customer,feature,input_tokens,output_tokens,cache_read_tokens"


def _cached_price(provider: str, model: str, when: dt.datetime, _cache: dict = {}):  # noqa: B006 - a memo
    key = (provider, model, when.date())
    if key not in _cache:
        _cache[key] = _price(provider, model, when)
    return _cache[key]


def row_micro(provider: str, model: str, when: dt.datetime, inp: int, cr: int, cw: int, out: int) -> int:
    """:func:`expected_micro` with the price looked up once per (provider, model, day)."""
    p = _cached_price(provider, model, when)
    ip = Decimal(p.input_mtok)
    parts = [(inp - cr - cw) * ip, cr * Decimal(p.cache_read_mtok or ip), cw * Decimal(p.cache_write_mtok or ip), out * Decimal(p.output_mtok)]
    return sum(_round(x) for x in parts)


def fault_rows(n: int, seed: int = 11) -> list[dict]:
    """``n`` good usage rows (genai-prices provider ids; cache reads on OpenAI rows only)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        _, gp, model = MODELS[i % len(MODELS)]
        inp = rng.randrange(10, 9000)
        rows.append({"request_id": f"r{i}", "ts": START + dt.timedelta(days=i % 5, seconds=rng.randrange(86400)), "provider": gp,
                     "model": model, "customer": rng.choice(CUSTOMERS), "feature": rng.choice(FEATURES), "input_tokens": inp,
                     "output_tokens": rng.randrange(1, 900), "cache_read_tokens": rng.randrange(0, inp) if gp == "openai" else 0})
    return rows


def rows_micro(rows) -> int:
    """Integer micro-dollars of ``rows`` (each rounded per component, as the ledger does)."""
    return sum(row_micro(r["provider"], r["model"], r["ts"], r["input_tokens"], r["cache_read_tokens"], r.get("cache_write_tokens", 0),
                         r["output_tokens"]) for r in rows)


def csv_line(r: dict) -> bytes:
    return (f"{r['request_id']},{r['ts'].strftime('%Y-%m-%dT%H:%M:%SZ')},{r['provider']},{r['model']},{_csv_quote(r['customer'])},"
            f"{r['feature']},{r['input_tokens']},{r['output_tokens']},{r['cache_read_tokens']}").encode()


def _csv_quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\r\n') else value


def csv_file(rows, bad: dict[int, bytes] | None = None, *, bom: bool = False, newline: bytes = b"\n") -> bytes:
    """The bytes of a CSV of ``rows``; ``bad`` replaces the line of row position ``i`` by raw bytes (that row is
    then not a good row)."""
    bad = bad or {}
    lines = [CSV_HEADER] + [bad[i] if i in bad else csv_line(r) for i, r in enumerate(rows)]
    return (b"\xef\xbb\xbf" if bom else b"") + newline.join(lines) + newline


def otlp_span(r: dict, i: int) -> dict:
    """An OTel GenAI span for row ``r`` (OpenAI rows report cached input tokens)."""
    attrs = [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", r["provider"]), _attr("gen_ai.request.model", r["model"]),
             _attr("gen_ai.usage.input_tokens", r["input_tokens"]), _attr("gen_ai.usage.output_tokens", r["output_tokens"]),
             _attr("gen_ai.usage.cache_read.input_tokens", r["cache_read_tokens"]), _attr("customer", r["customer"])]
    return {"traceId": f"t{i}", "spanId": f"span{i:06d}", "name": "chat", "startTimeUnixNano": str(int(r["ts"].timestamp()) * 10**9),
            "attributes": attrs}


def otlp_doc(rows, per_scope: int = 50, first: int = 0) -> dict:
    """One ``ExportTraceServiceRequest`` holding a span per row (``per_scope`` spans per scope; span ids from
    ``first``)."""
    scopes = [{"scope": {"name": "gen"}, "spans": [otlp_span(r, i) for i, r in enumerate(rows[k:k + per_scope], start=first + k)]}
              for k in range(0, len(rows), per_scope)]
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", "app")]}, "scopeSpans": scopes}]}


def openai_rows(days: int, seed: int = 5) -> list[tuple[dt.datetime, dict]]:
    """(bucket start, result) pairs of an OpenAI usage page: two models a day."""
    rng = random.Random(seed)
    out = []
    for d in range(days):
        start = START + dt.timedelta(days=d)
        for model in ("gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06"):
            inp = rng.randrange(10_000, 2_000_000)
            out.append((start, {"object": "organization.usage.completions.result", "input_tokens": inp, "output_tokens": rng.randrange(1_000, 400_000),
                                "input_cached_tokens": rng.randrange(0, inp // 2), "num_model_requests": rng.randrange(1, 2000),
                                "project_id": "proj_a", "user_id": None, "api_key_id": None, "model": model, "batch": False}))
    return out


def openai_page(pairs) -> dict:
    buckets: dict = {}
    for start, res in pairs:
        buckets.setdefault(start, []).append(res)
    return {"object": "page", "data": [{"object": "bucket", "start_time": int(s.timestamp()), "end_time": int(s.timestamp()) + 86400, "results": rs}
                                       for s, rs in buckets.items()], "has_more": False}


def openai_micro(pairs) -> int:
    return sum(row_micro("openai", res["model"], start, res["input_tokens"], res["input_cached_tokens"], 0, res["output_tokens"]) for start, res in pairs)
