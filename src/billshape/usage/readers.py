"""Readers: usage logs in, normalised Arrow batches and quarantined rows out (streaming, bounded memory).

Formats
-------
otel
    OpenTelemetry GenAI spans as OTLP JSON (a file holding one ``ExportTraceServiceRequest``, or JSON
    lines of them as the OTLP file exporter writes). A span is a usage row when it carries
    ``gen_ai.usage.*`` or ``gen_ai.request.model``; ``invoke_agent``/``create_agent``/``execute_tool``
    spans are skipped because their usage (if any) repeats their children's.
openai
    Pages of the OpenAI usage API (``/organization/usage/completions``): buckets of results.
raw
    Raw provider responses (or ``{"ts": ..., "customer": ..., "response": {...}}`` wrappers) holding a
    ``usage`` object (OpenAI chat/responses, Anthropic messages) or ``usageMetadata`` (Gemini).
csv, parquet
    One row per request (or per aggregate with a ``requests`` column); ``--map COL=FIELD`` names columns.

Every row becomes either a normalised record (:data:`billshape.usage.schema.STAGE`) or a quarantine
record with a reason; nothing is dropped silently and nothing is counted twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pyarrow as pa

from billshape.usage import salvage as S
from billshape.usage.schema import (COUNT_FIELDS, DIMENSIONS, MAPPABLE, MAX_REQUESTS_PER_ROW, MAX_TOKENS_PER_ROW, MAX_UNITS_PER_ROW,
                                   STAGE, TOKEN_FIELDS, UNIT_FIELDS)

FORMATS = ("otel", "openai", "raw", "csv", "parquet", "anthropic-usage", "anthropic-cost", "litellm", "langfuse")  # the last four: connectors.py
BATCH_ROWS = 65_536

#: OTel ``gen_ai.provider.name`` / older ``gen_ai.system`` values -> genai-prices provider ids.
PROVIDER_ALIASES = {
    "gcp.gemini": "google", "gcp.vertex_ai": "google", "gcp.gen_ai": "google", "gemini": "google",
    "vertex_ai": "google", "google": "google", "aws.bedrock": "aws", "az.ai.openai": "azure",
    "azure.ai.openai": "azure", "azure.ai.inference": "azure", "mistral_ai": "mistral", "x_ai": "x-ai",
    "xai": "x-ai", "openai": "openai", "anthropic": "anthropic", "deepseek": "deepseek", "groq": "groq",
    "cohere": "cohere", "perplexity": "perplexity",
}

SKIPPED_OPERATIONS = ("invoke_agent", "create_agent", "execute_tool")
#: OTel span attributes read as the service tier, first found wins (the OpenAI semantic conventions: the tier
#: that served the request, else the one requested). Unit counts come from attributes named by ``--map``.
OTEL_TIER_KEYS = ("openai.response.service_tier", "gen_ai.openai.response.service_tier", "openai.request.service_tier",
                  "gen_ai.openai.request.service_tier")

#: Default attribute / field names for the dimensions (OTel span or resource attributes, JSON wrapper keys).
DEFAULT_DIMENSION_KEYS = {
    "customer": ("billshape.customer", "customer", "customer.id", "customer_id", "tenant.id"),
    "feature": ("billshape.feature", "feature", "feature.name"),
    "project": ("billshape.project", "project", "project_id", "service.name"),
    "user_id": ("billshape.user", "user.id", "enduser.id", "user_id", "user"),
}


def provider_key(name: str | None) -> str | None:
    """The genai-prices provider id for a provider name as logs write it (``None`` when absent)."""
    if name is None:
        return None
    name = str(name).strip().lower()
    return PROVIDER_ALIASES.get(name, name) or None


def file_sha256(path: str) -> str:
    """SHA-256 of a file's content, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Bad:
    """A quarantined input row."""

    row_key: str
    row_index: int
    reason: str
    detail: str = ""


@dataclass
class Chunk:
    """One step of a reader: good rows (an Arrow batch, maybe empty) and bad rows."""

    batch: pa.RecordBatch | None
    bad: list[Bad] = field(default_factory=list)
    ignored: int = 0  # records that are not usage rows (e.g. non-GenAI spans)


class RowError(ValueError):
    """A row that cannot be normalised; its message is the quarantine reason."""


# --------------------------------------------------------------------------------------------- values

def _int(name: str, value, required: bool = False) -> int:
    if value is None or value == "":
        if required:
            raise RowError(f"missing {name}")
        return 0
    if isinstance(value, bool):
        raise RowError(f"wrong type for {name}: bool")
    if isinstance(value, float):
        if not value.is_integer():
            raise RowError(f"wrong type for {name}: non-integer {value!r}")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            value = int(text)
        elif re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) and Decimal(text) == Decimal(text).to_integral_value():
            value = int(Decimal(text))  # "100.0" from a float column, "1e3"
        else:
            raise RowError(f"wrong type for {name}: {value[:40]!r}")
    if not isinstance(value, int):
        raise RowError(f"wrong type for {name}: {type(value).__name__}")
    if value < 0:
        raise RowError(f"negative {name}")
    if value > _cap(name):
        raise RowError(_out_of_range(name))
    return value


