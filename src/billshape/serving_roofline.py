"""The composed serving roofline (vectorised over numbers; no catalog look-ups) and its calibration cases.

Re-exported by :mod:`billshape.serving`; the model is described there and in ``docs/serving.md``.

References
----------
.. [1] Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102.
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
from billshape.serving_catalog import (  # noqa: F401
    WEIGHT_PRECISIONS, KV_PRECISIONS, MODES, COMPUTE_PRECISION, EFFICIENCY_NAMES, Architecture, parameter_counts, architectures, _arch_index, architecture, efficiencies, _eff, bytes_per_value, default_efficiency,
    arch_class, gpu_generation, engine_profile, burst_scheduler)


# --------------------------------------------------------------------------------------------------------------
# Composed roofline (vectorised over numbers; no catalog look-ups)
# --------------------------------------------------------------------------------------------------------------


def roofline(*, params_total, params_active, expert_params, experts_routed, experts_per_token, layers, hidden_size,
             attention_dim, kv_bytes_per_token, weight_bytes_per_param, hbm_bytes_per_second, peak_flops_per_second,
             memory_bytes_per_gpu, link_bytes_per_second, tensor_parallel, input_tokens, output_tokens, batch=None,
             mode="static", hbm_bandwidth_efficiency, compute_efficiency, step_overhead_seconds,
             allreduce_latency_seconds, kv_memory_fraction=0.9, max_batch_cap=2048.0, activation_bytes=2.0,
             moe_layers=0.0, dense_layers=None, expert_parallel=1.0, attention_dp=False, expert_load_cv=0.0,
             moe_gemm_efficiency=1.0, moe_gemm_half_tokens=0.0, alltoall_efficiency=1.0, kv_replication=1.0,
             moe_weight_read_efficiency=None,
             redundant_experts=0.0, gpus_per_node=math.inf, internode_bytes_per_second=None,
             sliding_window_tokens=0.0, sliding_window_layers=0.0, sliding_window_chunked=False,
             prefill_tokens_per_step=None, prefill_input_tokens=None, attention_peak_flops_per_second=None,
             micro_batches=1.0):
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

    Engine-dependent MoE terms (every default reproduces the model before them; :mod:`billshape.serving_moe`):

    * grouped-GEMM efficiency ``moe_gemm_efficiency`` :math:`\eta_g` at a per-expert batch
      :math:`n = T k / E` (``moe_gemm_half_tokens`` :math:`n_{1/2}`): the expert FLOPs run at
      :math:`g = \eta_g \, n / (n + n_{1/2})` of the dense compute efficiency (returned as
      ``moe_gemm_factor``; ``tokens_per_expert`` is :math:`n`);
    * ``moe_weight_read_efficiency`` :math:`r`: the touched experts' weights are read at :math:`r` times the dense
      HBM efficiency (the grouped-GEMM kernel's streaming bandwidth, e.g. vLLM's ``fused_moe`` measured with
      ``benchmarks/kernels/benchmark_moe.py``); None (default): at :math:`g`, the grouped-GEMM factor slowing the
      reads too (the model before it);
    * ``alltoall_efficiency``: achieved share of the link bandwidth in the EP dispatch/combine;
    * ``kv_replication``: copies of each KV head when the attention TP exceeds the KV heads (memory and reads);
    * ``expert_parallel`` may be any divisor of ``tensor_parallel`` (each expert then tensor-parallel over
      ``tensor_parallel / expert_parallel`` GPUs, one extra all-reduce per MoE layer in that group);
      ``attention_dp`` without EP shards the experts over the group (one all-reduce per MoE layer);
    * ``redundant_experts`` N (EPLB): N extra expert slots per MoE layer, held in memory, that spread the routed
      load over :math:`E + N` slots in the rank-imbalance model;
    * an EP group wider than ``gpus_per_node`` sends the inter-node share of its all-to-all over
      ``internode_bytes_per_second`` (per GPU, one direction).

    Hybrid attention (``sliding_window_layers`` :math:`L_w` of the layers windowed to ``sliding_window_tokens``
    W; ``sliding_window_chunked`` for chunked local attention): the KV cache held and read per step and the decode
    attention FLOPs scale by :func:`billshape.inference.windowed_kv_fraction`, the prefill attention by the
    windowed mean context (:func:`billshape.inference.windowed_prefill_context_tokens`). 0 layers: full attention.

    ``prefill_tokens_per_step`` (chunked prefill mixed into decode steps, :func:`billshape.serving_lengths.burst`):
    prompt tokens of length ``input_tokens`` processed in each decode step beside the ``batch`` decodes, in one
    forward pass (weights read once); None: the mode's own (0 static, :math:`B I / O` max-load). Their attention
    is that of prompts of ``prefill_input_tokens`` (default ``input_tokens``; the chunks of a prompt sum to its
    causal attention).

    Kernel precision and micro-batches (both off by default, the model before them):

    * ``attention_peak_flops_per_second`` :math:`P_a`: the dense peak at the precision the engine's attention
      kernels compute in (e.g. BF16 FlashAttention-3 / FlashMLA beside FP8 weight GEMMs): the attention FLOPs
      (decode scores and values, prefill's causal attention) run at :math:`\eta_c P_a` instead of
      :math:`\eta_c P` (:func:`flops_at_reference_peak`); None: at ``peak_flops_per_second``;
    * ``micro_batches`` m (two-batch overlap, :mod:`billshape.serving_disagg`): the step's tokens run as m forwards
      of :math:`T/m`, so the grouped-GEMM factor sees :math:`n = (T/m)\,k/E` tokens per expert (decode and
      prefill), and each micro-batch reads the weights it uses: the dense weights m times and
      :math:`m\,E_{touched}(T/m)` experts (:func:`micro_batch_expert_loads`); 1: one forward.
    """
    t = np.asarray(tensor_parallel, dtype=float)
    m_b = np.maximum(np.asarray(micro_batches, dtype=float), 1.0)
    split = bool(np.any(m_b != 1.0))
    i_len = np.asarray(input_tokens, dtype=float)
    o_len = np.asarray(output_tokens, dtype=float)
    L = np.asarray(layers, dtype=float)
    d = np.asarray(hidden_size, dtype=float)
    ep = np.asarray(expert_parallel, dtype=float)
    use_ep = bool(np.any(ep > 1))
    dp_attn = bool(attention_dp) and (use_ep or bool(np.any(t > 1)))
    n_red = np.asarray(redundant_experts, dtype=float)
    kv_rep = np.asarray(kv_replication, dtype=float)
    kv_bytes_held = np.asarray(kv_bytes_per_token, dtype=float) * kv_rep
    windowed = bool(np.any(np.asarray(sliding_window_layers, dtype=float) > 0))
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
    if np.any(n_red > 0):  # EPLB: the redundant expert slots hold copies of experts
        w_total = w_total + inference.weight_bytes(n_red * per_expert, weight_bytes_per_param)
    static = mode == "static"
    # static: each sequence reserves its full context; max-load (paged KV): the mean context I + O/2
    ctx_hold = i_len + o_len if static else i_len + o_len / 2.0
    kv_hold_tok = (kv_bytes_held * inference.windowed_kv_fraction(ctx_hold, L, sliding_window_tokens,
                                                                  sliding_window_layers) if windowed else kv_bytes_held)
    fits = inference.max_batch(t * memory_bytes_per_gpu, w_total, kv_hold_tok, ctx_hold, kv_memory_fraction)
    if batch is None:
        b = np.minimum(fits, max_batch_cap)
    else:
        b = np.asarray(batch, dtype=float) + 0 * fits
    b_pos = np.maximum(b, 1.0)
    ctx_mean = i_len + (o_len - 1.0) / 2.0
    prefill_per_step = np.where(static, 0.0, b_pos * i_len / o_len)
    mixed = prefill_tokens_per_step is not None
    if mixed:
        prefill_per_step = np.asarray(prefill_tokens_per_step, dtype=float) + 0.0 * b_pos
    step_tokens = b_pos + prefill_per_step
    # expert loads per MoE layer: the experts the step touches (m micro-batches: each its own, m E_touched(T/m))
    touched = (micro_batch_expert_loads(e, experts_per_token, step_tokens, m_b) if split
               else inference.moe_experts_touched(e, experts_per_token, step_tokens))
    # per GPU: dense weights 1/t of them (TP) or all of them (attention-DP), once per micro-batch; touched experts
    # spread over t GPUs
    w_step = inference.weight_bytes(dense_params / (1.0 if dp_attn else t) * m_b + per_expert * touched / t,
                                    weight_bytes_per_param)
    win_step = (inference.windowed_kv_fraction(ctx_mean, L, sliding_window_tokens, sliding_window_layers)
                if windowed else 1.0)
    kv_step = b_pos * ctx_mean * kv_bytes_held / t
    if windowed:
        kv_step = kv_step * win_step
    # grouped-GEMM efficiency at the per-expert batch (1 by default: the expert kernels run as the dense ones)
    tok_expert = step_tokens / m_b * np.asarray(experts_per_token, dtype=float) / np.where(e > 0, e, 1.0)
    g_moe = _moe_gemm_factor(tok_expert, moe_gemm_efficiency, moe_gemm_half_tokens)
    slow_moe = bool(np.any(g_moe != 1.0))
    # expert weight reads at r x the bandwidth efficiency (the same time as 1/r x the bytes): r = g (None, the
    # grouped-GEMM factor slows the reads too) or the engine's own expert-read efficiency
    g_read = g_moe if moe_weight_read_efficiency is None else np.asarray(moe_weight_read_efficiency, dtype=float)
    if bool(np.any(g_read != 1.0)):
        w_exp = inference.weight_bytes(per_expert * touched / t, weight_bytes_per_param)
        w_step = w_step + w_exp * (1.0 / g_read - 1.0)
    step_bytes = w_step + kv_step
    pre_one = inference.prefill_flops(params_active, i_len, layers, attention_dim)  # one prompt
    pre_gemm_one = 2.0 * np.asarray(params_active, dtype=float) * i_len
    def window_share(length):  # windowed layers attend to the window's mean context instead of I/2
        lw = np.asarray(sliding_window_layers, dtype=float)
        local = inference.windowed_prefill_context_tokens(length, sliding_window_tokens, bool(sliding_window_chunked))
        return ((L - lw) * length / 2.0 + lw * local) / (L * length / 2.0)

    if windowed:
        pre_one = pre_gemm_one + (pre_one - pre_gemm_one) * window_share(i_len)
    # imbalance: the busiest EP rank gets lam x the mean routed tokens; with attention-DP (max load) the busiest
    # rank prefills the most whole prompts of the step (Poisson maximum over the t ranks)
    lam = (inference.moe_rank_imbalance(e + n_red, experts_per_token, ep, step_tokens, expert_load_cv) if use_ep
           else np.ones_like(step_tokens))
    mean_tokens = step_tokens / t
    if dp_attn and not static:
        prompts_max = inference.expected_max_poisson(t, b_pos / (t * o_len))
        dense_tokens = b_pos / t + i_len * prompts_max
        attn_pre = prompts_max * (pre_one - pre_gemm_one)
    else:
        dense_tokens = mean_tokens
        attn_pre = np.where(static, 0.0, b_pos / o_len * (pre_one - pre_gemm_one)) / t
    if mixed:  # the step's chunk: its prompts' share of their causal attention (chunks sum to the whole prompt's)
        i_mix = i_len if prefill_input_tokens is None else np.asarray(prefill_input_tokens, dtype=float)
        attn_mix = inference.forward_flops(0.0, i_mix, layers, attention_dim, i_mix / 2.0)
        if windowed:
            attn_mix = attn_mix * window_share(i_mix)
        attn_pre = prefill_per_step / i_mix * attn_mix / t
    dp_imb = dense_tokens / mean_tokens
    gemm_fl = 2.0 * dense_active * dense_tokens + 2.0 * expert_active * mean_tokens * lam
    if slow_moe:
        gemm_fl = gemm_fl + 2.0 * expert_active * mean_tokens * lam * (1.0 / g_moe - 1.0)
    attn_fl = inference.forward_flops(0.0, b_pos, layers, attention_dim, ctx_mean) / t * win_step + attn_pre
    # the attention kernels' own peak (16-bit attention beside FP8 GEMMs): their FLOPs expressed at the GEMM peak
    attn_fl = flops_at_reference_peak(attn_fl, peak_flops_per_second, attention_peak_flops_per_second)
    # communication: TP all-reduces (2 per layer; with EP one per layer for attention plus one per dense-FFN
    # layer, none with attention-DP) and EP all-to-alls (dispatch + combine per MoE layer)
    n_moe = np.asarray(moe_layers, dtype=float)
    n_dense = L - n_moe if dense_layers is None else np.asarray(dense_layers, dtype=float)
    if dp_attn:
        n_ar = 0.0 if use_ep else n_moe  # without EP the experts are sharded: one all-reduce per MoE layer
    else:
        n_ar = L + n_dense if use_ep else 2.0 * L
    n_a2a = 2.0 * n_moe if use_ep else 0.0
    # EP narrower than the group: each expert is tensor-parallel over t/ep GPUs (one all-reduce per MoE layer)
    moe_tp = np.maximum(t / np.maximum(ep, 1.0), 1.0)
    n_ar_moe = np.where(moe_tp > 1, n_moe, 0.0) if use_ep else 0.0
    link_a2a = _alltoall_link(ep, link_bytes_per_second, alltoall_efficiency, gpus_per_node,
                              internode_bytes_per_second) if use_ep else link_bytes_per_second

    def comm(tokens, a2a_factor=1.0):
        # the exchange ends when the busiest sender (attention-DP prefill rank) or receiver (hot EP rank) is done
        ar = inference.allreduce_seconds(tokens * d * activation_bytes, t, link_bytes_per_second,
                                         allreduce_latency_seconds, n_ar)
        a2a = inference.alltoall_seconds(tokens / t * a2a_factor, d, experts_per_token, ep, link_a2a,
                                         allreduce_latency_seconds, n_a2a, activation_bytes)
        if use_ep and np.any(n_ar_moe > 0):
            a2a = a2a + inference.allreduce_seconds(tokens / t * ep * a2a_factor * d * activation_bytes, moe_tp,
                                                    link_bytes_per_second, allreduce_latency_seconds, n_ar_moe)
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
    lam_pre = (inference.moe_rank_imbalance(e + n_red, experts_per_token, ep, pre_tokens, expert_load_cv) if use_ep
               else np.ones_like(pre_tokens))
    pre_expert = 2.0 * expert_active * pre_tokens / t * lam_pre  # the busiest EP rank's share of the experts
    if slow_moe:
        g_pre = _moe_gemm_factor(pre_tokens / m_b * np.asarray(experts_per_token, dtype=float)
                                 / np.where(e > 0, e, 1.0), moe_gemm_efficiency, moe_gemm_half_tokens)
        pre_expert = pre_expert / g_pre
    if dp_attn:
        pre_fl = np.where(static, n_pre * (pre_one - 2.0 * expert_active * i_len) / t,
                          pre_one - 2.0 * expert_active * i_len) + pre_expert
        ar_pre = comm(pre_tokens * np.where(static, 1.0, t), np.maximum(lam_pre, 1.0))
    else:
        pre_fl = n_pre * (pre_one - 2.0 * expert_active * i_len) / t + pre_expert
        ar_pre = comm(pre_tokens, lam_pre)
    if attention_peak_flops_per_second is not None:  # the prompts' causal attention at the attention kernels' peak
        pre_attn = (pre_one - pre_gemm_one) * (np.where(static, n_pre / t, 1.0) if dp_attn else n_pre / t)
        pre_fl = pre_fl + flops_at_reference_peak(pre_attn, peak_flops_per_second,
                                                            attention_peak_flops_per_second) - pre_attn
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
        "tokens_per_expert": tok_expert, "moe_gemm_factor": g_moe,
    }


