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
from billshape.catalog import Constant, Row, load_typed, numeric_fields, read_rows, typed_row
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
    max_context_tokens: float | None = None
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

    def valid_tensor_parallel(self, tp: float) -> bool:
        """Whether ``tp`` GPUs can shard this model's attention: ``tp`` divides the query heads, and the KV heads
        are either split evenly (``kv_heads % tp == 0``) or replicated whole (``tp % kv_heads == 0``), as vLLM,
        SGLang and TensorRT-LLM require."""
        t = int(tp)
        if t != tp or t < 1:
            return False
        kv = int(self.kv_heads)
        return int(self.heads) % t == 0 and (kv % t == 0 or t % kv == 0)

    def next_valid_tensor_parallel(self, at_least: float) -> int | None:
        """The smallest valid tensor-parallel size >= ``at_least`` (None when it would exceed the query heads)."""
        for t in range(max(1, math.ceil(at_least)), int(self.heads) + 1):
            if self.valid_tensor_parallel(t):
                return t
        return None

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
    num = numeric_fields(Architecture) | {"layers", "hidden_size", "heads", "kv_heads", "head_dim", "vocab_size",
                                           "dense_layers", "experts_routed", "experts_shared",
                                           "experts_per_token", "tied_embeddings", "qkv_bias"}
    out = []
    for r in read_rows("architectures.csv"):
        r = {k: (("0" if k in ("dense_layers", "experts_routed", "experts_shared", "experts_per_token",
                                "tied_embeddings", "qkv_bias") else val) if val == "" and k in num else val)
             for k, val in r.items()}
        out.append(typed_row(Architecture, r, num))
    return tuple(out)


@lru_cache(maxsize=None)
def _arch_index() -> dict[str, Architecture]:
    index: dict[str, Architecture] = {}
    for a in architectures():
        for key in (a.name.lower(), *a.aliases):
            index[key] = a
    return index


def architecture(name: str, field: str = "model") -> Architecture:
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
    return {c.name: c for c in load_typed(Constant, "serving_efficiency.csv")}


def _eff(name: str) -> Constant:
    return efficiencies()[name]


