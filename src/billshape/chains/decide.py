"""The decision chains: build vs buy, payback, sizing, capacity tiers and model routing.

Each ``run_*`` takes its typed request (:mod:`billshape.chains.requests`) and returns the library's Result.
"""

from __future__ import annotations

from billshape.chains.requests import (BreakevenRequest, CapacityRequest, PaybackRequest, RouteRequest, SizeRequest,
                                       require)
from billshape.errors import BillshapeInputError
from billshape.results import derived


def run_breakeven(req: BreakevenRequest):
    """:class:`~billshape.decide.BreakEven`, or :class:`~billshape.decide.BuildBuyHorizon` when a volume and
    ``months`` are given."""
    from billshape.decide import break_even

    if req.model is not None or req.own_usd_per_month is not None or req.own_capacity_tokens_per_month is not None:
        return run_fleet_breakeven(req)
    require(req, "api_usd_per_million_tokens", "own_usd_per_million_tokens", "fixed_usd")
    if req.months is not None or req.volume_tokens_per_month is not None:
        for name, other in (("volume_tokens_per_month", "months"), ("months", "volume_tokens_per_month")):
            if getattr(req, name) is None:
                raise BillshapeInputError(name, None, f"given with `{other}`")
        from billshape.decide import build_vs_buy_horizon

        return build_vs_buy_horizon(req.api_usd_per_million_tokens, req.own_usd_per_million_tokens, req.fixed_usd,
                                    req.volume_tokens_per_month, req.months, req.volume_growth_per_month,
                                    req.api_price_annual_factor, req.api_price_steps, req.own_cost_annual_factor,
                                    req.discount_rate_annual)
    return break_even(req.api_usd_per_million_tokens, req.own_usd_per_million_tokens, req.fixed_usd)


def run_fleet_breakeven(req: BreakevenRequest):
    """:class:`~billshape.fleet.breakeven.FleetBreakEven`: build vs buy against a rented fleet, given as a unit's
    rent and capacity or searched for ``model`` at the month-1 volume (:func:`billshape.fleet.fleet`)."""
    from billshape.chains.fleet import _listed
    from billshape.fleet.breakeven import fleet_breakeven, fleet_unit

    require(req, "api_usd_per_million_tokens")
    if req.own_usd_per_million_tokens is not None:
        raise BillshapeInputError("own_usd_per_million_tokens", req.own_usd_per_million_tokens,
                                  "omitted against a fleet (its cost is a monthly rent: `own_usd_per_month` or `model`)")
    fleet_fields = ("gpu", "provider", "tier", "engine", "precision", "input_tokens", "output_tokens", "tpot_limit",
                    "ttft_limit", "peak_to_mean")
    assumptions, fleet, ptm = [], None, 1.0
    if req.model is not None:
        for name in ("own_usd_per_month", "own_capacity_tokens_per_month"):
            if getattr(req, name) is not None:
                raise BillshapeInputError(name, getattr(req, name), "omitted with `model` (the fleet search gives it)")
        require(req, "volume_tokens_per_month", allowed="the month-1 volume the fleet is sized for (with `model`)")
        from billshape.fleet import fleet as search

        res = search(model=req.model, tokens_per_month=req.volume_tokens_per_month, peak_to_mean=req.peak_to_mean,
                     input_tokens=req.input_tokens, output_tokens=req.output_tokens, tpot_limit=req.tpot_limit,
                     ttft_limit=req.ttft_limit, gpu=_listed(req.gpu), provider=_listed(req.provider),
                     tier=_listed(req.tier), engine=_listed(req.engine), precision=_listed(req.precision))
        rent, capacity, fleet, ptm = fleet_unit(res)
        assumptions = [a for a in res.assumptions if not a.name.startswith("tokens per month")]
        assumptions.append(derived("fleet option", f"{fleet['replicas']} x {fleet['gpus_per_replica']} {fleet['gpu']} "
                                   f"{fleet['precision']} at {fleet['provider']} {fleet['tier']}", None,
                                   "billshape fleet: the cheapest option at the month-1 volume"))
    else:
        for name in fleet_fields:
            if getattr(req, name) is not None:
                raise BillshapeInputError(name, getattr(req, name), "only with `model` (a fleet search)")
        require(req, "own_usd_per_month", "own_capacity_tokens_per_month",
                allowed="given together: a fleet unit's monthly rent and the tokens per month it covers")
        rent, capacity = req.own_usd_per_month, req.own_capacity_tokens_per_month
    return fleet_breakeven(
        api_usd_per_million_tokens=req.api_usd_per_million_tokens, own_usd_per_month=rent,
        own_capacity_tokens_per_month=capacity, volume_tokens_per_month=req.volume_tokens_per_month,
        months=req.months, fixed_usd=req.fixed_usd, volume_growth_per_month=req.volume_growth_per_month,
        api_price_annual_factor=req.api_price_annual_factor, api_price_steps=req.api_price_steps,
        own_cost_annual_factor=req.own_cost_annual_factor, discount_rate_annual=req.discount_rate_annual,
        fleet=fleet, assumptions=assumptions, peak_to_mean=ptm)


