r"""Pipeline parallelism and speculative decoding around the serving roofline (vectorised over numbers).

:func:`deployment_roofline` takes :func:`billshape.serving_roofline.roofline`'s keywords plus ``pipeline_parallel``
N and ``speculative`` (a :func:`speculative_inputs` dict) and returns the same keys. With N = 1 and no speculation
it *is* the roofline (the same call, bit for bit); :func:`deployment` validates the user's choices for
:func:`billshape.serving.serve` and :mod:`billshape.serving_sweep`.

Pipeline parallelism: the layers are split over N stages of ``tensor_parallel`` GPUs; the busiest stage holds
:math:`\lceil L/N \rceil` layers (uneven stages: vLLM's default partition gives the remainder to some stages, and a
step waits for the busiest one), so weights and KV cache per GPU are that share of the model's. Each stage is the
roofline of the model scaled to its share of the layers; M = N micro-batches are in flight (one per stage, as vLLM
and TensorRT-LLM schedule them); decode runs at :func:`pipeline_decode_cycle_seconds`, a static batch's prefill at
:func:`gpipe_fill_seconds`.

Speculative decoding: each step verifies K draft tokens per sequence in one target pass over B (K+1) query tokens
(the roofline's decode step at that batch: weights read once, compute, KV reads and communication for the K+1
positions), plus the chunked prefill the step carries (B I E / O prompt tokens: requests finish in O/E steps), plus
K draft passes (``mtp``: the MTP module, one transformer layer of the target plus the output head, DeepSeek-V3
section 2.2; ``eagle``: a one-layer dense head with the target's output head, EAGLE; ``draft``: K decode steps of a
small model on the same GPUs). A step emits E tokens (:func:`billshape.inference.speculative_tokens_per_step`).

References
----------
.. [1] Huang et al., "GPipe", NeurIPS 2019, arXiv:1811.06965.
.. [2] Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", SC 2021,
       arXiv:2104.04473.
.. [3] vLLM documentation, "Distributed inference and serving" (``--pipeline-parallel-size``; one virtual engine
       per stage); TensorRT-LLM documentation, "Parallelism" (pipeline parallelism in inference).
.. [4] Leviathan, Kalman, Matias, ICML 2023, arXiv:2211.17192 (speculative decoding).
.. [5] DeepSeek-AI, "DeepSeek-V3 Technical Report", 2024, arXiv:2412.19437, sections 2.2 and 5.4.3 (MTP).
.. [6] Li et al., "EAGLE", ICML 2024, arXiv:2401.15077.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Any

import numpy as np

from billshape import _validate as v
from billshape import inference
from billshape.catalog import Constant, load_typed
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Assumption, derived, user
from billshape.serving_catalog import Architecture, architecture
from billshape.serving_roofline import hardware_inputs, roofline

#: speculative-decoding methods (``speculative``)
SPECULATIVE_METHODS = ("mtp", "eagle", "draft")
#: the most draft tokens per step accepted (engines use 1-8)
MAX_DRAFT_TOKENS = 16
#: roofline keywords that describe the model (scaled for a pipeline stage, replaced for a draft pass)
_ARCH_KEYS = ("params_total", "params_active", "expert_params", "experts_routed", "experts_per_token", "layers",
              "moe_layers", "dense_layers", "hidden_size", "attention_dim", "kv_bytes_per_token",
              "weight_bytes_per_param")
#: the keywords scaled by a stage's share of the layers
_STAGE_KEYS = ("params_total", "params_active", "expert_params", "layers", "moe_layers", "dense_layers",
               "kv_bytes_per_token", "sliding_window_layers")


def pipeline_transfer_seconds(message_bytes_per_gpu, link_bytes_per_second, latency_seconds, count=1):
    r"""Point-to-point activation transfers between pipeline stages: :math:`n (\alpha + m / \beta)`.

    Parameters
    ----------
    message_bytes_per_gpu : numeric
        Bytes each GPU of a stage sends to its peer in the next stage (tokens x hidden size x activation bytes,
        divided by the tensor-parallel degree with Megatron's scatter/gather optimisation) [bytes].
    link_bytes_per_second : numeric
        Per-GPU one-direction bandwidth of the link between the two stages :math:`\beta` [bytes/s].
    latency_seconds : numeric
        Fixed cost of one transfer :math:`\alpha` [s].
    count : numeric
        Stage boundaries crossed over this link [count].

    Returns
    -------
    numeric
        [s].

    References
    ----------
    .. [1] Narayanan et al., "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM",
           SC 2021, arXiv:2104.04473, section 4.1 (point-to-point communication between stages, scatter/gather).
    """
    return np.asarray(count, dtype=float) * (np.asarray(latency_seconds, dtype=float) + np.asarray(
        message_bytes_per_gpu, dtype=float) / np.asarray(link_bytes_per_second, dtype=float))


def pipeline_decode_cycle_seconds(stage_seconds_mean, stage_seconds_max, transfer_seconds, stages, microbatches,
                                  overhead_seconds=0.0):
    r"""Time between two tokens of one sequence in a pipelined decode with ``microbatches`` in flight.

    A micro-batch's token crosses the N stages one after the other, with N-1 transfers between them, so its
    latency is :math:`T = N \bar t_s + t_{p2p} + t_0`; meanwhile the busiest stage serves M micro-batches, each for
    :math:`t_s^{max}`. The next token of a micro-batch can start only when both are done:

    .. math::

        t_{cycle} = \max(N \bar t_s + t_{p2p} + t_0, \; M t_s^{max})

    With M = N micro-batches (vLLM's and TensorRT-LLM's default: one per stage) and equal stages the compute
    bubble of GPipe vanishes in steady-state decode; what is left idle is the transfers and the overhead,
    :math:`1 - M t_s^{max} / t_{cycle}` (the bubble fraction).

    Parameters
    ----------
    stage_seconds_mean, stage_seconds_max : numeric
        One micro-batch's time on the average and on the busiest stage [s].
    transfer_seconds : numeric
        The N-1 stage-to-stage transfers of one micro-batch, all together [s].
    stages : numeric
        Pipeline stages N [count].
    microbatches : numeric
        Micro-batches in flight M [count].
    overhead_seconds : numeric
        Per-step fixed cost (scheduling, sampling) :math:`t_0` [s].

    Returns
    -------
    numeric
        [s].

    References
    ----------
    .. [1] Huang et al., "GPipe", NeurIPS 2019, arXiv:1811.06965 (micro-batches, bubble (N-1)/(M+N-1)).
    .. [2] Narayanan et al. 2021, arXiv:2104.04473, section 2.2 (pipeline bubble).
    """
    n = np.asarray(stages, dtype=float)
    latency = (n * np.asarray(stage_seconds_mean, dtype=float) + np.asarray(transfer_seconds, dtype=float)
               + np.asarray(overhead_seconds, dtype=float))
    return np.maximum(latency, np.asarray(microbatches, dtype=float) * np.asarray(stage_seconds_max, dtype=float))


def gpipe_fill_seconds(stage_seconds_mean, stage_seconds_max, stages, microbatches, transfer_seconds=0.0):
    r"""Time to push M micro-batches through N stages once (a static batch's prefill):
    :math:`N \bar t_s + (M - 1) t_s^{max} + t_{p2p}`, i.e. :math:`(M + N - 1) t_s` for equal stages (GPipe's
    bubble fraction :math:`(N-1)/(M+N-1)`).

    Parameters
    ----------
    stage_seconds_mean, stage_seconds_max : numeric
        One micro-batch's time on the average and on the busiest stage [s].
    stages, microbatches : numeric
        N and M [count].
    transfer_seconds : numeric
        The N-1 transfers of one micro-batch [s].

    Returns
    -------
    numeric
        [s].

    References
    ----------
    .. [1] Huang et al., "GPipe", NeurIPS 2019, arXiv:1811.06965, section 2.2.
    """
    return (np.asarray(stages, dtype=float) * np.asarray(stage_seconds_mean, dtype=float)
            + (np.asarray(microbatches, dtype=float) - 1.0) * np.asarray(stage_seconds_max, dtype=float)
            + np.asarray(transfer_seconds, dtype=float))


@lru_cache(maxsize=None)
def speculative_rows() -> dict[str, Constant]:
    """Default acceptance rates and draft lengths per method (``data/serving_speculative.csv``)."""
    return {c.name: c for c in load_typed(Constant, "serving_speculative.csv")}


def stage_share(layers, pipeline_parallel):
    r"""Share of the layers on the busiest of N stages: :math:`\lceil L/N \rceil / L` (1/N when N divides L)."""
    L = np.asarray(layers, dtype=float)
    return np.ceil(L / np.asarray(pipeline_parallel, dtype=float)) / L


def memory_gpus(tensor_parallel, layers, pipeline_parallel):
    """The GPU count whose memory the whole model may use when its busiest stage must fit in ``tensor_parallel``
    GPUs: ``tensor_parallel / stage_share`` (= tp x pp for even stages)."""
    return np.asarray(tensor_parallel, dtype=float) / stage_share(layers, pipeline_parallel)


def _one_layer(arch: Architecture, dense: bool) -> Architecture:
    """A one-layer copy of ``arch`` (the MTP module's transformer block; with ``dense``, EAGLE's decoder layer)."""
    upd: dict[str, Any] = {"layers": 1.0, "dense_layers": 0.0}
    if dense and arch.is_moe:
        ffn = arch.ffn_size or (arch.moe_ffn_size or 0) * (arch.experts_per_token + arch.experts_shared)
        upd.update(experts_routed=0.0, experts_shared=0.0, experts_per_token=0.0, ffn_size=ffn, moe_ffn_size=None)
    return dataclasses.replace(arch, **upd) if dataclasses.is_dataclass(arch) else arch.model_copy(update=upd)


def _draft_inputs(method: str, arch: Architecture, draft: Architecture | None, acc, precision: str,
                  kv_precision: str) -> tuple[dict[str, float], float, float, float]:
    """The roofline's model keywords for one draft pass, the extra weights [params] (and of them, routed experts,
    spread over the EP ranks) and the extra KV cache [bytes/token] the draft holds."""
    if method == "draft":
        hw = hardware_inputs(draft, acc, precision, kv_precision)
        return {k: hw[k] for k in _ARCH_KEYS}, hw["params_total"], 0.0, hw["kv_bytes_per_token"]
    layer = _one_layer(arch, dense=method == "eagle")
    hw = hardware_inputs(layer, acc, precision, kv_precision)
    c = layer.counts()
    d = float(arch.hidden_size)
    # the embedding and output head are shared with the target: a pass reads the layer and the head (not the input
    # embedding table); memory adds the layer and the 2d x d projection (MTP's M_k, EAGLE's fc)
    head = float(arch.vocab_size) * d
    input_embedding = c["embedding"] - head
    out = {k: hw[k] for k in _ARCH_KEYS}
    out["params_total"] = hw["params_total"] - input_embedding + 2 * d * d
    out["params_active"] = hw["params_active"] - input_embedding + 2 * d * d
    extra = hw["params_total"] - c["embedding"] + 2 * d * d
    return out, extra, hw["expert_params"], hw["kv_bytes_per_token"]


@dataclasses.dataclass
class Deployment:
    """Validated pipeline and speculative-decoding choices of one ``serve`` call."""

    pp: int = 1
    speculative: str | None = None
    draft_tokens: int | None = None
    acceptance: float | None = None
    draft_model: str | None = None
    tokens_per_step: float | None = None
    roofline_kw: dict[str, Any] = dataclasses.field(default_factory=dict)
    extra_kv_bytes_per_token: float = 0.0
    memory_factor: float = 1.0  # memory_gpus / tp
    assumptions: list[Assumption] = dataclasses.field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.pp > 1 or self.speculative is not None

    def estimate_fields(self, r: dict[str, Any], decode_tokens_per_second: float, assumptions: list[Assumption],
                        without) -> dict[str, Any]:
        """The :class:`billshape.serving.DeploymentServeEstimate` fields ({} when inactive); ``without()`` is the
        same deployment's estimate without speculation (for ``speculative_speedup``, whose assumption is appended)."""
        if not self.active:
            return {}
        out: dict[str, Any] = dict(pipeline_parallel=self.pp, speculative=self.speculative,
                                   draft_tokens=self.draft_tokens, acceptance=self.acceptance,
                                   draft_model=self.draft_model, tokens_per_step=self.tokens_per_step)
        if self.pp > 1 and "pipeline_bubble" in r:
            out["pipeline_bubble"] = float(r["pipeline_bubble"])
        if self.speculative is not None:
            base = without()
            out["speculative_speedup"] = decode_tokens_per_second / base.decode_tokens_per_second
            assumptions.append(derived("speculative speedup", out["speculative_speedup"], "x decode tokens/s",
                                       "decode tokens/s over the same deployment without speculative decoding "
                                       f"({base.decode_tokens_per_second:,.0f}, its own batch {base.batch})"))
        return out


def speculative_inputs(method: str, arch: Architecture, acc, precision: str, kv_precision: str, draft_tokens,
                       acceptance, draft: Architecture | None = None, dp_attention: bool = False) -> dict[str, Any]:
    """The ``speculative`` argument of :func:`deployment_roofline` (``draft_tokens``, ``acceptance`` may be arrays)."""
    d_kw, extra_params, extra_expert, extra_kv = _draft_inputs(method, arch, draft, acc, precision, kv_precision)
    k = np.asarray(draft_tokens, dtype=float)
    return {"method": method, "draft_tokens": k, "tokens_per_step": inference.speculative_tokens_per_step(acceptance, k),
            "draft": d_kw, "extra_params": extra_params, "extra_expert_params": extra_expert,
            "extra_kv_bytes_per_token": extra_kv,
            "draft_kv_heads": None if draft is None else float(draft.kv_heads),
            "draft_mla": draft is not None and draft.attention == "mla",
            "draft_dp": bool(dp_attention) and method == "draft"}


def check_pp(arch: Architecture, pp) -> int:
    """``pp`` as a whole number of stages from 1 to the model's layers (1 when None)."""
    if pp is None:
        return 1
    v.positive("pp", pp, v.MAX_COUNT)
    if float(pp) != int(pp) or int(pp) > arch.layers:
        raise BillshapeInputError("pp", pp, f"a whole number of pipeline stages from 1 to {arch.name}'s "
                                  f"{arch.layers:g} layers (stages need not divide the layers: the busiest "
                                  "holds ceil(layers / pp))")
    return int(pp)


def deployment(arch: Architecture, acc, precision: str, kv_precision: str, tp: int, *, pp=None, speculative=None,
               draft_tokens=None, acceptance=None, draft_model=None, dp_attention: bool = False,
               internode: tuple[float, float] | None = None) -> Deployment:
    """Validate ``pp``, ``speculative``, ``draft_tokens``, ``acceptance``, ``draft_model`` as :func:`serve` takes
    them (one :class:`BillshapeInputError` naming the field) and build the roofline keywords and assumptions.

    ``internode``: (GPUs per node, inter-node bytes/s per GPU) for the stage-to-stage transfers that cross nodes.
    """
    dep = Deployment()
    if pp is not None:
        dep.pp = check_pp(arch, pp)
        if dep.pp > 1 and dp_attention:
            raise BillshapeInputError("pp", pp, "1 with `dp_attention` (pipeline stages with attention data "
                                      "parallelism are not modelled)")
    if speculative is None:
        for name, value in (("draft_tokens", draft_tokens), ("acceptance", acceptance), ("draft_model", draft_model)):
            if value is not None:
                raise BillshapeInputError(name, value, "omitted unless `speculative` is given (mtp, eagle or draft)")
    else:
        method = str(speculative).strip().lower()
        if method not in SPECULATIVE_METHODS:
            raise unknown_name("speculative", speculative, SPECULATIVE_METHODS)
        if dep.pp > 1:
            raise BillshapeInputError("pp", pp, "1 with `speculative` (pipeline parallelism with speculative "
                                      "decoding is not modelled)")
        rows = speculative_rows()
        if draft_tokens is None:
            if f"{method}_draft_tokens" not in rows:
                raise BillshapeInputError("draft_tokens", None, f"a whole number of draft tokens per step, 1 to "
                                          f"{MAX_DRAFT_TOKENS}, with `speculative` {method} (no catalog default)")
            row = rows[f"{method}_draft_tokens"]
            k = int(row.value)
            dep.assumptions.append(row.as_assumption())
        else:
            v.positive("draft_tokens", draft_tokens, MAX_DRAFT_TOKENS)
            if float(draft_tokens) != int(draft_tokens):
                raise BillshapeInputError("draft_tokens", draft_tokens, f"a whole number from 1 to {MAX_DRAFT_TOKENS}")
            k = int(draft_tokens)
            dep.assumptions.append(user("draft tokens", k, "tokens per step", "draft_tokens"))
        if acceptance is None:
            if f"{method}_acceptance" not in rows:
                raise BillshapeInputError("acceptance", None, f"a per-token acceptance rate in [0, 1) with "
                                          f"`speculative` {method} (no catalog default: measure it on your traffic)")
            row = rows[f"{method}_acceptance"]
            a = float(row.value)
            dep.assumptions.append(row.as_assumption())
        else:
            v.below_one("acceptance", acceptance)
            a = float(acceptance)
            dep.assumptions.append(user("acceptance", a, "per-token acceptance rate", "acceptance"))
        draft = None
        if method == "draft":
            if draft_model is None:
                raise BillshapeInputError("draft_model", None, "a smaller model of the architectures catalog with "
                                          "`speculative` draft (it must share the target's tokenizer)")
            draft = architecture(draft_model)
            if draft.params_active >= arch.params_active:
                raise BillshapeInputError("draft_model", draft_model, f"a model with fewer active parameters than "
                                          f"{arch.name}'s {arch.params_active / 1e9:,.1f}B")
            if not dp_attention and not draft.valid_tensor_parallel(tp):
                raise BillshapeInputError("draft_model", draft_model, f"a draft model whose heads split over `tp` "
                                          f"({tp}) GPUs (it runs tensor-parallel on the target's GPUs)")
            dep.draft_model = draft.name
            dep.assumptions.append(draft.assumption(f"draft model {draft.name}", f"{draft.layers:g} layers, "
                                                    f"d={draft.hidden_size:g}"))
        elif draft_model is not None:
            raise BillshapeInputError("draft_model", draft_model, "omitted unless `speculative` is draft")
        spec = speculative_inputs(method, arch, acc, precision, kv_precision, k, a, draft, dp_attention)
        dep.speculative, dep.draft_tokens, dep.acceptance = method, k, a
        dep.tokens_per_step = float(spec["tokens_per_step"])
        dep.extra_kv_bytes_per_token = float(spec["extra_kv_bytes_per_token"])
        dep.roofline_kw["speculative"] = spec
        what = {"mtp": "K passes of the MTP module (one transformer layer of the target + its output head; "
                       "DeepSeek-V3 arXiv:2412.19437 section 2.2)",
                "eagle": "K passes of a one-layer dense head + the target's output head (EAGLE arXiv:2401.15077)",
                "draft": f"K decode steps of {dep.draft_model} on the same GPUs"}[method]
        dep.assumptions += [
            user("speculative decoding", method, None, "speculative"),
            derived("tokens per step", dep.tokens_per_step, "tokens", "E = (1 - A^(K+1)) / (1 - A): acceptance A per "
                    "position, i.i.d. (Leviathan et al. arXiv:2211.17192)"),
            derived("speculative step", "verify + chunked prefill + draft", None,
                    f"target pass over batch x (K+1) query tokens (weights once; compute, KV reads and communication "
                    f"for K+1 positions) + the chunked prefill of B I E / O prompt tokens + {what}; the draft's "
                    "weights and KV cache share the GPUs' memory"),
        ]
    if dep.pp > 1:
        share = float(stage_share(arch.layers, dep.pp))
        dep.memory_factor = 1.0 / share
        dep.roofline_kw["pipeline_parallel"] = float(dep.pp)
        if internode is not None:
            dep.roofline_kw["pipeline_link"] = {"gpus_per_node": internode[0],
                                                "internode_bytes_per_second": internode[1]}
        busiest = math.ceil(arch.layers / dep.pp)
        dep.assumptions += [
            user("pipeline parallel", dep.pp, "stages", "pp"),
            derived("pipeline stages", f"{dep.pp} x {tp} GPUs, busiest stage {busiest} of {arch.layers:g} layers",
                    None, "weights and KV cache per GPU: the busiest stage's share; M = pp micro-batches in flight "
                    "(one per stage, as vLLM and TensorRT-LLM run them); decode cycle max(N t_stage + transfers + "
                    "t_0, M t_stage) (GPipe arXiv:1811.06965, Megatron-LM arXiv:2104.04473); stage-to-stage "
                    "activations over NVLink within a node, the inter-node fabric across nodes"),
        ]
    return dep


def _scaled(kw: dict[str, Any], share) -> dict[str, Any]:
    out = dict(kw)
    for k in _STAGE_KEYS:
        if k in out and out[k] is not None:
            out[k] = np.asarray(out[k], dtype=float) * share
    return out


def _tail(out, b_pos, i_len, o_len, pre_request, static, extra: dict[str, Any]) -> dict[str, Any]:
    """Cost attribution, as the roofline's: of the replica time a request takes, its prefill share prices input."""
    time_per_request = o_len / out
    prefill_per_request = np.minimum(pre_request, 0.999 * time_per_request)
    extra.update({
        "output_tokens_per_second": out,
        "input_tokens_per_second": i_len / prefill_per_request,
        "decode_tokens_per_second": o_len / (time_per_request - prefill_per_request),
        "requests_per_second": out / o_len,
    })
    return extra


def deployment_roofline(*, pipeline_parallel=1.0, speculative: dict[str, Any] | None = None,
                        pipeline_link: dict[str, float] | None = None, **kw: Any) -> dict[str, Any]:
    """:func:`billshape.serving_roofline.roofline` of a pipelined and/or speculative deployment (vectorised).

    ``pipeline_parallel`` N (number or array; 1 = none); ``speculative`` from :func:`speculative_inputs` (None =
    none); ``pipeline_link`` ``{"gpus_per_node", "internode_bytes_per_second"}`` for stage transfers across nodes
    (default: every stage in one NVLink domain). Returns the roofline's keys (``max_batch`` is the batch the whole
    pipeline holds; ``weight_bytes`` the whole model's, with the draft's), plus ``pipeline_bubble`` (idle share of
    the busiest stage) or ``tokens_per_step``, ``verify_seconds``, ``draft_seconds``.
    """
    n = np.asarray(pipeline_parallel, dtype=float)
    if speculative is None and not np.any(n > 1):
        return roofline(**kw)
    if speculative is not None:
        return _speculative_roofline(speculative, kw)
    return _pipeline_roofline(n, pipeline_link, kw)


def _pipeline_roofline(n, link, kw):
    mode = kw.get("mode", "static")
    static = mode == "static"
    i_len, o_len = np.asarray(kw["input_tokens"], dtype=float), np.asarray(kw["output_tokens"], dtype=float)
    t = np.asarray(kw["tensor_parallel"], dtype=float)
    s_max = stage_share(kw["layers"], n)
    s_avg = 1.0 / n
    kw_max = _scaled(kw, s_max)
    fit = roofline(**kw_max)  # the busiest stage holds all sequences' KV for its layers: the pipeline's batch
    b = np.asarray(fit["batch"], dtype=float)
    b_pos = np.maximum(b, 1.0)
    m = n  # micro-batches in flight: one per stage
    micro = b_pos / m
    zero = {"batch": micro, "step_overhead_seconds": 0.0}
    r_max = roofline(**{**kw_max, **zero})
    r_avg = r_max if np.all(s_avg == s_max) else roofline(**{**_scaled(kw, s_avg), **zero})
    # stage-to-stage transfers: each GPU sends its 1/t of the activations (Megatron scatter/gather)
    d = np.asarray(kw["hidden_size"], dtype=float) * float(kw.get("activation_bytes", 2.0))
    gpn = np.inf if link is None else float(link["gpus_per_node"])
    per_node = np.maximum(np.floor(gpn / t), 1.0) if np.isfinite(gpn) else n
    crossings = np.where(t >= gpn, n - 1.0, np.ceil(n / per_node) - 1.0) if np.isfinite(gpn) else 0.0 * n
    crossings = np.clip(crossings, 0.0, n - 1.0)
    ib = link["internode_bytes_per_second"] if link is not None else kw["link_bytes_per_second"]
    alpha = kw["allreduce_latency_seconds"]

    def transfers(tokens):
        msg = tokens * d / t
        return (pipeline_transfer_seconds(msg, kw["link_bytes_per_second"], alpha, n - 1.0 - crossings)
                + pipeline_transfer_seconds(msg, ib, alpha, crossings))

    step_tokens = micro * (1.0 if static else 1.0 + i_len / o_len)
    cycle = pipeline_decode_cycle_seconds(r_avg["step_seconds"], r_max["step_seconds"], transfers(step_tokens), n, m,
                                          kw["step_overhead_seconds"])
    if static:
        pre = gpipe_fill_seconds(r_avg["prefill_seconds"], r_max["prefill_seconds"], n, m, transfers(micro * i_len))
        total = pre + o_len * cycle
        out, ttft, pre_request = b_pos * o_len / total, pre, pre / b_pos
    else:
        pre = n * r_avg["prefill_seconds"] + transfers(i_len)  # one prompt through the N stages
        out, ttft = b_pos / cycle, pre + cycle
        pre_request = r_max["prefill_seconds"]  # the busiest stage's time on one prompt: the replica's share
    res = {k: r_max[k] for k in ("memory_bound", "step_bytes_per_gpu", "expert_load_imbalance",
                                 "attention_dp_imbalance", "tokens_per_expert", "moe_gemm_factor")}
    res.update({"batch": fit["batch"], "max_batch": fit["max_batch"], "step_seconds": cycle, "ttft_seconds": ttft,
                "prefill_seconds": pre, "weight_bytes": np.asarray(fit["weight_bytes"], dtype=float) / s_max,
                "pipeline_bubble": 1.0 - m * r_max["step_seconds"] / cycle, "stage_seconds": r_max["step_seconds"]})
    return _tail(out, b_pos, i_len, o_len, pre_request, static, res)


def _speculative_roofline(spec, kw):
    mode = kw.get("mode", "static")
    static = mode == "static"
    i_len, o_len = np.asarray(kw["input_tokens"], dtype=float), np.asarray(kw["output_tokens"], dtype=float)
    t = np.asarray(kw["tensor_parallel"], dtype=float)
    k = np.asarray(spec["draft_tokens"], dtype=float)
    e = np.asarray(spec["tokens_per_step"], dtype=float)
    q = k + 1.0
    # memory: the draft's weights and KV cache sit beside the target's
    kw_fit = dict(kw)
    kw_fit["params_total"] = np.asarray(kw["params_total"], dtype=float) + spec["extra_params"]
    kw_fit["expert_params"] = np.asarray(kw["expert_params"], dtype=float) + spec["extra_expert_params"]
    kw_fit["kv_bytes_per_token"] = np.asarray(kw["kv_bytes_per_token"], dtype=float) + spec["extra_kv_bytes_per_token"]
    fit = roofline(**kw_fit)
    b = np.asarray(fit["batch"], dtype=float)
    b_pos = np.maximum(b, 1.0)
    base = roofline(**{**kw, "batch": b_pos})  # prefill as without speculation
    # the verify pass: B (K+1) query tokens; attention kernels read each sequence's cache once for its K+1 queries
    # (FlashMLA, FlashInfer: the queries of one sequence share the KV loads), so the KV bytes per query are 1/(K+1)
    verify = roofline(**{**kw, "batch": b_pos * q, "mode": "static",
                         "kv_bytes_per_token": np.asarray(kw["kv_bytes_per_token"], dtype=float) / q})
    if static:
        chunk = 0.0
    else:  # the chunked prefill a step carries: B I E / O prompt tokens (the roofline's marginal cost at batch B)
        kw_e = {**kw, "batch": b_pos, "output_tokens": o_len / e}
        chunk = (roofline(**{**kw_e, "mode": "max-load"})["step_seconds"]
                 - roofline(**{**kw_e, "mode": "static"})["step_seconds"])
    d_kw = {**kw, **spec["draft"], "mode": "static", "step_overhead_seconds": 0.0}
    if spec["method"] != "mtp":  # a dense head or a separate small model: no experts, own KV layout
        d_kw["expert_parallel"] = 1.0
        d_kw.pop("redundant_experts", None)
    if spec["method"] == "draft":
        if spec["draft_dp"]:  # attention-DP target: each GPU runs the draft model on its own sequences
            d_kw.update(tensor_parallel=1.0, attention_dp=False, kv_replication=1.0)
            d_batch = b_pos / t
        else:
            rep = t if spec["draft_mla"] else np.maximum(1.0, t / spec["draft_kv_heads"])
            d_kw["kv_replication"] = rep
            d_batch = b_pos
        d_kw.pop("gpus_per_node", None)
        d_kw.pop("internode_bytes_per_second", None)
    else:
        d_batch = b_pos
    draft = k * roofline(**{**d_kw, "batch": d_batch})["step_seconds"]
    step = verify["step_seconds"] + chunk + draft
    if static:
        pre = base["prefill_seconds"]
        total = pre + o_len / e * step
        out, ttft, pre_request = b_pos * o_len / total, pre, pre / b_pos
    else:
        dp_attn = bool(kw.get("attention_dp")) and (np.any(np.asarray(kw.get("expert_parallel", 1.0)) > 1)
                                                   or np.any(t > 1))
        pre = base["prefill_seconds"]
        out, ttft = b_pos * e / step, pre + step
        pre_request = pre / t if dp_attn else pre
    res = {key: verify[key] for key in ("memory_bound", "step_bytes_per_gpu", "tokens_per_expert", "moe_gemm_factor")}
    res.update({key: base[key] for key in ("expert_load_imbalance", "attention_dp_imbalance")})
    res.update({"batch": fit["batch"], "max_batch": fit["max_batch"], "step_seconds": step / e, "ttft_seconds": ttft,
                "prefill_seconds": pre, "weight_bytes": fit["weight_bytes"], "tokens_per_step": e,
                "verify_seconds": verify["step_seconds"], "draft_seconds": draft, "chunk_seconds": chunk})
    return _tail(out, b_pos, i_len, o_len, pre_request, static, res)
