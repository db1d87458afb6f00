"""The fleet chain: a :class:`~billshape.chains.requests.FleetRequest` -> :func:`billshape.fleet.fleet`."""

from __future__ import annotations

from billshape.chains.requests import FleetRequest, require


def _listed(value):
    """A restriction as a list: ``None``, a name, or names (comma-separated names split)."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    out = [x.strip() for item in items for x in str(item).split(",") if x.strip()]
    return out or None


def run(req: FleetRequest):
    """:class:`~billshape.fleet.FleetResult`: best option, frontier, rejected options."""
    from billshape.fleet import fleet

    require(req, "model", allowed="a model architecture (catalog name), e.g. llama-3.1-70b")
    return fleet(model=req.model, requests_per_second=req.requests_per_second, tokens_per_month=req.tokens_per_month,
                 peak_to_mean=req.peak_to_mean, demand=req.demand, input_tokens=req.input_tokens,
                 output_tokens=req.output_tokens, tpot_limit=req.tpot_limit, ttft_limit=req.ttft_limit,
                 gpu=_listed(req.gpu), provider=_listed(req.provider), tier=_listed(req.tier),
                 engine=_listed(req.engine), precision=_listed(req.precision), min_replicas=req.min_replicas,
                 gpu_price_factor=req.gpu_price_factor)
