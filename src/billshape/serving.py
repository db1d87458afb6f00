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

# The architecture catalog and efficiencies, the composed roofline and the measured readers live in
# their own modules (serving_catalog, serving_roofline, serving_measured); every public name stays here.
from billshape.serving_catalog import (  # noqa: F401
    WEIGHT_PRECISIONS, KV_PRECISIONS, MODES, COMPUTE_PRECISION, EFFICIENCY_NAMES, Architecture, parameter_counts, architectures, _arch_index, architecture, efficiencies, _eff, bytes_per_value, default_efficiency,
    ENGINES, MOE_EFFICIENCY_NAMES, engines, arch_class, gpu_generation, engine_profile, Profile, _engine_key, SCHEDULER_NAMES, burst_scheduler,
    GENERATION_FALLBACK, EXPERT_ROUTINGS, routing_skew)
from billshape.serving_roofline import (  # noqa: F401
    roofline, hardware_inputs, Case, cases, predict_case, kv_replication, engine_of, internode_rows, _RACK_SCALE,
    held_kv_bytes_per_token, attention_inputs)


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
    engine: str = "trtllm"
    extrapolated: bool = False
    redundant_experts: int = 0
    arrival: str = "steady"
    requests: int | None = None
    lengths: str | None = None
    makespan_seconds: float | None = None
    output_tokens_per_second_low: float | None = None
    output_tokens_per_second_high: float | None = None
    input_tokens_per_second_low: float | None = None
    input_tokens_per_second_high: float | None = None
    usd_per_million_output_tokens_low: float | None = None
    usd_per_million_output_tokens_high: float | None = None
    usd_per_million_input_tokens_low: float | None = None
    usd_per_million_input_tokens_high: float | None = None


class DeploymentServeEstimate(ServeEstimate):
    """A :class:`ServeEstimate` of a pipelined (``pipeline_parallel`` stages, ``pipeline_bubble``: idle share of the
    busiest stage) and/or speculative deployment (``speculative``, ``draft_tokens``, ``acceptance``,
    ``tokens_per_step``, ``speculative_speedup``: decode tokens/s over the same deployment without it)."""

    pipeline_parallel: int = 1
    pipeline_bubble: float | None = None
    speculative: str | None = None
    draft_tokens: int | None = None
    acceptance: float | None = None
    draft_model: str | None = None
    tokens_per_step: float | None = None
    speculative_speedup: float | None = None


class MeasuredServeEstimate(ServeEstimate):
    """A :class:`ServeEstimate` from a measured benchmark file: which tool wrote it (``measured_source``) and the
    engine and version it measured, where the file says (``None`` where it does not)."""

    measured_source: str | None = None
    measured_engine: str | None = None
    measured_engine_version: str | None = None


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


