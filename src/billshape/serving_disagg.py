r"""Disaggregated prefill and decode: a prefill-only pool and a decode-only pool, each on the serving roofline.

A disaggregated deployment runs prompts on one pool of GPUs and generation on another, and moves each request's
KV cache between them over the inter-node fabric (DistServe, Splitwise; DeepSeek's and SGLang's large-EP
deployments). Each pool has its own tensor / expert / attention-data parallelism and runs one phase only:

* **prefill pool** (``P`` GPUs, replicas of :math:`t_p`): batched, chunked prefill at full compute, no decode.
  A forward prefills :math:`b_p = \min(t_p\,n_{chunk} / I_c,\ B_{fit})` prompts (``prefill_tokens_per_gpu``
  :math:`n_{chunk}`; :math:`I_c = I(1-h)` the computed prompt tokens at cache-hit share :math:`h`) in
  :math:`t_{pre}` (the roofline's static prefill), so the pool serves :math:`R_p = (P/t_p)\,b_p / t_{pre}`
  requests/s and :math:`R_p I` input tokens/s (cached tokens included: they are served, not computed).
* **decode pool** (``D`` GPUs, replicas of :math:`t_d`): decode steps with no prefill in them, at the largest
  batch that fits (each sequence holds :math:`I + O` tokens of KV; the engine's batch cap applies per
  attention-DP rank, since each rank schedules its own batch) or the given ``decode_batch``:
  :math:`R_d = (D/t_d)\,b_d / (O\,t_{step})` requests/s, :math:`R_d O` output tokens/s, TPOT :math:`t_{step}`.
* **KV transfer**: each request's prompt KV, :math:`k I` bytes, crosses the fabric from the prefill GPU that
  holds it to the decode pool at the per-GPU inter-node bandwidth :math:`\beta_{IB}`:
  :math:`t_{kv} = k I / (s\,\beta_{IB})` with :math:`s` sending GPUs (1 with attention-DP or MLA, whose latent
  is whole on every rank; :math:`\min(t_p, h_{kv})` for GQA heads split over TP). The fabric carries at most
  :math:`R_{kv} = \min(P, D)\,\beta_{IB} / (k I)` requests/s.
* **the pair**: :math:`R = \min(R_p, R_d, R_{kv})`; output tokens/s :math:`R\,O`, input :math:`R\,I`; the pool
  with the smallest rate bounds the pair (``bound_pool``). The balanced pool ratio (prefill GPUs per decode GPU
  for this traffic mix) is :math:`(R_d/D) / (R_p/P)`. TTFT :math:`= t_{pre} + t_{kv} + t_{step}`.

Wide-EP pools (expert parallelism over the whole pool with attention data parallelism, as DeepEP deployments run
them) send dispatched activations in FP8 and combine in BF16 (``ep_dispatch_bytes_per_value``,
``ep_combine_bytes_per_value``: the all-to-all at their mean); in the prefill pool the dispatch crosses the fabric
once per destination *node* and is forwarded over NVLink inside it (DeepEP's normal kernels), so the inter-node
share carries :math:`n_{nodes}` copies of a token instead of :math:`g` (:func:`hierarchical_internode_bandwidth`);
the decode pool's low-latency kernels send to every destination GPU directly (no change). Two-batch overlap
(``two_batch_overlap``) splits a forward into two micro-batches so that one computes while the other
communicates: a two-stage pipeline, :math:`\max(a, c) + \min(a, c)/m` with :math:`a` the forward without
communication, :math:`c` the communication and :math:`m` = 2 (:func:`two_batch_overlap_seconds`).

References
----------
.. [1] Zhong et al., "DistServe: Disaggregating Prefill and Decoding for Goodput-optimized Large Language Model
       Serving", OSDI 2024, arXiv:2401.09670.
.. [2] Patel et al., "Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024,
       arXiv:2311.18677.
.. [3] DeepSeek, "Day 6: One More Thing, DeepSeek-V3/R1 Inference System Overview", open-source week,
       2025-03-01 (github.com/deepseek-ai/open-infra-index).
.. [4] The SGLang Team, "Deploying DeepSeek with PD Disaggregation and Large-scale Expert Parallelism on 96 H100
       GPUs", LMSYS blog, 2025-05-05 (lmsys.org/blog/2025-05-05-large-scale-ep).
.. [5] deepseek-ai/DeepEP README (normal kernels: NVLink-to-RDMA forwarding; low-latency kernels: pure RDMA;
       FP8 dispatch, BF16 combine).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from billshape.catalog import Constant, Row, load_typed

# --------------------------------------------------------------------------------------------------------------
# Equations (vectorised, no catalog look-ups)
# --------------------------------------------------------------------------------------------------------------


def distinct_nodes_touched(experts_per_token, nodes):
    r"""Expected distinct nodes a token's :math:`k` experts sit on, routed uniformly over ``nodes`` nodes:
    :math:`N (1 - (1 - 1/N)^k)` [nodes]."""
    n = np.maximum(np.asarray(nodes, dtype=float), 1.0)
    return n * (1.0 - (1.0 - 1.0 / n) ** np.asarray(experts_per_token, dtype=float))


def hierarchical_internode_bandwidth(internode_bytes_per_second, expert_parallel, experts_per_token,
                                     gpus_per_node):
    r"""The per-GPU inter-node bandwidth [bytes/s] that makes the roofline's all-to-all (one copy per destination
    GPU, :math:`g = e(1-(1-1/e)^k)` of them, the remote-node share over the fabric) carry one copy per
    destination *node* over the fabric, as DeepEP's normal (prefill) kernels do: :math:`\beta_{IB}\,g / n` with
    :math:`n` = :func:`distinct_nodes_touched` over :math:`e / G` nodes. Unchanged within one node."""
    e = np.maximum(np.asarray(expert_parallel, dtype=float), 1.0)
    k = np.asarray(experts_per_token, dtype=float)
    g_gpus = e * (1.0 - (1.0 - 1.0 / e) ** k)
    nodes = e / np.asarray(gpus_per_node, dtype=float)
    n_nodes = distinct_nodes_touched(k, nodes)
    bw = np.asarray(internode_bytes_per_second, dtype=float)
    return np.where(nodes > 1.0, bw * g_gpus / np.maximum(n_nodes, 1e-30), bw)


def two_batch_overlap_seconds(compute_seconds, communication_seconds, micro_batches=2.0):
    r"""A forward split into ``micro_batches`` :math:`m` that alternate computation and communication, as a
    two-stage pipeline: :math:`\max(a, c) + \min(a, c) / m` [s] (``m`` = 1: no overlap, :math:`a + c`)."""
    a = np.asarray(compute_seconds, dtype=float)
    c = np.maximum(np.asarray(communication_seconds, dtype=float), 0.0)
    return np.maximum(a, c) + np.minimum(a, c) / np.asarray(micro_batches, dtype=float)


def kv_transfer_seconds(kv_bytes_per_token, input_tokens, internode_bytes_per_second, sending_gpus=1.0):
    r"""Time [s] to move one request's prompt KV cache (:math:`k I` bytes) from the prefill pool to the decode
    pool: :math:`k I / (s\,\beta_{IB})` with :math:`s` GPUs sending their shares in parallel."""
    return (np.asarray(kv_bytes_per_token, dtype=float) * np.asarray(input_tokens, dtype=float)
            / (np.asarray(internode_bytes_per_second, dtype=float) * np.asarray(sending_gpus, dtype=float)))


def pair_requests_per_second(prefill_requests_per_second, decode_requests_per_second,
                             transfer_requests_per_second=np.inf):
    r"""Requests/s of a prefill pool and a decode pool in series: the slowest of the two and of the fabric
    between them, :math:`\min(R_p, R_d, R_{kv})`."""
    return np.minimum(np.minimum(np.asarray(prefill_requests_per_second, dtype=float),
                                 np.asarray(decode_requests_per_second, dtype=float)),
                      np.asarray(transfer_requests_per_second, dtype=float))


def balanced_prefill_gpus_per_decode_gpu(prefill_requests_per_second_per_gpu, decode_requests_per_second_per_gpu):
    r"""Prefill GPUs per decode GPU at which both pools serve the same request rate (the traffic mix sets both
    per-GPU rates): :math:`(R_d / D) / (R_p / P)`."""
    return (np.asarray(decode_requests_per_second_per_gpu, dtype=float)
            / np.asarray(prefill_requests_per_second_per_gpu, dtype=float))


# --------------------------------------------------------------------------------------------------------------
# Pools on the roofline (vectorised over numbers; the roofline function and its keywords are passed in)
# --------------------------------------------------------------------------------------------------------------


def _no_comm(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The same roofline keywords with free communication (infinite links, no latency): the forward's
    computation and memory time alone."""
    out = dict(kwargs)
    out["link_bytes_per_second"] = math.inf
    out["allreduce_latency_seconds"] = 0.0
    if out.get("internode_bytes_per_second") is not None:
        out["internode_bytes_per_second"] = math.inf
    return out


