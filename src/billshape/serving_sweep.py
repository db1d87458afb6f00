r"""Serving sweeps: :func:`billshape.serving.serve` over arrays of deployments, with its validation, in one pass.

:func:`sweep` takes one model and accelerator and arrays (broadcast together) of GPUs, tensor-parallel sizes,
request lengths, batch sizes, expert-parallel sizes, redundant experts and engines; :func:`sweep_grid` takes lists (models, GPUs and precisions
too) and sweeps their Cartesian product. Each configuration gets the same numbers ``serve`` gives it (output
tokens/s, TTFT, TPOT, $/M tokens) or, where ``serve`` would refuse it, ``valid = False`` with the field ``serve``
names (``field``) and the reason (``reason``): not in memory, ``tp`` does not divide the attention heads, a batch
larger than fits, a request longer than the context window, ... ``tests/test_serving_sweep.py`` draws random
configurations and compares each one with ``serve`` to 1e-9 relative.

How: the checks of ``serve`` become boolean masks in ``serve``'s order (the first failing check names the row);
the rows then go through :func:`billshape.serving_roofline.roofline` in one or two vectorised calls per group of
the switches the roofline takes as scalars (engine profile, batching mode, expert parallelism, attention-DP, an EP
group wider than a node), with placeholder values on the invalid rows (their outputs are NaN). Scalar arguments (``precision``, ``reasoning_multiplier``, the price) are
checked once and raise :class:`~billshape.errors.BillshapeInputError` as ``serve`` does.

References
----------
.. [1] Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102 (the roofline).
.. [2] billshape seed 003, section 37.2 (cost per token = $/h / (tokens/h x utilization)).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np

from billshape import _validate as v
from billshape import catalog, inference
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Assumption, derived, user
from billshape.serving_catalog import (MODES, WEIGHT_PRECISIONS, COMPUTE_PRECISION, EFFICIENCY_NAMES,
                                       MOE_EFFICIENCY_NAMES, _engine_key,
                                       arch_class, architecture, efficiencies, engine_profile, gpu_generation)
from billshape.serving_lengths import ARRIVALS, burst, length_distribution
from billshape.serving_pipeline import (MAX_DRAFT_TOKENS, SPECULATIVE_METHODS, deployment_roofline, memory_gpus,
                                        speculative_inputs, speculative_rows)
from billshape.serving_roofline import _RACK_SCALE, attention_inputs, hardware_inputs, internode_rows, roofline
from billshape.serving_roofline import held_kv_bytes_per_token
from billshape.serving_catalog import burst_scheduler

#: the outputs of a sweep (arrays, NaN where ``valid`` is False)
OUTPUTS = ("output_tokens_per_second", "input_tokens_per_second", "decode_tokens_per_second", "ttft_seconds",
           "tpot_seconds", "batch", "max_batch", "replicas", "memory_bound", "usd_per_hour",
           "usd_per_million_output_tokens", "usd_per_million_input_tokens", "usd_per_request", "makespan_seconds",
           "tokens_per_step", "speculative_speedup", "pipeline_bubble")
#: the configuration columns of a sweep
CONFIG = ("model", "gpu", "precision", "kv_precision", "gpus", "tp", "ep", "input_tokens", "output_tokens",
          "requested_batch", "mode", "engine", "redundant_experts", "requests", "pp", "draft_tokens", "acceptance")


@dataclasses.dataclass
class Sweep:
    """Serving estimates for many configurations: one numpy array per column, all of one length.

    Configuration columns (``CONFIG``): ``model``, ``gpu``, ``precision``, ``kv_precision`` (str arrays), ``gpus``,
    ``tp``, ``ep``, ``input_tokens``, ``output_tokens``, ``requested_batch`` (NaN = the largest that fits),
    ``mode``, ``engine`` (str), ``redundant_experts``. Outputs (``OUTPUTS``, NaN where ``valid`` is False): as :class:`billshape.serving.ServeEstimate`'s
    fields of the same names [tokens/s, s, USD]; ``batch`` is the batch used. ``valid`` (bool), ``field`` (the
    field ``serve`` would name in its error, ``""`` when valid) and ``reason`` (why not). ``assumptions``: the
    catalog rows and inputs every configuration shares.
    """

    columns: dict[str, np.ndarray]
    assumptions: list[Assumption]

    def __len__(self) -> int:
        return len(self.columns["valid"])

    def __getattr__(self, name: str) -> np.ndarray:
        cols = self.__dict__.get("columns", {})
        if name in cols:
            return cols[name]
        raise AttributeError(name)

    def to_pandas(self):
        """A DataFrame, one row per configuration (assumptions in ``.attrs['assumptions']``)."""
        from billshape._extras import require

        pd = require("pandas", "pandas", "Sweep.to_pandas()")
        frame = pd.DataFrame(self.columns)
        frame.attrs["assumptions"] = [a.model_dump() for a in self.assumptions]
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: lists per column (NaN as ``None``) and the assumptions."""
        out: dict[str, Any] = {}
        for k, col in self.columns.items():
            if col.dtype.kind == "f":
                out[k] = [None if not math.isfinite(x) else float(x) for x in col.tolist()]
            else:
                out[k] = col.tolist()
        out["assumptions"] = [a.model_dump(mode="json") for a in self.assumptions]
        return out


