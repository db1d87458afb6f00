"""The market chains: a price path (:class:`PricePath`) and a trend backtest (:class:`~billshape.market.backtest`)."""

from __future__ import annotations

from billshape.chains.requests import MarketBacktestRequest, MarketPathRequest
from billshape.errors import BillshapeInputError
from billshape.results import Result


class PricePath(Result):
    """The price in each month: ``start_price`` x ``annual_factor``^((m-1)/12) x step changes."""

    months: int
    annual_factor: float
    steps: list[str]
    prices: list[dict]  # {"month": m, "price": p} in the start price's unit
    end_to_start_ratio: float


def run_path(req: MarketPathRequest) -> PricePath:
    """The month-by-month price path the request describes."""
    from billshape import _validate as v
    from billshape import market
    from billshape.results import user

    if req.start_price is None:
        raise BillshapeInputError("start_price", None, "a price > 0")
    v.positive("start_price", req.start_price, v.MAX_USD)
    months = market.check_months("months", req.months)
    if req.annual_factor is not None:
        market.check_annual_factor("annual_factor", req.annual_factor)
    if req.trend is not None and req.annual_factor is not None:
        raise BillshapeInputError("trend", req.trend, "either `trend` or `annual_factor`, not both")
    assumptions = [user("start price", req.start_price, None, "start_price")]
    if req.trend is not None:
        row = market.trend(req.trend)
        factor = row.annual_factor
        assumptions.append(row.as_assumption())
    else:
        factor = 1.0 if req.annual_factor is None else req.annual_factor
        assumptions.append(user("annual factor", factor, "x per year", "annual_factor"))
    steps = market.parse_steps(req.steps, "steps")
    prices = market.price_path(req.start_price, months, factor, steps)
    return PricePath(months=months, annual_factor=factor, steps=[f"{m}:{f:g}" for m, f in steps],
                     prices=[{"month": i + 1, "price": float(p)} for i, p in enumerate(prices)],
                     end_to_start_ratio=float(prices[-1] / prices[0]), assumptions=assumptions)


def run_backtest(req: MarketBacktestRequest):
    """Fit an exponential trend before the cutoff and score its forecast of the later prices."""
    from billshape import market

    if req.gpu is not None:
        for name in ("price_column", "series", "model"):
            if getattr(req, name) is not None:
                raise BillshapeInputError(name, getattr(req, name), "omitted with `gpu` (a GPU price history has one "
                                          "price column, usd_per_gpu_hour; narrow it with `provider` and `tier`)")
        rows = market.read_gpu_price_history(req.file) if req.file is not None else None
        return market.gpu_backtest(req.gpu, rows, provider=req.provider, tier=req.tier, cutoff=req.cutoff,
                                   train_fraction=req.train_fraction, source_label=req.file)
    for name in ("provider", "tier"):
        if getattr(req, name) is not None:
            raise BillshapeInputError(name, getattr(req, name), "only with `gpu` (API price rows have no tier)")
    rows = market.read_price_history(req.file)
    return market.backtest(rows, price_column=req.price_column, series=req.series, model=req.model,
                           cutoff=req.cutoff, train_fraction=req.train_fraction, source_label=req.file)
