r"""Serving model: throughput, latency and $/token of a self-hosted LLM from its architecture and hardware.

The roofline equations live in :mod:`billshape.inference`; this module composes them with the architecture
catalog (``data/architectures.csv``), the accelerator catalog and the fitted efficiencies
(``data/serving_efficiency.csv``) into a :class:`ServeEstimate` that carries its assumptions.

Model (see ``docs/serving.md``)
-------------------------------
*Prefill* is compute bound: :math:`F_{pre} / (t \, \eta_c P) + t_{AR}`.
*Decode* reads the weights (for MoE: the experts the step touches) and the KV cache once per step:
:math:`t_{step} = \max((W + B c k)/(t \, \eta_{bw} BW), F_{step}/(t \, \eta_c P)) + t_{AR} + t_0`.

``static`` mode: B prompts are prefilled together, then decoded together for O steps (TTFT = prefill time,
output tokens/s = B O / (prefill + O steps)). ``max-load`` mode: continuous batching with chunked prefill in
steady state: the batch is the largest that fits at the mean context :math:`I + O/2`; each step decodes B tokens
and prefills :math:`B I / O` prompt tokens, so output tokens/s = B / step.

References
----------
.. [1] Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102.
.. [2] Kwon et al., "Efficient Memory Management for LLM Serving with PagedAttention", SOSP 2023,
       arXiv:2309.06180 (continuous batching, paged KV cache).
.. [3] Agrawal et al., "Sarathi-Serve", OSDI 2024, arXiv:2403.02310 (chunked prefill piggybacked on decode).
.. [4] billshape seed 003, section 37.2 (cost per token = $/h / (tokens/h x utilization)).
"""

from __future__ import annotations

import csv
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from billshape import _validate as v
from billshape import catalog, inference
from billshape.catalog import Constant, Row, _numeric_fields, _typed, read_rows
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Assumption, Result, derived, user

WEIGHT_PRECISIONS = ("bf16", "fp16", "fp8", "fp4", "int4")
KV_PRECISIONS = ("bf16", "fp16", "fp8", "fp4", "int4", "int8")
MODES = ("static", "max-load")
#: compute precision of the matrix multiplies for each weight format (int4 is weight-only: W4A16)
COMPUTE_PRECISION = {"bf16": "bf16", "fp16": "bf16", "fp8": "fp8", "fp4": "fp4", "int4": "bf16"}


# --------------------------------------------------------------------------------------------------------------
# Architecture catalog
# --------------------------------------------------------------------------------------------------------------


class Architecture(Row):
    """One model architecture (from its published config.json)."""

    name: str
    aliases: tuple[str, ...] = ()
    attention: Literal["mha", "gqa", "mqa", "mla"]
    layers: float
    hidden_size: float
    heads: float
    kv_heads: float
    head_dim: float
    ffn_type: Literal["swiglu", "gelu"] = "swiglu"
    ffn_size: float | None = None
    dense_layers: float = 0
    moe_ffn_size: float | None = None
    experts_routed: float = 0
    experts_shared: float = 0
    experts_per_token: float = 0
    vocab_size: float
    tied_embeddings: float = 0
    qkv_bias: float = 0
    q_lora_rank: float | None = None
    kv_lora_rank: float | None = None
    qk_rope_head_dim: float | None = None
    qk_nope_head_dim: float | None = None
    v_head_dim: float | None = None
    published_params_total: float | None = None
    published_params_active: float | None = None
    note: str = ""

    @property
    def is_moe(self) -> bool:
        return self.experts_routed > 0

    @property
    def moe_layers(self) -> float:
        return self.layers - self.dense_layers if self.is_moe else 0.0

    def counts(self) -> dict[str, float]:
        """Parameter counts by part (see :func:`parameter_counts`)."""
        return parameter_counts(self)

    @property
    def params_total(self) -> float:
        return self.counts()["total"]

    @property
    def params_active(self) -> float:
        return self.counts()["active"]

    @property
    def attention_dim(self) -> float:
        """Effective attention width for the context FLOPs (``4 L d_attn c`` per token)."""
        if self.attention == "mla":
            # absorbed MLA: scores over (d_c + d_R), values over d_c, per head
            return self.heads * (2 * self.kv_lora_rank + self.qk_rope_head_dim) / 2
        return self.heads * self.head_dim

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        if self.attention == "mla":
            return float(inference.kv_bytes_per_token_mla(self.layers, self.kv_lora_rank, self.qk_rope_head_dim,
                                                          bytes_per_value))
        return float(inference.kv_bytes_per_token_gqa(self.layers, self.kv_heads, self.head_dim, bytes_per_value))


