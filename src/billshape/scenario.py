r"""Product plans: a scenario file -> a monthly P&L with Monte Carlo uncertainty.

A scenario (YAML, validated here) describes an AI product once: its users and their usage, how its traffic is
served (API models priced through genai-prices, self-hosted deployments), the training or fine-tuning project
behind it, the fixed monthly costs that start after deployment (staff, monitoring, data pipelines, evaluation,
on-call), the market paths (API price trend and step changes, GPU price trend), the horizon and the discount
rate. Any number may be a distribution ``{dist: lognormal|triangular|uniform|normal, ...}``.

:func:`evaluate` draws the uncertain inputs and evaluates the whole plan at once as numpy arrays of shape
samples x months (in chunks that bound memory; never a Python loop per sample), and reports every output as
P10 / P50 / P90. The model, per month :math:`m = 1..H` and sample:

.. math::

    U_m &= U_0 (1 + g - c)^{m-1}                                  && \text{users}\\
    R_m &= U_m \, p                                                && \text{revenue}\\
    I_m &= U_m \, q \sum_r s_r \, k_r \, (t_{in} ((1-h) a_r + h b_r) + t_{out} \rho \, o_r) / 10^6
                                                                    && \text{inference (marginal)}\\
    C_m &= R_m - I_m - U_m v                                       && \text{contribution}\\
    L_m &= C_m - F_m - A_m - S / H                                 && \text{fully loaded profit}

with :math:`q` requests per user-month, :math:`t_{in}, t_{out}` tokens per request, :math:`\rho` the reasoning
multiplier on output tokens, :math:`h` the prompt-cache hit rate, route :math:`r`'s share :math:`s_r` and prices
:math:`a_r, b_r, o_r` (USD per million input, cached-input and output tokens) times its market path
:math:`k_r(m)`, :math:`v` other variable cost per user-month, :math:`F_m` fixed monthly costs, :math:`A_m` the
training amortisation and :math:`S` the one-time self-hosting set-up cost. Cash: the training bill and set-up
are paid at :math:`t = 0`, a retraining at the start of its month. Payback is the first time the cumulative
cash turns non-negative (linear within the month; ``None`` when it never does within the horizon).

Both views of unit economics (seed 001) are reported side by side:

* **contribution margin per user-month** (the marginal view): revenue minus the costs one more user adds
  (inference, other variable costs). It answers *"do I make or lose money on one more user?"*;
* **fully loaded margin per user-month**: also charges fixed costs and the amortised training bill to the
  users. It answers *"do the users pay for the whole business, model included?"*.

The training bill comes from :func:`billshape.estimates.training_bill`, a self-hosted deployment's cost per
token from :mod:`billshape.inference` (as in :func:`billshape.estimates.serving_cost`) or, for a ``model:`` route, from
:func:`billshape.serving.self_hosted_price`; price paths from :mod:`billshape.market`; payback from
:func:`billshape.business.payback_months` and the build-vs-buy chart from :mod:`billshape.decide`.

References
----------
.. [1] billshape seed 000: 280 A100 x 2 weeks x $2.5 = $235,200 paid back by 10,000 users x $10 in 2.352 months.
.. [2] billshape seed 001: marginal (contribution) vs fully loaded unit economics; show both.
.. [3] billshape seed 002: costs start after deployment: retraining, staff, monitoring, on-call.
.. [4] billshape seed 003, sections 37.2 and 37.5: cost per token; build vs buy V > F / (p - c); the
       training/inference split is a measured property of a deployment.
.. [5] billshape seed 004: plan for API prices 3-5x today's.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import math
import os
from pathlib import Path
from typing import Annotated, Any, Callable, Literal

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError

from billshape import business, decide, inference, market, training
from billshape.errors import BillshapeInputError
from billshape.present.labels import cli_flag  # library errors name fields (gpus); the maps below are keyed by flag
from billshape.results import Assumption, Result, derived, user

Z90 = 1.2815515655446004  # standard normal quantile at 0.9: P10/P90 sit at -/+ Z90 standard deviations
QUANTILES = (0.1, 0.5, 0.9)
MAX_HORIZON_MONTHS = 240
MONTHLY_RESERVOIR = 20_000  # samples kept (the first ones drawn) for the monthly percentile rows and charts
CHUNK_CELLS = 200_000  # samples x months evaluated at once: arrays of 1.6 MB stay in cache (5x faster than 16 MB)
SUMMARY_CHUNK = 65_536  # samples per chunk of the summaries-only hot path (vectors of 512 kB: fewer, larger
# operations per chunk keep two threads busier than L2-sized ones, which spend their time handing over the GIL)
BRACKET_MIN_REST = 4 * MONTHLY_RESERVOIR  # samples beyond the reservoir from which quantiles go by brackets
BRACKET_SIGMAS = 6.0  # a bracket's half-width in standard errors of the reservoir's quantile (miss: ~1e-9)
WORKERS = max(1, min(2, os.cpu_count() or 1))  # threads for the Monte Carlo chunks (the target machine has 2 cores)
TAIL_LIMIT = 0.01  # an unbounded distribution may put at most this much probability outside its field's range

# --------------------------------------------------------------------------------------------------------------
# distributions
# --------------------------------------------------------------------------------------------------------------

DIST_KEYS = {
    "lognormal": ({"p10", "p90"}, set()),
    "normal": ({"p10", "p90"}, {"mean", "sd"}),
    "triangular": ({"low", "mode", "high"}, set()),
    "uniform": ({"low", "high"}, set()),
}


@dataclasses.dataclass(frozen=True)
class Dist:
    """An uncertain input: lognormal (p10, p90), normal (mean, sd or p10, p90), triangular (low, mode, high)
    or uniform (low, high). ``lo``/``hi`` clip the draws of unbounded laws to the field's range."""

    kind: str
    params: tuple[tuple[str, float], ...]
    lo: float = -math.inf
    hi: float = math.inf

    @property
    def p(self) -> dict[str, float]:
        return dict(self.params)

    def _loc_scale(self) -> tuple[float, float]:
        p = self.p
        if self.kind == "lognormal":
            mu = (math.log(p["p10"]) + math.log(p["p90"])) / 2
            return mu, (math.log(p["p90"]) - math.log(p["p10"])) / (2 * Z90)
        if "mean" in p:
            return p["mean"], p["sd"]
        return (p["p10"] + p["p90"]) / 2, (p["p90"] - p["p10"]) / (2 * Z90)

    def ppf(self, q: float) -> float:
        """The q-quantile (clipped to the field's range)."""
        from scipy.special import ndtri

        p = self.p
        if self.kind in ("lognormal", "normal"):
            mu, sigma = self._loc_scale()
            x = mu + sigma * float(ndtri(q))
            x = math.exp(x) if self.kind == "lognormal" else x
        elif self.kind == "uniform":
            x = p["low"] + q * (p["high"] - p["low"])
        else:
            a, c, b = p["low"], p["mode"], p["high"]
            if b == a:
                x = a
            elif q < (c - a) / (b - a):
                x = a + math.sqrt(q * (b - a) * (c - a))
            else:
                x = b - math.sqrt((1 - q) * (b - a) * (b - c))
        return min(max(x, self.lo), self.hi)

    def tail_outside(self, lo: float, hi: float) -> float:
        """Probability the unclipped law puts outside [lo, hi]."""
        from scipy.special import ndtr

        if self.kind not in ("lognormal", "normal"):
            return 0.0
        mu, sigma = self._loc_scale()
        if self.kind == "lognormal":
            lo, hi = (math.log(lo) if lo > 0 else -math.inf), (math.log(hi) if hi > 0 else -math.inf)
        if sigma == 0:
            return 0.0 if lo <= mu <= hi else 1.0
        return float(ndtr((lo - mu) / sigma) + (1 - ndtr((hi - mu) / sigma)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of this law, shape (n,) (see :func:`_draw_batch`)."""
        return _draw_batch([self], rng, n)[0]

    def describe(self) -> str:
        return self.kind + " " + " ".join(f"{k}={_g(v)}" for k, v in self.params)


def _draw_batch(dists: list[Dist], rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws of each of several laws, shape (len(dists), n).

    One call to the generator for all the bounded laws' uniforms and one for all the unbounded laws' standard
    normals, then each law's transform on the whole block with its parameters as columns (a few array
    operations per block, not per input: the Monte Carlo chunks run on threads, and fewer, larger operations
    hold the interpreter less). Uniform ``low + (high - low) U``; normal ``mu + sigma Z``; lognormal
    ``exp(mu + sigma Z)``; triangular by the two-uniform method of Stein & Keblis [1]_:
    ``left + (right - left) (c max(U, V) + (1 - c) min(U, V))`` with ``c = (mode - left) / (right - left)``
    (seven array passes against fifteen for the branch-free inverse CDF). Unbounded laws are clipped to the
    field's range (``lo``/``hi``). Rows of the same law next to each other are transformed in place.

    References
    ----------
    .. [1] W. E. Stein and M. F. Keblis, "A new method to simulate the triangular distribution",
       Mathematical and Computer Modelling 49 (2009) 1143-1147.
    """
    out = np.empty((len(dists), n))
    tri = [i for i, d in enumerate(dists) if d.kind == "triangular" and d.p["high"] != d.p["low"]]
    uni = [i for i, d in enumerate(dists) if d.kind == "uniform"]
    nor = [i for i, d in enumerate(dists) if d.kind in ("normal", "lognormal") and d._loc_scale()[1] > 0]
    for i in set(range(len(dists))) - set(tri) - set(uni) - set(nor):  # a point mass
        out[i] = dists[i].ppf(0.5)

    def col(idx, f):
        return np.array([[f(dists[i])] for i in idx])

    def rows(idx):  # a view where the rows are contiguous, else None
        return out[idx[0]:idx[-1] + 1] if idx == list(range(idx[0], idx[-1] + 1)) else None

    if tri or uni:
        u = rng.random((2 * len(tri) + len(uni), n))
        if tri:
            left, right = col(tri, lambda d: d.p["low"]), col(tri, lambda d: d.p["high"])
            c = (col(tri, lambda d: d.p["mode"]) - left) / (right - left)
            a, b = u[:len(tri)], u[len(tri):2 * len(tri)]
            target = rows(tri)
            hi = np.maximum(a, b, out=target)
            lo = np.minimum(a, b, out=a)
            hi *= c
            lo *= 1.0 - c
            hi += lo
            hi *= right - left
            hi += left
            if target is None:
                out[tri] = hi
        if uni:
            low = col(uni, lambda d: d.p["low"])
            out[uni] = low + (col(uni, lambda d: d.p["high"]) - low) * u[2 * len(tri):]
    if nor:
        z = rng.standard_normal((len(nor), n))
        z *= col(nor, lambda d: d._loc_scale()[1])
        z += col(nor, lambda d: d._loc_scale()[0])
        logn = [j for j, i in enumerate(nor) if dists[i].kind == "lognormal"]
        if len(logn) == len(nor):
            np.exp(z, out=z)
        elif logn:
            z[logn] = np.exp(z[logn])
        np.clip(z, col(nor, lambda d: d.lo), col(nor, lambda d: d.hi), out=z)
        out[nor] = z
    return out


def _g(x: float) -> str:
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _to_number(value: Any) -> Any:
    """Parse a YAML scalar or a distribution mapping (range checks come later, with the YAML path)."""
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"a number or {{dist: ...}}, got {value!r}") from None
    if isinstance(value, dict):
        kind = value.get("dist")
        if not isinstance(kind, str) or kind not in DIST_KEYS:
            raise ValueError(f"dist: one of {', '.join(DIST_KEYS)} (got {kind!r})")
        keys = set(value) - {"dist"}
        options = DIST_KEYS[kind]
        if keys not in [o for o in options if o]:
            need = " or ".join("{" + ", ".join(sorted(o)) + "}" for o in options if o)
            raise ValueError(f"{kind} takes {need} (got {{{', '.join(sorted(map(str, keys)))}}})")
        params = []
        for k in sorted(keys):
            x = _to_number(value[k]) if not isinstance(value[k], dict) else None
            if x is None or not math.isfinite(x):
                raise ValueError(f"{k}: a finite number (got {value[k]!r})")
            params.append((k, x))
        p = dict(params)
        if "p10" in p and p["p10"] > p["p90"]:
            raise ValueError(f"p10 ({_g(p['p10'])}) must be <= p90 ({_g(p['p90'])})")
        if kind == "lognormal" and p["p10"] <= 0:
            raise ValueError(f"lognormal p10 must be > 0 (got {_g(p['p10'])})")
        if kind == "normal" and "sd" in p and p["sd"] < 0:
            raise ValueError(f"sd must be >= 0 (got {_g(p['sd'])})")
        if kind in ("uniform", "triangular") and p["low"] > p["high"]:
            raise ValueError(f"low ({_g(p['low'])}) must be <= high ({_g(p['high'])})")
        if kind == "triangular" and not p["low"] <= p["mode"] <= p["high"]:
            raise ValueError("triangular needs low <= mode <= high")
        return Dist(kind, tuple(params))
    raise ValueError(f"a number or {{dist: ...}}, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class Bound:
    """The allowed range of a numeric field: (lo, hi) with open or closed ends."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    floor: float = -math.inf  # smallest value accepted (a positive amount below 1e-9 is a typo, not a plan)

    def text(self) -> str:
        left = ("> " if self.lo_open else ">= ") + _g(self.lo) + (f" (>= {self.floor:g})" if self.floor > self.lo else "")
        right = ("< " if self.hi_open else "<= ") + _g(self.hi)
        return f"{left} and {right}"

    def ok(self, x: float) -> bool:
        return (math.isfinite(x) and x >= self.floor and (x > self.lo if self.lo_open else x >= self.lo)
                and (x < self.hi if self.hi_open else x <= self.hi))


CAP = 1e12  # no count, price or amount in a plan is this large; keeps every product of inputs finite
POS = Bound(0.0, CAP, lo_open=True, floor=1e-9)
NONNEG = Bound(0.0, CAP)
UNIT = Bound(0.0, 1.0)
BELOW1 = Bound(0.0, 1.0, hi_open=True)
FACTOR = Bound(0.0, 100.0, lo_open=True, floor=1e-6)
RATE = Bound(0.0, 5.0)

Number = Annotated[Any, BeforeValidator(_to_number)]


def _not_bool(value: Any) -> Any:
    """A plain numeric key: a boolean is not a number (pydantic would read ``true`` as 1)."""
    if isinstance(value, bool):
        raise ValueError("not a boolean")
    return value


Int = Annotated[int, BeforeValidator(_not_bool)]
Float = Annotated[float, BeforeValidator(_not_bool)]


def num(bound: Bound, default: Any = ..., description: str = "") -> Any:
    """A numeric field (a number or a distribution) with its allowed range."""
    return Field(default, description=description, json_schema_extra={"bound": dataclasses.asdict(bound)})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------------------------------

class Product(_Model):
    users_start: Number = num(POS, description="paying users in month 1 [users]")
    growth_monthly: Number = num(UNIT, 0.0, "new users per month as a fraction of the current users")
    churn_monthly: Number = num(BELOW1, 0.0, "users lost per month as a fraction of the current users")
    price_per_user_month_usd: Number = num(NONNEG, description="revenue per user-month [USD]")
    requests_per_user_month: Number = num(NONNEG, 0.0, "requests per user-month [requests]")
    input_tokens_per_request: Number = num(NONNEG, 0.0, "[tokens]")
    output_tokens_per_request: Number = num(NONNEG, 0.0, "visible output tokens [tokens]")
    reasoning_multiplier: Number = num(Bound(1.0, 1000.0), 1.0, "billed output tokens / visible output tokens")
    cache_hit_rate: Number = num(UNIT, 0.0, "share of input tokens read from the prompt cache")
    variable_cost_per_user_month_usd: Number = num(NONNEG, 0.0, "other marginal cost per user-month [USD]")


class ApiRoute(_Model):
    """An API model priced through genai-prices by its name (or by explicit prices)."""

    model: str
    provider: str | None = None
    usd_per_million_input_tokens: Number = num(NONNEG, None)
    usd_per_million_output_tokens: Number = num(NONNEG, None)
    usd_per_million_cached_input_tokens: Number = num(NONNEG, None)


class SelfHosted(_Model):
    """A self-hosted deployment, priced one of three ways: measured $/M tokens; a measured throughput + GPUs +
    $/GPU-hour; or ``model:`` + ``gpu:`` (+ gpus, precision, tp, kv_precision), whose $/M input and output tokens
    come from the roofline serving model (:func:`billshape.serving.self_hosted_price`).
    """

    model: str | None = None
    precision: str | None = None
    kv_precision: str | None = None
    tp: Number = num(POS, None, "tensor-parallel group size (with model:) [GPUs]")

    usd_per_million_input_tokens: Number = num(NONNEG, None)
    usd_per_million_output_tokens: Number = num(NONNEG, None)
    usd_per_million_cached_input_tokens: Number = num(NONNEG, None)
    tokens_per_second: Number = num(POS, None, "output (decode) throughput of the deployment [tokens/s]")
    input_tokens_per_second: Number = num(POS, None, "input (prefill) throughput [tokens/s]")
    gpus: Number = num(POS, None, "[GPUs]")
    usd_per_gpu_hour: Number = num(POS, None, "[USD/GPU-hour]")
    gpu: str | None = None
    provider: str | None = None
    tier: str | None = None
    utilization: Number = num(Bound(0.0, 1.0, lo_open=True, floor=1e-6), None, "share of paid hours busy at that throughput")
    setup_usd: Number = num(NONNEG, 0.0, "one-time cost of standing the deployment up [USD] (F of build vs buy)")
    fixed_monthly_usd: Number = num(NONNEG, 0.0, "standing monthly cost of the deployment [USD]")


class Route(_Model):
    name: str | None = None
    share: Float = Field(ge=0, le=1, description="share of requests served by this route")
    api: ApiRoute | None = None
    self_hosted: SelfHosted | None = None


class Serving(_Model):
    routes: list[Route] = []


class TrainingProject(_Model):
    """A training or fine-tuning project (as ``billshape train``), or its bill given directly."""

    gpu: str | None = None
    gpus: Number = num(POS, None)
    days: Number = num(POS, None)
    hours: Number = num(POS, None)
    gpu_hours: Number = num(POS, None)
    usd_per_gpu_hour: Number = num(POS, None)
    provider: str | None = None
    tier: str | None = None
    method: Literal["rental", "amortized"] = "rental"
    total_usd: Number = num(NONNEG, None, "the bill, when known directly (e.g. a fine-tuning quote) [USD]")
    amortization_months: Int = Field(ge=1, le=MAX_HORIZON_MONTHS)
    retrain_every_months: Int = Field(0, ge=0, le=MAX_HORIZON_MONTHS)
    retrain_cost_fraction: Number = num(Bound(0.0, 100.0), 1.0, "each retraining's cost / the first bill")


class FixedMonthly(_Model):
    staff_usd: Number = num(NONNEG, 0.0)
    monitoring_usd: Number = num(NONNEG, 0.0)
    data_pipelines_usd: Number = num(NONNEG, 0.0)
    evaluation_usd: Number = num(NONNEG, 0.0)
    on_call_usd: Number = num(NONNEG, 0.0)
    other_usd: Number = num(NONNEG, 0.0)


class PriceStep(_Model):
    month: Int = Field(ge=1, le=MAX_HORIZON_MONTHS, description="first month at the new price")
    factor: Number = num(Bound(0.0, 1000.0, lo_open=True, floor=1e-6), description="multiplier on API prices from then on")


class Market(_Model):
    api_price_trend_annual: Number = num(FACTOR, 1.0, "API price multiplier per year (0.1 = 10x cheaper a year)")
    api_price_trend: str | None = Field(None, description="a named API price trend of data/price_trends.csv")
    api_price_steps: list[PriceStep] = []
    gpu_price_trend_annual: Number = num(FACTOR, 1.0, "GPU-hour price multiplier per year")
    gpu_price_trend: str | None = Field(None, description="a named hardware price trend of data/price_trends.csv")


TREND_KINDS = {  # which rows of data/price_trends.csv (by applies_to) a scenario's market trend may name
    "api_price_trend": ("API price for equal capability",),
    "gpu_price_trend": ("price per FLOP of GPU hardware",),
}


class Scenario(_Model):
    """A product plan (see ``docs/plan.md`` for every key)."""

    name: str = "scenario"
    description: str = ""
    horizon_months: Int = Field(ge=1, le=MAX_HORIZON_MONTHS)
    discount_rate_annual: Number = num(RATE, description="annual discount rate for the NPV")
    product: Product
    serving: Serving = Serving()
    training: TrainingProject | None = None
    fixed_monthly: FixedMonthly = FixedMonthly()
    market: Market = Market()


# --------------------------------------------------------------------------------------------------------------
# loading and checking
# --------------------------------------------------------------------------------------------------------------

def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "scenario"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            inner = getattr(cand, "__args__", (cand,))
            hit = next((c for c in (cand, *inner) if isinstance(c, type) and issubclass(c, BaseModel)), None)
            if hit is not None:
                model = hit
                break
        else:
            return None
    return model


def _field_at(loc: tuple):
    """The pydantic field a validation error's location points at (list indices skipped), or None."""
    names = [part for part in loc if not isinstance(part, int)]
    if not names:
        return None
    parent = _model_at(tuple(names[:-1]))
    return parent.model_fields.get(names[-1]) if parent is not None else None


def _allowed_text(field) -> str | None:
    """A field's allowed range in billshape's words ("an integer >= 1 and <= 240", "one of a, b"), from its
    annotation and constraints; None when the field has no simple range."""
    import typing

    ann = field.annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) is Literal or (args and all(isinstance(a, str) for a in args)):
        return "one of " + ", ".join(str(a) for a in typing.get_args(ann))
    base = ann if isinstance(ann, type) else next((a for a in args if isinstance(a, type)), None)
    if base is str:
        return "text"
    if base not in (int, float):
        return None
    parts = []
    for m in field.metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                parts.append(f"{op} {_g(getattr(m, attr))}")
    kind = "an integer" if base is int else "a number"
    return f"{kind} {' and '.join(parts)}" if parts else kind


PYDANTIC_HINTS = {  # pydantic error types -> a short hint after billshape's "allowed: <range>"
    "int_from_float": "not a whole number",
    "int_parsing": "not an integer",
    "int_parsing_size": "out of range",
    "int_type": "not an integer",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "finite_number": "not a finite number",
    "bool_type": "not a number",
    "string_type": None,
    "literal_error": None,
    "greater_than": None, "greater_than_equal": None, "less_than": None, "less_than_equal": None,
}


def _from_validation_error(exc: ValidationError) -> BillshapeInputError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    typ = err.get("type", "")
    value = err.get("input")
    if typ == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = sorted(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=3, cutoff=0.5)
        return BillshapeInputError(_path(loc), value if not isinstance(value, (dict, list)) else "...",
                                   "a known key: " + ", ".join(known) if known else "no such key",
                                   f"unknown key; did you mean {', '.join(close)}?" if close else "unknown key")
    if typ == "missing":
        field = _field_at(loc)
        allowed = _allowed_text(field) if field is not None else None
        if allowed is None and "bound" in _extra(field):
            allowed = Bound(**_extra(field)["bound"]).text()
        return BillshapeInputError(_path(loc), None, f"{allowed} (required key)" if allowed else "a value (required key)")
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if isinstance(value, (dict, list)):
        value = type(value).__name__
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        return BillshapeInputError(_path(loc), value, "a mapping (indented 'key: value' lines)")
    if typ == "list_type":
        return BillshapeInputError(_path(loc), value, "a list ('- ...' lines)")
    field = _field_at(loc)
    if typ == "value_error" and "bound" in _extra(field):  # a number-or-distribution key (``Number``)
        if isinstance(err.get("input"), dict):  # a distribution's own message ("p10 (300) must be <= p90 (100)")
            return BillshapeInputError(_path(loc), value, msg)
        return BillshapeInputError(_path(loc), value, Bound(**_extra(field)["bound"]).text(),
                                   msg.split(", got ")[0])
    allowed = _allowed_text(field) if field is not None else None
    if allowed is None:  # a number-or-distribution field's own message is already in billshape's words
        return BillshapeInputError(_path(loc), value, msg)
    hint = PYDANTIC_HINTS.get(typ, msg) if typ != "value_error" else msg
    return BillshapeInputError(_path(loc), value, allowed, hint)


def _extra(field) -> dict:
    extra = getattr(field, "json_schema_extra", None)
    return extra if isinstance(extra, dict) else {}


def _walk(model: BaseModel, prefix: tuple = ()):
    """Yield (loc, value, bound, field) for every numeric leaf of a parsed scenario."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        loc = prefix + (name,)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "bound" in extra:
            if value is not None:
                yield loc, value, Bound(**extra["bound"]), (field, name in model.model_fields_set)
        elif isinstance(value, BaseModel):
            yield from _walk(value, loc)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _walk(item, loc + (i,))


def _unit(field) -> str | None:
    desc = field.description or ""
    return desc[desc.index("[") + 1:desc.index("]")] if "[" in desc and "]" in desc else None


def _check_bounds(scn: Scenario, given: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Range-check every numeric field; return {yaml path: float | Dist (clipped to its range)}.

    ``given`` (if passed) collects the paths the file set explicitly, with their units.
    """
    values: dict[str, Any] = {}
    for loc, value, bound, (field, is_set) in _walk(scn):
        if given is not None and is_set:
            given[_path(loc)] = _unit(field)
        path = _path(loc)
        if isinstance(value, Dist):
            p = value.p
            lo_hi = [p[k] for k in ("low", "high", "mode") if k in p]
            if value.kind in ("uniform", "triangular"):
                bad = [x for x in lo_hi if not bound.ok(x)]
                if bad:
                    raise BillshapeInputError(path, value.describe(), f"a distribution inside {bound.text()}")
            else:
                for q in ("p10", "p90", "mean"):
                    if q in p and not bound.ok(p[q]):
                        raise BillshapeInputError(f"{path}.{q}", p[q], bound.text())
                tail = value.tail_outside(max(bound.lo, bound.floor), bound.hi)
                if tail > TAIL_LIMIT:
                    raise BillshapeInputError(
                        path, value.describe(), f"a distribution inside {bound.text()}",
                        f"this {value.kind} puts {tail:.1%} outside; use triangular or uniform for a bounded input")
            lo = float(np.nextafter(bound.lo, math.inf)) if bound.lo_open else bound.lo
            lo = max(lo, bound.floor)
            hi = float(np.nextafter(bound.hi, -math.inf)) if bound.hi_open else bound.hi
            values[path] = dataclasses.replace(value, lo=lo, hi=hi)
        else:
            if not bound.ok(value):
                raise BillshapeInputError(path, value, bound.text())
            values[path] = float(value)
    return values


def parse(data: Any, source: str = "scenario") -> "Plan":
    """Validate a scenario given as a mapping (as read from YAML) and resolve its prices.

    Raises :class:`BillshapeInputError` naming the YAML path (e.g. ``serving.routes[1].share``).
    """
    if not isinstance(data, dict):
        raise BillshapeInputError(source, type(data).__name__, "a YAML mapping with product:, horizon_months:, ...")
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    given: dict[str, str | None] = {}
    values = _check_bounds(scn, given)
    return Plan(scn, values, source, given)


def example_names() -> list[str]:
    """The shipped example scenarios' names (file names without ``.yaml``)."""
    return sorted(f.name[:-5] for f in examples_dir().iterdir() if f.name.endswith(".yaml"))


def resolve(path: str | Path) -> Path:
    """The scenario file ``path`` names: the file itself when it exists; else, for a bare name (no folder), the
    shipped example of that name, with or without ``.yaml`` (``billshape plan seed000_image_startup`` works from
    any directory and from an installed package).

    Raises :class:`BillshapeInputError` (field ``FILE``) listing the shipped names, the closest first, when
    neither exists.
    """
    p = Path(path)
    if p.exists():
        return p
    names = example_names()
    text = str(path)
    bare = p.name == text and text not in ("", ".", "..")
    stem = text[:-5] if text.endswith(".yaml") else text[:-4] if text.endswith(".yml") else text
    if bare and stem in names:
        return examples_dir() / f"{stem}.yaml"
    close = difflib.get_close_matches(Path(stem).name, names, n=3, cutoff=0.5)
    hint = "no such file" + (f"; did you mean {', '.join(close)}?" if close else "")
    raise BillshapeInputError("FILE", text, "a scenario YAML file, or the name of a shipped example: " + ", ".join(names),
                              hint)


def load(path: str | Path) -> "Plan":
    """Read and validate a scenario YAML file, or a shipped example by name (see :func:`resolve`)."""
    import yaml

    p = resolve(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BillshapeInputError("FILE", str(path), "a readable UTF-8 YAML file", type(exc).__name__) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p.name} line {mark.line + 1}" if mark is not None else p.name
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise BillshapeInputError(where, problem, "valid YAML") from None
    return parse(data, p.name)


# --------------------------------------------------------------------------------------------------------------
# API prices (genai-prices, offline)
# --------------------------------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------------------------------
# geometric sums (the price paths themselves come from billshape.market)
# --------------------------------------------------------------------------------------------------------------

def _geo_sum(x: np.ndarray, length: int) -> np.ndarray:
    r"""``sum_{j=0}^{length-1} x^j`` elementwise: ``expm1(L log x) / (x - 1)``, or ``L`` where ``x == 1``.

    ``x - 1`` is exact near 1 (Sterbenz), ``log``/``expm1`` keep full relative precision: a few ulps.
    """
    x = np.asarray(x, dtype=float)
    d = x - 1.0
    one = d == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.expm1(length * np.log(x)) / d
    if one.any():  # (np.where costs ~10x a multiplication per element: patch the rare exact ones instead)
        if out.ndim == 0:
            return np.float64(length)
        out = np.array(out, dtype=float)
        out[one] = float(length)
    return out


def _geo_rows(x: np.ndarray, months: int, scale: np.ndarray,
              steps: list[tuple[int, np.ndarray]] = ()) -> np.ndarray:
    """``out[m, i] = scale[i] * x[i]^m * prod(step factors from their month on)``, shape (months, n).

    Blocked products (x^(Ba + b) = (x^B)^a x^b, B ~ sqrt(months)): two short recurrences over vectors of
    samples and one multiplication per cell; ``scale`` and the steps from block boundaries on are folded into
    the block factors (per sample, not per cell).
    """
    n = x.shape[0]
    B = max(1, math.isqrt(months - 1) + 1)
    nb = -(-months // B)
    small = np.empty((B, n))
    small[0] = 1.0
    for k in range(1, B):
        np.multiply(small[k - 1], x, out=small[k])
    big = np.empty((nb, n))
    big[0] = scale
    if nb > 1:
        step = small[B - 1] * x
        for k in range(1, nb):
            np.multiply(big[k - 1], step, out=big[k])
    partial = []
    for m0, f in steps:  # m0: 0-based first month at the new price
        a = -(-m0 // B)
        big[a:] *= f
        if m0 < min(a * B, months):
            partial.append((m0, min(a * B, months), f))
    full = np.empty((nb, B, n))
    np.multiply(big[:, None, :], small[None, :, :], out=full)
    out = full.reshape(nb * B, n)[:months]
    for lo, hi, f in partial:
        out[lo:hi] *= f
    return out


def _levels(steps, months: int) -> list[tuple[int, np.ndarray]]:
    """Cumulative price-step levels: ``[(first 0-based month, level from then on), ...]`` in month order."""
    out, level = [], None
    for m0, f in sorted(steps, key=lambda s: s[0]):
        level = f if level is None else level * f
        out.append((m0, level))
    return [(m, lv) for m, lv in out if m < months]


def _payback(H: int, n: int, unit, terms, fixed_pm, retrain, re_cash, upfront, u0, r, price) -> np.ndarray:
    """Payback month per sample: after the last month whose cumulative cash is negative, linear within the month
    that turns it non-negative for good (0 with no up-front spend and no month in the red; inf: never).

    The monthly cash is ``r^i (unit + sum_k coef_k level_k(i) k_k^i) - fixed - retrain re_cash[i]`` (``i`` =
    month - 1; ``r`` the users' monthly ratio, ``k`` a route's market factor, ``level`` its price steps).
    Fast path, no months x samples pass: a sample is *certified* when its first month's cumulative cash is
    already >= 0 and stays so, proved by a lower bound ``b`` of the smooth cash over months 2..H (each factor
    is geometric, so its extremes are at the ends; a stepped level at its lowest / highest) that covers the
    retraining spend at its worst rate ``w = max_i R(i) / i`` (``R(i)`` the retrainings in months 2..i+1):
    ``C(i) >= C(0) + i (b - retrain w) >= C(0) >= 0``. The other samples take the exact path
    (:func:`_payback_months`: the monthly cumulative cash, months x samples).
    Any argument but ``terms`` may be a float (the same for all ``n`` samples).
    """
    cash0 = unit - fixed_pm - retrain * re_cash[0]  # month 1 (i = 0)
    margin = unit  # lower bound of the bracket over months 2..H
    for coef, k, steps in terms:
        lv = _levels(steps, H)
        at0 = [level for m0, level in lv if m0 == 0]
        cash0 = cash0 + coef * (at0[-1] if at0 else 1.0)
        if H > 1:
            with np.errstate(over="ignore", under="ignore", divide="ignore"):
                ends = np.exp((H - 1) * np.log(k))  # a bound: exp/log are SIMD, pow is not
            in_force = [level for m0, level in lv if m0 <= 1][-1:] + [level for m0, level in lv if m0 > 1]
            if not any(m0 <= 1 for m0, _ in lv):
                in_force.append(1.0)
            lv_lo = np.minimum.reduce([_bc(v, n) for v in in_force])
            lv_hi = np.maximum.reduce([_bc(v, n) for v in in_force])
            if np.all(coef <= 0):  # a cost (the usual case): at its highest
                margin = margin + coef * lv_hi * np.maximum(k, ends)
            else:
                margin = margin + np.where(coef >= 0, coef * lv_lo * np.minimum(k, ends), coef * lv_hi * np.maximum(k, ends))
    cum0 = cash0 - upfront
    ok = np.array(_bc(cum0 >= 0.0, n))
    if H > 1:
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            r_end = np.exp((H - 1) * np.log(r))
        # a negative margin is never certified, so the bound is only needed where it is >= 0
        ok &= margin >= 0.0
        lower = margin * np.minimum(r, r_end) - fixed_pm
        worst = float(np.max(np.cumsum(re_cash[1:]) / np.arange(1, H)))
        ok &= lower >= retrain * worst if worst > 0 else lower >= 0.0
    all_ok = bool(ok.all())
    with np.errstate(divide="ignore", invalid="ignore"):
        spend = np.clip(price - cash0 / u0, 0.0, price)
        upf = np.maximum(upfront, 0.0)
    if not all_ok:  # the other samples are done below; keep the call's inputs finite
        spend = np.array(_bc(spend, n))
        upf = np.array(_bc(upf, n))
        spend[~ok] = 0.0
        upf[~ok] = 0.0
    payback = np.array(_bc(np.minimum(business.payback_months_unchecked(upf, u0, price, spend), 1.0), n))
    none = _bc(upfront <= 0, n)
    if none.any():
        payback[none] = 0.0
    rest = np.nonzero(~ok)[0] if not all_ok else np.zeros(0, dtype=np.intp)
    if rest.size:
        def sub(a):
            return _bc(a, n)[rest]

        r_sub = sub(r)
        sub_terms = [(sub(unit), r_sub, [])] + [(sub(c), r_sub * sub(k), [(m0, sub(f)) for m0, f in st])
                                               for c, k, st in terms]
        payback[rest] = _payback_months(H, sub_terms, sub(fixed_pm), sub(retrain), re_cash, sub(upfront),
                                        sub(u0), r_sub, sub(price))
    return payback


def _payback_months(H: int, terms, fixed_pm, retrain, re_cash, upfront, u0, r, price) -> np.ndarray:
    """The exact payback path for the samples the certificate leaves (see :func:`_payback`; a few percent):
    their monthly cumulative cash, samples x months, each term's sequence ``coef x^i`` as ``exp(i log x)`` and
    one ``cumsum``: a handful of array operations whatever the horizon, since on these small arrays the count of
    operations (each one a hand-over of the interpreter between the Monte Carlo threads) is the cost."""
    i = np.arange(H, dtype=float)
    cash = None
    for coef, base, steps in terms:
        rows = np.log(base)[:, None] * i
        np.exp(rows, out=rows)
        rows *= np.asarray(coef)[:, None]
        for m0, f in steps:
            rows[:, m0:] *= np.asarray(f)[:, None]
        cash = rows if cash is None else np.add(cash, rows, out=cash)
    cash -= np.asarray(fixed_pm)[:, None]
    if re_cash.any():
        cash -= np.asarray(retrain)[:, None] * re_cash
    cum = np.cumsum(cash, axis=1, out=cash)
    cum -= np.asarray(upfront)[:, None]
    return _payback_from_cum(H, cum.T, upfront, u0, r, price)


def _payback_from_cash(H: int, cash: np.ndarray, upfront, u0, r, price):
    """Payback month per sample, and the cumulative cash (months x samples), from the monthly cash flow
    (months x samples, before the up-front spend)."""
    n = cash.shape[1]
    cum = cash.copy()
    cum[0] -= upfront
    for m in range(1, H):  # H vector additions: faster than cumsum along either axis on large arrays
        np.add(cum[m - 1], cum[m], out=cum[m])
    return _payback_from_cum(H, cum, upfront, u0, r, price), cum


def _payback_from_cum(H: int, cum: np.ndarray, upfront, u0, r, price) -> np.ndarray:
    """Payback month per sample from the cumulative cash after the up-front spend (months x samples, or a
    transposed view): after the last month in the red, linear within the month that turns it non-negative."""
    n = cum.shape[1]
    upfront, u0, r, price = (_bc(np.asarray(a, dtype=float), n) for a in (upfront, u0, r, price))
    neg = cum < 0.0
    month_no = np.arange(1, H + 1, dtype=np.uint8 if H < 256 else np.uint16)[:, None]
    last_neg = np.multiply(neg, month_no, dtype=month_no.dtype).max(axis=0).astype(np.intp)  # 0: never
    ever_neg = (last_neg > 0) | (upfront > 0)
    f_all = last_neg  # index of the month in which the cumulative cash turns non-negative for good
    payback = np.where(ever_neg, np.inf, 0.0)
    rows = np.nonzero(ever_neg & (f_all < H))[0]
    if rows.size:
        f = f_all[rows]
        cum_f = cum[f, rows]
        before = np.where(f > 0, cum[np.maximum(f - 1, 0), rows], -upfront[rows])
        cash_f = cum_f - before
        remaining = np.maximum(-before, 0.0)
        u_m = u0[rows] * r[rows] ** f
        rev_pu = price[rows]
        spend_pu = np.clip(rev_pu - cash_f / u_m, 0.0, rev_pu)  # all costs of that month per user
        frac_m = business.payback_months_unchecked(remaining, u_m, rev_pu, spend_pu)
        frac_m = np.where(remaining > 0, frac_m, 0.0)
        payback[rows] = f + np.minimum(frac_m, 1.0)
    return payback


def _bc(x, n: int) -> np.ndarray:
    """``x`` (a scalar or shape (n,)) as shape (n,): itself, or a read-only zero-stride view of one value (what
    ``np.broadcast_to`` returns, without its per-call cost)."""
    a = np.asarray(x)
    if a.shape == (n,):
        return a
    one = np.array(a.reshape(-1)[:1] if a.size == 1 else a)
    if one.size != 1:
        return np.broadcast_to(a, (n,))
    view = np.ndarray((n,), one.dtype, one, 0, (0,))
    view.flags.writeable = False
    return view


def _sv(x) -> float | np.ndarray:
    """A parameter (scalar or (n, 1)) as a Python float when it is one number for all samples, else shape (n,)."""
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a.reshape(-1)


# --------------------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _RouteSpec:
    index: int
    name: str
    kind: str  # "api" | "measured" | "deployment" | "model"
    share: float
    prefix: str  # yaml path of the route's api/self_hosted block
    api: ApiPrice | None = None


class Plan:
    """A validated scenario with its prices resolved: evaluate it with :meth:`evaluate`."""

    def __init__(self, scenario: Scenario, values: dict[str, Any], source: str = "scenario",
                 given: dict[str, str | None] | None = None):
        self.scenario = scenario
        self.values = values
        self.given = given if given is not None else {k: None for k in values}
        self.source = source
        self.assumptions: list[Assumption] = []
        self.routes: list[_RouteSpec] = []
        self.model_quotes: dict[str, dict[str, float]] = {}  # model: routes' serving quotes at the medians
        self._resolve()

    # -- resolution -------------------------------------------------------------------------------------
    def uncertain(self) -> list[str]:
        """YAML paths of the inputs given as distributions."""
        return [k for k, v in self.values.items() if isinstance(v, Dist)]

    def median(self, path: str, default: float | None = None) -> float | None:
        v = self.values.get(path)
        if v is None:
            return default
        return v.ppf(0.5) if isinstance(v, Dist) else v

    def _resolve(self) -> None:
        s = self.scenario
        flag = self.source
        for path, unit in self.given.items():
            v = self.values[path]
            shown = v.describe() if isinstance(v, Dist) else v
            self.assumptions.append(user(path, shown, unit, flag))
        routes = s.serving.routes
        if routes:
            total = sum(r.share for r in routes)
            if abs(total - 1.0) > 1e-6:
                raise BillshapeInputError(f"serving.routes[{len(routes) - 1}].share", routes[-1].share,
                                          "shares that sum to 1", f"the shares sum to {total:g}")
        for i, r in enumerate(routes):
            base = f"serving.routes[{i}]"
            if (r.api is None) == (r.self_hosted is None):
                raise BillshapeInputError(base, r.name or i, "exactly one of api: or self_hosted:")
            if r.api is not None:
                prefix = base + ".api"
                given = [k for k in ("usd_per_million_input_tokens", "usd_per_million_output_tokens")
                         if f"{prefix}.{k}" in self.values]
                price = None
                if len(given) < 2:
                    price = api_price(r.api.model, r.api.provider, prefix + ".model")
                    self.assumptions.extend(price.assumptions)
                self.routes.append(_RouteSpec(i, r.name or r.api.model, "api", r.share, prefix, price))
            else:
                prefix = base + ".self_hosted"
                h = r.self_hosted
                measured = h.usd_per_million_output_tokens is not None
                deployment = h.tokens_per_second is not None
                modelled = h.model is not None
                if measured + deployment + modelled != 1:
                    many = measured + deployment + modelled > 1
                    key = (".model" if modelled else ".tokens_per_second") if many else ""
                    raise BillshapeInputError(prefix + key, getattr(h, key[1:]) if many else "...", "exactly one of: usd_per_million_input_tokens + "
                                              "usd_per_million_output_tokens; tokens_per_second + gpus + "
                                              "usd_per_gpu_hour (or gpu + provider [+ tier]); model + gpu (+ gpus, "
                                              "precision, price or provider)")
                for k in ("precision", "kv_precision", "tp"):
                    if not modelled and getattr(h, k) is not None:
                        raise BillshapeInputError(f"{prefix}.{k}", getattr(h, k), "only with model:")
                if measured:
                    if h.usd_per_million_input_tokens is None:
                        raise BillshapeInputError(prefix + ".usd_per_million_input_tokens", None, "a price >= 0")
                    for k in ("gpus", "usd_per_gpu_hour", "utilization", "input_tokens_per_second", "gpu", "provider", "tier"):
                        if getattr(h, k) is not None:
                            raise BillshapeInputError(f"{prefix}.{k}", getattr(h, k), "only with tokens_per_second")
                    kind = "measured"
                elif deployment:
                    if h.gpus is None:
                        raise BillshapeInputError(prefix + ".gpus", None, "a GPU count > 0 (with tokens_per_second)")
                    if h.usd_per_million_input_tokens is not None or h.usd_per_million_cached_input_tokens is not None:
                        raise BillshapeInputError(prefix + ".usd_per_million_input_tokens", "...",
                                                  "only with a measured usd_per_million_output_tokens")
                    self._resolve_gpu_price(prefix, h)
                    kind = "deployment"
                else:
                    for k in ("usd_per_million_input_tokens", "usd_per_million_cached_input_tokens", "input_tokens_per_second"):
                        if getattr(h, k) is not None:
                            raise BillshapeInputError(f"{prefix}.{k}", "...", "omitted with model: (the serving model gives it)")
                    self._resolve_gpu_price(prefix, h)
                    self._resolve_model_route(prefix, h)
                    kind = "model"
                self.routes.append(_RouteSpec(i, r.name or f"self-hosted #{i}", kind, r.share, prefix))
        if routes:
            p = s.product
            if p.requests_per_user_month == 0 and "product.requests_per_user_month" not in self.uncertain():
                self.assumptions.append(derived("requests per user-month", 0.0, "requests",
                                                "product.requests_per_user_month not given: no inference cost"))
        else:
            self.assumptions.append(Assumption(name="serving cost", value=0.0, unit="USD",
                                               source="no serving.routes given: inference cost excluded (as in seed 000)",
                                               as_of=None))
        self._resolve_trends()
        self._resolve_training()

    def _resolve_trends(self) -> None:
        """``market.api_price_trend: NAME`` (and ``gpu_price_trend``): the annual factor of a named trend of
        ``data/price_trends.csv`` (:func:`billshape.market.trend`), with its source in the assumptions."""
        m = self.scenario.market
        for key, kinds in TREND_KINDS.items():
            name = getattr(m, key)
            if name is None:
                continue
            field = f"market.{key}"
            number = f"market.{key}_annual"
            if number in self.given:
                raise BillshapeInputError(field, name, f"either {key} (a name) or {key}_annual (a number), not both")
            allowed = {n: t for n, t in market.trends().items() if t.applies_to in kinds}
            if str(name).strip().lower() not in allowed:
                from billshape.errors import unknown_name

                raise unknown_name(field, name, allowed)
            row = market.trend(name, field)
            self.values[number] = float(row.annual_factor)
            self.assumptions.append(row.assumption(f"{field}: {row.name} ({row.applies_to})", row.annual_factor,
                                                   "x per year"))

    def _resolve_model_route(self, prefix: str, h: SelfHosted) -> None:
        """$/M input and output tokens of a ``model:`` route from :func:`billshape.serving.self_hosted_price`.

        The roofline is evaluated ONCE, at the medians of the product's request shape (input tokens; output
        tokens x reasoning multiplier) and of the route's $/GPU-hour and utilization. Throughput does not
        depend on the price or the utilization, and the cost is linear in price / utilization, so a Monte Carlo
        sample's cost is the median cost x (price / its median) x (utilization median / utilization): vectorised,
        no roofline call per sample. ``gpus`` and ``tp`` (which change the throughput) must be plain numbers.
        """
        from billshape import serving

        for k in ("gpus", "tp"):
            if isinstance(self.values.get(f"{prefix}.{k}"), Dist):
                raise BillshapeInputError(f"{prefix}.{k}", self.values[f"{prefix}.{k}"].describe(),
                                          "a plain number with model: (the roofline is evaluated once)")
        if h.gpu is None:
            raise BillshapeInputError(prefix + ".gpu", None, "an accelerator name (with model:), e.g. h100")
        t_in = self.median("product.input_tokens_per_request", 0.0)
        t_out = self.median("product.output_tokens_per_request", 0.0) * self.median("product.reasoning_multiplier", 1.0)
        price = self.median(prefix + ".usd_per_gpu_hour")
        util = self.median(prefix + ".utilization", 1.0)
        flag_to_key = {"--model": "model", "--gpu": "gpu", "--gpus": "gpus", "--tp": "tp", "--precision": "precision",
                       "--kv-precision": "kv_precision", "--price": "usd_per_gpu_hour", "--utilization": "utilization",
                       "--provider": "provider", "--tier": "tier"}
        if t_in <= 0 or t_out <= 0:
            raise BillshapeInputError("product.input_tokens_per_request" if t_in <= 0 else "product.output_tokens_per_request",
                                      t_in if t_in <= 0 else t_out, "> 0 with a self_hosted model: route (the roofline "
                                      "sizes the batch on the request shape)")
        try:
            quote = serving.self_hosted_price(h.model, h.gpu, self.values.get(prefix + ".gpus"), h.precision or "fp8",
                                              t_in, t_out, price, util, tp=self.values.get(prefix + ".tp"),
                                              kv_precision=h.kv_precision)
        except BillshapeInputError as exc:
            key = flag_to_key.get(cli_flag(exc.field), "model")
            raise BillshapeInputError(f"{prefix}.{key}", exc.value, exc.allowed, exc.hint) from None
        self.model_quotes[prefix] = {**quote, "usd_per_gpu_hour": price, "utilization": util}
        label = f"{h.model} on {h.gpu} ({h.precision or 'fp8'})"
        src = (f"billshape.serving.self_hosted_price: {label}, "
               f"{t_in:g} in + {t_out:g} out tokens per request, at the medians of price and utilization")
        self.assumptions += [
            derived(f"{label} output throughput", quote["output_tokens_per_second"], "tokens/s", src),
            derived(f"{label} input price", quote["usd_per_million_input_tokens"], "USD per million tokens", src),
            derived(f"{label} output price", quote["usd_per_million_output_tokens"], "USD per million tokens", src),
            derived(f"{label} cached input price", 0.0, "USD per million tokens",
                    "a cached prefix skips prefill (as billshape.serving.serve)"),
        ]

    def _resolve_gpu_price(self, prefix: str, h: SelfHosted) -> None:
        from billshape import catalog

        if h.usd_per_gpu_hour is not None:
            if h.provider is not None:
                raise BillshapeInputError(prefix + ".provider", h.provider, "omitted when usd_per_gpu_hour is given")
            return
        if h.provider is None or h.gpu is None:
            raise BillshapeInputError(prefix + ".usd_per_gpu_hour", None,
                                      "a price, or gpu: and provider: [tier:] to price from the catalog")
        try:
            quote = catalog.price(h.gpu, h.provider, h.tier or "on-demand")
        except BillshapeInputError as exc:
            key = {"--gpu": "gpu", "--provider": "provider", "--tier": "tier"}.get(cli_flag(exc.field), "provider")
            raise BillshapeInputError(f"{prefix}.{key}", exc.value, exc.allowed, exc.hint) from None
        self.values[prefix + ".usd_per_gpu_hour"] = quote.usd_per_gpu_hour
        self.assumptions.append(quote.assumption(f"{quote.provider} {quote.gpu} {quote.tier} price",
                                                 quote.usd_per_gpu_hour, "USD/GPU-hour"))

    def _resolve_training(self) -> None:
        from billshape.estimates import training_bill

        t = self.scenario.training
        self.training_usd_p50 = 0.0
        self.training_scale_paths: list[str] = []
        if t is None:
            return
        given = {k for k in ("gpus", "days", "hours", "gpu_hours", "usd_per_gpu_hour") if getattr(t, k) is not None}
        if t.total_usd is not None:
            if given or t.gpu or t.provider:
                raise BillshapeInputError("training.total_usd", "...", "either total_usd or the run (gpus, days, ...), not both")
            self.training_usd_p50 = self.median("training.total_usd")
            self.training_scale_paths = ["training.total_usd"]
            return
        flag_to_key = {"--gpu": "gpu", "--gpus": "gpus", "--days": "days", "--hours": "hours", "--gpu-hours": "gpu_hours",
                       "--price": "usd_per_gpu_hour", "--provider": "provider", "--tier": "tier", "--method": "method",
                       "--price/--provider": "usd_per_gpu_hour", "--days/--hours": "days"}
        try:
            bill = training_bill(
                gpu=t.gpu, gpus=self.median("training.gpus"), days=self.median("training.days"),
                hours=self.median("training.hours"), gpu_hours=self.median("training.gpu_hours"),
                price=self.median("training.usd_per_gpu_hour"), provider=t.provider, tier=t.tier, method=t.method)
        except BillshapeInputError as exc:
            key = flag_to_key.get(cli_flag(exc.field), exc.field.lstrip("-").replace("-", "_"))
            raise BillshapeInputError(f"training.{key}", exc.value, exc.allowed, exc.hint) from None
        self.training_usd_p50 = bill.total_usd
        # The bill is linear in each of these inputs (GPU-hours x price; amortised: rate x hours + energy ~ hours):
        # a sample's bill is the median bill scaled by each input's ratio to its median.
        self.training_scale_paths = [f"training.{k}" for k in sorted(given)]
        for a in bill.assumptions:
            if a.source.startswith("user input") or a.name == "rnd_compute_multiplier":
                continue  # the scenario's own inputs are listed already
            self.assumptions.append(a.model_copy(update={"name": "training: " + a.name}))
        self.assumptions.append(derived("training bill (at the inputs' medians)", bill.total_usd, "USD",
                                        "billshape.estimates.training_bill"))

    # -- parameters ---------------------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator | None, n: int) -> dict[str, Any]:
        """One draw per sample of each uncertain input, shape (n, 1); certain inputs as floats."""
        out: dict[str, Any] = {}
        # the laws grouped by kind, so that each kind's rows are one block (see _draw_batch); the order is fixed
        # by the scenario, so a seed gives the same draws every time
        dists = sorted(((path, v) for path, v in self.values.items() if isinstance(v, Dist)),
                       key=lambda pv: ("triangular", "uniform", "normal", "lognormal").index(pv[1].kind))
        block = _draw_batch([v for _, v in dists], rng, n) if dists else None
        for path, v in self.values.items():
            out[path] = v
        for i, (path, _) in enumerate(dists):
            out[path] = block[i][:, None]
        return out

    def _medians(self) -> dict[str, Any]:
        return {p: (v.ppf(0.5) if isinstance(v, Dist) else v) for p, v in self.values.items()}

    # -- the model ----------------------------------------------------------------------------------------
    def _route_costs(self, P: dict[str, Any]):
        """USD per user-month of API traffic and of self-hosted traffic, before the market paths."""
        g = P.get
        req = g("product.requests_per_user_month", 0.0)
        t_in = g("product.input_tokens_per_request", 0.0)
        t_out = g("product.output_tokens_per_request", 0.0) * g("product.reasoning_multiplier", 1.0)
        h = g("product.cache_hit_rate", 0.0)
        api = 0.0
        own = 0.0
        for r in self.routes:
            pre = r.prefix
            if r.kind == "api":
                a_in = g(pre + ".usd_per_million_input_tokens", r.api.input if r.api else None)
                a_out = g(pre + ".usd_per_million_output_tokens", r.api.output if r.api else None)
                a_cache = g(pre + ".usd_per_million_cached_input_tokens", r.api.cached_input if r.api else a_in)
            elif r.kind == "measured":
                a_in = g(pre + ".usd_per_million_input_tokens")
                a_out = g(pre + ".usd_per_million_output_tokens")
                a_cache = g(pre + ".usd_per_million_cached_input_tokens", a_in)
            elif r.kind == "model":
                q = self.model_quotes[pre]
                scale = (g(pre + ".usd_per_gpu_hour") / q["usd_per_gpu_hour"]) * (q["utilization"] / g(pre + ".utilization", 1.0))
                a_in = q["usd_per_million_input_tokens"] * scale
                a_out = q["usd_per_million_output_tokens"] * scale
                a_cache = 0.0
            else:
                per_hour = inference.deployment_usd_per_hour(g(pre + ".usd_per_gpu_hour"), g(pre + ".gpus"))
                u = g(pre + ".utilization", 1.0)
                a_out = inference.usd_per_million_tokens(per_hour, g(pre + ".tokens_per_second"), u)
                tin = g(pre + ".input_tokens_per_second")
                a_in = 0.0 if tin is None else inference.usd_per_million_tokens(per_hour, tin, u)
                a_cache = 0.0
            per_user = req * (t_in * ((1.0 - h) * a_in + h * a_cache) + t_out * a_out) / 1e6
            if r.kind == "api":
                api = api + r.share * per_user
            else:
                own = own + r.share * per_user
        return api, own

    def _fixed_costs(self, P: dict[str, Any]):
        """Fixed monthly costs (incl. self-hosted routes' standing costs), set-up, the training bill and the
        retraining fraction per sample: each a float when the same for every sample, else shape (n,)."""
        g = P.get
        fixed_pm = sum(g(f"fixed_monthly.{k}", 0.0) for k in FixedMonthly.model_fields)
        setup = 0.0
        for rt in self.routes:
            if rt.kind != "api":
                fixed_pm = fixed_pm + g(rt.prefix + ".fixed_monthly_usd", 0.0)
                setup = setup + g(rt.prefix + ".setup_usd", 0.0)
        bill = self.training_usd_p50  # scaled by each uncertain input's ratio to its median (the bill is linear in it)
        for path in self.training_scale_paths:
            v = self.values[path]
            if isinstance(v, Dist):
                med = v.ppf(0.5)
                bill = bill * (_sv(g(path)) / med) if med > 0 else bill
        return _sv(fixed_pm), _sv(setup), _sv(bill), _sv(g("training.retrain_cost_fraction", 1.0))

    def _simulate(self, P: dict[str, Any], monthly: bool = True) -> dict[str, np.ndarray]:
        """Evaluate the plan for a batch of parameter draws (arrays of shape (n, 1) or scalars), month by month.

        Returns per-sample summaries of shape (n,) and, with ``monthly``, per-month arrays of shape (n, H)
        (views of months x samples arrays: each month is a contiguous vector over the samples, the layout the
        monthly percentiles select along). Each route's monthly cost is the blocked geometric sequence of
        :func:`_geo_rows` (user growth x the market's monthly price factor, with the price steps), as in
        :meth:`_summaries`, which a test checks against this and against the plain loop :func:`loop_summaries`.
        """
        sc = self.scenario
        H = sc.horizon_months
        g = P.get
        months = np.arange(1, H + 1, dtype=float)
        n = max([np.shape(v)[0] for v in P.values() if np.ndim(v) > 0] or [1])

        def full(x):
            return _bc(np.asarray(_sv(x), dtype=float), n)

        # users, and the marginal inference cost: users x cost per user-month x the market's price path
        u0 = _sv(g("product.users_start"))
        r = _sv(1.0 + np.asarray(g("product.growth_monthly", 0.0) - g("product.churn_monthly", 0.0), dtype=float))
        price = _sv(g("product.price_per_user_month_usd"))
        var_pu = _sv(g("product.variable_cost_per_user_month_usd", 0.0))
        users = _geo_rows(full(r), H, full(u0))  # (H, n)
        contribution = users * (price - var_pu)

        api_pu, own_pu = self._route_costs(P)
        inference_usd = None
        for kind, per_user in (("api", api_pu), ("own", own_pu)):
            if not self.routes or not np.any(np.asarray(per_user) != 0):
                continue
            key = "market.api_price_trend_annual" if kind == "api" else "market.gpu_price_trend_annual"
            k = _sv(market.monthly_factor(g(key, 1.0)))
            steps = []
            if kind == "api":
                steps = [(st.month - 1, full(g(f"market.api_price_steps[{i}].factor")))
                         for i, st in enumerate(sc.market.api_price_steps) if st.month <= H]
            rows = _geo_rows(full(r * k), H, full(u0 * _sv(per_user)), steps)
            inference_usd = rows if inference_usd is None else np.add(inference_usd, rows, out=inference_usd)
        if inference_usd is None:
            inference_usd = np.broadcast_to(0.0, (H, n))
        else:
            contribution -= inference_usd

        # fixed costs, training, set-up
        fixed_pm, setup, bill, frac = (full(x) for x in self._fixed_costs(P))
        init_amort, re_amort, re_cash = self._training_patterns(H)
        retrain = re_cash.any()

        cash = contribution - fixed_pm  # contribution is kept for the monthly rows
        if retrain:
            retrain_cash = re_cash[:, None] * (bill * frac)
            cash -= retrain_cash
        upfront = bill + setup
        # payback: when the cumulative cash turns non-negative for good (it may dip again after a retraining or
        # a price shock: payback is after the last dip), linear within that month; never: inf
        payback, cum = _payback_from_cash(H, cash, upfront, u0, r, price)

        rate = _sv(g("discount_rate_annual"))
        if np.ndim(rate) == 0:
            npv = ((1.0 + rate) ** (-months / 12.0)) @ cash - upfront
        else:
            npv = (cash * (1.0 + rate[None, :]) ** (-months[:, None] / 12.0)).sum(axis=0) - upfront
        user_months = users.sum(axis=0)
        contribution_total = contribution.sum(axis=0)
        amort_total = bill * (init_amort.sum() + frac * re_amort.sum())
        fixed_total = fixed_pm * H + setup
        training_total = bill * (1.0 + frac * re_cash.sum())
        inference_total = inference_usd.sum(axis=0)
        denom = training_total + inference_total
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(denom > 0, training_total / np.where(denom > 0, denom, 1.0), np.nan)
        out = {
            "payback_month": payback,
            "cumulative_profit_usd": cum[-1],
            "npv_usd": npv,
            "contribution_margin_per_user_month_usd": contribution_total / user_months,
            "fully_loaded_margin_per_user_month_usd": (contribution_total - fixed_total - amort_total) / user_months,
            "training_share_of_lifetime_cost": share,
            "lifetime_revenue_usd": user_months * price,
            "lifetime_inference_usd": inference_total,
            "lifetime_training_usd": training_total,
            "lifetime_fixed_usd": fixed_total,
            "upfront_usd": upfront,
        }
        if monthly:
            amort = init_amort[:, None] * bill + re_amort[:, None] * (bill * frac)
            fixed = np.broadcast_to(fixed_pm, (H, n))
            setup_m = np.broadcast_to(setup / H, (H, n))
            fully_loaded = contribution - fixed_pm - amort - setup / H
            monthly_rows = {
                "users": users, "revenue_usd": users * price, "inference_usd": inference_usd,
                "variable_usd": users * var_pu, "fixed_usd": fixed, "training_amortization_usd": amort,
                "setup_amortization_usd": setup_m,
                "training_cash_usd": retrain_cash if retrain else np.broadcast_to(0.0, (H, n)),
                "contribution_usd": contribution, "fully_loaded_profit_usd": fully_loaded,
                "cash_flow_usd": cash, "cumulative_cash_usd": cum,
                "contribution_margin_per_user_usd": contribution / users,
                "fully_loaded_margin_per_user_usd": fully_loaded / users,
            }
            out.update({k: np.broadcast_to(v, (H, n)).T for k, v in monthly_rows.items()})
        return out

    def _summaries(self, P: dict[str, Any]) -> dict[str, np.ndarray]:
        """The per-sample summaries of :meth:`_simulate` without its monthly arrays: the Monte Carlo hot path.

        The same model, arranged for speed (a test checks it against :meth:`_simulate` and the plain loop
        :func:`loop_summaries`):

        * every lifetime total and the NPV are closed-form geometric sums per sample (users, revenue and each
          route's cost are geometric in the month, piecewise at the API price steps), no samples x months pass;
        * only the payback needs the monthly cumulative cash. It is laid out months x samples, so that each
          month is a contiguous vector over the samples: the running sum is H vector additions (``cumsum``
          along the months of a samples x months array is sequential per row and several times slower), and
          "the last month in the red" is a max over months of a uint8 array;
        * each route's monthly cost is one blocked geometric sequence of the combined ratio (user growth x the
          market's monthly price factor, :func:`billshape.market.monthly_factor`) with its scale and the price
          steps folded into the per-sample block factors.
        """
        sc = self.scenario
        H = sc.horizon_months
        g = P.get
        n = max([np.shape(v)[0] for v in P.values() if np.ndim(v) > 0] or [1])
        # an input that is the same for every sample stays a Python float: its arithmetic costs nothing per sample
        u0 = _sv(g("product.users_start"))
        r = _sv(1.0 + np.asarray(g("product.growth_monthly", 0.0) - g("product.churn_monthly", 0.0), dtype=float))
        price = _sv(g("product.price_per_user_month_usd"))
        var_pu = _sv(g("product.variable_cost_per_user_month_usd", 0.0))
        rate = _sv(g("discount_rate_annual"))
        d = (1.0 + rate) ** (-1.0 / 12.0)  # discount factor per month

        # users and revenue: closed forms
        user_months = u0 * _geo_sum(r, H)
        revenue_total = user_months * price
        unit = u0 * (price - var_pu)
        npv = unit * d * _geo_sum(r * d, H)
        terms = []  # each route kind's monthly cost: -scale x level x (r k)^(month - 1), k its market factor

        api_pu, own_pu = self._route_costs(P)
        inference_total = 0.0
        for kind, per_user in (("api", api_pu), ("own", own_pu)):
            if not self.routes or not np.any(np.asarray(per_user) != 0):
                continue
            key = "market.api_price_trend_annual" if kind == "api" else "market.gpu_price_trend_annual"
            k = _sv(market.monthly_factor(g(key, 1.0)))
            x = r * k
            scale = u0 * _sv(per_user)
            steps = []
            if kind == "api":
                steps = [(st.month - 1, _sv(g(f"market.api_price_steps[{i}].factor")))
                         for i, st in enumerate(sc.market.api_price_steps) if st.month <= H]
            # lifetime cost and its NPV, segment by segment between price steps
            bounds = sorted({0, H, *[m0 for m0, _ in steps]})
            level = 1.0
            xd = x * d
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                for m0, f in steps:
                    if m0 == lo:
                        level = level * f
                seg = scale * level
                if lo:
                    inference_total = inference_total + seg * x ** lo * _geo_sum(x, hi - lo)
                    npv = npv - seg * d * xd ** lo * _geo_sum(xd, hi - lo)
                else:
                    inference_total = inference_total + seg * _geo_sum(x, hi - lo)
                    npv = npv - seg * d * _geo_sum(xd, hi - lo)
            terms.append((-scale, k, steps))

        fixed_pm, setup, bill, frac = self._fixed_costs(P)
        init_amort, re_amort, re_cash = self._training_patterns(H)
        contribution_total = revenue_total - var_pu * user_months - inference_total
        upfront = bill + setup

        fixed_total = fixed_pm * H + setup
        training_total = bill * (1.0 + frac * re_cash.sum())
        npv = npv - (fixed_pm * d * _geo_sum(d, H) + upfront)
        cum_end = contribution_total - fixed_pm * H - bill * frac * re_cash.sum() - upfront
        retrain = bill * frac
        retrain_months = np.nonzero(re_cash)[0]
        if retrain_months.size:  # the retrainings' discounted cash: one weighted sum of the discount factors
            disc = 0.0
            for m in retrain_months:
                disc = disc + re_cash[m] * d ** (m + 1)
            npv = npv - retrain * disc
        payback = _payback(H, n, unit, terms, fixed_pm, retrain, re_cash, upfront, u0, r, price)

        amort_total = bill * (init_amort.sum() + frac * re_amort.sum())
        denom = _bc(training_total + inference_total, n)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.array(_bc(training_total / denom, n))
        empty = ~(denom > 0)
        if empty.any():
            share[empty] = np.nan

        def full(x):
            return _bc(np.asarray(x, dtype=float), n)

        return {
            "payback_month": payback,
            "cumulative_profit_usd": full(cum_end),
            "npv_usd": full(npv),
            "contribution_margin_per_user_month_usd": full(contribution_total / user_months),
            "fully_loaded_margin_per_user_month_usd": full((contribution_total - fixed_total - amort_total)
                                                           / user_months),
            "training_share_of_lifetime_cost": share,
            "lifetime_revenue_usd": full(revenue_total),
            "lifetime_inference_usd": full(inference_total),
            "lifetime_training_usd": full(training_total),
            "lifetime_fixed_usd": full(fixed_total),
            "upfront_usd": full(upfront),
        }

    def _loop_schedule(self) -> dict[str, Any]:
        """Sample-independent schedules for :func:`loop_summaries` (computed once per plan)."""
        if getattr(self, "_sched", None) is None:
            H = self.scenario.horizon_months
            init, re_am, re_cash = self._training_patterns(H)
            self._sched = {
                "retrain_months": {int(m) + 1: float(re_cash[m]) for m in np.nonzero(re_cash)[0]},
                "init_amort": float(init.sum()), "re_amort": float(re_am.sum()), "re_cash": float(re_cash.sum()),
                "steps": [(i, st.month) for i, st in enumerate(self.scenario.market.api_price_steps) if st.month <= H],
                "bill_scale": [(p, self.values[p].ppf(0.5)) for p in self.training_scale_paths
                               if isinstance(self.values[p], Dist) and self.values[p].ppf(0.5) > 0],
            }
        return self._sched

    def _training_patterns(self, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-month shares of the first bill: amortisation of the first run, of retrainings, retraining cash
        (computed once per plan and horizon; read-only)."""
        cache = self.__dict__.setdefault("_patterns", {})
        if H not in cache:
            cache[H] = tuple(a for a in self._make_training_patterns(H))
            for a in cache[H]:
                a.flags.writeable = False
        return cache[H]

    def _make_training_patterns(self, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = self.scenario.training
        init, re_am, re_cash = np.zeros(H), np.zeros(H), np.zeros(H)
        if t is None:
            return init, re_am, re_cash
        A = t.amortization_months
        init[:A] = 1.0 / A
        if t.retrain_every_months:
            for start in range(t.retrain_every_months, H, t.retrain_every_months):
                re_cash[start] += 1.0
                re_am[start:start + A] += 1.0 / A
        return init, re_am, re_cash

    # -- public -------------------------------------------------------------------------------------------
    def evaluate(self, samples: int = 20_000, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> "PlanResult":
        """Monte Carlo over the uncertain inputs; every output as P10 / P50 / P90.

        With no uncertain input a single deterministic evaluation is done (P10 = P50 = P90).
        """
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or not 1 <= samples <= 10_000_000:
            raise BillshapeInputError("--samples", samples, "an integer in [1, 10,000,000]")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise BillshapeInputError("--seed", seed, "an integer >= 0")
        H = self.scenario.horizon_months
        uncertain = self.uncertain()
        n_total = int(samples) if uncertain else 1
        # the first MONTHLY_RESERVOIR samples (the reservoir: the full monthly model, in chunks of at most
        # CHUNK_CELLS cells, a multiple of WORKERS of them), the rest in chunks of SUMMARY_CHUNK samples
        # (summaries only: no samples x months arrays)
        head = min(n_total, MONTHLY_RESERVOIR)
        n_res = -(-head * H // CHUNK_CELLS)
        n_res = min(head, -(-n_res // WORKERS) * WORKERS)
        sizes = [head // n_res + (1 if i < head % n_res else 0) for i in range(n_res)]
        sizes += [min(SUMMARY_CHUNK, n_total - start) for start in range(head, n_total, SUMMARY_CHUNK)]

        def draw(i: int, size: int) -> dict[str, Any]:
            # chunk i draws from its own stream: reproducible for a seed whatever the thread count
            return self._draw(np.random.default_rng([int(seed), i]), size)

        scalar_keys = SUMMARY_KEYS + EXTRA_KEYS + HIDDEN_KEYS
        keys = SUMMARY_KEYS + EXTRA_KEYS  # the reported ones
        flat = {k: np.empty(n_total) for k in scalar_keys}  # each chunk writes its slice (no concatenation)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        kept: dict[str, list[np.ndarray]] = {k: [] for k in MONTHLY_KEYS}  # reservoir chunks, months x samples
        brackets: dict[str, list[tuple[float, float]]] = {}  # set from the reservoir before the other chunks run
        gathered: dict[str, list] = {k: [] for k in keys}

        def work(j: int):
            P = draw(j, sizes[j]) if uncertain else self._draw(None, 1)
            with np.errstate(all="ignore"):  # anything non-finite is caught just below
                out = self._summaries(P) if j >= n_res else self._simulate(P)
            _check_finite(out)
            for k in scalar_keys:
                flat[k][offsets[j]:offsets[j + 1]] = out[k]
            if j >= n_res:  # the candidates for each quantile, while the chunk is in cache
                if not brackets:
                    return None
                return {k: _gather(_order_values(k, out[k]), brackets[k]) for k in brackets}
            return {k: np.ascontiguousarray(out[k].T) for k in MONTHLY_KEYS}

        def monthly_band(k: str) -> np.ndarray:
            # monthly rows: months x samples, contiguous per month; the medians only where no band is drawn
            return _monthly_quantiles(np.concatenate(kept[k], axis=1), QUANTILES if k in BAND_KEYS else (0.5,))

        def quantiles(k: str):
            x = flat[k]
            got = None
            if k in brackets:
                got = _from_brackets(k, x, head, gathered[k], brackets[k])
            elif k in constant and np.all(x == x[0]):
                got = [float(x[0])] * len(QUANTILES)
            if got is None:  # no brackets (a small run), or a quantile outside its bracket: select over all samples
                return _quantiles(x, H if k == "payback_month" else None)
            if k == "payback_month":
                return {f"p{int(p * 100)}": (float(v) if v <= H else None) for p, v in zip(QUANTILES, got)}
            if not got:
                return {"p10": None, "p50": None, "p90": None}
            return {f"p{int(p * 100)}": float(v) for p, v in zip(QUANTILES, got)}

        # draws and the model, chunk by chunk on a small thread pool (numpy releases the GIL), collected in order:
        # first the reservoir (full monthly model), whose samples set each quantile's bracket; then the rest
        # (summaries only) with the monthly percentiles, which need only the reservoir, alongside; then the
        # quantiles of each outcome
        from concurrent.futures import ThreadPoolExecutor

        done = 0
        constant: set[str] = set()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            pending = []

            def collect():
                nonlocal done
                j, fut = pending.pop(0)
                part = fut.result()
                done += sizes[j]
                if progress is not None:
                    progress(done, n_total)
                if j < n_res:
                    for k in MONTHLY_KEYS:
                        kept[k].append(part[k])
                elif part:
                    for k, v in part.items():
                        gathered[k].append(v)

            def run(js):
                for j in js:
                    pending.append((j, pool.submit(work, j)))
                    while len(pending) > 4 * WORKERS or (pending and pending[0][1].done()):
                        collect()
                while pending:
                    collect()

            run(range(n_res))
            if n_total - head >= BRACKET_MIN_REST:
                for k in keys:
                    sample = flat[k][:head]
                    if np.all(sample == sample[0]):  # the same in every sample so far: checked over all at the end
                        constant.add(k)
                    else:
                        brackets[k] = _brackets(_order_values(k, sample))
            band_jobs = {k: pool.submit(monthly_band, k) for k in MONTHLY_KEYS}
            run(range(n_res, len(sizes)))
            found_jobs = {k: pool.submit(quantiles, k) for k in keys}
            bands = {k: f.result() for k, f in band_jobs.items()}
            summary = {k: f.result() for k, f in found_jobs.items()}
        pb = flat["payback_month"]
        never = float(np.mean(~np.isfinite(pb)))
        pb_sample = pb[: min(pb.size, 5000)].copy()
        # month 0 of the cumulative cash band (minus the up-front spend): the reservoir's samples, as the other months
        q0 = _quantiles(-flat["upfront_usd"][:head], None, overwrite=True)
        start = [q0["p10"], q0["p50"], q0["p90"]]
        monthly = []
        for m in range(H):
            row: dict[str, Any] = {"month": m + 1}
            for k in MONTHLY_KEYS:
                row[k] = float(bands[k][1, m])
            monthly.append(row)
        band_rows = [{"month": 0, **{f"{k}_p{int(q * 100)}": (float(start[j])
                                                             if k == "cumulative_cash_usd" else None)
                                    for k in BAND_KEYS for j, q in enumerate(QUANTILES)}}]
        band_rows += [{"month": m + 1, **{f"{k}_p{int(q * 100)}": float(bands[k][j, m])
                                        for k in BAND_KEYS for j, q in enumerate(QUANTILES)}} for m in range(H)]
        sens = self.sensitivity()
        bvb = self.build_vs_buy()
        res = PlanResult(
            name=self.scenario.name, description=self.scenario.description, source=self.source,
            horizon_months=H, samples=n_total, seed=int(seed), uncertain_inputs=uncertain,
            summary={k: summary[k] for k in SUMMARY_KEYS},
            lifetime={k: summary[k] for k in EXTRA_KEYS},
            probability_never_pays_back=never,
            monthly=monthly, sensitivity=sens, build_vs_buy=bvb,
            assumptions=list(self.assumptions),
        )
        res._bands = band_rows
        res._payback_samples = [None if not math.isfinite(x) else float(x) for x in pb_sample]
        return res

    def sensitivity(self, metric: str = "npv_usd") -> list[dict[str, Any]]:
        """Tornado: the outcome at the medians of all inputs, moving one uncertain input to its P10 and P90.

        Sorted by swing (largest first). All rows are evaluated in one vectorised batch.
        """
        paths = self.uncertain()
        if not paths:
            return []
        med = self._medians()
        k = len(paths)
        P: dict[str, Any] = {}
        for p, v in med.items():
            P[p] = np.full((2 * k + 1, 1), v) if p in paths else v
        lows, highs = {}, {}
        for i, p in enumerate(paths):
            lows[p], highs[p] = self.values[p].ppf(0.1), self.values[p].ppf(0.9)
            P[p][2 * i + 1, 0] = lows[p]
            P[p][2 * i + 2, 0] = highs[p]
        with np.errstate(all="ignore"):
            out = self._simulate(P)
        _check_finite(out)
        y = out[metric]
        pb = out["payback_month"]
        base = float(y[0])
        rows = []
        for i, p in enumerate(paths):
            lo, hi = float(y[2 * i + 1]), float(y[2 * i + 2])
            rows.append({
                "input": p, "distribution": self.values[p].describe(),
                "input_p10": lows[p], "input_p50": float(med[p]), "input_p90": highs[p],
                "metric": metric, "base": base, "at_input_p10": lo, "at_input_p90": hi, "swing": abs(hi - lo),
                "payback_month_at_input_p10": _finite_or_none(pb[2 * i + 1]),
                "payback_month_at_input_p90": _finite_or_none(pb[2 * i + 2]),
            })
        rows.sort(key=lambda r: r["swing"], reverse=True)
        return rows

    def build_vs_buy(self) -> dict[str, Any] | None:
        """Build (self-host) vs buy (API) over lifetime token volume, at the inputs' medians.

        Present when the scenario has both an API route and a self-hosted route. Uses the product's token mix
        to blend each route's input/output prices into USD per million tokens, and
        :func:`billshape.decide.break_even` with F = the self-hosted set-up plus its standing cost over the
        horizon.
        """
        api = [r for r in self.routes if r.kind == "api"]
        own = [r for r in self.routes if r.kind != "api"]
        if not api or not own:
            return None
        med = self._medians()
        H = self.scenario.horizon_months

        def blended(route: _RouteSpec) -> float:
            single = dataclasses.replace(route, share=1.0)
            saved = self.routes
            self.routes = [single]
            try:
                a, o = self._route_costs(med)
            finally:
                self.routes = saved
            per_user = float(np.asarray(a + o).ravel()[0])
            tokens = tokens_per_user(med)
            return per_user / tokens * 1e6 if tokens > 0 else 0.0

        tokens_user = tokens_per_user(med)
        if tokens_user <= 0:
            return None
        p = blended(api[0])
        c = blended(own[0])
        F = float(med.get(own[0].prefix + ".setup_usd", 0.0) + med.get(own[0].prefix + ".fixed_monthly_usd", 0.0) * H)
        if p <= 0:
            return None
        be = decide.break_even(p, c, F)
        with np.errstate(all="ignore"):
            sim = self._simulate(med)
        lifetime_tokens = float(sim["users"].sum()) * tokens_user
        top = max(lifetime_tokens, be.break_even_tokens or 0.0) * 2.0 or 1.0
        volumes = np.linspace(0.0, top, 41)
        return {
            "api_route": api[0].name, "self_hosted_route": own[0].name,
            "api_usd_per_million_tokens": p, "own_usd_per_million_tokens": c, "fixed_usd": F,
            "break_even_tokens": be.break_even_tokens, "exists": be.exists, "explanation": be.explanation,
            "scenario_lifetime_tokens": lifetime_tokens,
            "curve": [{"tokens": float(v), "buy_usd": float(b), "build_usd": float(bd)} for v, b, bd in zip(
                volumes, decide.buy_cost_usd(volumes, p / 1e6), decide.build_cost_usd(volumes, F, c / 1e6))],
        }


def loop_summaries(plan: "Plan", p: dict[str, float]) -> dict[str, float]:
    """The plan's model for ONE sample as a plain Python loop over the months (reference and benchmark baseline).

    ``p`` maps YAML paths to Python floats (one draw). Written as one would by hand, without numpy: per-sample
    setup (route costs, the training bill), then one pass over the months carrying the users, the price
    multipliers and the discount factor by repeated multiplication. Sample-independent schedules (which months
    retrain, amortisation shares) are computed once per plan, as a hand-written loop would hoist them. A test
    checks that it equals the vectorised :meth:`Plan._summaries`.
    """
    sc = plan.scenario
    H = sc.horizon_months
    sched = plan._loop_schedule()
    g = p.get
    req = g("product.requests_per_user_month", 0.0)
    t_in = g("product.input_tokens_per_request", 0.0)
    t_out = g("product.output_tokens_per_request", 0.0) * g("product.reasoning_multiplier", 1.0)
    h = g("product.cache_hit_rate", 0.0)
    api_pu = own_pu = 0.0
    fixed = 0.0
    for k in FixedMonthly.model_fields:
        fixed += g("fixed_monthly." + k, 0.0)
    setup = 0.0
    for r in plan.routes:
        pre = r.prefix
        if r.kind == "api":
            a_in = g(pre + ".usd_per_million_input_tokens", r.api.input if r.api else None)
            a_out = g(pre + ".usd_per_million_output_tokens", r.api.output if r.api else None)
            a_cache = g(pre + ".usd_per_million_cached_input_tokens", r.api.cached_input if r.api else a_in)
        elif r.kind == "measured":
            a_in, a_out = g(pre + ".usd_per_million_input_tokens"), g(pre + ".usd_per_million_output_tokens")
            a_cache = g(pre + ".usd_per_million_cached_input_tokens", a_in)
        elif r.kind == "model":
            q = plan.model_quotes[pre]
            scale = (g(pre + ".usd_per_gpu_hour") / q["usd_per_gpu_hour"]) * (q["utilization"] / g(pre + ".utilization", 1.0))
            a_in = q["usd_per_million_input_tokens"] * scale
            a_out = q["usd_per_million_output_tokens"] * scale
            a_cache = 0.0
        else:
            per_hour = g(pre + ".usd_per_gpu_hour") * g(pre + ".gpus")
            u = g(pre + ".utilization", 1.0)
            a_out = per_hour / (g(pre + ".tokens_per_second") * 3600 * u) * 1e6
            tin = g(pre + ".input_tokens_per_second")
            a_in = 0.0 if tin is None else per_hour / (tin * 3600 * u) * 1e6
            a_cache = 0.0
        per_user = req * (t_in * ((1 - h) * a_in + h * a_cache) + t_out * a_out) / 1e6
        if r.kind == "api":
            api_pu += r.share * per_user
        else:
            own_pu += r.share * per_user
            fixed += g(pre + ".fixed_monthly_usd", 0.0)
            setup += g(pre + ".setup_usd", 0.0)
    bill = plan.training_usd_p50
    for path, med in sched["bill_scale"]:
        bill *= g(path) / med
    retrain = bill * g("training.retrain_cost_fraction", 1.0)
    api_step = g("market.api_price_trend_annual", 1.0) ** (1 / 12)
    gpu_step = g("market.gpu_price_trend_annual", 1.0) ** (1 / 12)
    step_at = {}
    for i, month in sched["steps"]:
        step_at[month] = step_at.get(month, 1.0) * g(f"market.api_price_steps[{i}].factor")
    disc_step = (1 + g("discount_rate_annual")) ** (-1 / 12)
    users = g("product.users_start")
    ratio = 1 + g("product.growth_monthly", 0.0) - g("product.churn_monthly", 0.0)
    price, var = g("product.price_per_user_month_usd"), g("product.variable_cost_per_user_month_usd", 0.0)
    upfront = bill + setup
    cum = npv = -upfront
    k_api = k_gpu = 1.0
    disc = 1.0
    contrib_sum = user_months = revenue = inference_sum = 0.0
    last_neg = 0
    cum_before_last = -upfront  # cumulative cash before the month after the last month in the red
    cash_after_last = 0.0
    users_after_last = users
    retrain_months = sched["retrain_months"]
    for m in range(1, H + 1):
        if m in step_at:
            k_api *= step_at[m]
        inference = users * (api_pu * k_api + own_pu * k_gpu)
        contribution = users * (price - var) - inference
        cash = contribution - fixed
        if m in retrain_months:
            cash -= retrain * retrain_months[m]
        disc *= disc_step
        npv += cash * disc
        if cum + cash < 0:
            last_neg = m
        elif m == last_neg + 1:
            cum_before_last, cash_after_last, users_after_last = cum, cash, users
        cum += cash
        contrib_sum += contribution
        inference_sum += inference
        user_months += users
        revenue += users * price
        users *= ratio
        k_api *= api_step
        k_gpu *= gpu_step
    if upfront <= 0 and last_neg == 0:
        payback = 0.0
    elif last_neg == H:
        payback = math.inf
    else:
        remaining = -cum_before_last if cum_before_last < 0 else 0.0
        spend = min(max(price - cash_after_last / users_after_last, 0.0), price)
        payback = last_neg + (min(remaining / (users_after_last * (price - spend)), 1.0) if remaining > 0 else 0.0)
    amort = bill * sched["init_amort"] + retrain * sched["re_amort"]
    training_total = bill + retrain * sched["re_cash"]
    fixed_total = fixed * H + setup
    denom = training_total + inference_sum
    return {"payback_month": payback, "cumulative_profit_usd": cum, "npv_usd": npv,
            "contribution_margin_per_user_month_usd": contrib_sum / user_months,
            "fully_loaded_margin_per_user_month_usd": (contrib_sum - fixed_total - amort) / user_months,
            "training_share_of_lifetime_cost": training_total / denom if denom > 0 else math.nan,
            "lifetime_revenue_usd": revenue, "lifetime_inference_usd": inference_sum,
            "lifetime_training_usd": training_total, "lifetime_fixed_usd": fixed_total, "upfront_usd": upfront}


def tokens_per_user(P: dict[str, Any]) -> float:
    """Billed tokens (input + output incl. reasoning) per user-month at the given parameter values."""
    g = P.get
    per_req = g("product.input_tokens_per_request", 0.0) + g("product.output_tokens_per_request", 0.0) * g(
        "product.reasoning_multiplier", 1.0)
    return float(np.asarray(g("product.requests_per_user_month", 0.0) * per_req).ravel()[0])


SUMMARY_KEYS = ["payback_month", "cumulative_profit_usd", "npv_usd", "contribution_margin_per_user_month_usd",
                "fully_loaded_margin_per_user_month_usd", "training_share_of_lifetime_cost"]
EXTRA_KEYS = ["lifetime_revenue_usd", "lifetime_inference_usd", "lifetime_training_usd", "lifetime_fixed_usd"]
HIDDEN_KEYS = ["upfront_usd"]
MONTHLY_KEYS = ["users", "revenue_usd", "inference_usd", "variable_usd", "fixed_usd", "training_amortization_usd",
                "setup_amortization_usd", "training_cash_usd", "contribution_usd", "fully_loaded_profit_usd",
                "cash_flow_usd", "cumulative_cash_usd", "contribution_margin_per_user_usd",
                "fully_loaded_margin_per_user_usd"]
BAND_KEYS = ["cumulative_cash_usd", "contribution_margin_per_user_usd", "fully_loaded_margin_per_user_usd"]


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _quantiles(x: np.ndarray, horizon: int | None, overwrite: bool = False) -> dict[str, float | None]:
    """P10/P50/P90; for payback (``horizon`` given) never-paying samples count as +inf and show as ``None``.

    Exactly ``np.quantile`` (``linear`` method; ``inverted_cdf`` for payback) through one ``np.partition`` at
    the needed order statistics (``np.quantile`` partitions a copy per call: about 2x slower on 10^6 samples).
    ``overwrite`` lets it partition ``x`` in place.
    """
    x = np.asarray(x, dtype=float)
    if horizon is not None:
        big = np.where(np.isfinite(x), x, 1e300)
        q = _order_quantiles(big, "inverted_cdf")
        return {f"p{int(p * 100)}": (float(v) if v <= horizon else None) for p, v in zip(QUANTILES, q)}
    ok = np.isfinite(x)
    if not ok.all():
        x, overwrite = x[ok], True
    if x.size == 0:
        return {"p10": None, "p50": None, "p90": None}
    q = _order_quantiles(x if overwrite else x.copy(), "linear")
    return {f"p{int(p * 100)}": float(v) for p, v in zip(QUANTILES, q)}


def _order_quantiles(x: np.ndarray, method: str) -> list[float]:
    """``np.quantile(x, QUANTILES, method=method)`` for 1-d ``x`` by one in-place partition (``x`` is reordered)."""
    n = x.size
    if n == 1:
        return [float(x[0])] * len(QUANTILES)
    if method == "inverted_cdf":
        idx = [min(max(int(math.ceil(n * q)) - 1, 0), n - 1) for q in QUANTILES]
        _select(x, sorted(set(idx)))
        return [float(x[i]) for i in idx]
    return [float(v) for v in _linear_quantiles(x[None, :], QUANTILES)[:, 0]]


def _select(t: np.ndarray, kth: list[int]) -> None:
    """Partition ``t`` in place along its last axis at the sorted positions ``kth`` (as ``t.partition(kth)``),
    one position at a time on nested slices: numpy's partition at several positions at once is 5-10x slower."""
    if not kth:
        return
    mid = len(kth) // 2
    k = kth[mid]
    t.partition(k, axis=-1)
    _select(t[..., :k], kth[:mid])
    _select(t[..., k + 1:], [x - k - 1 for x in kth[mid + 1:]])


def _linear_quantiles(t: np.ndarray, qs) -> np.ndarray:
    """``np.quantile(t, qs, axis=1)`` (method ``linear``) of a 2-d ``t``, partitioned in place: shape (len(qs), rows).

    One ``partition`` at the lower order statistic of each quantile; the next one up is the minimum of the
    slice between it and the next (a pass far cheaper than a second selection). Interpolation as numpy's
    ``_lerp``, so the result is numpy's to the bit.
    """
    n = t.shape[1]
    pos = [q * (n - 1) for q in qs]
    lo = [int(math.floor(p)) for p in pos]
    kth = sorted(set(lo))
    _select(t, kth)
    nxt = {}
    for j, k in enumerate(kth):
        if k + 1 < n:
            end = kth[j + 1] + 1 if j + 1 < len(kth) else n
            nxt[k] = t[:, k + 1:end].min(axis=1)
    out = np.empty((len(qs), t.shape[0]))
    for j, (p, i) in enumerate(zip(pos, lo)):
        a = t[:, i]
        g = p - i
        if g == 0 or i + 1 >= n:
            out[j] = a
            continue
        b = nxt[i]
        diff = b - a
        out[j] = b - diff * (1.0 - g) if g >= 0.5 else a + diff * g
    return out


def _order_values(key: str, x: np.ndarray) -> np.ndarray:
    """The values whose order statistics give ``key``'s quantiles: never paying back as 1e300 (payback), the
    up-front spend negated (the cumulative cash at month 0), NaN (no cost at all: excluded) left as it is."""
    if key == "payback_month":
        return np.where(np.isfinite(x), x, 1e300)
    if key == "upfront_usd":
        return -np.asarray(x)
    return np.asarray(x)


def _brackets(values: np.ndarray) -> list[tuple[float, float]]:
    """For each of QUANTILES, bounds ``[lo, hi]`` that hold that quantile of the whole run with near certainty,
    from a sample of it (the reservoir): the sample's order statistics at ``q -/+ BRACKET_SIGMAS`` standard
    errors ``sqrt(q (1 - q) / R)`` (plus two ranks). Only a speed-up: :func:`_from_brackets` checks them."""
    v = np.sort(values[~np.isnan(values)])
    R = v.size
    out = []
    for q in QUANTILES:
        half = BRACKET_SIGMAS * math.sqrt(q * (1.0 - q) / max(R, 1)) + 2.0 / max(R, 1)
        i, j = math.floor((q - half) * R), math.ceil((q + half) * R)
        out.append((float(v[i]) if 0 <= i < R else -math.inf, float(v[j]) if 0 <= j < R else math.inf))
    return out


def _gather(x: np.ndarray, brackets: list[tuple[float, float]]) -> list[tuple[int, np.ndarray]]:
    """Per bracket: how many values lie below it, and the values inside it (NaN is neither)."""
    return [(int(np.count_nonzero(x < lo)), x[(x >= lo) & (x <= hi)]) for lo, hi in brackets]


def _from_brackets(key: str, x: np.ndarray, res_n: int, parts: list, brackets) -> list[float] | None:
    """``key``'s quantiles over all of ``x``, exactly as ``np.quantile`` (``inverted_cdf`` for payback with
    never = 1e300, ``linear`` over the non-NaN values otherwise), from the chunks' bracket candidates.

    Sample-select: every chunk counted the values below each quantile's bracket and kept those inside it (a few
    percent of the run). Where the count below is at most the wanted rank and the count below plus the
    candidates exceed it, the rank-th value of the run is the (rank - below)-th candidate: a selection over
    thousands of values instead of a partition of the million. The chunks of the reservoir (which set the
    brackets) are gathered here. ``None`` where a quantile falls outside its bracket (the caller then selects
    over all values).
    """
    parts = [_gather(_order_values(key, x[:res_n]), brackets)] + parts
    n = x.size if key != "training_share_of_lifetime_cost" else int(np.count_nonzero(~np.isnan(x)))
    if n == 0:
        return []
    out = []
    for j, q in enumerate(QUANTILES):
        below = sum(p[j][0] for p in parts)
        cand = np.concatenate([p[j][1] for p in parts])
        if key == "payback_month":
            ranks = [min(max(int(math.ceil(n * q)) - 1, 0), n - 1)]
        else:
            pos = q * (n - 1)
            i = int(math.floor(pos))
            ranks = [i] + ([i + 1] if i + 1 < n and pos > i else [])
        if not (below <= ranks[0] and ranks[-1] < below + cand.size):
            return None
        local = [r - below for r in ranks]
        _select(cand, local)
        if len(ranks) == 1:
            out.append(float(cand[local[0]]))
            continue
        a, b = float(cand[local[0]]), float(cand[local[1]])
        g = pos - ranks[0]
        diff = b - a  # numpy's _lerp, to the bit
        out.append(b - diff * (1.0 - g) if g >= 0.5 else a + diff * g)
    return out


def _monthly_quantiles(t: np.ndarray, qs) -> np.ndarray:
    """``np.quantile(t, qs, axis=1)`` of a months x samples array (reordered in place), shape (3, months): rows
    of QUANTILES, or with ``qs == (0.5,)`` the median in the middle row and zeros around it.

    A month whose row equals an earlier month's (a fixed cost, an amortisation share, a month without
    retraining) is not selected again.
    """
    H = t.shape[0]
    rep = np.arange(H)
    seen: dict[bytes, list[int]] = {}
    for m in range(H):
        fp = t[m, :8].tobytes()
        for c in seen.get(fp, ()):
            if np.array_equal(t[c], t[m]):
                rep[m] = c
                break
        else:
            seen.setdefault(fp, []).append(m)
    uniq = np.unique(rep)
    if uniq.size == H:
        got = _linear_quantiles(t, qs)
    else:
        got = _linear_quantiles(t[uniq], qs)[:, np.searchsorted(uniq, rep)]
    if len(qs) == len(QUANTILES):
        return got
    band = np.zeros((len(QUANTILES), H))
    band[1] = got[0]
    return band


def _check_finite(out: dict[str, np.ndarray]) -> None:
    for k, v in out.items():
        if k in ("payback_month", "training_share_of_lifetime_cost"):
            continue  # inf (never pays back) and nan (no cost at all) are handled as None
        if not np.all(np.isfinite(v)):
            raise BillshapeInputError("scenario", k, "inputs whose totals stay finite (an input is too large)")


class PlanResult(Result):
    """A product plan's P10/P50/P90 outcomes, monthly P50 rows, tornado and build-vs-buy data."""

    name: str
    description: str = ""
    source: str = ""
    horizon_months: int
    samples: int
    seed: int
    uncertain_inputs: list[str]
    summary: dict[str, dict[str, float | None]]
    lifetime: dict[str, dict[str, float | None]]
    probability_never_pays_back: float
    monthly: list[dict[str, int | float]]  # month: int
    sensitivity: list[dict[str, Any]]
    build_vs_buy: dict[str, Any] | None = None

    _bands: list[dict[str, float]] = PrivateAttr(default_factory=list)
    _payback_samples: list[float | None] = PrivateAttr(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["monthly_note"] = ("monthly rows are per-month medians over the first "
                                f"{min(self.samples, MONTHLY_RESERVOIR):,} samples (medians do not add up across columns)")
        data["assumptions"] = data.pop("assumptions")
        return data


def plan(path: str | Path, samples: int = 20_000, seed: int = 0) -> PlanResult:
    """Load a scenario YAML file and evaluate it (the library's ``bs.plan``)."""
    return load(path).evaluate(samples=samples, seed=seed)


def examples_dir() -> Path:
    """The shipped example scenarios (package data)."""
    from importlib import resources

    return Path(str(resources.files("billshape").joinpath("examples")))


__all__ = ["Scenario", "Plan", "PlanResult", "Dist", "load", "parse", "plan", "api_price", "loop_summaries",
           "examples_dir", "example_names", "resolve"]
