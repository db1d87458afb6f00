r"""The fleet's rent: whole replicas over the hours of the week, at a provider's tiers (vectorised).

Each hour :math:`h` of the week needs :math:`N_h` replicas of :math:`g` GPUs (:mod:`billshape.fleet.sizing`).
A rented fleet pays for every provisioned GPU-hour, busy or not. Per hour, on average over the week:

* **reserved** (``reserved-1y``/``reserved-3y``; committed, so sized for the peak):
  :math:`r \, g \, \max_h N_h`;
* **on-demand** (scaled hour by hour with the traffic): :math:`o \, g \, \overline{N_h}`;
* **reserved base + on-demand burst** (``reserved-1y+on-demand``): reserve the level :math:`L` below which the
  share of hours above it is at most :math:`r / o` (:func:`billshape.decide_capacity.optimal_reserved_level`,
  here for a batch of profiles at once), burst the rest: :math:`(r \, g L H + o \, g \sum_h \max(N_h - L, 0)) / H`
  (:func:`billshape.decide_capacity.tiered_cost_usd`);
* **spot** only for traffic that tolerates preemption (``interruptible_gpus`` of a ``demand`` file): the firm
  part on on-demand, the interruptible part on spot (``on-demand+spot``). Serving traffic is firm otherwise: a
  preempted replica drops the requests in flight at the peak, so an all-spot fleet is rejected.

Monthly rent is that mean hourly rent times the hours of a month (``hours_per_year / 12``). Utilization is the
traffic served over the capacity provisioned: :math:`\bar\lambda / (c \, \overline{P_h})`, with :math:`P_h` the
replicas paid for in hour :math:`h`. Cost per million output tokens spreads all of the rent (prefill included)
over the output tokens served: :math:`10^6 \times \text{rent per hour} / (3600 \, \bar\lambda \, O)`.

References
----------
.. [1] billshape seed 003, section 37.4 (capacity tiers: reserve the base, burst on on-demand, spot for
       interruptible work; reserved capacity for spiky demand wastes the trough).
.. [2] Cottier et al., "The rising costs of training frontier AI models", 2024, arXiv:2405.21015 (reserved and
       committed-use discounts behind ``data/gpu_prices.csv``'s reserved rows).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from billshape import catalog
from billshape.decide_capacity import tiered_cost_usd

RESERVED = ("reserved-1y", "reserved-3y")


@dataclasses.dataclass(frozen=True)
class Plan:
    """One way to rent a GPU at a provider: a tier or a mix of tiers and its prices [USD/GPU-hour]."""

    provider: str
    gpu: str
    tier: str  # "on-demand", "reserved-1y", "reserved-1y+on-demand", "on-demand+spot", "spot"
    kind: str  # "reserved" | "on-demand" | "mixed" | "spot-mix" | "spot"
    usd_per_gpu_hour: float  # the tier's price (the reserved one in a mix)
    burst_usd_per_gpu_hour: float = 0.0  # on-demand price of a mix
    spot_usd_per_gpu_hour: float = 0.0
    sources: tuple = ()  # the GpuPrice rows


def quotes(gpu: str) -> dict[tuple[str, str], catalog.GpuPrice]:
    """The lowest catalogued quote per (provider, tier) for an accelerator (as :func:`billshape.catalog.price`)."""
    out: dict[tuple[str, str], catalog.GpuPrice] = {}
    for p in catalog.prices():
        if p.gpu != gpu:
            continue
        key = (p.provider, p.tier)
        if key not in out or p.usd_per_gpu_hour < out[key].usd_per_gpu_hour:
            out[key] = p
    return out


def plans(gpu: str, providers: tuple[str, ...] | None = None, tiers: tuple[str, ...] | None = None,
          price_factor: float = 1.0) -> list[Plan]:
    """Every tier plan for ``gpu``: single tiers, reserved + on-demand mixes, on-demand + spot, all spot.

    ``providers``/``tiers`` restrict the search (a mix needs each of its tiers allowed); ``price_factor``
    scales every price (a what-if on GPU prices)."""
    q = quotes(gpu)
    out: list[Plan] = []
    provs = sorted({p for p, _ in q})
    for prov in provs:
        if providers is not None and prov not in providers:
            continue
        have = {t: q[(prov, t)] for t in catalog.TIERS if (prov, t) in q}

        def ok(*ts):
            return tiers is None or all(t in tiers for t in ts)

        f = float(price_factor)
        for t, row in have.items():
            if not ok(t):
                continue
            kind = "reserved" if t in RESERVED else ("spot" if t == "spot" else "on-demand")
            out.append(Plan(prov, gpu, t, kind, row.usd_per_gpu_hour * f, sources=(row,)))
        od = have.get("on-demand")
        if od is None:
            continue
        for t in RESERVED:
            if t in have and ok(t, "on-demand"):
                out.append(Plan(prov, gpu, f"{t}+on-demand", "mixed", have[t].usd_per_gpu_hour * f,
                                od.usd_per_gpu_hour * f, sources=(have[t], od)))
        if "spot" in have and ok("on-demand", "spot"):
            out.append(Plan(prov, gpu, "on-demand+spot", "spot-mix", od.usd_per_gpu_hour * f, 0.0,
                            have["spot"].usd_per_gpu_hour * f, sources=(od, have["spot"])))
    return out


def reserved_level(replicas_by_hour, reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour):
    """The cost-minimising reserved level of each row of ``replicas_by_hour`` (shape (options, hours)) [count]:
    :func:`billshape.decide_capacity.optimal_reserved_level`'s rule, vectorised over the rows and prices."""
    d = np.sort(np.asarray(replicas_by_hour, dtype=float), axis=-1)
    hours = d.shape[-1]
    ratio = np.asarray(reserved_usd_per_gpu_hour, dtype=float) / np.asarray(on_demand_usd_per_gpu_hour, dtype=float)
    allowed_above = np.floor(np.minimum(ratio, 1.0) * hours + 1e-9).astype(int)
    idx = hours - allowed_above - 1
    level = np.take_along_axis(d, np.clip(idx, 0, hours - 1)[:, None], axis=-1)[:, 0]
    return np.where(idx >= 0, np.maximum(level, 0.0), 0.0)