def bytes_per_value(precision: str, field: str = "precision") -> Constant:
    """Storage bytes per parameter or cached value at ``precision`` (with quantisation scales)."""
    p = str(precision).strip().lower()
    allowed = KV_PRECISIONS if field == "kv_precision" else WEIGHT_PRECISIONS
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
             allreduce_latency_seconds, kv_memory_fraction=0.9, max_batch_cap=2048.0, activation_bytes=2.0,
             moe_layers=0.0, dense_layers=None, expert_parallel=1.0, attention_dp=False, expert_load_cv=0.0):
    r"""Throughput and latency of one model replica of ``tensor_parallel`` GPUs (vectorised).

    Parameters are numbers or numpy arrays in base units (bytes, FLOP/s, tokens, seconds). ``batch`` None
    means the largest batch that fits (capped by ``max_batch_cap``). Returns a dict of arrays:
    ``batch``, ``max_batch``, ``step_seconds`` (TPOT), ``ttft_seconds``, ``prefill_seconds``,
    ``output_tokens_per_second`` and ``input_tokens_per_second`` (per replica), ``memory_bound`` (bool),
    ``weight_bytes``.

    Expert parallelism (``expert_parallel`` e = ``tensor_parallel``, MoE only): each GPU holds E/e whole experts
    instead of 1/t of every expert, and the MoE layers exchange tokens with an all-to-all (dispatch and combine)
    instead of an all-reduce. Attention data parallelism (``attention_dp``, with expert parallelism): every GPU
    holds the whole attention and dense weights and runs its own B/t sequences (no attention all-reduce), so each
    step reads the dense weights once per GPU rather than 1/t of them. The batch cap applies to the whole group.

    Imbalance (a step waits for its busiest GPU): with expert parallelism the busiest EP rank receives
    :math:`\lambda` times the mean tokens (:func:`billshape.inference.moe_rank_imbalance`, routing skew
    ``expert_load_cv``), which scales its grouped-GEMM FLOPs and all-to-all traffic; with attention-DP at max load
    each rank prefills the whole prompts that arrive at it, and the step waits for the rank that drew the most
    (:func:`billshape.inference.expected_max_poisson` of :math:`B/(t\,O)` prompts per rank per step). Both are
    returned (``expert_load_imbalance``, ``attention_dp_imbalance``: busiest over mean tokens per rank).
    """
    t = np.asarray(tensor_parallel, dtype=float)
    i_len = np.asarray(input_tokens, dtype=float)
    o_len = np.asarray(output_tokens, dtype=float)
    L = np.asarray(layers, dtype=float)
    d = np.asarray(hidden_size, dtype=float)
    ep = np.asarray(expert_parallel, dtype=float)
    use_ep = bool(np.any(ep > 1))
    dp_attn = bool(attention_dp) and use_ep
    # MoE: dense part always read; routed experts as many as the step touches
    dense_params = np.asarray(params_total, dtype=float) - np.asarray(expert_params, dtype=float)
    e = np.asarray(experts_routed, dtype=float)
    per_expert = np.where(e > 0, np.asarray(expert_params, dtype=float) / np.where(e > 0, e, 1.0), 0.0)
    expert_active = per_expert * np.asarray(experts_per_token, dtype=float)
    dense_active = np.asarray(params_active, dtype=float) - expert_active
    # attention-DP replicates the dense weights on every GPU of the group
    dense_copies = t if dp_attn else 1.0
    w_total = inference.weight_bytes(dense_params * dense_copies + np.asarray(expert_params, dtype=float),
                                     weight_bytes_per_param)
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
    prefill_per_step = np.where(static, 0.0, b_pos * i_len / o_len)
    step_tokens = b_pos + prefill_per_step
    touched = inference.moe_experts_touched(e, experts_per_token, step_tokens)
    # per GPU: dense weights 1/t of them (TP) or all of them (attention-DP); touched experts spread over t GPUs
    w_step = inference.weight_bytes(dense_params / (1.0 if dp_attn else t) + per_expert * touched / t,
                                    weight_bytes_per_param)
    kv_step = b_pos * ctx_mean * np.asarray(kv_bytes_per_token, dtype=float) / t
    step_bytes = w_step + kv_step
    pre_one = inference.prefill_flops(params_active, i_len, layers, attention_dim)  # one prompt
    pre_gemm_one = 2.0 * np.asarray(params_active, dtype=float) * i_len
    # imbalance: the busiest EP rank gets lam x the mean routed tokens; with attention-DP (max load) the busiest
    # rank prefills the most whole prompts of the step (Poisson maximum over the t ranks)
    lam = (inference.moe_rank_imbalance(e, experts_per_token, ep, step_tokens, expert_load_cv) if use_ep
           else np.ones_like(step_tokens))
    mean_tokens = step_tokens / t
    if dp_attn and not static:
        prompts_max = inference.expected_max_poisson(t, b_pos / (t * o_len))
        dense_tokens = b_pos / t + i_len * prompts_max
        attn_pre = prompts_max * (pre_one - pre_gemm_one)
    else:
        dense_tokens = mean_tokens
        attn_pre = np.where(static, 0.0, b_pos / o_len * (pre_one - pre_gemm_one)) / t
    dp_imb = dense_tokens / mean_tokens
    gemm_fl = 2.0 * dense_active * dense_tokens + 2.0 * expert_active * mean_tokens * lam
    attn_fl = inference.forward_flops(0.0, b_pos, layers, attention_dim, ctx_mean) / t + attn_pre
    # communication: TP all-reduces (2 per layer; with EP one per layer for attention plus one per dense-FFN
    # layer, none with attention-DP) and EP all-to-alls (dispatch + combine per MoE layer)
    n_moe = np.asarray(moe_layers, dtype=float)
    n_dense = L - n_moe if dense_layers is None else np.asarray(dense_layers, dtype=float)
    n_ar = 0.0 if dp_attn else (L + n_dense if use_ep else 2.0 * L)
    n_a2a = 2.0 * n_moe if use_ep else 0.0

    def comm(tokens, a2a_factor=1.0):
        # the exchange ends when the busiest sender (attention-DP prefill rank) or receiver (hot EP rank) is done
        ar = inference.allreduce_seconds(tokens * d * activation_bytes, t, link_bytes_per_second,
                                         allreduce_latency_seconds, n_ar)
        a2a = inference.alltoall_seconds(tokens / t * a2a_factor, d, experts_per_token, ep, link_bytes_per_second,
                                         allreduce_latency_seconds, n_a2a, activation_bytes)
        return ar + (a2a if use_ep else 0.0)

    ar_step = comm(step_tokens, np.maximum(lam, dp_imb))
    step = inference.decode_step_seconds(w_step, kv_step, hbm_bytes_per_second, hbm_bandwidth_efficiency, gemm_fl,
                                         attn_fl, peak_flops_per_second, compute_efficiency, ar_step,
                                         step_overhead_seconds)
    mem_time = step_bytes / (np.asarray(hbm_bytes_per_second, dtype=float) * hbm_bandwidth_efficiency)
    comp_time = (gemm_fl + attn_fl) / (np.asarray(peak_flops_per_second, dtype=float) * compute_efficiency)
    # prefill of the static batch (all prompts together) or of one prompt (max-load TTFT); with attention-DP one
    # GPU runs a prompt's attention and dense layers, its experts spread over the group
    n_pre = np.where(static, b_pos, 1.0)
    pre_tokens = n_pre * i_len
    lam_pre = (inference.moe_rank_imbalance(e, experts_per_token, ep, pre_tokens, expert_load_cv) if use_ep
               else np.ones_like(pre_tokens))
    pre_expert = 2.0 * expert_active * pre_tokens / t * lam_pre  # the busiest EP rank's share of the experts
    if dp_attn:
        pre_fl = np.where(static, n_pre * (pre_one - 2.0 * expert_active * i_len) / t,
                          pre_one - 2.0 * expert_active * i_len) + pre_expert
        ar_pre = comm(pre_tokens * np.where(static, 1.0, t), np.maximum(lam_pre, 1.0))
    else:
        pre_fl = n_pre * (pre_one - 2.0 * expert_active * i_len) / t + pre_expert
        ar_pre = comm(pre_tokens, lam_pre)
    pre_s = inference.prefill_seconds(pre_fl, peak_flops_per_second, compute_efficiency, ar_pre)
    if static:
        total = pre_s + o_len * step
        out_tps = b_pos * o_len / total
        ttft = pre_s
    else:
        out_tps = b_pos / step
        ttft = pre_s + step
    # cost attribution: of the replica time one request takes (O / throughput), its prefill share prices input
    time_per_request = o_len / out_tps
    # replica time one prompt's prefill takes (with attention-DP one GPU of the t prefills it)
    pre_replica = pre_s / t if (dp_attn and not static) else pre_s
    prefill_per_request = np.minimum(np.where(static, pre_s / b_pos, pre_replica), 0.999 * time_per_request)
    return {
        "batch": b, "max_batch": fits, "step_seconds": step, "ttft_seconds": ttft, "prefill_seconds": pre_s,
        "output_tokens_per_second": out_tps,
        "input_tokens_per_second": i_len / prefill_per_request,
        "decode_tokens_per_second": o_len / (time_per_request - prefill_per_request),
        "requests_per_second": out_tps / o_len,
        "memory_bound": mem_time >= comp_time, "weight_bytes": w_total, "step_bytes_per_gpu": step_bytes,
        "expert_load_imbalance": lam, "attention_dp_imbalance": dp_imb,
    }


