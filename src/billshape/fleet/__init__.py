r"""The cheapest fleet for a traffic and a service level: GPUs, parallelism, precision, engine, provider, tier.

:func:`fleet` searches accelerator x GPUs per replica (tensor parallel) x expert parallel x precision x engine
(:mod:`billshape.fleet.search`, the serving roofline over every configuration at once), sizes whole replicas for
every hour of the traffic (:mod:`billshape.fleet.sizing`) and prices them at every catalogued provider and tier,
with reserved base + on-demand burst mixes (:mod:`billshape.fleet.pricing`). It returns the cheapest option, the
Pareto frontier of $/M output tokens against TPOT, and the options it rejected and why. See ``docs/fleet.md``.

References
----------
.. [1] Agrawal et al., "Vidur: A Large-Scale Simulation Framework for LLM Inference", MLSys 2024,
       arXiv:2405.05465 (configuration search under an SLO).
.. [2] billshape seed 003, sections 37.2 and 37.4 (cost per token at a utilization; capacity tiers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from billshape import catalog
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Assumption, Result, derived, user

OPTION_KEYS = ("gpu", "gpus_per_replica", "tp", "ep", "precision", "engine", "replicas", "provider", "tier",
               "usd_per_hour", "usd_per_month", "usd_per_million_output_tokens", "utilization", "ttft_s", "tpot_s")
REASONS = ("does not fit", "misses the SLO", "precision not supported", "no price", "spot is preemptible",
           "no memory figures")


class FleetResult(Result):
    """The cheapest deployment for a traffic under a service level, its frontier and what was rejected."""

    model: str
    input_tokens: float
    output_tokens: float
    tpot_limit_s: float | None = None
    ttft_limit_s: float | None = None
    mean_requests_per_second: float
    peak_requests_per_second: float
    hours_per_month: float
    best: dict
    frontier: list
    options_evaluated: int
    configurations_evaluated: int
    roofline_evaluations: int
    rejected: dict
    decision: dict
    explanation: str


def _names(values, field: str, allowed, lookup=None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out = []
    for x in values:
        if lookup is not None:
            key = lookup(x)
        else:
            key = str(x).strip().lower()
            if key not in allowed:
                raise unknown_name(field, x, allowed)
        if key not in out:
            out.append(key)
    return tuple(out) or None


def option_dict(o: dict) -> dict:
    """An option in the JSON shape (``OPTION_KEYS`` first, then the extras)."""
    return {k: o[k] for k in OPTION_KEYS} | {k: val for k, val in o.items() if k not in OPTION_KEYS}


def fleet(*, model: str, requests_per_second: float | None = None, tokens_per_month: float | None = None,
          peak_to_mean: float | None = None, demand: Any = None, input_tokens: float | None = None,
          output_tokens: float | None = None, tpot_limit: float | None = None, ttft_limit: float | None = None,
          gpu=None, provider=None, tier=None, engine=None, precision=None, min_replicas: float = 1,
          gpu_price_factor: float = 1.0, frontier_size: int = 12) -> FleetResult:
    """The cheapest rented fleet serving a traffic within a service level (see the module docstring).

    Traffic: ``requests_per_second`` (mean) or ``tokens_per_month`` (input + output) with ``peak_to_mean``
    (default: the shipped week's), or an hourly ``demand`` profile. Service level: ``tpot_limit`` and
    ``ttft_limit`` [s]. ``gpu``, ``provider``, ``tier``, ``engine`` and ``precision`` (a name or a list)
    restrict the search. ``gpu_price_factor`` scales every GPU price (a what-if).
    """
    from billshape import _validate as v
    from billshape.fleet import pricing, search, sizing
    from billshape.serving import _lengths, architecture, check_context

    arch = architecture(model)
    in_len, out_len, a_in, a_out = _lengths(input_tokens, output_tokens)
    check_context(arch, in_len, out_len)
    for name, val in (("tpot_limit", tpot_limit), ("ttft_limit", ttft_limit)):
        if val is not None:
            v.positive(name, val, v.MAX_HOURS * 3600)
    v.positive("min_replicas", min_replicas, v.MAX_COUNT)
    v.positive("gpu_price_factor", gpu_price_factor, 1e6)
    gpus = _names(gpu, "gpu", None, lambda x: catalog.gpu(x).name)
    provs = _names(provider, "provider", catalog.providers())
    tiers = _names(tier, "tier", catalog.TIERS)
    all_engines = search.engines()
    engs = _names(engine, "engine", all_engines) or all_engines
    precs = search.check_precisions([precision] if isinstance(precision, str) else precision) if precision else None
    precs = precs or search.DEFAULT_PRECISIONS
    hours_row = catalog.constant("hours_per_year")
    hours_month = hours_row.value / 12.0

    rps_h, share, assumptions = sizing.traffic(requests_per_second=requests_per_second,
                                               tokens_per_month=tokens_per_month, peak_to_mean=peak_to_mean,
                                               demand=demand, input_tokens=in_len, output_tokens=out_len,
                                               hours_per_month=hours_month)
    mean_rps = float(rps_h.mean())
    firm_h = rps_h * (1.0 - share)
    spot_h = rps_h * share
    priced = {p.gpu for p in catalog.prices()}
    cand = gpus or tuple(a.name for a in catalog.accelerators() if a.name in priced)
    todo, out = search.grid(arch, cand, precs, engs)
    cfg = search.evaluate(arch, todo, input_tokens=in_len, output_tokens=out_len, tpot_limit_seconds=tpot_limit,
                          ttft_limit_seconds=ttft_limit, out=out)

    rejected: dict[str, dict] = {}

    def reject(reason: str, label: str, count: int = 1) -> None:
        r = rejected.setdefault(reason, {"count": 0, "examples": []})
        r["count"] += count
        if len(r["examples"]) < 3:
            r["examples"].append(label)

    def label(i: int) -> str:
        return f"{cfg.gpu[i]} tp{cfg.tp[i]}" + (f" ep{cfg.ep[i]}" if cfg.ep[i] > 1 else "") + \
            f" {cfg.precision[i]} {cfg.engine[i]}"

    plan_cache: dict[str, list] = {}
    pairs: list[tuple[int, Any]] = []
    options_evaluated = 0
    all_spot = bool(np.all(share >= 1.0))
    has_spot_work = bool(np.any(share > 0))
    for i in range(len(cfg)):
        g = str(cfg.gpu[i])
        if g not in plan_cache:
            plan_cache[g] = pricing.plans(g, provs, tiers, gpu_price_factor)
        ps = plan_cache[g]
        n_opts = max(len(ps), 1)
        options_evaluated += n_opts
        if cfg.reason[i]:
            reject(str(cfg.reason[i]), label(i), n_opts)
            continue
        if not ps:
            reject("no price", f"{g}" + (f" at {', '.join(provs)}" if provs else "") + (f" ({', '.join(tiers)})" if tiers else ""))
            continue
        for p in ps:
            if p.kind == "spot" and not all_spot:
                reject("spot is preemptible", f"{label(i)} {p.provider} spot (firm traffic)")
                continue
            if p.kind == "spot-mix" and not has_spot_work:
                reject("spot is preemptible", f"{label(i)} {p.provider} on-demand+spot (no interruptible traffic)")
                continue
            pairs.append((i, p))
    if not pairs:
        why = "; ".join(f"{k}: {r['count']} (e.g. {r['examples'][0]})" for k, r in rejected.items())
        raise BillshapeInputError("model", arch.name, "a deployment that fits, meets the service level and has a "
                                  "price", f"every option was rejected: {why}")
    ci = np.array([i for i, _ in pairs])
    kind = np.array([("on-demand" if p.kind == "spot" else p.kind) for _, p in pairs], dtype=object)
    price = np.array([p.usd_per_gpu_hour for _, p in pairs])
    burst = np.array([p.burst_usd_per_gpu_hour for _, p in pairs])
    spot = np.array([p.spot_usd_per_gpu_hour for _, p in pairs])
    c = cfg.requests_per_second[ci]
    g_rep = cfg.tp[ci].astype(float)
    uniq, inv = np.unique(ci, return_inverse=True)
    c_u = cfg.requests_per_second[uniq]
    n_all = sizing.replicas_needed(rps_h, c_u, min_replicas)[inv]
    n_firm_u = sizing.replicas_needed(firm_h, c_u, min_replicas)[inv]
    n_spot_u = sizing.replicas_needed(spot_h, c_u, 0.0)[inv]
    is_split = kind == "spot-mix"
    firm = np.where(is_split[:, None], n_firm_u, n_all)
    spotn = np.where(is_split[:, None], n_spot_u, 0.0)
    usd_h, paid, reserved = pricing.rent(kind, g_rep, price, burst, spot, firm, spotn)
    peak_rep = (firm + spotn).max(axis=-1)
    util = mean_rps / (c * paid)
    usd_m = usd_h * hours_month
    per_m_out = usd_h / (3600.0 * mean_rps * out_len) * 1e6
    tpot = cfg.tpot_seconds[ci]

    def opt(k: int) -> dict:
        i, p = pairs[k]
        return {
            "gpu": str(cfg.gpu[i]), "gpus_per_replica": int(cfg.tp[i]), "tp": int(cfg.tp[i]), "ep": int(cfg.ep[i]),
            "precision": str(cfg.precision[i]), "engine": str(cfg.engine[i]), "replicas": int(peak_rep[k]),
            "provider": p.provider, "tier": p.tier, "usd_per_hour": float(usd_h[k]), "usd_per_month": float(usd_m[k]),
            "usd_per_million_output_tokens": float(per_m_out[k]), "utilization": float(util[k]),
            "ttft_s": float(cfg.ttft_seconds[i]), "tpot_s": float(cfg.tpot_seconds[i]),
            "batch": int(cfg.batch[i]), "replica_requests_per_second": float(c[k]),
            "replica_output_tokens_per_second": float(cfg.output_tokens_per_second[i]),
            "reserved_replicas": float(reserved[k]), "gpu_hours_per_month": float(paid[k] * g_rep[k] * hours_month),
            "usd_per_gpu_hour": float(p.usd_per_gpu_hour),
        }

    order = np.lexsort((tpot, usd_m))
    b = int(order[0])
    best = opt(b)
    front_idx = pricing.pareto(usd_m, tpot)
    frontier = [opt(int(k)) for k in front_idx[:frontier_size]]
    # what flips it: the cheapest option on another accelerator, provider or tier; and the traffic headroom
    bi, bp = pairs[b]
    other = [int(k) for k in order if (str(cfg.gpu[pairs[int(k)][0]]), pairs[int(k)][1].provider,
                                       pairs[int(k)][1].tier) != (best["gpu"], bp.provider, bp.tier)]
    runner = opt(other[0]) if other else None
    headroom = float(best["replicas"] * c[b] / rps_h.max())
    decision = {
        "utilization": best["utilization"], "usd_per_month": best["usd_per_month"],
        "runner_up": runner,
        "gpu_price_flip_factor": (runner["usd_per_month"] / best["usd_per_month"]) if runner else None,
        "traffic_headroom_factor": headroom,
    }
    expl = (f"{best['replicas']} x {best['gpus_per_replica']} {best['gpu']} ({best['precision']}, {best['engine']}"
            + (f", ep {best['ep']}" if best["ep"] > 1 else "") + f") at {best['provider']} {best['tier']}: "
            f"${best['usd_per_month']:,.0f}/month rent, {best['utilization']:.0%} utilization, "
            f"${best['usd_per_million_output_tokens']:,.3g} per million output tokens")
    if runner:
        expl += (f"; it stays the cheapest until its GPU price rises {decision['gpu_price_flip_factor'] - 1:.1%} "
                 f"(then {runner['replicas']} x {runner['gpus_per_replica']} {runner['gpu']} at {runner['provider']} "
                 f"{runner['tier']} wins)")
    expl += (f"; the peak can grow {headroom - 1:.0%} before it needs replica {best['replicas'] + 1}"
             if headroom > 1 else "")
    for row in bp.sources:
        assumptions.append(row.assumption(f"{row.provider} {row.gpu} {row.tier} price", row.usd_per_gpu_hour,
                                          "USD/GPU-hour"))
    if gpu_price_factor != 1.0:
        assumptions.append(user("GPU price factor", float(gpu_price_factor), "x", "gpu_price_factor"))
    assumptions += [
        a_in, a_out,
        hours_row.assumption("hours per year", hours_row.value, "h"),
        derived("hours per month", hours_month, "h", "hours_per_year / 12"),
        derived("precisions searched", ", ".join(precs), None,
                "`precision` given" if precision else "default: 16-bit weights as published and FP8 (4-bit "
                "formats only when `precision` names them: their quality loss is not modeled)"),
        derived("engines searched", ", ".join(engs), None, "`engine` given" if engine else "the engines with "
                "fitted efficiencies (data/serving_efficiency.csv)"),
        derived("billing", "every provisioned GPU-hour", None, "a rented fleet pays for its replicas busy or not; "
                "reserved tiers are sized for the peak hour, on-demand scales hour by hour with the traffic"),
        derived("cost per output token", "all of the rent over output tokens served", None,
                "prefill time included in the replica's rent"),
    ]
    if tpot_limit is not None:
        assumptions.append(user("TPOT limit", float(tpot_limit), "s", "tpot_limit"))
    if ttft_limit is not None:
        assumptions.append(user("TTFT limit", float(ttft_limit), "s", "ttft_limit"))
    if tpot_limit is None and ttft_limit is None:
        assumptions.append(derived("service level", "none", None, "no `tpot_limit`/`ttft_limit`: the largest batch "
                                   "that fits (as serve `batch` max)"))
    from billshape.serving_catalog import efficiencies

    eff = efficiencies()
    assumptions += [eff["kv_memory_fraction"].as_assumption(), eff["max_batch_cap"].as_assumption()]
    return FleetResult(
        model=arch.name, input_tokens=in_len, output_tokens=out_len, tpot_limit_s=tpot_limit, ttft_limit_s=ttft_limit,
        mean_requests_per_second=mean_rps, peak_requests_per_second=float(rps_h.max()), hours_per_month=hours_month,
        best=best, frontier=frontier, options_evaluated=int(options_evaluated),
        configurations_evaluated=int(cfg.configurations), roofline_evaluations=int(cfg.roofline_evaluations),
        rejected=rejected, decision=decision, explanation=expl, assumptions=assumptions)


__all__ = ["fleet", "FleetResult", "OPTION_KEYS", "option_dict"]


import sys as _sys  # noqa: E402


class _CallablePackage(type(_sys.modules[__name__])):
    """``bs.fleet(...)`` is this package called: :func:`fleet` (as ``bs.plan(...)``)."""

    def __call__(self, **fields: Any) -> FleetResult:
        return fleet(**fields)


_sys.modules[__name__].__class__ = _CallablePackage