def _array(value: Any, name: str) -> np.ndarray:
    """A float array; ``None`` (or ``"max"`` for ``batch``) entries become NaN, meaning "the default"."""
    if value is None:
        return np.array(np.nan)
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        pass
    arr = np.asarray(value, dtype=object)
    out = np.empty(arr.size, dtype=float)
    for i, x in enumerate(arr.ravel()):
        if x is None or (isinstance(x, str) and x.strip().lower() == "max"):
            out[i] = np.nan
            continue
        try:
            out[i] = float(x)
        except (TypeError, ValueError):
            raise BillshapeInputError(name, x, "numbers" + (" or 'max'" if name == "batch" else "")) from None
    return out.reshape(arr.shape)


def sweep(*, model: str, gpu: str, gpus: Any = None, tp: Any = None, precision: str | None = "bf16",
          kv_precision: str | None = None, input_tokens: Any = None, output_tokens: Any = None, batch: Any = None,
          mode: str | None = None, ep: Any = None, dp_attention: bool = False, reasoning_multiplier: float = 1.0,
          cache_hit_rate: float = 0.0, price: float | None = None, provider: str | None = None,
          tier: str | None = None, utilization: float | None = None,
          efficiency: dict[str, float] | None = None, engine: Any = None, redundant_experts: Any = None,
          lengths: str | None = None, requests: Any = None, arrival: str | None = None,
          prefill_gpus: Any = None, decode_gpus: Any = None,
          pp: Any = None, speculative: str | None = None, draft_tokens: Any = None, acceptance: Any = None,
          draft_model: str | None = None) -> Sweep:
    """:func:`billshape.serving.serve` for every configuration of the broadcast arrays ``gpus``, ``tp``,
    ``input_tokens``, ``output_tokens``, ``batch``, ``ep``, ``redundant_experts`` and ``engine``.

    Parameters
    ----------
    model, gpu : str
        Catalog names (one of each; :func:`sweep_grid` takes lists).
    gpus : array_like, optional
        GPUs of the deployment [count]; default the catalog's ``default_gpus``.
    tp : array_like, optional
        Tensor-parallel GPUs per replica [count]; ``None`` or NaN entries: ``gpus`` (one replica).
    input_tokens, output_tokens : array_like, optional
        Tokens per request; default the catalog's defaults.
    batch : array_like, optional
        Batch per replica; ``None``, NaN or ``"max"`` entries: the largest that fits (max-load).
    mode : {"static", "max-load"}, optional
        As ``serve``: a numeric batch is static unless ``mode="max-load"``.
    ep : array_like, optional
        Expert-parallel GPUs per replica (a divisor of ``tp`` and of the routed experts plus the redundant ones;
        MoE only); default 1.
    redundant_experts : array_like, optional
        Extra expert slots per MoE layer (EPLB; needs ``ep`` > 1); default 0.
    lengths, arrival : str, optional
        As ``serve`` (one value for the whole sweep): a length distribution (``sharegpt`` or a CSV path; then
        ``input_tokens``/``output_tokens`` rescale its means) and ``steady`` or ``burst``.
    requests : array_like, optional
        Requests queued at t = 0 with ``arrival="burst"`` [count]; burst rows run through
        :func:`billshape.serving_lengths.burst` one by one (the steady rows stay vectorised).
    engine : str or array_like of str, optional
        ``trtllm`` (default, also for ``None`` entries), ``vllm`` or ``sglang``: each configuration runs on its
        engine's profile for the model's architecture class and the GPU's generation, as in ``serve``.
    dp_attention, reasoning_multiplier, cache_hit_rate, precision, kv_precision, efficiency
        As ``serve`` (one value for the whole sweep).
    price, provider, tier, utilization
        As ``serve``: with ``price`` [USD/GPU-hour] or ``provider`` the cost columns are filled, else NaN.

    pp : array_like, optional
        Pipeline-parallel stages per replica (``gpus`` = tp x pp x replicas); default 1.
    speculative, draft_model : str, optional
        As ``serve`` (one value for the whole sweep).
    draft_tokens, acceptance : array_like, optional
        As ``serve``, per configuration (None/NaN entries: the method's catalog default where there is one).

    Returns
    -------
    Sweep
        One entry per broadcast configuration (flattened, C order).

    Raises
    ------
    BillshapeInputError
        For a bad scalar argument (unknown model, GPU, engine or precision; ``reasoning_multiplier`` < 1; a bad
        price):
        the same error ``serve`` raises. Bad array entries are rows with ``valid`` False instead.
        ``prefill_gpus``/``decode_gpus`` (a disaggregated deployment) are refused: call ``serve`` for one.
    """
    from billshape.estimates import rental_price

    for name, value in (("prefill_gpus", prefill_gpus), ("decode_gpus", decode_gpus)):
        if value is not None:
            raise BillshapeInputError(name, value, "omitted in a sweep (disaggregated deployments are not swept: "
                                      "call `serve` with `prefill_gpus` and `decode_gpus`)")

    arch, acc = architecture(model), catalog.gpu(gpu)
    eff_rows = efficiencies()
    # ---- scalar checks, as serve makes them ----
    v.positive("reasoning_multiplier", reasoning_multiplier, v.MAX_COUNT)
    if reasoning_multiplier < 1:
        raise BillshapeInputError("reasoning_multiplier", reasoning_multiplier, ">= 1 (output tokens x multiplier)")
    if utilization is not None:
        v.fraction("utilization", utilization)
    precision = "bf16" if precision is None else str(precision).strip().lower()
    if precision not in WEIGHT_PRECISIONS:
        raise unknown_name("precision", precision, WEIGHT_PRECISIONS)
    kv_precision = precision if kv_precision is None else str(kv_precision).strip().lower()
    v.below_one("cache_hit_rate", cache_hit_rate)
    if mode is not None and mode not in MODES:
        raise unknown_name("mode", mode, MODES)
    arrival = "steady" if arrival is None else str(arrival).strip().lower()
    if arrival not in ARRIVALS:
        raise unknown_name("arrival", arrival, ARRIVALS)
    hw = hardware_inputs(arch, acc, precision, kv_precision)  # raises for an unknown kv_precision or FP8 on an A100
    spec_rows = speculative_rows()
    method = None if speculative is None else str(speculative).strip().lower()
    if method is not None and method not in SPECULATIVE_METHODS:
        raise unknown_name("speculative", speculative, SPECULATIVE_METHODS)
    draft_arch = None
    if method is not None and draft_model is not None and method == "draft":
        draft_arch = architecture(draft_model)
    pricing = price is not None or provider is not None
    if pricing:
        rate, price_assumption = rental_price(acc.name, price, provider, tier)
    frac = eff_rows["kv_memory_fraction"].value
    rm, chr_ = float(reasoning_multiplier), float(cache_hit_rate)
    # engines: a name or an array of names (None entries: trtllm); each maps to serve's profile
    eng_in = np.asarray("trtllm" if engine is None else engine, dtype=object)
    eng_in = np.where(np.vectorize(lambda x: x is None, otypes=[bool])(eng_in), "trtllm", eng_in)
    keys = {str(x): _engine_key(x) for x in np.unique(eng_in.astype(str))}
    eng_in = np.vectorize(lambda x: keys[str(x)], otypes=[object])(eng_in)
    cls, gen = arch_class(arch), gpu_generation(acc.name)
    profiles = {k: engine_profile(k, cls, gen) for k in sorted(set(keys.values()))}

    # ---- arrays, broadcast ----
    g_in = _array(int(eff_rows["default_gpus"].value) if gpus is None else gpus, "gpus")
    i_in = _array(eff_rows["default_input_tokens"].value if input_tokens is None else input_tokens, "input_tokens")
    o_in = _array(eff_rows["default_output_tokens"].value if output_tokens is None else output_tokens, "output_tokens")
    g, t_raw, i_len, o_len, b_raw, e_raw, r_raw, eng, q_raw, p_raw, k_raw, a_raw = (
        np.ravel(a).copy() for a in np.broadcast_arrays(
            g_in, _array(tp, "tp"), i_in, o_in, _array(batch, "batch"), _array(1 if ep is None else ep, "ep"),
            _array(0 if redundant_experts is None else redundant_experts, "redundant_experts"), eng_in,
            _array(requests, "requests"), _array(pp, "pp"), _array(draft_tokens, "draft_tokens"),
            _array(acceptance, "acceptance")))
    i_in_row, o_in_row = i_len.copy(), o_len.copy()  # the lengths as given (before defaults and distributions)
    # None (NaN) entries take serve's defaults
    g = np.where(np.isnan(g), float(int(eff_rows["default_gpus"].value)), g)
    i_len = np.where(np.isnan(i_len), float(eff_rows["default_input_tokens"].value), i_len)
    o_len = np.where(np.isnan(o_len), float(eff_rows["default_output_tokens"].value), o_len)
    e_raw = np.where(np.isnan(e_raw), 1.0, e_raw)
    r_raw = np.where(np.isnan(r_raw), 0.0, r_raw)
    eng = eng.astype(object)
    n = g.size
    field = np.full(n, "", dtype=object)
    reason = np.full(n, "", dtype=object)

    def fail(mask, name, why):
        new = mask & (field == "")
        field[new] = name[new] if isinstance(name, np.ndarray) else name
        reason[new] = why

    def in_range(x, maximum, low_ok=False):
        with np.errstate(invalid="ignore"):
            return np.isfinite(x) & ((x >= 0) if low_ok else (x > 0)) & (x <= maximum)

    def whole(x):
        return np.floor(np.where(np.isfinite(x), x, 0.0)) == x

    # traffic, as serve's _traffic: requests only with a burst, a burst needs requests and batch max
    q_given = ~np.isnan(q_raw)
    fail(q_given & ~(in_range(q_raw, v.MAX_COUNT) & whole(q_raw)), "requests", "requests not a whole number > 0")
    fail(q_given & (arrival != "burst"), "requests", "requests without arrival burst")
    fail(q_given & (q_raw > 1_000_000), "requests", "more than 1,000,000 requests in a burst")
    if arrival == "burst":
        fail(~q_given, "requests", "a burst needs requests")
        fail(~np.isnan(b_raw), "batch", "a burst runs at batch max")
    longest = np.zeros(n)
    dists: dict[int, Any] = {}
    if lengths is not None:  # per row: the distribution's means (rescaled to the row's lengths when given)
        user_i = None if input_tokens is None else i_len.copy()
        user_o = None if output_tokens is None else o_len.copy()
        fail((user_i is not None) & ~in_range(i_len, v.MAX_TOKENS), "input_tokens", "input_tokens not in (0, 1e8]")
        fail((user_o is not None) & ~in_range(o_len, v.MAX_TOKENS), "output_tokens", "output_tokens not in (0, 1e8]")
        cache: dict[tuple, Any] = {}
        for j in np.nonzero(field == "")[0]:
            key = (None if not q_given[j] else int(q_raw[j]), None if user_i is None else float(user_i[j]),
                   None if user_o is None else float(user_o[j]))
            if key not in cache:
                cache[key] = length_distribution(lengths, key[1], key[2], key[0])
            d = cache[key]
            dists[int(j)] = d
            i_len[j], o_len[j] = float(d.input_tokens.mean()), float(d.output_tokens.mean())
            longest[j] = float(np.max(d.input_tokens + d.output_tokens * rm))
    fail(~in_range(i_len, v.MAX_TOKENS), "input_tokens", f"input_tokens not in (0, {v.MAX_TOKENS:g}]")
    fail(~in_range(o_len, v.MAX_TOKENS), "output_tokens", f"output_tokens not in (0, {v.MAX_TOKENS:g}]")
    if arch.max_context_tokens is not None:
        with np.errstate(invalid="ignore"):
            fail(np.maximum(i_len + o_len * rm, longest) > arch.max_context_tokens, "input_tokens/output_tokens",
                 f"longer than {arch.name}'s context window ({arch.max_context_tokens:,.0f} tokens)")
    fail(~in_range(g, v.MAX_COUNT) | (np.floor(g) != g), "gpus", "gpus not a whole number in (0, 1e12]")
    p_given = ~np.isnan(p_raw)
    fail(p_given & ~(in_range(p_raw, v.MAX_COUNT) & whole(p_raw)), "pp", "pp not a whole number > 0")
    fail(p_given & (p_raw > arch.layers), "pp", f"more pipeline stages than {arch.name}'s {arch.layers:g} layers")
    n_pp = np.where(p_given & (field == ""), p_raw, 1.0)
    tp_given = np.isfinite(t_raw) | np.isinf(t_raw)
    fail(~tp_given & (field == "") & (np.fmod(np.where(field == "", g, 1.0), n_pp) != 0), "pp",
         "pp not a whole divisor of gpus")
    n_pp = np.where(field == "", n_pp, 1.0)
    t = np.where(tp_given, t_raw, np.floor_divide(g, n_pp))
    ok_g = field == ""
    g_safe = np.where(ok_g, g, 1.0)
    t_whole = in_range(t, v.MAX_COUNT) & whole(t)
    t_safe = np.where(t_whole, t, 1.0)
    divides = t_whole & (np.fmod(g_safe, t_safe * n_pp) == 0)
    fail(tp_given & ~(t_whole & divides), "tp", "tp not a whole divisor of gpus")
    heads, kv = int(arch.heads), int(arch.kv_heads)
    ti = t_safe.astype(np.int64)
    if dp_attention and not arch.is_moe:
        fail(t > 1, "dp_attention", f"attention data parallelism with tp > 1 on a dense model ({arch.name})")
    if not dp_attention:  # attention-DP (MoE) holds whole heads per GPU: any tp
        valid_tp = t_whole & (heads % ti == 0) & ((kv % ti == 0) | (ti % kv == 0))
        fail(~valid_tp, np.where(tp_given, "tp", "gpus"), f"tp does not divide {arch.name}'s {arch.heads:g} attention "
             f"heads or split/replicate its {arch.kv_heads:g} KV heads")
    e_whole = in_range(e_raw, v.MAX_COUNT) & whole(e_raw)
    e_safe = np.where(e_whole, e_raw, 1.0)
    fail(~e_whole | (np.fmod(t_safe, e_safe) != 0), "ep", "ep not a whole divisor of tp")
    if not arch.is_moe:
        fail(e_raw > 1, "ep", f"ep > 1 on a dense model ({arch.name})")
    fail(~(in_range(r_raw, v.MAX_COUNT, low_ok=True) & whole(r_raw)), "redundant_experts",
         "redundant_experts not a whole number >= 0")
    if not arch.is_moe:
        fail(r_raw > 0, "redundant_experts", f"redundant experts on a dense model ({arch.name})")
    fail((r_raw > 0) & (e_raw == 1), "redundant_experts", "redundant experts without ep > 1")
    if arch.is_moe:
        r_safe = np.where(field == "", r_raw, 0.0)
        fail((e_safe > 1) & (np.fmod(arch.experts_routed + r_safe, e_safe) != 0), "ep",
             f"ep does not divide {arch.name}'s {arch.experts_routed:g} routed experts plus the redundant ones")
    is_max = np.isnan(b_raw)
    b_ok = is_max | (np.isfinite(b_raw) & (b_raw >= 1) & whole(b_raw))
    fail(~b_ok, "batch", "batch not a positive integer or max")
    if mode is not None and mode != "max-load":
        fail(is_max, "mode", "batch max needs max-load mode")
    static = ~is_max & (mode in (None, "static"))
    # pipeline and speculative choices, as serve's serving_pipeline.deployment checks them
    if dp_attention:
        fail(n_pp > 1, "pp", "pipeline stages with attention data parallelism")
    k_given, a_given = ~np.isnan(k_raw), ~np.isnan(a_raw)
    if method is None:
        fail(k_given, "draft_tokens", "draft_tokens without speculative")
        fail(a_given, "acceptance", "acceptance without speculative")
        if draft_model is not None:
            fail(np.ones(g.size, dtype=bool), "draft_model", "draft_model without speculative")
        k_c, a_c = np.zeros(g.size), np.zeros(g.size)
    else:
        fail(n_pp > 1, "pp", "pipeline stages with speculative decoding")
        k_row, a_row = spec_rows.get(f"{method}_draft_tokens"), spec_rows.get(f"{method}_acceptance")
        if k_row is None:
            fail(~k_given, "draft_tokens", f"speculative {method} needs draft_tokens")
        fail(k_given & ~(in_range(k_raw, MAX_DRAFT_TOKENS) & whole(k_raw)), "draft_tokens",
             f"draft_tokens not a whole number in [1, {MAX_DRAFT_TOKENS}]")
        if a_row is None:
            fail(~a_given, "acceptance", f"speculative {method} needs acceptance")
        with np.errstate(invalid="ignore"):
            fail(a_given & ~(np.isfinite(a_raw) & (a_raw >= 0) & (a_raw < 1)), "acceptance", "acceptance not in [0, 1)")
        ok = field == ""
        k_c = np.where(ok, np.where(k_given, k_raw, k_row.value if k_row is not None else 1.0), 1.0)
        a_c = np.where(ok, np.where(a_given, a_raw, a_row.value if a_row is not None else 0.0), 0.0)
        if method == "draft":
            if draft_arch is None:
                fail(np.ones(g.size, dtype=bool), "draft_model", "speculative draft needs draft_model")
            else:
                if draft_arch.params_active >= arch.params_active:
                    fail(np.ones(g.size, dtype=bool), "draft_model", "draft model not smaller than the target")
                if not dp_attention:
                    dti = np.where(field == "", t, 1.0).astype(np.int64)
                    ok_d = (int(draft_arch.heads) % dti == 0) & ((int(draft_arch.kv_heads) % dti == 0)
                                                                 | (dti % int(draft_arch.kv_heads) == 0))
                    fail(~ok_d, "draft_model", "the draft model's heads do not split over tp")
        elif draft_model is not None:
            fail(np.ones(g.size, dtype=bool), "draft_model", "draft_model without speculative draft")

    # ---- placeholders on the rows already invalid, then memory ----
    pre = field == ""
    t_c = np.where(pre, t, 1.0)
    g_c = np.where(pre, g, 1.0)
    i_c = np.where(pre, i_len, 1.0)
    o_c = np.where(pre, o_len, 1.0)
    e_c = np.where(pre, e_raw, 1.0)
    r_c = np.where(pre, r_raw, 0.0)
    b_c = np.where(pre & ~is_max, b_raw, 1.0)
    out_len = o_c * rm
    in_len = np.maximum(i_c * (1.0 - chr_), 1.0)
    use_ep = e_c > 1
    # serve's extra roofline terms, per row: KV copies, EPLB skew, an EP group wider than a node
    attn_t = np.ones(n) if dp_attention else t_c
    kv_rep = attn_t if arch.attention == "mla" else np.maximum(1.0, attn_t / float(arch.kv_heads))
    load_cv = np.where(r_c > 0, eff_rows["eplb_expert_load_cv"].value, eff_rows["expert_load_cv"].value)
    gpn_node, internode_bw = internode_rows()
    gpn = 72.0 if acc.name.lower().startswith(_RACK_SCALE) else gpn_node.value
    wide = e_c > gpn
    dp_eff = bool(dp_attention) & (use_ep | (t_c > 1))
    # one roofline call per group of the scalar switches: engine, batching mode, EP, attention-DP, inter-node
    piped = n_pp > 1
    code = np.unique(np.stack([np.searchsorted(sorted(profiles), eng.astype(str)), static, use_ep, dp_eff, wide,
                               piped]), axis=1, return_inverse=True)[1].ravel()
    spec = (None if method is None else
            speculative_inputs(method, arch, acc, precision, kv_precision, k_c, a_c, draft_arch, bool(dp_attention)))
    extra_kv = 0.0 if spec is None else spec["extra_kv_bytes_per_token"]
    mem_t = np.where(piped, memory_gpus(t_c, arch.layers, n_pp), t_c)
    link = {"gpus_per_node": gpn, "internode_bytes_per_second": internode_bw.value}
    tps_step, bubble = np.full(n, np.nan), np.full(n, np.nan)

    def deploy_fn(rows, j=None):
        """The roofline of these rows (or of row j of them): plain, pipelined or speculative, as serve's."""
        sel = slice(None) if j is None else j
        if spec is not None:
            one = {**spec, "draft_tokens": spec["draft_tokens"][rows][sel],
                   "tokens_per_step": spec["tokens_per_step"][rows][sel]}
            return lambda **kw: deployment_roofline(speculative=one, **kw)
        if piped[rows[0]]:
            return lambda **kw: deployment_roofline(pipeline_parallel=n_pp[rows][sel], pipeline_link=link, **kw)
        return roofline
    res = {k: np.full(n, np.nan) for k in ("output_tokens_per_second", "input_tokens_per_second",
                                           "decode_tokens_per_second", "ttft_seconds", "step_seconds", "batch")}
    res["memory_bound"] = np.zeros(n, dtype=bool)
    fits = np.full(n, np.nan)
    w_total = np.full(n, np.nan)
    caps = np.full(n, np.nan)
    burst_groups = []
    for grp in np.unique(code):
        rows = np.nonzero(code == grp)[0]
        j = rows[0]
        s, prof = bool(static[j]), profiles[str(eng[j])]
        run_eff = dict(prof.efficiency) if efficiency is None else {**prof.efficiency, **efficiency}
        cap = prof.params["max_batch_cap"]
        caps[rows] = cap
        extra = ({"gpus_per_node": gpn, "internode_bytes_per_second": internode_bw.value} if wide[j] else {})
        common = dict(**hw, tensor_parallel=t_c[rows], input_tokens=in_len[rows], output_tokens=out_len[rows],
                      mode="static" if s else "max-load", kv_memory_fraction=frac, max_batch_cap=cap,
                      expert_parallel=e_c[rows], attention_dp=bool(dp_eff[j]), expert_load_cv=load_cv[rows],
                      kv_replication=kv_rep[rows], redundant_experts=r_c[rows], **extra, **run_eff,
                      # the profile's kernel switches as serve reads them: attention at the kernels' precision;
                      # overlap_micro_batch_tokens needs two-batch overlap (disaggregated pools: refused here)
                      **attention_inputs(prof, acc, precision, kv_precision, in_len[rows]))
        # serve's first call: the requested batch (static or max-load with a number); max rows get theirs below
        explicit = ~is_max[rows]
        rl = deploy_fn(rows)
        r = rl(batch=np.where(explicit, b_c[rows], 1.0), **common)
        wt = np.broadcast_to(np.asarray(r["weight_bytes"], dtype=float), rows.shape)
        # capacity: a cached prefix still occupies KV memory, so the batch is sized on the full input
        ctx_hold = i_c[rows] + (out_len[rows] if s else out_len[rows] / 2.0)
        f = np.asarray(inference.max_batch(mem_t[rows] * acc.memory_bytes, wt,
                                           (held_kv_bytes_per_token(hw, ctx_hold) + extra_kv) * kv_rep[rows], ctx_hold, frac),
                       dtype=float)
        fits[rows], w_total[rows] = f, wt
        if (~explicit).any():  # serve's second call, at the largest batch that fits (capped)
            chosen = np.where(explicit, b_c[rows], np.maximum(np.minimum(f, cap), 1.0))
            r2 = rl(batch=chosen, **common)
            r = {k: np.where(explicit, np.broadcast_to(r[k], rows.shape), np.broadcast_to(r2[k], rows.shape))
                 if k in res or k in ("tokens_per_step", "pipeline_bubble") else r[k] for k in r}
        for k in res:
            res[k][rows] = np.broadcast_to(r[k], rows.shape)
        if "tokens_per_step" in r:
            tps_step[rows] = np.broadcast_to(r["tokens_per_step"], rows.shape)
        if "pipeline_bubble" in r:
            bubble[rows] = np.broadcast_to(r["pipeline_bubble"], rows.shape)
        burst_groups.append((rows, common, cap, burst_scheduler(prof)))
    mem_replica = mem_t * acc.memory_bytes * frac
    fail(pre & ((w_total >= mem_replica) | (fits < 1)), "gpus",
         f"not enough memory: {arch.name} at {precision} (weights plus one sequence's KV cache) does not fit the "
         f"tensor-parallel group of {acc.name}")
    fail(pre & ~is_max & (b_c > fits), "batch", "batch larger than the largest batch whose KV cache fits")
    valid = field == ""
    makespan = np.full(n, np.nan)
    if arrival == "burst":  # serve's burst, row by row, on the rows still valid
        keys = ("output_tokens_per_second", "input_tokens_per_second", "decode_tokens_per_second", "ttft_seconds",
                "batch", "memory_bound")
        for rows, common, cap, (budget, mixed) in burst_groups:
            for pos, j in enumerate(rows):
                if not valid[j]:
                    continue
                one = {k: (x[pos] if isinstance(x, np.ndarray) and x.shape == rows.shape else x)
                       for k, x in common.items() if k not in ("input_tokens", "output_tokens", "mode")}
                reps = int(g_c[j] // (t_c[j] * n_pp[j]))
                if j in dists:
                    i_s, o_s = dists[j].input_tokens, dists[j].output_tokens
                else:
                    i_s, o_s = np.full(int(q_raw[j]), i_c[j]), np.full(int(q_raw[j]), o_c[j])
                rb = burst(deploy_fn(rows, pos), one, np.maximum(i_s[0::reps] * (1.0 - chr_), 1.0), o_s[0::reps] * rm, cap,
                           budget, mixed)
                for k in keys:
                    res[k][j] = rb[k]
                res["step_seconds"][j] = rb["tpot_seconds"]
                makespan[j] = rb["makespan_seconds"]

    # ---- deployment figures and cost ----
    replicas = np.where(valid, np.floor_divide(g_c, t_c * np.where(pre, n_pp, 1.0)), np.nan)
    cols: dict[str, np.ndarray] = {
        "model": np.full(n, arch.name, dtype=object), "gpu": np.full(n, acc.name, dtype=object),
        "precision": np.full(n, precision, dtype=object), "kv_precision": np.full(n, kv_precision, dtype=object),
        "gpus": g, "tp": t, "ep": e_raw, "input_tokens": i_len, "output_tokens": o_len, "requested_batch": b_raw,
        "mode": np.where(static, "static", "max-load").astype(object), "engine": eng,
        "redundant_experts": r_raw, "requests": q_raw, "pp": np.where(p_given, p_raw, 1.0),
        "draft_tokens": np.where(valid, k_c, np.nan) if method else k_raw,
        "acceptance": np.where(valid, a_c, np.nan) if method else a_raw,
    }
    nan = np.nan
    out_tps = np.where(valid, res["output_tokens_per_second"] * replicas, nan)
    in_tps = np.where(valid, res["input_tokens_per_second"] * replicas, nan)
    dec_tps = np.where(valid, res["decode_tokens_per_second"] * replicas, nan)
    cols.update({
        "output_tokens_per_second": out_tps, "input_tokens_per_second": in_tps, "decode_tokens_per_second": dec_tps,
        "ttft_seconds": np.where(valid, res["ttft_seconds"], nan), "tpot_seconds": np.where(valid, res["step_seconds"], nan),
        "batch": np.where(valid, res["batch"], nan), "max_batch": np.where(valid, fits, nan), "replicas": replicas,
        "memory_bound": valid & res["memory_bound"], "makespan_seconds": np.where(valid, makespan, nan),
        "tokens_per_step": np.where(valid, tps_step, nan), "pipeline_bubble": np.where(valid, bubble, nan),
        "speculative_speedup": np.full(n, nan),
    })
    if method is not None and valid.any():  # serve's speedup: over the same deployment without speculation
        plain = sweep(model=model, gpu=gpu, gpus=g, tp=np.where(tp_given, t_raw, np.nan), precision=precision,
                      kv_precision=kv_precision, input_tokens=None if input_tokens is None else i_in_row,
                      output_tokens=None if output_tokens is None else o_in_row, batch=b_raw, mode=mode, ep=e_raw,
                      dp_attention=dp_attention, reasoning_multiplier=reasoning_multiplier,
                      cache_hit_rate=cache_hit_rate, efficiency=efficiency, engine=eng, redundant_experts=r_raw,
                      lengths=lengths, requests=q_raw, arrival=arrival, pp=p_raw)
        cols["speculative_speedup"] = np.where(valid, dec_tps / plain.decode_tokens_per_second, nan)
    if pricing:
        u = 1.0 if utilization is None else float(utilization)
        per_hour = inference.deployment_usd_per_hour(rate, g_c)
        out_cost = inference.usd_per_million_tokens(per_hour, np.where(valid, dec_tps, 1.0), u)
        in_cost = inference.usd_per_million_tokens(per_hour, np.where(valid, in_tps, 1.0), u) * (1 - chr_)
        cols["usd_per_hour"] = np.where(valid, per_hour, nan)
        cols["usd_per_million_output_tokens"] = np.where(valid, out_cost, nan)
        cols["usd_per_million_input_tokens"] = np.where(valid, in_cost, nan)
        cols["usd_per_request"] = np.where(valid, (out_cost * o_c * rm + in_cost * i_c) / 1e6, nan)
    else:
        for k in ("usd_per_hour", "usd_per_million_output_tokens", "usd_per_million_input_tokens", "usd_per_request"):
            cols[k] = np.full(n, nan)
    cols.update({"valid": valid, "field": field, "reason": reason})

    assumptions = [
        arch.assumption(f"{arch.name} architecture", f"{arch.attention.upper()}, {arch.layers:g} layers, d={arch.hidden_size:g}"),
        acc.assumption(f"{acc.name} memory", acc.memory_bytes, "bytes"),
        acc.assumption(f"{acc.name} HBM bandwidth", acc.memory_bytes_per_second, "bytes/s"),
        acc.assumption(f"{acc.name} dense {COMPUTE_PRECISION[precision]} peak", hw["peak_flops_per_second"], "FLOP/s"),
        user("weight precision", precision, None, "precision"), user("KV precision", kv_precision, None, "kv_precision"),
        eff_rows["kv_memory_fraction"].as_assumption(),
        derived("configurations", n, None, "the broadcast of gpus, tp, input_tokens, output_tokens, batch, ep, "
                "redundant_experts and engine"),
    ]
    for prof in profiles.values():  # each engine's profile rows (the default trtllm/dense/hopper: the base table)
        assumptions += [prof.rows[k].as_assumption() if efficiency is None or k not in efficiency
                        else user(k, float(efficiency[k]), eff_rows[k].unit)
                        for k in ("max_batch_cap", *EFFICIENCY_NAMES, *MOE_EFFICIENCY_NAMES) if k in prof.rows]
    if pricing:
        assumptions.append(price_assumption)
        assumptions.append(user("utilization", u, None, "utilization") if utilization is not None else
                           Assumption(name="utilization", value=1.0, source="billshape default: every paid hour busy "
                                      "at this throughput (an upper bound on efficiency)", as_of=None))
    return Sweep(columns=cols, assumptions=assumptions)


#: arguments of :func:`sweep_grid` that take one value for the whole grid
SCALARS = ("mode", "dp_attention", "reasoning_multiplier", "cache_hit_rate", "price", "provider", "tier",
           "utilization", "efficiency")


def sweep_grid(**lists: Any) -> Sweep:
    """:func:`sweep` over the Cartesian product of lists: ``model``, ``gpu``, ``precision``, ``kv_precision`` and
    ``engine`` and the numeric axes ``gpus``, ``tp``, ``input_tokens``, ``output_tokens``, ``batch``, ``ep``,
    ``redundant_experts`` (a scalar is a list of one; ``None`` entries mean the default). ``SCALARS`` (``price``, ``mode``, ...) pass through unchanged.

    >>> g = sweep_grid(model="llama-3.1-8b", gpu=["h100", "h200"], gpus=[1, 2], tp=[1, 2], price=2.0)
    >>> len(g), int(g.valid.sum())   # tp 2 on one GPU is refused
    (8, 6)
    """
    known = {"model", "gpu", "precision", "kv_precision", "engine", "gpus", "tp", "input_tokens", "output_tokens",
             "batch", "ep", "redundant_experts", *SCALARS}
    unknown = sorted(set(lists) - known)
    if unknown:
        raise BillshapeInputError(unknown[0], lists[unknown[0]], "a sweep_grid axis: " + ", ".join(sorted(known)))
    if "model" not in lists or "gpu" not in lists:
        raise BillshapeInputError("model" if "model" not in lists else "gpu", None, "a name or a list of names")

    def as_list(x):
        return list(x) if isinstance(x, (list, tuple, np.ndarray)) else [x]

    cats = [as_list(lists.get(k, d)) for k, d in (("model", None), ("gpu", None), ("precision", "bf16"),
                                                  ("kv_precision", None), ("engine", None))]
    axes = ("gpus", "tp", "input_tokens", "output_tokens", "batch", "ep", "redundant_experts")
    values = [as_list(lists[k]) if k in lists else [None] for k in axes]
    grids = np.meshgrid(*[_array(vals, k) for k, vals in zip(axes, values)], indexing="ij")
    numeric = {k: (grid.ravel() if k in lists else None) for k, grid in zip(axes, grids)}
    scalars = {k: lists[k] for k in SCALARS if k in lists}
    parts = [sweep(model=m, gpu=gp, precision=p, kv_precision=kv, engine=en, **numeric, **scalars)
             for m, gp, p, kv, en in itertools.product(*cats)]
    cols = {k: np.concatenate([s.columns[k] for s in parts]) for k in parts[0].columns}
    assumptions = [a for s in parts for a in s.assumptions]
    seen, unique = set(), []
    for a in assumptions:
        key = (a.name, repr(a.value), a.source)
        if key not in seen:
            seen.add(key)
            unique.append(a)
    return Sweep(columns=cols, assumptions=unique)
