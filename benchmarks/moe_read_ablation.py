"""Ablation: MoE expert weight reads at the grouped-GEMM efficiency, at the dense HBM efficiency, or at the
fused_moe kernel's measured streaming bandwidth (docs/serving.md, "MoE expert reads: ablation").

Each variant refits the profiles exactly as ``benchmarks/fit_serving_efficiency.py --write`` would (the vLLM
grouped-GEMM efficiency on X07+X08 only; nothing on the held-out rows), swaps the refitted profile rows in, and
prints every figure the change can move: the nine engine cases, the engine validation rows (OCI MI300X), the
TensorRT-LLM MoE rows (C4, V9), the disaggregated reproductions (LM1, LM2, DS1, DS2), DeepSeek's decode figure
(D01) and the band coverage.

    PYTHONPATH=src python benchmarks/moe_read_ablation.py [--json]
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_serving_efficiency as F  # noqa: E402

from billshape import serving, serving_catalog as sc, serving_disagg as sd  # noqa: E402
from billshape.catalog import numeric_fields, read_rows, typed_row  # noqa: E402

def variants() -> dict[str, tuple]:
    """label -> (``MOE_WEIGHT_READ``, ``MOE_WEIGHT_READ_CLASSES``) of the fit script."""
    trt_bw = F.fit_trtllm(serving.cases("serving_calibration.csv"))["hbm_bandwidth_efficiency"]
    measured = (F.kernel_streaming_fraction()["mean"], F.MEASURED_READ_SOURCE, F.KERNEL_AS_OF)
    dense = (trt_bw, "billshape ablation: expert weights read as dense weights", F.AS_OF)
    return {
        "the model before: expert reads and FLOPs at g": (None, ()),
        "expert reads at the dense HBM efficiency, g on the FLOPs only (moe and mla)": (dense, ("moe", "mla")),
        "expert reads at the measured fused_moe bandwidth, g on the FLOPs only (moe and mla)": (measured, ("moe", "mla")),
        "as C on the moe class only; mla keeps the model before (shipped)": (measured, ("moe",)),
    }


def profile_rows(text: str) -> tuple[sc.ProfileRow, ...]:
    num = numeric_fields(sc.ProfileRow)
    return tuple(typed_row(sc.ProfileRow, r, num) for r in csv.DictReader(io.StringIO(text)))


def deepseek_decode() -> dict:
    (row,) = read_rows("serving_deployments_decode.csv")
    kw = dict(model=row["model"], gpu=row["gpu"], gpus=int(row["gpus"]), tp=int(row["gpus"]),
              ep=int(row["expert_parallel"]), dp_attention=bool(int(row["attention_dp"])),
              redundant_experts=int(row["redundant_experts"]), precision=row["precision"],
              kv_precision=row["kv_precision"], input_tokens=float(row["input_tokens"]),
              output_tokens=float(row["output_tokens"]), cache_hit_rate=float(row["cache_hit_rate"]),
              speculative=row["speculative"], draft_tokens=int(row["draft_tokens"]), mode="static")
    fits = serving.serve(**kw, batch=1).max_batch
    per_node = serving.serve(**kw, batch=fits).decode_tokens_per_second / int(row["nodes"])
    pub = float(row["measured_output_tokens_per_second_per_node"])
    return {"modeled": per_node, "published": pub, "error": per_node / pub - 1.0}


def run_variant(spec) -> dict:
    read, classes = spec
    with mock.patch.object(F, "MOE_WEIGHT_READ", read), mock.patch.object(F, "MOE_WEIGHT_READ_CLASSES", classes):
        f = F.fit_all()
        fig = F.error_figures(f)
        rows = profile_rows(F.profile_csv(f))
    out = {"moe_weight_read_efficiency": f["vllm_moe_fit"].get("moe_weight_read_efficiency"),
           "moe_gemm_efficiency": f["vllm_moe_fit"]["moe_gemm_efficiency"],
           "mla_moe_gemm_efficiency": f["profiles"][("sglang", "mla")]["moe_gemm_efficiency"],
           "mla_moe_weight_read_efficiency": f["profiles"][("sglang", "mla")].get("moe_weight_read_efficiency"),
           "figures": fig, "cases": {}}
    for key in ("engines_fit", "engines_check", "engines_bursts", "engines_second_source", "calibration",
                "validation"):
        for r in fig["cases"][key]:
            out["cases"][r["id"]] = r["error_pct"]
    with mock.patch.object(sc, "engine_profile_rows", lambda: rows):
        for d in sd.deployments():
            g = sd.reproduce(d)
            out["cases"][d.id] = round(100 * g["error"], 1)
        out["cases"]["D01"] = round(100 * deepseek_decode()["error"], 1)
    return out


HELD_OUT_VLLM = ("X04", "X05", "X06", "X09", "X10")
HELD_OUT_SGLANG = ("S01", "S02", "LM1", "LM2", "DS1", "DS2")


def mape(errors) -> float:
    return round(float(np.mean(np.abs(errors))), 1)


def main() -> None:
    res = {label: run_variant(spec) for label, spec in variants().items()}
    if "--json" in sys.argv:
        print(json.dumps({"kernel": F.kernel_streaming_fraction(), "variants": res}, indent=1))
        return
    k = F.kernel_streaming_fraction()
    print(f"fused_moe streaming fraction of the H100 datasheet by batch: {k['by_batch']}; "
          f"mean over batch {F.STREAMING_BATCHES[0]}-{F.STREAMING_BATCHES[1]}: {k['mean']:.3f}")
    b = np.asarray(F.KERNEL_BATCH, dtype=float)
    sel = b <= F.STREAMING_BATCHES[1]
    touched = F.KERNEL_SHAPE["experts"] * (1 - (1 - F.KERNEL_SHAPE["top_k"] / F.KERNEL_SHAPE["experts"]) ** b)
    line = np.polyfit(touched[sel] * k["expert_bytes"], np.asarray(F.KERNEL_US)[sel] * 1e-6, 1)
    flops = 2 * b[-1] * F.KERNEL_SHAPE["top_k"] * k["expert_bytes"] / F.KERNEL_SHAPE["bytes_per_param"]
    print(f"straight line over batch 1-{F.STREAMING_BATCHES[1]}: {line[1] * 1e6:.1f} us + bytes / "
          f"{1 / line[0] / 1e12:.2f} TB/s; at batch {b[-1]:.0f}: {flops / (F.KERNEL_US[-1] * 1e-6) / 1e12:.0f} TFLOP/s")
    labels = list(res)
    print("| variant | moe: reads / g | mla: reads / g |")
    print("|---|---|---|")
    for i, lab in enumerate(labels):
        r = res[lab]
        print(f"| {chr(65 + i)}: {lab} | {r['moe_weight_read_efficiency'] or 'g'} / {r['moe_gemm_efficiency']} | "
              f"{r['mla_moe_weight_read_efficiency'] or 'g'} / {r['mla_moe_gemm_efficiency']} |")
    ids = ["X04", "X05", "X06", "X07", "X08", "X09", "X10", "S01", "S02", "W1", "W8", "C4", "V9", "LM1", "LM2",
           "DS1", "DS2", "D01"]
    print("\n| case | " + " | ".join(chr(65 + i) for i in range(len(labels))) + " |")
    print("|---|" + "---|" * len(labels))
    for cid in ids:
        print(f"| {cid} | " + " | ".join(f"{res[lab]['cases'][cid]:+.1f} %" for lab in labels) + " |")
    print("\n| summary | " + " | ".join(chr(65 + i) for i in range(len(labels))) + " |")
    print("|---|" + "---|" * len(labels))
    nine = ["X04", "X05", "X06", "X07", "X08", "X09", "X10", "S01", "S02"]
    rows = {
        "nine engine cases: MAPE / worst": lambda c: f"{mape([c[i] for i in nine])} % / {max((c[i] for i in nine), key=abs):+.1f} %",
        "vLLM held out (X04-X06, X09, X10): MAPE / worst": lambda c: f"{mape([c[i] for i in HELD_OUT_VLLM])} % / {max((c[i] for i in HELD_OUT_VLLM), key=abs):+.1f} %",
        "SGLang held out, ShareGPT (S01, S02): MAPE / worst": lambda c: f"{mape([c[i] for i in HELD_OUT_SGLANG[:2]])} % / {max((c[i] for i in HELD_OUT_SGLANG[:2]), key=abs):+.1f} %",
        "SGLang held out with LM1, LM2, DS1, DS2: MAPE / worst": lambda c: f"{mape([c[i] for i in HELD_OUT_SGLANG])} % / {max((c[i] for i in HELD_OUT_SGLANG), key=abs):+.1f} %",
        "vLLM fit (X07, X08): MAPE": lambda c: f"{mape([c['X07'], c['X08']])} %",
    }
    for name, fn in rows.items():
        print(f"| {name} | " + " | ".join(fn(res[lab]["cases"]) for lab in labels) + " |")
    print("| band coverage | " + " | ".join(f"{res[lab]['figures']['band_coverage_pct']} %" for lab in labels) + " |")


if __name__ == "__main__":
    main()
