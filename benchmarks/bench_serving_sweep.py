"""10,000 serving configurations with validation and cost: ``serving_sweep.sweep`` vs ``serving.serve`` per case.

The configurations are random (seeded) deployments of one model on one GPU: GPUs in {1, 2, 4, 8, 16}, tensor
parallelism in {default, 1, 2, 4, 8}, 64-16,000 input and 16-4,000 output tokens, batch "max" or 1-2,048, priced
at $2.50/GPU-hour; about a third are refused (memory, head divisibility, batch too large), as in a real search.
The scalar baseline calls ``serve`` (catching its refusals) on a subsample (``--scalar-cases``) and is scaled to N,
in the same run; the sweep's answers are checked against it (max relative difference, refusal fields).

Target (issue 12 item 8): the 10,000-case sweep in under 0.5 s on 2 cores (``TARGET_SECONDS``).
Run: ``PYTHONPATH=src python benchmarks/bench_serving_sweep.py [--cases N] [--scalar-cases M]``; prints one JSON
object; exits 1 if the sweep misses the target or disagrees with ``serve``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

TARGET_SECONDS = 0.5
KEYS = ("output_tokens_per_second", "ttft_seconds", "tpot_seconds", "usd_per_million_output_tokens",
        "usd_per_million_input_tokens")


def configurations(n: int, seed: int = 7, engines: bool = False) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    tp_choices = [None, 1, 2, 4, 8]
    extra = {"engine": [("trtllm", "vllm", "sglang")[i] for i in rng.integers(0, 3, n)]} if engines else {}
    return {**extra,
        "gpus": rng.choice([1, 2, 4, 8, 16], n).tolist(),
        "tp": [tp_choices[i] for i in rng.integers(0, len(tp_choices), n)],
        "input_tokens": rng.integers(64, 16_000, n).tolist(),
        "output_tokens": rng.integers(16, 4_000, n).tolist(),
        "batch": [None if r < 0.5 else int(b) for r, b in zip(rng.random(n), rng.integers(1, 2049, n))],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--scalar-cases", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="llama-3.1-70b")
    ap.add_argument("--gpu", default="h100")
    ap.add_argument("--precision", default="fp8")
    ap.add_argument("--engines", action="store_true", help="each configuration on a random engine (trtllm, vllm, "
                    "sglang): one roofline group per engine")
    args = ap.parse_args(argv)

    from billshape import serving
    from billshape.errors import BillshapeInputError
    from billshape.serving_sweep import sweep

    cfg = configurations(args.cases, engines=args.engines)
    kw = dict(model=args.model, gpu=args.gpu, precision=args.precision, price=2.5)
    sweep(**kw, **{k: v[:10] for k, v in cfg.items()})  # warm the catalogs (as the scalar loop's first call does)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        s = sweep(**kw, **cfg)
        times.append(time.perf_counter() - t0)
    sweep_s = float(np.median(times))

    m = min(args.scalar_cases, args.cases)
    serving.serve(model=args.model, gpu=args.gpu, precision=args.precision, gpus=16, price=2.5)  # warm
    worst, field_mismatch, refused = 0.0, 0, 0
    t0 = time.perf_counter()
    answers = []
    for j in range(m):
        try:
            e = serving.serve(**kw, gpus=cfg["gpus"][j], tp=cfg["tp"][j], input_tokens=cfg["input_tokens"][j],
                              output_tokens=cfg["output_tokens"][j],
                              batch="max" if cfg["batch"][j] is None else cfg["batch"][j],
                              engine=cfg["engine"][j] if args.engines else None)
            answers.append(e)
        except BillshapeInputError as exc:
            answers.append(exc)
    scalar_s = (time.perf_counter() - t0) * args.cases / m
    for j, a in enumerate(answers):
        if isinstance(a, BillshapeInputError):
            refused += 1
            field_mismatch += int(bool(s.valid[j]) or s.field[j] != a.field)
            continue
        if not s.valid[j]:
            field_mismatch += 1
            continue
        for k in KEYS:
            worst = max(worst, abs(s.columns[k][j] / getattr(a, k) - 1.0))
    out = {
        "cases": args.cases, "engines": "mixed" if args.engines else "trtllm", "model": args.model, "gpu": args.gpu, "precision": args.precision,
        "valid_share": round(float(s.valid.mean()), 4),
        "sweep_seconds": round(sweep_s, 5), "target_seconds": TARGET_SECONDS,
        "scalar_cases_timed": m, "scalar_seconds_scaled": round(scalar_s, 3),
        "ratio_scalar_over_sweep": round(scalar_s / sweep_s, 1),
        "checked_cases": m, "refused_in_checked": refused,
        "max_rel_diff_vs_serve": worst, "refusal_mismatches": field_mismatch,
        "ok": bool(sweep_s <= TARGET_SECONDS and worst < 1e-9 and field_mismatch == 0),
    }
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
