"""Start-up time of ``billshape --help`` (target: under 0.4 s), against bare ``python -c pass`` in the same run.

Run: ``python benchmarks/bench_startup.py [--runs N]``. Prints a JSON object with medians and the ratio; exits 1
if the median is over the target. Not a unit test: timings flake on shared machines.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

TARGET_SECONDS = 0.4


def timed(cmd: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    exe = shutil.which("billshape")
    cli = [exe, "--help"] if exe else [sys.executable, "-m", "billshape", "--help"]
    timed(cli, 2)  # warm the file cache
    base = timed([sys.executable, "-c", "pass"], args.runs)
    help_ = timed(cli, args.runs)
    med_base, med_help = statistics.median(base), statistics.median(help_)
    result = {
        "command": " ".join(cli),
        "runs": args.runs,
        "median_seconds": round(med_help, 4),
        "min_seconds": round(min(help_), 4),
        "baseline_python_median_seconds": round(med_base, 4),
        "ratio_vs_bare_python": round(med_help / med_base, 2),
        "target_seconds": TARGET_SECONDS,
        "ok": med_help < TARGET_SECONDS,
    }
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
