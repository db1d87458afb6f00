"""The one look-up of API prices in genai-prices' bundled data (offline), shared by the plan and the usage ledger.

:func:`quote` returns the prices an API model had on a UTC day (genai-prices is timestamp-aware: a price list
with start dates, or with off-peak hours, gives the price in force at noon UTC of that day), as exact
:class:`~decimal.Decimal` USD per million tokens rounded to 1e-9 (the ledger's unit), with one tier at most: a
tiered price is read as its base price plus the price above its one threshold (``tier_start`` tokens); a price
with several tiers, or with tiers that start at different thresholds, is refused (:class:`ApiPriceMiss`), as is
a model with no input or output token price. A model is named as genai-prices names it, with an optional
provider, or as ``provider/model`` (the prefix is read as the provider when no provider is given and it is a
provider genai-prices knows). genai-prices is imported on the first look-up, not with this module.

:func:`input_error` turns a miss into a :class:`~billshape.errors.BillshapeInputError` naming the caller's field
(e.g. the scenario's ``serving.routes[0].api.model``) with the closest known names; the ledger turns a miss
into a quarantine reason instead (:func:`billshape.usage.prices.price_for`).

:func:`default_day` is the date a plan prices at when its scenario gives none: the ``default`` row of
``data/api_prices_as_of.csv`` (with source and as_of), so that shipped examples reproduce on any day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

from billshape.errors import BillshapeInputError
from billshape.results import Assumption

PRICE_FIELDS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")
#: Modality prices read as they are (USD per million tokens); a tiered one is left out (None: rows with those
#: tokens are then quarantined by the ledger, not priced at a wrong tier).
MODALITY_FIELDS = ("input_image_mtok", "output_image_mtok", "input_audio_mtok", "output_audio_mtok")
NINE = Decimal("1e-9")
DEFAULT_FILE = "api_prices_as_of.csv"


@dataclasses.dataclass(frozen=True)
class ApiQuote:
    """The prices of one API model on one UTC day, in USD per million tokens (``requests_kpr``: USD per
    thousand requests). ``tier_*``: the price above ``tier_start`` tokens of a one-tier price, else None."""

    provider: str
    model: str
    day: dt.date
    version: str
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    requests_kpr: Decimal | None = None
    tier_start: int | None = None
    tier_input_mtok: Decimal | None = None
    tier_cache_read_mtok: Decimal | None = None
    tier_cache_write_mtok: Decimal | None = None
    tier_output_mtok: Decimal | None = None
    input_image_mtok: Decimal | None = None
    output_image_mtok: Decimal | None = None
    input_audio_mtok: Decimal | None = None
    output_audio_mtok: Decimal | None = None
    #: USD per web-search call (genai-prices ``web_searches_kcount`` / 1000).
    usd_per_web_search: Decimal | None = None
    #: Anthropic 1-hour prompt-cache writes (genai-prices ``cache_write_1h_mtok``; ``cache_write_mtok`` is the 5-minute
    #: price) and its long-context tier's; None where genai-prices has none (or a tier at another threshold).
    cache_write_1h_mtok: Decimal | None = None
    tier_cache_write_1h_mtok: Decimal | None = None
    #: where the price data came from when not genai-prices' bundled data (a refreshed catalog snapshot)
    data: str = ""

    @property
    def source(self) -> str:
        if self.data:
            return f"{self.data}: {self.provider} {self.model}"
        return f"genai-prices {self.version} bundled data: {self.provider} {self.model}"

    def prices(self) -> dict[str, Decimal | int | None]:
        """The price fields by name (the ledger's price-table columns)."""
        keys = PRICE_FIELDS + tuple("tier_" + f for f in PRICE_FIELDS) + ("tier_start", "requests_kpr") + MODALITY_FIELDS \
            + ("usd_per_web_search", "cache_write_1h_mtok", "tier_cache_write_1h_mtok")
        return {k: getattr(self, k) for k in keys}


class ApiPriceMiss(LookupError):
    """No usable price: ``kind`` is ``"provider"`` (unknown provider), ``"model"`` (unknown model),
    ``"tiers"`` (more than one tier) or ``"tokens"`` (no input or output token price); ``found`` is the
    genai-prices ``provider/model`` id where the model was found."""

    def __init__(self, kind: str, model: str, provider: str | None, found: str | None = None):
        self.kind, self.model, self.provider, self.found = kind, model, provider, found
        super().__init__(f"{kind}: {found or model}")


def version() -> str:
    from genai_prices import __version__

    return __version__


def split_provider(model: str, provider: str | None) -> tuple[str, str | None]:
    """``(model, provider)`` with a ``provider/`` prefix read as the provider when none is given and the prefix
    is a provider genai-prices knows (``openai/gpt-4o`` -> ``gpt-4o``, ``openai``)."""
    ref = str(model).strip()
    if provider:
        return ref, provider
    if "/" in ref:
        head, tail = ref.split("/", 1)
        if head.lower() in _provider_ids():
            return tail, head.lower()
    return ref, None


def _q(value) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(NINE, rounding=ROUND_HALF_EVEN)


def noon_utc(day: dt.date) -> dt.datetime:
    """The instant a day is priced at: noon UTC (inside every off-peak window's day, one price per day)."""
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc)


