"""The price table: one row per (provider, model, UTC day) present in the logs, built once, joined in the engine.

Prices come from a user price table (CSV, for self-hosted models or negotiated rates; it wins), from the
roofline serving model for self-hosted models (``self_hosted NAME=MODEL@GPUxN:PRECISION:USD_PER_GPU_HOUR``:
:func:`billshape.serving.self_hosted_price`, called once per mapping), or from genai-prices through the project's one look-up, :func:`billshape.api_prices.quote` (offline snapshot,
timestamp-aware: the price in force at noon UTC of that day; cache-read, cache-write and one-tier prices). A key with no price carries ``price_error`` and its rows are quarantined,
never priced at zero. An Anthropic model's 1-hour cache-write price is filled where its source gives none
(:func:`one_hour_write_prices`: the input price x ``constants.csv`` ``anthropic_cache_write_1h_input_multiplier``).

Units: genai-prices quotes USD per million tokens, which is numerically micro-dollars per token, so the
ledger's integer micro-dollars are ``tokens x price`` rounded once per component.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pyarrow as pa

from billshape._validate import MAX_USD_RATE
from billshape.errors import BillshapeInputError
from billshape.usage.schema import MAX_USD_PER_UNIT, PRICES

USER_COLUMNS = ("provider", "model", "input_usd_per_mtok", "output_usd_per_mtok")
#: Optional columns of a user price table for the multimodal and per-unit terms -> price-table column, unit.
USER_UNIT_COLUMNS = {
    "input_image_usd_per_mtok": ("input_image_mtok", "USD per million tokens"),
    "output_image_usd_per_mtok": ("output_image_mtok", "USD per million tokens"),
    "input_audio_usd_per_mtok": ("input_audio_mtok", "USD per million tokens"),
    "output_audio_usd_per_mtok": ("output_audio_mtok", "USD per million tokens"),
    "usd_per_image": ("usd_per_image", "USD per image"),
    "usd_per_second": ("usd_per_second", "USD per second"),
    "usd_per_web_search": ("usd_per_web_search", "USD per web-search call"),
    # Anthropic 1-hour prompt-cache writes (default: the input price x the 1-hour multiplier, :func:`one_hour_write_prices`)
    "cache_write_1h_usd_per_mtok": ("cache_write_1h_mtok", "USD per million tokens"),
}


@dataclass(frozen=True)
class UserPrice:
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    source: str
    #: multimodal and per-unit prices by price-table column (:data:`USER_UNIT_COLUMNS`), where given
    units: tuple[tuple[str, Decimal], ...] = ()
    #: a rented fleet (``billing: fleet``): ``usd_per_hour`` and ``output_tokens_per_second`` (its capacity);
    #: its rent is spread over the output tokens it served each UTC day (:func:`fleet_day_price`)
    fleet: dict | None = None


def read_user_prices(path: str | None) -> dict[tuple[str, str], UserPrice]:
    """A user price table: CSV with ``provider, model, input_usd_per_mtok, output_usd_per_mtok`` and
    optional ``cache_read_usd_per_mtok``, ``cache_write_usd_per_mtok``, ``source``, ``as_of`` and the unit prices of
    :data:`USER_UNIT_COLUMNS` (image and audio tokens, per image, per second, per web search). A row that gives a
    unit price may leave both token prices empty (a per-image model: its rows with tokens are then quarantined).
    ``provider`` may be empty (matches any provider). Keys are lower-case."""
    if not path:
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except UnicodeDecodeError as exc:
        raise BillshapeInputError("prices", path, "a UTF-8 text CSV file", _not_utf8(exc)) from None
    except OSError as exc:
        raise BillshapeInputError("prices", path, "a readable CSV file", str(exc)) from None
    except csv.Error as exc:
        raise BillshapeInputError("prices", path, "a readable CSV file", str(exc)) from None
    if not rows or any(c not in rows[0] for c in USER_COLUMNS[:2]) or (
            any(c not in rows[0] for c in USER_COLUMNS[2:]) and not any(c in rows[0] for c in USER_UNIT_COLUMNS)):
        raise BillshapeInputError("prices", path, "a CSV with columns " + ", ".join(USER_COLUMNS))
    out = {}
    for i, row in enumerate(rows, start=2):
        def dec(col, required=True, unit="USD per million tokens", top=MAX_USD_RATE):
            text = (row.get(col) or "").strip()
            if not text and not required:
                return None
            try:
                value = Decimal(text)
            except InvalidOperation:
                raise BillshapeInputError(f"prices {path}:{i} {col}", text, f"a number >= 0 ({unit})") from None
            if not value.is_finite() or not 0 <= value <= Decimal(repr(top)):
                raise BillshapeInputError(f"prices {path}:{i} {col}", text, f"a number in [0, {top:,.0f}] ({unit})")
            if value != value.quantize(NINE):
                raise BillshapeInputError(f"prices {path}:{i} {col}", text, f"at most 9 decimals ({unit})")
            return value

        units = tuple((field, v) for col, (field, unit) in USER_UNIT_COLUMNS.items()
                      if (v := dec(col, False, unit, MAX_USD_RATE if unit.endswith("tokens") else MAX_USD_PER_UNIT)) is not None)
        tokens_given = any((row.get(c) or "").strip() for c in USER_COLUMNS[2:])

        key = ((row.get("provider") or "").strip().lower(), (row.get("model") or "").strip().lower())
        src = (row.get("source") or "").strip() or f"user price table {path}"
        if row.get("as_of"):
            src += f" (as of {row['as_of'].strip()})"
        need = tokens_given or not units  # a per-unit row may leave both token prices empty
        out[key] = UserPrice(dec("input_usd_per_mtok", need), dec("output_usd_per_mtok", need), dec("cache_read_usd_per_mtok", False),
                             dec("cache_write_usd_per_mtok", False), src, units)
    return out


#: Keys of a ``self_hosted`` mapping (file rows or the inline form).
SELF_HOSTED_KEYS = ("name", "provider", "model", "gpu", "gpus", "precision", "usd_per_gpu_hour", "utilization",
                    "input_tokens", "output_tokens", "tp", "price_provider", "tier", "kv_precision", "billing",
                    "replicas")
#: ``NAME=fleet:MODEL@GPU[xN][:PRECISION[:USD_PER_GPU_HOUR[:REPLICAS]]]``: the fleet's rent spread over the tokens it served
FLEET_PREFIX = "fleet:"
SELF_HOSTED_INLINE = "NAME=MODEL@GPU[xN][:PRECISION[:USD_PER_GPU_HOUR[:UTILIZATION]]], e.g. 'llama-70b-prod=llama-3.1-70b@h100x2:fp8:2.5'"
NINE = Decimal("1e-9")


def _parse_inline(text: str) -> dict:
    name, eq, spec = text.partition("=")
    fleet = spec.strip().lower().startswith(FLEET_PREFIX)
    if fleet:
        spec = spec.strip()[len(FLEET_PREFIX):]
    model, at, dep = spec.partition("@")
    if not eq or not at or not name.strip() or not model.strip() or not dep.strip():
        raise BillshapeInputError("self_hosted", text, SELF_HOSTED_INLINE)
    parts = [p.strip() for p in dep.split(":")]
    if len(parts) > 4:
        raise BillshapeInputError("self_hosted", text, SELF_HOSTED_INLINE)
    gpu, x, n = parts[0].rpartition("x") if "x" in parts[0][1:] and parts[0].rpartition("x")[2].isdigit() else (parts[0], "", "")
    row = {"name": name.strip(), "model": model.strip(), "gpu": gpu or parts[0]}
    if n:
        row["gpus"] = n
    for key, value in zip(("precision", "usd_per_gpu_hour", "replicas" if fleet else "utilization"), parts[1:]):
        if value:
            row[key] = value
    if fleet:
        row["billing"] = "fleet"
    return row


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return f"not UTF-8 text: {exc.reason} at byte {exc.start}"


def _read_mapping_file(path: str) -> list[dict]:
    """A mapping file: YAML (a list of mappings, or ``{self_hosted: [...]}``) or CSV with a header."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as exc:
        raise BillshapeInputError("self_hosted", path, "a UTF-8 text YAML or CSV mapping file", _not_utf8(exc)) from None
    except OSError as exc:
        raise BillshapeInputError("self_hosted", path, "a readable YAML or CSV mapping file", type(exc).__name__) from None
    if path.lower().endswith(".csv"):
        rows = [{k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(text.splitlines())]
        return [{k: v for k, v in r.items() if v != ""} for r in rows]
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise BillshapeInputError("self_hosted", path, "valid YAML: a list of {name, model, gpu, gpus, ...}") from None
    if isinstance(data, dict) and "self_hosted" in data:
        data = data["self_hosted"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise BillshapeInputError("self_hosted", path, "a YAML list of {name, model, gpu, gpus, precision, usd_per_gpu_hour, ...}")
    return data


def read_self_hosted(items: list[str] | None) -> dict[tuple[str, str], UserPrice]:
    """Self-hosted prices from the serving model: one :func:`billshape.serving.self_hosted_price` call per mapping.

    Each item is the inline form :data:`SELF_HOSTED_INLINE` or a YAML/CSV file of mappings with keys
    :data:`SELF_HOSTED_KEYS` (``name``: the model as the logs write it, default ``model``; ``provider``: as the
    logs write it, default any; ``model``, ``gpu``, ``gpus``, ``precision``, ``usd_per_gpu_hour`` or
    ``price_provider`` [+ ``tier``], ``utilization``, typical ``input_tokens``/``output_tokens`` per request).
    Prices are the serving model's $/M input and output tokens, rounded to 1e-9 USD per million tokens;
    cache reads are charged at the input price (the serving model has no cache price).
    ``NAME=measured:FILE`` takes the measured figure instead (:func:`_measured_price`).
    """
    from billshape import serving

    out: dict[tuple[str, str], UserPrice] = {}
    for item in items or []:
        name, _, spec = item.partition("=")
        if spec.strip().lower().startswith(MEASURED_PREFIX):
            out[("", name.strip().lower())] = _measured_price(item, spec.strip()[len(MEASURED_PREFIX):])
            continue
        is_file = "=" not in item and os.path.isfile(item)
        if "=" not in item and not is_file:
            raise BillshapeInputError("self_hosted", item, SELF_HOSTED_INLINE + ", or a YAML/CSV mapping file")
        rows = _read_mapping_file(item) if is_file else [_parse_inline(item)]
        for i, row in enumerate(rows):
            where = f"self_hosted {item}" + (f"[{i}]" if is_file else "")
            unknown = sorted(set(row) - set(SELF_HOSTED_KEYS))
            if unknown:
                raise BillshapeInputError(f"{where} {unknown[0]}", row[unknown[0]], "one of " + ", ".join(SELF_HOSTED_KEYS))
            for key in ("model", "gpu"):
                if not str(row.get(key) or "").strip():
                    raise BillshapeInputError(f"{where} {key}", row.get(key), "a name (see `billshape serve --help`)")

            def num(key):
                if row.get(key) in (None, ""):
                    return None
                try:
                    x = float(row[key])
                except (TypeError, ValueError):
                    raise BillshapeInputError(f"{where} {key}", row[key], "a number") from None
                return x

            kwargs = {k: num(k) for k in ("gpus", "usd_per_gpu_hour", "input_tokens", "output_tokens", "tp")}
            kwargs = {k: x for k, x in kwargs.items() if x is not None}
            billing = str(row.get("billing") or "per-token").strip().lower()
            if billing not in ("per-token", "fleet"):
                raise BillshapeInputError(f"{where} billing", row.get("billing"), "per-token (at `utilization`) or fleet "
                                          "(the rent spread over the tokens served)")
            util = num("utilization")
            replicas = num("replicas")
            if billing == "fleet" and util is not None:
                raise BillshapeInputError(f"{where} utilization", util, "omitted with billing fleet (the utilization "
                                          "is measured: tokens served / capacity)")
            if billing != "fleet" and replicas is not None:
                raise BillshapeInputError(f"{where} replicas", replicas, "only with billing fleet")
            if replicas is not None and (replicas < 1 or replicas != int(replicas) or replicas > 1e6):
                raise BillshapeInputError(f"{where} replicas", replicas, "a whole number in [1, 1e6]")
            if util is not None:
                kwargs["utilization"] = util
            for k in ("precision", "tier", "kv_precision"):
                if row.get(k):
                    kwargs[k] = str(row[k]).strip().lower()
            if row.get("price_provider"):
                kwargs["provider"] = str(row["price_provider"]).strip().lower()
            if "usd_per_gpu_hour" not in kwargs and "provider" not in kwargs:
                raise BillshapeInputError(f"{where} usd_per_gpu_hour", None, "a $/GPU-hour, or price_provider [+ tier]")
            model, gpu = str(row["model"]).strip(), str(row["gpu"]).strip()
            try:
                p = serving.self_hosted_price(model, gpu, **kwargs)
            except BillshapeInputError as exc:
                raise BillshapeInputError(where, f"{model}@{gpu}", "a deployment the serving model can price", str(exc)) from None
            i_f, o_f = (float(p[k]) for k in ("usd_per_million_input_tokens", "usd_per_million_output_tokens"))
            if not all(math.isfinite(x) and 0 <= x <= MAX_USD_RATE for x in (i_f, o_f)):
                raise BillshapeInputError(where, f"{model}@{gpu}", f"a deployment priced at most {MAX_USD_RATE:,.0f} USD per million tokens",
                                          f"the serving model gives ${i_f:.6g}/M input, ${o_f:.6g}/M output")
            i_p, o_p = (Decimal(repr(x)).quantize(NINE) for x in (i_f, o_f))
            gpus = kwargs.get("gpus", 1)
            price = f"${kwargs['usd_per_gpu_hour']:g}/GPU-hour" if "usd_per_gpu_hour" in kwargs else \
                f"{kwargs['provider']} {kwargs.get('tier', '')}".strip() + " catalog price"
            src = (f"billshape serving model: {model} on {gpus:g}x {gpu} {kwargs.get('precision', 'fp8')} at {price}, "
                   f"utilization {kwargs.get('utilization', 1.0):g}, {kwargs.get('input_tokens', 1000):g} in / "
                   f"{kwargs.get('output_tokens', 1000):g} out tokens per request")
            name = str(row.get("name") or model).strip().lower()
            prov = str(row.get("provider") or "").strip().lower()
            if billing == "fleet":
                n = int(replicas or 1)
                fleet = {"usd_per_hour": float(p["usd_per_hour"]) * n,
                         "output_tokens_per_second": float(p["output_tokens_per_second"]) * n, "replicas": n}
                src = (f"billshape fleet rent: {n} x {model} on {gpus:g}x {gpu} {kwargs.get('precision', 'fp8')} at "
                       f"{price} = ${fleet['usd_per_hour']:,.6g}/hour, spread over the output tokens served each UTC day "
                       f"(capacity {fleet['output_tokens_per_second']:,.0f} output tokens/s at "
                       f"{kwargs.get('input_tokens', 1000):g} in / {kwargs.get('output_tokens', 1000):g} out per request)")
                out[(prov, name)] = UserPrice(Decimal(0), Decimal(0), Decimal(0), Decimal(0), src, fleet=fleet)
                continue
            out[(prov, name)] = UserPrice(i_p, o_p, None, None, src)
    return out


#: seconds in the period a fleet's rent is spread over (a UTC day)
DAY_SECONDS = 86_400


def fleet_day_price(up: UserPrice, output_tokens: int | None) -> dict:
    """A fleet's price for one UTC day: its rent for the day over the output tokens it served that day
    [USD per million output tokens], $0 on input (the rent is all on output), and the measured utilization
    (tokens served / (capacity tokens/s x seconds)). No tokens that day: a ``price_error``."""
    f = up.fleet
    if not output_tokens:
        return {"price_error": "a fleet's day with no output tokens: its rent has nothing to spread over"}
    rent = f["usd_per_hour"] * DAY_SECONDS / 3600.0
    per_m = Decimal(repr(rent / output_tokens * 1e6)).quantize(NINE)
    util = output_tokens / (f["output_tokens_per_second"] * DAY_SECONDS)
    return {"input_mtok": Decimal(0), "output_mtok": per_m, "cache_read_mtok": Decimal(0), "cache_write_mtok": Decimal(0),
            "price_source": up.source + f"; that day: ${rent:,.2f} rent over {output_tokens:,} output tokens, "
                                        f"utilization {util:.2%}", "utilization": util}


#: ``--self-hosted NAME=measured:FILE``: the $/M output tokens measured from the serving stack's metrics
MEASURED_PREFIX = "measured:"


def _measured_price(item: str, path: str) -> UserPrice:
    """A self-hosted price from a measured JSON (``billshape usage measured --json``): its
    ``usd_per_million_output_tokens`` (the whole rent over delivered output tokens) on output, 0 on input (the
    rent is already all on output; charging input too would count it twice)."""
    import json

    allowed = "NAME=measured:FILE, FILE the JSON of `billshape usage measured --json` (with usd_per_million_output_tokens)"
    try:
        with open(path.strip(), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BillshapeInputError("self_hosted", item, allowed, type(exc).__name__) from None
    x = data.get("usd_per_million_output_tokens") if isinstance(data, dict) else None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not 0 <= x <= MAX_USD_RATE:
        raise BillshapeInputError("self_hosted", item, allowed, f"usd_per_million_output_tokens is {x!r} (measured with a price?)")
    src = (f"measured from Prometheus metrics ({path.strip()}: {data.get('output_tokens_per_second', 0):,.1f} output tokens/s "
           f"on {data.get('gpus')} GPUs at ${data.get('usd_per_gpu_hour')}/GPU-hour, rent all on output tokens)")
    return UserPrice(Decimal(0), Decimal(repr(float(x))).quantize(NINE), None, None, src)


def _genai_price(provider: str | None, model: str, day: dt.date) -> dict:
    """A price-table row from :func:`billshape.api_prices.quote` (the project's one genai-prices look-up), or a
    row with ``price_error`` when genai-prices has no usable price."""
    from billshape import api_prices

    src = f"genai-prices {api_prices.version()}"
    try:
        q = api_prices.quote(model, provider or None, day)
    except api_prices.ApiPriceMiss as miss:
        if miss.kind == "tiers":
            error = f"multi-tier price for {miss.found} not supported"
        elif miss.kind == "tokens":
            error = f"no token price for {miss.found}"
        else:
            error = f"no price for model {model}" + (f" (provider {provider})" if provider else "")
        return {"price_error": error, "price_source": src}
    return long_context_prices(q.provider, {"price_model": f"{q.provider}/{q.model}", "price_source": src, **q.prices()})


def long_context_prices(provider: str, row: dict) -> dict:
    """A genai-prices row with no tier of its own, given the provider's long-context tier: ``tier_start`` from
    ``constants.csv`` ``<provider>_long_context_threshold_tokens`` and each ``tier_*`` price = the base price x
    that component's ``standard_long_context`` multiplier (``data/service_tiers.csv``), rounded to 1e-9. Only a
    1M-context model can take a request over the threshold, so the rule is the provider's (Claude Sonnet 4 has
    no tier in genai-prices 0.2.3; Sonnet 4.5's own tier gives the same prices). Other rows are returned as they are."""
    if row.get("tier_start") is not None:
        return row
    rows = {t.component: t.multiplier for t in tier_rows() if t.provider == provider and not t.model
            and t.tier == "standard" + LONG_CONTEXT_SUFFIX}
    if not rows:
        return row
    from billshape import catalog

    start = int(catalog.constant(f"{provider}{LONG_CONTEXT_SUFFIX}_threshold_tokens").value)
    out = dict(row, tier_start=start)
    for f in ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok"):
        base = row.get(f) if row.get(f) is not None else (row.get("input_mtok") if f.startswith("cache") else None)
        m = rows.get(f.removesuffix("_mtok"), rows.get("all"))
        out["tier_" + f] = None if base is None or m is None else (base * m).quantize(NINE)
    if row.get("cache_write_1h_mtok") is not None:  # a 1-hour write is a cache write: the cache_write multiplier
        m = rows.get("cache_write", rows.get("all"))
        out["tier_cache_write_1h_mtok"] = None if m is None else (row["cache_write_1h_mtok"] * m).quantize(NINE)
    return out


#: ``constants.csv`` row of the price of an Anthropic 1-hour cache write, as a multiple of the input price.
ONE_HOUR_MULTIPLIER = "anthropic_cache_write_1h_input_multiplier"


def is_anthropic_model(provider: str | None, model: str | None) -> bool:
    """Whether a price row is an Anthropic model's: provider ``anthropic``, or a Claude model served elsewhere
    (Bedrock, Vertex AI: the model name contains ``claude``), which bill 1-hour cache writes the same way."""
    return (provider or "").lower() == "anthropic" or "claude" in (model or "").lower()


def one_hour_write_prices(provider: str | None, model: str | None, row: dict) -> dict:
    """A price-table row with the price of an Anthropic 1-hour prompt-cache write (``cache_write_1h_mtok``, and
    ``tier_cache_write_1h_mtok`` where the row has a long-context tier) filled where its source gives none.

    The source's own figure wins: genai-prices' ``cache_write_1h_mtok`` (it has one for Anthropic's models, e.g.
    Claude Sonnet 4 $6 per million tokens = 2 x $3 input), or a user price table's ``cache_write_1h_usd_per_mtok``.
    Else, for an Anthropic model (:func:`is_anthropic_model`), the input price x the ``constants.csv`` multiplier
    :data:`ONE_HOUR_MULTIPLIER` (2), and for the long-context tier the tier's input price x that multiplier,
    rounded to 1e-9. Other rows are returned as they are: a 1-hour write of a model without the price is priced
    at its cache-write price, as every cache write was before.

    References
    ----------
    Anthropic, "Prompt caching", Pricing: "1-hour cache write tokens are 2x the base input tokens price"
    (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#pricing).
    """
    if not is_anthropic_model(provider, model) or row.get("price_error"):
        return row
    need_base = row.get("cache_write_1h_mtok") is None and row.get("input_mtok") is not None
    need_tier = (row.get("tier_start") is not None and row.get("tier_cache_write_1h_mtok") is None
                 and row.get("tier_input_mtok") is not None)
    if not (need_base or need_tier):
        return row
    from billshape import catalog

    m = Decimal(repr(catalog.constant(ONE_HOUR_MULTIPLIER).value))
    out = dict(row)
    if need_base:
        out["cache_write_1h_mtok"] = (row["input_mtok"] * m).quantize(NINE)
    if need_tier:
        out["tier_cache_write_1h_mtok"] = (row["tier_input_mtok"] * m).quantize(NINE)
    return out


#: A service tier with this suffix is billed at long-context rates (``data/service_tiers.csv``).
LONG_CONTEXT_SUFFIX = "_long_context"


def price_for(provider: str | None, model: str, day: dt.date, user: dict[tuple[str, str], UserPrice]) -> dict:
    """One row of the price table for a key (with ``price_error`` set when there is no price)."""
    m = model.lower()
    up = user.get(((provider or "").lower(), m)) or user.get(("", m))
    if up is not None:
        row = {"price_model": f"{provider or ''}/{model}".lstrip("/"), "price_source": up.source, "input_mtok": up.input_mtok,
               "output_mtok": up.output_mtok, "cache_read_mtok": up.cache_read_mtok, "cache_write_mtok": up.cache_write_mtok,
               **dict(up.units)}
    else:
        row = _genai_price(provider, model, day)
    return one_hour_write_prices(provider or (row.get("price_model") or "").partition("/")[0], model, row)


#: a row dated after today (UTC) + this many days is implausible (a clock a day ahead, a time zone) [days]
FUTURE_SLACK_DAYS = 1
#: the row of ``data/api_prices_as_of.csv`` that gives the first plausible day of a usage row
EARLIEST_ROW = "usage_earliest"


def _earliest_row() -> dict[str, str]:
    from billshape import catalog

    return {r["name"]: r for r in catalog.read_rows("api_prices_as_of.csv")}[EARLIEST_ROW]


def plausible_window(today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The UTC days a usage row may be priced on: from the catalog's first day (2020-01-01: no hosted LLM API
    billed tokens before) to ``today`` (default: today, UTC) + :data:`FUTURE_SLACK_DAYS`, both included. A row
    outside is quarantined (:func:`window_error`), not priced at the nearest price genai-prices has."""
    today = dt.datetime.now(dt.timezone.utc).date() if today is None else today
    return dt.date.fromisoformat(_earliest_row()["date"]), today + dt.timedelta(days=FUTURE_SLACK_DAYS)


def window_text(window: tuple[dt.date, dt.date]) -> str:
    return f"{window[0].isoformat()} to {window[1].isoformat()}"


def window_error(day: dt.date, window: tuple[dt.date, dt.date]) -> str | None:
    """The quarantine reason of a row dated ``day`` outside ``window`` (naming both), or None inside it."""
    if window[0] <= day <= window[1]:
        return None
    return f"timestamp {day.isoformat()} outside the plausible window {window_text(window)} (UTC)"


def window_assumption(window: tuple[dt.date, dt.date]):
    """The window as an assumption: the first day is the catalog row's (source, as_of); the last is today + 1 day."""
    from billshape.results import Assumption

    row = _earliest_row()
    return Assumption(name="plausible timestamp window", value=window_text(window), unit="UTC days, both included",
                      source=f"{row['source']}; last day: today (UTC) + {FUTURE_SLACK_DAYS} day (billshape default)",
                      as_of=row["as_of"])


def price_table(keys: list[tuple[str | None, str, dt.date]], user: dict[tuple[str, str], UserPrice],
                window: tuple[dt.date, dt.date] | None = None, day_tokens: dict | None = None) -> pa.Table:
    """The price table for the distinct ``(provider, model, day)`` keys of a log (one genai-prices look-up each).

    With a ``window`` (:func:`plausible_window`), a key whose day lies outside it has no price (``price_error``:
    :func:`window_error`), whatever the price tables say: its rows are quarantined. A fleet mapping
    (``billing: fleet``) is priced per day from ``day_tokens`` (``(provider, model, day)`` -> output tokens of
    the rows being priced; :func:`fleet_day_price`); without them (re-pricing) its rows stay quarantined."""
    rows = []
    for provider, model, day in keys:
        row = {f.name: None for f in PRICES}
        error = window_error(day, window) if window is not None else None
        m = model.lower()
        up = user.get(((provider or "").lower(), m)) or user.get(("", m))
        if not error and up is not None and up.fleet is not None:
            if day_tokens is None:
                error = "a fleet's rent is spread over a day's tokens at ingest (re-pricing does not see the day)"
            else:
                got = fleet_day_price(up, day_tokens.get((provider or "", model, day)))
                got.pop("utilization", None)
                row.update(got)
                row.update(price_model=f"{provider or ''}/{model}".lstrip("/"), provider_key=provider or "", model=model,
                           day=day)
                rows.append(row)
                continue
        row.update({"price_error": error} if error else price_for(provider, model, day, user))
        row.update(provider_key=provider or "", model=model, day=day)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=PRICES)


# --------------------------------------------------------------------------------------------- service tiers

#: The catalog of service-tier multipliers (``data/service_tiers.csv``).
TIERS_FILE = "service_tiers.csv"
#: Price components a tier row may name (``all``: every component without a row of its own).
TIER_COMPONENTS = ("all", "input", "cache_read", "cache_write", "output", "requests", "image", "audio", "images", "seconds",
                   "web_search")


@dataclass(frozen=True)
class TierRow:
    provider: str  # "" = any provider
    tier: str
    model: str  # "" = any model; else the exact model name (lower case)
    component: str
    multiplier: Decimal
    source: str
    as_of: str


def tier_rows() -> tuple[TierRow, ...]:
    """The service-tier multipliers, most specific first (model rows, then provider rows, then any-provider rows;
    within each, component rows before ``all``): the first row that matches a ledger row and a component wins."""
    return _tier_rows()


def _tier_rows() -> tuple[TierRow, ...]:
    global _TIERS
    if _TIERS is None:
        from billshape import catalog

        rows = []
        for r in catalog.read_rows(TIERS_FILE):
            comp = r.get("component") or "all"
            if comp not in TIER_COMPONENTS:
                raise ValueError(f"{TIERS_FILE}: component {comp!r} is not one of {', '.join(TIER_COMPONENTS)}")
            m = Decimal(r["multiplier"])
            if not m.is_finite() or not 0 <= m <= 100 or m != m.quantize(NINE):
                raise ValueError(f"{TIERS_FILE}: multiplier {r['multiplier']!r} is not a number in [0, 100] with at most 9 decimals")
            rows.append(TierRow(r["provider"].lower(), r["tier"].lower(), r["model"].lower(), comp, m, r["source"], r["as_of"]))
        _TIERS = tuple(sorted(rows, key=lambda t: (t.model == "", t.provider == "", t.component == "all")))
    return _TIERS


_TIERS: tuple[TierRow, ...] | None = None
