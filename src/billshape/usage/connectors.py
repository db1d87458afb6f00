"""Connectors: readers for the places usage already lives, into the same records as :mod:`readers`.

Formats (``docs/usage.md``, section Connectors, cites the page each one follows)
-------------------------------------------------------------------------------
anthropic-usage
    Pages of the Anthropic Admin API messages usage report (``GET /v1/organizations/usage_report/messages``):
    time buckets (``starting_at``, ``ending_at``) of ``results`` with ``uncached_input_tokens``,
    ``cache_read_input_tokens``, ``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``,
    ``output_tokens`` and the grouping keys (``model``, ``service_tier``, ``context_window``, ``workspace_id``,
    ``api_key_id``...). One row per result; the report has no request count, so ``requests`` is 0.
anthropic-cost
    Pages of the Anthropic Admin API cost report (``GET /v1/organizations/cost_report``): money, not tokens.
    :func:`read_anthropic_cost` parses it for reconciliation; an ingest validates its lines (a malformed line is
    quarantined) and counts the good ones as records that are not usage rows (``records_ignored``).
litellm
    Rows of LiteLLM's ``LiteLLM_SpendLogs`` table: JSON (the proxy's ``/spend/logs`` list, a ``/spend/logs/v2``
    page, JSON lines) or a CSV export of the table. ``spend`` is kept as the reported cost.
langfuse
    Langfuse observations: a public API page (``{"data": [...], "meta": {...}}``), a JSON list or JSON lines
    (the UI export), or a CSV export. ``GENERATION`` and ``EMBEDDING`` observations are usage rows (other types
    are ignored); ``usageDetails`` keys containing ``input`` / ``output`` sum to the input / output, as Langfuse
    itself sums them. ``costDetails.total`` (else ``calculatedTotalCost``) is kept as the reported cost.

OTel spans stay on the ``otel`` format; :func:`otel_reported_cost` reads their cost attribute.

Row keys: the source's id where it has one (``litellm:<request_id>``, ``langfuse:<id>``, the report's bucket
and grouping coordinates); otherwise ``file hash : document : row``, as the other readers.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billshape._validate import MAX_USD_RATE
from billshape.usage.readers import Bad, Chunk, RowError, _Batcher, _dims, _int, _str, _ts, make_record
from billshape.usage.schema import DIMENSIONS, MAX_TOKENS_PER_ROW, MICRO

FORMATS = ("anthropic-usage", "anthropic-cost", "litellm", "langfuse")
#: Connector formats that also come as CSV exports.
TABLE_FORMATS = ("litellm", "langfuse")

#: Largest reported cost one row may carry [micro-dollars]: the ledger's own bound (10^12 tokens at the largest
#: accepted price, 10^6 USD per million tokens), inside int64.
MAX_REPORTED_USD_MICRO = MAX_TOKENS_PER_ROW * int(MAX_USD_RATE)

#: Grouping keys of an Anthropic usage-report result (they identify the row with the bucket's times).
ANTHROPIC_USAGE_GROUPS = ("model", "workspace_id", "api_key_id", "account_id", "service_account_id", "service_tier",
                          "context_window", "inference_geo", "speed")
ANTHROPIC_COST_FIELDS = ("cost_type", "token_type", "description", "model", "service_tier", "context_window",
                         "workspace_id", "inference_geo")

#: LiteLLM ``custom_llm_provider`` values whose genai-prices provider id differs (others pass through
#: :func:`billshape.usage.readers.provider_key`).
LITELLM_PROVIDERS = {"bedrock": "aws", "bedrock_converse": "aws", "vertex_ai": "google", "vertex_ai_beta": "google",
                     "gemini": "google", "azure_ai": "azure", "text-completion-openai": "openai"}
#: LiteLLM call types of images and audio: priced by their tokens when the row has some (gpt-image-1,
#: gpt-4o-transcribe, gpt-4o-mini-tts); else an image call counts its images (priced per image) and an audio call
#: is quarantined (billed per minute of audio or per character: not ledger units).
LITELLM_IMAGE_CALLS = ("image_generation", "image_edit", "image_variation")
LITELLM_AUDIO_CALLS = ("transcription", "speech")
LITELLM_NON_TOKEN_CALLS = LITELLM_IMAGE_CALLS + LITELLM_AUDIO_CALLS
#: Default dimension columns of a SpendLogs row (``--map`` wins): LiteLLM's end user is the customer.
LITELLM_DIMENSIONS = {"end_user": "customer", "team_id": "project"}
LANGFUSE_DIMENSIONS = {"userId": "user_id"}
LANGFUSE_USAGE_TYPES = ("GENERATION", "EMBEDDING")

#: OTel span attributes read as the reported total cost in USD, first found wins: ``gen_ai.usage.cost``
#: (OpenLIT; not in the OTel GenAI conventions), ``llm.cost.total`` (OpenInference), Langfuse's
#: ``langfuse.observation.cost_details`` (a JSON object, its ``total``); else the sum of the
#: ``gen_ai.usage.input_cost`` / ``gen_ai.usage.output_cost`` parts.
OTEL_COST_KEYS = ("gen_ai.usage.cost", "llm.cost.total")
OTEL_COST_DETAILS = "langfuse.observation.cost_details"
OTEL_COST_PARTS = ("gen_ai.usage.input_cost", "gen_ai.usage.output_cost")


# --------------------------------------------------------------------------------------------- values

def usd_micro(value, name: str) -> int:
    """A USD amount (number or decimal string) as integer micro-dollars, rounded half up once; raises
    :class:`RowError` (the quarantine reason) for a value that is not a finite number >= 0 or is too large."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise RowError(f"wrong type for {name}: {type(value).__name__}")
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except InvalidOperation:
        raise RowError(f"wrong type for {name}: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise RowError(f"wrong type for {name}: {str(value)[:40]!r}")
    if amount < 0:
        raise RowError(f"negative {name}")
    micro = int((amount * MICRO).to_integral_value(rounding=ROUND_HALF_UP))
    if micro > MAX_REPORTED_USD_MICRO:
        raise RowError(f"{name} out of range (> ${MAX_REPORTED_USD_MICRO // MICRO:.0e} per row)".replace("e+", "e"))
    return micro


def _object(value, name: str) -> dict:
    """A JSON object field (maybe a JSON string, as CSV exports write it); ``{}`` when absent."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise RowError(f"{name} is not JSON") from None
        if value is None:
            return {}
    if not isinstance(value, dict):
        raise RowError(f"wrong type for {name}: {type(value).__name__}")
    return value


def _overrides(row: dict, mapping: dict[str, str]) -> dict:
    """``--map COL=ts|model|provider|service_tier`` values of a row (the dimensions go through ``_dims``)."""
    return {f: row[c] for c, f in mapping.items() if f in ("ts", "model", "provider", "service_tier") and row.get(c) not in (None, "")}


def _dim_mapping(defaults: dict[str, str], mapping: dict[str, str]) -> dict[str, str]:
    return {**defaults, **{c: f for c, f in mapping.items() if f in DIMENSIONS}}


# --------------------------------------------------------------------------------------------- detection

def _anthropic_buckets(doc: dict) -> list | None:
    """The buckets of an Anthropic report page (or of one bucket), else ``None``."""
    if "object" in doc:  # an OpenAI usage page or bucket
        return None
    data = doc.get("data")
    if isinstance(data, list) and ("has_more" in doc or "next_page" in doc) and all(
            isinstance(x, dict) and "starting_at" in x and "results" in x for x in data[:5]):
        return data
    if "starting_at" in doc and "ending_at" in doc and isinstance(doc.get("results"), list):
        return [doc]
    return None


def _is_litellm(doc: dict) -> bool:
    return "request_id" in doc and "call_type" in doc and ("startTime" in doc or "spend" in doc)


def _is_langfuse(doc: dict) -> bool:
    return "id" in doc and "traceId" in doc and "type" in doc and "startTime" in doc


def _items(doc) -> list:
    """The rows of a LiteLLM / Langfuse document: a list, a page's ``data``, or the row itself."""
    if isinstance(doc, list):
        return doc
    return doc["data"] if isinstance(doc.get("data"), list) and not _is_litellm(doc) and not _is_langfuse(doc) else [doc]


def sniff(doc) -> str | None:
    """The connector format of one parsed JSON document (a dict), or ``None``."""
    if not isinstance(doc, dict):
        return None
    if _is_litellm(doc):
        return "litellm"
    if _is_langfuse(doc):
        return "langfuse"
    data = doc.get("data")
    if isinstance(data, list) and data and isinstance(data[0], dict) and not _anthropic_buckets(doc):
        if ("meta" in doc and _is_langfuse(data[0])) or _is_litellm(data[0]):
            return "langfuse" if _is_langfuse(data[0]) else "litellm"
        return None
    buckets = _anthropic_buckets(doc)
    if buckets is None:
        return None
    for bucket in buckets:
        for res in bucket.get("results") or []:
            if isinstance(res, dict):
                if "amount" in res:
                    return "anthropic-cost"
                if {"uncached_input_tokens", "cache_creation", "cache_read_input_tokens", "output_tokens"} & set(res):
                    return "anthropic-usage"
                return None
    return "anthropic-usage"  # a page without results (no usage in the period): nothing to read either way


def table_format(path: str) -> str | None:
    """``litellm`` or ``langfuse`` for a CSV export recognised by its header, else ``None``."""
    try:
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
            header = set(next(csv.reader([f.readline()]), []))
    except OSError:
        return None
    if {"request_id", "call_type", "spend", "startTime"} <= header:
        return "litellm"
    if {"id", "traceId", "type", "startTime"} <= header:
        return "langfuse"
    return None


def is_json(path: str) -> bool:
    """Whether a file's first non-blank character opens a JSON document (else it is read as CSV)."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


# --------------------------------------------------------------------------------------------- Anthropic

def _anthropic_usage_rows(doc, b: _Batcher, index: int, mapping: dict[str, str]):
    for i, bucket in enumerate(_anthropic_buckets(doc) or []):
        for j, res in enumerate(bucket.get("results") or []):
            if not isinstance(res, dict):
                b.bad.append(Bad(f"{b.file_hash}:{index}:{i}:{j}", index, "result is not an object"))
                continue
            key = "anthropic-usage:" + "|".join([str(bucket.get("starting_at")), str(bucket.get("ending_at"))]
                                                + [str(res.get(k)) for k in ANTHROPIC_USAGE_GROUPS])
            b.add(lambda res=res, bucket=bucket, key=key: anthropic_usage_record(res, bucket, mapping, key, index),
                  key, index, str(res.get("model")))


#: The context window of Anthropic's usage and cost reports whose requests are billed at long-context rates.
LONG_CONTEXT_WINDOW = "200k-1M"
#: Appended to a service tier for the rows billed at long-context rates (``data/service_tiers.csv``).
LONG_CONTEXT_SUFFIX = "_long_context"


def long_context_tier(tier: str | None) -> str:
    """The service tier of a row billed at long-context rates: ``standard_long_context`` (no tier: standard),
    ``batch_long_context``, ... (a tier the catalog has no row for is quarantined as an unknown tier)."""
    return str(tier or "standard").strip().lower() + LONG_CONTEXT_SUFFIX


def anthropic_usage_record(res: dict, bucket: dict, mapping: dict[str, str] | None = None, key: str = "", index: int = 0) -> dict:
    """One result of a usage-report bucket as a record: input = uncached + cache reads + cache writes (5 min and
    1 h; the 1 h writes are also kept as ``cache_write_1h_tokens``, priced at their own rate); the bucket's start
    is its time; no request count (``requests`` 0). The ``service_tier`` is kept (the ledger prices it from
    ``data/service_tiers.csv``, or quarantines a tier it has no row for); web-search requests
    (``server_tool_use.web_search_requests``) are counted. A row of the 200k-1M context window holds only
    requests over 200K input tokens, all billed at long-context rates: its tier is :func:`long_context_tier`
    (``standard_long_context``, ``batch_long_context``), priced by that tier's rows of ``data/service_tiers.csv``.
    Another context window is quarantined."""
    mapping = mapping or {}
    tier = res.get("service_tier")
    stu = res.get("server_tool_use") if isinstance(res.get("server_tool_use"), dict) else {}
    window = res.get("context_window")
    if window not in (None, "0-200k", LONG_CONTEXT_WINDOW):
        raise RowError(f"context window {str(window)[:20]}: not one of 0-200k, {LONG_CONTEXT_WINDOW}")
    if window == LONG_CONTEXT_WINDOW:
        tier = long_context_tier(tier)
    cc = res.get("cache_creation")
    cc = {} if cc is None else cc
    if not isinstance(cc, dict):
        raise RowError("wrong type for cache_creation")
    uncached = _int("uncached_input_tokens", res.get("uncached_input_tokens"), required=True)
    cr = _int("cache_read_input_tokens", res.get("cache_read_input_tokens"))
    w1h = _int("cache_creation.ephemeral_1h_input_tokens", cc.get("ephemeral_1h_input_tokens"))
    cw = _int("cache_creation.ephemeral_5m_input_tokens", cc.get("ephemeral_5m_input_tokens")) + w1h
    if res.get("model") in (None, ""):
        raise RowError("missing model (a report not grouped by model cannot be priced)")
    extra = _overrides(res, mapping)
    return make_record(
        row_key=key, row_index=index, ts=extra.get("ts", bucket.get("starting_at")), provider=extra.get("provider", "anthropic"),
        model=extra.get("model", res.get("model")), requests=0,
        dims=_dims(res, _dim_mapping({"workspace_id": "project", "account_id": "user_id"}, mapping)),
        input_tokens=uncached + cr + cw, cache_read_tokens=cr, cache_write_tokens=cw, cache_write_1h_tokens=w1h,
        output_tokens=_int("output_tokens", res.get("output_tokens"), required=True),
        web_search_calls=stu.get("web_search_requests"), service_tier=extra.get("service_tier", tier),
    )


def anthropic_message_record(u: dict, *, provider, model, dims, key: str, index: int, ts, tier) -> dict:
    """The ``usage`` of an Anthropic Messages API response as a record (:func:`billshape.usage.readers.raw_record`).

    ``input_tokens`` excludes ``cache_read_input_tokens`` and ``cache_creation_input_tokens``: they are added. The
    writes' split by TTL, ``cache_creation.ephemeral_5m_input_tokens`` / ``ephemeral_1h_input_tokens``, gives
    ``cache_write_1h_tokens`` (a part of the writes, priced at its own rate); a response with the split and no
    ``cache_creation_input_tokens`` writes their sum. ``server_tool_use.web_search_requests`` are web searches."""
    cr = _int("cache_read_tokens", u.get("cache_read_input_tokens"))
    cc = {} if u.get("cache_creation") is None else u["cache_creation"]
    if not isinstance(cc, dict):
        raise RowError("wrong type for usage.cache_creation")
    w5, w1h = (_int(f"usage.cache_creation.{k}", cc.get(k)) for k in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"))
    total = u.get("cache_creation_input_tokens")
    cw = _int("cache_write_tokens", total) if total is not None else w5 + w1h
    stu = u.get("server_tool_use") if isinstance(u.get("server_tool_use"), dict) else {}
    return make_record(
        row_key=key, row_index=index, ts=ts, provider=provider, model=model, dims=dims,
        input_tokens=_int("input_tokens", u.get("input_tokens"), required=True) + cr + cw,
        output_tokens=u.get("output_tokens"), cache_read_tokens=cr, cache_write_tokens=cw, cache_write_1h_tokens=w1h,
        web_search_calls=stu.get("web_search_requests"), service_tier=tier,
    )


def anthropic_cost_line(res: dict, bucket: dict) -> dict:
    """One result of a cost-report bucket: ``amount`` is in cents as a decimal string (``"123.45"`` is $1.2345);
    signed (a credit is negative). Raises :class:`RowError` for a malformed line."""
    if not isinstance(res, dict):
        raise RowError("result is not an object")
    amount = res.get("amount")
    if amount is None or amount == "":
        raise RowError("missing amount")
    if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
        raise RowError(f"wrong type for amount: {type(amount).__name__}")
    try:
        cents = Decimal(repr(amount)) if isinstance(amount, float) else Decimal(str(amount).strip())
    except InvalidOperation:
        raise RowError(f"wrong type for amount: {str(amount)[:40]!r}") from None
    if not cents.is_finite() or abs(cents) * 10_000 > MAX_REPORTED_USD_MICRO:
        raise RowError(f"amount out of range: {str(amount)[:40]!r}")
    currency = res.get("currency") or "USD"
    if currency != "USD":
        raise RowError(f"currency {str(currency)[:10]}: only USD amounts are read")
    start = _ts(bucket.get("starting_at"))
    end = _ts(bucket["ending_at"]) if bucket.get("ending_at") else None
    return {"starting_at": start, "ending_at": end, "day": start.date(), "currency": "USD", "amount_cents": cents,
            "usd": cents / 100, "usd_micro": int((cents * 10_000).to_integral_value(rounding=ROUND_HALF_UP)),
            **{k: res.get(k) for k in ANTHROPIC_COST_FIELDS}}


def _anthropic_cost_rows(doc, b: _Batcher, index: int, mapping: dict[str, str]):
    for i, bucket in enumerate(_anthropic_buckets(doc) or []):
        for j, res in enumerate(bucket.get("results") or []):
            try:
                anthropic_cost_line(res, bucket)
            except RowError as exc:
                b.bad.append(Bad(f"{b.file_hash}:{index}:{i}:{j}", index, f"cost report line: {exc}", str(res)[:200]))
                continue
            b.ignored += 1  # money, not a usage row: kept for reconciliation, not in the ledger


def read_anthropic_cost(data: bytes) -> list[dict]:
    """Parse an Anthropic Admin API cost report (``/v1/organizations/cost_report``: one page, a JSON list of pages,
    or JSON lines of pages or buckets) into cost lines, in file order.

    Each line: ``starting_at``, ``ending_at`` (UTC datetimes), ``day`` (date), ``currency`` ("USD"),
    ``amount_cents`` and ``usd`` (exact Decimals), ``usd_micro`` (int, rounded half up), and the report's
    ``cost_type``, ``token_type``, ``description``, ``model``, ``service_tier``, ``context_window``,
    ``workspace_id``, ``inference_geo`` (None where the report was not grouped by them).

    Raises :class:`billshape.usage.readers.RowError` (a ``ValueError``) naming the document, bucket and result
    of the first malformed line, or when the data is not a cost report.
    """
    text = data.decode("utf-8-sig", errors="replace")
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise RowError(f"invalid JSON ({exc.msg})") from None
    if len(docs) == 1 and isinstance(docs[0], list):
        docs = docs[0]
    out = []
    for d, doc in enumerate(docs):
        buckets = _anthropic_buckets(doc) if isinstance(doc, dict) else None
        if buckets is None or (sniff(doc) != "anthropic-cost" and any(b.get("results") for b in buckets)):
            raise RowError(f"document {d}: not an Anthropic cost report page")
        for i, bucket in enumerate(buckets):
            for j, res in enumerate(bucket.get("results") or []):
                try:
                    out.append(anthropic_cost_line(res, bucket))
                except RowError as exc:
                    raise RowError(f"document {d} bucket {i} result {j}: {exc}") from None
    return out


# --------------------------------------------------------------------------------------------- LiteLLM

def _keyed_rows(prefix: str, id_field: str, record):
    def rows(doc, b: _Batcher, index: int, mapping: dict[str, str]):
        for j, item in enumerate(_items(doc)):
            if not isinstance(item, dict):
                b.bad.append(Bad(f"{b.file_hash}:{index}:{j}", index, "record is not an object"))
                continue
            rid = item.get(id_field)
            key = f"{prefix}:{rid}" if rid not in (None, "") and not isinstance(rid, (dict, list)) else f"{b.file_hash}:{index}:{j}"
            b.add(lambda item=item, key=key: record(item, mapping, key, index), key, index, str(item.get("model"))[:200])
    return rows


def litellm_record(row: dict, mapping: dict[str, str] | None = None, key: str = "", index: int = 0) -> dict | None:
    """One ``LiteLLM_SpendLogs`` row as a record (``None``: not a provider call, counted as ignored).

    ``prompt_tokens`` is all input (LiteLLM reports OpenAI semantics; when the cache counts exceed it, they are
    added, as for Anthropic's own counts); cache reads, cache writes and reasoning come from
    ``metadata.additional_usage_values``. ``spend`` (USD) is the reported cost. Failed calls
    (``metadata.status`` "failure") and LiteLLM cache hits (``cache_hit`` true: no provider call) are ignored.
    """
    mapping = mapping or {}
    meta = _object(row.get("metadata"), "metadata")
    if (meta.get("status") or row.get("status")) == "failure" or str(row.get("cache_hit")).strip().lower() == "true":
        return None
    call = str(row.get("call_type") or "")
    kind = call if call in LITELLM_NON_TOKEN_CALLS else call.removeprefix("a")
    extra = _object(meta.get("additional_usage_values"), "metadata.additional_usage_values")
    ptd = _object(extra.get("prompt_tokens_details"), "prompt_tokens_details")
    ctd = _object(extra.get("completion_tokens_details"), "completion_tokens_details")
    prompt = _int("prompt_tokens", row.get("prompt_tokens"), required=True)
    units = {"input_image_tokens": ptd.get("image_tokens"), "input_audio_tokens": ptd.get("audio_tokens"),
             "output_audio_tokens": ctd.get("audio_tokens")}
    if kind in LITELLM_NON_TOKEN_CALLS and not prompt and not _int("completion_tokens", row.get("completion_tokens")):
        if kind in LITELLM_AUDIO_CALLS:
            raise RowError(f"call type {call[:30]}: billed per {'minute of audio' if kind == 'transcription' else 'character'} "
                           "(not a ledger unit)")
        units["images_generated"] = _litellm_images(row, call)
    cr = _int("cache_read_input_tokens", extra.get("cache_read_input_tokens")) or _int("cached_tokens", ptd.get("cached_tokens"))
    cw = _int("cache_creation_input_tokens", extra.get("cache_creation_input_tokens"))
    if cr + cw > prompt:
        prompt += cr + cw
    provider = _str(row.get("custom_llm_provider"))
    provider = LITELLM_PROVIDERS.get(provider.lower(), provider) if provider else None
    model = row.get("model")
    if isinstance(model, str) and "/" in model and row.get("custom_llm_provider") and model.split("/", 1)[0] == row["custom_llm_provider"]:
        model = model.split("/", 1)[1]  # "anthropic/claude-..." with custom_llm_provider "anthropic"
    over = _overrides(row, mapping)
    spend = row.get("spend")
    fallback = {**meta, **_object(meta.get("spend_logs_metadata"), "metadata.spend_logs_metadata")}
    return make_record(
        row_key=key, row_index=index, ts=over.get("ts", row.get("startTime")), provider=over.get("provider", provider),
        model=over.get("model", model), dims=_dims(row, _dim_mapping(LITELLM_DIMENSIONS, mapping), fallback),
        input_tokens=prompt, output_tokens=row.get("completion_tokens"), cache_read_tokens=cr, cache_write_tokens=cw,
        reasoning_tokens=ctd.get("reasoning_tokens"), **units,
    ) | {"reported_usd_micro": None if spend in (None, "") else usd_micro(spend, "spend")}


def _litellm_images(row: dict, call: str) -> int:
    """Images of a per-image call: the stored response's ``data`` list, else the stored request's ``n``
    (``proxy_server_request``, ``store_prompts_in_spend_logs``), else a :class:`RowError`."""
    for col, what in (("response", "data"), ("proxy_server_request", "n")):
        try:
            doc = _object(row.get(col), col)
        except RowError:
            continue
        if what == "data" and isinstance(doc.get("data"), list) and doc["data"]:
            return len(doc["data"])
        if what == "n" and doc:
            n = _int(f"{col}.n", doc.get("n", 1))  # the images API's default n is 1
            if n < 1:
                raise RowError(f"{col}.n {n}: not a number of images")
            return n
    raise RowError(f"call type {call[:30]}: no image count (neither the response nor the request is stored)")


# --------------------------------------------------------------------------------------------- Langfuse

def langfuse_record(obs: dict, mapping: dict[str, str] | None = None, key: str = "", index: int = 0) -> dict | None:
    """One Langfuse observation as a record (``None`` for observations other than generations and embeddings).

    Tokens from ``usageDetails`` (else the deprecated ``usage``, else ``promptTokens``/``completionTokens``): keys
    containing ``input`` sum to the input, keys containing ``output`` to the output (Langfuse's own rule), cache
    reads are the input keys naming ``cache_read`` or ``cached``, cache writes those naming ``cache_creation`` or
    ``cache_write``, reasoning the output keys naming ``reasoning``. Reported cost: ``costDetails.total`` (else
    the sum of its parts), else ``calculatedTotalCost``.
    """
    mapping = mapping or {}
    if str(obs.get("type") or "").upper() not in LANGFUSE_USAGE_TYPES:
        return None
    details = _object(obs.get("usageDetails"), "usageDetails")
    if not details:
        legacy = _object(obs.get("usage"), "usage")
        unit = legacy.get("unit")
        if unit not in (None, "", "TOKENS"):
            raise RowError(f"usage unit {str(unit)[:20]}: only tokens are priced")
        details = {"input": legacy.get("input", obs.get("promptTokens")), "output": legacy.get("output", obs.get("completionTokens"))}
    counts = {k: _int(f"usageDetails.{k}", v) for k, v in details.items() if k != "total"}
    for side in ("input", "output"):
        if not any(side in k and details[k] not in (None, "") for k in counts):
            raise RowError(f"missing usageDetails.{side}")
    part = lambda side, *names: sum(v for k, v in counts.items() if side in k and any(n in k for n in names))  # noqa: E731
    cost = _object(obs.get("costDetails"), "costDetails")
    if "total" in cost:
        reported = usd_micro(cost["total"], "costDetails.total")
    elif cost:
        reported = sum(usd_micro(v, f"costDetails.{k}") for k, v in cost.items())
    elif obs.get("calculatedTotalCost") not in (None, ""):
        reported = usd_micro(obs["calculatedTotalCost"], "calculatedTotalCost")
    else:
        reported = None
    over = _overrides(obs, mapping)
    try:
        meta = _object(obs.get("metadata"), "metadata")
    except RowError:  # Langfuse metadata may be any JSON value; only an object names dimensions
        meta = {}
    return make_record(
        row_key=key, row_index=index, ts=over.get("ts", obs.get("startTime")), provider=over.get("provider"),
        model=over.get("model", obs.get("model")), dims=_dims(obs, _dim_mapping(LANGFUSE_DIMENSIONS, mapping), meta),
        input_tokens=sum(v for k, v in counts.items() if "input" in k), output_tokens=sum(v for k, v in counts.items() if "output" in k),
        cache_read_tokens=part("input", "cache_read", "cached"), cache_write_tokens=part("input", "cache_creation", "cache_write"),
        reasoning_tokens=part("output", "reasoning"),
    ) | {"reported_usd_micro": reported}


# --------------------------------------------------------------------------------------------- OTel cost

def otel_reported_cost(attrs: dict) -> int | None:
    """The cost a GenAI span reports [integer micro-dollars], or ``None`` (attribute names: :data:`OTEL_COST_KEYS`,
    :data:`OTEL_COST_DETAILS`, :data:`OTEL_COST_PARTS`)."""
    for k in OTEL_COST_KEYS:
        if attrs.get(k) not in (None, ""):
            return usd_micro(attrs[k], k)
    if attrs.get(OTEL_COST_DETAILS) not in (None, ""):
        details = _object(attrs[OTEL_COST_DETAILS], OTEL_COST_DETAILS)
        if "total" in details:
            return usd_micro(details["total"], OTEL_COST_DETAILS + ".total")
        if details:
            return sum(usd_micro(v, f"{OTEL_COST_DETAILS}.{k}") for k, v in details.items())
    parts = [usd_micro(attrs[k], k) for k in OTEL_COST_PARTS if attrs.get(k) not in (None, "")]
    return sum(parts) if parts else None


# --------------------------------------------------------------------------------------------- dispatch

JSON_READERS = {
    "anthropic-usage": _anthropic_usage_rows,
    "anthropic-cost": _anthropic_cost_rows,
    "litellm": _keyed_rows("litellm", "request_id", litellm_record),
    "langfuse": _keyed_rows("langfuse", "id", langfuse_record),
}
_TABLE_RECORDS = {"litellm": ("litellm", "request_id", litellm_record), "langfuse": ("langfuse", "id", langfuse_record)}


def read_table(path: str, file_hash: str, kind: str, mapping: dict[str, str]) -> Iterator[Chunk]:
    """Stream a LiteLLM or Langfuse CSV export (JSON columns such as ``metadata`` or ``usageDetails`` hold JSON
    text) as :class:`Chunk` s; a row with the wrong number of fields is quarantined."""
    prefix, id_field, record = _TABLE_RECORDS[kind]
    b = _Batcher(file_hash, os.path.basename(path))
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # SpendLogs rows carry whole requests and responses
    i = -1
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.DictReader(f)
        try:
            for i, raw in enumerate(reader):
                if None in raw or None in raw.values():
                    b.bad.append(Bad(f"{file_hash}:{i}", i, f"wrong number of fields (the header has {len(reader.fieldnames or [])})"))
                    continue
                row = {k: (None if v == "" else v) for k, v in raw.items()}
                rid = row.get(id_field)
                key = f"{prefix}:{rid}" if rid else f"{file_hash}:{i}"
                b.add(lambda row=row, key=key, i=i: record(row, mapping, key, i), key, i, str(row.get("model"))[:200])
                if b.full():
                    yield b.flush()
        except csv.Error as exc:
            b.bad.append(Bad(f"{file_hash}:{i + 1}", i + 1, f"unreadable csv from row {i + 1}: {str(exc)[:120]}"))
    yield b.flush()

