"""Ablation: the sglang x mla (DeepSeek-V3) profile with its grouped-GEMM terms from DeepGEMM's published kernel
figures (shipped: variant L, the two kernel switches and the attention kernels' measured efficiency) against
vLLM's Triton-burst fit (A, the model before) and the variants between them (docs/serving.md, "DeepGEMM's
grouped GEMMs (sglang x mla)").

The DeepGEMM values are derived in ``benchmarks/fit_serving_efficiency.py`` (``deepgemm_expert_efficiency``,
``deepgemm_profile_values``: kernel measurements, nothing fitted on a deployment) and written into the
``sglang,mla,hopper`` rows of ``data/serving_engine_profiles.csv`` (``DEEPGEMM_PROFILES``). Each variant replaces
those rows (a value of None removes a row) and prints every figure they can move: the disaggregated reproductions
(LM1, LM2, DS1, DS2), DeepSeek's decode figure (D01, TensorRT-LLM profile: a control) and the DeepSeek worked
examples of docs/serving.md. F-K add the two kernel terms behind their profile switches
(``attention_at_kernel_precision``: attention at the attention kernels' 16-bit peak; ``overlap_micro_batch_tokens``:
the grouped-GEMM factor and expert loads at two-batch overlap's micro-batch tokens) to B and E. L (shipped) is K
with (c) ``attention_compute_efficiency``: the attention FLOPs at FlashAttention-3's published causal-forward
fraction of the BF16 peak instead of the dense compute_efficiency
(``fit_serving_efficiency.attention_kernel_efficiency``).

    PYTHONPATH=src python benchmarks/deepgemm_ablation.py [--json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from unittest import mock

import numpy as np
from scipy.optimize import least_squares

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_serving_efficiency as F  # noqa: E402
from moe_read_ablation import deepseek_decode  # noqa: E402

from billshape import serving, serving_catalog as sc, serving_disagg as sd  # noqa: E402

KEY = ("sglang", "mla", "hopper")
PEAK_CASES = ("LM1", "LM2", "DS2")
#: the four reproductions the variants were compared on (LM3-LM6, SGLang's detail figures, came after the choice)
FOUR = ("LM1", "LM2", "DS1", "DS2")
H200_EXAMPLE = dict(model="deepseek-v3", gpu="h200", gpus=32, tp=32, ep=32, dp_attention=True, engine="sglang",
                    precision="fp8")
PAIR_EXAMPLE = dict(model="deepseek-v3", gpu="h100", precision="fp8", kv_precision="bf16", engine="sglang",
                    input_tokens=2000, output_tokens=100, prefill_gpus=32, decode_gpus=72, tp=32, ep=32,
                    dp_attention=True, decode_tp=72, decode_ep=72, redundant_experts=32, decode_batch=18432,
                    two_batch_overlap=True, price=2.0)


def half_tokens_curve() -> dict[str, float]:
    """g(n) = eta n / (n + n_half) least squares (in log) over DeepGEMM's five layer points (m per group 256-8192),
    as a fraction of FP8 peak: the shape dependence the one-number derivation leaves out."""
    k = F.deepgemm_expert_efficiency()
    pts = [(d["m_per_group"], d["peak_fraction"]) for d in (*k["contiguous"], *k["masked"])]
    m, y = np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts])
    fit = least_squares(lambda x: np.log(x[0] * m / (m + x[1]) / y), [0.7, 100.0], bounds=([0.1, 0.0], [1.0, 1e4]))
    return {"eta_peak_fraction": float(fit.x[0]), "half_tokens": float(fit.x[1])}


def variants() -> dict[str, dict[str, float | None]]:
    """label -> the sglang x mla x hopper rows replaced (None: the row removed; empty: as shipped, L)."""
    prof = sc.engine_profile(*KEY)
    eta_c, eta_bw = prof.params["compute_efficiency"], prof.params["hbm_bandwidth_efficiency"]
    dg = F.deepgemm_profile_values(eta_c, eta_bw)
    k = F.deepgemm_expert_efficiency()
    curve = half_tokens_curve()
    curve_rows = {"moe_gemm_efficiency": round(curve["eta_peak_fraction"] / eta_c, 4),
                  "moe_gemm_half_tokens": round(curve["half_tokens"], 1),
                  "moe_weight_read_efficiency": dg["moe_weight_read_efficiency"]}
    # the model before: the vllm x mla rows (vLLM's Triton-burst fit with the expert reads tied to it)
    vllm_mla = sc.engine_profile("vllm", "mla", "hopper").params
    tied = {"moe_gemm_efficiency": vllm_mla["moe_gemm_efficiency"], "moe_weight_read_efficiency": None}
    # A-K: without the attention kernels' own efficiency (attention at the dense compute_efficiency), as before it
    off = {**{n: None for n in sc.KERNEL_SWITCH_NAMES}, "attention_compute_efficiency": None}
    no_eta_a = {"attention_compute_efficiency": None}
    attn, micro = {"attention_at_kernel_precision": 1.0}, {"overlap_micro_batch_tokens": 1.0}
    return {
        "A: the model before (vLLM's Triton-burst fit 0.577, expert reads tied to it)": {**tied, **off},
        "B: DeepGEMM: g from the contiguous rows, reads from the masked 4 x 256 row": {**dg, **off},
        "C: DeepGEMM reads only (g stays 0.577)": {
            **off, "moe_gemm_efficiency": tied["moe_gemm_efficiency"],
            "moe_weight_read_efficiency": dg["moe_weight_read_efficiency"]},
        "D: as B, reads at the published GB/s (inputs and outputs counted)": {
            **dg, **off, "moe_weight_read_efficiency": round(k["read_all_bytes_fraction"] / eta_bw, 3)},
        "E: as B, g(n) = eta n / (n + n_half) over DeepGEMM's five m per group": {**curve_rows, **off},
        "F: B + (a) attention at the BF16 peak": {**dg, **off, **attn},
        "G: B + (b) kernels at the micro-batch's tokens (g flat)": {**dg, **off, **micro},
        "H: E + (a)": {**curve_rows, **off, **attn},
        "I: E + (b)": {**curve_rows, **off, **micro},
        "J: E + (a) + (b)": {**curve_rows, **attn, **micro, **no_eta_a},
        "K: B + (a) + (b)": {**no_eta_a},
        "L: K + (c) the attention kernels at FlashAttention-3's measured efficiency, shipped": {},
    }


def patched_rows(values: dict[str, float | None]) -> tuple[sc.ProfileRow, ...]:
    rows = list(sc.engine_profile_rows())
    mine = [i for i, r in enumerate(rows) if (r.engine, r.arch_class, r.generation) == KEY]
    have = {rows[i].name: i for i in mine}
    template = rows[mine[0]]
    drop = set()
    for name, value in values.items():
        if value is None:
            if name in have:
                drop.add(have[name])
            continue
        src = dict(source=F.DEEPGEMM_SOURCE, as_of=F.DEEPGEMM_AS_OF)
        if name in have:
            rows[have[name]] = rows[have[name]].model_copy(update={"value": value, **src})
        else:
            rows.append(template.model_copy(update={"name": name, "value": value, **src}))
    return tuple(r for i, r in enumerate(rows) if i not in drop)


def run_variant(values: dict[str, float]) -> dict:
    rows = patched_rows(values)
    out: dict = {"rows": values, "cases": {}, "modeled": {}}
    with mock.patch.object(sc, "engine_profile_rows", lambda: rows):
        for d in sd.deployments():
            g = sd.reproduce(d)
            out["cases"][d.id], out["modeled"][d.id] = round(100 * g["error"], 1), g["modeled"]
        dd = deepseek_decode()
        out["cases"]["D01"], out["modeled"]["D01"] = round(100 * dd["error"], 1), dd["modeled"]
        a, b = serving.serve(**H200_EXAMPLE), serving.serve(**H200_EXAMPLE, redundant_experts=32)
        out["h200_example"] = {"output_tokens_per_second": a.output_tokens_per_second,
                               "with_redundant_experts": b.output_tokens_per_second}
        p = serving.serve(**PAIR_EXAMPLE)
        out["pair_example"] = {"prefill_per_node": p.prefill_input_tokens_per_second_per_node,
                               "decode_per_node": p.decode_output_tokens_per_second_per_node,
                               "output_tokens_per_second": p.output_tokens_per_second,
                               "balanced_prefill_gpus_per_decode_gpu": p.balanced_prefill_gpus_per_decode_gpu}
    return out


def mape(errors) -> float:
    return round(float(np.mean(np.abs(errors))), 1)


def summary(cases: dict, modeled: dict) -> dict:
    peaks = [cases[i] for i in PEAK_CASES]
    four = [cases[i] for i in FOUR]
    deps = [d for d in sd.deployments() if d.id in FOUR]  # the rows the variants were chosen on
    # each row's own check (sd.within_bound): |error| within its bound; DS1, a day average, against DS2
    return {"peak_mape": mape(peaks), "peak_worst": max(peaks, key=abs), "four_mape": mape(four),
            "within_25": sum(abs(c) <= 25.0 for c in four),
            "within_bound": sum(sd.within_bound(d, modeled) for d in deps)}


def table(res: dict) -> str:
    labels = list(res)
    head = "| case | " + " | ".join(lab.split(":")[0] for lab in labels) + " |"
    lines = [head, "|---|" + "---|" * len(labels)]
    for cid in ("LM1", "LM2", "DS1", "DS2", "D01"):
        lines.append(f"| {cid} | " + " | ".join(f"{res[lab]['modeled'][cid]:,.0f} ({res[lab]['cases'][cid]:+.1f} %)"
                                                for lab in labels) + " |")
    rows = {"32 x H200 sglang example, output tok/s (no EPLB / 32 redundant)":
            lambda r: f"{r['h200_example']['output_tokens_per_second']:,.0f} / "
                      f"{r['h200_example']['with_redundant_experts']:,.0f}",
            "LM1 + LM2 pair example: prefill / decode per node":
            lambda r: f"{r['pair_example']['prefill_per_node']:,.0f} / {r['pair_example']['decode_per_node']:,.0f}",
            "LM1, LM2, DS2 (peaks): MAPE / worst":
            lambda r: f"{r['summary']['peak_mape']} % / {r['summary']['peak_worst']:+.1f} %",
            "LM1, LM2, DS1, DS2: MAPE": lambda r: f"{r['summary']['four_mape']} %",
            "of the four within 25 % / within their bounds":
            lambda r: f"{r['summary']['within_25']} / {r['summary']['within_bound']}"}
    for name, fn in rows.items():
        lines.append(f"| {name} | " + " | ".join(fn(res[lab]) for lab in labels) + " |")
    return "\n".join(lines)


def results() -> dict:
    res = {label: run_variant(vals) for label, vals in variants().items()}
    for r in res.values():
        r["summary"] = summary(r["cases"], r["modeled"])
    return res


def main() -> None:
    res = results()
    if "--json" in sys.argv:
        print(json.dumps({"kernel": F.deepgemm_expert_efficiency(), "curve": half_tokens_curve(), "variants": res},
                         indent=1))
        return
    k = F.deepgemm_expert_efficiency()
    for d in (*k["contiguous"], *k["masked"]):
        print(f"{d['groups']} x {d['m_per_group']}: {d['flops'] / d['seconds'] / 1e12:,.1f} TFLOP/s per layer "
              f"({d['peak_fraction']:.4f} of FP8 peak), expert weights at {d['weight_bytes_fraction']:.4f} of the "
              f"datasheet HBM ({d['all_bytes_fraction']:.4f} with inputs and outputs)")
    print(f"g(n) curve over the five: {half_tokens_curve()}")
    for lab, r in res.items():
        print(f"{lab}: {r['rows'] or 'shipped rows'}")
    print()
    print(table(res))


if __name__ == "__main__":
    main()