def parameter_counts(a: Architecture) -> dict[str, float]:
    r"""Parameters of a decoder-only transformer from its config.

    Attention: GQA :math:`d (h d_h) + 2 d (h_{kv} d_h) + (h d_h) d`; MLA adds the low-rank query and KV
    projections. FFN: SwiGLU has three matrices (:math:`3 d f`), a GELU MLP two. MoE layers hold
    ``experts_routed + experts_shared`` FFNs and a router; a token activates ``experts_per_token`` routed
    ones plus the shared ones. Embeddings and the output head count in both total and active (as the
    model cards do); norms are included.

    Returns
    -------
    dict
        ``total``, ``active``, ``expert`` (routed expert params, all layers), ``embedding`` [count].

    References
    ----------
    .. [1] Touvron et al. 2023, arXiv:2307.09288 (SwiGLU FFN, GQA); DeepSeek-AI 2024, arXiv:2412.19437 (MLA,
           DeepSeekMoE); Jiang et al. 2024, arXiv:2401.04088 (Mixtral).
    """
    d, L = a.hidden_size, a.layers
    if a.attention == "mla":
        h = a.heads
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        q = d * a.q_lora_rank + a.q_lora_rank + a.q_lora_rank * h * qk if a.q_lora_rank else d * h * qk
        kv = d * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank + a.kv_lora_rank * h * (
            a.qk_nope_head_dim + a.v_head_dim)
        attn = q + kv + h * a.v_head_dim * d
    else:
        q_dim, kv_dim = a.heads * a.head_dim, a.kv_heads * a.head_dim
        attn = d * q_dim + 2 * d * kv_dim + q_dim * d
        if a.qkv_bias:
            attn += q_dim + 2 * kv_dim
    mats = 3 if a.ffn_type == "swiglu" else 2
    norms = 2 * d
    dense_ffn = mats * d * (a.ffn_size or 0)
    expert = mats * d * (a.moe_ffn_size or 0)
    dense_layers = a.dense_layers if a.is_moe else L
    moe_layers = L - dense_layers
    router = d * a.experts_routed
    embedding = a.vocab_size * d * (1 if a.tied_embeddings else 2)
    common = L * (attn + norms) + dense_layers * dense_ffn + moe_layers * (router + a.experts_shared * expert) + embedding + d
    routed_all = moe_layers * a.experts_routed * expert
    routed_active = moe_layers * a.experts_per_token * expert
    return {"total": common + routed_all, "active": common + routed_active, "expert": routed_all,
            "expert_one_per_layer": expert, "embedding": embedding}


@lru_cache(maxsize=None)
def architectures() -> tuple[Architecture, ...]:
    """Every catalogued architecture."""
    num = _numeric_fields(Architecture) | {"layers", "hidden_size", "heads", "kv_heads", "head_dim", "vocab_size",
                                           "dense_layers", "experts_routed", "experts_shared",
                                           "experts_per_token", "tied_embeddings", "qkv_bias"}
    out = []
    for r in read_rows("architectures.csv"):
        r = {k: (("0" if k in ("dense_layers", "experts_routed", "experts_shared", "experts_per_token",
                                "tied_embeddings", "qkv_bias") else val) if val == "" and k in num else val)
             for k, val in r.items()}
        out.append(_typed(Architecture, r, num))
    return tuple(out)


@lru_cache(maxsize=None)
def _arch_index() -> dict[str, Architecture]:
    index: dict[str, Architecture] = {}
    for a in architectures():
        for key in (a.name.lower(), *a.aliases):
            index[key] = a
    return index


def architecture(name: str, field: str = "--model") -> Architecture:
    """Look up an architecture by name or alias (case-insensitive); unknown names suggest the closest."""
    key = str(name).strip().lower()
    index = _arch_index()
    if key not in index:
        raise unknown_name(field, name, [a.name for a in architectures()])
    return index[key]


# --------------------------------------------------------------------------------------------------------------
# Efficiency defaults
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def efficiencies() -> dict[str, Constant]:
    """Fitted and sourced defaults of the serving model, by name (``data/serving_efficiency.csv``)."""
    num = _numeric_fields(Constant)
    return {r["name"]: _typed(Constant, r, num) for r in read_rows("serving_efficiency.csv")}


def _eff(name: str) -> Constant:
    return efficiencies()[name]


def bytes_per_value(precision: str, field: str = "--precision") -> Constant:
    """Storage bytes per parameter or cached value at ``precision`` (with quantisation scales)."""
    p = str(precision).strip().lower()
    allowed = KV_PRECISIONS if field == "--kv-precision" else WEIGHT_PRECISIONS
    if p not in allowed:
        raise unknown_name(field, precision, allowed)
    return _eff(f"bytes_per_value_{'bf16' if p == 'fp16' else p}")


