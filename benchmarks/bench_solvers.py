"""10,000-case sweeps of the decision solvers, vectorised vs a per-case Python loop, in the same run.

Solvers: inference-aware sizing (vectorised Newton along the iso-loss curve vs scipy ``minimize_scalar`` per
case), capacity reserved level (sorted-profile rule over a price sweep vs brute force per case), and build vs
buy over 36 months (one array call vs one call per case). Target: each vectorised sweep of 10,000 cases in
about a second (``TARGET_SECONDS``). Run: ``PYTHONPATH=src python benchmarks/bench_solvers.py [--cases N]``;
prints one JSON object; exits 1 if a vectorised sweep misses the target or disagrees with the baseline.
The per-case baselines run on a subset (``--baseline-cases``) and are scaled to N cases.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

TARGET_SECONDS = 1.0


def _time(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench_sizing(n, n_base, rng):
    from scipy.optimize import minimize_scalar

    from billshape import scaling as sc

    k = sc.constant_set("sardana-2024").as_kwargs()
    losses = rng.uniform(1.8, 3.0, n)
    dinf = 10 ** rng.uniform(9, 15, n)
    vec_s, (nv, dv) = _time(lambda: sc.inference_aware_optimum(losses, dinf, **k))

    def one(lt, di):
        gap = lt - k["E"]
        n_min = (k["A"] / gap) ** (1 / k["alpha"])

        def total(log_n):
            nn = np.exp(log_n)
            d = (k["B"] / (gap - k["A"] / nn ** k["alpha"])) ** (1 / k["beta"])
            return np.log(6 * nn * d + 2 * nn * di)

        r = minimize_scalar(total, bounds=(np.log(n_min) + 1e-9, np.log(n_min) + 12), method="bounded",
                            options={"xatol": 1e-10})
        return np.exp(r.x)

    t0 = time.perf_counter()
    nb = np.array([one(losses[i], dinf[i]) for i in range(n_base)])
    loop_s = (time.perf_counter() - t0) * n / n_base
    max_rel_diff = float(np.max(np.abs(nb / nv[:n_base] - 1)))
    max_loss_err = float(np.max(np.abs(sc.loss(nv, dv, **k) - losses)))
    return {"vectorised_s": vec_s, "loop_s_scaled": loop_s, "speedup": loop_s / vec_s,
            "max_rel_diff_params_vs_scipy": max_rel_diff, "max_loss_error": max_loss_err,
            "ok": vec_s < TARGET_SECONDS and max_rel_diff < 1e-4 and max_loss_err < 1e-9}


def bench_capacity(n, n_base, rng):
    from billshape.decide import optimal_reserved_level, tiered_cost_usd

    hours = np.arange(168)
    demand = np.round(8 + 12 * np.clip(np.sin(np.pi * ((hours % 24) - 7) / 14), 0, None))
    r = rng.uniform(0.5, 3.0, n)
    o = r + rng.uniform(0.01, 5.0, n)
    vec_s, lv = _time(lambda: optimal_reserved_level(demand, r, o))
    levels = np.arange(0, demand.max() + 1)

    def one(ri, oi):
        costs = [float(tiered_cost_usd(demand, lvl, ri, oi)) for lvl in levels]
        return levels[int(np.argmin(costs))]

    t0 = time.perf_counter()
    lb = np.array([one(r[i], o[i]) for i in range(n_base)])
    loop_s = (time.perf_counter() - t0) * n / n_base
    cost_v = tiered_cost_usd(demand, lv[:n_base], r[:n_base], o[:n_base])
    cost_b = tiered_cost_usd(demand, lb, r[:n_base], o[:n_base])
    agree = bool(np.all(cost_v <= cost_b * (1 + 1e-12) + 1e-9))
    return {"vectorised_s": vec_s, "loop_s_scaled": loop_s, "speedup": loop_s / vec_s,
            "cost_matches_brute_force": agree, "ok": vec_s < TARGET_SECONDS and agree}


def bench_horizon(n, n_base, rng):
    from billshape.decide import horizon_cashflows

    fixed = rng.uniform(0, 5e6, n)
    p = rng.uniform(1, 30, n) / 1e6
    c = rng.uniform(0.1, 10, n) / 1e6
    vol = 10 ** rng.uniform(8, 11, n)
    f = rng.uniform(0.1, 1.5, n)
    vec_s, out = _time(lambda: horizon_cashflows(fixed, p, c, vol, 36, 0.02, f, 1.0, 0.08))
    t0 = time.perf_counter()
    npv = np.array([float(horizon_cashflows(fixed[i], p[i], c[i], vol[i], 36, 0.02, f[i], 1.0, 0.08)["npv_saving_usd"])
                    for i in range(n_base)])
    loop_s = (time.perf_counter() - t0) * n / n_base
    agree = bool(np.allclose(npv, out["npv_saving_usd"][:n_base], rtol=1e-12, atol=1e-6))
    return {"vectorised_s": vec_s, "loop_s_scaled": loop_s, "speedup": loop_s / vec_s, "matches_loop": agree,
            "ok": vec_s < TARGET_SECONDS and agree}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--baseline-cases", type=int, default=500)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    nb = min(args.baseline_cases, args.cases)
    result = {"cases": args.cases, "baseline_cases": nb, "target_seconds": TARGET_SECONDS,
              "sizing": bench_sizing(args.cases, nb, rng), "capacity": bench_capacity(args.cases, nb, rng),
              "horizon": bench_horizon(args.cases, nb, rng)}
    result["ok"] = all(result[k]["ok"] for k in ("sizing", "capacity", "horizon"))
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
