"""Monte Carlo speed of ``billshape plan``: 1,000,000 samples x 60 months of the demo's largest scenario.

Targets (issue 5): under 5 s on 2 cores, at least 100x faster than a plain per-sample Python loop over the same
model (timed on a subsample in the same run and scaled), peak memory under 2 GB. The loop is also a cross-check:
its outcomes must equal the vectorised ones on the subsample.

Run: ``PYTHONPATH=src python benchmarks/bench_montecarlo.py [--samples N] [--loop-samples M]``. Prints one JSON
object; exits 1 if a target is missed. Not a unit test: timings flake on shared machines.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
import tracemalloc

import numpy as np

from billshape import scenario

SCENARIO = "high_volume_self_host.yaml"
TARGET_SECONDS = 5.0
TARGET_RATIO = 100.0
TARGET_PEAK_BYTES = 2 * 1024**3


def loop_model(plan: scenario.Plan, p: dict[str, float]) -> dict[str, float]:
    """The plan's model for ONE sample, as a plain Python loop over months (the baseline)."""
    sc = plan.scenario
    H = sc.horizon_months
    g = p.get
    req = g("product.requests_per_user_month", 0.0)
    t_in = g("product.input_tokens_per_request", 0.0)
    t_out = g("product.output_tokens_per_request", 0.0) * g("product.reasoning_multiplier", 1.0)
    h = g("product.cache_hit_rate", 0.0)
    api_pu = own_pu = 0.0
    fixed = sum(g(f"fixed_monthly.{k}", 0.0) for k in scenario.FixedMonthly.model_fields)
    setup = 0.0
    for r in plan.routes:
        pre = r.prefix
        if r.kind == "api":
            a_in = g(pre + ".usd_per_million_input_tokens", r.api.input)
            a_out = g(pre + ".usd_per_million_output_tokens", r.api.output)
            a_cache = g(pre + ".usd_per_million_cached_input_tokens", r.api.cached_input)
        elif r.kind == "measured":
            a_in, a_out = g(pre + ".usd_per_million_input_tokens"), g(pre + ".usd_per_million_output_tokens")
            a_cache = g(pre + ".usd_per_million_cached_input_tokens", a_in)
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
    for path in plan.training_scale_paths:
        v = plan.values[path]
        if isinstance(v, scenario.Dist):
            bill *= g(path) / v.ppf(0.5)
    t = sc.training
    frac = g("training.retrain_cost_fraction", 1.0)
    api_trend = g("market.api_price_trend_annual", 1.0)
    gpu_trend = g("market.gpu_price_trend_annual", 1.0)
    steps = [(s.month, g(f"market.api_price_steps[{i}].factor")) for i, s in enumerate(sc.market.api_price_steps)]
    rate = g("discount_rate_annual")
    users = g("product.users_start")
    ratio = 1 + g("product.growth_monthly", 0.0) - g("product.churn_monthly", 0.0)
    price, var = g("product.price_per_user_month_usd"), g("product.variable_cost_per_user_month_usd", 0.0)
    upfront = bill + setup
    cum, npv, contrib_sum, user_months, last_neg = -upfront, -upfront, 0.0, 0.0, (-1 if upfront <= 0 else 0)
    cums, cashes, users_by_month, amort_sum = [], [], [], 0.0
    A = t.amortization_months if t else 1
    R = t.retrain_every_months if t else 0
    for m in range(1, H + 1):
        k_api = api_trend ** ((m - 1) / 12)
        for month, f in steps:
            if m >= month:
                k_api *= f
        k_gpu = gpu_trend ** ((m - 1) / 12)
        inference = users * (api_pu * k_api + own_pu * k_gpu)
        contribution = users * (price - var) - inference
        retrain = bill * frac if (R and m > 1 and (m - 1) % R == 0) else 0.0
        cash = contribution - fixed - retrain
        cum += cash
        npv += cash * (1 + rate) ** (-m / 12)
        if cum < 0:
            last_neg = m
        amort_sum += bill / A if m <= A else 0.0
        if R:
            amort_sum += sum(bill * frac / A for s in range(R, H, R) if s < m <= s + A)
        contrib_sum += contribution
        user_months += users
        cums.append(cum)
        cashes.append(cash)
        users_by_month.append(users)
        users *= ratio
    if upfront <= 0 and last_neg == -1:
        payback = 0.0
    elif last_neg == H:
        payback = math.inf
    else:
        before = cums[last_neg - 1] if last_neg > 0 else -upfront
        payback = last_neg + min(max(-before, 0.0) / cashes[last_neg], 1.0) if before < 0 else float(last_neg)
    return {"npv_usd": npv, "cumulative_profit_usd": cum, "payback_month": payback,
            "contribution_margin_per_user_month_usd": contrib_sum / user_months,
            "fully_loaded_margin_per_user_month_usd": (contrib_sum - fixed * H - setup - amort_sum) / user_months}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--loop-samples", type=int, default=2000)
    args = ap.parse_args()
    path = scenario.examples_dir() / SCENARIO
    plan = scenario.load(path)
    plan.evaluate(samples=1000)  # warm-up (imports, caches)

    t0 = time.perf_counter()
    res = plan.evaluate(samples=args.samples, seed=0)
    vec_seconds = time.perf_counter() - t0
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    tracemalloc.start()  # a second run for the peak of numpy's allocations (tracing slows it down)
    plan.evaluate(samples=args.samples, seed=0)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # the loop baseline on a subsample, and the cross-check against the vectorised model on the same draws
    n = args.loop_samples
    draws = plan._draw(np.random.default_rng(7), n)
    rows = [{k: (float(v[i, 0]) if isinstance(v, np.ndarray) else v) for k, v in draws.items()} for i in range(n)]
    t0 = time.perf_counter()
    loop = [loop_model(plan, r) for r in rows]
    loop_seconds = (time.perf_counter() - t0) / n * args.samples
    vec = plan._summaries(draws)
    full = plan._simulate(draws)
    worst = 0.0
    for key in ("npv_usd", "cumulative_profit_usd", "contribution_margin_per_user_month_usd",
                "fully_loaded_margin_per_user_month_usd", "payback_month"):
        a = np.array([x[key] for x in loop])
        b = np.asarray(vec[key])
        assert np.allclose(b, full[key], rtol=1e-10, atol=1e-6, equal_nan=True), key
        both = np.isfinite(a) & np.isfinite(b)
        assert np.array_equal(np.isfinite(a), np.isfinite(b)), key
        worst = max(worst, float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1.0))))
    ratio = loop_seconds / vec_seconds
    result = {
        "scenario": SCENARIO, "samples": args.samples, "months": plan.scenario.horizon_months,
        "uncertain_inputs": len(plan.uncertain()),
        "vectorised_seconds": round(vec_seconds, 3),  # end to end: draws, model, quantiles, tornado, charts data
        "loop_seconds_scaled": round(loop_seconds, 1), "loop_subsample": n,
        "ratio_loop_over_vectorised": round(ratio, 1),
        "threads": scenario.WORKERS,
        "peak_rss_bytes": rss_peak, "peak_traced_numpy_bytes": traced_peak,
        "loop_vs_vectorised_max_rel_diff": worst,
        "npv_p50_usd": res.summary["npv_usd"]["p50"],
        "targets": {"seconds": TARGET_SECONDS, "ratio": TARGET_RATIO, "peak_bytes": TARGET_PEAK_BYTES},
    }
    result["ok"] = bool(vec_seconds < TARGET_SECONDS and ratio >= TARGET_RATIO and rss_peak < TARGET_PEAK_BYTES
                        and worst < 1e-9)
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
