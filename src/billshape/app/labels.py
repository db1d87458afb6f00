"""The app's one table from a library field path to the label of the widget that feeds it.

Below the shells an error (:class:`~billshape.errors.BillshapeInputError`) names a Python field or field path
(``gpus``, ``provider/tier``, ``models[0].quality``) and writes other fields it mentions in backticks
(```hardware_usd```). The CLI turns them into flags (its own table, ``cli/_flags.py``); the app turns them into the
words a page shows next to its inputs, so an app error reads ``GPUs: got 0; allowed: in (0, 1e+12]``. A field that
no widget feeds keeps its own name (a path inside an uploaded file, ``models[0].quality``), never a flag.

:data:`COMMON` holds the labels that read the same on every page (and the Usage page's, which calls the usage
ledger directly); :data:`BY_REQUEST` the labels of each chain request's page where they differ or are its own.
Where a widget shows a value in other units than the field (billions of parameters, milliseconds, percent), the
label names the quantity without the widget's unit, because the message shows the field's value.

Import cost: the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: field -> widget label, the same on every page
COMMON: dict[str, str] = {
    "gpu": "Accelerator",
    "gpus": "GPUs",
    "price": "USD per GPU-hour",
    "provider": "Provider",
    "tier": "Tier",
    "utilization": "Utilization",
    # Capacity: the demand profile (an upload) and its reader
    "demand": "Demand CSV",
    "demand_gpus": "Demand CSV",
    # Route: the ladder (an upload) and its reader
    "ladder": "Ladder YAML",
    # Usage (billshape.usage: ingest, report, whatif)
    "FILES": "Usage logs",
    "format": "Format",
    "map": "Column mapping (COL=FIELD, ...)",
    "prices": "Price table CSV (optional)",
    "by": "Attribute spend by",
    "route": "to model",
    "routes": "to model",  # WhatIfRequest.routes[i]: the page's one what-if route
    "files": "Usage logs",  # IngestRequest.files[i]
    "mapping": "Column mapping (COL=FIELD, ...)",  # IngestRequest.mapping[i]
    "cache_hit_rate": "Cache hit rate",
}

#: request type name -> field -> widget label on the page that builds that request
BY_REQUEST: dict[str, dict[str, str]] = {
    "TrainRequest": {
        "days": "Days",
        "gpu_hours": "GPU-hours",
        "params": "Parameters",
        "active_params": "Active parameters (MoE)",
        "tokens": "Training tokens",
        "mfu": "MFU",
        "precision": "Precision (defines the peak)",
        "method": "Price",
        "hardware_usd": "Chip price, USD",
        "usd_per_kwh": "USD per kWh",
        "pue": "PUE",
        "experiments_multiplier": "Experiments multiplier",
        "staff_usd": "Staff, USD",
        "usd_year": "Dollars of year",
        "data_usd": "Data, USD",
    },
    "PaybackRequest": {
        "fixed_usd": "Fixed cost to pay back",
        "users": "Paying users",
        "revenue_per_user_month_usd": "Revenue per user-month, USD",
        "cost_per_user_month_usd": "Serving cost per user-month, USD",
    },
    "ServeRequest": {
        "tokens_per_second": "Output tokens/s",
        "input_tokens_per_second": "Input tokens/s (prefill, whole deployment)",
        "model": "Model",
        "precision": "Precision",
        "batch": "Batch",
        "input_tokens": "Input tokens per request",
        "output_tokens": "Output tokens per request",
        "tp": "Tensor-parallel GPUs per replica",
        "kv_precision": "KV cache precision",
        "ep": "Expert-parallel GPUs per replica",
        "dp_attention": "Attention data-parallel",
        "engine": "Serving engine",
        "redundant_experts": "Redundant experts",
        "expert_routing": "Expert routing (measured or balanced)",
        "lengths": "Request-length distribution",
        "requests": "Requests in the burst",
        "arrival": "Arrival (steady or burst)",
        "pp": "Pipeline-parallel stages",
        "speculative": "Speculative decoding",
        "draft_tokens": "Draft tokens per step",
        "acceptance": "Draft acceptance rate",
        "draft_model": "Draft model",
        "prefill_gpus": "Prefill GPUs",
        "decode_gpus": "Decode GPUs",
        "prefill_tp": "Prefill tensor-parallel GPUs per instance",
        "prefill_ep": "Prefill expert-parallel GPUs per instance",
        "prefill_dp_attention": "Prefill attention data-parallel",
        "decode_tp": "Decode tensor-parallel GPUs per instance",
        "decode_ep": "Decode expert-parallel GPUs per instance",
        "decode_dp_attention": "Decode attention data-parallel",
        "decode_batch": "Decode batch per instance",
        "two_batch_overlap": "Two-batch overlap",
        "reasoning_multiplier": "Reasoning multiplier",
        "cache_hit_rate": "Prompt-cache hit rate",
        "requests_per_second": "Requests per second",
        "tpot_limit": "TPOT limit",
        "ttft_limit": "TTFT limit",
    },
    "FleetRequest": {  # the Serve page's fleet block: the same widgets
        "model": "Model",
        "precision": "Precision",
        "input_tokens": "Input tokens per request",
        "output_tokens": "Output tokens per request",
        "requests_per_second": "Requests per second",
        "tpot_limit": "TPOT limit",
        "ttft_limit": "TTFT limit",
    },
    "BreakevenRequest": {
        "api_usd_per_million_tokens": "API price p, USD per million tokens",
        "own_usd_per_million_tokens": "Own marginal cost c, USD per million tokens",
        "fixed_usd": "Fixed cost F of building, USD",
        "volume_tokens_per_month": "Volume in month 1",
        "months": "Months",
        "volume_growth_per_month": "Volume growth per month",
        "discount_rate_annual": "Discount rate per year",
        "api_price_annual_factor": "API price factor per year",
        "api_price_steps": "A one-off API price change",
        "own_cost_annual_factor": "Own cost factor per year",
        # against a rented fleet (billshape breakeven --own-usd-per-month / --model): the CLI's; no widget yet
        "own_usd_per_month": "Fleet rent per unit, USD per month",
        "own_capacity_tokens_per_month": "Fleet capacity per unit, tokens per month",
        "model": "Model",
        "engine": "Serving engine",
        "precision": "Precision",
        "input_tokens": "Input tokens per request",
        "output_tokens": "Output tokens per request",
        "tpot_limit": "TPOT limit",
        "ttft_limit": "TTFT limit",
        "peak_to_mean": "Peak to mean",
    },
    "SizeRequest": {
        "constants": "Scaling-law constants",
        "reference_params": "Reference parameters",
        "reference_tokens": "Reference tokens",
        "target_loss": "Target loss, nats per token",
        "inference_tokens": "Lifetime inference tokens",
    },
    "CapacityRequest": {
        "reserved_usd_per_gpu_hour": "Reserved, USD/GPU-hour",
        "on_demand_usd_per_gpu_hour": "On-demand, USD/GPU-hour",
        "spot_usd_per_gpu_hour": "Spot, USD/GPU-hour",
        "spot_interruptions_per_hour": "Preemptions per hour",
        "interruptions_per_hour": "Preemptions per hour",
        "checkpoint_minutes": "Minutes lost per preemption",
    },
    "RouteRequest": {
        "quality_bar": "Quality bar",
        "cascade": "Cascade",
    },
}

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_REF = re.compile(r"`([A-Za-z][A-Za-z0-9_]*)`")
_ITEM = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\[\d+\]")


def table(request_type: type | str | None = None) -> dict[str, str]:
    """The labels of the page that builds ``request_type`` (a request class or its name), over :data:`COMMON`."""
    name = request_type if isinstance(request_type, str) or request_type is None else request_type.__name__
    return {**COMMON, **BY_REQUEST.get(name or "", {})}


def app_label(field: str, labels: Mapping[str, str]) -> str:
    """The app's name for a field path: its widget's label, else the field itself (never a flag).

    A compound of alternatives (``"provider/tier"``) is labelled part by part; a field followed by a location
    after a space (``"measured output_throughput"``) keeps the location; a path into a file
    (``"models[0].quality"``) stays as it is.
    """
    if not field:
        return field
    head, sep, tail = field.partition(" ")
    item = _ITEM.fullmatch(head)  # an item of a list field (routes[1]): the list's widget
    if item and item.group(1) in labels:
        return labels[item.group(1)] + sep + tail
    parts = head.split("/")
    if not all(_NAME.fullmatch(part) for part in parts):
        return field
    return "/".join(labels.get(part, part) for part in parts) + sep + tail


def app_text(text: str | None, labels: Mapping[str, str]) -> str | None:
    """Translate the backticked field names in an error's ``allowed``/``hint`` text to quoted widget labels; a
    field without a widget stays in backticks (Streamlit shows it as code)."""
    if not text:
        return text
    return _REF.sub(lambda m: f'"{labels[m.group(1)]}"' if m.group(1) in labels else m.group(0), text)


def app_message(exc, labels: Mapping[str, str] | None) -> str:
    """The one-line app message of a :class:`~billshape.errors.BillshapeInputError`, in widget labels.

    ``labels=None`` keeps the field as it is (a scenario's YAML path, which the Plan page's editor shows).
    """
    from billshape.errors import BillshapeInputError

    if labels is None:
        return exc.message
    return BillshapeInputError(app_label(exc.field, labels), exc.value, app_text(exc.allowed, labels),
                               app_text(exc.hint, labels)).message
