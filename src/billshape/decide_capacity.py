"""Capacity tiers: reserve the base of an hourly demand curve, burst on on-demand, put interruptible work on spot.

Re-exported by :mod:`billshape.decide`.

References
----------
.. [1] billshape seed 003 (capacity tiers: reserved < on-demand; spot cheapest but preemptible, with checkpoint
       overhead).
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Result, derived, user
from billshape.io import SHIPPED_DEMANDS, read_input_text

# --------------------------------------------------------------------------------------------- capacity
MAX_INTERRUPTIONS_PER_HOUR = 3600.0  # one a second: a bound, not a default

def optimal_reserved_level(demand_gpus, reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour):
    r"""Cost-minimising reserved level for an hourly demand profile (vectorised over prices).

    Reserving one more GPU costs ``r`` every hour and saves ``o`` in each hour that demand exceeds the
    level, so the cost falls while the share of hours above the level exceeds ``r / o``: the optimum is the
    lowest level (0 or a demand value) with ``share(demand > level) <= r / o``. With ``r >= o`` it is 0.

    Parameters
    ----------
    demand_gpus : array_like, shape (hours,)
        GPUs needed in each hour [GPU], >= 0.
    reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour : numeric
        Prices [USD/GPU-hour], > 0; arrays broadcast into a sweep.

    Returns
    -------
    numeric
        Reserved GPUs [GPU]; never decreases when the on-demand price rises.

    References
    ----------
    .. [1] billshape seed 003, section 37.4 (reserve the base of the demand curve, burst on on-demand).
    """
    v.positive("reserved_usd_per_gpu_hour", reserved_usd_per_gpu_hour)
    v.positive("on_demand_usd_per_gpu_hour", on_demand_usd_per_gpu_hour)
    d = np.sort(np.asarray(demand_gpus, dtype=float).ravel())
    hours = d.size
    ratio = np.asarray(reserved_usd_per_gpu_hour, dtype=float) / np.asarray(on_demand_usd_per_gpu_hour, dtype=float)
    allowed_above = np.floor(np.minimum(ratio, 1.0) * hours + 1e-9).astype(int)  # hours allowed above the level
    idx = hours - allowed_above - 1  # 0-based index of the level in the sorted profile
    level = np.where(idx >= 0, d[np.clip(idx, 0, hours - 1)], 0.0)
    return np.maximum(level, 0.0) if level.ndim else float(max(level, 0.0))


def firm_demand_gpus(demand_gpus, interruptible_gpus):
    """The firm part of an hourly demand: GPUs that must run on reserved or on-demand capacity
    (``demand - interruptible``, vectorised) [GPU]; the interruptible rest may run on spot.

    Parameters
    ----------
    demand_gpus : array_like, shape (hours,)
        GPUs needed in each hour [GPU], >= 0.
    interruptible_gpus : array_like, shape (hours,)
        The part of them that tolerates preemption [GPU], in [0, demand_gpus] (:func:`read_demand` checks it).

    Returns
    -------
    numpy.ndarray
        Firm GPUs in each hour [GPU].

    References
    ----------
    .. [1] billshape seed 003, section 37.4 (interruptible work on spot, the firm base reserved and burst).
    """
    return np.asarray(demand_gpus, dtype=float) - np.asarray(interruptible_gpus, dtype=float)


def tiered_cost_usd(demand_gpus, reserved_gpus, reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour,
                    hours_axis: int = -1):
    r"""Cost of a reserved level plus on-demand burst over the hours of a profile:
    :math:`r R H + o \sum_h \max(d_h - R, 0)` [USD].

    Parameters
    ----------
    demand_gpus : array_like, shape (..., hours)
        GPUs needed in each hour [GPU]; leading axes are a batch of profiles (one row each).
    reserved_gpus : array_like, shape (...)
        Reserved level R per profile [GPU] (a scalar for one profile).
    reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour : array_like, shape (...)
        Prices r and o [USD/GPU-hour], broadcast against the batch.
    hours_axis : int
        The axis of ``demand_gpus`` that holds the hours (default: the last); H is its length.

    Returns
    -------
    numpy.ndarray or float
        Cost over the H hours [USD], shape (...).

    References
    ----------
    .. [1] billshape seed 003, section 37.4 (reserve the base of the demand curve, burst on on-demand).
    """
    d = np.moveaxis(np.asarray(demand_gpus, dtype=float), hours_axis, -1)
    hours = d.shape[-1]
    r_level = np.asarray(reserved_gpus, dtype=float)[..., None]
    burst = np.sum(np.maximum(d - r_level, 0.0), axis=-1)
    return (np.asarray(reserved_usd_per_gpu_hour, dtype=float) * np.asarray(reserved_gpus, dtype=float) * hours
            + np.asarray(on_demand_usd_per_gpu_hour, dtype=float) * burst)


def spot_overhead_factor(interruptions_per_hour, checkpoint_minutes):
    r"""GPU-hours on spot per GPU-hour of work: :math:`1 / (1 - \lambda M / 60)`.

    Each interruption loses ``M`` minutes (restore from the last checkpoint and redo the work since it).

    Parameters
    ----------
    interruptions_per_hour : numeric
        Preemption rate lambda [1/hour], >= 0.
    checkpoint_minutes : numeric
        Minutes lost per interruption M [minutes], >= 0.

    Returns
    -------
    numeric
        Overhead factor [unitless] >= 1; ``inf`` where ``lambda M >= 60`` (the job never finishes).
    """
    v.non_negative("interruptions_per_hour", interruptions_per_hour)
    v.non_negative("checkpoint_minutes", checkpoint_minutes)
    lost = np.asarray(interruptions_per_hour, dtype=float) * np.asarray(checkpoint_minutes, dtype=float) / 60.0
    with np.errstate(divide="ignore"):
        return np.where(lost < 1, 1.0 / np.where(lost < 1, 1.0 - lost, 1.0), np.inf)


def read_demand(path, field: str = "demand"):
    """Read an hourly demand CSV ``hour,gpus[,interruptible_gpus]`` (``#`` lines are comments).

    ``path``: a path, the CSV text, bytes, a file object or a shipped name (:func:`billshape.io.read_source`).

    Hours must be consecutive integers; GPUs finite and >= 0; ``interruptible_gpus <= gpus``.
    Returns ``(hours, gpus, interruptible)`` as numpy arrays (``interruptible`` zeros when absent).
    """
    import csv as _csv

    text, path = read_input_text(path, field, SHIPPED_DEMANDS,
                                 "a readable CSV file with columns hour,gpus[,interruptible_gpus]")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = _csv.DictReader(lines)
    cols = [c.strip() for c in (reader.fieldnames or [])]
    if "hour" not in cols or "gpus" not in cols:
        raise BillshapeInputError(field, f"{path} columns {cols}", "columns hour,gpus[,interruptible_gpus]")
    has_int = "interruptible_gpus" in cols
    hours, gpus, intr = [], [], []
    for i, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (val or "").strip() for k, val in row.items()}
        try:
            h = float(row["hour"])
            g = float(row["gpus"])
            x = float(row["interruptible_gpus"]) if has_int and row.get("interruptible_gpus") else 0.0
        except ValueError:
            raise BillshapeInputError(field, f"{path} line {i}: {row}", "numbers in every column") from None
        if not (np.isfinite(h) and np.isfinite(g) and np.isfinite(x)) or h != int(h):
            raise BillshapeInputError(field, f"{path} line {i}: {row}", "an integer hour and finite GPU counts")
        if g < 0 or x < 0 or g > v.MAX_COUNT:
            raise BillshapeInputError(field, f"{path} line {i}: {row}", f"GPU counts in [0, {v.MAX_COUNT:g}]")
        if x > g:
            raise BillshapeInputError(field, f"{path} line {i}: {row}", "interruptible_gpus <= gpus")
        hours.append(int(h))
        gpus.append(g)
        intr.append(x)
    if not hours:
        raise BillshapeInputError(field, str(path), "at least one hour of demand")
    hrs = np.array(hours)
    order = np.argsort(hrs, kind="stable")
    hrs = hrs[order]
    dup = np.where(np.diff(hrs) == 0)[0]
    if dup.size:
        raise BillshapeInputError(field, f"{path}: hour {hrs[dup[0]]} appears twice", "one row per hour")
    gap = np.where(np.diff(hrs) != 1)[0]
    if gap.size:
        raise BillshapeInputError(field, f"{path}: hours jump from {hrs[gap[0]]} to {hrs[gap[0] + 1]}",
                                  "consecutive hours with no gaps")
    return hrs, np.array(gpus)[order], np.array(intr)[order]


class CapacityPlan(Result):
    """Reserved base, on-demand burst and spot for interruptible work, against all on-demand."""

    hours: int
    reserved_gpus: int | float  # an int when whole (a level is a demand value: GPU counts are usually whole)
    total_usd: float
    on_demand_only_usd: float
    saving_fraction: float
    uses_spot: bool
    breakdown: dict
    explanation: str


def capacity_plan(demand_gpus, reserved_usd_per_gpu_hour: float, on_demand_usd_per_gpu_hour: float,
                  interruptible_gpus=None, spot_usd_per_gpu_hour: float | None = None,
                  spot_interruptions_per_hour: float = 0.0, checkpoint_minutes: float = 0.0,
                  demand_label: str = "demand profile") -> CapacityPlan:
    """Cheapest mix of reserved, on-demand and (for interruptible work) spot capacity for an hourly profile.

    Without spot: reserve the optimal level (:func:`optimal_reserved_level`) and burst on on-demand. With a
    spot price: the interruptible part may instead run on spot, inflated by :func:`spot_overhead_factor`,
    with the remaining (firm) demand reserved and burst; the cheaper of the two plans is chosen.
    """
    d = np.asarray(demand_gpus, dtype=float)
    v.non_negative("demand_gpus", d, v.MAX_COUNT)
    for flag, price in (("reserved_usd_per_gpu_hour", reserved_usd_per_gpu_hour), ("on_demand_usd_per_gpu_hour", on_demand_usd_per_gpu_hour)):
        v.positive(flag, price)  # "> 0" first (the message the app shows), then the upper bound
        v.positive(flag, price, v.MAX_USD_RATE)
    r, o = float(reserved_usd_per_gpu_hour), float(on_demand_usd_per_gpu_hour)
    hours = d.size
    od_only = o * float(d.sum())
    level = float(optimal_reserved_level(d, r, o))
    cost = float(tiered_cost_usd(d, level, r, o))
    plan = {"reserved_gpus": level, "firm": d, "spot_work": 0.0, "overhead": 1.0, "spot_usd": 0.0}
    notes = []
    assumptions = [
        user("demand", demand_label, None, "demand"),
        user("reserved price", r, "USD per GPU-hour", "reserved_usd_per_gpu_hour"),
        user("on-demand price", o, "USD per GPU-hour", "on_demand_usd_per_gpu_hour"),
    ]
    if spot_usd_per_gpu_hour is not None:
        v.positive("spot_usd_per_gpu_hour", spot_usd_per_gpu_hour, v.MAX_USD_RATE)
        v.non_negative("spot_interruptions_per_hour", spot_interruptions_per_hour, MAX_INTERRUPTIONS_PER_HOUR)
        v.non_negative("checkpoint_minutes", checkpoint_minutes, v.MAX_HOURS * 60)
        s = float(spot_usd_per_gpu_hour)
        x = np.zeros_like(d) if interruptible_gpus is None else np.asarray(interruptible_gpus, dtype=float)
        overhead = float(spot_overhead_factor(spot_interruptions_per_hour, checkpoint_minutes))
        assumptions += [user("spot price", s, "USD per GPU-hour", "spot_usd_per_gpu_hour"),
                        user("spot interruptions", float(spot_interruptions_per_hour), "per hour",
                             "spot_interruptions_per_hour"),
                        user("minutes lost per interruption", float(checkpoint_minutes), "minutes", "checkpoint_minutes"),
                        derived("spot overhead factor", overhead if np.isfinite(overhead) else None, "x",
                                "1 / (1 - interruptions x minutes / 60)")]
        if float(x.sum()) == 0:
            notes.append("no interruptible demand: spot unused")
        elif not np.isfinite(overhead):
            notes.append("interruptions x minutes lost >= 60 per hour: work on spot never finishes; spot unused")
        else:
            firm = firm_demand_gpus(d, x)
            lvl2 = float(optimal_reserved_level(firm, r, o))
            spot_usd = s * overhead * float(x.sum())
            cost2 = float(tiered_cost_usd(firm, lvl2, r, o)) + spot_usd
            if cost2 < cost:
                level, cost = lvl2, cost2
                plan = {"reserved_gpus": lvl2, "firm": firm, "spot_work": float(x.sum()), "overhead": overhead,
                        "spot_usd": spot_usd}
            else:
                notes.append("spot (with its overhead) is not cheaper than reserving/bursting the interruptible work")
    firm = plan["firm"]
    burst = np.maximum(firm - level, 0.0)
    used_reserved = np.minimum(firm, level)
    breakdown = {
        "reserved_gpu_hours": level * hours, "reserved_used_gpu_hours": float(used_reserved.sum()),
        "reserved_utilization": float(used_reserved.sum() / (level * hours)) if level > 0 else None,
        "reserved_usd": r * level * hours,
        "on_demand_gpu_hours": float(burst.sum()), "on_demand_usd": o * float(burst.sum()),
        "spot_work_gpu_hours": plan["spot_work"], "spot_gpu_hours": plan["spot_work"] * plan["overhead"],
        "spot_overhead_factor": plan["overhead"], "spot_usd": plan["spot_usd"],
        "share_of_hours_above_reserved": float(np.mean(firm > level)), "price_ratio_reserved_to_on_demand": r / o,
    }
    saving = 1 - cost / od_only if od_only > 0 else 0.0
    text = (f"reserve {level:,.4g} GPUs (demand is above that in {breakdown['share_of_hours_above_reserved']:.1%} of hours; "
            f"the break point is r/o = {r / o:.1%}), burst the rest on on-demand"
            + (f", interruptible work on spot ({plan['overhead']:.3g}x GPU-hours)" if plan["spot_work"] else "")
            + f": ${cost:,.0f} vs ${od_only:,.0f} all on-demand ({saving:.1%} saved)")
    if notes:
        text += "; " + "; ".join(notes)
    return CapacityPlan(hours=hours, reserved_gpus=int(level) if float(level).is_integer() else level, total_usd=cost, on_demand_only_usd=od_only,
                        saving_fraction=saving, uses_spot=bool(plan["spot_work"] > 0), breakdown=breakdown,
                        explanation=text, assumptions=assumptions)