def hardware_inputs(arch: Architecture, acc: catalog.Accelerator, precision: str, kv_precision: str) -> dict[str, Any]:
    """The roofline's architecture and hardware arguments for one model on one accelerator."""
    wb = bytes_per_value(precision).value
    kb = bytes_per_value(kv_precision, "kv_precision").value
    counts = arch.counts()
    compute_precision = COMPUTE_PRECISION[precision]
    if acc.memory_bytes is None or acc.memory_bytes_per_second is None:
        raise BillshapeInputError("gpu", acc.name, "an accelerator with catalogued memory and bandwidth")
    link = (acc.interconnect_bytes_per_second or _eff("pcie_bytes_per_second").value * 2) / 2.0
    return dict(
        params_total=counts["total"], params_active=counts["active"], expert_params=counts["expert"],
        experts_routed=arch.experts_routed, experts_per_token=arch.experts_per_token, layers=arch.layers,
        moe_layers=arch.moe_layers, dense_layers=arch.layers - arch.moe_layers,
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
    expert_parallel: float = 1.0
    attention_dp: float = 0.0
    note: str = ""


def cases(filename: str = "serving_calibration.csv") -> tuple[Case, ...]:
    """Published measurements shipped in ``data/`` (``serving_calibration.csv`` or ``serving_validation.csv``)."""
    return load_typed(Case, filename)


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
                 max_batch_cap=_eff("max_batch_cap").value, expert_parallel=case.expert_parallel,
                 expert_load_cv=_eff("expert_load_cv").value,
                 attention_dp=bool(case.attention_dp), **eff)
    replicas = case.gpus / case.tensor_parallel
    per_gpu = float(r["output_tokens_per_second"]) * replicas / case.gpus
    return {"predicted_per_gpu": per_gpu, "roofline": r}


# --------------------------------------------------------------------------------------------------------------
# Decisions: serve, measured, capacity, self_hosted_price
# --------------------------------------------------------------------------------------------------------------


class ServeEstimate(Result):
    """Throughput, latency and cost of serving a model on a deployment (modeled or measured)."""

    model: str
    gpu: str
    gpus: int
    tensor_parallel: int
    replicas: int
    precision: str
    kv_precision: str
    mode: str
    input_tokens: float
    output_tokens: float
    batch: int
    max_batch: int
    output_tokens_per_second: float
    input_tokens_per_second: float
    decode_tokens_per_second: float
    ttft_seconds: float
    tpot_seconds: float
    kv_cache_bytes_per_token: float
    bound: str
    params_total: float
    params_active: float
    weight_bytes: float
    usd_per_gpu_hour: float | None = None
    usd_per_hour: float | None = None
    utilization: float | None = None
    usd_per_million_output_tokens: float | None = None
    usd_per_million_input_tokens: float | None = None
    usd_per_request: float | None = None
    reasoning_multiplier: float = 1.0
    cache_hit_rate: float = 0.0
    source: str = "model"
    measured_output_tokens_per_second: float | None = None
    modeled_output_tokens_per_second: float | None = None
    measured_over_modeled: float | None = None
    expert_parallel: int = 1
    attention_dp: bool = False
    expert_load_imbalance: float = 1.0
    attention_dp_imbalance: float = 1.0
    output_tokens_per_second_low: float | None = None
    output_tokens_per_second_high: float | None = None
    input_tokens_per_second_low: float | None = None
    input_tokens_per_second_high: float | None = None
    usd_per_million_output_tokens_low: float | None = None
    usd_per_million_output_tokens_high: float | None = None
    usd_per_million_input_tokens_low: float | None = None
    usd_per_million_input_tokens_high: float | None = None


def _choose_mode(batch: Any, mode: str | None) -> tuple[float | None, str]:
    if batch is None or str(batch).strip().lower() == "max":
        if mode is not None and mode != "max-load":
            raise BillshapeInputError("mode", mode, "max-load with `batch` max (static needs a number)")
        return None, "max-load"
    try:
        b = float(batch)
    except (TypeError, ValueError):
        raise BillshapeInputError("batch", batch, "a positive integer or 'max'") from None
    if not math.isfinite(b) or b < 1 or b != int(b):
        raise BillshapeInputError("batch", batch, "a positive integer or 'max'")
    mode = mode or "static"
    if mode not in MODES:
        raise unknown_name("mode", mode, MODES)
    return b, mode


