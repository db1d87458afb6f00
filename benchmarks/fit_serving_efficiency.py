"""Fit the serving model's engine profiles and write ``data/serving_engine_profiles.csv`` and the error figures.

Run: ``PYTHONPATH=src python benchmarks/fit_serving_efficiency.py [--write]``. Without ``--write`` it prints the
fit and the error tables as JSON; with it, it (re)writes

* ``src/billshape/data/serving_engine_profiles.csv``: one row per engine x architecture class x GPU generation x
  parameter, each naming the measurements it was fitted on;
* ``docs/serving_errors.json``: the error figures that README.md and docs/serving.md quote (their generated blocks
  are rendered from it by ``render_blocks``; tests/test_serving_profiles.py checks all three are current).

Fits (least squares on log(predicted/measured), physical bounds):

* TensorRT-LLM: HBM bandwidth efficiency, step overhead and all-reduce latency on C1-C5
  (``data/serving_calibration.csv``), compute efficiency a prior; validated on V1-V9 (``serving_validation.csv``).
  The same values are ``data/serving_efficiency.csv``'s (the no-argument ``default_efficiency()``).
* vLLM, MoE: the grouped-GEMM efficiency (on the expert FLOPs) on the fixed-length bursts of
  ``serving_engines_calibration.csv`` marked ``use = fit``, with the expert weight reads at vLLM's ``fused_moe``
  kernel bandwidth measured on H100 (``MOE_WEIGHT_READ``, not fitted; the ``mla`` profiles keep the reads tied to
  the grouped-GEMM fit); the other parameters stay at the TensorRT-LLM values (the cases do not identify them).
* vLLM, dense, CDNA3 (MI300X): HBM bandwidth efficiency, compute efficiency and step overhead on AMD's published
  vLLM runs (``serving_engines_mi300x.csv``, M01-M40: ROCm/vllm docs/dev-docker/README.md, vLLM 0.9.1, Llama 3.1
  70B and 405B FP8 on 8 x MI300X), the all-reduce latency at the TensorRT-LLM value (one TP size: not identified).
  Oracle's blog rows (``serving_engines_validation.csv``, W1-W8) are its held-out source: never fitted, they give
  its band; the reverse (fitted on W1-W8, predicting M01-M40) is reported too.
* SGLang: no fixed-length measurement: the vLLM MoE values, flagged extrapolated. For DeepSeek-V3 (``mla``) on
  Hopper (``DEEPGEMM_PROFILES``) the grouped-GEMM efficiency and expert reads come from DeepGEMM's published H800
  figures for its experts (``deepgemm_expert_efficiency``, kernel measurements, not fitted) and the two kernel
  switches are on (``KERNEL_SWITCHES``), and the prompts' causal attention runs at FlashAttention-3's published
  fraction of the BF16 peak (``attention_kernel_efficiency``, a kernel measurement, not fitted):
  benchmarks/deepgemm_ablation.py variant L, docs/serving.md. Its band comes from the disaggregated DeepSeek-V3
  reproductions (``reproduction_rows``: LMSYS LM1-LM6 and DeepSeek DS2 of serving_deployments.csv, held out), so
  sglang x mla x hopper is not extrapolated; SGLang's other combinations are.

The band (P10-P90 of measured/modeled) of an engine x architecture class comes from its validation rows (at least
``MIN_BAND_ROWS`` from sources not fitted on); with fewer the combination is extrapolated and gets the wide band.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from billshape import serving, serving_catalog

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ROOT / "src" / "billshape" / "data" / "serving_engine_profiles.csv"
ERRORS = ROOT / "docs" / "serving_errors.json"

NAMES = serving.EFFICIENCY_NAMES
#                       eta_bw, eta_c, t0 [s], all-reduce latency [s]
LOWER = np.array([0.3, 0.2, 0.0, 1e-6])
UPPER = np.array([1.0, 1.0, 0.02, 1e-4])
SCALE = np.array([1.0, 1.0, 1e-3, 1e-5])
MIN_BAND_ROWS = 3
#: the extrapolated band: the pooled validation band doubled in log space, and at least this wide
WIDE_BAND_FLOOR = (0.67, 1.5)
AS_OF = "2025-11-01"
TRT_SOURCE = "NVIDIA TensorRT-LLM docs/source/performance/perf-overview.md (v0.9.0 tables, v1.0 tables)"
ENG_SOURCE = ("gpustack/gpustack docs/performance-lab/qwen3-235b-a22b/h100.md and a100.md "
              "@47277d79f4a5bae12a2d25e9ecbed2a2177a5f2d (data/serving_engines_calibration.csv)")
AMD_SOURCE = ("ROCm/vllm docs/dev-docker/README.md@7545048a0bae01d4592803c44cf8357a12cae57b (AMD's vLLM FP8 latency "
              "and throughput tables for MI300X, 2025-07-18; data/serving_engines_mi300x.csv)")
AMD_AS_OF = "2025-07-18"
#: the CDNA3 vLLM profile: fitted on AMD's rows (M01-M40), its held-out source Oracle's (W1-W8)
CDNA3 = ("vllm", "dense", "cdna3")

#: compute efficiency is a prior, not fitted: the calibration cases are mostly memory bound and do not identify it
COMPUTE_EFFICIENCY_PRIOR = serving.efficiencies()["compute_efficiency"].value
NEUTRAL_MOE = {"moe_gemm_efficiency": 1.0, "moe_gemm_half_tokens": 0.0, "alltoall_efficiency": 1.0}
# ---- the expert weight reads ----------------------------------------------------------------------------------
#: vLLM ``benchmarks/kernels/benchmark_moe.py --model Qwen/Qwen3-30B-A3B -tp 1 --dtype fp8_w8a8`` on H100 (vLLM
#: pull request 24700, "[Perf] Improve default fused moe configs by analyzing tuned configs", 2025-09-11, the "Main"
#: column: vLLM's default Triton fused_moe config of the time): kernel time [us] of one MoE layer by batch
KERNEL_SOURCE = ("vllm-project/vllm pull request 24700 (2025-09-11): benchmarks/kernels/benchmark_moe.py on H100, "
                 "Qwen3-30B-A3B fp8_w8a8 TP1, 'Main' column")
KERNEL_AS_OF = "2025-09-11"
KERNEL_BATCH = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 256, 512, 1024, 1536, 2048, 3072, 4096)
KERNEL_US = (44.54, 59.94, 90.46, 129.77, 185.40, 215.99, 238.37, 257.83, 262.73, 270.98, 273.72, 355.49, 391.86,
             536.33, 727.31, 911.64, 1279.17, 1647.57)
#: Qwen3-30B-A3B (config.json): 128 routed experts, top-8, hidden 2048, moe_intermediate_size 768; fp8: 1 byte.
#: 3 x 2048 x 768 bytes = 4.72 MB per expert, as Qwen3-235B-A22B's BF16 experts on one GPU of TP 8
#: (3 x 4096 x 1536 / 8 x 2 bytes)
KERNEL_SHAPE = dict(experts=128, top_k=8, hidden=2048, intermediate=768, bytes_per_param=1.0)
H100_HBM_BYTES_PER_SECOND = 3.35e12
#: the batches at which the kernel streams the experts it touches (from 16 on most of the 128 are touched; past
#: 128 its FLOPs bind)
STREAMING_BATCHES = (16, 128)


def kernel_streaming_fraction() -> dict:
    """The fused_moe kernel's expert bytes streamed per second over the H100 datasheet bandwidth, by batch, and its
    mean over ``STREAMING_BATCHES``: a batch of b tokens touches E (1 - (1 - k/E)^b) experts of 3 d f bytes (gate,
    up, down projections), read in the published kernel time."""
    s = KERNEL_SHAPE
    b = np.asarray(KERNEL_BATCH, dtype=float)
    touched = s["experts"] * (1.0 - (1.0 - s["top_k"] / s["experts"]) ** b)
    expert_bytes = 3.0 * s["hidden"] * s["intermediate"] * s["bytes_per_param"]
    frac = touched * expert_bytes / (np.asarray(KERNEL_US) * 1e-6) / H100_HBM_BYTES_PER_SECOND
    lo, hi = STREAMING_BATCHES
    sel = (b >= lo) & (b <= hi)
    return {"by_batch": dict(zip(KERNEL_BATCH, np.round(frac, 3).tolist())), "mean": float(frac[sel].mean()),
            "expert_bytes": expert_bytes}


MEASURED_READ_SOURCE = (f"{KERNEL_SOURCE}: fused_moe expert bytes streamed per second at batch "
                        f"{STREAMING_BATCHES[0]}-{STREAMING_BATCHES[1]} (128 experts, top-8, 4.7 MB per expert: "
                        "Qwen3-235B's BF16 expert on one GPU of TP 8) over the 3.35 TB/s datasheet, divided by the "
                        "dense HBM efficiency (benchmarks/fit_serving_efficiency.py kernel_streaming_fraction)")
#: the expert weight reads of the profiles whose grouped-GEMM efficiency is fitted: None ties them to the
#: grouped-GEMM factor g (reads at g x the HBM efficiency; no profile row: the roofline's default, the model before);
#: (fraction of the datasheet HBM bandwidth, source, as_of) reads them at that bandwidth: a
#: ``moe_weight_read_efficiency`` row = the fraction / the dense HBM efficiency, and the grouped-GEMM efficiency then
#: slows the expert FLOPs only. benchmarks/moe_read_ablation.py compares the variants.
MOE_WEIGHT_READ: tuple[float, str, str] | None = (kernel_streaming_fraction()["mean"], MEASURED_READ_SOURCE,
                                                  KERNEL_AS_OF)
#: the architecture classes whose vLLM/SGLang profiles take MOE_WEIGHT_READ: the measurement is of vLLM's Triton
#: fused_moe at Qwen3's expert size; ``mla`` (DeepSeek-V3, SGLang's DeepGEMM/DeepEP kernels) has no kernel
#: measurement and keeps the grouped-GEMM fit with the reads tied to it
MOE_WEIGHT_READ_CLASSES: tuple[str, ...] = ("moe",)
# ---- DeepSeek-V3's experts on DeepGEMM (the kernel SGLang and DeepSeek run for FP8 MoE on Hopper) -------------
#: DeepGEMM's README "Performance" section, H800 SXM5, NVCC 12.8, "all shapes potentially used in DeepSeek-V3/R1
#: inference ... without tensor parallelism"; the grouped tables as last published (set 2025-03-25 in 55ab91f,
#: unchanged to 327ec92, removed from the README on 2025-04-14 in 37aa127). tests/test_core.py at the same commit
#: prints TFLOPS = 2 G m n k / t and GB/s = G (m k + k n + 2 m n) / t (FP8 A and B, BF16 D), every row unmasked
DEEPGEMM_SOURCE = ("deepseek-ai/DeepGEMM README.md@327ec92f6977e7fee022cb76a8f273b75483c3d8 (Performance: 'Grouped "
                   "GEMMs for MoE models', contiguous and masked layouts, H800 SXM5; formulas in tests/test_core.py "
                   "at the same commit)")
DEEPGEMM_AS_OF = "2025-04-09"
DEEPGEMM_GPU = "h800-sxm"
#: (groups, m per group, n, k, TFLOPS, GB/s) as published; n x k = 4096 x 7168 is DeepSeek-V3's fused gate/up
#: projection of one expert (2 x moe_intermediate_size 2048 by hidden 7168), 7168 x 2048 its down projection
DEEPGEMM_CONTIGUOUS = ((4, 8192, 4096, 7168, 1346, 434), (4, 8192, 7168, 2048, 1214, 752),
                       (8, 4096, 4096, 7168, 1346, 516), (8, 4096, 7168, 2048, 1214, 826))
DEEPGEMM_MASKED = ((1, 1024, 4096, 7168, 1233, 924), (1, 1024, 7168, 2048, 925, 968),
                   (2, 512, 4096, 7168, 1040, 1288), (2, 512, 7168, 2048, 916, 1405),
                   (4, 256, 4096, 7168, 932, 2064), (4, 256, 7168, 2048, 815, 2047))
#: the engine x class x generation profiles that take the DeepGEMM rows, the two kernel switches and
#: FlashAttention-3's attention efficiency (variant L of benchmarks/deepgemm_ablation.py; docs/serving.md, "DeepGEMM's grouped GEMMs (sglang x mla)"): SGLang serving
#: DeepSeek-V3's FP8 experts on DeepGEMM on Hopper. Written as the generation's own rows: Ampere has no DeepGEMM
#: (FP8 GEMMs need SM90) and keeps the engine x class values; vllm x mla is not listed (vLLM runs DeepSeek's experts
#: tensor-parallel, DeepGEMM MoE off by default at TP 8)
DEEPGEMM_PROFILES: tuple[tuple[str, str, str], ...] = (("sglang", "mla", "hopper"),)
#: the kernel switches of the DEEPGEMM_PROFILES (a row of 1 turns the term on; serving_catalog.KERNEL_SWITCH_NAMES):
#: (value, source, as_of, note)
KERNEL_SWITCHES = {
    "attention_at_kernel_precision": (
        1.0, "SGLang docs/advanced_features/attention_backend.md (MLA models on Hopper default to fa3 on a BF16 KV "
        "cache); DeepSeek-AI, Day 6 of #OpenSourceWeek: DeepSeek-V3/R1 Inference System Overview (2025-03-01): "
        "'core MLA computations ... use the BF16 format' (data/serving_attention_kernels.csv)", "2025-03-01",
        "attention FLOPs at the BF16 peak where data/serving_attention_kernels.csv has a 16-bit row for this engine "
        "x class x KV precision and the weights' GEMMs are FP8/FP4"),
    "overlap_micro_batch_tokens": (
        1.0, "DeepSeek open-source week day 6, 'DeepSeek-V3/R1 Inference System Overview' (2025-03-01): prefill "
        "alternates two micro-batches; LMSYS/SGLang 2025-05-05 'Two-batch Overlap' (--enable-two-batch-overlap): "
        "each micro-batch is its own forward through the kernels", "2025-05-05",
        "with two-batch overlap the grouped GEMMs and expert loads at the micro-batch's tokens; no effect without it "
        "(only the disaggregated pools model two-batch overlap)"),
}


# ---- MLA prefill attention on FlashAttention-3 (SGLang's default fa3 backend on Hopper) ------------------------
#: FlashAttention-3's published forward speed, BF16/FP16, H100 80GB SXM5 (clock fixed at 1830 MHz, the clock of
#: the 989 TFLOPS dense peak; batch x seqlen = 16k tokens, hidden 2048; FLOPs 4 s^2 d h / 2 with the causal mask):
#: the bar labels of Fig. 5(d) "Forward, with causal mask, head dim 128", also the README figure
#: assets/flash3_fp16_fwd.png of Dao-AILab/flash-attention (added in 7ef24848, 2024-07-11)
FA3_SOURCE = ("Shah et al. 2024, 'FlashAttention-3: Fast and Accurate Attention with Asynchrony and Low-precision', "
              "arXiv 2407.08608, Fig. 5(d) 'Forward, with causal mask, head dim 128' (H100 80GB SXM5): "
              "FlashAttention-3 579 TFLOPs/s at sequence length 4k (521 at 2k); the same figure is "
              "Dao-AILab/flash-attention assets/flash3_fp16_fwd.png@7ef24848cf2f855077cef88fe122775b727dcd74")
FA3_AS_OF = "2024-07-11"
FA3_GPU = "h100-sxm"
#: (sequence length, FlashAttention-3 TFLOPs/s) read off Fig. 5(d); head dim 128 is the published size nearest
#: MLA prefill's (qk 192 = 128 nope + 64 rope, v 128; Fig. 5(f), head dim 256, reads 612 at 4k)
FA3_CAUSAL_HDIM128 = tuple((int(p.seq_len), int(p.tflops) if float(p.tflops).is_integer() else float(p.tflops))
                           for p in serving_catalog.attention_efficiency_points())
#: (the roofline reads the same points: data/serving_attention_efficiency.csv, serving_catalog.attention_efficiency_at)
#: the sequence length the row is read at: DeepSeek's published prefill profile's prompt (DS2, 4,096 tokens)
FA3_SEQ_LEN = 4096


def attention_kernel_efficiency() -> dict:
    """FlashAttention-3's causal forward at ``FA3_SEQ_LEN`` over the dense BF16 peak of the catalog's ``h100-sxm``
    row (the datasheet's 989.4 TFLOP/s; the paper's 989 at its fixed 1830 MHz clock): the fraction of the 16-bit
    peak the prompts' causal attention runs at. A kernel measurement, not fitted; the roofline takes it as the
    profile's ``attention_compute_efficiency`` (serving_roofline.attention_inputs scales the attention peak by
    it / compute_efficiency)."""
    from billshape import catalog

    peak = catalog.gpu(FA3_GPU).peak_flops_per_second("bf16")
    tflops = dict(FA3_CAUSAL_HDIM128)[FA3_SEQ_LEN]
    return {"tflops": float(tflops), "seq_len": FA3_SEQ_LEN, "peak_flops_per_second": peak,
            "peak_fraction": tflops * 1e12 / peak,
            "by_seq_len": {s: t * 1e12 / peak for s, t in FA3_CAUSAL_HDIM128}}


def attention_profile_values() -> dict[str, float]:
    """The ``attention_compute_efficiency`` row of the DEEPGEMM_PROFILES (:func:`attention_kernel_efficiency`)."""
    return {"attention_compute_efficiency": round(attention_kernel_efficiency()["peak_fraction"], 4)}


def deepgemm_layers(rows) -> list[dict]:
    """One MoE layer of DeepSeek-V3's experts per (groups, m per group) of a DeepGEMM table: its gate/up and down
    GEMMs run one after the other, so the layer's FLOPs and expert weight bytes (FP8, 1 byte per value) are summed
    over the two kernel times t = 2 G m n k / TFLOPS."""
    by: dict[tuple[int, int], dict] = {}
    for g, m, n, k, tflops, gbs in rows:
        flops = 2.0 * g * m * n * k
        t = flops / (tflops * 1e12)
        d = by.setdefault((g, m), {"groups": g, "m_per_group": m, "flops": 0.0, "seconds": 0.0, "weight_bytes": 0.0,
                                   "all_bytes": 0.0})
        d["flops"] += flops
        d["seconds"] += t
        d["weight_bytes"] += g * n * k
        d["all_bytes"] += gbs * 1e9 * t
    return list(by.values())


def deepgemm_expert_efficiency() -> dict:
    """DeepGEMM's grouped-GEMM compute and expert-read efficiencies on H800 for DeepSeek-V3's expert shapes.

    * compute: the contiguous (prefill) layers' FLOPs over their time, over the FP8 dense peak of the catalog's
      ``h800-sxm`` row: the fraction of peak the expert FLOPs run at; ``moe_gemm_efficiency`` = that / the
      profile's dense compute efficiency (the roofline runs the expert FLOPs at g x eta_c x peak);
    * reads: the masked (decode) layer with the smallest m per group (4 x 256: 2 m = 512 FLOP per weight byte,
      the most memory-bound row; H800's ridge is 591), its expert weight bytes over its time, over the datasheet
      HBM bandwidth; ``moe_weight_read_efficiency`` = that / the dense HBM efficiency. The weight bytes only, as the
      roofline charges them (its decode step reads weights and KV, not activations), like
      :func:`kernel_streaming_fraction`; the published GB/s, which adds the FP8 inputs and BF16 outputs, is
      returned too (``all_bytes_fraction``).
    """
    from billshape import catalog

    acc = catalog.gpu(DEEPGEMM_GPU)
    peak, hbm = acc.peak_flops_per_second("fp8"), float(acc.memory_bytes_per_second)
    cont = deepgemm_layers(DEEPGEMM_CONTIGUOUS)
    masked = deepgemm_layers(DEEPGEMM_MASKED)
    for d in (*cont, *masked):
        d["peak_fraction"] = d["flops"] / d["seconds"] / peak
        d["weight_bytes_fraction"] = d["weight_bytes"] / d["seconds"] / hbm
        d["all_bytes_fraction"] = d["all_bytes"] / d["seconds"] / hbm
    read = min(masked, key=lambda d: d["m_per_group"])
    return {"contiguous": cont, "masked": masked,
            "compute_peak_fraction": float(np.mean([d["peak_fraction"] for d in cont])),
            "read_hbm_fraction": read["weight_bytes_fraction"], "read_all_bytes_fraction": read["all_bytes_fraction"],
            "peak_flops_per_second": peak, "hbm_bytes_per_second": hbm}


def deepgemm_profile_values(compute_efficiency: float, hbm_bandwidth_efficiency: float) -> dict[str, float]:
    """The ``moe_gemm_efficiency`` and ``moe_weight_read_efficiency`` rows a profile with these dense efficiencies
    takes from DeepGEMM's figures (:func:`deepgemm_expert_efficiency`; kernel measurements, not fitted)."""
    k = deepgemm_expert_efficiency()
    return {"moe_gemm_efficiency": round(k["compute_peak_fraction"] / compute_efficiency, 4),
            "moe_weight_read_efficiency": round(k["read_hbm_fraction"] / hbm_bandwidth_efficiency, 3)}


#: the engines' scheduler caps on concurrent sequences
MAX_BATCH_CAP = {
    "trtllm": (2048.0, "NVIDIA TensorRT-LLM build/LLM-API default max_batch_size = 2048"),
    "vllm": (1024.0, "vLLM 0.11 EngineArgs defaults (vllm/engine/arg_utils.py): max_num_seqs 1024 on GPUs with >= 70 "
             "GiB other than A100, else 256"),
    "sglang": (2048.0, "SGLang 0.5 derives max_running_requests from the KV pool (no fixed cap); the TensorRT-LLM "
               "cap 2048 kept as a bound"),
}
VLLM_A100_CAP = 256.0
#: the engines' chunked-prefill schedulers: tokens per step and whether prefill chunks ride in decode steps
TOKEN_BUDGET = {
    "trtllm": (8192.0, "NVIDIA TensorRT-LLM LLM API / trtllm-serve default max_num_tokens = 8192 (in-flight batching "
               "runs context and generation requests in one batch)"),
    "vllm": (8192.0, "vLLM 0.11 EngineArgs.get_batch_defaults (vllm/engine/arg_utils.py): max_num_batched_tokens "
             "8192 for the OpenAI server on GPUs with >= 70 GiB other than A100, else 2048; V1 always runs chunked "
             "prefill mixed into decode steps"),
    "sglang": (8192.0, "SGLang 0.5 server_args: chunked_prefill_size 8192 on 35-160 GB GPUs (H100, H200, A100); "
               "enable_mixed_chunk False (prefill batches run apart from decode batches)"),
}
VLLM_A100_TOKEN_BUDGET = 2048.0
MIXED_PREFILL = {"trtllm": 1.0, "vllm": 1.0, "sglang": 0.0}
UNITS = {"hbm_bandwidth_efficiency": "fraction of datasheet HBM bandwidth",
         "compute_efficiency": "fraction of dense peak FLOP/s", "step_overhead_seconds": "s per decode step",
         "allreduce_latency_seconds": "s per all-reduce",
         "moe_gemm_efficiency": "fraction of the dense kernels' efficiency",
         "moe_gemm_half_tokens": "tokens per expert", "alltoall_efficiency": "fraction of link bandwidth",
         "moe_weight_read_efficiency": "fraction of the dense HBM bandwidth efficiency",
         "max_batch_cap": "sequences", "throughput_ratio_p10": "measured / modeled throughput",
         "throughput_ratio_p90": "measured / modeled throughput", "band_rows": "validation rows",
         "extrapolated": "0 or 1", "max_num_batched_tokens": "tokens per step",
         "mixed_prefill": "1: prefill chunks ride in decode steps; 0: prefill-only steps",
         "attention_at_kernel_precision": "1: on; 0: off", "overlap_micro_batch_tokens": "1: on; 0: off",
         "attention_compute_efficiency": "fraction of dense BF16 peak FLOP/s"}


def _trt_full(x):
    return np.array([x[0], COMPUTE_EFFICIENCY_PRIOR, x[1], x[2]])


def _trt_errors(x, cases):
    eff = dict(zip(NAMES, _trt_full(x) * SCALE))
    return np.array([np.log(serving.predict_case(c, eff, max_batch_cap=case_cap(c))["predicted_per_gpu"]
                            / c.measured_output_tokens_per_second_per_gpu) for c in cases])


def fit_trtllm(cases) -> dict[str, float]:
    keep = [0, 2, 3]
    x0 = (np.array([0.6, 0.5, 2e-3, 1e-5]) / SCALE)[keep]
    fit = least_squares(_trt_errors, x0, bounds=((LOWER / SCALE)[keep], (UPPER / SCALE)[keep]), args=(cases,))
    return {k: float(f"{v:.4g}") for k, v in zip(NAMES, _trt_full(fit.x) * SCALE)}


#: the CDNA3 fit's free parameters: HBM efficiency, compute efficiency, step overhead (the all-reduce latency is held)
CDNA3_FREE = (0, 1, 2)
#: its lower bound on the compute efficiency (below the TensorRT-LLM fit's physical bound 0.2: vLLM's FP8 kernels on
#: MI300X reach a smaller share of the datasheet peak)
CDNA3_LOWER = np.array([0.3, 0.05, 0.0, 1e-6])


def fit_dense(cases, base: dict[str, float], free=CDNA3_FREE) -> dict[str, float]:
    """Least squares on log(predicted/measured) of ``cases`` over the efficiencies ``free`` (indices into NAMES),
    the others held at ``base``'s values."""
    keep = list(free)

    def full(x):
        vals = np.array([base[n] for n in NAMES]) / SCALE
        vals[keep] = x
        return dict(base, **dict(zip(NAMES, vals * SCALE)))

    def err(x):
        eff = full(x)
        return np.array([np.log(serving.predict_case(c, eff, max_batch_cap=case_cap(c))["predicted_per_gpu"]
                                / c.measured_output_tokens_per_second_per_gpu) for c in cases])

    x0 = (np.array([0.6, 0.3, 3e-3, 1e-5]) / SCALE)[keep]
    fit = least_squares(err, x0, bounds=((CDNA3_LOWER / SCALE)[keep], (UPPER / SCALE)[keep]))
    out = full(fit.x)
    return dict(out, **{n: float(f"{out[n]:.4g}") for n in NAMES})


def fit_moe_gemm(cases, base: dict[str, float]) -> dict[str, float]:
    def err(x):
        eff = dict(base, moe_gemm_efficiency=float(x[0]))
        return np.array([np.log(serving.predict_case(c, eff, max_batch_cap=case_cap(c))["predicted_per_gpu"]
                                / c.measured_output_tokens_per_second_per_gpu) for c in cases])

    fit = least_squares(err, [0.6], bounds=([0.05], [1.0]))
    return dict(base, moe_gemm_efficiency=float(f"{fit.x[0]:.4g}"))


def case_cap(c) -> float:
    if c.max_num_seqs is not None:  # the engine setting its source ran
        return float(c.max_num_seqs)
    if c.engine_key == "vllm" and serving_catalog.gpu_generation(c.gpu) == "ampere":
        return VLLM_A100_CAP
    return MAX_BATCH_CAP[c.engine_key][0]


def rows_table(cases, eff=None, profiles=None) -> list[dict]:
    """Each case's prediction with ``eff`` or, by engine x class, with ``profiles``."""
    out = []
    for c in cases:
        key = (c.engine_key, serving_catalog.arch_class(c.model))
        gen = serving_catalog.gpu_generation(c.gpu)
        e = eff if eff is not None else profiles.get((*key, gen), profiles[key])
        p = serving.predict_case(c, e, max_batch_cap=case_cap(c))["predicted_per_gpu"]
        m = c.measured_output_tokens_per_second_per_gpu
        out.append({"id": c.id, "engine": c.engine_key, "model": c.model, "gpu": c.gpu, "generation": gen,
                    "arch_class": serving_catalog.arch_class(c.model), "measured_per_gpu": m,
                    "predicted_per_gpu": round(p, 2), "error_pct": round(100 * (p / m - 1), 1),
                    "log_ratio": float(np.log(m / p))})
    return out


def summary(rows) -> dict:
    if not rows:
        return {"cases": 0}
    errs = np.abs([r["error_pct"] for r in rows])
    worst = max(rows, key=lambda r: abs(r["error_pct"]))
    return {"cases": len(rows), "mape_pct": round(float(errs.mean()), 1), "worst_pct": worst["error_pct"],
            "worst_id": worst["id"]}


def band(log_ratios) -> tuple[float, float]:
    q = np.quantile(np.asarray(log_ratios, dtype=float), [0.1, 0.9])
    return round(float(np.exp(q[0])), 3), round(float(np.exp(q[1])), 3)


def coverage(rows, lo, hi) -> float:
    r = np.exp([x["log_ratio"] for x in rows])
    return float(np.mean((r >= lo) & (r <= hi)))


def loso_trtllm(cal, val) -> list[dict]:
    """Leave one source out: refit the TensorRT-LLM profile without a source's rows, predict that source."""
    groups = {"perf-overview v0.9.0": [c for c in (*cal, *val) if "0.9" in c.engine],
              "perf-overview v1.0": [c for c in (*cal, *val) if "0.9" not in c.engine]}
    out = []
    for name, held in groups.items():
        rest = [c for c in (*cal, *val) if c not in held]
        eff = fit_trtllm(rest)
        out.append({"held_out_source": name, "fitted_on": [c.id for c in rest],
                    **summary(rows_table(held, eff))})
    return out


def fit_all() -> dict:
    cal = serving.cases("serving_calibration.csv")
    val = serving.cases("serving_validation.csv")
    eng = serving.cases("serving_engines_calibration.csv")
    amd = serving.cases("serving_engines_mi300x.csv")
    oci = serving.cases("serving_engines_validation.csv")
    trt = fit_trtllm(cal)
    shipped = serving.default_efficiency()
    vfit = [c for c in eng if c.use == "fit" and c.engine_key == "vllm"]
    # the grouped-GEMM efficiency with the expert reads tied to it (the model before; the mla profiles' copy) and
    # with the reads at the measured kernel bandwidth (MOE_WEIGHT_READ_CLASSES)
    tied = fit_moe_gemm(vfit, {**trt, **NEUTRAL_MOE})
    if MOE_WEIGHT_READ is None:
        by_class = {"moe": tied, "mla": tied}
    else:
        read = {"moe_weight_read_efficiency": round(min(MOE_WEIGHT_READ[0] / trt["hbm_bandwidth_efficiency"], 1.0), 3)}
        measured = fit_moe_gemm(vfit, {**trt, **NEUTRAL_MOE, **read})
        by_class = {c: measured if c in MOE_WEIGHT_READ_CLASSES else tied for c in ("moe", "mla")}
    vllm = by_class["moe"]
    afit = [c for c in amd if c.use == "fit"]
    cdna3 = fit_dense(afit, {**trt, **NEUTRAL_MOE})
    profiles = {("trtllm", "dense"): {**trt, **NEUTRAL_MOE}, ("trtllm", "moe"): {**trt, **NEUTRAL_MOE},
                ("trtllm", "mla"): {**trt, **NEUTRAL_MOE},
                ("vllm", "moe"): vllm, ("vllm", "mla"): by_class["mla"], ("vllm", "dense"): {**trt, **NEUTRAL_MOE},
                ("sglang", "moe"): vllm, ("sglang", "mla"): by_class["mla"],
                ("sglang", "dense"): {**trt, **NEUTRAL_MOE},
                # a generation's own fit (engine, class, generation): rows of its own in the CSV
                CDNA3: cdna3}
    for key in DEEPGEMM_PROFILES:  # DeepGEMM's grouped GEMMs (kernel figures, not fitted) on the class's profile
        base = profiles[key[:2]]
        profiles[key] = {**base, **deepgemm_profile_values(base["compute_efficiency"],
                                                           base["hbm_bandwidth_efficiency"]),
                         **attention_profile_values()}
    reads = ("" if "moe_weight_read_efficiency" not in vllm else
             " with the expert weight reads at moe_weight_read_efficiency (a kernel measurement, not fitted)")
    mla_copy = ("not fitted: the vllm/moe values" if by_class["mla"] is vllm else
                "not fitted: the vllm/moe grouped-GEMM fit with the expert reads tied to it (no kernel measurement "
                "for this class)")
    fitted_on = {("trtllm", c): "C1-C5 (TensorRT-LLM perf-overview v0.9.0, v1.0)" for c in ("dense", "moe", "mla")}
    fitted_on.update({("vllm", "moe"): "moe_gemm_efficiency on " + "+".join(c.id for c in vfit)
                      + " (gpustack vLLM 0.11 Qwen3-235B 8xH100 fixed-length bursts)" + reads
                      + "; the rest as trtllm C1-C5",
                      ("vllm", "mla"): mla_copy, ("vllm", "dense"): "not fitted: trtllm C1-C5",
                      ("sglang", "moe"): "not fitted: the vllm/moe values (SGLang rows are ShareGPT bursts only)",
                      ("sglang", "mla"): mla_copy,
                      ("sglang", "dense"): "not fitted: trtllm C1-C5",
                      CDNA3: f"hbm_bandwidth_efficiency, compute_efficiency, step_overhead_seconds on {afit[0].id}-"
                             f"{afit[-1].id} (AMD ROCm/vllm dev-docker README: vLLM 0.9.1 Llama 3.1 70B/405B FP8 "
                             "8xMI300X static batches and offline runs); all-reduce latency as trtllm C1-C5; "
                             "held out: W1-W8 (OCI blog)"})
    for key in DEEPGEMM_PROFILES:
        fitted_on[key] = ("not fitted: the dense efficiencies as trtllm C1-C5; moe_gemm_efficiency and "
                          "moe_weight_read_efficiency from DeepGEMM's published grouped-GEMM figures (kernel "
                          "measurements); attention_compute_efficiency from FlashAttention-3's published causal "
                          "forward (kernel measurement); the kernel switches from the cited kernel facts")
    versions = {"trtllm": "0.9-1.0", "vllm": "0.11", "sglang": "0.5.5", CDNA3: "0.9.1 (ROCm 6.4.1)"}
    # predictions with the fitted profiles (each case under its own engine x class x generation profile)
    tables = {"calibration": rows_table(cal, profiles=profiles), "validation": rows_table(val, profiles=profiles),
              "engines_fit": rows_table([c for c in eng if c.use == "fit"], profiles=profiles),
              "engines_check": rows_table([c for c in eng if c.use == "check"], profiles=profiles),
              "engines_bursts": rows_table([c for c in eng if c.use == "burst-lengths"], profiles=profiles),
              "engines_mi300x": rows_table(afit, profiles=profiles),
              # vLLM's second source (OCI, MI300X): the cdna3 profile's held-out source, never fitted; its band
              "engines_second_source": rows_table(oci, profiles=profiles)}
    val_rows = tables["validation"] + tables["engines_check"]
    fitted_sources = {"vllm": "gpustack"}
    bands = {}
    for key in profiles:
        if len(key) == 3:
            continue
        (engine, cls) = key
        own = [r for r in val_rows if r["engine"] == engine and r["arch_class"] == cls
               and not (engine in fitted_sources and r["id"].startswith("X"))]
        bands[(engine, cls)] = (band([r["log_ratio"] for r in own]), len(own)) if len(own) >= MIN_BAND_ROWS else (None, len(own))
    for key in DEEPGEMM_PROFILES:  # no validation rows of its own: the engine x class's band
        bands[key] = bands[key[:2]]
    # sglang x mla x hopper has validation rows of its own: the disaggregated DeepSeek-V3 reproductions (LMSYS and
    # DeepSeek's published per-node figures; nothing in the profile is fitted on them)
    reps = [{**r, "arch_class": "mla", "generation": "hopper",
             "log_ratio": float(np.log(r["published_per_node"] / r["modeled_per_node"]))} for r in reproduction_rows()]
    if len(reps) >= MIN_BAND_ROWS:
        bands[("sglang", "mla", "hopper")] = (band([r["log_ratio"] for r in reps]), len(reps))
    held = tables["engines_second_source"]
    bands[CDNA3] = ((band([r["log_ratio"] for r in held]), len(held)) if len(held) >= MIN_BAND_ROWS
                    else (None, len(held)))
    pooled = band([r["log_ratio"] for r in tables["validation"]])
    wide = (round(min(pooled[0] ** 2, WIDE_BAND_FLOOR[0]), 3), round(max(pooled[1] ** 2, WIDE_BAND_FLOOR[1]), 3))
    # the reverse leave-one-source-out: the same three efficiencies fitted on OCI's rows, AMD's rows predicted
    rev = fit_dense(list(oci), {**trt, **NEUTRAL_MOE})
    loso_cdna3 = [{"held_out_source": "OCI MI300X blog (W1-W8)", "fitted_on": [c.id for c in afit],
                   "profile": {n: cdna3[n] for n in NAMES}, **summary(held)},
                  {"held_out_source": "AMD ROCm/vllm dev-docker README (M01-M40)", "fitted_on": [c.id for c in oci],
                   "profile": {n: rev[n] for n in NAMES}, **summary(rows_table(afit, rev))}]
    return {"trtllm_fit": trt, "trtllm_shipped": shipped, "vllm_moe_fit": vllm, "vllm_moe_tied_fit": tied, "vllm_cdna3_fit": cdna3,
            "profiles": profiles, "fitted_on": fitted_on, "versions": versions, "tables": tables, "bands": bands,
            "wide_band": wide, "loso": loso_trtllm(cal, val), "loso_vllm_cdna3": loso_cdna3,
            "val_rows": val_rows + held + reps}


def profile_csv(f: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["engine", "arch_class", "generation", "name", "value", "unit", "fitted_on", "version_range",
                "source", "as_of", "note"])
    for key in f["profiles"]:
        if len(key) == 3:  # a generation's own fit: written in its engine x class's place below
            continue
        (engine, cls) = key
        for gen in ("hopper", "ampere", "blackwell", "cdna3"):
            # a DeepGEMM profile has rows of its own but no fit of its own (its dense rows are the class's)
            dg = (engine, cls, gen) in DEEPGEMM_PROFILES
            own = (engine, cls, gen) in f["profiles"] and not dg
            if gen in ("blackwell", "cdna3") and engine != "trtllm" and not own:
                continue
            pkey = (engine, cls, gen) if (own or dg) else (engine, cls)
            params = f["profiles"][pkey]
            (bnd, n_rows) = f["bands"][pkey]
            extrap = bnd is None
            lo, hi = f["wide_band"] if extrap else bnd
            moe_fitted = params["moe_gemm_efficiency"] != 1.0
            cap, cap_src = MAX_BATCH_CAP[engine]
            if engine == "vllm" and gen == "ampere":
                cap = VLLM_A100_CAP
            budget = VLLM_A100_TOKEN_BUDGET if (engine == "vllm" and gen == "ampere") else TOKEN_BUDGET[engine][0]
            measured_gen = own or gen in ("hopper", "ampere")
            vals = {**params, "max_batch_cap": cap, "max_num_batched_tokens": budget,
                    "mixed_prefill": MIXED_PREFILL[engine], "throughput_ratio_p10": lo, "throughput_ratio_p90": hi,
                    "band_rows": float(n_rows), "extrapolated": 1.0 if (extrap or not measured_gen) else 0.0}
            if dg:
                vals.update({n: v[0] for n, v in KERNEL_SWITCHES.items()})
            for name, value in vals.items():
                note = ""
                as_of = MOE_WEIGHT_READ[2] if name == "moe_weight_read_efficiency" else AS_OF
                if dg and name in KERNEL_SWITCHES:
                    _, row_src, as_of, note = KERNEL_SWITCHES[name]
                elif dg and name in ("moe_gemm_efficiency", "moe_weight_read_efficiency"):
                    row_src, as_of = DEEPGEMM_SOURCE, DEEPGEMM_AS_OF
                    note = ("DeepSeek-V3's expert layers on DeepGEMM (H800): the contiguous layers' fraction of FP8 "
                            "peak / compute_efficiency (benchmarks/fit_serving_efficiency.py deepgemm_profile_values)"
                            if name == "moe_gemm_efficiency" else
                            "DeepSeek-V3's expert layers on DeepGEMM (H800): the masked 4 x 256 layer's expert weight "
                            "bytes per second over the datasheet HBM / hbm_bandwidth_efficiency "
                            "(benchmarks/fit_serving_efficiency.py deepgemm_profile_values)")
                elif dg and name == "attention_compute_efficiency":
                    row_src, as_of = FA3_SOURCE, FA3_AS_OF
                    note = ("the prompts' causal attention (MLA prefill on SGLang's fa3 backend) at FlashAttention-3's "
                            f"measured fraction of the BF16 peak: {FA3_CAUSAL_HDIM128[3][1]} TFLOPs/s at "
                            f"{FA3_SEQ_LEN} tokens, head dim 128, over the H100 SXM datasheet 989.4 "
                            "(benchmarks/fit_serving_efficiency.py attention_kernel_efficiency); applies where "
                            "attention_at_kernel_precision puts attention at the BF16 peak, decode attention included; the roofline "
                            "takes the published curve at each prompt's length (data/serving_attention_efficiency.csv, "
                            "serving_catalog.attention_efficiency_at) and this value where no length is given")
                elif name == "max_batch_cap":
                    note, row_src = cap_src, cap_src
                elif name in ("max_num_batched_tokens", "mixed_prefill"):
                    row_src = TOKEN_BUDGET[engine][1]
                elif name.startswith("throughput_ratio"):
                    row_src = ("P10/P90 of measured/modeled on the validation rows of this engine x class" if not extrap
                               else f"extrapolated: fewer than {MIN_BAND_ROWS} validation rows; the pooled "
                               "validation band doubled in log space, at least 0.67-1.5")
                    if own and not extrap:
                        row_src += f" x generation ({gen}: its held-out source)"
                    if dg and not extrap:
                        row_src += (f" x generation ({gen}: the disaggregated DeepSeek-V3 reproductions of "
                                    "data/serving_deployments.csv, LMSYS LM1-LM6 and DeepSeek DS2, held out)")
                elif name in ("band_rows", "extrapolated"):
                    row_src = (f"computed by benchmarks/fit_serving_efficiency.py: validation rows of this engine x "
                               f"class from sources not fitted on (extrapolated below {MIN_BAND_ROWS}, or off Hopper/Ampere)")
                    if own:
                        row_src += f"; {gen} has a fit of its own"
                elif own and name in NAMES:
                    if NAMES.index(name) in CDNA3_FREE:
                        row_src = AMD_SOURCE
                    else:
                        row_src = TRT_SOURCE
                        note = "held at the trtllm C1-C5 value (every fitted row runs TP 8: not identified)"
                elif name == "moe_weight_read_efficiency":
                    row_src = MOE_WEIGHT_READ[1]
                    if gen != "hopper":
                        note = "no measurement at this per-expert size on this generation: the Hopper value"
                elif name == "moe_gemm_efficiency" and moe_fitted:
                    row_src = ENG_SOURCE
                    if (engine, cls) != ("vllm", "moe"):
                        note = "copied from the vllm/moe fit (no fixed-length measurement of its own)"
                        if "moe_weight_read_efficiency" not in params and MOE_WEIGHT_READ is not None:
                            note = ("copied from the vllm/moe fit with the expert reads tied to it (no fixed-length "
                                    "or kernel measurement of its own)")
                else:
                    row_src = TRT_SOURCE if name in NAMES else "billshape default: neutral (no MoE kernel or " \
                        "all-to-all penalty beyond the roofline; not identified by the shipped measurements)"
                if not measured_gen:
                    note = (note + " " if note else "") + "no measurement on this generation: Hopper values"
                w.writerow([engine, cls, gen, name, repr(float(value)) if name not in ("band_rows", "extrapolated")
                            else f"{value:g}", UNITS[name], f["fitted_on"][pkey],
                            f["versions"][pkey if own else engine], row_src, AMD_AS_OF if own else as_of, note])
    return buf.getvalue()


def error_figures(f: dict) -> dict:
    t = f["tables"]
    out = {"calibration_trtllm": summary(t["calibration"]), "validation_trtllm": summary(t["validation"]),
           "validation_trtllm_dense": summary([r for r in t["validation"] if r["arch_class"] == "dense"]),
           "vllm_moe_fit": summary(t["engines_fit"]), "vllm_moe_check": summary(t["engines_check"]),
           "sharegpt_bursts": summary(t["engines_bursts"]), "loso_trtllm": f["loso"],
           "vllm_second_source": summary(t["engines_second_source"]),
           "vllm_cdna3_fit": summary(t["engines_mi300x"]), "loso_vllm_cdna3": f["loso_vllm_cdna3"],
           "vllm_cdna3_profile": {n: f["vllm_cdna3_fit"][n] for n in NAMES},
           "vllm_cdna3_band": list(f["bands"][CDNA3][0]) if f["bands"][CDNA3][0] else None,
           "cases": {k: [{kk: r[kk] for kk in ("id", "engine", "model", "gpu", "measured_per_gpu",
                                              "predicted_per_gpu", "error_pct")} for r in v] for k, v in t.items()}}
    # SGLang's fixed-length validation: the disaggregated DeepSeek-V3 reproductions (the sglang x mla profile is
    # not fitted on anything; data/serving_deployments.csv), by source; DS1, a day average, is checked against DS2
    reps = reproduction_rows()
    out["sglang_lmsys"] = summary([r for r in reps if r["id"].startswith("LM")])
    out["sglang_deepseek"] = summary([r for r in reps if r["id"].startswith("DS")])
    out["cases"]["sglang_reproductions"] = reps
    covered = []
    for r in f["val_rows"]:
        key = (r["engine"], r["arch_class"], r["generation"])
        bnd, _ = f["bands"][key if key in f["bands"] else key[:2]]
        lo, hi = f["wide_band"] if bnd is None else bnd
        covered.append(lo <= np.exp(r["log_ratio"]) <= hi)
    out["band_coverage_pct"] = round(100 * float(np.mean(covered)), 1)
    out["band_rows"] = len(covered)
    return out


def reproduction_rows() -> list[dict]:
    """The SGLang deployments of ``data/serving_deployments.csv`` that are checked by their own error (not DS1, a
    day average checked against DS2), as ``summary`` rows."""
    from billshape import serving_disagg as sd

    out = []
    for d in sd.deployments():
        if d.reference or d.engine != "sglang":
            continue
        g = sd.reproduce(d)
        out.append({"id": d.id, "engine": d.engine, "model": d.model, "gpu": d.gpu,
                    "published_per_node": d.published_tokens_per_second_per_node,
                    "modeled_per_node": float(g["modeled"]), "error_pct": round(100 * g["error"], 1)})
    return out


def render_blocks(fig: dict) -> dict[str, str]:
    """The generated README and docs blocks (between ``<!-- serving-errors:start -->`` and ``:end -->``)."""
    c, v, vd = fig["calibration_trtllm"], fig["validation_trtllm"], fig["validation_trtllm_dense"]
    lo = {g["held_out_source"]: g for g in fig["loso_trtllm"]}
    readme = (f"Serving model errors (generated from docs/serving_errors.json): TensorRT-LLM MAPE {c['mape_pct']} % "
              f"on its calibration cases, {v['mape_pct']} % on {v['cases']} held-out validation cases (worst "
              f"{v['worst_pct']:+} %, {v['worst_id']}); vLLM MoE {fig['vllm_moe_fit']['mape_pct']} % on its fit cases and "
              f"{fig['vllm_moe_check']['mape_pct']} % on its held-out fixed-length case; ShareGPT-length bursts "
              f"(modeled as a burst over the sharegpt length distribution, not fitted on) MAPE "
              f"{fig['sharegpt_bursts']['mape_pct']} %, worst {fig['sharegpt_bursts']['worst_pct']:+} %; vLLM dense on "
              f"MI300X (fitted on AMD's published vLLM runs) {fig['vllm_cdna3_fit']['mape_pct']} % on its "
              f"{fig['vllm_cdna3_fit']['cases']} fit cases and {fig['vllm_second_source']['mape_pct']} % on its held-out "
              f"second source (OCI, 8 x MI300X; worst {fig['vllm_second_source']['worst_pct']:+} %); SGLang serving "
              f"DeepSeek-V3 disaggregated (nothing fitted) {fig['sglang_lmsys']['mape_pct']} % on LMSYS's "
              f"{fig['sglang_lmsys']['cases']} published per-node figures (worst {fig['sglang_lmsys']['worst_pct']:+} %, "
              f"{fig['sglang_lmsys']['worst_id']}) and {fig['sglang_deepseek']['worst_pct']:+} % on DeepSeek's prefill "
              f"profile. The P10-P90 band covers "
              f"{fig['band_coverage_pct']} % of the {fig['band_rows']} validation measurements.")
    lines = ["| engine | set | cases | MAPE | worst |", "|---|---|---|---|---|",
             f"| trtllm | calibration (C1-C5) | {c['cases']} | {c['mape_pct']} % | {c['worst_pct']:+} % ({c['worst_id']}) |",
             f"| trtllm | validation (V1-V9) | {v['cases']} | {v['mape_pct']} % | {v['worst_pct']:+} % ({v['worst_id']}) |",
             f"| trtllm | validation, dense (V1-V8) | {vd['cases']} | {vd['mape_pct']} % | {vd['worst_pct']:+} % ({vd['worst_id']}) |"]
    for name, g in lo.items():
        lines.append(f"| trtllm | leave-one-source-out: {name} held out | {g['cases']} | {g['mape_pct']} % | "
                     f"{g['worst_pct']:+} % ({g['worst_id']}) |")
    for key, label in (("vllm_moe_fit", "vllm | calibration (fixed-length bursts)"),
                       ("vllm_moe_check", "vllm | held-out fixed-length case (same source)"),
                       ("sharegpt_bursts", "vllm+sglang | ShareGPT bursts (held out: burst model over the sharegpt lengths)")):
        g = fig[key]
        lines.append(f"| {label} | {g['cases']} | {g['mape_pct']} % | {g['worst_pct']:+} % ({g['worst_id']}) |")
    g = fig["vllm_cdna3_fit"]
    lines.append(f"| vllm | dense x cdna3 calibration: AMD ROCm/vllm dev-docker README, vLLM 0.9.1 (M01-M40) | "
                 f"{g['cases']} | {g['mape_pct']} % | {g['worst_pct']:+} % ({g['worst_id']}) |")
    g = fig["vllm_second_source"]
    lines.append(f"| vllm | leave-one-source-out: OCI MI300X blog held out (dense x cdna3 fitted on AMD's README only) | "
                 f"{g['cases']} | {g['mape_pct']} % | {g['worst_pct']:+} % ({g['worst_id']}) |")
    g = fig["loso_vllm_cdna3"][1]
    lines.append(f"| vllm | leave-one-source-out, reverse: AMD README held out (fitted on OCI W1-W8 only) | "
                 f"{g['cases']} | {g['mape_pct']} % | {g['worst_pct']:+} % ({g['worst_id']}) |")
    for key, label in (("sglang_lmsys", "sglang | held out, fixed lengths: LMSYS's disaggregated DeepSeek-V3 per-node "
                                        "figures (LM1-LM6; the mla profile is not fitted)"),
                       ("sglang_deepseek", "sglang | held out, second source: DeepSeek's prefill profile (DS2)")):
        g = fig[key]
        lines.append(f"| {label} | {g['cases']} | {g['mape_pct']} % | {g['worst_pct']:+} % ({g['worst_id']}) |")
    lines.append("| sglang | moe (Qwen3) | - | ShareGPT bursts only (above): no fixed-length case | - |")
    lines.append("")
    lines.append(f"P10-P90 band coverage: {fig['band_coverage_pct']} % of {fig['band_rows']} validation measurements.")
    lines += ["", "| case | engine | GPU | use | measured tok/s/GPU | billshape | error |", "|---|---|---|---|---|---|---|"]
    for key, use in (("engines_fit", "fit"), ("engines_check", "held out"), ("engines_bursts", "ShareGPT burst, held out"),
                     ("engines_mi300x", "fit (AMD README, MI300X)"),
                     ("engines_second_source", "second source (OCI, MI300X), held out")):
        for r in fig["cases"][key]:
            lines.append(f"| {r['id']} | {r['engine']} | {r['gpu']} | {use} | {r['measured_per_gpu']:,.1f} | "
                         f"{r['predicted_per_gpu']:,.1f} | {r['error_pct']:+} % |")
    return {"readme": readme, "docs": "\n".join(lines)}


START, END = "<!-- serving-errors:start -->", "<!-- serving-errors:end -->"


def write_blocks(fig: dict) -> None:
    """Replace the generated blocks in README.md and docs/serving.md."""
    blocks = render_blocks(fig)
    for path, key in ((ROOT / "README.md", "readme"), (ROOT / "docs" / "serving.md", "docs")):
        text = path.read_text(encoding="utf-8")
        i, j = text.find(START), text.find(END)
        if i < 0 or j < i:
            raise SystemExit(f"{path}: no {START} ... {END} block")
        path.write_text(text[:i] + START + "\n" + blocks[key] + "\n" + text[j:], encoding="utf-8")


def main() -> None:
    f = fit_all()
    fig = error_figures(f)
    if "--write" in sys.argv:
        PROFILES.write_text(profile_csv(f), encoding="utf-8")
        ERRORS.write_text(json.dumps(fig, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        write_blocks(fig)
    print(json.dumps({"trtllm_fit": f["trtllm_fit"], "trtllm_shipped": f["trtllm_shipped"],
                      "vllm_moe_profile": f["vllm_moe_fit"], "bands": {"/".join(k): v for k, v in f["bands"].items()},
                      "wide_band": f["wide_band"], **{k: v for k, v in fig.items() if k != "cases"}}, indent=1))


if __name__ == "__main__":
    main()
