"""Rates: each price component's service-tiered price, computed once per key, and the costs in 64-bit integers.

The price table (:func:`billshape.usage.prices.price_table`) has one row per ``(provider, model, UTC day)``. The
rate table (:func:`rate_table`) has one row per ``(provider, model, day, service tier)`` present in the rows
being priced, with every price component already multiplied by its tier multiplier (``data/service_tiers.csv``)
and rounded to 1e-9 (half away from zero, as the engines cast decimals), in Python's exact decimals. The
engine joins it on those four keys and computes each cost component from the row's units and the component's
rate as 64-bit integer arithmetic (:func:`round_units`): no per-row string matching of tier rows, no 128-bit
decimal rounding. The result is the same integer micro-dollars, to the unit, as the decimal formula of
:func:`billshape.usage.engine.cost_columns` (``round(units x tiered price)``, half away from zero), which stays the
reference (and what ``usage whatif`` prices with); a hypothesis test holds the two equal.

A rate is stored as two integers, ``hi`` and ``lo``: the price in micro-dollars per unit is ``hi + lo / 1e9``
(``0 <= lo < 1e9``). Per-token prices are USD per million tokens, i.e. micro-dollars per token; per-request
prices are USD per thousand requests x 1000; per-unit prices (images, seconds, web searches) are USD x 1e6.

``r_cache_write_1h`` (and ``_lc``) prices Anthropic's 1-hour cache writes (``cache_write_1h_tokens``, a part of the
cache writes): the price table's ``cache_write_1h_mtok`` (genai-prices' own figure when it has one, else the
input price x the 1-hour multiplier: :func:`billshape.usage.prices.one_hour_write_prices`), else the cache-write
price, at the tier multiplier of ``cache_write``; its cost is added to ``usd_micro_cache_write``.
"""

from __future__ import annotations

import datetime as _dt
from decimal import ROUND_HALF_UP, Context, Decimal

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from billshape.usage.schema import MICRO, PRICES

NINE = Decimal("1e-9")
NANO = 10**9
_CTX = Context(prec=60)

#: Rates that depend on whether the row is billed at the model's long-context tier (``tier_start``).
LONG_CONTEXT_RATES = ("input", "cache_read", "cache_write", "output", "image_in", "cache_write_1h")
#: Rates that do not.
FLAT_RATES = ("requests", "image_out", "audio_in", "audio_out", "images", "seconds", "web_search")
#: The rate table's rate columns: ``r_<rate>`` (and ``r_<rate>_lc`` for the long-context tier), each as ``_hi``/``_lo``.
RATE_COLUMNS = tuple(f"r_{r}{sfx}" for r in LONG_CONTEXT_RATES for sfx in ("", "_lc")) + tuple(f"r_{r}" for r in FLAT_RATES)

RATES = pa.schema([
    *PRICES,
    ("service_tier", pa.string()),
    ("tier_known", pa.bool_()),
    *[(f"{c}_{part}", pa.int64()) for c in RATE_COLUMNS for part in ("hi", "lo")],
])


def tier_multipliers(provider: str | None, model: str, tier: str | None,
                     price_model: str | None = None) -> tuple[bool, dict[str, Decimal]]:
    """Whether a row's tier is known (null, or a catalog row matches) and the multiplier of each tier component
    (:data:`billshape.usage.prices.TIER_COMPONENTS`): the first matching catalog row (most specific first) naming the
    component or ``all``; 1 where none matches. Matching is on lower-cased tier, provider and model, and on the key
    pricing used (``price_model``: genai-prices' normalised ``provider/model``, so that ``gpt-4o-2024-08-06``, which
    is ``openai/gpt-4o``, finds the catalog's ``gpt-4o`` row), as :func:`billshape.usage.tiers._tier_cases` does it
    in the engine."""
    from billshape.usage.prices import TIER_COMPONENTS, tier_rows

    one = Decimal(1)
    if tier is None:
        return True, {c: one for c in TIER_COMPONENTS}
    t, p, m, pm = tier.lower(), (provider or "").lower(), (model or "").lower(), (price_model or "").lower()

    def provider_ok(r):
        return not r.provider or r.provider == p or (bool(pm) and pm.startswith(r.provider + "/"))

    def model_ok(r):
        if not r.model or r.model == m:
            return True
        if not pm:
            return False
        return pm == f"{r.provider}/{r.model}" if r.provider else (pm == r.model or pm.endswith("/" + r.model))

    rows = [r for r in tier_rows() if r.tier == t and provider_ok(r) and model_ok(r)]
    out = {}
    for c in TIER_COMPONENTS:
        hit = next((r for r in rows if r.component in (c, "all")), None)
        out[c] = hit.multiplier if hit is not None else one
    return bool(rows), out


def _r9(x: Decimal) -> Decimal:
    return x.quantize(NINE, rounding=ROUND_HALF_UP, context=_CTX)


