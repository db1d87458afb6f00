"""The benchmarks still run (at toy sizes; their targets are judged only at full size, by hand, per README).

Each script is run as the README runs it and must print one JSON object with its figures; the Monte Carlo one
also cross-checks the vectorised model against the plain loop on its subsample, which must hold at any size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: a target missed (toy sizes), never a crash
    return json.loads(proc.stdout)


def test_montecarlo_benchmark_runs_and_the_loop_agrees():
    out = run("bench_montecarlo.py", "--samples", "90000", "--loop-samples", "200", "--repeats", "1")
    assert out["samples"] == 90000 and out["months"] == 60 and out["uncertain_inputs"] == 10
    assert out["loop_vs_vectorised_max_rel_diff"] < 1e-9
    for key in ("end_to_end_seconds", "model_seconds", "loop_seconds_scaled", "ratio_model", "ratio_end_to_end"):
        assert out[key] > 0, key


def test_solver_benchmark_runs():
    out = run("bench_solvers.py", "--cases", "200", "--baseline-cases", "20")
    assert "ok" in out


@pytest.mark.slow
def test_usage_benchmark_runs(tmp_path):
    out = run("bench_usage.py", "--rows", "20000", "--runs", "1", "--ingest-rows", "20000", "--dir", str(tmp_path))
    assert out["groups"] > 0


def test_startup_benchmark_runs():
    out = run("bench_startup.py", "--runs", "2")
    assert out["median_seconds"] > 0 and "ok" in out
