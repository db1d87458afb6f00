"""billshape: the economics of AI systems.

What does this AI system cost to train, what does each token cost to serve, and which choice is cheaper over
its life? Import as ``import billshape as bs``. Submodules load lazily so the CLI starts fast.

Equations (pure, vectorised): :mod:`billshape.training`, :mod:`billshape.inference`.
Decisions: :mod:`billshape.decide`, :mod:`billshape.business`, composed in :mod:`billshape.estimates`.
Data: :mod:`billshape.catalog` (every row with ``source`` and ``as_of``).
Verbs as typed requests: :mod:`billshape.chains` (``bs.chains.serve(model=..., gpu=..., gpus=...)``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "training_bill": "billshape.estimates",
    "serving_cost": "billshape.estimates",
    "break_even": "billshape.decide",
    "payback": "billshape.business",
    "BillshapeInputError": "billshape.errors",
    "Assumption": "billshape.results",
}
_SUBMODULES = {"catalog", "training", "inference", "decide", "business", "estimates", "results", "errors",
               "scaling", "market", "chains", "io", "serving"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"billshape.{name}")
    raise AttributeError(f"module 'billshape' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | _SUBMODULES)
