"""Compatibility shim: the product-plan code now lives in the package :mod:`billshape.plan`.

``from billshape.scenario import load, Plan, ...`` keeps working: every name below is re-exported from its
module in ``billshape.plan`` (see that package's docstring for the module map). Setting a module-level name
here (``monkeypatch.setattr(scenario, "WORKERS", 1)``) sets it in every ``billshape.plan`` module that holds
it, so the tuning constants still take effect. New code imports from ``billshape.plan``.
"""

from __future__ import annotations

import sys
import types

from billshape.plan import cashflow as _cashflow
from billshape.plan import dists as _dists
from billshape.plan import errors as _errors
from billshape.plan import loader as _loader
from billshape.plan import model as _model
from billshape.plan import payback as _payback
from billshape.plan import prices as _prices
from billshape.plan import quantiles as _quantiles
from billshape.plan import resolver as _resolver
from billshape.plan import result as _result
from billshape.plan import schema as _schema
from billshape.plan import plan, run  # noqa: F401
from billshape.plan.cashflow import (  # noqa: F401
    BAND_KEYS,
    EXTRA_KEYS,
    HIDDEN_KEYS,
    MONTHLY_KEYS,
    SUMMARY_KEYS,
    tokens_per_user,
)
from billshape.plan.dists import DIST_KEYS, Z90, Dist, _draw_batch, _g, _to_number  # noqa: F401
from billshape.plan.errors import TAIL_LIMIT, _check_bounds, _from_validation_error, _path  # noqa: F401
from billshape.plan.loader import example_names, examples_dir, load, parse, parse_bytes, read, resolve  # noqa: F401
from billshape.plan.model import CHUNK_CELLS, SUMMARY_CHUNK, WORKERS, Plan  # noqa: F401
from billshape.plan.prices import ApiPrice, api_price  # noqa: F401
from billshape.plan.quantiles import (  # noqa: F401
    BRACKET_MIN_REST,
    BRACKET_SIGMAS,
    MONTHLY_RESERVOIR,
    QUANTILES,
    _brackets,
    _check_finite,
    _finite_or_none,
    _from_brackets,
    _gather,
    _linear_quantiles,
    _monthly_quantiles,
    _order_quantiles,
    _order_values,
    _quantiles,
    _select,
)
from billshape.plan.result import PlanResult  # noqa: F401
from billshape.plan.schema import (  # noqa: F401
    MAX_HORIZON_MONTHS,
    ApiRoute,
    Bound,
    FixedMonthly,
    Market,
    PriceStep,
    Product,
    Route,
    SelfHosted,
    Serving,
    TrainingProject,
)
from billshape.plan.schema import Scenario  # noqa: F401

_HOMES = (_dists, _schema, _errors, _prices, _resolver, _payback, _cashflow, _quantiles, _result, _model, _loader)


class _Shim(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        for home in _HOMES:  # a constant or function: where it is defined and where it was imported
            if name in vars(home):
                setattr(home, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Shim

__all__ = ["Scenario", "Plan", "PlanResult", "Dist", "load", "parse", "plan", "api_price", "examples_dir",
           "example_names", "resolve"]