EFFICIENCY_NAMES = ("hbm_bandwidth_efficiency", "compute_efficiency", "step_overhead_seconds",
                    "allreduce_latency_seconds")


def default_efficiency() -> dict[str, float]:
    """The fitted efficiency parameters as a plain dict (``EFFICIENCY_NAMES``)."""
    return {n: _eff(n).value for n in EFFICIENCY_NAMES}


# --------------------------------------------------------------------------------------------------------------
# Composed roofline (vectorised over numbers; no catalog look-ups)
# --------------------------------------------------------------------------------------------------------------


def roofline(*, params_total, params_active, expert_params, experts_routed, experts_per_token, layers, hidden_size,
             attention_dim, kv_bytes_per_token, weight_bytes_per_param, hbm_bytes_per_second, peak_flops_per_second,
             memory_bytes_per_gpu, link_bytes_per_second, tensor_parallel, input_tokens, output_tokens, batch=None,
             mode="static", hbm_bandwidth_efficiency, compute_efficiency, step_overhead_seconds,
             allreduce_latency_seconds, kv_memory_fraction=0.9, max_batch_cap=2048.0, activation_bytes=2.0):
    r"""Throughput and latency of one model replica of ``tensor_parallel`` GPUs (vectorised).

    Parameters are numbers or numpy arrays in base units (bytes, FLOP/s, tokens, seconds). ``batch`` None
    means the largest batch that fits (capped by ``max_batch_cap``). Returns a dict of arrays:
    ``batch``, ``max_batch``, ``step_seconds`` (TPOT), ``ttft_seconds``, ``prefill_seconds``,
    ``output_tokens_per_second`` and ``input_tokens_per_second`` (per replica), ``memory_bound`` (bool),
    ``weight_bytes``.
    """
    t = np.asarray(tensor_parallel, dtype=float)
    i_len = np.asarray(input_tokens, dtype=float)
    o_len = np.asarray(output_tokens, dtype=float)
    w_total = inference.weight_bytes(params_total, weight_bytes_per_param)
    static = mode == "static"
    # static: each sequence reserves its full context; max-load (paged KV): the mean context I + O/2
    ctx_hold = i_len + o_len if static else i_len + o_len / 2.0
    fits = inference.max_batch(t * memory_bytes_per_gpu, w_total, kv_bytes_per_token, ctx_hold, kv_memory_fraction)
    if batch is None:
        b = np.minimum(fits, max_batch_cap)
    else:
        b = np.asarray(batch, dtype=float) + 0 * fits
    b_pos = np.maximum(b, 1.0)
    ctx_mean = i_len + (o_len - 1.0) / 2.0
    # MoE: dense part always read; routed experts as many as the step touches
    dense_params = np.asarray(params_total, dtype=float) - np.asarray(expert_params, dtype=float)
    e = np.asarray(experts_routed, dtype=float)
    per_expert = np.where(e > 0, np.asarray(expert_params, dtype=float) / np.where(e > 0, e, 1.0), 0.0)
    prefill_per_step = np.where(static, 0.0, b_pos * i_len / o_len)
    step_tokens = b_pos + prefill_per_step
    touched = inference.moe_experts_touched(e, experts_per_token, step_tokens)
    read_params = dense_params + per_expert * touched
    w_step = inference.weight_bytes(read_params, weight_bytes_per_param) / t
    kv_step = b_pos * ctx_mean * np.asarray(kv_bytes_per_token, dtype=float) / t
    step_bytes = w_step + kv_step
    pre_one = inference.prefill_flops(params_active, i_len, layers, attention_dim)  # one prompt
    pre_gemm_one = 2.0 * np.asarray(params_active, dtype=float) * i_len
    gemm_fl = (2.0 * np.asarray(params_active, dtype=float) * b_pos
               + np.where(static, 0.0, b_pos / o_len * pre_gemm_one)) / t
    attn_fl = (inference.forward_flops(0.0, b_pos, layers, attention_dim, ctx_mean)
               + np.where(static, 0.0, b_pos / o_len * (pre_one - pre_gemm_one))) / t
    ar_msg = step_tokens * np.asarray(hidden_size, dtype=float) * activation_bytes
    ar_step = inference.allreduce_seconds(ar_msg, t, link_bytes_per_second, allreduce_latency_seconds,
                                          2.0 * np.asarray(layers, dtype=float))
    step = inference.decode_step_seconds(w_step, kv_step, hbm_bytes_per_second, hbm_bandwidth_efficiency, gemm_fl,
                                         attn_fl, peak_flops_per_second, compute_efficiency, ar_step,
                                         step_overhead_seconds)
    mem_time = step_bytes / (np.asarray(hbm_bytes_per_second, dtype=float) * hbm_bandwidth_efficiency)
    comp_time = (gemm_fl + attn_fl) / (np.asarray(peak_flops_per_second, dtype=float) * compute_efficiency)
    # prefill of the static batch (all prompts together) or of one prompt (max-load TTFT)
    n_pre = np.where(static, b_pos, 1.0)
    ar_pre = inference.allreduce_seconds(n_pre * i_len * np.asarray(hidden_size, dtype=float) * activation_bytes, t,
                                         link_bytes_per_second, allreduce_latency_seconds,
                                         2.0 * np.asarray(layers, dtype=float))
    pre_s = inference.prefill_seconds(n_pre * pre_one / t, peak_flops_per_second, compute_efficiency, ar_pre)
    if static:
        total = pre_s + o_len * step
        out_tps = b_pos * o_len / total
        ttft = pre_s
    else:
        out_tps = b_pos / step
        ttft = pre_s + step
    # cost attribution: of the replica time one request takes (O / throughput), its prefill share prices input
    time_per_request = o_len / out_tps
    prefill_per_request = np.minimum(np.where(static, pre_s / b_pos, pre_s), 0.999 * time_per_request)
    return {
        "batch": b, "max_batch": fits, "step_seconds": step, "ttft_seconds": ttft, "prefill_seconds": pre_s,
        "output_tokens_per_second": out_tps,
        "input_tokens_per_second": i_len / prefill_per_request,
        "decode_tokens_per_second": o_len / (time_per_request - prefill_per_request),
        "requests_per_second": out_tps / o_len,
        "memory_bound": mem_time >= comp_time, "weight_bytes": w_total, "step_bytes_per_gpu": step_bytes,
    }