def run_payback(req: PaybackRequest):
    """:class:`~billshape.business.Payback`: months to recover the fixed cost."""
    from billshape.business import payback

    require(req, "fixed_usd", "users", "revenue_per_user_month_usd")
    return payback(req.fixed_usd, req.users, req.revenue_per_user_month_usd, req.cost_per_user_month_usd)


def run_size(req: SizeRequest):
    """:class:`~billshape.decide.SizingPlan`; the accelerator's dense peak comes from the catalog (``gpu``)."""
    from billshape.decide import size_model

    if req.inference_tokens is None:
        raise BillshapeInputError("inference_tokens", None, "a token count >= 0")
    peak, peak_src = None, None
    if req.gpu is not None:
        from billshape import catalog

        acc = catalog.gpu(req.gpu)
        peak = acc.peak_flops_per_second(req.precision)
        peak_src = acc.assumption(f"{acc.name} dense peak ({req.precision})", peak, "FLOP/s")
    return size_model(req.inference_tokens, reference_params=req.reference_params,
                      reference_tokens=req.reference_tokens, target_loss=req.target_loss, constants=req.constants,
                      usd_per_gpu_hour=req.usd_per_gpu_hour, peak_flops_per_second=peak,
                      mfu_training=req.mfu_training, mfu_prefill=req.mfu_prefill, mfu_decode=req.mfu_decode,
                      decode_share=req.decode_share, peak_source=peak_src)


def run_capacity(req: CapacityRequest):
    """:class:`~billshape.decide.CapacityPlan` for the demand profile (read from any source)."""
    from pathlib import Path

    from billshape.decide import SHIPPED_DEMANDS, capacity_plan, read_demand

    require(req, "demand", "reserved_usd_per_gpu_hour", "on_demand_usd_per_gpu_hour")
    _, gpus, interruptible = read_demand(req.demand)
    if isinstance(req.demand, (str, Path)) and "\n" not in str(req.demand):
        given = str(req.demand)
        key = given.strip().lower()
        label = (f"{key} (shipped billshape/data/{SHIPPED_DEMANDS[key]})"
                 if key in SHIPPED_DEMANDS and not _is_file(given) else given)
    else:
        from billshape.io import source_name

        label = source_name(req.demand)
    return capacity_plan(gpus, req.reserved_usd_per_gpu_hour, req.on_demand_usd_per_gpu_hour, interruptible,
                         req.spot_usd_per_gpu_hour, req.spot_interruptions_per_hour, req.checkpoint_minutes,
                         demand_label=label)


def _is_file(text: str) -> bool:
    from pathlib import Path

    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def run_route(req: RouteRequest):
    """:class:`~billshape.decide.LadderChoice`: the cheapest model (or cascade) that clears the bar.

    ``ladder`` is a source (read by :func:`~billshape.decide.read_ladder`) or a ladder that reader returned (a
    ``dict``: the app reads an upload once, to show its quality metric, and routes over it)."""
    from billshape.decide import read_ladder, route

    require(req, "ladder", "quality_bar")
    ladder = req.ladder if isinstance(req.ladder, dict) else read_ladder(req.ladder)
    return route(ladder, req.quality_bar, cascade=req.cascade, cascade_only=req.cascade_only)