def micro_batch_expert_loads(experts, experts_per_token, tokens, micro_batches=1.0):
    r"""Expert weight loads per MoE layer of a step whose ``tokens`` run as ``micro_batches`` :math:`m` forwards
    (two-batch overlap): each micro-batch touches its own experts and reads their weights,
    :math:`m \, E_{touched}(T/m)` (:func:`billshape.inference.moe_experts_touched` at the micro-batch's tokens) [expert loads].

    :math:`m` = 1 is :func:`billshape.inference.moe_experts_touched` of the whole step. At a large batch every micro-batch touches all
    :math:`E` experts, so the step reads each expert :math:`m` times.

    Parameters
    ----------
    experts : numeric
        Routed experts per MoE layer E [count].
    experts_per_token : numeric
        Routed experts each token activates k [count].
    tokens : numeric
        Tokens in the whole step T [count].
    micro_batches : numeric
        Forwards the step is split into m [count], >= 1.

    Returns
    -------
    numeric
        Expert weight loads per MoE layer in the step [count], between k and m E.

    References
    ----------
    .. [1] DeepSeek, "Day 6: DeepSeek-V3/R1 Inference System Overview", 2025-03-01 (dual micro-batch overlap: each
           micro-batch runs the whole forward); SGLang ``--enable-two-batch-overlap`` (LMSYS blog 2025-05-05).
    """
    m = np.maximum(np.asarray(micro_batches, dtype=float), 1.0)
    return m * inference.moe_experts_touched(experts, experts_per_token, np.asarray(tokens, dtype=float) / m)


