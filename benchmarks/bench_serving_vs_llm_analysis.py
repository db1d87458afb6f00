"""Side by side: billshape's serving model vs llm-analysis on the calibration, validation and engine cases (with
AMD's MI300X vLLM rows, M01-M40).

Run: ``PYTHONPATH=src python benchmarks/bench_serving_vs_llm_analysis.py``.

llm-analysis (PyPI ``llm-analysis==0.2.2``) needs its own interpreter: it is NOT a billshape dependency. Install it
into a separate virtualenv (``python -m venv /work/llma-venv && /work/llma-venv/bin/pip install llm-analysis==0.2.2``)
and point ``LLM_ANALYSIS_PYTHON`` at that interpreter (default ``/work/llma-venv/bin/python``). Without it the script
prints billshape's errors and a message saying llm-analysis was skipped.

llm-analysis runs offline: its model, GPU and dtype configs are built directly from billshape's catalogs (no
Hugging Face Hub look-up), with its own default efficiencies. It has no continuous batching, so max-load cases
are given the batch billshape computes; MoE cases use its ``moe_num_experts``/``moe_top_k``. Prints one JSON object
with a row per case and the mean absolute percentage error (MAPE) of each tool. A case llm-analysis cannot
express (``not_expressible``: MLA, KV-head replication, d_h != d/h, EP, length distributions, ...) is listed with
the reason instead of a number, never dropped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from billshape import catalog, serving

LLMA_PYTHON = os.environ.get("LLM_ANALYSIS_PYTHON", "/work/llma-venv/bin/python")

# Runs inside the llm-analysis interpreter: reads case configs from stdin, prints output tokens/s per GPU.
LLMA_SNIPPET = r'''
import json, sys, logging
logging.disable(logging.CRITICAL)
from llm_analysis.analysis import LLMAnalysis
from llm_analysis.config import ModelConfig, GPUConfig, DtypeConfig, ParallelismConfig
out = []
for c in json.load(sys.stdin):
    m = ModelConfig(name=c["model"], num_layers=c["layers"], n_head=c["heads"], hidden_dim=c["hidden"],
                    vocab_size=c["vocab"], num_key_value_heads=c["kv_heads"], expansion_ratio=c["ffn"] / c["hidden"],
                    moe_num_experts=c["experts"], moe_top_k=c["top_k"])
    g = GPUConfig(name=c["gpu"], mem_per_GPU_in_GB=c["mem_gb"], hbm_bandwidth_in_GB_per_sec=c["bw_gbs"],
                  intra_node_bandwidth_in_GB_per_sec=c["link_gbs"], intra_node_min_message_latency=8e-6,
                  peak_fp16_TFLOPS=c["bf16_tflops"], peak_i8_TFLOPS=c["low_tflops"])
    bits = c["bits"]
    d = DtypeConfig(name=f"w{bits}a{bits}e16", weight_bits=bits, activation_bits=bits, embedding_bits=16)
    a = LLMAnalysis(m, g, d, ParallelismConfig(tp_size=c["tp"]))
    try:
        r = a.inference(batch_size_per_gpu=c["batch"], seq_len=c["input"], num_tokens_to_generate=c["output"],
                        kv_cache_dtype_bytes=c["kv_bytes"])
        tps = c["batch"] * c["output"] / r["total_latency"] / c["tp"]
        out.append({"id": c["id"], "per_gpu": tps, "weights_gb": r["weight_memory_per_gpu"] * c["tp"] / 1e9})
    except Exception as exc:  # llm-analysis asserts when a batch does not fit its memory model
        out.append({"id": c["id"], "per_gpu": None, "error": f"{type(exc).__name__}: {exc}"[:120]})
print(json.dumps(out))
'''


def llma_inputs(case: serving.Case) -> dict:
    arch = serving.architecture(case.model)
    acc = catalog.gpu(case.gpu)
    pred = serving.predict_case(case)
    batch = int(float(pred["roofline"]["batch"]))
    low = acc.fp8_dense_flops_per_second or acc.int8_dense_ops_per_second
    return {
        "id": case.id, "model": arch.name, "layers": int(arch.layers), "heads": int(arch.heads),
        "hidden": int(arch.hidden_size), "vocab": int(arch.vocab_size), "kv_heads": int(arch.kv_heads),
        "ffn": float(arch.ffn_size or arch.moe_ffn_size), "experts": int(arch.experts_routed or 1),
        "top_k": int(arch.experts_per_token or 1), "gpu": acc.name, "mem_gb": acc.memory_gb,
        "bw_gbs": acc.memory_bytes_per_second / 1e9, "link_gbs": (acc.interconnect_bytes_per_second or 1.28e11) / 2e9,
        "bf16_tflops": acc.bf16_dense_flops_per_second / 1e12, "low_tflops": low / 1e12,
        "bits": 16 if case.precision in ("bf16", "fp16") else 8, "kv_bytes": 2 if case.kv_precision in ("bf16", "fp16") else 1,
        "tp": int(case.tensor_parallel), "batch": batch, "input": int(case.input_tokens), "output": int(case.output_tokens),
    }


def not_expressible(case: serving.Case) -> str | None:
    """Why llm-analysis 0.2.2 cannot express a case (None when it can): it ties the head dimension to d / h, has
    no latent (MLA) KV, shared experts, mixed dense/MoE layers, expert parallelism, KV-head replication, sliding
    windows or length distributions, and takes one batch of one length (no continuous batching)."""
    arch = serving.architecture(case.model)
    why = []
    if arch.attention == "mla":
        why.append("MLA (latent KV cache)")
    elif arch.heads * arch.head_dim != arch.hidden_size:
        why.append(f"attention width h x d_h = {arch.heads * arch.head_dim:g} != d = {arch.hidden_size:g} "
                   "(llm-analysis ties d_h = d / h)")
    if arch.is_moe and arch.experts_shared:
        why.append("shared experts")
    if arch.is_moe and arch.dense_layers:
        why.append("dense and MoE layers mixed")
    if case.expert_parallel > 1 or case.attention_dp:
        why.append("expert parallelism / attention-DP")
    if serving.kv_replication(arch, case.tensor_parallel, bool(case.attention_dp)) > 1 and arch.attention != "mla":
        why.append(f"KV heads replicated at TP {case.tensor_parallel:g} ({arch.kv_heads:g} KV heads)")
    if arch.has_window:
        why.append("sliding-window layers")
    if case.lengths:
        why.append(f"a length distribution ({case.lengths}: llm-analysis takes one length)")
    return "; ".join(why) or None


def run_llm_analysis(cases) -> tuple[dict, str | None]:
    if not os.path.exists(LLMA_PYTHON):
        return {}, f"llm-analysis skipped: no interpreter at {LLMA_PYTHON} (set LLM_ANALYSIS_PYTHON)"
    probe = subprocess.run([LLMA_PYTHON, "-c", "import llm_analysis"], capture_output=True, text=True)
    if probe.returncode != 0:
        return {}, f"llm-analysis skipped: not importable from {LLMA_PYTHON}"
    cases = [c for c in cases if not_expressible(c) is None]
    if not cases:
        return {}, None
    proc = subprocess.run([LLMA_PYTHON, "-c", LLMA_SNIPPET], input=json.dumps([llma_inputs(c) for c in cases]),
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return {}, "llm-analysis failed: " + proc.stderr.strip().splitlines()[-1]
    return {r["id"]: r for r in json.loads(proc.stdout.strip().splitlines()[-1])}, None


def main() -> int:
    sets = {"calibration": serving.cases("serving_calibration.csv"), "validation": serving.cases("serving_validation.csv"),
            "engines": serving.cases("serving_engines_calibration.csv"),
            "engines_validation": serving.cases("serving_engines_validation.csv"),
            "engines_mi300x": serving.cases("serving_engines_mi300x.csv")}
    report: dict = {"tools": ["billshape", "llm-analysis 0.2.2 (default efficiencies)"]}
    for name, cases in sets.items():
        t0 = time.perf_counter()
        ours = {c.id: serving.predict_case(c)["predicted_per_gpu"] for c in cases}
        ours_s = time.perf_counter() - t0
        theirs, skipped = run_llm_analysis(cases)
        rows = []
        for c in cases:
            meas = c.measured_output_tokens_per_second_per_gpu
            row = {"id": c.id, "model": c.model, "gpu": c.gpu, "tp": int(c.tensor_parallel), "mode": c.mode,
                   "engine": c.engine_key,
                   "measured_per_gpu": meas, "billshape_per_gpu": round(ours[c.id], 1),
                   "billshape_error_pct": round(100 * (ours[c.id] / meas - 1), 1)}
            t = theirs.get(c.id)
            why = not_expressible(c)
            if why:
                row["llm_analysis_not_expressible"] = why
            elif t and t.get("per_gpu"):
                row["llm_analysis_per_gpu"] = round(t["per_gpu"], 1)
                row["llm_analysis_error_pct"] = round(100 * (t["per_gpu"] / meas - 1), 1)
                row["llm_analysis_weights_gb"] = round(t["weights_gb"], 1)
            elif t:
                row["llm_analysis_error"] = t.get("error")
            rows.append(row)
        summary = {"billshape_mape_pct": round(float(np.mean([abs(r["billshape_error_pct"]) for r in rows])), 1),
                   "billshape_seconds_all_cases": round(ours_s, 4)}
        theirs_err = [abs(r["llm_analysis_error_pct"]) for r in rows if "llm_analysis_error_pct" in r]
        summary["llm_analysis_not_expressible"] = sum("llm_analysis_not_expressible" in r for r in rows)
        if theirs_err:
            summary["llm_analysis_mape_pct"] = round(float(np.mean(theirs_err)), 1)
            summary["llm_analysis_cases"] = len(theirs_err)
            mine = [abs(r["billshape_error_pct"]) for r in rows if "llm_analysis_error_pct" in r]
            summary["billshape_mape_pct_same_cases"] = round(float(np.mean(mine)), 1)
        if skipped:
            summary["note"] = skipped
            print(skipped, file=sys.stderr)
        report[name] = {"summary": summary, "cases": rows}
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