def hardware_inputs(arch: Architecture, acc: catalog.Accelerator, precision: str, kv_precision: str) -> dict[str, Any]:
    """The roofline's architecture and hardware arguments for one model on one accelerator."""
    wb = bytes_per_value(precision).value
    kb = bytes_per_value(kv_precision, "--kv-precision").value
    counts = arch.counts()
    compute_precision = COMPUTE_PRECISION[precision]
    if acc.memory_bytes is None or acc.memory_bytes_per_second is None:
        raise BillshapeInputError("--gpu", acc.name, "an accelerator with catalogued memory and bandwidth")
    link = (acc.interconnect_bytes_per_second or _eff("pcie_bytes_per_second").value * 2) / 2.0
    return dict(
        params_total=counts["total"], params_active=counts["active"], expert_params=counts["expert"],
        experts_routed=arch.experts_routed, experts_per_token=arch.experts_per_token, layers=arch.layers,
        hidden_size=arch.hidden_size, attention_dim=arch.attention_dim, kv_bytes_per_token=arch.kv_bytes_per_token(kb),
        weight_bytes_per_param=wb, hbm_bytes_per_second=acc.memory_bytes_per_second,
        peak_flops_per_second=acc.peak_flops_per_second(compute_precision), memory_bytes_per_gpu=acc.memory_bytes,
        link_bytes_per_second=link,
    )


class Case(Row):
    """A published serving measurement (calibration or validation)."""

    id: str
    model: str
    precision: str
    kv_precision: str
    gpu: str
    gpus: float
    tensor_parallel: float
    mode: str
    batch: str
    input_tokens: float
    output_tokens: float
    engine: str = ""
    measured_output_tokens_per_second_per_gpu: float
    tolerance: float | None = None
    note: str = ""


def cases(filename: str = "serving_calibration.csv") -> tuple[Case, ...]:
    """Published measurements shipped in ``data/`` (``serving_calibration.csv`` or ``serving_validation.csv``)."""
    num = _numeric_fields(Case)
    return tuple(_typed(Case, r, num) for r in read_rows(filename))


def predict_case(case: Case, efficiency: dict[str, float] | None = None) -> dict[str, Any]:
    """The model's prediction for a published case: output tokens/s per GPU and the roofline dict."""
    eff = default_efficiency() if efficiency is None else efficiency
    arch = architecture(case.model)
    acc = catalog.gpu(case.gpu)
    hw = hardware_inputs(arch, acc, case.precision, case.kv_precision)
    mode = "max-load" if case.batch == "max" else case.mode
    r = roofline(**hw, tensor_parallel=case.tensor_parallel, input_tokens=case.input_tokens,
                 output_tokens=case.output_tokens, batch=None if case.batch == "max" else float(case.batch),
                 mode=mode, kv_memory_fraction=_eff("kv_memory_fraction").value,
                 max_batch_cap=_eff("max_batch_cap").value, **eff)
    replicas = case.gpus / case.tensor_parallel
    per_gpu = float(r["output_tokens_per_second"]) * replicas / case.gpus
    return {"predicted_per_gpu": per_gpu, "roofline": r}
