"""Product plans: a scenario file -> a monthly P&L with Monte Carlo uncertainty, every outcome as P10/P50/P90.

A scenario (YAML) describes an AI product once: its users and their usage, how its traffic is served (API
models priced through genai-prices, self-hosted deployments), the training or fine-tuning project behind it,
the fixed monthly costs that start after deployment, the market paths, the horizon and the discount rate. Any
number may be a distribution. ``billshape.plan.run("seed000_image_startup", samples=20_000, seed=0)`` (or
:func:`plan`, the same) loads a file or a shipped example by name and evaluates it.

Module map (each module uses only the ones listed above it):

========================  =====================================================================================
``plan.dists``            uncertain inputs: :class:`Dist`, vectorised draws, number parsing
``plan.schema``           the scenario's pydantic models and each number's allowed range (``Bound``)
``plan.errors``           validation errors as YAML paths; range checks; ``FLAG_TO_PATH`` (library field -> key)
``plan.prices``           API prices from genai-prices (:func:`api_price`)
``plan.resolver``        routes, GPU prices, trends and the training bill, resolved once (``PlanResolution``)
``plan.payback``          geometric sums and the payback month (array helpers)
``plan.cashflow``         the monthly P&L written once: ``pnl_terms`` -> ``monthly_pnl`` | ``summary_pnl``
``plan.quantiles``        exact P10/P50/P90 by selection, brackets for large runs, monthly percentile rows
``plan.result``           :class:`PlanResult`: ``to_dict`` (the CLI's JSON), pandas frames, notebook view
``plan.model``            :class:`Plan`: draws, the Monte Carlo chunks, tornado, build vs buy
``plan.loader``           reading: path, shipped example name, YAML text, bytes, file object (bounded YAML)
========================  =====================================================================================

``billshape.scenario`` is a compatibility shim that re-exports these names. The plain per-sample loop the
benchmark compares against lives in ``benchmarks/plan_loop_baseline.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from billshape.plan.cashflow import EXTRA_KEYS, SUMMARY_KEYS, tokens_per_user
from billshape.plan.dists import Dist, _to_number
from billshape.plan.loader import example_names, examples_dir, load, parse, parse_bytes, read, resolve
from billshape.plan.model import SUMMARY_CHUNK, WORKERS, Plan
from billshape.plan.prices import ApiPrice, api_price
from billshape.plan.quantiles import BRACKET_MIN_REST, MONTHLY_RESERVOIR, QUANTILES
from billshape.plan.result import PlanResult
from billshape.plan.schema import Product, Scenario


def run(source: Any, samples: int = 20_000, seed: int = 0) -> PlanResult:
    """Load a scenario and evaluate it: ``source`` is a YAML file, the name of a shipped example (with or
    without ``.yaml``, e.g. ``"seed000_image_startup"``), YAML text, bytes or a file object (see :func:`load`).

    ``samples`` Monte Carlo samples (1 when nothing is uncertain) and ``seed`` the random seed.
    """
    return load(source).evaluate(samples=samples, seed=seed)


def plan(path: str | Path | Any, samples: int = 20_000, seed: int = 0) -> PlanResult:
    """Load a scenario and evaluate it (the library's ``bs.plan.plan``; the same as :func:`run`)."""
    return run(path, samples=samples, seed=seed)


__all__ = ["Scenario", "Product", "Plan", "PlanResult", "Dist", "ApiPrice", "load", "read", "parse", "parse_bytes",
           "run", "plan", "api_price", "examples_dir", "example_names", "resolve", "tokens_per_user", "QUANTILES",
           "MONTHLY_RESERVOIR", "BRACKET_MIN_REST", "SUMMARY_KEYS", "EXTRA_KEYS", "SUMMARY_CHUNK", "WORKERS",
           "_to_number"]


class _CallablePackage(type(sys.modules[__name__])):
    """``billshape.plan`` is a package and a verb: ``bs.plan("seed000_image_startup")`` is :func:`run`."""

    def __call__(self, source: Any, samples: int = 20_000, seed: int = 0) -> PlanResult:
        return run(source, samples=samples, seed=seed)


sys.modules[__name__].__class__ = _CallablePackage