def flops_at_reference_peak(flops, peak_flops_per_second, kernel_peak_flops_per_second=None):
    r"""FLOPs that run on kernels of dense peak :math:`P_k` expressed at the roofline's peak :math:`P`:
    :math:`F \, P / P_k`, so that timing them at :math:`\eta_c P` gives :math:`F / (\eta_c P_k)` [FLOP].

    Used for the attention FLOPs when the engine's attention kernels compute in 16 bits (FlashAttention-3,
    FlashMLA, FlashInfer on a BF16 KV cache) while the weights' GEMMs run at the FP8 peak: on Hopper
    :math:`P / P_k` = 1,978.9 / 989.4 = 2. ``kernel_peak_flops_per_second`` None: the FLOPs unchanged.

    Parameters
    ----------
    flops : numeric
        FLOPs run on those kernels F [FLOP].
    peak_flops_per_second : numeric
        The dense peak the roofline times every FLOP at P (the weights' compute precision) [FLOP/s].
    kernel_peak_flops_per_second : numeric or None
        The dense peak at the kernels' own precision :math:`P_k` [FLOP/s].

    Returns
    -------
    numeric
        [FLOP] at P.

    References
    ----------
    .. [1] NVIDIA H100 Tensor Core GPU datasheet (dense BF16 989 and FP8 1,979 TFLOP/s, SXM).
    .. [2] DeepSeek, "Day 6: DeepSeek-V3/R1 Inference System Overview", 2025-03-01 ("core MLA computations ...
           use the BF16 format").
    """
    f = np.asarray(flops, dtype=float)
    if kernel_peak_flops_per_second is None:
        return f
    return f * np.asarray(peak_flops_per_second, dtype=float) / np.asarray(kernel_peak_flops_per_second, dtype=float)