def _split(kwargs: dict[str, Any], on: bool, micro_batches) -> dict[str, Any]:
    """The roofline keywords with ``micro_batches`` set when the kernels see each micro-batch (``on``)."""
    return {**kwargs, "micro_batches": micro_batches} if on else kwargs


def prefill_pool(roofline, kwargs: dict[str, Any], *, input_tokens, prefill_tokens_per_gpu, overlap=False,
                 micro_batches=2.0, micro_batch_kernels=False) -> dict[str, Any]:
    """One prefill replica (``kwargs`` holds the roofline's hardware, parallelism and efficiency keywords, with
    ``tensor_parallel``): the prompts of one batched forward, its time and the replica's requests/s.
    ``micro_batch_kernels`` (with ``overlap``): the roofline's kernels see the micro-batch's tokens (its
    ``micro_batches`` keyword: grouped-GEMM factor at :math:`T/m`); False: the whole forward's (the model before).

    Returns ``batch`` [prompts], ``max_batch``, ``prefill_seconds`` [s], ``requests_per_second`` (per replica),
    ``communication_seconds`` [s] and the roofline's imbalance factors."""
    t = np.asarray(kwargs["tensor_parallel"], dtype=float)
    i_len = np.asarray(input_tokens, dtype=float)
    kwargs = _split(kwargs, overlap and micro_batch_kernels, micro_batches)
    fit = roofline(**kwargs, input_tokens=i_len, output_tokens=1.0, batch=None, mode="static")
    fits = np.asarray(fit["max_batch"], dtype=float)
    b = np.minimum(np.maximum(t * np.asarray(prefill_tokens_per_gpu, dtype=float) / i_len, 1.0),
                   np.maximum(fits, 1.0))
    r = roofline(**kwargs, input_tokens=i_len, output_tokens=1.0, batch=b, mode="static")
    full = np.asarray(r["prefill_seconds"], dtype=float)
    comp = np.asarray(roofline(**_no_comm(kwargs), input_tokens=i_len, output_tokens=1.0, batch=b,
                               mode="static")["prefill_seconds"], dtype=float)
    comm = np.maximum(full - comp, 0.0)
    pre_s = two_batch_overlap_seconds(comp, comm, micro_batches) if overlap else full
    return {"batch": b, "max_batch": fits, "prefill_seconds": pre_s, "communication_seconds": comm,
            "requests_per_second": b / pre_s, "expert_load_imbalance": r["expert_load_imbalance"],
            "weight_bytes": r["weight_bytes"]}