def quote(model: str, provider: str | None = None, day: dt.date | None = None) -> ApiQuote:
    """The price of an API model on a UTC ``day`` (default: :func:`default_day`), from genai-prices.

    Raises :class:`ApiPriceMiss` when there is no usable price (see the module docstring).
    """
    from genai_prices import data_snapshot
    from genai_prices.types import TieredPrices

    from billshape import snapshots

    snapshots.ensure_genai()  # a refreshed snapshot's genai-prices data when one is in use
    day = default_day() if day is None else day
    ref, prov_id = split_provider(model, provider)
    try:
        prov, info = data_snapshot.get_snapshot().find_provider_model(ref, None, prov_id or None, None)
    except LookupError:
        kind = "provider" if prov_id and str(prov_id).lower() not in _provider_ids() else "model"
        raise ApiPriceMiss(kind, str(model), provider) from None
    found = f"{prov.id}/{info.id}"
    mp = info.get_prices(noon_utc(day))
    row: dict = {}
    tier_start = None
    for f in PRICE_FIELDS:
        p = getattr(mp, f, None)
        if isinstance(p, TieredPrices):
            if len(p.tiers) != 1 or (tier_start is not None and tier_start != p.tiers[0].start):
                raise ApiPriceMiss("tiers", str(model), provider, found)
            tier_start = p.tiers[0].start
            row[f], row["tier_" + f] = _q(p.base), _q(p.tiers[0].price)
        else:
            row[f] = _q(p)
    if row["input_mtok"] is None or row["output_mtok"] is None:
        raise ApiPriceMiss("tokens", str(model), provider, found)
    rk = getattr(mp, "requests_kpr", None)
    if rk is None:  # genai-prices 0.2 names the per-thousand-requests price requests_kcount
        rk = getattr(mp, "requests_kcount", None)
    units = {f: None if isinstance(getattr(mp, f, None), TieredPrices) else _q(getattr(mp, f, None)) for f in MODALITY_FIELDS}
    ws = getattr(mp, "web_searches_kcount", None)
    units["usd_per_web_search"] = None if ws is None or isinstance(ws, TieredPrices) else _q(Decimal(ws) / 1000)
    units.update(_one_hour_write(getattr(mp, "cache_write_1h_mtok", None), tier_start))
    return ApiQuote(provider=prov.id, model=info.id, day=day, version=version(), tier_start=tier_start,
                    data=snapshots.genai_source() or "",
                    requests_kpr=_q(rk) if not isinstance(rk, TieredPrices) else None, **row, **units)


def _one_hour_write(price, tier_start: int | None) -> dict:
    """genai-prices' 1-hour cache-write price (``cache_write_1h_mtok``) as ``cache_write_1h_mtok`` and its tier's
    ``tier_cache_write_1h_mtok``: a tiered price is read when it has one tier at the threshold of the other prices
    (else both are None, and the ledger prices the writes by the multiplier rule)."""
    from genai_prices.types import TieredPrices

    if not isinstance(price, TieredPrices):
        return {"cache_write_1h_mtok": _q(price), "tier_cache_write_1h_mtok": None}
    if len(price.tiers) != 1 or price.tiers[0].start != tier_start:
        return {"cache_write_1h_mtok": None, "tier_cache_write_1h_mtok": None}
    return {"cache_write_1h_mtok": _q(price.base), "tier_cache_write_1h_mtok": _q(price.tiers[0].price)}


@lru_cache(maxsize=1)
def _provider_ids() -> frozenset[str]:
    from genai_prices import data_snapshot

    return frozenset(p.id for p in data_snapshot.get_snapshot().providers)


@lru_cache(maxsize=1)
def _model_names() -> tuple[str, ...]:
    from genai_prices import data_snapshot

    return tuple(sorted({m.id for p in data_snapshot.get_snapshot().providers for m in p.models}))


def input_error(miss: ApiPriceMiss, field: str = "model") -> BillshapeInputError:
    """The error for a miss, naming ``field`` (or its sibling ``.provider`` for an unknown provider) with the
    closest known names."""
    if miss.kind == "provider":
        prov = str(split_provider(miss.model, miss.provider)[1]).lower()
        hint = difflib.get_close_matches(prov, sorted(_provider_ids()), n=3, cutoff=0.4)
        return BillshapeInputError(field.rsplit(".", 1)[0] + ".provider", miss.provider or prov,
                                   "a provider genai-prices knows", f"did you mean {', '.join(hint)}?" if hint else None)
    if miss.kind == "model":
        ref = split_provider(miss.model, miss.provider)[0]
        close = difflib.get_close_matches(ref.lower(), _model_names(), n=3, cutoff=0.6)
        return BillshapeInputError(field, miss.model, "an API model name genai-prices knows",
                                   f"did you mean {', '.join(close)}?" if close else "or give usd_per_million_*_tokens")
    if miss.kind == "tiers":
        return BillshapeInputError(field, miss.model, f"a model with one price tier at most ({miss.found} has several)",
                                   "give usd_per_million_input_tokens and usd_per_million_output_tokens")
    return BillshapeInputError(field, miss.model, "a model with input and output token prices in genai-prices",
                               "give usd_per_million_input_tokens and usd_per_million_output_tokens")


@lru_cache(maxsize=1)
def _default_row() -> dict[str, str]:
    from billshape import catalog

    rows = {r["name"]: r for r in catalog.read_rows(DEFAULT_FILE)}
    return rows["default"]


def default_day() -> dt.date:
    """The date API prices are read at when none is given (``data/api_prices_as_of.csv``, row ``default``)."""
    return dt.date.fromisoformat(_default_row()["date"])


def default_day_assumption(name: str) -> Assumption:
    """The default pricing date as an assumption (value: the ISO date; source and as_of: the catalog row's)."""
    row = _default_row()
    return Assumption(name=name, value=row["date"], unit="date (UTC)", source=row["source"], as_of=row["as_of"])