def _moe_gemm_factor(tokens_per_expert, efficiency, half_tokens):
    r"""Grouped-GEMM efficiency relative to the dense kernels: :math:`\eta_g \, n / (n + n_{1/2})` (1 when
    :math:`\eta_g = 1, n_{1/2} = 0`)."""
    n = np.asarray(tokens_per_expert, dtype=float)
    h = np.asarray(half_tokens, dtype=float)
    sat = np.where(h > 0, n / np.maximum(n + h, 1e-30), 1.0)
    return np.asarray(efficiency, dtype=float) * sat


def _alltoall_link(expert_parallel, link_bytes_per_second, efficiency, gpus_per_node, internode_bytes_per_second):
    """Effective per-GPU bandwidth of the EP all-to-all: the intra-node share over the scale-up link, the
    inter-node share over ``internode_bytes_per_second`` (when the EP group spans nodes), times the efficiency."""
    ep = np.maximum(np.asarray(expert_parallel, dtype=float), 1.0)
    link = np.asarray(link_bytes_per_second, dtype=float)
    eff = np.asarray(efficiency, dtype=float)
    if internode_bytes_per_second is None or not np.any(ep > np.asarray(gpus_per_node, dtype=float)):
        return link * eff if np.any(eff != 1.0) else link
    gpn = np.minimum(np.asarray(gpus_per_node, dtype=float), ep)
    remote = np.maximum(ep - 1.0, 1.0)
    inv = ((gpn - 1.0) / remote) / link + ((ep - gpn) / remote) / np.asarray(internode_bytes_per_second, dtype=float)
    return np.where(ep > 1, eff / np.maximum(inv, 1e-30), link * eff)