def _traffic(lengths, requests, arrival, batch, input_tokens, output_tokens):
    """Validate the traffic arguments: (arrival, requests or None, Lengths or None)."""
    from billshape.serving_lengths import ARRIVALS, length_distribution

    arrival = "steady" if arrival is None else str(arrival).strip().lower()
    if arrival not in ARRIVALS:
        raise unknown_name("arrival", arrival, ARRIVALS)
    n_req = None
    if requests is not None:
        v.positive("requests", requests, v.MAX_COUNT)
        if float(requests) != int(requests):
            raise BillshapeInputError("requests", requests, "a whole number of requests")
        if arrival != "burst":
            raise BillshapeInputError("requests", requests, "omitted unless `arrival` is burst (steady state has "
                                      "no request count)")
        n_req = int(requests)
        if n_req > 1_000_000:
            raise BillshapeInputError("requests", requests, "<= 1,000,000 requests in a burst")
    if arrival == "burst":
        if n_req is None:
            raise BillshapeInputError("requests", None, "a whole number > 0 of requests queued at t=0 with `arrival` burst")
        if batch is not None and str(batch).strip().lower() != "max":
            raise BillshapeInputError("batch", batch, "max with `arrival` burst (the engine's cap and the KV cache "
                                      "set the concurrency)")
    dist = None if lengths is None else length_distribution(str(lengths), input_tokens, output_tokens, n_req)
    return arrival, n_req, dist


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
          dp_attention: bool = False, engine: str | None = None, redundant_experts: float = 0,
          lengths: str | None = None, requests: float | None = None, arrival: str | None = None,
          prefill_gpus: float | None = None, decode_gpus: float | None = None, prefill_tp: float | None = None,
          prefill_ep: float | None = None, prefill_dp_attention: bool | None = None, decode_tp: float | None = None,
          decode_ep: float | None = None, decode_dp_attention: bool | None = None, decode_batch: float | None = None,
          two_batch_overlap: bool = False, expert_routing: str | None = None,
          pp: float | None = None, speculative: str | None = None, draft_tokens: float | None = None,
          acceptance: float | None = None, draft_model: str | None = None) -> ServeEstimate:
    """Model the serving throughput, latency and cost of ``model`` on ``gpus`` x ``gpu``.

    ``tp`` (tensor parallelism) defaults to ``gpus``; ``gpus / tp`` data-parallel replicas serve side by side.
    ``batch="max"`` (default) means max-load: continuous batching at the largest batch that fits. Pricing
    (``price`` or ``provider``/``tier``) is optional; without it the cost keys are ``None``.
    ``reasoning_multiplier`` multiplies the output tokens a request generates (hidden reasoning tokens are
    generated and billed like output); ``cache_hit_rate`` is the share of input tokens served from a prompt
    cache, which skip prefill. ``ep`` (expert parallelism, MoE only) spreads whole experts over ``ep`` of the ``tp``
    GPUs of a replica (a divisor of ``tp``; each expert is then tensor-parallel over ``tp / ep`` GPUs);
    ``dp_attention`` runs attention data-parallel on each GPU of the replica (with or without ``ep``; then ``tp`` need
    not divide the attention heads, e.g. ``tp`` 72 for wide EP over an NVL72 rack). ``redundant_experts`` N adds N
    expert slots per MoE layer (EPLB), held in memory, which spread the routed load (``(experts + N) % ep == 0``).
    ``expert_routing`` ``measured`` (default: the router's measured skew, ``expert_load_cv``, or what EPLB leaves of
    it, ``eplb_expert_load_cv``, with ``redundant_experts``) or ``balanced`` (no skew beyond the sampling noise of
    the tokens per rank: the routing of benchmarks that simulate it, e.g. DeepSeek's released profiles, "an
    absolutely balanced MoE routing strategy", and SGLang's "simulated perfect EPLB"; :func:`routing_skew`).

    ``engine`` (``trtllm``, the default when None: labelled "computed: default" in the assumptions; ``vllm``,
    ``sglang``) picks the engine profile for the model's architecture
    class and the GPU's generation (``data/serving_engine_profiles.csv``): efficiencies, MoE grouped-GEMM and
    all-to-all efficiency, the scheduler's batch cap. Model outputs carry an uncertainty band: ``*_low``/``*_high`` at
    the P10/P90 of measured/modeled throughput on that engine x architecture class's validation rows; a combination
    with too few validation rows (or no profile of its own) is ``extrapolated`` with a wider band.

    ``lengths`` (``sharegpt`` or a CSV path of ``input,output`` pairs): per-request lengths from a distribution
    (:mod:`billshape.serving_lengths`); ``input_tokens``/``output_tokens``, when also given, rescale its means.
    ``arrival`` ``steady`` (default: continuous batching in steady state at the mean lengths) or ``burst`` with
    ``requests`` N: N requests queued at t = 0, as ``vllm bench serve --request-rate inf`` measures (output tokens
    over the makespan; the batch drains as requests finish), split evenly over the replicas.

    ``prefill_gpus`` and ``decode_gpus`` (both): a disaggregated deployment, one pool that only prefills and one
    that only decodes, each with its own ``prefill_tp``/``prefill_ep``/``prefill_dp_attention`` and
    ``decode_*`` (default: the shared ``tp``/``ep``/``dp_attention``); ``decode_batch`` sequences per decode
    replica (default: the largest that fits); ``two_batch_overlap`` overlaps each pool's communication with its
    computation. Returns a :class:`billshape.serving_disagg.DisaggregatedServeEstimate`
    (:func:`billshape.serving_disagg.serve_disaggregated`).

    ``pp`` N (pipeline parallelism): each replica is N stages of ``tp`` GPUs (``gpus`` = tp x pp x replicas).
    ``speculative`` (``mtp``, ``eagle``, ``draft`` with ``draft_model``) with ``draft_tokens`` K and ``acceptance``
    A (defaults from ``data/serving_speculative.csv`` where published): a step verifies K draft tokens and emits
    (1 - A^(K+1)) / (1 - A) tokens. Both return a :class:`DeploymentServeEstimate`
    (:mod:`billshape.serving_pipeline`).
    """
    from billshape.estimates import rental_price
    from billshape.serving_pipeline import check_pp

    pool_args = dict(prefill_tp=prefill_tp, prefill_ep=prefill_ep, prefill_dp_attention=prefill_dp_attention,
                     decode_tp=decode_tp, decode_ep=decode_ep, decode_dp_attention=decode_dp_attention,
                     decode_batch=decode_batch)
    if prefill_gpus is not None or decode_gpus is not None:
        return _disaggregated(locals(), pool_args)
    for name, value in (*pool_args.items(), ("two_batch_overlap", two_batch_overlap or None)):
        if value is not None:
            raise BillshapeInputError(name, value, "omitted without `prefill_gpus` and `decode_gpus` (a setting of "
                                      "a disaggregated deployment's pools)")

    call = {k: x for k, x in locals().items()
            if k not in ("rental_price", "check_pp", "pool_args", "name", "value")}
    arch = architecture(model)
    acc = catalog.gpu(gpu)
    prov: dict[str, Assumption] = {}  # provenance of the deployment inputs: user input, derived or catalog default
    if engine is None:
        engine = "trtllm"
        prov["engine"] = derived("serving engine", engine, None, "default when `engine` is not given: TensorRT-LLM")
    else:
        engine = _engine_key(engine)
        prov["engine"] = user("serving engine", engine, None, "engine")
    profile = engine_profile(engine, arch_class(arch), gpu_generation(acc.name))
    arrival, n_req, dist = _traffic(lengths, requests, arrival, batch, input_tokens, output_tokens)
    if dist is not None:
        input_tokens, output_tokens = float(dist.input_tokens.mean()), float(dist.output_tokens.mean())
        prov["input"] = derived("input tokens", input_tokens, "tokens/request", f"mean of `lengths` {dist.name}")
        prov["output"] = derived("output tokens", output_tokens, "tokens/request", f"mean of `lengths` {dist.name}")
    else:
        input_tokens, output_tokens, prov["input"], prov["output"] = _lengths(input_tokens, output_tokens)
    v.positive("reasoning_multiplier", reasoning_multiplier, v.MAX_COUNT)
    if reasoning_multiplier < 1:
        raise BillshapeInputError("reasoning_multiplier", reasoning_multiplier, ">= 1 (output tokens x multiplier)")
    longest = (0.0, 0.0) if dist is None else (dist.input_tokens, dist.output_tokens)
    j = 0 if dist is None else int(np.argmax(longest[0] + longest[1] * float(reasoning_multiplier)))
    check_context(arch, input_tokens if dist is None else float(longest[0][j]),
                  (float(output_tokens) if dist is None else float(longest[1][j])) * float(reasoning_multiplier),
                  ("" if reasoning_multiplier == 1 else " x `reasoning_multiplier`")
                  + ("" if dist is None else " of the longest request in `lengths`"))
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
    pp_n = check_pp(arch, pp)
    if tp is None:
        if gpus % pp_n != 0:
            raise BillshapeInputError("pp", pp, f"a whole divisor of `gpus` ({gpus}): gpus = tp x pp x replicas")
        tp = gpus // pp_n
        prov["tp"] = derived("tensor parallel", tp, "GPUs", "one replica over all `gpus` (`tp` not given)")
        tp_field = "gpus"
    else:
        v.positive("tp", tp, v.MAX_COUNT)
        if float(tp) != int(tp) or gpus % (int(tp) * pp_n) != 0:
            raise BillshapeInputError("tp", tp, f"a whole divisor of `gpus` ({gpus})" + (
                "" if pp_n == 1 else f" / `pp` ({pp_n}): gpus = tp x pp x replicas"))
        tp = int(tp)
        prov["tp"] = user("tensor parallel", tp, "GPUs", "tp")
        tp_field = "tp"
    if dp_attention and not arch.is_moe and tp > 1:
        raise BillshapeInputError("dp_attention", True, f"omitted for {arch.name}: attention data parallelism with "
                                  "`tp` > 1 needs an MoE model (its expert layers are what the GPUs share)")
    if not dp_attention and not arch.valid_tensor_parallel(tp):
        nxt = arch.next_valid_tensor_parallel(tp)
        raise BillshapeInputError(
            tp_field, tp, f"a tensor-parallel size that divides {arch.name}'s {arch.heads:g} attention heads and splits "
            f"or replicates its {arch.kv_heads:g} KV heads: {', '.join(str(t) for t in _valid_tps(arch))}",
            (None if nxt is None else f"next valid: {nxt}")
            + ("; `tp` defaults to `gpus`: give `tp` for several replicas" if tp_field == "gpus" else ""))
    ep = 1 if ep is None else ep
    v.positive("ep", ep, v.MAX_COUNT)
    if float(ep) != int(ep) or tp % int(ep) != 0:
        raise BillshapeInputError("ep", ep, f"a whole divisor of the replica's GPUs `tp` ({tp}): experts spread "
                                  "over ep GPUs, each tensor-parallel over tp/ep")
    ep = int(ep)
    if ep > 1 and not arch.is_moe:
        raise BillshapeInputError("ep", ep, f"1: {arch.name} is dense (expert parallelism needs an MoE model)")
    v.non_negative("redundant_experts", redundant_experts, v.MAX_COUNT)
    if float(redundant_experts) != int(redundant_experts):
        raise BillshapeInputError("redundant_experts", redundant_experts, "a whole number >= 0 of extra expert slots")
    redundant_experts = int(redundant_experts)
    if redundant_experts and not arch.is_moe:
        raise BillshapeInputError("redundant_experts", redundant_experts, f"0: {arch.name} is dense (no experts)")
    if redundant_experts and ep == 1:
        raise BillshapeInputError("redundant_experts", redundant_experts, "0 without `ep` > 1 (redundant experts "
                                  "balance expert-parallel ranks)")
    if expert_routing is not None and expert_routing not in EXPERT_ROUTINGS:
        raise BillshapeInputError("expert_routing", expert_routing, " or ".join(EXPERT_ROUTINGS))
    if expert_routing == "balanced" and not arch.is_moe:
        raise BillshapeInputError("expert_routing", expert_routing, f"omitted: {arch.name} is dense (no experts to route)")
    if arch.is_moe and ep > 1 and (int(arch.experts_routed) + redundant_experts) % ep != 0:
        raise BillshapeInputError("ep", ep, f"a divisor of {arch.name}'s {arch.experts_routed:g} routed experts"
                                  + (f" + {redundant_experts} redundant" if redundant_experts else "")
                                  + " (each EP rank holds a whole number of expert slots)",
                                  "add `redundant_experts` to make the slots divisible")
    v.below_one("cache_hit_rate", cache_hit_rate)
    b_req, mode = _choose_mode(batch, mode)
    hw = hardware_inputs(arch, acc, precision, kv_precision)
    eff_rows = efficiencies()
    eff = dict(profile.efficiency) if efficiency is None else {**profile.efficiency, **efficiency}
    cap = profile.params["max_batch_cap"]
    out_len = float(output_tokens) * float(reasoning_multiplier)
    in_len = max(float(input_tokens) * (1.0 - float(cache_hit_rate)), 1.0)
    # capacity: a cached prefix still occupies KV memory, so the batch is sized on the full input
    par = dict(expert_parallel=float(ep), attention_dp=bool(dp_attention),
               expert_load_cv=eff_rows["expert_load_cv"].value)
    kv_rep = kv_replication(arch, tp, bool(dp_attention))
    if kv_rep != 1.0:
        par["kv_replication"] = kv_rep
    if redundant_experts:  # EPLB: placement and replicas on the routing statistics leave a much smaller skew
        par["redundant_experts"] = float(redundant_experts)
    skew_cv, skew_note = routing_skew(eff_rows, redundant_experts, expert_routing)
    par["expert_load_cv"] = skew_cv
    par.update(attention_inputs(profile, acc, precision, kv_precision, in_len))
    internode = _internode(acc, ep)
    from billshape.serving_pipeline import deployment, deployment_roofline

    gpn = 72.0 if acc.name.lower().startswith(_RACK_SCALE) else internode_rows()[0].value
    dep = deployment(arch, acc, precision, kv_precision, tp, pp=pp, speculative=speculative,
                     draft_tokens=draft_tokens, acceptance=acceptance, draft_model=draft_model,
                     dp_attention=bool(dp_attention), internode=(gpn, internode_rows()[1].value))
    rl = (lambda **kw: deployment_roofline(**dep.roofline_kw, **kw)) if dep.active else roofline
    if internode:
        par.update(internode)
    r = rl(**hw, tensor_parallel=float(tp), input_tokens=in_len, output_tokens=out_len, batch=b_req, mode=mode,
                 kv_memory_fraction=eff_rows["kv_memory_fraction"].value,
                 max_batch_cap=cap, **par, **eff)
    w_total = float(r["weight_bytes"])
    mem_gpus = float(tp) * dep.memory_factor if dep.pp > 1 else float(tp)
    mem_replica = mem_gpus * acc.memory_bytes * eff_rows["kv_memory_fraction"].value
    ctx_hold = float(input_tokens) + out_len if mode == "static" else float(input_tokens) + out_len / 2.0
    kv_held = (float(held_kv_bytes_per_token(hw, ctx_hold)) + dep.extra_kv_bytes_per_token) * kv_rep
    fits = float(inference.max_batch(mem_gpus * acc.memory_bytes, w_total, kv_held,
                                     ctx_hold, eff_rows["kv_memory_fraction"].value))
    if w_total >= mem_replica or fits < 1:
        per_gpu_usable = acc.memory_bytes * eff_rows["kv_memory_fraction"].value
        need = int(math.floor((w_total + kv_held * ctx_hold) / per_gpu_usable)) + 1
        nxt = arch.next_valid_tensor_parallel(need)
        suggestion = (f"`tp` {nxt} (the smallest size from {need} up that divides its {arch.heads:g} attention heads)"
                      if nxt is not None else f"more than its {arch.heads:g} attention heads allow in one tensor-parallel "
                      "group (add pipeline stages: `pp`)")
        raise BillshapeInputError(
            "gpus", gpus, f"enough memory: {arch.name} at {precision} ({w_total / 1e9:,.0f} GB of weights plus one "
            f"sequence's KV cache) needs at least {need} {acc.name} GPUs in a tensor-parallel group: {suggestion}")
    if b_req is not None and b_req > fits:
        raise BillshapeInputError("batch", int(b_req), f"<= {int(fits)}: the largest batch whose KV cache fits at "
                                  f"{input_tokens:g}+{out_len:g} tokens (or `batch` max)")
    if b_req is None:
        r = rl(**hw, tensor_parallel=float(tp), input_tokens=in_len, output_tokens=out_len,
                     batch=min(fits, cap), mode=mode,
                     kv_memory_fraction=eff_rows["kv_memory_fraction"].value,
                     max_batch_cap=cap, **par, **eff)
    replicas = gpus // (tp * pp_n)
    makespan = None
    if arrival == "burst":
        from billshape.serving_lengths import burst

        if dist is None:
            i_s, o_s = np.full(n_req, float(input_tokens)), np.full(n_req, float(output_tokens))
        else:
            i_s, o_s = dist.input_tokens, dist.output_tokens
        i_s, o_s = i_s[0::replicas], o_s[0::replicas]  # the first replica's share (round robin): the busiest
        common = dict(**hw, tensor_parallel=float(tp), kv_memory_fraction=eff_rows["kv_memory_fraction"].value,
                      max_batch_cap=cap, **par, **eff)
        budget, mixed = burst_scheduler(profile)
        r = burst(rl, common, np.maximum(i_s * (1.0 - float(cache_hit_rate)), 1.0),
                  o_s * float(reasoning_multiplier), cap, budget, mixed)
        r["step_seconds"] = r["tpot_seconds"]
        makespan = float(r["makespan_seconds"])
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
        assumptions.append(skew_note)
        assumptions.append(derived("expert load imbalance", lam, "max/mean tokens per EP rank",
                                   "Gamma rank loads: CV^2 = expert_load_cv^2 / (experts per rank) + 1 / (tokens per "
                                   "rank); expected maximum over the EP ranks"))
    if dp_attention:
        assumptions.append(user("attention data parallel", True, None, "dp_attention"))
        assumptions.append(derived("attention-DP rank imbalance", dp_imb, "max/mean tokens per rank",
                                   "busiest rank's decode plus whole-prompt prefill tokens: expected maximum of Poisson "
                                   "prompts per rank per step B/(t O) (chunked prefill off, the TensorRT-LLM default)"))
    default_profile = profile.resolved == "trtllm/dense/hopper" and profile.exact
    extrapolated = bool(profile.params["extrapolated"]) or not profile.exact
    lo, hi = profile.rows["throughput_ratio_p10"], profile.rows["throughput_ratio_p90"]
    assumptions += [prov["engine"], lo.as_assumption(), hi.as_assumption()]
    if extrapolated:
        assumptions.append(derived("extrapolated", True, None, f"{engine} x {profile.arch_class} x {profile.generation}: "
                                   + ("no profile of its own (uses " + profile.resolved + "); " if not profile.exact else "")
                                   + (f"no {profile.generation} measurement or profile row: "
                                      f"{profile.resolved.split('/')[-1]}'s numbers; " if not profile.exact
                                      and profile.generation in GENERATION_FALLBACK else "")
                                   + "too few validation measurements for its own band: the wide band"))
    if kv_rep != 1.0:
        assumptions.append(derived("KV replication", kv_rep, "copies", "attention TP ranks beyond the KV heads hold "
                                   "copies (GQA: tp / kv_heads; MLA: every rank holds the latent)"))
    if redundant_experts:
        assumptions.append(user("redundant experts", redundant_experts, "slots per MoE layer", "redundant_experts"))
    if internode:
        assumptions += [internode_rows()[0].as_assumption(), internode_rows()[1].as_assumption()]
    if not default_profile:
        assumptions += [profile.rows[n].as_assumption() for n in ("max_batch_cap", *MOE_EFFICIENCY_NAMES)
                        if n in profile.rows]
    if float(tp) > 1:
        assumptions.append(acc.assumption(f"{acc.name} interconnect", acc.interconnect_bytes_per_second, "bytes/s")
                           if acc.interconnect_bytes_per_second else eff_rows["pcie_bytes_per_second"].as_assumption())
    for n in EFFICIENCY_NAMES:
        row = eff_rows[n] if default_profile else profile.rows[n]
        assumptions.append(row.as_assumption() if efficiency is None or n not in efficiency
                           else user(n, float(efficiency[n]), eff_rows[n].unit))
    assumptions += [eff_rows["kv_memory_fraction"].as_assumption()]
    if default_profile:
        assumptions.append(eff_rows["max_batch_cap"].as_assumption())
    if dist is not None:
        assumptions.append(dist.assumption())
    if arrival == "burst":
        assumptions.append(user("arrival", "burst", None, "arrival"))
        assumptions.append(user("requests", n_req, "requests", "requests"))
        assumptions.append(derived("burst makespan", makespan, "s", "FCFS continuous batching of the requests queued "
                                   "at t=0 (serving_lengths.burst): every step on the roofline, decodes plus the "
                                   "prefill chunks the engine's token budget admits"))
        assumptions += [profile.rows[n].as_assumption() for n in SCHEDULER_NAMES if n in profile.rows]
    if reasoning_multiplier != 1:
        assumptions.append(user("reasoning multiplier", float(reasoning_multiplier), "x output tokens", "reasoning_multiplier"))
    if cache_hit_rate:
        assumptions.append(user("prompt-cache hit rate", float(cache_hit_rate), None, "cache_hit_rate"))
    assumptions += dep.assumptions
    extra = dep.estimate_fields(r, dec_tps, assumptions, lambda: serve(**{
        **call, "speculative": None, "draft_tokens": None, "acceptance": None, "draft_model": None, "price": None,
        "provider": None, "tier": None}))
    est = (DeploymentServeEstimate if dep.active else ServeEstimate)(
        model=arch.name, gpu=acc.name, gpus=gpus, tensor_parallel=tp, replicas=replicas,
        precision=precision, kv_precision=kv_precision, mode=mode, input_tokens=float(input_tokens),
        output_tokens=float(output_tokens), batch=int(r["batch"]), max_batch=int(fits),
        output_tokens_per_second=out_tps, input_tokens_per_second=in_tps, decode_tokens_per_second=dec_tps,
        ttft_seconds=float(r["ttft_seconds"]), tpot_seconds=float(r["step_seconds"]),
        kv_cache_bytes_per_token=hw["kv_bytes_per_token"], bound="memory-bandwidth" if bool(r["memory_bound"]) else "compute",
        params_total=hw["params_total"], params_active=hw["params_active"], weight_bytes=w_total,
        reasoning_multiplier=float(reasoning_multiplier), cache_hit_rate=float(cache_hit_rate), assumptions=assumptions,
        expert_parallel=ep, attention_dp=bool(dp_attention),
        expert_load_imbalance=lam, attention_dp_imbalance=dp_imb, engine=engine, extrapolated=extrapolated,
        redundant_experts=redundant_experts, arrival=arrival, requests=n_req,
        lengths=None if dist is None else dist.name, makespan_seconds=makespan,
        output_tokens_per_second_low=out_tps * lo.value, output_tokens_per_second_high=out_tps * hi.value,
        input_tokens_per_second_low=in_tps * lo.value, input_tokens_per_second_high=in_tps * hi.value, **extra,
    )
    if price is not None or provider is not None:
        _attach_cost(est, price, provider, tier, utilization, in_tps, dec_tps, (lo.value, hi.value))
    return est


