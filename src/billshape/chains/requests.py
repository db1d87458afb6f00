"""Typed requests, one per verb: Python field names, units in the names where the library uses them.

A request is validated once, on construction: a wrong type (``gpus="eight"``) or an unknown field (``gpu_count=8``)
raises one :class:`~billshape.errors.BillshapeInputError` naming the field (``gpus``), never a pydantic
traceback. Ranges (``gpus > 0``) are the library's to check, so that every shell reports them in the same words.

Shells build these (the CLI from its flags, the app from its widgets, a scenario from its YAML) and hand them to
the verb's ``run`` in :mod:`billshape.chains`.
"""

from __future__ import annotations

import difflib
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from billshape.errors import BillshapeInputError

_TYPE_WORDS = {
    "float_parsing": "a number", "float_type": "a number", "finite_number": "a finite number",
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text", "list_type": "a list", "missing": "a value",
}


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif out:
            out += f".{part}"
        else:
            out = str(part)
    return out


def from_validation_error(exc: ValidationError, model: type[BaseModel] | None = None) -> BillshapeInputError:
    """One :class:`BillshapeInputError` for a pydantic :class:`ValidationError`, naming the field path."""
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    # a union's branches add their type name to the location ("gpus.float"): keep the field names
    names = set(model.model_fields) if model is not None else set()
    if model is not None and len(loc) > 1 and loc[0] in names:
        loc = tuple(p for p in loc if not (isinstance(p, str) and p != loc[0] and p not in names)) or loc[:1]
    typ = err.get("type", "")
    value = err.get("input")
    field = _path(loc) or "request"
    if typ == "extra_forbidden":
        known = sorted(names)
        close = difflib.get_close_matches(str(loc[-1]), known, n=3, cutoff=0.5)
        shown = value if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 80 else type(value).__name__
        return BillshapeInputError(field, shown, "a field of " + (model.__name__ if model else "the request"),
                                   f"unknown field; did you mean {', '.join(close)}?" if close else "unknown field")
    if typ == "missing":
        return BillshapeInputError(field, None, "a value (required field)")
    if isinstance(value, (dict, list)):
        value = type(value).__name__
    allowed = _TYPE_WORDS.get(typ, str(err.get("msg", "a valid value")).removeprefix("Value error, "))
    if typ == "float_type" and isinstance(value, int) and not isinstance(value, bool):
        allowed = "a number within float range (|x| < 1.8e308)"  # an integer too large for a float
    return BillshapeInputError(field, value, allowed)


