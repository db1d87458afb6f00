"""API prices of a scenario's ``api:`` routes, from genai-prices' bundled data (offline).

:func:`api_price` returns the USD per million input, cached-input and output tokens of an API model by name
(``provider/model`` or a separate ``provider``), at today's date and the base tier of a tiered price, with the
assumptions that name genai-prices' version and the model's id; an unknown name is an input error with the
closest known names. genai-prices is imported only when a route needs a price.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib

from billshape.errors import BillshapeInputError
from billshape.results import Assumption

@dataclasses.dataclass(frozen=True)
class ApiPrice:
    provider: str
    model: str
    input: float
    cached_input: float
    output: float
    assumptions: tuple[Assumption, ...]


def _genai_model_names() -> list[str]:
    from genai_prices import data_snapshot

    names = set()
    for prov in data_snapshot.get_snapshot().providers:
        for m in prov.models:
            names.add(m.id)
    return sorted(names)


def api_price(model: str, provider: str | None = None, field: str = "model") -> ApiPrice:
    """USD per million input / cached-input / output tokens of an API model, from genai-prices' bundled data.

    Unknown names raise :class:`BillshapeInputError` naming ``field`` with the closest known names.
    """
    import genai_prices
    from genai_prices import data_snapshot, types

    snap = data_snapshot.get_snapshot()
    ref = str(model).strip()
    prov_id = provider
    if prov_id is None and "/" in ref:
        head, tail = ref.split("/", 1)
        if any(p.id == head.lower() for p in snap.providers):
            prov_id, ref = head.lower(), tail
    try:
        prov, info = snap.find_provider_model(ref, None, prov_id, None)
    except LookupError:
        close = difflib.get_close_matches(ref.lower(), _genai_model_names(), n=3, cutoff=0.6)
        if prov_id is not None and not any(p.id == str(prov_id).lower() for p in snap.providers):
            known = sorted(p.id for p in snap.providers)
            hint = difflib.get_close_matches(str(prov_id).lower(), known, n=3, cutoff=0.4)
            raise BillshapeInputError(field.rsplit(".", 1)[0] + ".provider", prov_id, "a provider genai-prices knows",
                                      f"did you mean {', '.join(hint)}?" if hint else None) from None
        raise BillshapeInputError(field, model, "an API model name genai-prices knows",
                                  f"did you mean {', '.join(close)}?" if close else "or give usd_per_million_*_tokens") from None
    today = _dt.datetime.now(tz=_dt.UTC)
    prices = info.get_prices(today)

    def val(x) -> float | None:
        if x is None:
            return None
        if isinstance(x, types.TieredPrices):
            x = x.base
        return float(x)

    pin, pout, pcache = val(prices.input_mtok), val(prices.output_mtok), val(getattr(prices, "cache_read_mtok", None))
    if pin is None or pout is None:
        raise BillshapeInputError(field, model, "a model with input and output token prices in genai-prices",
                                  "give usd_per_million_input_tokens and usd_per_million_output_tokens")
    source = f"genai-prices {genai_prices.__version__} bundled data: {prov.id} {info.id}"
    as_of = today.date().isoformat()
    tiered = isinstance(prices.input_mtok, types.TieredPrices) or isinstance(prices.output_mtok, types.TieredPrices)
    note = " (base tier)" if tiered else ""
    rows = [Assumption(name=f"{info.id} input price{note}", value=pin, unit="USD per million tokens", source=source, as_of=as_of),
            Assumption(name=f"{info.id} output price{note}", value=pout, unit="USD per million tokens", source=source, as_of=as_of)]
    if pcache is not None:
        rows.append(Assumption(name=f"{info.id} cached input price", value=pcache, unit="USD per million tokens",
                               source=source, as_of=as_of))
    else:
        rows.append(Assumption(name=f"{info.id} cached input price", value=pin, unit="USD per million tokens",
                               source=f"{source} lists no cache price: input price used", as_of=as_of))
    return ApiPrice(prov.id, info.id, pin, pcache if pcache is not None else pin, pout, tuple(rows))