def decode_pool(roofline, kwargs: dict[str, Any], *, input_tokens, output_tokens, batch=None, batch_cap=2048.0,
                overlap=False, micro_batches=2.0, micro_batch_kernels=False) -> dict[str, Any]:
    """One decode replica: decode steps only (no prefill in them), every sequence holding its whole context.
    ``micro_batch_kernels`` (with ``overlap``): each step's kernels see the micro-batch's tokens (grouped-GEMM
    factor and expert loads at :math:`T/m`, weights read once per micro-batch).

    ``batch`` None: the largest that fits, at most ``batch_cap``. Returns ``batch``, ``max_batch``,
    ``step_seconds`` (TPOT) [s], ``requests_per_second`` and ``output_tokens_per_second`` (per replica),
    ``communication_seconds`` and ``memory_bound``."""
    i_len = np.asarray(input_tokens, dtype=float)
    o_len = np.asarray(output_tokens, dtype=float)
    kw = _split({**kwargs, "max_batch_cap": batch_cap}, overlap and micro_batch_kernels, micro_batches)
    fit = roofline(**kw, input_tokens=i_len, output_tokens=o_len, batch=None, mode="static")
    fits = np.asarray(fit["max_batch"], dtype=float)
    b = np.asarray(fit["batch"], dtype=float) if batch is None else np.asarray(batch, dtype=float) + 0 * fits
    r = roofline(**kw, input_tokens=i_len, output_tokens=o_len, batch=b, mode="static")
    full = np.asarray(r["step_seconds"], dtype=float)
    comp = np.asarray(roofline(**_no_comm(kw), input_tokens=i_len, output_tokens=o_len, batch=b,
                               mode="static")["step_seconds"], dtype=float)
    comm = np.maximum(full - comp, 0.0)
    step = two_batch_overlap_seconds(comp, comm, micro_batches) if overlap else full
    return {"batch": b, "max_batch": fits, "step_seconds": step, "communication_seconds": comm,
            "requests_per_second": b / (o_len * step), "output_tokens_per_second": b / step,
            "memory_bound": r["memory_bound"], "expert_load_imbalance": r["expert_load_imbalance"],
            "weight_bytes": r["weight_bytes"]}


# --------------------------------------------------------------------------------------------------------------
# Catalog rows
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def disagg_constants() -> dict[str, Constant]:
    """Defaults of the disaggregated model, by name (``data/serving_disagg.csv``)."""
    return {c.name: c for c in load_typed(Constant, "serving_disagg.csv")}