def _lengths(input_tokens: float | None, output_tokens: float | None) -> tuple[float, float, Assumption, Assumption]:
    """Request lengths [tokens] and their provenance: the user's (bounded) or the catalog defaults."""
    out = []
    for value, flag, key, name in ((input_tokens, "input_tokens", "default_input_tokens", "input tokens"),
                                   (output_tokens, "output_tokens", "default_output_tokens", "output tokens")):
        if value is None:
            row = _eff(key)
            out.append((float(row.value), row.assumption(name, float(row.value), "tokens/request")))
        else:
            v.positive(flag, value, v.MAX_TOKENS)
            out.append((float(value), user(name, float(value), "tokens/request", flag)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def check_context(arch: Architecture, input_tokens: float, output_tokens: float, note: str = "") -> None:
    """Reject a request longer than the model's context window (``max_context_tokens``: config.json's
    ``max_position_embeddings``): prompt plus generated tokens must fit in it."""
    total = float(input_tokens) + float(output_tokens)
    if arch.max_context_tokens is not None and total > arch.max_context_tokens:
        raise BillshapeInputError("input_tokens/output_tokens", total,
                                  f"<= {arch.max_context_tokens:,.0f} tokens in all: {arch.name}'s context window "
                                  f"(max_position_embeddings); input + output{note} = {total:,.0f}")


def _valid_tps(arch: Architecture, limit: int = 64) -> list[int]:
    return [t for t in range(1, min(int(arch.heads), limit) + 1) if arch.valid_tensor_parallel(t)]


def serve(*, model: str, gpu: str, gpus: float | None = None, tp: float | None = None, precision: str | None = "bf16",
          kv_precision: str | None = None, input_tokens: float | None = None, output_tokens: float | None = None,
          batch: Any = "max", mode: str | None = None, price: float | None = None, provider: str | None = None,
          tier: str | None = None, utilization: float | None = None, reasoning_multiplier: float = 1.0,
          cache_hit_rate: float = 0.0, efficiency: dict[str, float] | None = None, ep: float | None = None,
          dp_attention: bool = False) -> ServeEstimate:
    """Model the serving throughput, latency and cost of ``model`` on ``gpus`` x ``gpu``.

    ``tp`` (tensor parallelism) defaults to ``gpus``; ``gpus / tp`` data-parallel replicas serve side by side.
    ``batch="max"`` (default) means max-load: continuous batching at the largest batch that fits. Pricing
    (``price`` or ``provider``/``tier``) is optional; without it the cost keys are ``None``.
    ``reasoning_multiplier`` multiplies the output tokens a request generates (hidden reasoning tokens are
    generated and billed like output); ``cache_hit_rate`` is the share of input tokens served from a prompt
    cache, which skip prefill. ``ep`` (expert parallelism, MoE only) spreads whole experts over the ``tp`` GPUs of a
    replica (1 or ``tp``); ``dp_attention`` (with ``ep``) runs attention data-parallel on each GPU.

    Model outputs carry an uncertainty band: ``*_low``/``*_high`` at the P10/P90 of measured/modeled throughput on
    the held-out validation set (``throughput_ratio_p10``/``_p90`` in ``data/serving_efficiency.csv``).
    """
    from billshape.estimates import rental_price

    arch = architecture(model)
    acc = catalog.gpu(gpu)
    prov: dict[str, Assumption] = {}  # provenance of the deployment inputs: user input, derived or catalog default
    input_tokens, output_tokens, prov["input"], prov["output"] = _lengths(input_tokens, output_tokens)
    v.positive("reasoning_multiplier", reasoning_multiplier, v.MAX_COUNT)
    if reasoning_multiplier < 1:
        raise BillshapeInputError("reasoning_multiplier", reasoning_multiplier, ">= 1 (output tokens x multiplier)")
    check_context(arch, input_tokens, float(output_tokens) * float(reasoning_multiplier),
                  "" if reasoning_multiplier == 1 else " x `reasoning_multiplier`")
    if utilization is not None:
        v.fraction("utilization", utilization)
    if precision is None:
        precision = "bf16"
        prov["precision"] = derived("weight precision", precision, None,
                                    "default when `precision` is not given: 16-bit weights, as the checkpoints are published")
    else:
        precision = str(precision).strip().lower()
        prov["precision"] = user("weight precision", precision, None, "precision")
    if precision not in WEIGHT_PRECISIONS:
        raise unknown_name("precision", precision, WEIGHT_PRECISIONS)
    if kv_precision is None:
        kv_precision = precision
        prov["kv"] = derived("KV precision", kv_precision, None, "the weight precision (`kv_precision` not given)")
    else:
        kv_precision = str(kv_precision).strip().lower()
        prov["kv"] = user("KV precision", kv_precision, None, "kv_precision")
    if gpus is None:
        row = _eff("default_gpus")
        gpus = int(row.value)
        prov["gpus"] = row.assumption("GPUs", gpus, "GPUs")
    else:
        v.positive("gpus", gpus, v.MAX_COUNT)
        if float(gpus) != int(gpus):
            raise BillshapeInputError("gpus", gpus, "a whole number of GPUs")
        gpus = int(gpus)
        prov["gpus"] = user("GPUs", gpus, "GPUs", "gpus")
    if tp is None:
        tp = gpus
        prov["tp"] = derived("tensor parallel", tp, "GPUs", "one replica over all `gpus` (`tp` not given)")
        tp_field = "gpus"
    else:
        v.positive("tp", tp, v.MAX_COUNT)
        if float(tp) != int(tp) or gpus % int(tp) != 0:
            raise BillshapeInputError("tp", tp, f"a whole divisor of `gpus` ({gpus})")
        tp = int(tp)
        prov["tp"] = user("tensor parallel", tp, "GPUs", "tp")
        tp_field = "tp"
    if not arch.valid_tensor_parallel(tp):
        nxt = arch.next_valid_tensor_parallel(tp)
        raise BillshapeInputError(
            tp_field, tp, f"a tensor-parallel size that divides {arch.name}'s {arch.heads:g} attention heads and splits "
            f"or replicates its {arch.kv_heads:g} KV heads: {', '.join(str(t) for t in _valid_tps(arch))}",
            (None if nxt is None else f"next valid: {nxt}")
            + ("; `tp` defaults to `gpus`: give `tp` for several replicas" if tp_field == "gpus" else ""))
    ep = 1 if ep is None else ep
    v.positive("ep", ep, v.MAX_COUNT)
    if float(ep) not in (1.0, float(tp)):
        raise BillshapeInputError("ep", ep, f"1 or the tensor-parallel size `tp` ({tp}): experts spread "
                                  "over the replica's GPUs")
    ep = int(ep)
    if ep > 1 and not arch.is_moe:
        raise BillshapeInputError("ep", ep, f"1: {arch.name} is dense (expert parallelism needs an MoE model)")
    if dp_attention and ep == 1 and tp > 1:
        raise BillshapeInputError("dp_attention", True, f"with `ep` {tp} (attention data parallelism "
                                  "needs the experts spread over the replica)")
    v.below_one("cache_hit_rate", cache_hit_rate)
    b_req, mode = _choose_mode(batch, mode)
    hw = hardware_inputs(arch, acc, precision, kv_precision)
    eff_rows = efficiencies()
    eff = default_efficiency() if efficiency is None else efficiency
    out_len = float(output_tokens) * float(reasoning_multiplier)
    in_len = max(float(input_tokens) * (1.0 - float(cache_hit_rate)), 1.0)
    # capacity: a cached prefix still occupies KV memory, so the batch is sized on the full input
    par = dict(expert_parallel=float(ep), attention_dp=bool(dp_attention),
               expert_load_cv=eff_rows["expert_load_cv"].value)
    r = roofline(**hw, tensor_parallel=float(tp), input_tokens=in_len, output_tokens=out_len, batch=b_req, mode=mode,
                 kv_memory_fraction=eff_rows["kv_memory_fraction"].value,
                 max_batch_cap=eff_rows["max_batch_cap"].value, **par, **eff)
    w_total = float(r["weight_bytes"])
    mem_replica = float(tp) * acc.memory_bytes * eff_rows["kv_memory_fraction"].value
    ctx_hold = float(input_tokens) + out_len if mode == "static" else float(input_tokens) + out_len / 2.0
    fits = float(inference.max_batch(float(tp) * acc.memory_bytes, w_total, hw["kv_bytes_per_token"], ctx_hold,
                                     eff_rows["kv_memory_fraction"].value))
    if w_total >= mem_replica or fits < 1:
        per_gpu_usable = acc.memory_bytes * eff_rows["kv_memory_fraction"].value
        need = int(math.floor((w_total + hw["kv_bytes_per_token"] * ctx_hold) / per_gpu_usable)) + 1
        nxt = arch.next_valid_tensor_parallel(need)
        suggestion = (f"`tp` {nxt} (the smallest size from {need} up that divides its {arch.heads:g} attention heads)"
                      if nxt is not None else f"more than its {arch.heads:g} attention heads allow in one tensor-parallel "
                      "group (pipeline parallelism is not modeled)")
        raise BillshapeInputError(
            "gpus", gpus, f"enough memory: {arch.name} at {precision} ({w_total / 1e9:,.0f} GB of weights plus one "
            f"sequence's KV cache) needs at least {need} {acc.name} GPUs in a tensor-parallel group: {suggestion}")
    if b_req is not None and b_req > fits:
        raise BillshapeInputError("batch", int(b_req), f"<= {int(fits)}: the largest batch whose KV cache fits at "
                                  f"{input_tokens:g}+{out_len:g} tokens (or `batch` max)")
    if b_req is None:
        r = roofline(**hw, tensor_parallel=float(tp), input_tokens=in_len, output_tokens=out_len,
                     batch=min(fits, eff_rows["max_batch_cap"].value), mode=mode,
                     kv_memory_fraction=eff_rows["kv_memory_fraction"].value,
                     max_batch_cap=eff_rows["max_batch_cap"].value, **par, **eff)
    replicas = gpus // tp
    out_tps = float(r["output_tokens_per_second"]) * replicas
    in_tps = float(r["input_tokens_per_second"]) * replicas
    dec_tps = float(r["decode_tokens_per_second"]) * replicas
    assumptions: list[Assumption] = [
        arch.assumption(f"{arch.name} architecture", f"{arch.attention.upper()}, {arch.layers:g} layers, d={arch.hidden_size:g}"
                        + (f", {arch.experts_routed:g} experts ({arch.experts_per_token:g} active)" if arch.is_moe else "")),
        acc.assumption(f"{acc.name} memory", acc.memory_bytes, "bytes"),
        acc.assumption(f"{acc.name} HBM bandwidth", acc.memory_bytes_per_second, "bytes/s"),
        acc.assumption(f"{acc.name} dense {COMPUTE_PRECISION[precision]} peak", hw["peak_flops_per_second"], "FLOP/s"),
        prov["gpus"], prov["tp"], prov["precision"], prov["kv"], prov["input"], prov["output"],
        bytes_per_value(precision).as_assumption(),
        bytes_per_value(kv_precision, "kv_precision").as_assumption(),
    ]
    lam, dp_imb = float(r["expert_load_imbalance"]), float(r["attention_dp_imbalance"])
    if float(ep) > 1:
        assumptions.append(user("expert parallel", ep, "GPUs", "ep"))
        assumptions.append(eff_rows["expert_load_cv"].as_assumption())
        assumptions.append(derived("expert load imbalance", lam, "max/mean tokens per EP rank",
                                   "Gamma rank loads: CV^2 = expert_load_cv^2 / (experts per rank) + 1 / (tokens per "
                                   "rank); expected maximum over the EP ranks"))
    if dp_attention:
        assumptions.append(user("attention data parallel", True, None, "dp_attention"))
        assumptions.append(derived("attention-DP rank imbalance", dp_imb, "max/mean tokens per rank",
                                   "busiest rank's decode plus whole-prompt prefill tokens: expected maximum of Poisson "
                                   "prompts per rank per step B/(t O) (chunked prefill off, the TensorRT-LLM default)"))
    lo, hi = _eff("throughput_ratio_p10"), _eff("throughput_ratio_p90")
    assumptions += [lo.as_assumption(), hi.as_assumption()]
    if float(tp) > 1:
        assumptions.append(acc.assumption(f"{acc.name} interconnect", acc.interconnect_bytes_per_second, "bytes/s")
                           if acc.interconnect_bytes_per_second else eff_rows["pcie_bytes_per_second"].as_assumption())
    for n in EFFICIENCY_NAMES:
        assumptions.append(eff_rows[n].as_assumption() if efficiency is None or n not in efficiency
                           else user(n, float(efficiency[n]), eff_rows[n].unit))
    assumptions += [eff_rows["kv_memory_fraction"].as_assumption(), eff_rows["max_batch_cap"].as_assumption()]
    if reasoning_multiplier != 1:
        assumptions.append(user("reasoning multiplier", float(reasoning_multiplier), "x output tokens", "reasoning_multiplier"))
    if cache_hit_rate:
        assumptions.append(user("prompt-cache hit rate", float(cache_hit_rate), None, "cache_hit_rate"))
    est = ServeEstimate(
        model=arch.name, gpu=acc.name, gpus=gpus, tensor_parallel=tp, replicas=replicas,
        precision=precision, kv_precision=kv_precision, mode=mode, input_tokens=float(input_tokens),
        output_tokens=float(output_tokens), batch=int(r["batch"]), max_batch=int(fits),
        output_tokens_per_second=out_tps, input_tokens_per_second=in_tps, decode_tokens_per_second=dec_tps,
        ttft_seconds=float(r["ttft_seconds"]), tpot_seconds=float(r["step_seconds"]),
        kv_cache_bytes_per_token=hw["kv_bytes_per_token"], bound="memory-bandwidth" if bool(r["memory_bound"]) else "compute",
        params_total=hw["params_total"], params_active=hw["params_active"], weight_bytes=w_total,
        reasoning_multiplier=float(reasoning_multiplier), cache_hit_rate=float(cache_hit_rate), assumptions=assumptions,
        expert_parallel=ep, attention_dp=bool(dp_attention),
        expert_load_imbalance=lam, attention_dp_imbalance=dp_imb,
        output_tokens_per_second_low=out_tps * lo.value, output_tokens_per_second_high=out_tps * hi.value,
        input_tokens_per_second_low=in_tps * lo.value, input_tokens_per_second_high=in_tps * hi.value,
    )
    if price is not None or provider is not None:
        _attach_cost(est, price, provider, tier, utilization, in_tps, dec_tps)
    return est


def _attach_cost(est: ServeEstimate, price, provider, tier, utilization, in_tps: float, dec_tps: float) -> None:
    """Fill the cost keys: the request's replica time split into prefill (input) and decode (output) shares."""
    from billshape.estimates import rental_price

    rate, a = rental_price(est.gpu, price, provider, tier)
    est.assumptions.append(a)
    if utilization is None:
        u = 1.0
        est.assumptions.append(Assumption(name="utilization", value=1.0, source="billshape default: every paid hour busy at this throughput (an upper bound on efficiency)", as_of=None))
    else:
        v.fraction("utilization", utilization)
        u = float(utilization)
        est.assumptions.append(user("utilization", u, None, "utilization"))
    per_hour = float(inference.deployment_usd_per_hour(rate, est.gpus))
    est.usd_per_gpu_hour, est.usd_per_hour, est.utilization = rate, per_hour, u
    est.usd_per_million_output_tokens = float(inference.usd_per_million_tokens(per_hour, dec_tps, u))
    # per input token billed: cached tokens skip prefill, so the prefill cost spreads over all input tokens
    est.usd_per_million_input_tokens = float(inference.usd_per_million_tokens(per_hour, in_tps, u)) * (1 - est.cache_hit_rate)
    est.usd_per_request = (est.usd_per_million_output_tokens * est.output_tokens * est.reasoning_multiplier
                           + est.usd_per_million_input_tokens * est.input_tokens) / 1e6
    if est.output_tokens_per_second_low is not None:
        # cost moves inversely with throughput: the high-throughput end of the band is the low-cost end
        lo, hi = _eff("throughput_ratio_p10").value, _eff("throughput_ratio_p90").value
        est.usd_per_million_output_tokens_low = est.usd_per_million_output_tokens / hi
        est.usd_per_million_output_tokens_high = est.usd_per_million_output_tokens / lo
        est.usd_per_million_input_tokens_low = est.usd_per_million_input_tokens / hi
        est.usd_per_million_input_tokens_high = est.usd_per_million_input_tokens / lo
    est.assumptions.append(derived("cost split", "request time = prefill share (input) + decode share (output)",
                                   None, "replica seconds per request from the roofline"))


def self_hosted_price(model: str, gpu: str, gpus: float | None = None, precision: str = "fp8", input_tokens: float = 1000,
                      output_tokens: float = 1000, usd_per_gpu_hour: float | None = None, utilization: float = 1.0,
                      *, tp: float | None = None, provider: str | None = None, tier: str | None = None,
                      kv_precision: str | None = None) -> dict[str, float]:
    """Self-hosted $/million input and output tokens for a model on a deployment (for planners and ledgers).

    Returns ``{"usd_per_million_input_tokens", "usd_per_million_output_tokens", "output_tokens_per_second",
    "usd_per_hour"}`` at max load. Give ``usd_per_gpu_hour`` or ``provider`` [+ ``tier``]. Raises
    :class:`BillshapeInputError` on bad input (e.g. a model that does not fit: "needs at least N GPUs").
    """
    est = serve(model=model, gpu=gpu, gpus=gpus, tp=tp, precision=precision, kv_precision=kv_precision,
                input_tokens=input_tokens, output_tokens=output_tokens, batch="max", price=usd_per_gpu_hour,
                provider=provider, tier=tier, utilization=utilization)
    return {"usd_per_million_input_tokens": est.usd_per_million_input_tokens,
            "usd_per_million_output_tokens": est.usd_per_million_output_tokens,
            "output_tokens_per_second": est.output_tokens_per_second, "usd_per_hour": est.usd_per_hour}


def read_measured(path: str | Path | bytes | Any) -> dict[str, Any]:
    """Read a measured serving benchmark: a vLLM ``benchmark_serving`` result JSON or a simple CSV.

    ``path``: a path, the file's text, bytes or a (binary or text) file object (:func:`billshape.io.read_source`).

    JSON: vLLM's keys ``output_throughput`` [tokens/s], ``total_input_tokens``, ``total_output_tokens``,
    ``completed`` (mean lengths = totals / completed), optional ``mean_ttft_ms``, ``mean_tpot_ms``, ``model_id``.
    CSV (one row): ``output_tokens_per_second,input_tokens,output_tokens,gpus`` and optional ``gpu``, ``model``,
    ``tp``, ``precision``. Returns a dict with ``output_tokens_per_second``, ``input_tokens``, ``output_tokens`` and
    whatever optional keys the file had.
    """
    from billshape.io import read_source

    text, name = read_source(path, "measured", what="a readable vLLM benchmark_serving JSON or CSV file")
    try:
        if name.lower().endswith(".json") or text.lstrip().startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("the JSON is not an object")
            completed = _measured_field(data, "completed", v.MAX_COUNT)
            out = {"output_tokens_per_second": _measured_field(data, "output_throughput", v.MAX_TOKENS),
                   "input_tokens": _measured_field(data, "total_input_tokens", v.MAX_TOKENS) / completed,
                   "output_tokens": _measured_field(data, "total_output_tokens", v.MAX_TOKENS) / completed,
                   "format": "vllm-benchmark-serving"}
            for key, name in (("mean_ttft_ms", "ttft_seconds"), ("mean_tpot_ms", "tpot_seconds")):
                if data.get(key) is not None:
                    out[name] = _measured_field(data, key, v.MAX_HOURS * 3.6e6) / 1e3
            if data.get("model_id"):
                out["model_id"] = str(data["model_id"])
            for key in ("gpu", "precision"):  # not written by vLLM; accepted when added by hand
                if data.get(key) is not None:
                    out[key] = str(data[key])
            for key in ("gpus", "tp"):
                if data.get(key) is not None:
                    out[key] = _measured_count(data, key)
        else:
            rows = list(csv.DictReader(text.splitlines()))
            if len(rows) != 1:
                raise ValueError(f"{len(rows)} data rows, expected 1")
            row = {k.strip(): (val or "").strip() for k, val in rows[0].items()}
            out = {"output_tokens_per_second": _measured_field(row, "output_tokens_per_second", v.MAX_TOKENS),
                   "input_tokens": _measured_field(row, "input_tokens", v.MAX_TOKENS),
                   "output_tokens": _measured_field(row, "output_tokens", v.MAX_TOKENS),
                   "gpus": _measured_count(row, "gpus"), "format": "csv"}
            for key in ("gpu", "model", "precision"):
                if row.get(key):
                    out[key] = row[key]
            if row.get("tp"):
                out["tp"] = _measured_count(row, "tp")
    except BillshapeInputError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, csv.Error, json.JSONDecodeError) as exc:
        raise BillshapeInputError("measured", name, "a vLLM benchmark_serving JSON (output_throughput, "
                                  "total_input_tokens, total_output_tokens, completed) or a CSV with columns "
                                  "output_tokens_per_second,input_tokens,output_tokens,gpus", f"{type(exc).__name__}: {exc}") from None
    return out


def _measured_field(data: dict, key: str, maximum: float) -> float:
    """A positive number from a measured file, checked with its column/key name (``measured KEY``)."""
    if key not in data:
        raise KeyError(key)
    try:
        value = float(data[key])
    except (TypeError, ValueError):
        raise BillshapeInputError(f"measured {key}", data[key], f"a number in (0, {maximum:g}]") from None
    v.positive(f"measured {key}", value, maximum)
    return value


def _measured_count(data: dict, key: str) -> int:
    value = _measured_field(data, key, v.MAX_COUNT)
    if value != int(value):
        raise BillshapeInputError(f"measured {key}", value, "a whole number of GPUs")
    return int(value)


def serve_measured(path: str | Path, *, model: str | None = None, gpu: str | None = None, gpus: float | None = None,
                   tp: float | None = None, precision: str | None = None, kv_precision: str | None = None,
                   price: float | None = None, provider: str | None = None, tier: str | None = None,
                   utilization: float | None = None) -> ServeEstimate:
    """Cost from a measured throughput, with the model's prediction beside it (``measured_over_modeled``).

    Flags given override the file; the file's lengths are used for the prediction (max-load mode).
    """
    from billshape.io import source_name

    m = read_measured(path)
    model = model or m.get("model") or m.get("model_id")
    gpu = gpu or m.get("gpu")
    given_gpus = gpus
    gpus = gpus if gpus is not None else m.get("gpus")
    if model is None:
        raise BillshapeInputError("model", None, "a model name (the measured file does not name a catalogued one)")
    if gpu is None:
        raise BillshapeInputError("gpu", None, "the accelerator the measurement ran on")
    if gpus is None:
        raise BillshapeInputError("gpus", None, "the GPUs the measurement used (vLLM's JSON does not record them)")
    if utilization is not None:
        v.fraction("utilization", utilization)
    est = serve(model=model, gpu=gpu, gpus=gpus, tp=tp if tp is not None else m.get("tp"),
                precision=precision or m.get("precision"), kv_precision=kv_precision,
                input_tokens=m["input_tokens"], output_tokens=m["output_tokens"], batch="max")
    # values read from the file are the measurement's, not typed flags: label them with the file
    from_file = {"input tokens": True, "output tokens": True, "GPUs": m.get("gpus") is not None and given_gpus is None,
                 "tensor parallel": m.get("tp") is not None and tp is None,
                 "weight precision": m.get("precision") is not None and precision is None}
    label = f"measured: {source_name(path)} ({m['format']})"
    est.assumptions = [Assumption(name=a.name, value=a.value, unit=a.unit, source=label, as_of=None)
                       if from_file.get(a.name) else a for a in est.assumptions]
    ratio = m["output_tokens_per_second"] / est.output_tokens_per_second
    modeled = est.output_tokens_per_second
    est.source = "measured"
    for key in ("output_tokens_per_second", "input_tokens_per_second"):  # a measurement has no model band
        setattr(est, f"{key}_low", None)
        setattr(est, f"{key}_high", None)
    est.measured_output_tokens_per_second = m["output_tokens_per_second"]
    est.modeled_output_tokens_per_second = modeled
    est.measured_over_modeled = ratio
    est.output_tokens_per_second = m["output_tokens_per_second"]
    est.input_tokens_per_second = est.input_tokens_per_second * ratio
    est.decode_tokens_per_second = est.decode_tokens_per_second * ratio
    if "ttft_seconds" in m:
        est.ttft_seconds = m["ttft_seconds"]
    if "tpot_seconds" in m:
        est.tpot_seconds = m["tpot_seconds"]
    est.assumptions.insert(0, Assumption(name="measured output throughput", value=m["output_tokens_per_second"],
                                         unit="tokens/s", source=f"measured: {source_name(path)} ({m['format']})", as_of=None))
    if price is not None or provider is not None:
        _attach_cost(est, price, provider, tier, utilization, est.input_tokens_per_second, est.decode_tokens_per_second)
    return est


class Capacity(Result):
    """Replicas and GPUs needed to serve a request rate within a latency limit."""

    model: str
    gpu: str
    tensor_parallel: int
    requests_per_second: float
    batch_per_replica: int
    replica_requests_per_second: float
    replicas: int
    gpus: int
    tpot_seconds: float
    ttft_seconds: float
    output_tokens_per_second: float
    usd_per_month: float | None = None
    usd_per_million_output_tokens: float | None = None


#: tensor-parallel sizes tried when ``capacity`` chooses one (powers of two, as engines deploy them)
CAPACITY_TP_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)