def rent(kind: np.ndarray, gpus_per_replica, price, burst_price, spot_price, firm_replicas, spot_replicas):
    """Mean rent per hour [USD/h] and mean replicas paid for per hour [count] of each option (vectorised).

    Parameters
    ----------
    kind : numpy.ndarray of str, shape (options,)
        ``reserved``, ``on-demand``, ``mixed`` or ``spot-mix`` (see the module docstring).
    gpus_per_replica : array_like, shape (options,)
        GPUs per replica g [GPU].
    price, burst_price, spot_price : array_like, shape (options,)
        The tier's price, the on-demand price of a mix, the spot price [USD/GPU-hour].
    firm_replicas, spot_replicas : array_like, shape (options, hours)
        Replicas needed each hour for the firm and the interruptible traffic [count] (the firm one holds all
        the traffic where no share is interruptible).

    Returns
    -------
    tuple of numpy.ndarray
        ``(usd_per_hour, paid_replicas, reserved_replicas)``, each shape (options,).
    """
    g = np.asarray(gpus_per_replica, dtype=float)
    p, o, s = (np.asarray(x, dtype=float) for x in (price, burst_price, spot_price))
    n_firm = np.asarray(firm_replicas, dtype=float)
    n_spot = np.asarray(spot_replicas, dtype=float)
    total = n_firm + n_spot
    usd = np.zeros(g.shape)
    paid = np.zeros(g.shape)
    reserved = np.zeros(g.shape)
    m = kind == "reserved"
    peak = total.max(axis=-1)
    usd[m] = p[m] * g[m] * peak[m]
    paid[m] = peak[m]
    reserved[m] = peak[m]
    m = kind == "on-demand"
    usd[m] = p[m] * g[m] * total[m].mean(axis=-1)
    paid[m] = total[m].mean(axis=-1)
    m = kind == "mixed"
    if m.any():
        level = reserved_level(total[m], p[m], o[m])
        usd[m] = g[m] * tiered_cost_usd(total[m], level, p[m], o[m]) / total.shape[-1]  # per replica-hour, x g
        paid[m] = np.maximum(total[m], level[:, None]).mean(axis=-1)
        reserved[m] = level
    m = kind == "spot-mix"
    usd[m] = g[m] * (p[m] * n_firm[m].mean(axis=-1) + s[m] * n_spot[m].mean(axis=-1))
    paid[m] = total[m].mean(axis=-1)
    return usd, paid, reserved


def pareto(cost, latency) -> np.ndarray:
    """Indices of the options no other option beats on both cost and latency (lower is better on both), by
    cost: the Pareto frontier of cost against TPOT."""
    c = np.asarray(cost, dtype=float)
    t = np.asarray(latency, dtype=float)
    order = np.lexsort((t, c))
    keep, best_t = [], np.inf
    for i in order:
        if t[i] < best_t:
            keep.append(int(i))
            best_t = t[i]
    return np.array(keep, dtype=int)
