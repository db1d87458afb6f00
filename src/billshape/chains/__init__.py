"""Chains: one typed request per verb -> catalog defaults -> models -> a typed Result (pvlib's ModelChain idea).

Each verb has a request (:mod:`billshape.chains.requests`: pydantic, Python field names, validated once) and a
``run``; the CLI and the app only build a request, run it and render. Errors name fields (``gpus``), never flags.

The runs live in ``chains.training``, ``chains.serving``, ``chains.decide`` and ``chains.market`` (not
``chains.serve``/``chains.train``: those names are the keyword shortcuts below).

Keyword shortcuts (these become ``bs.serve``, ``bs.train``, ...)::

    from billshape import chains
    chains.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", price=2.5)   # ServeEstimate
    chains.serve(tokens_per_second=14800, gpus=8, price=2)                                 # ServingCost
    chains.train(gpu="h100", gpus=1024, days=30, price=2)                                  # TrainingBill
    chains.breakeven(api_usd_per_million_tokens=10, own_usd_per_million_tokens=2, fixed_usd=8e5)

=================  ==========================  =================================================
function           request                     result
=================  ==========================  =================================================
``train``          ``TrainRequest``            ``estimates.TrainingBill``
``serve``          ``ServeRequest``            ``serving.Capacity`` | ``serving.ServeEstimate`` |
                                               ``estimates.ServingCost`` (see ``chains.serving.mode``)
``breakeven``      ``BreakevenRequest``        ``decide.BreakEven`` | ``decide.BuildBuyHorizon``
``payback``        ``PaybackRequest``          ``business.Payback``
``size``           ``SizeRequest``             ``decide.SizingPlan``
``capacity``       ``CapacityRequest``         ``decide.CapacityPlan``
``route``          ``RouteRequest``            ``decide.LadderChoice``
``market_path``    ``MarketPathRequest``       ``chains.market.PricePath``
``market_backtest`` ``MarketBacktestRequest``  ``market`` backtest result
``fleet``          ``FleetRequest``            ``fleet.FleetResult``
=================  ==========================  =================================================

The usage ledger's actions (:mod:`billshape.chains.usage`) run the same way: ``IngestRequest``,
``RepriceRequest``, ``ReportRequest``, ``EconomicsRequest``, ``WhatIfRequest``, ``ExportRequest``,
``FocusTableRequest``, ``ScenarioFragmentRequest``, ``MeasuredRequest``, ``MetricsRequest``, ``ForecastRequest``,
``CheckRequest`` and ``AnomaliesRequest`` (``run(WhatIfRequest(db="usage.duckdb", cache_hit_rate=0.6))``).

``run(request)`` dispatches on the request's type. Importing this package loads pydantic and the request models
only; the library modules load when a chain runs.
"""

from __future__ import annotations

from typing import Any

from billshape.chains.requests import (BreakevenRequest, CapacityRequest, FleetRequest, MarketBacktestRequest,
                                       MarketPathRequest, PaybackRequest, Request, RouteRequest, ServeRequest,
                                       SizeRequest, TrainRequest)
from billshape.chains.usage import (AnomaliesRequest, CheckRequest, EconomicsRequest, ExportRequest, FocusTableRequest,
                                    ForecastRequest, IngestRequest, MeasuredRequest, MetricsRequest, ReportRequest,
                                    RepriceRequest, ScenarioFragmentRequest, WhatIfRequest)

__all__ = ["run", "train", "serve", "breakeven", "payback", "size", "capacity", "route", "market_path",
           "market_backtest", "Request", "TrainRequest", "ServeRequest", "BreakevenRequest", "PaybackRequest",
           "SizeRequest", "CapacityRequest", "RouteRequest", "MarketPathRequest", "MarketBacktestRequest",
           "IngestRequest", "RepriceRequest", "ReportRequest", "EconomicsRequest", "WhatIfRequest", "ExportRequest",
           "FocusTableRequest", "ScenarioFragmentRequest", "MeasuredRequest", "MetricsRequest", "ForecastRequest",
           "CheckRequest", "AnomaliesRequest", "fleet", "FleetRequest"]

