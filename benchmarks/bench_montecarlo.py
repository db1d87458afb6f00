"""Monte Carlo speed of ``billshape plan``: 1,000,000 samples x 60 months of the demo's largest scenario.

Targets (issue 5): under 5 s on 2 cores, at least 100x faster than a plain per-sample Python loop over the same
model (timed on a subsample in the same run and scaled), peak memory under 2 GB. The loop is also a cross-check:
its outcomes must equal the vectorised ones on the subsample.

The loop is :func:`billshape.scenario.loop_summaries`: plain Python floats, per-sample set-up, then one pass over
the months carrying users, price multipliers and the discount factor by repeated multiplication (no numpy in
the loop, no per-month ``pow``); sample-independent schedules are hoisted out of it, as a hand-written loop would.
Its inputs are converted to Python floats before the clock starts. It is timed on ``--loop-samples`` samples and
scaled linearly to ``--samples`` (its cost per sample does not depend on the sample count). Both are timed
``--repeats`` times in the same run and the minimum of each is reported (the machine is shared: the minimum is
the least disturbed run), with the load average before and after.

Run: ``PYTHONPATH=src python benchmarks/bench_montecarlo.py [--samples N] [--loop-samples M]``. Prints one JSON
object; exits 1 if a target is missed. Not a unit test: timings flake on shared machines.
"""

from __future__ import annotations

import argparse
import json
import math  # noqa: F401
import os
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--loop-samples", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of each; the minimum is reported")
    args = ap.parse_args()
    path = scenario.examples_dir() / SCENARIO
    plan = scenario.load(path)
    plan.evaluate(samples=1000)  # warm-up (imports, caches)

    load_before = os.getloadavg()
    vec_runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = plan.evaluate(samples=args.samples, seed=0)
        vec_runs.append(time.perf_counter() - t0)
    vec_seconds = min(vec_runs)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    tracemalloc.start()  # a second run for the peak of numpy's allocations (tracing slows it down)
    plan.evaluate(samples=args.samples, seed=0)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # the loop baseline on a subsample, and the cross-check against the vectorised model on the same draws
    n = args.loop_samples
    draws = plan._draw(np.random.default_rng(7), n)
    rows = [{k: (float(v[i, 0]) if isinstance(v, np.ndarray) else v) for k, v in draws.items()} for i in range(n)]
    loop_runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        loop = [scenario.loop_summaries(plan, r) for r in rows]
        loop_runs.append((time.perf_counter() - t0) / n * args.samples)
    loop_seconds = min(loop_runs)
    vec = plan._summaries(draws)
    full = plan._simulate(draws)
    worst = 0.0
    for key in scenario.SUMMARY_KEYS + scenario.EXTRA_KEYS:
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
        "vectorised_runs_seconds": [round(t, 3) for t in vec_runs],
        "loop_runs_seconds_scaled": [round(t, 1) for t in loop_runs],
        "load_average_1min_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
        "loop_seconds_scaled": round(loop_seconds, 1), "loop_subsample": n,
        "loop_microseconds_per_sample": round(loop_seconds / args.samples * 1e6, 2),
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