@lru_cache(maxsize=None)
def internode_rows() -> tuple[Constant, Constant]:
    """The scale-up domain size and the per-GPU inter-node bandwidth (``data/serving_efficiency.csv``)."""
    return _eff("gpus_per_node"), _eff("internode_bytes_per_second")


#: accelerators whose NVLink domain is a whole rack (GB200/GB300 NVL72)
_RACK_SCALE = ("gb200", "gb300")


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
        link_bytes_per_second=link, **window_inputs(arch),
    )


def attention_inputs(profile, acc: catalog.Accelerator, precision: str, kv_precision: str,
                     seq_len_tokens=None) -> dict[str, Any]:
    r"""The roofline's ``attention_peak_flops_per_second`` for an engine profile: the GPU's dense BF16 peak when the
    profile's ``attention_at_kernel_precision`` switch is 1, the engine's attention kernels compute in 16 bits at
    this KV precision (:func:`billshape.serving_catalog.attention_kernel`) and the weights' GEMMs do not (FP8,
    FP4); empty otherwise (attention at the weights' peak, the model before the switch).

    With an ``attention_compute_efficiency`` row :math:`\eta_a` (the attention kernels' own measured fraction of
    the BF16 peak, e.g. FlashAttention-3's causal forward, Shah et al. 2024, arXiv 2407.08608 Fig. 5d) the peak is
    :math:`P_{16}\,\eta_a/\eta_c`, so the roofline, which divides by the profile's ``compute_efficiency``
    :math:`\eta_c`, times the attention FLOPs at :math:`\eta_a P_{16}`; without the row: :math:`P_{16}` (the
    attention kernels at the dense :math:`\eta_c`). With ``seq_len_tokens`` :math:`L` (the prompt tokens computed
    per request; scalar or array) :math:`\eta_a` is the kernels' published efficiency at that length,
    :func:`billshape.serving_catalog.attention_efficiency_at` (FlashAttention-3 runs causal attention at 0.43 of
    the BF16 peak at 1K tokens, 0.59 at 4K); without it, the profile row (its value at 4,096 tokens)."""
    from billshape.serving_catalog import attention_kernel

    if not profile.params.get("attention_at_kernel_precision", 0.0):
        return {}
    row = attention_kernel(profile.engine, profile.arch_class, kv_precision)
    if row is None or row.attention_precision not in ("bf16", "fp16") or COMPUTE_PRECISION[precision] == "bf16":
        return {}
    peak = acc.peak_flops_per_second("bf16")
    eta_a = profile.params.get("attention_compute_efficiency")
    if eta_a is not None:
        if seq_len_tokens is not None:
            from billshape.serving_catalog import attention_efficiency_at

            eta_a = attention_efficiency_at(seq_len_tokens)
        peak = peak * eta_a / float(profile.params["compute_efficiency"])
    return {"attention_peak_flops_per_second": peak}


