"""Service tiers in the engine: each row's tier multiplier for a price component, from the catalog rows of
``data/service_tiers.csv`` (:func:`billshape.usage.prices.tier_rows`), as Ibis expressions.

The decimal reference (:func:`billshape.usage.engine.cost_columns`) and ``usage whatif`` price with these; the
ingest's rate table (:mod:`billshape.usage.rates`) computes the same multipliers once per key in Python
(:func:`billshape.usage.rates.tier_multipliers`, matched the same way).
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt


def _tier_cases(t, component: str | None, prefix: str = ""):
    """``(condition, multiplier)`` of the catalog rows that apply to ``component`` (None: any), most specific first.

    A row's provider and model are matched against the key pricing used (``prefix + price_model``: genai-prices'
    normalised ``provider/model``, so ``gpt-4o-2024-08-06`` is ``openai/gpt-4o``; the price table's model and
    ``provider_key``), so that a logged name that differs from the catalog's id finds its row, and a what-if
    route's prices (``prefix`` ``r0_``) find the TO model's rows, not the FROM model's."""
    from billshape.usage.prices import tier_rows

    tier = t.service_tier.lower()
    keyed = prefix + "price_model" in t.columns
    pm = t[prefix + "price_model"].lower().coalesce("") if keyed else None
    name = t[prefix + "model"].lower() if keyed else t.model.lower()
    pk = t[prefix + "provider_key"].lower() if keyed and prefix + "provider_key" in t.columns else t.provider.lower()
    out = []
    for r in tier_rows():
        if component is not None and r.component not in (component, "all"):
            continue
        cond = tier == r.tier
        if r.provider:
            cond = cond & ((pk == r.provider) | pm.startswith(r.provider + "/") if keyed else pk == r.provider)
        if r.model:
            norm = (pm == f"{r.provider}/{r.model}") if r.provider else ((pm == r.model) | pm.endswith("/" + r.model))
            cond = cond & ((name == r.model) | norm if keyed else name == r.model)
        out.append((cond, ibis.literal(r.multiplier, dt.Decimal(18, 9))))
    return out


def tier_multiplier(t, component: str, prefix: str = ""):
    """The service-tier multiplier of a price component for each row (``data/service_tiers.csv``; 1 where the row
    has no tier, and where its tier has no row: those rows are quarantined by :func:`billshape.usage.engine.priced`)."""
    one = ibis.literal(1, dt.Decimal(18, 9))
    cases = _tier_cases(t, component, prefix) if "service_tier" in t.columns else []
    return ibis.cases(*cases, else_=one) if cases else one


def known_tier(t, prefix: str = ""):
    """Whether a row's service tier is null or has a catalog row."""
    if "service_tier" not in t.columns:
        return ibis.literal(True)
    cases = _tier_cases(t, None, prefix)
    known = t.service_tier.isnull()
    for cond, _ in cases:
        known = known | cond.fill_null(False)
    return known


def _tiered_price(price, t, component: str, prefix: str = ""):
    """A price [decimal(18, 9)] times the row's tier multiplier, rounded back to 1e-9 (the price type)."""
    if "service_tier" not in t.columns:
        return price
    # ibis types the product decimal(18, 9) and would drop a cast to it: the engines' product is wider
    # (DuckDB decimal(36, 18), Spark decimal(37, 18)), so cast through decimal(38, 18) to round it back
    return (price * tier_multiplier(t, component, prefix)).cast(dt.Decimal(38, 18)).cast(dt.Decimal(18, 9))
