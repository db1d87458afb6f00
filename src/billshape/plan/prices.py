"""API prices of a scenario's ``api:`` routes, through the project's one genai-prices look-up (offline).

:func:`api_price` returns the USD per million input, cached-input and output tokens of an API model by name
(``provider/model`` or a separate ``provider``) on a UTC day (default: :func:`billshape.api_prices.default_day`,
the shipped default date), from :func:`billshape.api_prices.quote`, the look-up the usage ledger prices its
logs with (same day rule, same tiers, same name resolution). A plan reads the base price of a one-tier price.
Its assumptions name genai-prices' version and the model's id, with ``as_of`` the date priced. An unknown name
is an input error naming ``field`` with the closest known names.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt

from billshape import api_prices
from billshape.results import Assumption


@dataclasses.dataclass(frozen=True)
class ApiPrice:
    provider: str
    model: str
    input: float
    cached_input: float
    output: float
    assumptions: tuple[Assumption, ...]


def api_price(model: str, provider: str | None = None, field: str = "model",
              day: _dt.date | None = None) -> ApiPrice:
    """USD per million input / cached-input / output tokens of an API model on ``day`` (UTC; default: the
    shipped default date, :func:`billshape.api_prices.default_day`), from genai-prices' bundled data.

    Unknown names (and prices the look-up cannot use) raise :class:`~billshape.errors.BillshapeInputError`
    naming ``field`` (a scenario's YAML path, e.g. ``serving.routes[0].api.model``) with the closest known names.
    """
    try:
        q = api_prices.quote(model, provider, day)
    except api_prices.ApiPriceMiss as miss:
        raise api_prices.input_error(miss, field) from None
    pin, pout = float(q.input_mtok), float(q.output_mtok)
    pcache = None if q.cache_read_mtok is None else float(q.cache_read_mtok)
    source, as_of = q.source, q.day.isoformat()
    tiered = q.tier_input_mtok is not None or q.tier_output_mtok is not None
    note = " (base tier)" if tiered else ""
    rows = [Assumption(name=f"{q.model} input price{note}", value=pin, unit="USD per million tokens", source=source, as_of=as_of),
            Assumption(name=f"{q.model} output price{note}", value=pout, unit="USD per million tokens", source=source, as_of=as_of)]
    if pcache is not None:
        rows.append(Assumption(name=f"{q.model} cached input price", value=pcache, unit="USD per million tokens",
                               source=source, as_of=as_of))
    else:
        rows.append(Assumption(name=f"{q.model} cached input price", value=pin, unit="USD per million tokens",
                               source=f"{source} lists no cache price: input price used", as_of=as_of))
    return ApiPrice(q.provider, q.model, pin, pcache if pcache is not None else pin, pout, tuple(rows))