class Deployment(Row):
    """A published per-node figure of a disaggregated deployment and how billshape runs it
    (``data/serving_deployments.csv``)."""

    id: str
    deployment: str
    phase: str
    model: str
    gpu: str
    engine: str
    precision: str
    kv_precision: str
    pool_gpus: float
    tp: float
    ep: float
    dp_attention: float
    redundant_experts: float
    two_batch_overlap: float
    input_tokens: float
    output_tokens: float
    decode_batch: float | None = None
    cache_hit_rate: float = 0.0
    published_tokens_per_second_per_node: float
    published_unit: str
    tolerance: float
    tolerance_reason: str = ""
    published_setup: str = ""
    assumed: str = ""
    #: a day-average row's full-load row (same pool): checked by :func:`computed_token_ratio` against it, not by
    #: its own error (a full-load model does not predict a day average); empty: ``|error| <= tolerance``
    reference: str = ""
    #: the routing the figure was measured under (``serve``'s ``expert_routing``): ``measured`` (a real router, the
    #: catalog's skew) or ``balanced`` (a benchmark that simulates balanced routing)
    expert_routing: str = "measured"


def deployments() -> tuple[Deployment, ...]:
    """The published deployments billshape reproduces (``data/serving_deployments.csv``)."""
    return load_typed(Deployment, "serving_deployments.csv")


def reproduce(dep: Deployment) -> dict[str, float]:
    """billshape's per-node figure for a published deployment: the pool of the published phase as published,
    the other pool large enough not to bound it (as the sources measured each phase). Returns ``modeled``,
    ``published`` and ``error`` (modeled / published - 1)."""
    from billshape.serving import serve

    pool = dict(tp=dep.tp, ep=dep.ep, dp_attention=bool(dep.dp_attention))
    est = serve(model=dep.model, gpu=dep.gpu, precision=dep.precision, kv_precision=dep.kv_precision,
                input_tokens=dep.input_tokens, output_tokens=dep.output_tokens, engine=dep.engine,
                redundant_experts=dep.redundant_experts, cache_hit_rate=dep.cache_hit_rate,
                prefill_gpus=dep.pool_gpus, decode_gpus=dep.pool_gpus,
                prefill_tp=pool["tp"], prefill_ep=pool["ep"], prefill_dp_attention=pool["dp_attention"],
                decode_tp=pool["tp"], decode_ep=pool["ep"], decode_dp_attention=pool["dp_attention"],
                decode_batch=dep.decode_batch, two_batch_overlap=bool(dep.two_batch_overlap),
                expert_routing=dep.expert_routing)
    modeled = (est.prefill_input_tokens_per_second_per_node if dep.phase == "prefill"
               else est.decode_output_tokens_per_second_per_node)
    return {"modeled": float(modeled), "published": dep.published_tokens_per_second_per_node,
            "error": float(modeled) / dep.published_tokens_per_second_per_node - 1.0}


def computed_token_ratio(tokens_per_second, cache_hit_rate, reference_tokens_per_second,
                         reference_cache_hit_rate=0.0):
    r"""Prompt tokens *computed* per second of a pool over those of a reference pool: :math:`\rho =
    R (1-h) / (R_{ref} (1-h_{ref}))`, each rate counting every prompt token served, cached ones included
    (DeepSeek's convention). A model whose cost per computed token does not depend on the cache-hit share gives
    :math:`\rho = 1` for two full-load figures of the same pool.

    Parameters
    ----------
    tokens_per_second, reference_tokens_per_second : numeric
        Prompt tokens served per second, cache hits included [tokens/s].
    cache_hit_rate, reference_cache_hit_rate : numeric
        Share of the prompt tokens served from the prefix cache h [fraction].

    Returns
    -------
    numeric
        :math:`\rho` [ratio].

    References
    ----------
    .. [1] DeepSeek-AI, "Day 6: DeepSeek-V3/R1 Inference System Overview", 2025-03-01 (input tokens/s "including
           cache hits"; 56.3 % of them hit the on-disk KV cache).
    """
    return (np.asarray(tokens_per_second, dtype=float) * (1.0 - np.asarray(cache_hit_rate, dtype=float))
            / (np.asarray(reference_tokens_per_second, dtype=float)
               * (1.0 - np.asarray(reference_cache_hit_rate, dtype=float))))


