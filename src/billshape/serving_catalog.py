"""The serving model's catalogs: model architectures (``data/architectures.csv``), bytes per value and the
fitted efficiencies (``data/serving_efficiency.csv``). Re-exported by :mod:`billshape.serving`."""

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
    #: hybrid attention (config.json ``sliding_window``/``layer_types`` or ``attention_chunk_size``): windowed layers
    #: attend to (and cache) at most ``sliding_window_tokens``; ``sliding_window_kind`` ``sliding`` or ``chunked``
    sliding_window_tokens: float | None = None
    sliding_window_layers: float = 0
    sliding_window_kind: str = ""

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

    @property
    def has_window(self) -> bool:
        """Whether some layers use sliding-window or chunked local attention."""
        return bool(self.sliding_window_layers) and bool(self.sliding_window_tokens)

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
                                           "experts_per_token", "tied_embeddings", "qkv_bias", "sliding_window_layers"}
    out = []
    for r in read_rows("architectures.csv"):
        r = {k: (("0" if k in ("dense_layers", "experts_routed", "experts_shared", "experts_per_token",
                                "tied_embeddings", "qkv_bias", "sliding_window_layers") else val) if val == "" and k in num else val)
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



# --------------------------------------------------------------------------------------------------------------
# Engine profiles (engine x architecture class x GPU generation; data/serving_engine_profiles.csv)
# --------------------------------------------------------------------------------------------------------------

#: serving engines with a profile (the first is the default)
ENGINES = ("trtllm", "vllm", "sglang")
ARCH_CLASSES = ("dense", "moe", "mla")
GENERATIONS = ("hopper", "blackwell", "ampere", "cdna3", "cdna4")
#: a generation without profile rows of its own and the generation whose rows it takes (flagged extrapolated)
GENERATION_FALLBACK = {"cdna4": "cdna3"}
#: the profile parameters passed to the roofline (beyond EFFICIENCY_NAMES)
MOE_EFFICIENCY_NAMES = ("moe_gemm_efficiency", "moe_gemm_half_tokens", "alltoall_efficiency",
                        "moe_weight_read_efficiency")
#: catalog name prefixes of each GPU generation (newer parts added to the accelerator catalog map by prefix)
_GENERATION_PREFIXES = (("a100", "ampere"), ("a800", "ampere"), ("a10", "ampere"), ("h100", "hopper"),
                        ("h800", "hopper"), ("h200", "hopper"), ("h20", "hopper"), ("gh200", "hopper"),
                        ("b200", "blackwell"), ("b300", "blackwell"), ("gb200", "blackwell"), ("gb300", "blackwell"),
                        ("rtx-pro-6000", "blackwell"), ("mi300", "cdna3"), ("mi325", "cdna3"), ("mi355", "cdna4"), ("mi350", "cdna4"),
                        ("l4", "ada"), ("l40", "ada"), ("tpu", "tpu"))


class ProfileRow(Row):
    """One parameter of one engine profile."""

    engine: str
    arch_class: str
    generation: str
    name: str
    value: float
    unit: str = ""
    fitted_on: str = ""
    version_range: str = ""
    note: str = ""

    def as_assumption(self) -> Assumption:
        return Assumption(name=f"{self.name} ({self.engine}, {self.arch_class}, {self.generation})", value=self.value,
                          unit=self.unit or None, source=f"{self.source}; fitted on: {self.fitted_on}; engine "
                          f"versions {self.version_range}", as_of=self.as_of)


def engines() -> tuple[str, ...]:
    """Engine names with a profile (``trtllm`` is the default)."""
    return ENGINES


def arch_class(arch: Architecture | str) -> str:
    """``"mla"`` (multi-head latent attention, e.g. DeepSeek-V3), ``"moe"`` (other mixture-of-experts) or
    ``"dense"``."""
    a = architecture(arch) if isinstance(arch, str) else arch
    if a.attention == "mla":
        return "mla"
    return "moe" if a.is_moe else "dense"


def gpu_generation(gpu_name: str) -> str:
    """The GPU generation of a catalogued accelerator (``hopper``, ``blackwell``, ``ampere``, ``cdna3``, ``cdna4``
    (MI350X/MI355X, AMD CDNA 4 architecture); ``ada`` or ``tpu`` for parts without engine profiles)."""
    name = catalog.gpu(gpu_name).name.lower()
    for prefix, gen in _GENERATION_PREFIXES:
        if name.startswith(prefix):
            return gen
    return "unknown"


def _engine_key(engine: str, field: str = "engine") -> str:
    key = str(engine).strip().lower().replace("-", "").replace("_", "").replace("tensorrtllm", "trtllm")
    if key not in ENGINES:
        raise unknown_name(field, engine, ENGINES)
    return key


@lru_cache(maxsize=None)
def engine_profile_rows() -> tuple[ProfileRow, ...]:
    """Every row of ``data/serving_engine_profiles.csv``."""
    return load_typed(ProfileRow, "serving_engine_profiles.csv")


class Profile(Row):
    """The resolved profile of an engine on an architecture class and GPU generation."""

    engine: str
    arch_class: str
    generation: str
    exact: bool
    resolved: str
    params: dict[str, float]
    rows: dict[str, ProfileRow]

    @property
    def efficiency(self) -> dict[str, float]:
        """The roofline's efficiency keywords (a profile without a ``moe_weight_read_efficiency`` row reads the
        experts at the grouped-GEMM factor, the roofline's default)."""
        return {n: self.params[n] for n in (*EFFICIENCY_NAMES, *MOE_EFFICIENCY_NAMES) if n in self.params}


def engine_profile(engine: str = "trtllm", arch_class: str | None = None, generation: str | None = None) -> Profile:
    """The profile of ``engine`` on ``arch_class`` (default ``dense``) and ``generation`` (default ``hopper``).

    Look-up: the exact row set; else, for a generation without rows (``cdna4``), the same engine and class on its
    predecessor (``GENERATION_FALLBACK``: CDNA3's numbers); else the same engine and class on Hopper; else the same
    engine's dense Hopper profile. ``exact`` says whether the combination was catalogued (not: extrapolated).
    """
    eng = _engine_key(engine)
    cls = "dense" if arch_class is None else str(arch_class).strip().lower()
    if cls not in ARCH_CLASSES:
        raise unknown_name("arch_class", arch_class, ARCH_CLASSES)
    gen = "hopper" if generation is None else str(generation).strip().lower()
    by: dict[tuple[str, str, str], dict[str, ProfileRow]] = {}
    for r in engine_profile_rows():
        by.setdefault((r.engine, r.arch_class, r.generation), {})[r.name] = r
    prev = tuple((eng, c, GENERATION_FALLBACK[gen]) for c in (cls, "moe" if cls == "mla" else cls)
                 if gen in GENERATION_FALLBACK)
    for key in ((eng, cls, gen), *prev, (eng, cls, "hopper"), (eng, "moe" if cls == "mla" else cls, "hopper"),
                (eng, "dense", "hopper")):
        if key in by:
            rows = by[key]
            any_row = next(iter(rows.values()))
            return Profile(engine=eng, arch_class=cls, generation=gen, exact=key == (eng, cls, gen),
                           resolved="/".join(key), params={n: r.value for n, r in rows.items()}, rows=rows,
                           source=any_row.source, as_of=any_row.as_of)
    raise unknown_name("engine", engine, sorted({k[0] for k in by}))  # pragma: no cover - the catalog covers ENGINES


class AttentionKernel(Row):
    """The precision an engine's attention kernels compute in, for an architecture class and KV-cache precision
    (``data/serving_attention_kernels.csv``)."""

    engine: str
    arch_class: str
    kv_precision: str
    attention_precision: str
    note: str = ""


@lru_cache(maxsize=None)
def attention_kernels() -> tuple[AttentionKernel, ...]:
    """Every row of ``data/serving_attention_kernels.csv``."""
    return load_typed(AttentionKernel, "serving_attention_kernels.csv")


def attention_kernel(engine: str, arch_class: str, kv_precision: str) -> AttentionKernel | None:
    """The attention-kernel row of an engine x class at a KV-cache precision (``fp16`` reads ``bf16``); None when
    no source was found (the roofline then times attention at the weights' compute precision, as before)."""
    kv = "bf16" if str(kv_precision).lower() == "fp16" else str(kv_precision).lower()
    for r in attention_kernels():
        if (r.engine, r.arch_class, r.kv_precision) == (_engine_key(engine), str(arch_class), kv):
            return r
    return None


class AttentionEfficiencyPoint(Row):
    """One published attention-kernel speed: ``tflops`` at ``seq_len`` (``data/serving_attention_efficiency.csv``)."""

    kernel: str
    gpu: str
    head_dim: float
    causal: float
    seq_len: float
    tflops: float
    note: str = ""


@lru_cache(maxsize=None)
def attention_efficiency_points() -> tuple[AttentionEfficiencyPoint, ...]:
    """Every row of ``data/serving_attention_efficiency.csv``, by sequence length."""
    return tuple(sorted(load_typed(AttentionEfficiencyPoint, "serving_attention_efficiency.csv"), key=lambda r: r.seq_len))


def attention_efficiency_at(seq_len_tokens):
    r"""The attention kernels' fraction of the dense 16-bit peak at a prompt of ``seq_len_tokens`` [fraction]:
    FlashAttention-3's causal forward (head dim 128, H100 SXM; Shah et al. 2024, arXiv 2407.08608 Fig. 5d) over its
    GPU's datasheet BF16 peak, interpolated linearly in :math:`\log L` between the published lengths and held at
    the ends (512 and 16,384 tokens). Vectorised over ``seq_len_tokens``.

    Parameters
    ----------
    seq_len_tokens : numeric
        Prompt tokens computed per request :math:`L` [tokens].

    Returns
    -------
    numeric
        :math:`\eta_a(L)` [fraction of the dense BF16 peak].
    """
    import numpy as np

    from billshape import catalog

    pts = attention_efficiency_points()
    peak = catalog.gpu(pts[0].gpu).peak_flops_per_second("bf16")
    x = np.log([p.seq_len for p in pts])
    y = np.array([p.tflops * 1e12 / peak for p in pts])
    out = np.interp(np.log(np.maximum(np.asarray(seq_len_tokens, dtype=float), 1.0)), x, y)
    return float(out) if np.ndim(out) == 0 else out


#: ``expert_routing`` values (:func:`routing_skew`)
EXPERT_ROUTINGS = ("measured", "balanced")


def routing_skew(eff_rows: dict, redundant_experts: float, expert_routing: str | None):
    r"""The expert-load skew :math:`c` (``expert_load_cv``, the spread of tokens per routed expert beyond sampling
    noise) of a deployment, and its assumption.

    ``measured`` (or None): the catalog's measured skew, ``expert_load_cv`` (DeepSeek-R1's router on a real
    dataset, no EPLB), or with ``redundant_experts`` what EPLB leaves of it, ``eplb_expert_load_cv``. ``balanced``:
    :math:`c = 0`, so the rank loads differ only by the sampling noise of their tokens
    (:func:`billshape.inference.moe_rank_imbalance`: :math:`CV^2 = c^2 / (\text{experts per rank}) + 1 /
    (\text{tokens per rank})`), as in benchmarks that simulate routing: DeepSeek's released profiles ("we
    simulate an absolutely balanced MoE routing strategy for profiling", deepseek-ai/profile-data README) and
    SGLang's "simulated perfect EPLB" (random expert selection, LMSYS 2025-05-05).
    """
    from billshape.errors import BillshapeInputError
    from billshape.results import user

    if expert_routing is None or expert_routing == "measured":
        row = eff_rows["eplb_expert_load_cv" if redundant_experts else "expert_load_cv"]
        return row.value, row.as_assumption()
    if expert_routing != "balanced":
        raise BillshapeInputError("expert_routing", expert_routing, "measured or balanced")
    return 0.0, user("expert routing", "balanced: no skew beyond the sampling noise of the tokens per rank "
                     "(expert_load_cv 0)", None, "expert_routing")


#: the profile switches of the kernel terms (a row of 1 turns the term on; no row: off, the model before them):
#: attention timed at the attention kernels' 16-bit peak; the grouped-GEMM factor and expert loads at the
#: micro-batch's tokens under two-batch overlap
KERNEL_SWITCH_NAMES = ("attention_at_kernel_precision", "overlap_micro_batch_tokens")


#: the burst scheduler's profile parameters: tokens per step and whether prefill chunks ride in decode steps
SCHEDULER_NAMES = ("max_num_batched_tokens", "mixed_prefill")


def burst_scheduler(profile: Profile) -> tuple[float | None, bool]:
    """An engine profile's chunked-prefill scheduler: the token budget per step (None where the profile has no
    row: the prefill then counts in full) and whether chunks ride in decode steps (:mod:`billshape.serving_lengths`)."""
    budget = profile.params.get("max_num_batched_tokens")
    return (None if budget is None else float(budget)), bool(profile.params.get("mixed_prefill", 1.0))


def default_efficiency(engine: str | None = None, arch_class: str | None = None,
                       generation: str | None = None) -> dict[str, float]:
    """The fitted efficiency parameters as a plain dict.

    With no arguments: ``EFFICIENCY_NAMES`` from ``data/serving_efficiency.csv`` (the TensorRT-LLM dense Hopper
    fit). With ``engine`` (``trtllm``, ``vllm``, ``sglang``), ``arch_class`` (``dense``, ``moe``, ``mla``) and
    ``generation`` (``hopper``, ``blackwell``, ``ampere``, ``cdna3``): that engine profile's roofline
    efficiencies, also ``MOE_EFFICIENCY_NAMES`` (see :func:`engine_profile`).
    """
    if engine is None and arch_class is None and generation is None:
        return {n: _eff(n).value for n in EFFICIENCY_NAMES}
    return engine_profile(engine or "trtllm", arch_class, generation).efficiency
