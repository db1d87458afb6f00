"""The llm-analysis side-by-side lists the cases llm-analysis cannot express, with the reason (never drops them)."""

import importlib.util
from pathlib import Path

from billshape import serving

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_side", ROOT / "benchmarks" / "bench_serving_vs_llm_analysis.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_not_expressible_names_the_reason():
    b = _bench()
    by_id = {c.id: c for f in ("serving_calibration.csv", "serving_validation.csv", "serving_engines_calibration.csv")
             for c in serving.cases(f)}
    assert b.not_expressible(by_id["C1"]) is None and b.not_expressible(by_id["C4"]) is None  # dense GQA, Mixtral
    why = b.not_expressible(by_id["X04"])
    assert "d_h" in why and "KV heads replicated" in why and "sharegpt" in why
    assert "expert parallelism" in b.not_expressible(by_id["X05"])
    assert "expert parallelism" in b.not_expressible(by_id["V9"])
    mla = by_id["C1"].model_copy(update={"model": "deepseek-v3", "tensor_parallel": 8.0})
    assert "MLA" in b.not_expressible(mla)
    # the engine cases are in the benchmark's sets: each either runs or says why
    assert all(b.not_expressible(c) for c in serving.cases("serving_engines_calibration.csv"))