def within_bound(dep: Deployment, modeled: dict[str, float]) -> bool:
    """Whether a reproduction meets its check, given every row's ``modeled`` per-node figure by id: ``|error| <=
    tolerance``; for a day-average row (``reference``) the full-load model must be at least the published day
    average and its computed-token ratio to the reference row within ``[1, 1 + tolerance]``
    (:func:`computed_token_ratio`; docs/serving.md "Reproductions")."""
    m = modeled[dep.id]
    if not dep.reference:
        return abs(m / dep.published_tokens_per_second_per_node - 1.0) <= dep.tolerance + 1e-12
    ref = {d.id: d for d in deployments()}[dep.reference]
    rho = float(computed_token_ratio(m, dep.cache_hit_rate, modeled[ref.id], ref.cache_hit_rate))
    return m >= dep.published_tokens_per_second_per_node and 1.0 <= rho <= 1.0 + dep.tolerance + 1e-12


# --------------------------------------------------------------------------------------------------------------
# The decision: serve(..., prefill_gpus=P, decode_gpus=D)
# --------------------------------------------------------------------------------------------------------------

from billshape.serving import ServeEstimate  # noqa: E402  (serving imports this module only inside serve())


class DisaggregatedServeEstimate(ServeEstimate):
    """A :class:`~billshape.serving.ServeEstimate` of a disaggregated deployment: the inherited keys describe the
    whole deployment (``gpus`` = both pools, ``output_tokens_per_second`` the pair's, costs over every GPU), the
    ``prefill_*`` / ``decode_*`` keys each pool at its own capacity."""

    prefill_gpus: int = 0
    decode_gpus: int = 0
    prefill_tensor_parallel: int = 1
    prefill_expert_parallel: int = 1
    prefill_attention_dp: bool = False
    decode_tensor_parallel: int = 1
    decode_expert_parallel: int = 1
    decode_attention_dp: bool = False
    two_batch_overlap: bool = False
    gpus_per_node: int = 8
    prefill_batch: float = 0.0
    prefill_seconds: float = 0.0
    prefill_input_tokens_per_second: float = 0.0
    prefill_input_tokens_per_second_per_node: float = 0.0
    prefill_requests_per_second: float = 0.0
    decode_batch: int = 0
    decode_max_batch: int = 0
    decode_output_tokens_per_second: float = 0.0
    decode_output_tokens_per_second_per_node: float = 0.0
    decode_requests_per_second: float = 0.0
    kv_transfer_bytes_per_request: float = 0.0
    kv_transfer_seconds: float = 0.0
    kv_transfer_bytes_per_second: float = 0.0
    kv_transfer_fabric_share: float = 0.0
    requests_per_second: float = 0.0
    pool_ratio: float = 0.0
    balanced_prefill_gpus_per_decode_gpu: float = 0.0
    bound_pool: str = "prefill"


#: pool keywords of :func:`billshape.serving.serve` and the shared keyword each defaults to
POOL_FIELDS = ("tp", "ep", "dp_attention")


def _pool_error(exc, pool: str):
    """The pool's own field names in an error ``serve`` raised while checking that pool."""
    from billshape.errors import BillshapeInputError

    names = {"gpus": f"{pool}_gpus", "tp": f"{pool}_tp", "ep": f"{pool}_ep", "dp_attention": f"{pool}_dp_attention"}
    field = names.get(exc.field, exc.field)

    def fix(text):
        if text is None:
            return None
        for old, new in names.items():
            text = text.replace(f"`{old}`", f"`{new}`")
        return text

    return BillshapeInputError(field, exc.value, fix(exc.allowed), fix(exc.hint))