def _cap(name: str) -> int:
    return MAX_REQUESTS_PER_ROW if name == "requests" else MAX_UNITS_PER_ROW if name in COUNT_FIELDS else MAX_TOKENS_PER_ROW


def _out_of_range(name: str) -> str:
    return f"{name} out of range (> {_cap(name):.0e} per row)".replace("e+", "e")


def _ts(value) -> dt.datetime:
    if value is None or value == "":
        raise RowError("missing timestamp")
    try:
        if isinstance(value, dt.datetime):
            out = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            x = float(value)
            # seconds, milliseconds or nanoseconds since the epoch
            out = dt.datetime.fromtimestamp(x / 1e9 if x > 1e14 else x / 1e3 if x > 1e11 else x, tz=dt.timezone.utc)
        elif isinstance(value, str) and re.fullmatch(r"\d{10,19}", value.strip()):
            return _ts(int(value))
        elif isinstance(value, str):
            out = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            raise ValueError
    except (ValueError, OverflowError, OSError):
        raise RowError(f"bad timestamp {str(value)[:40]!r}") from None
    if out.tzinfo is None:
        out = out.replace(tzinfo=dt.timezone.utc)
    return out.astimezone(dt.timezone.utc)


def _str(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise RowError("wrong type for a dimension: object")
    text = str(value).strip()
    return text or None


def _tier(value) -> str | None:
    """A service tier as the ledger keeps it: trimmed, lower case, null when absent."""
    text = _str(value)
    return text.lower()[:40] if text else None


#: The quarantine reason of a row whose 1-hour cache writes are more than its cache writes (they are a part of them).
CACHE_1H_REASON = "1-hour cache write tokens exceed cache write tokens"


def make_record(*, row_key, row_index, ts, provider, model, requests=1, dims=None, service_tier=None, **tokens) -> dict:
    """A validated, normalised record (raises :class:`RowError` with the quarantine reason).

    ``tokens``: the token fields (``input_tokens`` and ``output_tokens`` required unless the row carries a
    per-unit count: an image generation billed per image may have no tokens) and the unit fields
    (:data:`billshape.usage.schema.UNIT_FIELDS`, default 0)."""
    if not isinstance(model, str) or not model.strip():
        raise RowError("missing model")
    rec = {
        "row_key": row_key, "row_index": row_index, "ts": _ts(ts), "provider": provider_key(_str(provider)),
        "model": model.strip(), "requests": _int("requests", requests, required=True),
    }
    for d in DIMENSIONS:
        rec[d] = _str((dims or {}).get(d))
    for u in UNIT_FIELDS:
        rec[u] = _int(u, tokens.get(u))
    counted = any(rec[u] for u in COUNT_FIELDS)
    for t in TOKEN_FIELDS:
        rec[t] = _int(t, tokens.get(t), required=t in ("input_tokens", "output_tokens") and not counted)
    if rec["cache_read_tokens"] + rec["cache_write_tokens"] > rec["input_tokens"]:
        raise RowError("cache tokens exceed input tokens")
    if rec["cache_write_1h_tokens"] > rec["cache_write_tokens"]:
        raise RowError(CACHE_1H_REASON)
    if rec["reasoning_tokens"] > rec["output_tokens"]:
        raise RowError("reasoning tokens exceed output tokens")
    if rec["cache_read_tokens"] + rec["cache_write_tokens"] + rec["input_image_tokens"] + rec["input_audio_tokens"] > rec["input_tokens"]:
        raise RowError("image and audio tokens exceed uncached input tokens")
    if rec["output_image_tokens"] + rec["output_audio_tokens"] > rec["output_tokens"]:
        raise RowError("image and audio tokens exceed output tokens")
    rec["service_tier"] = _tier(service_tier)
    return rec


class _Batcher:
    def __init__(self, file_hash: str, source: str):
        self.file_hash, self.source = file_hash, source
        self.rows: list[dict] = []
        self.bad: list[Bad] = []
        self.ignored = 0

    def add(self, fn, row_key: str, row_index: int, detail: str = "") -> None:
        try:
            rec = fn()
        except RowError as exc:
            self.bad.append(Bad(row_key, row_index, str(exc), detail[:200]))
            return
        if rec is None:
            self.ignored += 1
            return
        rec["file_hash"], rec["source_file"] = self.file_hash, self.source
        self.rows.append(rec)

    def full(self) -> bool:
        return len(self.rows) >= BATCH_ROWS or len(self.bad) >= BATCH_ROWS

    def flush(self) -> Chunk:
        try:
            batch = pa.RecordBatch.from_pylist(self.rows, schema=STAGE) if self.rows else None
        except UnicodeEncodeError:  # a string that is not valid Unicode (invalid UTF-8 read, a lone \ud800 escape)
            keep = []
            for rec in self.rows:
                field = next((k for k, v in rec.items() if isinstance(v, str) and not S.is_unicode(v)), None)
                if field is None:
                    keep.append(rec)
                else:
                    self.bad.append(Bad(rec["row_key"], rec["row_index"], f"invalid UTF-8 in {field}", str(rec.get(field))[:200]))
            batch = pa.RecordBatch.from_pylist(keep, schema=STAGE) if keep else None
        for b in self.bad:
            b.row_key, b.reason, b.detail = S.printable(b.row_key), S.printable(b.reason), S.printable(b.detail)
        chunk = Chunk(batch, self.bad, self.ignored)
        self.rows, self.bad, self.ignored = [], [], 0
        return chunk


# --------------------------------------------------------------------------------------------- JSON

from billshape.usage.jsondocs import _json_docs, sniff  # noqa: E402,F401  (readers.sniff is public)


def _attrs(items) -> dict:
    out = {}
    for item in items or []:
        if not isinstance(item, dict) or "key" not in item:
            continue
        val = item.get("value") or {}
        if not isinstance(val, dict):
            out[item["key"]] = val
            continue
        for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if kind in val:
                out[item["key"]] = val[kind]
                break
    return out


def _dims(attrs: dict, mapping: dict[str, str], fallback: dict | None = None) -> dict:
    dims = {}
    for d in DIMENSIONS:
        keys = [c for c, f in mapping.items() if f == d] + list(DEFAULT_DIMENSION_KEYS[d])
        for k in keys:
            for src in (attrs, fallback or {}):
                if src.get(k) not in (None, ""):
                    dims[d] = src[k]
                    break
            if d in dims:
                break
    return dims


def _otel_rows(doc, b: _Batcher, index: int, mapping: dict[str, str]):
    for rs in doc.get("resourceSpans") or []:
        res_attrs = _attrs((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or rs.get("instrumentationLibrarySpans") or []:
            for j, span in enumerate(ss.get("spans") or []):
                if not isinstance(span, dict):
                    b.bad.append(Bad(f"{b.file_hash}:{index}:{j}", index, "span is not an object"))
                    continue
                key = f"otel:{span.get('traceId', '')}:{span.get('spanId', '')}" if span.get("spanId") else f"{b.file_hash}:{index}:{j}"
                b.add(lambda span=span: _otel_record(span, res_attrs, mapping, key, index), key, index, str(span.get("name", "")))


def _otel_record(span: dict, res_attrs: dict, mapping: dict[str, str], key: str, index: int):
    a = _attrs(span.get("attributes"))
    if not any(k.startswith("gen_ai.usage.") for k in a) and "gen_ai.request.model" not in a:
        return None
    if a.get("gen_ai.operation.name") in SKIPPED_OPERATIONS:
        return None
    provider = a.get("gen_ai.provider.name") or a.get("gen_ai.system")
    model = a.get("gen_ai.response.model") or a.get("gen_ai.request.model")
    inp = _int("input_tokens", a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens")), required=True)
    out = _int("output_tokens", a.get("gen_ai.usage.output_tokens", a.get("gen_ai.usage.completion_tokens")), required=True)
    cr = _int("cache_read_tokens", a.get("gen_ai.usage.cache_read.input_tokens"))
    cw = _int("cache_write_tokens", a.get("gen_ai.usage.cache_creation.input_tokens"))
    rs = _int("reasoning_tokens", a.get("gen_ai.usage.reasoning.output_tokens"))
    # OTel semantic conventions: input_tokens includes cached tokens. Instrumentations that copy Anthropic's
    # usage verbatim report it without them; a sum that cannot be a part of the input shows which one it is.
    if cr + cw > inp and provider_key(provider) == "anthropic":
        inp += cr + cw
    extra = {mapping[k]: v for k, v in a.items() if k in mapping and mapping[k] not in DIMENSIONS}
    from billshape.usage.connectors import otel_reported_cost

    tier = extra.get("service_tier", next((a[k] for k in OTEL_TIER_KEYS if a.get(k) not in (None, "")), None))
    return make_record(
        row_key=key, row_index=index, ts=extra.get("ts", span.get("startTimeUnixNano")), provider=extra.get("provider", provider),
        model=extra.get("model", model), dims=_dims(a, mapping, res_attrs), input_tokens=inp, output_tokens=out,
        cache_read_tokens=cr, cache_write_tokens=cw, reasoning_tokens=rs, service_tier=tier,
        **{u: extra[u] for u in UNIT_FIELDS if u in extra},
    ) | {"reported_usd_micro": otel_reported_cost(a)}


def _openai_rows(doc, b: _Batcher, index: int, mapping: dict[str, str]):
    buckets = [doc] if doc.get("object") == "bucket" else doc.get("data") or []
    for bucket in buckets:
        if not isinstance(bucket, dict):
            b.bad.append(Bad(f"{b.file_hash}:{index}:bucket", index, "bucket is not an object"))
            continue
        for j, res in enumerate(bucket.get("results") or []):
            if not isinstance(res, dict):
                b.bad.append(Bad(f"{b.file_hash}:{index}:{j}", index, "result is not an object"))
                continue
            parts = [str(bucket.get("start_time")), str(bucket.get("end_time"))] + [str(res.get(k)) for k in ("model", "project_id", "user_id", "api_key_id", "batch", "service_tier")]
            key = "openai-usage:" + "|".join(parts)
            b.add(lambda res=res, bucket=bucket, key=key: _openai_record(res, bucket, mapping, key, index), key, index, str(res.get("model")))


def _openai_record(res: dict, bucket: dict, mapping: dict[str, str], key: str, index: int):
    """A completions (or images) usage result. ``batch`` true is the ``batch`` service tier (else the result's
    ``service_tier`` when the export is grouped by it); audio tokens are parts of the input / output tokens;
    an images result (``images``: a count, no tokens) is priced per image."""
    dims = _dims(res, mapping or {"project_id": "project", "user_id": "user_id"})
    tier = "batch" if res.get("batch") is True else res.get("service_tier")
    images = "images" in res and "input_tokens" not in res
    return make_record(
        row_key=key, row_index=index, ts=bucket.get("start_time"), provider="openai", model=res.get("model"),
        requests=res.get("num_model_requests"), dims=dims, input_tokens=0 if images else res.get("input_tokens"),
        output_tokens=0 if images else res.get("output_tokens"), cache_read_tokens=res.get("input_cached_tokens"),
        input_audio_tokens=res.get("input_audio_tokens"), output_audio_tokens=res.get("output_audio_tokens"),
        images_generated=res.get("images") if images else None, service_tier=tier,
    )


def _raw_rows(doc, b: _Batcher, index: int, mapping: dict[str, str]):
    items = doc if isinstance(doc, list) else [doc]
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            b.bad.append(Bad(f"{b.file_hash}:{index}:{j}", index, "record is not an object"))
            continue
        body = item.get("response", item)
        rid = body.get("id") if isinstance(body, dict) else None
        key = f"raw:{rid}" if rid else f"{b.file_hash}:{index}:{j}"
        b.add(lambda item=item, key=key: raw_record(item, mapping, key, index), key, index)


def raw_record(item: dict, mapping: dict[str, str] | None = None, key: str = "", index: int = 0) -> dict:
    """Normalise one raw provider response (or wrapper) holding a ``usage``/``usageMetadata`` object.

    OpenAI (chat ``prompt_tokens``/``completion_tokens`` or responses ``input_tokens``/``output_tokens``):
    cached tokens are inside input. Anthropic (:func:`billshape.usage.connectors.anthropic_message_record`):
    ``input_tokens`` excludes the cache reads and writes; they are added. Gemini: ``promptTokenCount`` includes
    ``cachedContentTokenCount``; ``thoughtsTokenCount`` is billed as output and added to it.
    """
    mapping = mapping or {}
    body = item.get("response", item)
    if not isinstance(body, dict):
        raise RowError("response is not an object")
    ts = item.get("ts", item.get("timestamp", body.get("created", body.get("created_at", body.get("createTime")))))
    dims = _dims(item, mapping, item.get("metadata") if isinstance(item.get("metadata"), dict) else None)
    provider = item.get("provider")
    if "usageMetadata" in body:
        u = body["usageMetadata"]
        if not isinstance(u, dict):
            raise RowError("wrong type for usageMetadata")
        thoughts = _int("reasoning_tokens", u.get("thoughtsTokenCount"))
        modal_in, modal_out = _gemini_modalities(u.get("promptTokensDetails")), _gemini_modalities(u.get("candidatesTokensDetails"))
        return make_record(
            row_key=key, row_index=index, ts=ts, provider=provider or "google", model=item.get("model", body.get("modelVersion")),
            dims=dims, input_tokens=u.get("promptTokenCount"),
            output_tokens=_int("output_tokens", u.get("candidatesTokenCount"), required=True) + thoughts,
            cache_read_tokens=u.get("cachedContentTokenCount"), reasoning_tokens=thoughts,
            input_image_tokens=modal_in.get("IMAGE"), input_audio_tokens=modal_in.get("AUDIO"),
            output_image_tokens=modal_out.get("IMAGE"), output_audio_tokens=modal_out.get("AUDIO"),
            web_search_calls=_count_list(item.get("web_search_calls"), body), service_tier=_tier_of(item, body, u),
        )
    u = body.get("usage")
    if not isinstance(u, dict):
        raise RowError("wrong type for usage")
    model = item.get("model", body.get("model"))
    if "cache_creation_input_tokens" in u or "cache_read_input_tokens" in u or "cache_creation" in u or body.get("type") == "message":
        from billshape.usage.connectors import anthropic_message_record

        return anthropic_message_record(u, provider=provider or "anthropic", model=model, dims=dims, key=key, index=index,
                                        ts=ts, tier=_tier_of(item, body, u))
    if "prompt_tokens" in u:  # OpenAI chat completions
        details = u.get("prompt_tokens_details") or {}
        out_details = u.get("completion_tokens_details") or {}
        inp, out = u.get("prompt_tokens"), u.get("completion_tokens")
    else:  # OpenAI responses API
        details = u.get("input_tokens_details") or {}
        out_details = u.get("output_tokens_details") or {}
        inp, out = u.get("input_tokens"), u.get("output_tokens")
    if not isinstance(details, dict) or not isinstance(out_details, dict):
        raise RowError("wrong type for usage details")
    image_api = isinstance(body.get("data"), list) and "image_tokens" in details  # an images API response
    return make_record(
        row_key=key, row_index=index, ts=ts, provider=provider or "openai", model=model, dims=dims,
        input_tokens=inp, output_tokens=out, cache_read_tokens=details.get("cached_tokens"),
        reasoning_tokens=out_details.get("reasoning_tokens"),
        input_image_tokens=details.get("image_tokens"), input_audio_tokens=details.get("audio_tokens"),
        output_audio_tokens=out_details.get("audio_tokens"),
        output_image_tokens=out if image_api else out_details.get("image_tokens"),
        web_search_calls=_count_list(item.get("web_search_calls"), body), service_tier=_tier_of(item, body, u),
    )


def _tier_of(item: dict, body: dict, usage: dict):
    """The service tier of a raw response: the wrapper's ``service_tier``, else the response's (OpenAI), else the
    usage object's (Anthropic ``usage.service_tier``); Gemini ``serviceTier`` where present."""
    for src in (item, body, usage):
        for k in ("service_tier", "serviceTier"):
            if isinstance(src, dict) and src.get(k) not in (None, ""):
                return src[k]
    return None


def _gemini_modalities(details) -> dict:
    """Gemini ``promptTokensDetails`` / ``candidatesTokensDetails`` (``[{modality, tokenCount}]``) by modality."""
    out: dict[str, int] = {}
    for d in details if isinstance(details, list) else []:
        if isinstance(d, dict) and d.get("modality"):
            m = str(d["modality"]).upper()
            out[m] = out.get(m, 0) + _int(f"{m.lower()} tokens", d.get("tokenCount"))
    return out


def _count_list(given, body: dict):
    """Web-search calls of a response: the wrapper's count, else the OpenAI Responses ``output`` items of type
    ``web_search_call``, else 1 for a Gemini response grounded with Google Search (``webSearchQueries``: Gemini 2.5
    bills grounding per grounded prompt)."""
    if given not in (None, ""):
        return given
    out = body.get("output")
    if isinstance(out, list):
        return sum(1 for o in out if isinstance(o, dict) and o.get("type") == "web_search_call")
    cands = body.get("candidates") if isinstance(body.get("candidates"), list) else []
    return int(any(isinstance(c, dict) and isinstance(c.get("groundingMetadata"), dict)
                   and c["groundingMetadata"].get("webSearchQueries") for c in cands))


_JSON_READERS = {"otel": _otel_rows, "openai": _openai_rows, "raw": _raw_rows}


def read_json(path: str, file_hash: str, fmt: str | None, mapping: dict[str, str]) -> Iterator[Chunk]:
    from billshape.usage.connectors import JSON_READERS

    b = _Batcher(file_hash, os.path.basename(path))
    for index, doc, error in _json_docs(path):
        if doc is None:
            if error:
                b.bad.append(Bad(f"{file_hash}:{index}", index, error))
        else:
            kind = sniff(doc)
            if kind is None or (fmt is not None and kind != fmt):
                reason = "unrecognised record format" if kind is None else f"{kind} record in a file read as --format {fmt}"
                b.bad.append(Bad(f"{file_hash}:{index}", index, reason, str(doc)[:200]))
            else:
                try:
                    (_JSON_READERS.get(kind) or JSON_READERS[kind])(doc, b, index, mapping)
                except (AttributeError, TypeError) as exc:  # structure of the wrong shape
                    b.bad.append(Bad(f"{file_hash}:{index}", index, f"malformed {kind} record ({type(exc).__name__})"))
        if b.full():
            yield b.flush()
    yield b.flush()


# --------------------------------------------------------------------------------------------- tables

#: CSV block size of Arrow's streaming reader [bytes]; a record longer than a block stops it (the rest of the
#: file is then read record by record, see :func:`billshape.usage.salvage.csv_rows`).
CSV_BLOCK_BYTES = 1 << 22
#: Largest text field a table row may hold [bytes]: a usage row holds ids, names and counts; a field past this
#: is a corrupt or misdirected value (a prompt pasted into a column), and its row is quarantined.
MAX_FIELD_BYTES = 1 << 20
#: Largest CSV record the record-by-record reader holds in memory [bytes]; a longer one is quarantined unread.
MAX_RECORD_BYTES = 1 << 26


def _table_batches(path: str, fmt: str, invalid=None) -> Iterator[pa.RecordBatch]:
    """Batches of a Parquet or CSV file. CSV: every column is read as text (the normalisation casts it, and
    falls back to row by row when a value does not cast), so that a dirty value far into a file cannot stop
    the reader; ``invalid(row)`` is called for each row with the wrong number of fields, which is skipped."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
    else:
        import pyarrow.csv as pcsv

        # single-threaded parsing: the invalid-row handler then knows each row's line number
        read = pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=False)
        head = pcsv.open_csv(path, read_options=read, parse_options=pcsv.ParseOptions(invalid_row_handler=lambda row: "skip"))
        names = head.schema.names
        head.close()
        reader = pcsv.open_csv(path, read_options=read, parse_options=pcsv.ParseOptions(invalid_row_handler=invalid),
                               convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                                   strings_can_be_null=True, auto_dict_encode=False))
        yield from reader


def _column_map(names: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """field -> column for a table: explicit ``--map`` first, then columns named like the fields."""
    out = {f: c for c, f in mapping.items() if c in names}
    aliases = {"timestamp": "ts", "time": "ts", "user": "user_id", "prompt_tokens": "input_tokens", "completion_tokens": "output_tokens", "cached_tokens": "cache_read_tokens", "id": "request_id"}
    for c in names:
        f = c if c in MAPPABLE else aliases.get(c)
        if f and f not in out:
            out[f] = c
    return out


def _fast_batch(batch: pa.RecordBatch, cols: dict[str, str], file_hash: str, source: str, indexes: list[int]) -> tuple[pa.RecordBatch, list[Bad]]:
    """Vectorised normalisation of a table batch (``indexes``: its rows' positions in the file); raises
    ``pa.ArrowInvalid`` when a column does not cast."""
    import pyarrow.compute as pc

    n = batch.num_rows
    get = lambda f: batch.column(cols[f]) if f in cols else None  # noqa: E731
    idx = pa.array(indexes, pa.int64())
    out: dict[str, pa.Array] = {}
    for t in (*TOKEN_FIELDS, *UNIT_FIELDS):
        col = get(t)
        out[t] = pa.nulls(n, pa.int64()).fill_null(0) if col is None else pc.cast(col, pa.int64())
    tier = get("service_tier")
    out["service_tier"] = pa.nulls(n, pa.string()) if tier is None else pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(tier, pa.string())))
    if tier is not None:
        out["service_tier"] = pc.if_else(pc.equal(out["service_tier"], ""), pa.scalar(None, pa.string()), out["service_tier"])
    counted = pc.fill_null(pc.greater(_sum([pc.fill_null(out[u], 0) for u in COUNT_FIELDS]), 0), False)
    for t in ("input_tokens", "output_tokens"):  # a row billed per unit may have no tokens
        out[t] = pc.if_else(pc.and_(counted, pc.is_null(out[t])), 0, out[t])
    req = get("requests")
    out["requests"] = pa.array([1] * n, pa.int64()) if req is None else pc.cast(req, pa.int64())
    ts = get("ts")
    if ts is None:
        raise pa.ArrowInvalid("no timestamp column")
    if pa.types.is_string(ts.type) or pa.types.is_large_string(ts.type):
        try:
            ts = pc.cast(ts, pa.timestamp("us", tz="UTC"))
        except pa.ArrowInvalid:  # no zone offset: the timestamps are UTC
            ts = pc.assume_timezone(pc.cast(ts, pa.timestamp("us")), "UTC")
    elif pa.types.is_timestamp(ts.type):
        ts = pc.cast(ts if ts.type.tz else pc.assume_timezone(ts, "UTC"), pa.timestamp("us", tz="UTC"))
    else:
        raise pa.ArrowInvalid("timestamp column type")
    out["ts"] = ts
    for f in ("provider", "model", *DIMENSIONS):
        col = get(f)
        out[f] = pa.nulls(n, pa.string()) if col is None else pc.cast(col, pa.string())
    out["provider"] = pc.utf8_lower(out["provider"])
    rid = get("request_id")
    prefix = f"{file_hash}:"
    key = pc.binary_join_element_wise(pa.array([prefix] * n, pa.string()), pc.cast(idx, pa.string()), "")
    if rid is not None:
        key = pc.coalesce(pc.binary_join_element_wise(pa.array(["req:"] * n), pc.cast(rid, pa.string()), ""), key)
    out["row_key"] = key
    # reasons, first failing check wins
    checks = [
        (pc.or_kleene(pc.is_null(out["model"]), pc.equal(pc.utf8_trim_whitespace(pc.fill_null(out["model"], "")), "")), "missing model"),
        (pc.is_null(out["ts"]), "missing timestamp"),
        (pc.is_null(out["input_tokens"]), "missing input_tokens"),
        (pc.is_null(out["output_tokens"]), "missing output_tokens"),
        (pc.is_null(out["requests"]), "missing requests"),
    ]
    for f in (*TOKEN_FIELDS, "requests", *UNIT_FIELDS):
        checks.append((pc.less(out[f], 0), f"negative {f}"))
    for f in (*TOKEN_FIELDS, "requests", *UNIT_FIELDS):
        checks.append((pc.greater(out[f], _cap(f)), _out_of_range(f)))
    z = lambda f: pc.fill_null(out[f], 0)  # noqa: E731
    checks.append((pc.greater(pc.add(z("cache_read_tokens"), z("cache_write_tokens")), out["input_tokens"]), "cache tokens exceed input tokens"))
    checks.append((pc.greater(z("cache_write_1h_tokens"), z("cache_write_tokens")), CACHE_1H_REASON))
    checks.append((pc.greater(z("reasoning_tokens"), out["output_tokens"]), "reasoning tokens exceed output tokens"))
    checks.append((pc.greater(_sum([z(f) for f in ("cache_read_tokens", "cache_write_tokens", "input_image_tokens", "input_audio_tokens")]),
                              out["input_tokens"]), "image and audio tokens exceed uncached input tokens"))
    checks.append((pc.greater(pc.add(z("output_image_tokens"), z("output_audio_tokens")), out["output_tokens"]), "image and audio tokens exceed output tokens"))
    reason = pa.nulls(n, pa.string())
    for mask, text in reversed(checks):
        reason = pc.if_else(pc.fill_null(mask, False), text, reason)
    bad_mask = pc.is_valid(reason)
    for t in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens", *UNIT_FIELDS):
        out[t] = pc.fill_null(out[t], 0)
    out["file_hash"] = pa.array([file_hash] * n, pa.string())
    out["source_file"] = pa.array([source] * n, pa.string())
    out["row_index"] = idx
    out["reported_usd_micro"] = pa.nulls(n, pa.int64())
    good = pa.RecordBatch.from_arrays([out[f.name] for f in STAGE], schema=STAGE)
    bad = []
    if pc.any(bad_mask).as_py():
        sel = pa.RecordBatch.from_arrays([out["row_key"], idx, reason], names=["k", "i", "r"]).filter(bad_mask)
        bad = [Bad(k, i, r) for k, i, r in zip(*(sel.column(j).to_pylist() for j in range(3)))]
        good = good.filter(pc.invert(bad_mask))
    return good, bad


def _sum(arrays):
    import pyarrow.compute as pc

    total = arrays[0]
    for a in arrays[1:]:
        total = pc.add(total, a)
    return total


def _positions(start: int, n: int, skipped: list[int]) -> list[int]:
    """File positions (0-based data rows) of good rows ``start .. start + n - 1`` (counted without the
    rows the parser skipped), given the positions of the skipped rows."""
    if not skipped:
        return list(range(start, start + n))
    s = sorted(skipped)
    out, k = [], 0
    for g in range(start, start + n):
        while k < len(s) and s[k] <= g + k:
            k += 1
        out.append(g + k)
    return out


def _normalise(batch: pa.RecordBatch, idx: list[int], mapping: dict[str, str], file_hash: str, source: str, bad: list[Bad]) -> Chunk:
    """A table batch (rows at file positions ``idx``) as normalised records and quarantined rows (plus ``bad``)."""
    batch, idx, bad = _without_huge_fields(batch, idx, file_hash, bad)
    cols = _column_map(batch.schema.names, mapping)
    counted = any(u in cols for u in COUNT_FIELDS)  # a table of per-unit rows (images...) may have no token columns
    missing = [f for f in ("ts", "model", "input_tokens", "output_tokens") if f not in cols and not (counted and f.endswith("_tokens"))]
    if missing:
        return Chunk(None, [Bad(f"{file_hash}:{i}", i, f"no column for {missing[0]} (use --map COL={missing[0]})") for i in idx] + bad)
    if not idx:
        return Chunk(None, bad)
    try:
        good, bad_rows = _fast_batch(batch, cols, file_hash, source, idx)
        return Chunk(good, bad_rows + bad)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        chunk = _slow_batch(batch, cols, file_hash, source, idx)
        chunk.bad += bad
        return chunk


def _without_huge_fields(batch: pa.RecordBatch, idx: list[int], file_hash: str, bad: list[Bad]) -> tuple[pa.RecordBatch, list[int], list[Bad]]:
    """Rows with a text field over :data:`MAX_FIELD_BYTES` moved to the quarantine."""
    import pyarrow.compute as pc

    over = []
    for name, col in zip(batch.schema.names, batch.columns):
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            lengths = pc.binary_length(col)
            top = pc.max(lengths).as_py()
            if top is not None and top > MAX_FIELD_BYTES:
                over.append((name, lengths.to_pylist()))
    if not over:
        return batch, idx, bad
    keep, bad = [], list(bad)
    for k, pos in enumerate(idx):
        hit = next(((name, lengths[k]) for name, lengths in over if (lengths[k] or 0) > MAX_FIELD_BYTES), None)
        if hit is None:
            keep.append(k)
        else:
            bad.append(Bad(f"{file_hash}:{pos}", pos, f"field over {S.size_text(MAX_FIELD_BYTES)}", f"column {hit[0]}: {hit[1]:,} bytes"))
    return batch.take(pa.array(keep, pa.int64())), [idx[k] for k in keep], bad


def read_table(path: str, file_hash: str, fmt: str, mapping: dict[str, str]) -> Iterator[Chunk]:
    """Stream a CSV or Parquet file. A CSV is read by Arrow's streaming reader while its bytes allow (all of a
    clean file); from the first record that stops it (bytes that are not UTF-8, a record longer than a block)
    on, record by record: each damaged record is quarantined alone, with its line and a reason."""
    source = os.path.basename(path)
    if fmt == "csv":
        with open(path, "rb") as f:
            clean = S.first_invalid_utf8(f) is None
        done_upto, done_bad = 0, set()  # rows already yielded: every position below done_upto, and these
        if clean:  # Arrow's streaming reader never sees a byte that is not UTF-8 (nor prints a traceback)
            try:
                for chunk, upto in _streamed(path, file_hash, fmt, mapping, source):
                    done_upto = max(done_upto, upto)
                    done_bad.update(b.row_index for b in chunk.bad)
                    yield chunk
                return
            except pa.ArrowInvalid:  # a record longer than a block, a quote left open...: read on record by record
                pass
        for names, table, idx, bad in S.csv_rows(path, chunk_bytes=CSV_BLOCK_BYTES, max_record_bytes=MAX_RECORD_BYTES, batch_rows=BATCH_ROWS,
                                                 done=lambda pos: pos < done_upto or pos in done_bad):
            bad = [Bad(f"{file_hash}:{pos}", pos, reason, detail) for pos, reason, detail in bad]
            if table is None or not table.num_rows:
                yield Chunk(None, bad)
            else:
                yield _normalise(table.combine_chunks().to_batches()[0], idx, mapping, file_hash, source, bad)
        return
    pos = 0
    try:
        for batch in _table_batches(path, fmt):
            idx = list(range(pos, pos + batch.num_rows))
            yield _normalise(batch, idx, mapping, file_hash, source, [])
            pos += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:  # an unreadable Parquet file: the rest of it
        yield Chunk(None, [Bad(f"{file_hash}:{pos}", pos, f"unreadable {fmt} from row {pos}: {str(exc).splitlines()[0][:120]}")])


def _streamed(path: str, file_hash: str, fmt: str, mapping: dict[str, str], source: str) -> Iterator[tuple[Chunk, int]]:
    """Arrow's streaming read of a CSV: (chunk, position after its last good row); raises ``pa.ArrowInvalid``
    where it cannot go on."""
    start = 0  # good rows so far (rows the CSV parser did not skip)
    pending: list[Bad] = []  # rows with the wrong number of fields, not yet yielded
    skipped: list[int] = []  # their positions
    unnumbered = itertools.count()

    def invalid(row) -> str:
        pos = row.number - 2 if row.number else None  # line 1 is the header
        key = f"{file_hash}:{pos}" if pos is not None else f"{file_hash}:invalid-{next(unnumbered)}"
        pending.append(Bad(key, -1 if pos is None else pos, f"wrong number of fields ({row.actual_columns}, the header has {row.expected_columns})",
                           f"line {row.number}: {row.text}"[:200]))
        if pos is not None:
            skipped.append(pos)
        return "skip"

    def flush_invalid() -> list[Bad]:
        out = pending[:]
        pending.clear()
        return out

    upto = 0
    try:
        for batch in _table_batches(path, fmt, invalid):
            idx = _positions(start, batch.num_rows, skipped)
            upto = (idx[-1] + 1) if idx else upto
            yield _normalise(batch, idx, mapping, file_hash, source, flush_invalid()), upto
            start += batch.num_rows
        if pending:
            yield Chunk(None, flush_invalid()), upto
    except OSError as exc:  # a read error (not a parse error): the rest of the file
        pos = max([upto, *[i + 1 for i in skipped]])
        yield Chunk(None, flush_invalid() + [Bad(f"{file_hash}:{pos}", pos, f"unreadable {fmt} from row {pos}: {str(exc).splitlines()[0][:120]}")]), pos


def _slow_batch(batch: pa.RecordBatch, cols: dict[str, str], file_hash: str, source: str, indexes: list[int]) -> Chunk:
    """Row-by-row normalisation of a batch whose columns do not cast as a whole (dirty input)."""
    b = _Batcher(file_hash, source)
    rows = batch.to_pylist()
    for index, row in zip(indexes, rows):
        rid = row.get(cols["request_id"]) if "request_id" in cols else None
        key = f"req:{rid}" if rid not in (None, "") else f"{file_hash}:{index}"
        get = lambda f, row=row: row.get(cols[f]) if f in cols else None  # noqa: E731
        b.add(lambda get=get, key=key, index=index: make_record(
            row_key=key, row_index=index, ts=get("ts"), provider=get("provider"), model=get("model"),
            requests=1 if "requests" not in cols else get("requests"), dims={d: get(d) for d in DIMENSIONS},
            service_tier=get("service_tier"), **{t: get(t) for t in (*TOKEN_FIELDS, *UNIT_FIELDS)}), key, index)
    return b.flush()


def detect_format(path: str) -> str:
    ext = path.lower().rsplit(".", 1)[-1]
    if ext in ("parquet", "pq"):
        return "parquet"
    if ext in ("csv", "tsv"):
        from billshape.usage.connectors import table_format

        return table_format(path) or "csv"  # a LiteLLM or Langfuse CSV export, by its header
    return "json"


def read(path: str, file_hash: str, fmt: str | None, mapping: dict[str, str]) -> Iterator[Chunk]:
    """Stream ``path`` as :class:`Chunk` s (``fmt`` None: from the extension, and per JSON record)."""
    from billshape.usage import connectors

    kind = fmt or detect_format(path)
    if kind in connectors.TABLE_FORMATS and not connectors.is_json(path):  # a LiteLLM or Langfuse CSV export
        yield from connectors.read_table(path, file_hash, kind, mapping)
    elif kind in ("csv", "parquet"):
        yield from read_table(path, file_hash, kind, mapping)
    else:
        yield from read_json(path, file_hash, None if kind == "json" else kind, mapping)