class Request(BaseModel):
    """Base of every request: unknown fields are errors; a wrong type is one :class:`BillshapeInputError`."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise from_validation_error(exc, type(self)) from None

    @classmethod
    def build(cls, **data: Any):
        """Build from keyword arguments (the same as ``cls(**data)``)."""
        return cls(**data)


#: a readable source: a path, the text itself, bytes, or a (binary or text) file object
Source = Any


class TrainRequest(Request):
    """Inputs of a training bill (:func:`billshape.estimates.training_bill`): one of ``run``, ``gpu_hours``,
    ``gpus`` with ``days``/``hours``, or ``params``/``tokens``/``flops`` with ``mfu``."""

    run: Optional[str] = None
    gpu: Optional[str] = None
    gpu_hours: Optional[float] = None
    gpus: Optional[float] = None
    days: Optional[float] = None
    hours: Optional[float] = None
    params: Optional[float] = None
    active_params: Optional[float] = None
    tokens: Optional[float] = None
    flops: Optional[float] = None
    mfu: Optional[float] = None
    precision: str = "bf16"
    price: Optional[float] = None  # USD per GPU-hour
    provider: Optional[str] = None
    tier: Optional[str] = None
    method: str = "rental"
    hardware_usd: Optional[float] = None
    usd_per_kwh: Optional[float] = None
    pue: Optional[float] = None
    experiments_multiplier: Optional[float] = None
    staff_usd: float = 0.0
    data_usd: float = 0.0
    usd_year: Optional[float] = None  # also state the bill in dollars of this year (CPI-U)
    generation: bool = False  # a frontier generation's total (final run + experiments + staff + data)


class ServeRequest(Request):
    """Inputs of a serving estimate. The mode follows from the fields given:

    * ``requests_per_second`` (with ``model``, ``gpu`` and ``tpot_limit``/``ttft_limit``): capacity (replicas, GPUs);
    * ``measured`` (a benchmark file: vLLM, SGLang, GenAI-Perf, AIPerf, trtllm-bench or CSV; path, text, bytes or
      file object): measured throughput;
    * ``model`` (with ``gpu``): the roofline serving model;
    * otherwise ``tokens_per_second`` with ``gpus``: cost from a given throughput.
    """

    tokens_per_second: Optional[float] = None
    input_tokens_per_second: Optional[float] = None
    gpus: Optional[float] = None
    gpu: Optional[str] = None
    model: Optional[str] = None
    tp: Optional[float] = None
    ep: Optional[float] = None
    dp_attention: bool = False
    engine: Optional[str] = None  # trtllm (default), vllm or sglang: the engine profile of the serving model
    redundant_experts: float = 0
    expert_routing: Optional[str] = None  # "measured" (default: the router's measured skew) or "balanced"
    lengths: Optional[str] = None  # a request-length distribution: "sharegpt" or a CSV path of input,output pairs
    requests: Optional[float] = None  # requests queued at t=0, with arrival "burst"
    arrival: Optional[str] = None  # "steady" (default) or "burst"
    precision: Optional[str] = None
    kv_precision: Optional[str] = None
    input_tokens: Optional[float] = None
    output_tokens: Optional[float] = None
    batch: Optional[Any] = None  # a batch size, or "max" (max-load, the default)
    mode: Optional[str] = None
    price: Optional[float] = None  # USD per GPU-hour
    provider: Optional[str] = None
    tier: Optional[str] = None
    utilization: Optional[float] = None
    measured: Optional[Source] = None
    reasoning_multiplier: float = 1.0
    cache_hit_rate: float = 0.0
    requests_per_second: Optional[float] = None
    tpot_limit: Optional[float] = None  # seconds
    ttft_limit: Optional[float] = None  # seconds
    # disaggregated prefill/decode (billshape.serving_disagg): both counts, each pool's parallelism (None: shared)
    prefill_gpus: Optional[float] = None
    decode_gpus: Optional[float] = None
    prefill_tp: Optional[float] = None
    prefill_ep: Optional[float] = None
    prefill_dp_attention: Optional[bool] = None
    decode_tp: Optional[float] = None
    decode_ep: Optional[float] = None
    decode_dp_attention: Optional[bool] = None
    decode_batch: Optional[float] = None
    two_batch_overlap: bool = False
    pp: Optional[float] = None  # pipeline-parallel stages per replica (gpus = tp x pp x replicas)
    speculative: Optional[str] = None  # mtp, eagle or draft
    draft_tokens: Optional[float] = None
    acceptance: Optional[float] = None  # per-token acceptance rate in [0, 1)
    draft_model: Optional[str] = None  # with speculative "draft": a catalog architecture


class BreakevenRequest(Request):
    """Build vs buy: the break-even volume, and over ``months`` when ``volume_tokens_per_month`` is given."""

    api_usd_per_million_tokens: Optional[float] = None
    own_usd_per_million_tokens: Optional[float] = None
    fixed_usd: Optional[float] = None
    volume_tokens_per_month: Optional[float] = None
    months: Any = None  # whole months; checked by the library (billshape.market.check_months)
    volume_growth_per_month: float = 0.0
    api_price_annual_factor: float = 1.0
    api_price_steps: Optional[list[str]] = None  # "MONTH:FACTOR"
    own_cost_annual_factor: float = 1.0
    discount_rate_annual: float = 0.0
    # against a rented fleet (instead of own_usd_per_million_tokens): a unit's rent and capacity, or a model with
    # the fleet search's options (billshape.fleet)
    own_usd_per_month: Optional[float] = None
    own_capacity_tokens_per_month: Optional[float] = None
    model: Optional[str] = None
    gpu: Optional[str | list[str]] = None
    provider: Optional[str | list[str]] = None
    tier: Optional[str | list[str]] = None
    engine: Optional[str | list[str]] = None
    precision: Optional[str | list[str]] = None
    input_tokens: Optional[float] = None
    output_tokens: Optional[float] = None
    tpot_limit: Optional[float] = None
    ttft_limit: Optional[float] = None
    peak_to_mean: Optional[float] = None


class PaybackRequest(Request):
    """Months to recover ``fixed_usd`` from ``users`` paying ``revenue_per_user_month_usd``."""

    fixed_usd: Optional[float] = None
    users: Optional[float] = None
    revenue_per_user_month_usd: Optional[float] = None
    cost_per_user_month_usd: float = 0.0


class SizeRequest(Request):
    """Inference-aware model sizing; dollars when ``gpu``, ``usd_per_gpu_hour`` and the MFUs are given."""

    inference_tokens: Optional[float] = None
    reference_params: Optional[float] = None
    reference_tokens: Optional[float] = None
    target_loss: Optional[float] = None  # nats per token
    constants: str = "sardana-2024"
    gpu: Optional[str] = None
    precision: str = "bf16"
    usd_per_gpu_hour: Optional[float] = None
    mfu_training: Optional[float] = None
    mfu_prefill: Optional[float] = None
    mfu_decode: Optional[float] = None
    decode_share: Optional[float] = None


class CapacityRequest(Request):
    """Reserved / on-demand / spot capacity for an hourly demand profile (``demand``: a path, text, bytes, a file
    object or a shipped name such as ``example-week``)."""

    demand: Optional[Source] = None
    reserved_usd_per_gpu_hour: Optional[float] = None
    on_demand_usd_per_gpu_hour: Optional[float] = None
    spot_usd_per_gpu_hour: Optional[float] = None
    spot_interruptions_per_hour: float = 0.0
    checkpoint_minutes: float = 0.0


class RouteRequest(Request):
    """The cheapest model of a ``ladder`` (path, text, bytes, file object or shipped name) that clears
    ``quality_bar``; with ``cascade``, the cascade too (``cascade_only``: the cascade is the answer when no single
    model clears the bar, as ``billshape route`` does)."""

    ladder: Optional[Source] = None
    quality_bar: Optional[float] = None
    cascade: bool = False
    cascade_only: bool = True


class MarketPathRequest(Request):
    """A price path: ``start_price`` x ``annual_factor`` (or a named ``trend``) ^((m-1)/12) x step changes."""

    start_price: Optional[float] = None
    months: Any = 12
    annual_factor: Optional[float] = None
    trend: Optional[str] = None
    steps: Optional[list[str]] = None  # "MONTH:FACTOR"


class MarketBacktestRequest(Request):
    """Fit a price trend before a cutoff and score its forecast after it (``file``: a price table source; ``None``:
    the shipped table)."""

    file: Optional[Source] = None
    price_column: Optional[str] = None
    series: Optional[str] = None
    model: Optional[str] = None
    cutoff: Optional[str] = None
    train_fraction: float = 0.5
    gpu: Optional[str] = None  # a GPU rental-price trend (data/gpu_price_history.csv) instead of API prices
    provider: Optional[str] = None  # with gpu: one provider (default: all pooled)
    tier: Optional[str] = None  # with gpu: the price tier (default on-demand)


def require(req: Request, *fields: str, allowed: str = "required") -> None:
    """Raise for the first of ``fields`` that is ``None``."""
    for name in fields:
        if getattr(req, name) is None:
            raise BillshapeInputError(name, None, allowed)


class FleetRequest(Request):
    """The cheapest rented fleet for a traffic under a service level (:func:`billshape.fleet.fleet`).

    Traffic: ``requests_per_second`` (mean) or ``tokens_per_month`` (input + output) with ``peak_to_mean``, or an
    hourly ``demand`` profile (path, text, bytes, file object or a shipped name such as ``example-week``).
    ``gpu``, ``provider``, ``tier``, ``engine`` and ``precision`` restrict the search (a name or a list)."""

    model: Optional[str] = None
    requests_per_second: Optional[float] = None
    tokens_per_month: Optional[float] = None
    peak_to_mean: Optional[float] = None
    demand: Optional[Source] = None
    input_tokens: Optional[float] = None
    output_tokens: Optional[float] = None
    tpot_limit: Optional[float] = None
    ttft_limit: Optional[float] = None
    gpu: Optional[str | list[str]] = None
    provider: Optional[str | list[str]] = None
    tier: Optional[str | list[str]] = None
    engine: Optional[str | list[str]] = None
    precision: Optional[str | list[str]] = None
    min_replicas: float = 1
    gpu_price_factor: float = 1.0