def serve_disaggregated(*, model: str, gpu: str, prefill_gpus: float | None, decode_gpus: float | None,
                        tp: float | None = None, ep: float | None = None, dp_attention: bool = False,
                        prefill_tp: float | None = None, prefill_ep: float | None = None,
                        prefill_dp_attention: bool | None = None, decode_tp: float | None = None,
                        decode_ep: float | None = None, decode_dp_attention: bool | None = None,
                        decode_batch: float | None = None, two_batch_overlap: bool = False,
                        precision: str | None = "bf16", kv_precision: str | None = None,
                        input_tokens: float | None = None, output_tokens: float | None = None,
                        price: float | None = None, provider: str | None = None, tier: str | None = None,
                        utilization: float | None = None, reasoning_multiplier: float = 1.0,
                        cache_hit_rate: float = 0.0, efficiency: dict[str, float] | None = None,
                        engine: str | None = None, redundant_experts: float = 0,
                        lengths: str | None = None, expert_routing: str | None = None) -> DisaggregatedServeEstimate:
    """Model a disaggregated deployment: ``prefill_gpus`` GPUs that only prefill and ``decode_gpus`` GPUs that
    only decode (see the module docstring for the equations). Each pool's ``*_tp``/``*_ep``/``*_dp_attention``
    defaults to the shared ``tp``/``ep``/``dp_attention`` and, for ``tp``, to the pool's GPUs within one node
    (at least its ``ep``). Call it through :func:`billshape.serving.serve` with ``prefill_gpus`` and
    ``decode_gpus``."""
    from billshape import _validate as v
    from billshape import catalog
    from billshape.errors import BillshapeInputError
    from billshape.results import derived, user
    from billshape.serving import _attach_cost, _internode, serve
    from billshape.serving_catalog import routing_skew
    from billshape.serving_roofline import (_RACK_SCALE, attention_inputs, hardware_inputs, internode_rows,
                                            kv_replication, roofline)

    for name, value, other in (("prefill_gpus", prefill_gpus, "decode_gpus"), ("decode_gpus", decode_gpus, "prefill_gpus")):
        if value is None:
            raise BillshapeInputError(name, None, f"a whole number > 0 of GPUs with `{other}` (a disaggregated "
                                      "deployment has both pools)")
        v.positive(name, value, v.MAX_COUNT)
        if float(value) != int(value):
            raise BillshapeInputError(name, value, "a whole number of GPUs")
    counts = {"prefill": int(prefill_gpus), "decode": int(decode_gpus)}
    if decode_batch is not None:
        v.positive("decode_batch", decode_batch, v.MAX_COUNT)
        if float(decode_batch) != int(decode_batch):
            raise BillshapeInputError("decode_batch", decode_batch, "a whole number of sequences per decode replica")
    acc = catalog.gpu(gpu)
    gpn = 72 if acc.name.lower().startswith(_RACK_SCALE) else int(internode_rows()[0].value)
    given = {"prefill": {"tp": prefill_tp, "ep": prefill_ep, "dp_attention": prefill_dp_attention},
             "decode": {"tp": decode_tp, "ep": decode_ep, "dp_attention": decode_dp_attention}}
    shared = {"tp": tp, "ep": ep, "dp_attention": bool(dp_attention)}
    pools: dict[str, dict[str, Any]] = {}
    for pool in ("prefill", "decode"):
        n = counts[pool]
        par = {k: given[pool][k] if given[pool][k] is not None else shared[k] for k in POOL_FIELDS}
        if par["tp"] is None:
            par["tp"] = max(int(par["ep"] or 1), min(n, gpn))
        try:
            est = serve(model=model, gpu=gpu, gpus=n, tp=par["tp"], precision=precision, kv_precision=kv_precision,
                        input_tokens=input_tokens, output_tokens=output_tokens, efficiency=efficiency,
                        ep=par["ep"], dp_attention=bool(par["dp_attention"]), engine=engine,
                        redundant_experts=redundant_experts, reasoning_multiplier=reasoning_multiplier,
                        cache_hit_rate=cache_hit_rate, lengths=lengths, expert_routing=expert_routing)
        except BillshapeInputError as exc:
            raise _pool_error(exc, pool) from None
        pools[pool] = {"par": par, "est": est}
    base = pools["decode"]["est"]
    arch_name, precision, kv_precision = base.model, base.precision, base.kv_precision
    from billshape.serving_catalog import architecture, arch_class, engine_profile, efficiencies, gpu_generation

    arch = architecture(arch_name)
    eng = base.engine
    profile = engine_profile(eng, arch_class(arch), gpu_generation(acc.name))
    eff = dict(profile.efficiency) if efficiency is None else {**profile.efficiency, **efficiency}
    cap = float(profile.params["max_batch_cap"])
    rows = efficiencies()
    consts = disagg_constants()
    hw = hardware_inputs(arch, acc, precision, kv_precision)
    in_full, out_len = float(base.input_tokens), float(base.output_tokens) * float(reasoning_multiplier)
    in_len = max(in_full * (1.0 - float(cache_hit_rate)), 1.0)
    ib = internode_rows()[1].value
    a2a_bytes = 0.5 * (consts["ep_dispatch_bytes_per_value"].value + consts["ep_combine_bytes_per_value"].value)
    m = consts["overlap_micro_batches"].value
    # the kernels see each micro-batch's tokens (grouped-GEMM factor, expert loads): the profile's switch
    split_kernels = bool(two_batch_overlap) and bool(profile.params.get("overlap_micro_batch_tokens", 0.0))
    res: dict[str, dict[str, Any]] = {}
    for pool in ("prefill", "decode"):
        est = pools[pool]["est"]
        t, e, dp = est.tensor_parallel, est.expert_parallel, est.attention_dp
        par = dict(expert_parallel=float(e), attention_dp=bool(dp),
                   expert_load_cv=routing_skew(rows, est.redundant_experts, expert_routing)[0])
        rep = kv_replication(arch, t, bool(dp))
        if rep != 1.0:
            par["kv_replication"] = rep
        if est.redundant_experts:
            par["redundant_experts"] = float(est.redundant_experts)
        par.update(_internode(acc, e))
        par.update(attention_inputs(profile, acc, precision, kv_precision, in_len))
        wide_ep = e > 1 and e == t and dp
        if wide_ep:
            par["activation_bytes"] = a2a_bytes
            if pool == "prefill" and "internode_bytes_per_second" in par:
                par["internode_bytes_per_second"] = float(hierarchical_internode_bandwidth(
                    par["internode_bytes_per_second"], e, arch.experts_per_token, par["gpus_per_node"]))
        kw = dict(**hw, tensor_parallel=float(t), kv_memory_fraction=rows["kv_memory_fraction"].value,
                  max_batch_cap=cap, **par, **eff)
        if pool == "prefill":
            r = prefill_pool(roofline, kw, input_tokens=in_len,
                             prefill_tokens_per_gpu=consts["prefill_tokens_per_gpu"].value,
                             overlap=bool(two_batch_overlap), micro_batches=m, micro_batch_kernels=split_kernels)
        else:
            if decode_batch is not None:
                fit = decode_pool(roofline, kw, input_tokens=in_full, output_tokens=out_len, batch_cap=math.inf)
                if float(decode_batch) > float(fit["max_batch"]):
                    raise BillshapeInputError("decode_batch", int(decode_batch), f"<= {int(fit['max_batch'])}: the "
                                              f"largest decode batch per replica whose KV cache fits at "
                                              f"{in_full:g}+{out_len:g} tokens")
            r = decode_pool(roofline, kw, input_tokens=in_full, output_tokens=out_len,
                            batch=None if decode_batch is None else float(decode_batch),
                            batch_cap=cap * (t if dp else 1), overlap=bool(two_batch_overlap), micro_batches=m,
                            micro_batch_kernels=split_kernels)
        res[pool] = {"r": r, "t": t, "e": e, "dp": dp, "replicas": counts[pool] // t, "wide_ep": wide_ep}
    p, d = res["prefill"], res["decode"]
    rp = float(p["r"]["requests_per_second"]) * p["replicas"]
    rd = float(d["r"]["requests_per_second"]) * d["replicas"]
    kv_req = hw["kv_bytes_per_token"] * in_full
    senders = 1.0 if (p["dp"] or arch.attention == "mla") else float(min(p["t"], arch.kv_heads))
    t_kv = float(kv_transfer_seconds(hw["kv_bytes_per_token"], in_full, ib, senders))
    r_kv = min(counts["prefill"], counts["decode"]) * ib / kv_req
    rps = float(pair_requests_per_second(rp, rd, r_kv))
    bound = "prefill" if rps == rp else "decode" if rps == rd else "kv-transfer"
    balanced = float(balanced_prefill_gpus_per_decode_gpu(rp / counts["prefill"], rd / counts["decode"]))
    step = float(d["r"]["step_seconds"])
    pre_s = float(p["r"]["prefill_seconds"])
    out_tps, in_tps = rps * out_len, rps * in_full
    gpus = counts["prefill"] + counts["decode"]
    assumptions = list(base.assumptions)
    drop = {"GPUs", "tensor parallel", "expert parallel", "attention data parallel", "expert load imbalance",
            "attention-DP rank imbalance", "KV replication"}
    assumptions = [a for a in assumptions if a.name not in drop]
    for pool in ("prefill", "decode"):
        q, info = res[pool], pools[pool]
        assumptions.append(user(f"{pool} GPUs", counts[pool], "GPUs", f"{pool}_gpus"))
        for k, label, value, unit in (("tp", "tensor parallel", q["t"], "GPUs"), ("ep", "expert parallel", q["e"], "GPUs"),
                                      ("dp_attention", "attention data parallel", q["dp"], None)):
            if given[pool][k] is not None:
                assumptions.append(user(f"{pool} {label}", value, unit, f"{pool}_{k}"))
            elif shared[k] is not None and (k != "dp_attention" or shared[k]):
                assumptions.append(user(f"{pool} {label}", value, unit, k))
            elif k == "tp":
                assumptions.append(derived(f"{pool} tensor parallel", value, "GPUs", f"the pool's GPUs within one "
                                           f"node of {gpn} (at least its expert parallel; `{pool}_tp` not given)"))
        if q["wide_ep"]:
            assumptions.append(derived(f"{pool} EP exchange", "FP8 dispatch, BF16 combine" + (
                ", one fabric copy per destination node" if pool == "prefill" and q["e"] > gpn else ""), None,
                "wide expert parallelism with attention-DP runs DeepEP-style kernels (normal mode in prefill, "
                "low-latency in decode)"))
    assumptions += [consts["prefill_tokens_per_gpu"].as_assumption(), internode_rows()[1].as_assumption()]
    if any(q["wide_ep"] for q in res.values()):
        assumptions += [consts["ep_dispatch_bytes_per_value"].as_assumption(),
                        consts["ep_combine_bytes_per_value"].as_assumption()]
    if two_batch_overlap:
        assumptions += [user("two-batch overlap", True, None, "two_batch_overlap"),
                        consts["overlap_micro_batches"].as_assumption()]
    if decode_batch is not None:
        assumptions.append(user("decode batch", int(decode_batch), "sequences per decode replica", "decode_batch"))
    else:
        assumptions.append(derived("decode batch", int(d["r"]["batch"]), "sequences per decode replica",
                                   "the largest whose KV cache (prompt + output per sequence) fits, at most the "
                                   "engine's batch cap per attention-DP rank"))
    assumptions.append(derived("disaggregated pair", bound, None, "requests/s = min(prefill pool, decode pool, KV "
                               "transfer over the fabric); both pools priced"))
    est = DisaggregatedServeEstimate(
        model=arch.name, gpu=acc.name, gpus=gpus, tensor_parallel=int(d["t"]), replicas=int(d["replicas"]),
        precision=precision, kv_precision=kv_precision, mode="disaggregated", input_tokens=in_full,
        output_tokens=float(base.output_tokens), batch=int(d["r"]["batch"]), max_batch=int(d["r"]["max_batch"]),
        output_tokens_per_second=out_tps, input_tokens_per_second=in_tps, decode_tokens_per_second=out_tps,
        ttft_seconds=pre_s + t_kv + step, tpot_seconds=step, kv_cache_bytes_per_token=hw["kv_bytes_per_token"],
        bound="memory-bandwidth" if bool(d["r"]["memory_bound"]) else "compute",
        params_total=hw["params_total"], params_active=hw["params_active"], weight_bytes=float(d["r"]["weight_bytes"]),
        reasoning_multiplier=float(reasoning_multiplier), cache_hit_rate=float(cache_hit_rate),
        assumptions=assumptions, expert_parallel=int(d["e"]), attention_dp=bool(d["dp"]),
        expert_load_imbalance=float(d["r"]["expert_load_imbalance"]), engine=eng, extrapolated=base.extrapolated,
        redundant_experts=base.redundant_experts, lengths=base.lengths,
        output_tokens_per_second_low=out_tps * profile.rows["throughput_ratio_p10"].value,
        output_tokens_per_second_high=out_tps * profile.rows["throughput_ratio_p90"].value,
        input_tokens_per_second_low=in_tps * profile.rows["throughput_ratio_p10"].value,
        input_tokens_per_second_high=in_tps * profile.rows["throughput_ratio_p90"].value,
        prefill_gpus=counts["prefill"], decode_gpus=counts["decode"], prefill_tensor_parallel=int(p["t"]),
        prefill_expert_parallel=int(p["e"]), prefill_attention_dp=bool(p["dp"]), decode_tensor_parallel=int(d["t"]),
        decode_expert_parallel=int(d["e"]), decode_attention_dp=bool(d["dp"]),
        two_batch_overlap=bool(two_batch_overlap), gpus_per_node=gpn, prefill_batch=float(p["r"]["batch"]),
        prefill_seconds=pre_s, prefill_input_tokens_per_second=rp * in_full,
        prefill_input_tokens_per_second_per_node=rp * in_full / (counts["prefill"] / gpn),
        prefill_requests_per_second=rp, decode_batch=int(d["r"]["batch"]), decode_max_batch=int(d["r"]["max_batch"]),
        decode_output_tokens_per_second=rd * out_len,
        decode_output_tokens_per_second_per_node=rd * out_len / (counts["decode"] / gpn),
        decode_requests_per_second=rd, kv_transfer_bytes_per_request=kv_req, kv_transfer_seconds=t_kv,
        kv_transfer_bytes_per_second=rps * kv_req, kv_transfer_fabric_share=rps / r_kv, requests_per_second=rps,
        pool_ratio=counts["prefill"] / counts["decode"], balanced_prefill_gpus_per_decode_gpu=balanced,
        bound_pool=bound,
    )
    if price is not None or provider is not None:
        # a request's prefill-pool time prices its input tokens, its decode-pool time its output tokens; at the
        # pair's rate both pools' hours are spread over the tokens served (the idle share of the faster pool too)
        # _attach_cost multiplies the input cost by (1 - cache_hit_rate), as for serve's computed-token rate
        keep = 1.0 - float(cache_hit_rate)
        _attach_cost(est, price, provider, tier, utilization, rps * in_full * gpus / counts["prefill"] * keep,
                     rps * out_len * gpus / counts["decode"],
                     (profile.rows["throughput_ratio_p10"].value, profile.rows["throughput_ratio_p90"].value))
    return est