def _disaggregated(args: dict[str, Any], pool_args: dict[str, Any]) -> ServeEstimate:
    """serve() with ``prefill_gpus``/``decode_gpus``: refuse what a disaggregated deployment does not take, then
    :func:`billshape.serving_disagg.serve_disaggregated`."""
    from billshape.serving_disagg import serve_disaggregated

    if args["gpus"] is not None:
        raise BillshapeInputError("gpus", args["gpus"], "omitted with `prefill_gpus`/`decode_gpus` (the deployment's "
                                  "GPUs are the two pools')")
    if args["batch"] is not None and str(args["batch"]).strip().lower() != "max" or args["mode"] not in (None, "max-load"):
        raise BillshapeInputError("batch", args["batch"] if args["mode"] is None else args["mode"],
                                  "max with `prefill_gpus`/`decode_gpus` (give `decode_batch` for the decode pool)")
    for name in ("pp", "speculative", "draft_tokens", "acceptance", "draft_model"):
        if args[name] is not None and not (name == "pp" and float(args[name]) == 1):
            raise BillshapeInputError(name, args[name], "omitted with `prefill_gpus`/`decode_gpus` (pipeline "
                                      "parallelism and speculative decoding are not modeled for disaggregated pools)")
    if args["requests"] is not None or (args["arrival"] or "steady") != "steady":
        raise BillshapeInputError("arrival", args["arrival"], "steady with `prefill_gpus`/`decode_gpus` (bursts are "
                                  "not modeled for disaggregated deployments)")
    keep = ("model", "gpu", "prefill_gpus", "decode_gpus", "tp", "ep", "dp_attention", "two_batch_overlap", "precision",
            "kv_precision", "input_tokens", "output_tokens", "price", "provider", "tier", "utilization",
            "reasoning_multiplier", "cache_hit_rate", "efficiency", "engine", "redundant_experts", "lengths",
            "expert_routing")
    return serve_disaggregated(**{k: args[k] for k in keep}, **pool_args)