def capacity(*, model: str, gpu: str, requests_per_second: float, tp: float | None = None, precision: str | None = "bf16",
             kv_precision: str | None = None, input_tokens: float | None = None, output_tokens: float | None = None,
             tpot_limit: float | None = None, ttft_limit: float | None = None, price: float | None = None,
             provider: str | None = None, tier: str | None = None, _tp_chosen: bool = False) -> Capacity:
    """Replicas, GPUs and $/month to serve ``requests_per_second`` within a TPOT and/or TTFT limit [s].

    Each replica (``tp`` GPUs, default: the valid power-of-two size that needs the fewest GPUs in total) runs
    continuous batching at the largest batch whose step time (TPOT) and TTFT stay within the limits.
    """
    from billshape.estimates import rental_price

    v.positive("requests_per_second", requests_per_second, v.MAX_COUNT)
    if tpot_limit is not None:
        v.positive("tpot_limit", tpot_limit, v.MAX_HOURS * 3600)
    if ttft_limit is not None:
        v.positive("ttft_limit", ttft_limit, v.MAX_HOURS * 3600)
    arch, acc = architecture(model), catalog.gpu(gpu)
    in_len, out_len, _, _ = _lengths(input_tokens, output_tokens)
    check_context(arch, in_len, out_len)
    if price is not None:
        v.positive("price", price, v.MAX_USD_RATE)
    if tp is None:
        # default: the tensor-parallel size (valid powers of two up to 64) that needs the fewest GPUs in total
        best, limit_error = None, None
        for cand in CAPACITY_TP_CANDIDATES:
            if not arch.valid_tensor_parallel(cand):
                continue
            try:
                c = capacity(model=model, gpu=gpu, requests_per_second=requests_per_second, tp=cand,
                             precision=precision, kv_precision=kv_precision, input_tokens=input_tokens,
                             output_tokens=output_tokens, tpot_limit=tpot_limit, ttft_limit=ttft_limit, price=price,
                             provider=provider, tier=tier, _tp_chosen=True)
            except BillshapeInputError as exc:
                if exc.field in ("tpot_limit", "ttft_limit"):
                    limit_error = exc
                elif exc.field not in ("gpus", "tp"):
                    raise  # not about the size: the same error at every size
                continue
            if best is None or c.gpus < best.gpus:
                best = c
        if best is None and limit_error is not None:
            raise limit_error
        if best is None:
            raise BillshapeInputError("tp", None, f"a tensor-parallel size: no size up to 64 {acc.name} holds "
                                      f"{arch.name} within the limits")
        return best
    v.positive("tp", tp, v.MAX_COUNT)
    if float(tp) != int(tp):
        raise BillshapeInputError("tp", tp, "a whole number of GPUs")
    tp = int(tp)
    try:
        base = serve(model=model, gpu=gpu, gpus=tp, tp=tp, precision=precision, kv_precision=kv_precision,
                     input_tokens=input_tokens, output_tokens=output_tokens)
    except BillshapeInputError as exc:
        if exc.field == "gpus" and not _tp_chosen:  # here the replica size is the user's `tp`
            raise BillshapeInputError("tp", tp, exc.allowed, exc.hint) from None
        raise
    hw = hardware_inputs(arch, acc, base.precision, base.kv_precision)
    rows = efficiencies()
    batches = np.arange(1.0, base.batch + 1.0)
    r = roofline(**hw, tensor_parallel=float(tp), input_tokens=in_len, output_tokens=out_len,
                 batch=batches, mode="max-load", kv_memory_fraction=rows["kv_memory_fraction"].value,
                 max_batch_cap=rows["max_batch_cap"].value, **default_efficiency())
    ok = np.ones_like(batches, dtype=bool)
    if tpot_limit is not None:
        ok &= r["step_seconds"] <= tpot_limit
    if ttft_limit is not None:
        ok &= r["ttft_seconds"] <= ttft_limit
    if not ok.any():
        raise BillshapeInputError("tpot_limit" if tpot_limit is not None else "ttft_limit",
                                  tpot_limit if tpot_limit is not None else ttft_limit,
                                  f">= {float(r['step_seconds'][0]):.4g} s TPOT and {float(r['ttft_seconds'][0]):.4g} s "
                                  f"TTFT: what {arch.name} on {tp} {acc.name} achieves at batch 1")
    i = int(np.nonzero(ok)[0].max())
    rep_rps = float(r["requests_per_second"][i])
    replicas = int(math.ceil(requests_per_second / rep_rps))
    # the deployment's GPUs and tensor-parallel size are computed here, not typed by the user (serve() saw tp as
    # its `gpus`/`tp`): relabel them
    tp_label = (derived("tensor parallel", tp, "GPUs", "the power-of-two size that needs the fewest GPUs in total "
                        "(`tp` not given)") if _tp_chosen else user("tensor parallel", tp, "GPUs", "tp"))
    gpus_label = derived("GPUs", replicas * tp, "GPUs", "replicas x tensor parallel")
    assumptions = [tp_label if a.name == "tensor parallel" else gpus_label if a.name == "GPUs" else a
                   for a in base.assumptions]
    est = Capacity(model=arch.name, gpu=acc.name, tensor_parallel=tp, requests_per_second=float(requests_per_second),
                   batch_per_replica=int(batches[i]), replica_requests_per_second=rep_rps, replicas=replicas,
                   gpus=replicas * tp, tpot_seconds=float(r["step_seconds"][i]), ttft_seconds=float(r["ttft_seconds"][i]),
                   output_tokens_per_second=float(requests_per_second) * out_len, assumptions=assumptions)
    est.assumptions.append(derived("replicas", replicas, None, "ceil(request rate / one replica's requests/s at the "
                                   "largest batch within the limits)"))
    est.assumptions.append(user("request rate", float(requests_per_second), "requests/s", "requests_per_second"))
    if tpot_limit is not None:
        est.assumptions.append(user("TPOT limit", float(tpot_limit), "s", "tpot_limit"))
    if ttft_limit is not None:
        est.assumptions.append(user("TTFT limit", float(ttft_limit), "s", "ttft_limit"))
    if price is not None or provider is not None:
        rate, a = rental_price(acc.name, price, provider, tier)
        est.assumptions.append(a)
        hours = catalog.constant("hours_per_year").value / 12.0
        est.assumptions.append(derived("hours per month", hours, "h", "hours_per_year / 12"))
        est.usd_per_month = est.gpus * rate * hours
        est.usd_per_million_output_tokens = est.usd_per_month / (est.output_tokens_per_second * hours * 3600) * 1e6
    return est