def _coalesce(*xs):
    return next((x for x in xs if x is not None), None)


def _split(micro_per_unit: Decimal) -> tuple[int, int]:
    """A price in micro-dollars per unit (at most 9 decimals) as ``(hi, lo)``: ``hi + lo / 1e9``."""
    n = int(micro_per_unit.scaleb(9, context=_CTX))
    return n // NANO, n % NANO


def rates_of(p: dict, mult: dict[str, Decimal]) -> dict[str, Decimal]:
    """Each rate of a price-table row ``p`` (decimals or None) at the tier multipliers ``mult``, in micro-dollars
    per unit: the formulas of :func:`billshape.usage.engine.cost_columns`, evaluated once in exact decimals."""
    zero = Decimal(0)

    def tiered(x, component):  # round(price x multiplier) to 1e-9, as the engines cast back to decimal(18, 9)
        return _r9((x if x is not None else zero) * mult[component])

    def base(name):
        return p[name] if name in ("input_mtok", "output_mtok") else _coalesce(p[name], p["input_mtok"])

    def long_context(name):
        return _coalesce(p["tier_" + name], p["tier_input_mtok"] if name.startswith("cache") else None, base(name))

    out = {}
    for rate, name in (("input", "input_mtok"), ("cache_read", "cache_read_mtok"), ("cache_write", "cache_write_mtok"),
                       ("output", "output_mtok")):
        out[f"r_{rate}"] = tiered(base(name), rate)
        out[f"r_{rate}_lc"] = tiered(long_context(name), rate)
    # 1-hour cache writes: their price-table price (genai-prices', or input x the 1-hour multiplier:
    # billshape.usage.prices.one_hour_write_prices), else the cache-write price; a cache write's tier multiplier
    out["r_cache_write_1h"] = tiered(_coalesce(p.get("cache_write_1h_mtok"), base("cache_write_mtok")), "cache_write")
    out["r_cache_write_1h_lc"] = tiered(_coalesce(p.get("tier_cache_write_1h_mtok"), long_context("cache_write_mtok")),
                                      "cache_write")
    out["r_image_in"] = tiered(_coalesce(p["input_image_mtok"], p["input_mtok"]), "image")
    out["r_image_in_lc"] = tiered(_coalesce(p["input_image_mtok"], p["tier_input_mtok"], p["input_mtok"]), "image")
    out["r_requests"] = tiered((p["requests_kpr"] if p["requests_kpr"] is not None else zero) * 1000, "requests")
    out["r_image_out"] = tiered(p["output_image_mtok"], "image")
    out["r_audio_in"] = tiered(p["input_audio_mtok"], "audio")
    out["r_audio_out"] = tiered(p["output_audio_mtok"], "audio")
    for rate, name in (("images", "usd_per_image"), ("seconds", "usd_per_second"), ("web_search", "usd_per_web_search")):
        out[f"r_{rate}"] = tiered(p[name], rate) * MICRO
    return out


def rate_table(prices: pa.Table, keys: list[tuple[str | None, str, _dt.date, str | None]]) -> pa.Table:
    """The rate table (:data:`RATES`) for the distinct ``(provider, model, day, service_tier)`` keys of the rows
    being priced, from their price table (one row per ``(provider_key, model, day)``). A key whose price row is
    missing is left out (its rows find no rate and are quarantined for want of a price, as before)."""
    by_key = {(r["provider_key"], r["model"], r["day"]): r for r in prices.to_pylist()}
    out, seen = [], set()
    for provider, model, day, tier in keys:
        p = by_key.get((provider or "", model, day))
        if p is None or (provider or "", model, day, tier) in seen:  # a null and an empty provider are one key
            continue
        seen.add((provider or "", model, day, tier))
        known, mult = tier_multipliers(provider, model, tier, p.get("price_model"))
        row = {**p, "service_tier": tier, "tier_known": known}
        for name, value in rates_of(p, mult).items():
            row[f"{name}_hi"], row[f"{name}_lo"] = _split(value)
            bound = MAX_COUNT_RATE_HI if name in COUNT_RATES else MAX_RATE_HI
            if row[f"{name}_hi"] > bound:
                from billshape.errors import BillshapeInputError

                raise BillshapeInputError(f"price of {model} ({name[2:]}, tier {tier or 'default'})", str(value),
                                          f"at most {bound} micro-dollars per unit (${bound // 10**6:,} per "
                                          f"{'unit' if name in COUNT_RATES else 'token or request'})")
        out.append(row)
    return pa.Table.from_pylist(out, schema=RATES)


# ------------------------------------------------------------------------------------------ in the engine

@ibis.udf.scalar.builtin(name="divide")
def _duckdb_idiv(a: dt.int64, b: dt.int64) -> dt.int64:
    """Integer division, truncating (DuckDB's ``divide``, the ``//`` operator on integers)."""


@ibis.udf.scalar.builtin(name="div")
def _spark_idiv(a: dt.int64, b: dt.int64) -> dt.int64:
    """Integer division, truncating (Spark's ``div``)."""