def _internode(acc: catalog.Accelerator, ep: int) -> dict[str, float]:
    """Roofline keywords for an EP group wider than one scale-up domain (empty when it fits in one)."""
    gpn = 72.0 if acc.name.lower().startswith(_RACK_SCALE) else internode_rows()[0].value
    if ep <= gpn:
        return {}
    return {"gpus_per_node": gpn, "internode_bytes_per_second": internode_rows()[1].value}


def _attach_cost(est: ServeEstimate, price, provider, tier, utilization, in_tps: float, dec_tps: float,
                 band: tuple[float, float] | None = None) -> None:
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
        lo, hi = band if band is not None else (_eff("throughput_ratio_p10").value, _eff("throughput_ratio_p90").value)
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
    #: the engine profile the replicas were sized with (serve's ``engine``)
    engine: str = "trtllm"
    #: True when no validation row covers this engine x architecture class x GPU generation (serve's flag)
    extrapolated: bool = False


#: tensor-parallel sizes tried when ``capacity`` chooses one (powers of two, as engines deploy them)
CAPACITY_TP_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)


def capacity(*, model: str, gpu: str, requests_per_second: float, tp: float | None = None, precision: str | None = "bf16",
             kv_precision: str | None = None, input_tokens: float | None = None, output_tokens: float | None = None,
             tpot_limit: float | None = None, ttft_limit: float | None = None, price: float | None = None,
             provider: str | None = None, tier: str | None = None, _tp_chosen: bool = False,
             engine: str | None = None) -> Capacity:
    """Replicas, GPUs and $/month to serve ``requests_per_second`` within a TPOT and/or TTFT limit [s].

    Each replica (``tp`` GPUs, default: the valid power-of-two size that needs the fewest GPUs in total) runs
    continuous batching at the largest batch whose step time (TPOT) and TTFT stay within the limits. ``engine``
    (``trtllm`` default, ``vllm``, ``sglang``) picks the same engine profile as :func:`serve` (efficiencies, MoE
    terms, scheduler cap), so a replica's throughput at a batch is serve's at that batch.
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
                             provider=provider, tier=tier, _tp_chosen=True, engine=engine)
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
                     input_tokens=input_tokens, output_tokens=output_tokens, engine=engine)
    except BillshapeInputError as exc:
        if exc.field == "gpus" and not _tp_chosen:  # here the replica size is the user's `tp`
            raise BillshapeInputError("tp", tp, exc.allowed, exc.hint) from None
        raise
    hw = hardware_inputs(arch, acc, base.precision, base.kv_precision)
    rows = efficiencies()
    batches = np.arange(1.0, base.batch + 1.0)
    # serve's engine profile and KV replication (serve resolved and validated the engine name)
    profile = engine_profile(base.engine, arch_class(arch), gpu_generation(acc.name))
    kv_rep = kv_replication(arch, tp)
    # the profile's kernel switches as serve reads them (attention at the kernels' precision; micro-batch tokens
    # need two-batch overlap, which a colocated replica does not run: no effect here)
    r = roofline(**hw, tensor_parallel=float(tp), input_tokens=in_len, output_tokens=out_len,
                 batch=batches, mode="max-load", kv_memory_fraction=rows["kv_memory_fraction"].value,
                 max_batch_cap=profile.params["max_batch_cap"], expert_load_cv=rows["expert_load_cv"].value,
                 **({"kv_replication": kv_rep} if kv_rep != 1.0 else {}), **profile.efficiency,
                 **attention_inputs(profile, acc, base.precision, base.kv_precision, in_len))
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
                   output_tokens_per_second=float(requests_per_second) * out_len, engine=base.engine,
                   extrapolated=bool(base.extrapolated), assumptions=assumptions)
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


from billshape.serving_measured import (  # noqa: E402,F401  (it uses serve and ServeEstimate from here)
    read_measured, _measured_field, _measured_count, serve_measured)
