"""Start-up time of the CLI against bare ``python -c pass``, all measured in the same run.

Targets (ratios, so that they hold on fast and slow machines alike):

* ``billshape --help``: at most 12x ``python -c pass``;
* ``billshape train --gpu a100 --gpus 280 --days 14 --price 2.5 --json``: at most 8x ``python -c pass``.

Run: ``python benchmarks/bench_startup.py [--runs N]``. Prints one JSON object (medians, ratios, an ``ok`` flag per
target; the top-level keys describe ``--help`` as before) and exits 1 if a target is missed. The commands run
with bytecode caching on, in a private cache directory, as after a normal install (a ``PYTHONDONTWRITEBYTECODE``
environment would otherwise recompile billshape's modules in every process). Not a unit test: timings flake on
shared machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_SECONDS = 0.4  # the old absolute target for --help, still reported
HELP_TARGET_RATIO = 12.0
TRAIN_TARGET_RATIO = 8.0
TRAIN_ARGS = ["train", "--gpu", "a100", "--gpus", "280", "--days", "14", "--price", "2.5", "--json"]


def timed(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    exe = shutil.which("billshape")
    prefix = [exe] if exe else [sys.executable, "-m", "billshape"]
    commands = {"python": [sys.executable, "-c", "pass"], "help": prefix + ["--help"], "train": prefix + TRAIN_ARGS}
    with tempfile.TemporaryDirectory(prefix="billshape-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for cmd in commands.values():
            timed(cmd, 2, env)  # warm the file cache and the bytecode cache
        samples: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so that a busy moment hits every command alike
            for name, cmd in commands.items():
                samples[name] += timed(cmd, 1, env)
    med = {name: statistics.median(v) for name, v in samples.items()}
    help_ratio, train_ratio = med["help"] / med["python"], med["train"] / med["python"]
    result = {
        "command": " ".join(commands["help"]),
        "runs": args.runs,
        "median_seconds": round(med["help"], 4),
        "min_seconds": round(min(samples["help"]), 4),
        "baseline_python_median_seconds": round(med["python"], 4),
        "ratio_vs_bare_python": round(help_ratio, 2),
        "target_seconds": TARGET_SECONDS,
        "targets": {
            "help": {"command": " ".join(commands["help"]), "median_seconds": round(med["help"], 4),
                     "ratio_vs_bare_python": round(help_ratio, 2), "target_ratio": HELP_TARGET_RATIO,
                     "ok": help_ratio <= HELP_TARGET_RATIO},
            "train": {"command": " ".join(commands["train"]), "median_seconds": round(med["train"], 4),
                      "ratio_vs_bare_python": round(train_ratio, 2), "target_ratio": TRAIN_TARGET_RATIO,
                      "ok": train_ratio <= TRAIN_TARGET_RATIO},
        },
    }
    result["ok"] = all(t["ok"] for t in result["targets"].values())
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