def window_inputs(arch: Architecture) -> dict[str, Any]:
    """The roofline's hybrid-attention keywords of an architecture (empty for full attention in every layer)."""
    if not arch.has_window:
        return {}
    return dict(sliding_window_tokens=float(arch.sliding_window_tokens),
                sliding_window_layers=float(arch.sliding_window_layers),
                sliding_window_chunked=arch.sliding_window_kind == "chunked")


def held_kv_bytes_per_token(hw: dict[str, Any], context_tokens):
    """KV bytes per token of context that a sequence holds (the hybrid layers' window applied; hardware_inputs's
    ``kv_bytes_per_token`` otherwise) [bytes/token]."""
    kv = hw["kv_bytes_per_token"]
    if not hw.get("sliding_window_layers"):
        return kv
    return kv * inference.windowed_kv_fraction(context_tokens, hw["layers"], hw["sliding_window_tokens"],
                                               hw["sliding_window_layers"])


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
    requests: float | None = None
    lengths: str = ""
    use: str = ""
    #: engine settings the source states (vLLM ``--max-num-seqs`` / ``--max-num-batched-tokens``); None: the profile's
    max_num_seqs: float | None = None
    max_num_batched_tokens: float | None = None
    #: 1: the static batch's prompts are served from the prefix cache (vLLM V1 ``benchmark_latency.py`` repeats the
    #: same dummy prompts over its iterations with prefix caching on by default), so the measurement is decode only
    prefill_cached: float = 0.0
    note: str = ""

    @property
    def engine_key(self) -> str:
        """``trtllm``, ``vllm`` or ``sglang`` from the free-text ``engine`` column."""
        return engine_of(self.engine)


