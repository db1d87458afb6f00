"""Benchmark: the fleet search (vectorised) against scalar ``serve`` calls, in the same run.

Searches every catalogued GPU x tensor parallel x expert parallel x precision (all five) x engine x provider x
tier for a model and a service level, and times it; then times scalar ``serving.serve`` on a random subsample
of the same configurations (each needs the bisection's ~12 roofline evaluations to find its batch, as the
vectorised search does, and one call per lower operating point) and scales it to the whole grid. The scalar side
leaves out the pricing of each option (the vectorised side includes it), so the ratio is a lower bound. Prints one JSON object; exit 1 when a target is missed
(>= 10,000 options in < 5 s).

    python benchmarks/bench_fleet.py [--model qwen3-30b-a3b] [--scalar-sample 40] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen3-30b-a3b")
    ap.add_argument("--requests-per-second", type=float, default=20.0)
    ap.add_argument("--tpot-limit", type=float, default=0.05)
    ap.add_argument("--ttft-limit", type=float, default=2.0)
    ap.add_argument("--scalar-sample", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    from billshape import serving
    from billshape.errors import BillshapeInputError
    from billshape.fleet import fleet, search
    from billshape.serving_catalog import WEIGHT_PRECISIONS

    kw = dict(model=a.model, requests_per_second=a.requests_per_second, tpot_limit=a.tpot_limit,
              ttft_limit=a.ttft_limit, precision=list(WEIGHT_PRECISIONS))
    fleet(**kw)  # warm the catalogs
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        res = fleet(**kw)
        times.append(time.perf_counter() - t0)
    best_s = min(times)

    arch = serving.architecture(a.model)
    todo, _ = search.grid(arch, tuple(sorted({g["gpu"] for g in [res.best]} | {x.name for x in
                                              serving.catalog.accelerators()})), tuple(WEIGHT_PRECISIONS),
                          search.engines())
    rng = random.Random(0)
    sample = rng.sample(todo, min(a.scalar_sample, len(todo)))
    t0 = time.perf_counter()
    calls = 0
    for g, tp, ep, p, eng in sample:
        # the scalar way: serve at the batch a bisection would try (~12 calls per configuration)
        try:
            top = serving.serve(model=a.model, gpu=g, gpus=tp, tp=tp, ep=ep, precision=p,
                                engine=eng).batch
        except BillshapeInputError:
            calls += 1
            continue
        lo, hi = 1, top
        calls += 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            e = serving.serve(model=a.model, gpu=g, gpus=tp, tp=tp, ep=ep, precision=p, batch=mid, mode="max-load",
                              engine=eng)
            calls += 1
            lo, hi = (mid, hi) if e.tpot_seconds <= a.tpot_limit and e.ttft_seconds <= a.ttft_limit else (lo, mid)
        b = lo // 2
        while b >= 1:  # the lower operating points the search also reports
            serving.serve(model=a.model, gpu=g, gpus=tp, tp=tp, ep=ep, precision=p, batch=b, mode="max-load",
                          engine=eng)
            calls += 1
            b //= 2
    scalar_s = time.perf_counter() - t0
    scaled = scalar_s / len(sample) * len(todo)
    out = {
        "model": a.model, "options_evaluated": res.options_evaluated,
        "configurations_evaluated": res.configurations_evaluated, "roofline_evaluations": res.roofline_evaluations,
        "fleet_seconds": best_s, "options_per_second": res.options_evaluated / best_s,
        "scalar_sample": len(sample), "scalar_serve_calls": calls, "scalar_seconds": scalar_s,
        "scalar_seconds_scaled_to_grid": scaled, "ratio_scalar_over_vectorised": scaled / best_s,
        "target": ">= 10,000 options in < 5 s",
        "ok": res.options_evaluated >= 10_000 and best_s < 5.0,
    }
    print(json.dumps(out, indent=2))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