# request type -> (module, function) of its run
_RUNS = {
    TrainRequest: ("billshape.chains.training", "run"),
    ServeRequest: ("billshape.chains.serving", "run"),
    BreakevenRequest: ("billshape.chains.decide", "run_breakeven"),
    PaybackRequest: ("billshape.chains.decide", "run_payback"),
    SizeRequest: ("billshape.chains.decide", "run_size"),
    CapacityRequest: ("billshape.chains.decide", "run_capacity"),
    RouteRequest: ("billshape.chains.decide", "run_route"),
    MarketPathRequest: ("billshape.chains.market", "run_path"),
    MarketBacktestRequest: ("billshape.chains.market", "run_backtest"),
    IngestRequest: ("billshape.chains.usage", "run_ingest"),
    RepriceRequest: ("billshape.chains.usage", "run_reprice"),
    ReportRequest: ("billshape.chains.usage", "run_report"),
    EconomicsRequest: ("billshape.chains.usage", "run_economics"),
    WhatIfRequest: ("billshape.chains.usage", "run_whatif"),
    ExportRequest: ("billshape.chains.usage", "run_export"),
    FocusTableRequest: ("billshape.chains.usage", "run_focus_table"),
    ScenarioFragmentRequest: ("billshape.chains.usage", "run_scenario_fragment"),
    MeasuredRequest: ("billshape.chains.usage", "run_measured"),
    MetricsRequest: ("billshape.chains.usage", "run_metrics"),
    ForecastRequest: ("billshape.chains.usage", "run_forecast"),
    CheckRequest: ("billshape.chains.usage", "run_check"),
    AnomaliesRequest: ("billshape.chains.usage", "run_anomalies"),
    FleetRequest: ("billshape.chains.fleet", "run"),
}


def run(request: Request) -> Any:
    """Run the chain of ``request``'s verb and return its Result."""
    import importlib

    for cls, (module, name) in _RUNS.items():
        if isinstance(request, cls):
            from billshape.staleness import attach

            return attach(getattr(importlib.import_module(module), name)(request))
    raise TypeError(f"not a billshape request: {type(request).__name__}")


def train(**fields: Any):
    """``run(TrainRequest(**fields))``: a training bill."""
    return run(TrainRequest(**fields))


def serve(**fields: Any):
    """``run(ServeRequest(**fields))``: capacity, a modeled or measured estimate, or cost from a throughput."""
    return run(ServeRequest(**fields))


def breakeven(**fields: Any):
    """``run(BreakevenRequest(**fields))``: build vs buy (over a horizon when a volume and months are given)."""
    return run(BreakevenRequest(**fields))


def payback(**fields: Any):
    """``run(PaybackRequest(**fields))``: months to recover a fixed cost."""
    return run(PaybackRequest(**fields))


def size(**fields: Any):
    """``run(SizeRequest(**fields))``: inference-aware model sizing."""
    return run(SizeRequest(**fields))


def capacity(**fields: Any):
    """``run(CapacityRequest(**fields))``: reserved / on-demand / spot tiers for a demand profile."""
    return run(CapacityRequest(**fields))


def route(**fields: Any):
    """``run(RouteRequest(**fields))``: the cheapest model (or cascade) that clears a quality bar."""
    return run(RouteRequest(**fields))


def market_path(**fields: Any):
    """``run(MarketPathRequest(**fields))``: a month-by-month price path."""
    return run(MarketPathRequest(**fields))


def market_backtest(**fields: Any):
    """``run(MarketBacktestRequest(**fields))``: a price-trend backtest."""
    return run(MarketBacktestRequest(**fields))


def fleet(**fields: Any):
    """``run(FleetRequest(**fields))``: the cheapest rented fleet for a traffic under a service level."""
    return run(FleetRequest(**fields))