def engine_of(text: str) -> str:
    """The engine key of a free-text engine name ("TensorRT-LLM 1.0", "vLLM 0.11.0", "SGLang 0.5.5")."""
    t = str(text).lower()
    if "sglang" in t:
        return "sglang"
    if "vllm" in t:
        return "vllm"
    return "trtllm"


def kv_replication(arch: Architecture, tensor_parallel: float, attention_dp: bool = False) -> float:
    """Copies of the KV cache across the attention's tensor-parallel ranks: GQA heads are split while there are
    enough of them and replicated beyond (``tp / kv_heads``); MLA's shared latent is held whole on every rank."""
    attn_tp = 1.0 if attention_dp else float(tensor_parallel)
    if arch.attention == "mla":
        return attn_tp
    return max(1.0, attn_tp / float(arch.kv_heads))


def cases(filename: str = "serving_calibration.csv") -> tuple[Case, ...]:
    """Published measurements shipped in ``data/`` (``serving_calibration.csv``, ``serving_validation.csv``,
    ``serving_engines_validation.csv``, ``serving_engines_mi300x.csv`` or ``serving_engines_calibration.csv``, whose
    columns are mapped onto :class:`Case`)."""
    if filename == "serving_engines_calibration.csv":
        return _engine_cases(filename)
    return load_typed(Case, filename)


@lru_cache(maxsize=None)
def _engine_cases(filename: str) -> tuple[Case, ...]:
    out = []
    for r in read_rows(filename):
        fixed = r["dataset"].lower().startswith("random")
        sharegpt = r["dataset"].strip().lower() == "sharegpt" and "burst" in r["load"].lower()
        gpus = float(r["gpus"])
        out.append(Case(
            id=r["id"], model=r["model"], precision=r["precision"], kv_precision=r["kv_precision"], gpu=r["gpu"],
            gpus=gpus, tensor_parallel=float(r["tp"]), mode="burst" if fixed or sharegpt else "max-load",
            batch="burst" if fixed or sharegpt else "max", lengths="sharegpt" if sharegpt else "", input_tokens=float(r["mean_input_tokens"]),
            output_tokens=float(r["mean_output_tokens"]), engine=r["engine"],
            measured_output_tokens_per_second_per_gpu=float(r["measured_output_tokens_per_second"]) / gpus,
            expert_parallel=float(r["ep"]), requests=float(r["requests"]) if r["requests"] else None,
            use=r["use"], source=r["source"], as_of=r["as_of"], note=r["note"]))
    return tuple(out)


