"""The Monte Carlo benchmark's baseline: the plan's P&L for ONE sample as a plain Python loop over the months.

Not part of the library: an independent, deliberately plain writing of the model of
:mod:`billshape.plan.cashflow` (per-sample set-up, then one pass over the months carrying the users, the price
multipliers and the discount factor by repeated multiplication), timed by ``bench_montecarlo.py`` against the
vectorised hot path and used by the tests as a reference (``tests/test_scenario.py``).
Import it with ``benchmarks/`` on ``sys.path`` (the tests' ``conftest.py`` puts it there).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from billshape.plan.dists import Dist
from billshape.plan.model import Plan
from billshape.plan.schema import FixedMonthly


def _loop_schedule(plan) -> dict[str, Any]:
    """Sample-independent schedules for :func:`loop_summaries` (computed once per plan, as a hand-written loop
    would hoist them)."""
    if getattr(plan, "_sched", None) is None:
        H = plan.scenario.horizon_months
        init, re_am, re_cash = plan._training_patterns(H)
        plan._sched = {
            "retrain_months": {int(m) + 1: float(re_cash[m]) for m in np.nonzero(re_cash)[0]},
            "init_amort": float(init.sum()), "re_amort": float(re_am.sum()), "re_cash": float(re_cash.sum()),
            "steps": [(i, st.month) for i, st in enumerate(plan.scenario.market.api_price_steps) if st.month <= H],
            "bill_scale": [(p, plan.values[p].ppf(0.5)) for p in plan.training_scale_paths
                           if isinstance(plan.values[p], Dist) and plan.values[p].ppf(0.5) > 0],
        }
    return plan._sched


def loop_summaries(plan: Plan, p: dict[str, float]) -> dict[str, float]:
    """The plan's model for ONE sample as a plain Python loop over the months (reference and benchmark baseline).

    ``p`` maps YAML paths to Python floats (one draw). Written as one would by hand, without numpy: per-sample
    setup (route costs, the training bill), then one pass over the months carrying the users, the price
    multipliers and the discount factor by repeated multiplication. Sample-independent schedules (which months
    retrain, amortisation shares) are computed once per plan, as a hand-written loop would hoist them. A test
    checks that it equals the vectorised :meth:`Plan._summaries` (:func:`billshape.plan.cashflow.summary_pnl`).
    """
    sc = plan.scenario
    H = sc.horizon_months
    sched = _loop_schedule(plan)
    g = p.get
    req = g("product.requests_per_user_month", 0.0)
    t_in = g("product.input_tokens_per_request", 0.0)
    t_out = g("product.output_tokens_per_request", 0.0) * g("product.reasoning_multiplier", 1.0)
    h = g("product.cache_hit_rate", 0.0)
    api_pu = own_pu = 0.0
    fixed = 0.0
    for k in FixedMonthly.model_fields:
        fixed += g("fixed_monthly." + k, 0.0)
    system = 0.0  # staff, monitoring, data pipelines, evaluation, on-call
    for k in ("staff_usd", "monitoring_usd", "data_pipelines_usd", "evaluation_usd", "on_call_usd"):
        system += g("fixed_monthly." + k, 0.0)
    for i in range(len(sc.fixed_monthly.staff or [])):  # staff as people: headcount x loaded cost per year / 12
        people = g(f"fixed_monthly.staff[{i}].headcount") * g(f"fixed_monthly.staff[{i}].loaded_usd_per_year") / 12
        fixed += people
        system += people
    setup = 0.0
    fleets = []  # (requests per user-month on the route, requests/s per replica, GPUs, price, peak/mean, min, fixed, h)
    for r in plan.routes:
        pre = r.prefix
        if r.fleet is not None:
            f = r.fleet
            c = f["replica_requests_per_second"]
            if c is None:
                c = g(f["capacity_path"]) / t_out
            fleets.append((req * r.share, c, f["gpus_per_replica"], g(pre + ".usd_per_gpu_hour"),
                           g(pre + ".peak_to_mean"), g(pre + ".min_replicas", 1.0), f["replicas"], f["hours_per_month"]))
            fixed += g(pre + ".fixed_monthly_usd", 0.0)
            setup += g(pre + ".setup_usd", 0.0)
            continue
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
    fleet_usd = fleet_hours = served = provisioned = 0.0
    last_neg = 0
    cum_before_last = -upfront  # cumulative cash before the month after the last month in the red
    cash_after_last = 0.0
    users_after_last = users
    retrain_months = sched["retrain_months"]
    for m in range(1, H + 1):
        if m in step_at:
            k_api *= step_at[m]
        inference = users * (api_pu * k_api + own_pu * k_gpu)
        for q_share, c, gpus, gpu_price, x, n_min, n_fixed, hours in fleets:
            lam = users * q_share / (3600 * hours)
            n_rep = n_fixed if n_fixed is not None else max(n_min, math.ceil(lam * x / c * (1 - 1e-12)))
            rent = n_rep * gpus * hours * gpu_price * k_gpu
            inference += rent
            fleet_usd += rent
            fleet_hours += n_rep * gpus * hours
            served += lam
            provisioned += n_rep * c
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
            "system_share_of_lifetime_cost": (system * H / (system * H + denom) if system * H + denom > 0
                                              else math.nan),
            "lifetime_revenue_usd": revenue, "lifetime_inference_usd": inference_sum,
            "lifetime_training_usd": training_total, "lifetime_fixed_usd": fixed_total, "upfront_usd": upfront,
            **({"lifetime_self_hosted_utilization": served / provisioned, "lifetime_self_hosted_usd": fleet_usd,
                "lifetime_self_hosted_gpu_hours": fleet_hours} if fleets else {})}
