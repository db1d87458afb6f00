"""The scenario file's schema: pydantic models of a product plan, with each number's allowed range.

:class:`Scenario` is the whole file (see ``docs/plan.md`` for every key): the :class:`Product` (users, price,
usage), :class:`Serving` routes (an :class:`ApiRoute` priced through genai-prices at
``serving.api_prices_as_of``, or a :class:`SelfHosted` deployment), the :class:`TrainingProject`, the :class:`FixedMonthly` costs that start after deployment (seed
002), the :class:`Market` paths (API price trend and steps, seed 004; GPU price trend) and the horizon. A
numeric field is a :data:`Number` (a number or a :class:`~billshape.plan.dists.Dist`) declared with :func:`num`,
which records its :class:`Bound` for the range check of :func:`billshape.plan.errors._check_bounds`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from billshape.plan.dists import _g, _to_number

MAX_HORIZON_MONTHS = 240


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


def _replicas(value: Any) -> Any:
    """``replicas``: a whole number >= 1 or ``auto``."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or not 1 <= value <= 1e6:
        raise ValueError("a whole number of replicas in [1, 1e6] or 'auto'")
    return int(value)


Replicas = Annotated[Any, BeforeValidator(_replicas)]


class SelfHosted(_Model):
    """A self-hosted deployment, priced one of three ways: measured $/M tokens; a measured throughput + GPUs +
    $/GPU-hour; or ``model:`` + ``gpu:`` (+ gpus, precision, tp, kv_precision), whose $/M input and output tokens
    come from the roofline serving model (:func:`billshape.serving.self_hosted_price`).

    Without ``utilization`` a ``model:`` or measured-throughput route is a *fleet*: whole replicas (``tp`` GPUs
    each, default ``gpus``; a measured deployment's ``gpus``) billed for every provisioned GPU-hour, ``replicas: N``
    or ``auto`` (each month sized for that month's peak: mean requests/s x ``peak_to_mean``, at least
    ``min_replicas``). With ``utilization`` it is billed per served token at that utilization, as before.
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
    # a fleet (a route without `utilization`): whole replicas rented for every hour of the month
    replicas: Replicas = Field(None, description="replicas of `tp` GPUs: a whole number, or auto (the default for "
                               "a fleet: sized each month for its peak traffic)")
    min_replicas: Number = num(Bound(1.0, 1e6), None, "replicas kept in every month (default: gpus / tp, at least 1)")
    peak_to_mean: Number = num(Bound(1.0, 10.0), None, "peak hour / mean hour of the route's traffic (default: "
                               "data/demand_week.csv's)")
    tpot_limit: Number = num(POS, None, "max time per output token a replica must keep (with model:) [s]")
    ttft_limit: Number = num(POS, None, "max time to first token a replica must keep (with model:) [s]")


class Route(_Model):
    name: str | None = None
    share: Float = Field(ge=0, le=1, description="share of requests served by this route")
    api: ApiRoute | None = None
    self_hosted: SelfHosted | None = None


def _as_of(value: Any) -> Any:
    """A pricing date: an ISO date (YAML reads ``2026-12-03`` as a date) or ``today``; None: the default."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == "today":
            return "today"
        try:
            return dt.date.fromisoformat(text) if len(text) == 10 else _bad_date()
        except ValueError:
            pass
    return _bad_date()


def _bad_date():
    raise ValueError("an ISO date (YYYY-MM-DD) or 'today'")


AsOf = Annotated[Any, BeforeValidator(_as_of)]


class Serving(_Model):
    routes: list[Route] = []
    api_prices_as_of: AsOf = Field(None, description="the UTC date API routes are priced at (genai-prices), an "
                                   "ISO date or 'today'; default: data/api_prices_as_of.csv")


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


class StaffRole(_Model):
    """People on the system: ``headcount`` x ``loaded_usd_per_year`` / 12 a month."""

    name: str | None = None
    headcount: Number = num(Bound(0.0, 1e6), description="people, full-time equivalents [FTE]")
    loaded_usd_per_year: Number = num(Bound(0.0, 1e8), description="fully loaded cost per person-year (salary, "
                                      "benefits, equity, overhead) [USD/year]")


def _staff(value: Any) -> Any:
    """``fixed_monthly.staff``: a mapping ``{headcount, loaded_usd_per_year}`` (read as a list of one role, so its
    keys' paths are ``fixed_monthly.staff[0]....``) or a list of named roles; a dollar figure goes under
    ``staff_usd``."""
    if value is None or isinstance(value, (list, tuple)):
        return value
    if isinstance(value, (dict, BaseModel)):
        return [value]
    raise ValueError("a mapping {headcount: N, loaded_usd_per_year: X}, or a list of roles with those keys and a "
                     "name (a dollar figure per month goes under fixed_monthly.staff_usd)")


SYSTEM_KEYS = ("staff_usd", "monitoring_usd", "data_pipelines_usd", "evaluation_usd", "on_call_usd")
"""The fixed monthly costs that are the system around the model (seed 002's 90 %): the plan's system share."""


class FixedMonthly(_Model):
    staff: Annotated[list[StaffRole] | None, BeforeValidator(_staff)] = Field(
        None, description="staff as headcount x loaded cost per year (one mapping, or a list of roles)")
    staff_usd: Number = num(NONNEG, 0.0)
    monitoring_usd: Number = num(NONNEG, 0.0)
    data_pipelines_usd: Number = num(NONNEG, 0.0)
    evaluation_usd: Number = num(NONNEG, 0.0)
    on_call_usd: Number = num(NONNEG, 0.0)
    other_usd: Number = num(NONNEG, 0.0)

    @model_validator(mode="after")
    def _one_staff(self) -> "FixedMonthly":
        if self.staff is not None and "staff_usd" in self.model_fields_set:
            raise ValueError("give staff as headcount (staff:) or as USD per month (staff_usd:), not both")
        if self.staff is not None and not self.staff:
            raise ValueError("staff: at least one role")
        return self

    def staff_prefixes(self) -> list[str]:
        """YAML paths of the staff roles (``fixed_monthly.staff[i]``)."""
        return [f"fixed_monthly.staff[{i}]" for i in range(len(self.staff or []))]


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
    as_of: AsOf = Field(None, description="the pricing date of the whole plan (API routes from genai-prices' dated "
                        "prices, catalog GPU prices in force then, staleness measured from it): an ISO date or "
                        "'today'; default: serving.api_prices_as_of, else data/api_prices_as_of.csv")