IDIV = {"duckdb": _duckdb_idiv, "spark": _spark_idiv}
#: Units up to which :func:`round_units` takes its one-division path (``units x lo`` stays below 2^63).
FAST_UNITS = 9_000_000_000
#: The largest whole part of a rate [micro-dollars per unit] the integer costs take: $9 per token, image, second or
#: request, so that ``units x rate`` stays below 2^63 for any row the readers accept (at most 1e12 units). Every
#: published price is far below it (the dearest token is under $0.001); a rate above it is refused, not overflowed.
MAX_RATE_HI = 9_000_000
#: The same bound for the rates per counted unit (images, seconds of media, web searches), whose rows the readers
#: cap at 1e9 units (:data:`billshape.usage.schema.MAX_UNITS_PER_ROW`): $9,000 per unit.
MAX_COUNT_RATE_HI = 9_000_000_000
COUNT_RATES = ("r_images", "r_seconds", "r_web_search")


def round_units(units, hi, lo, engine: str = "duckdb"):
    """Integer micro-dollars of ``units x (hi + lo / 1e9)``, rounded half away from zero, exactly, in 64-bit
    integers: with ``u = |units| = uh x 1e6 + ul`` and ``uh x lo = aq x 1000 + ar``,
    ``u x (hi + lo / 1e9) = u x hi + aq + (ar x 1e6 + ul x lo) / 1e9``, every intermediate below 2^63 for any
    row the readers accept (|units| <= 1e12) at any rate the rate table takes (``hi <=`` :data:`MAX_RATE_HI`, or
    :data:`MAX_COUNT_RATE_HI` for counted units, at most 1e9 a row);
    up to :data:`FAST_UNITS` units (every realistic row), ``units x hi + (units x lo + 5e8) div 1e9``."""
    idiv = IDIV[engine]
    # every realistic row: 0 <= units <= 9e9, so units x lo < 9.2e18 and one division does it
    fast = units * hi + idiv(units * lo + 500_000_000, NANO)
    u = units.abs()
    uh, ul = idiv(u, 1_000_000), u % 1_000_000
    a = uh * lo
    frac = idiv((a % 1000) * 1_000_000 + ul * lo + 500_000_000, NANO)
    m = u * hi + idiv(a, 1000) + frac
    return ibis.ifelse((units >= 0) & (units <= FAST_UNITS), fast, ibis.ifelse(units < 0, -m, m))


def rate_costs(t, engine: str = "duckdb") -> dict:
    """The cost components [integer micro-dollars] of a stage joined to its rate table (:func:`rate_table`): the
    same units as :func:`billshape.usage.engine.cost_columns`, at the row's rates (the long-context rate where the
    row is a single request whose input exceeds ``tier_start``)."""
    from billshape.usage.schema import UNIT_FIELDS

    lc = t.tier_start.notnull() & (t.requests == 1) & (t.input_tokens > t.tier_start)

    def cost(units, rate):
        if rate in LONG_CONTEXT_RATES:
            hi = ibis.ifelse(lc, t[f"r_{rate}_lc_hi"], t[f"r_{rate}_hi"])
            lo = ibis.ifelse(lc, t[f"r_{rate}_lc_lo"], t[f"r_{rate}_lo"])
        else:
            hi, lo = t[f"r_{rate}_hi"], t[f"r_{rate}_lo"]
        return round_units(units, hi, lo, engine)

    n = {f: (t[f].coalesce(0) if f in t.columns else ibis.literal(0, "int64")) for f in UNIT_FIELDS}
    uncached = t.input_tokens - t.cache_read_tokens - t.cache_write_tokens - n["input_image_tokens"] - n["input_audio_tokens"]
    text_out = t.output_tokens - n["output_image_tokens"] - n["output_audio_tokens"]
    w1h = n["cache_write_1h_tokens"]
    return {
        "usd_micro_input": cost(uncached, "input"),
        "usd_micro_cache_read": cost(t.cache_read_tokens, "cache_read"),
        # the 5-minute writes at the cache-write rate, the 1-hour writes (a part of them) at theirs
        "usd_micro_cache_write": cost(t.cache_write_tokens - w1h, "cache_write") + cost(w1h, "cache_write_1h"),
        "usd_micro_output": cost(text_out, "output"),
        "usd_micro_requests": cost(t.requests, "requests"),
        "usd_micro_image": cost(n["input_image_tokens"], "image_in") + cost(n["output_image_tokens"], "image_out"),
        "usd_micro_audio": cost(n["input_audio_tokens"], "audio_in") + cost(n["output_audio_tokens"], "audio_out"),
        "usd_micro_images": cost(n["images_generated"], "images"),
        "usd_micro_seconds": cost(n["seconds_generated"], "seconds"),
        "usd_micro_web_search": cost(n["web_search_calls"], "web_search"),
    }