def predict_case(case: Case, efficiency: dict[str, float] | None = None, *,
                 max_batch_cap: float | None = None) -> dict[str, Any]:
    """The model's prediction for a published case: output tokens/s per GPU and the roofline dict.

    ``efficiency`` defaults to the case's engine profile (:func:`billshape.serving_catalog.engine_profile`). A burst
    (``batch`` ``burst``: ``requests`` queued at t=0, as ``vllm bench serve --request-rate inf``), of fixed lengths
    (the random dataset) or of ShareGPT lengths (``lengths`` ``sharegpt``, rescaled to the case's means), runs
    through :func:`billshape.serving_lengths.burst` with the engine's chunked-prefill scheduler
    (:func:`billshape.serving_catalog.burst_scheduler`), at most min(KV fit, ``max_batch_cap``) at a time. A case's
    own ``max_num_seqs`` / ``max_num_batched_tokens`` (the engine settings its source ran) replace the profile's cap
    and token budget; a static case with ``prefill_cached`` is decode only (batch / mean decode step)."""
    arch = architecture(case.model)
    prof = engine_profile(case.engine_key, arch_class(arch), gpu_generation(case.gpu))
    eff = prof.efficiency if efficiency is None else efficiency
    if max_batch_cap is not None:
        cap = max_batch_cap
    else:
        cap = prof.params["max_batch_cap"] if case.max_num_seqs is None else case.max_num_seqs
    acc = catalog.gpu(case.gpu)
    hw = hardware_inputs(arch, acc, case.precision, case.kv_precision)
    mode = "max-load" if case.batch == "max" else case.mode
    extra = {}
    rep = kv_replication(arch, case.tensor_parallel, bool(case.attention_dp))
    if rep != 1.0:
        extra["kv_replication"] = rep
    extra.update(attention_inputs(prof, acc, case.precision, case.kv_precision, case.input_tokens))
    common = dict(**hw, tensor_parallel=case.tensor_parallel, input_tokens=case.input_tokens,
                  output_tokens=case.output_tokens, kv_memory_fraction=_eff("kv_memory_fraction").value,
                  max_batch_cap=cap, expert_parallel=case.expert_parallel,
                  expert_load_cv=_eff("expert_load_cv").value, attention_dp=bool(case.attention_dp), **extra, **eff)
    if case.batch == "burst":
        from billshape.serving_lengths import DEFAULT_SAMPLES, burst, length_distribution

        if case.lengths:
            lens = length_distribution(case.lengths, case.input_tokens, case.output_tokens,
                                       int(case.requests) if case.requests else DEFAULT_SAMPLES)
            i_s, o_s = lens.input_tokens, lens.output_tokens
        else:
            i_s, o_s = np.full(int(case.requests), case.input_tokens), np.full(int(case.requests), case.output_tokens)
        rest = {k: x for k, x in common.items() if k not in ("input_tokens", "output_tokens")}
        budget, mixed = burst_scheduler(prof)
        if case.max_num_batched_tokens is not None:
            budget = case.max_num_batched_tokens
        r = burst(roofline, rest, i_s, o_s, cap, budget, mixed)
    else:
        r = roofline(**common, batch=None if case.batch == "max" else float(case.batch), mode=mode)
    replicas = case.gpus / case.tensor_parallel
    per_gpu = float(r["output_tokens_per_second"]) * replicas / case.gpus
    if case.prefill_cached and mode == "static":  # decode only: the batch's tokens over its mean decode step
        per_gpu = float(r["batch"]) / float(r["step_seconds"]) * replicas / case.gpus
    return {"predicted_per_gpu": per_gpu, "roofline": r}
