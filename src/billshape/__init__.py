"""billshape: the economics of AI systems.

What does this AI system cost to train, what does each token cost to serve, and which choice is cheaper over
its life? Import as ``import billshape as bs``; everything below loads on first use, so the CLI starts fast.

>>> import billshape as bs
>>> bs.train(gpu="a100", gpus=280, days=14, price=2.5).total_usd        # bria.ai's anecdote
235200.0
>>> r = bs.plan("seed000_image_startup")                             # a shipped example, or a path
>>> r.to_pandas()                                                    # doctest: +SKIP  (outcomes x P10/P50/P90)

The verbs (one typed request, one run, one result each; see ``docs/api.md``): :func:`train`, :func:`serve`,
:func:`breakeven`, :func:`payback`, :func:`size`, :func:`capacity`, :func:`route`, :func:`plan`, ``fleet``
(``bs.fleet(model=..., requests_per_second=...)``: the cheapest rented fleet); the usage ledger
is :mod:`billshape.usage` (``bs.usage.ingest(...)``). Equations (pure, vectorised): :mod:`billshape.training`,
:mod:`billshape.inference`, :mod:`billshape.scaling`, :mod:`billshape.market`; data: :mod:`billshape.catalog`
(every row with ``source`` and ``as_of``). The layers: ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    # verbs: keyword arguments in, a Result out (billshape.chains validates them once, by field name)
    "train": "billshape.chains",
    "serve": "billshape.chains",
    "breakeven": "billshape.chains",
    "size": "billshape.chains",
    "capacity": "billshape.chains",
    "route": "billshape.chains",
    # the original functions, kept
    "training_bill": "billshape.estimates",
    "serving_cost": "billshape.estimates",
    "break_even": "billshape.decide",
    "payback": "billshape.business",
    "BillshapeInputError": "billshape.errors",
    "Assumption": "billshape.results",
    "Result": "billshape.results",
}
# ``bs.plan`` is the package billshape.plan, callable: ``bs.plan("name-or-path", samples=..., seed=...)``.
_SUBMODULES = {"catalog", "training", "inference", "decide", "business", "estimates", "results", "errors",
               "scaling", "market", "serving", "plan", "fleet", "scenario", "usage", "chains", "present", "report", "io"}

__all__ = sorted(["__version__", *_LAZY, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # resolved once
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"billshape.{name}")
    raise AttributeError(f"module 'billshape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
