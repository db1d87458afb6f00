"""Serve page: one :class:`~billshape.chains.ServeRequest` run by the serve chain, whose fields pick the estimate
(:func:`billshape.chains.serving.mode`): cost per million tokens of a deployment from a given throughput, and how
it falls as utilization rises (:func:`billshape.inference.usd_per_million_tokens`, vectorised over utilization);
or, in "Model the throughput", the throughput, latency and cost that billshape's roofline serving model predicts
for a model on some GPUs, with the batch-size trade-off (the chain run per static batch) and the capacity for a
latency target (the same request with ``requests_per_second``); with "Disaggregated prefill / decode pools" on,
the same request with ``prefill_gpus``/``decode_gpus`` and each pool's parallelism
(:class:`~billshape.serving_disagg.DisaggregatedServeEstimate`: each pool's throughput, the pool ratio against the
balanced one, the KV transfer).

Opens on DeepSeek's decode node: 8 GPUs at $2/GPU-hour decoding 14,800 tokens/s, about $0.30 per
million output tokens at full utilization.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui

TITLE = "Serve"
ICON = ":material/bolt:"
URL = "serve"

# Example inputs: seed 003, section 37.2 (DeepSeek's inference node: 8 H800 GPUs, 14,800 output tokens/s,
# priced at $2 per GPU-hour).
EXAMPLE = {"tokens_per_second": 14_800.0, "gpus": 8, "price": 2.0, "gpu": "h800", "utilization": 1.0}
EXAMPLE_SOURCE = "DeepSeek's decode node, as in \"The Economics of AI\" (8 H800 at $2/GPU-hour, 14,800 output tokens/s)"

HOW_PRICE = ("My price", "Catalog")
HOW_THROUGHPUT = ("Throughput given", "Model the throughput")
# Example of the model mode: the CLI's serve example (Llama 3.1 70B in FP8 on 2 H100, 1,000 tokens in and out,
# the largest batch that fits, $2.5 per GPU-hour).
MODEL_EXAMPLE = {"model": "llama-3.1-70b", "gpu": "h100", "gpus": 2, "precision": "fp8", "input_tokens": 1000,
                 "output_tokens": 1000, "price": 2.5}


def _inputs() -> dict:
    from billshape import catalog

    kw: dict = {}
    c1, c2 = st.columns(2)
    kw["tokens_per_second"] = c1.number_input(
        "Output tokens/s", min_value=0.0, value=EXAMPLE["tokens_per_second"], step=100.0, format="%.0f",
        key="serve_tps", help="Decode throughput of the whole deployment (all GPUs together); > 0.")
    kw["gpus"] = c2.number_input("GPUs", min_value=0, value=EXAMPLE["gpus"], step=1, key="serve_gpus", help="> 0.")
    kw["utilization"] = st.slider(
        "Utilization", min_value=0.0, max_value=1.0, value=EXAMPLE["utilization"], step=0.01, key="serve_util",
        help="Share of paid hours spent busy at this throughput, in (0, 1].")
    pricing = st.segmented_control("Price", HOW_PRICE, default=HOW_PRICE[0], key="serve_pricing", required=True)
    if pricing == HOW_PRICE[0]:
        kw["price"] = st.number_input("USD per GPU-hour", min_value=0.0, value=EXAMPLE["price"], step=0.1,
                                      key="serve_price", help="> 0.")
    else:
        names = [a.name for a in catalog.accelerators()]
        kw["gpu"] = st.selectbox("Accelerator", names, index=names.index(catalog.gpu("h100").name), key="serve_gpu")
        c1, c2 = st.columns(2)
        kw["provider"] = c1.selectbox("Provider", catalog.providers(), key="serve_provider")
        kw["tier"] = c2.selectbox("Tier", catalog.TIERS, key="serve_tier")
    if st.toggle("Price input tokens too", key="serve_input_toggle"):
        kw["input_tokens_per_second"] = st.number_input(
            "Input tokens/s (prefill, whole deployment)", min_value=0.0, value=100_000.0, step=1000.0, format="%.0f",
            key="serve_input_tps", help="> 0.")
    return kw


def _model_inputs() -> dict:
    from billshape import catalog, serving

    kw: dict = {}
    models = [a.name for a in serving.architectures()]
    kw["model"] = st.selectbox("Model", models, index=models.index(MODEL_EXAMPLE["model"]), key="serve_m_model",
                               help="From billshape's architecture catalog.")
    names = [a.name for a in catalog.accelerators()]
    c1, c2 = st.columns(2)
    kw["gpu"] = c1.selectbox("Accelerator", names, index=names.index(catalog.gpu(MODEL_EXAMPLE["gpu"]).name),
                             key="serve_m_gpu")
    # the pools toggle sits below (its value of this run is already in the session state): with pools on, the
    # single-pool inputs it replaces are shown disabled and not sent
    pools = bool(st.session_state.get("serve_m_pools", False))
    kw["gpus"] = c2.number_input("GPUs", min_value=1, value=MODEL_EXAMPLE["gpus"], step=1, key="serve_m_gpus",
                                 disabled=pools, help="Whole GPUs, one tensor-parallel replica; >= what the weights "
                                                      "need. With disaggregated pools: each pool's GPUs below.")
    kw["precision"] = c1.selectbox("Precision", serving.WEIGHT_PRECISIONS,
                                   index=serving.WEIGHT_PRECISIONS.index(MODEL_EXAMPLE["precision"]),
                                   key="serve_m_precision", help="Weights and KV cache.")
    max_batch = c2.toggle("Max batch", value=True, key="serve_m_batch_max", disabled=pools,
                          help="Continuous batching at the largest batch whose KV cache fits (max-load).")
    if not max_batch:
        kw["batch"] = c2.number_input("Batch", min_value=1, value=32, step=8, key="serve_m_batch", disabled=pools,
                                      help="Sequences decoded together (static batch); a whole number >= 1.")
    c1, c2 = st.columns(2)
    kw["input_tokens"] = c1.number_input("Input tokens per request", min_value=0, value=MODEL_EXAMPLE["input_tokens"],
                                         step=100, key="serve_m_in", help="> 0.")
    kw["output_tokens"] = c2.number_input("Output tokens per request", min_value=0,
                                          value=MODEL_EXAMPLE["output_tokens"], step=100, key="serve_m_out",
                                          help="> 0.")
    with st.expander("Engine, parallelism, KV cache, reasoning, prompt cache"):
        _advanced_inputs(kw, pools)
    with st.expander("Disaggregated prefill / decode pools", expanded=pools):
        if _pool_inputs(kw):
            for name in SINGLE_POOL_ONLY:
                kw.pop(name, None)
    return kw


#: fields of the single-pool roofline the library refuses together with ``prefill_gpus``/``decode_gpus``
#: (:func:`billshape.serving._disaggregated`: ``gpus``, a static ``batch``, pipeline and speculative decoding),
#: and the shared ``tp``/``ep``/``dp_attention``, whose widget sizes one replica of ``gpus``: each pool sets its own
SINGLE_POOL_ONLY = ("gpus", "batch", "mode", "pp", "speculative", "draft_tokens", "acceptance", "draft_model", "tp",
                    "ep", "dp_attention")

# Pools when first turned on: the disaggregated worked example of docs/serving.md (Llama 3.1 70B in FP8 on H100:
# 2 GPUs that prefill, 4 that decode, each pool at its default parallelism: TP 2 and TP 4).
POOLS_EXAMPLE = {"prefill_gpus": 2, "decode_gpus": 4}


def _divisors(n: int) -> list[int]:
    """The whole numbers that divide ``n`` (the tensor/expert-parallel sizes a pool of ``n`` GPUs can take)."""
    small = [d for d in range(1, int(n ** 0.5) + 1) if n % d == 0]
    return sorted(set(small) | {n // d for d in small})


def _pool_inputs(kw: dict) -> bool:
    """The disaggregated deployment's fields (:class:`~billshape.serving_disagg.DisaggregatedServeEstimate`):
    ``prefill_gpus``, ``decode_gpus``, each pool's ``*_tp``, ``*_ep`` and ``*_dp_attention`` (EP and attention-DP
    for MoE models only), ``decode_batch`` and ``two_batch_overlap``. The counts are always sent; every other field
    only when it differs from the library's default, so the assumptions table says "default" or "user input".
    Returns whether the pools are on."""
    from billshape import serving

    if not st.toggle("Disaggregated pools", value=False, key="serve_m_pools",
                     help="One pool of GPUs only prefills, another only decodes; each request's KV cache crosses "
                          "the fabric between them (DistServe, Splitwise; DeepSeek's and SGLang's deployments)."):
        st.caption("Off: one pool of GPUs both prefills and decodes.")
        return False
    moe = serving.architecture(kw["model"]).is_moe
    cols = st.columns(2)
    for col, pool in zip(cols, ("prefill", "decode")):
        name = pool.capitalize()
        n = col.number_input(f"{name} GPUs", min_value=0, value=POOLS_EXAMPLE[f"{pool}_gpus"], step=1,
                             key=f"serve_p_{pool}_gpus", help=f"Whole GPUs that only {pool}; > 0.")
        kw[f"{pool}_gpus"] = n
        whole = int(n) if float(n) == int(n) and n >= 1 else 1
        sizes = _divisors(whole)
        # keyed by the pool's GPU count: a new count starts again at the library's default
        tp = col.selectbox(f"{name} tensor-parallel GPUs per instance", (None, *sizes),
                           key=f"serve_p_{pool}_tp_{whole}",
                           format_func=lambda v: "default" if v is None else str(v),
                           help="GPUs that split each layer of one instance; default: the pool's GPUs within one "
                                "node (at least its expert-parallel size).")
        if tp is not None:
            kw[f"{pool}_tp"] = tp
        if moe:
            ep = col.selectbox(f"{name} expert-parallel GPUs per instance", sizes, index=0,
                               key=f"serve_p_{pool}_ep_{whole}",
                               help="MoE: GPUs that hold whole experts (1: every expert on every GPU); divides the "
                                    "tensor-parallel size. Wide EP: the whole pool, with attention data-parallel.")
            if ep != 1:
                kw[f"{pool}_ep"] = ep
            if col.toggle(f"{name} attention data-parallel", value=False, key=f"serve_p_{pool}_dp",
                          help="Each GPU runs attention for its own sequences."):
                kw[f"{pool}_dp_attention"] = True
    c1, c2 = st.columns(2)
    if not c1.toggle("Largest decode batch", value=True, key="serve_p_batch_max",
                     help="Each decode instance runs the largest batch whose KV cache (prompt + output per sequence) "
                          "fits, at most the engine's batch cap per attention-DP rank."):
        kw["decode_batch"] = c1.number_input("Decode batch per instance", min_value=0, value=64, step=8,
                                             key="serve_p_batch", help="Sequences per decode instance; a whole "
                                                                       "number >= 1 that fits.")
    if c2.toggle("Two-batch overlap", value=False, key="serve_p_tbo",
                 help="Each pool splits a forward in two micro-batches: one computes while the other "
                      "communicates."):
        kw["two_batch_overlap"] = True
    st.caption("GPUs, Batch and the parallelism above are for one pool and are not sent; pipeline stages and "
               "speculative decoding are not modeled for pools.")
    return True


def _advanced_inputs(kw: dict, pools: bool = False) -> None:
    """The rest of the roofline request's fields: ``engine``, ``redundant_experts`` (MoE), ``tp``, ``kv_precision``,
    ``ep``, ``dp_attention``, ``reasoning_multiplier``, ``cache_hit_rate``. Each is set only when it differs from the library's default, so
    the assumptions table says "default" or "user input" as the CLI would. With ``pools`` the single-pool
    parallelism is shown disabled (each pool has its own)."""
    from billshape import serving

    gpus = int(kw["gpus"]) if float(kw["gpus"]) == int(kw["gpus"]) and kw["gpus"] >= 1 else 1
    sizes = [d for d in range(1, gpus + 1) if gpus % d == 0]
    c1, c2 = st.columns(2)
    default = f"{serving.ENGINES[0]} (default)"
    engine = c1.selectbox("Serving engine", (default, *serving.ENGINES[1:]), key="serve_m_engine",
                          help="The engine profile: its fitted efficiencies, MoE terms and scheduler cap "
                               "(docs/serving.md, per-engine error tables).")
    if engine != default:
        kw["engine"] = engine
    if serving.architecture(kw["model"]).is_moe:
        extra = c2.number_input("Redundant experts", min_value=0, value=0, step=8, key="serve_m_redundant",
                                help="Extra expert slots across the EP group (EPLB), to even the routing load; "
                                     "needs expert parallelism > 1.")
        if extra:
            kw["redundant_experts"] = int(extra)
        routing = c1.selectbox("Expert routing", ("measured (default)", "balanced"), key="serve_m_routing",
                               help="measured: the router's measured skew (what EPLB leaves of it with redundant "
                                    "experts); balanced: none beyond sampling noise, as benchmarks that simulate "
                                    "balanced routing.")
        if routing == "balanced":
            kw["expert_routing"] = "balanced"
    c1, c2 = st.columns(2)
    # keyed by the GPU count: a new count starts again at the library's default (one replica of all the GPUs)
    tp = c1.selectbox("Tensor-parallel GPUs per replica", sizes, index=len(sizes) - 1, key=f"serve_m_tp_{gpus}",
                      disabled=pools, help="GPUs that split each layer; GPUs / TP replicas serve side by side.")
    if tp != gpus:
        kw["tp"] = tp
    same = "same as weights"
    kv = c2.selectbox("KV cache precision", (same, *serving.KV_PRECISIONS), key="serve_m_kv",
                      help="A lower precision holds more sequences per GPU.")
    if kv != same:
        kw["kv_precision"] = kv
    if serving.architecture(kw["model"]).is_moe:
        ep = c1.selectbox("Expert-parallel GPUs per replica", sorted({1, tp}), key=f"serve_m_ep_{tp}",
                          disabled=pools, help="MoE: 1 keeps every expert on every GPU; TP spreads whole experts.")
        if ep != 1:
            kw["ep"] = ep
            if c2.toggle("Attention data-parallel", value=False, key="serve_m_dp", disabled=pools,
                         help="Each GPU runs attention for its own sequences."):
                kw["dp_attention"] = True
    reasoning = c1.number_input("Reasoning multiplier", min_value=1.0, value=1.0, step=0.5, key="serve_m_reasoning",
                                help="Tokens generated per visible output token (>= 1).")
    if reasoning != 1.0:
        kw["reasoning_multiplier"] = reasoning
    hit = c2.slider("Prompt-cache hit rate", min_value=0.0, max_value=0.99, value=0.0, step=0.01,
                    key="serve_m_cache", help="Share of input tokens that skip prefill.")
    if hit > 0:
        kw["cache_hit_rate"] = hit


def _capacity_inputs() -> dict | None:
    """The request's ``requests_per_second`` with ``tpot_limit``/``ttft_limit`` [s]: off at 0 requests/s."""
    c1, c2, c3 = st.columns(3)
    rps = c1.number_input("Requests per second", min_value=0.0, value=0.0, step=1.0, key="serve_c_rps",
                          help="The traffic to serve; 0 leaves this off.")
    tpot = c2.number_input("TPOT limit, ms", min_value=0.0, value=0.0, step=10.0, key="serve_c_tpot",
                           help="Max time per output token; 0: no limit.")
    ttft = c3.number_input("TTFT limit, ms", min_value=0.0, value=0.0, step=100.0, key="serve_c_ttft",
                           help="Max time to first token; 0: no limit.")
    if rps <= 0:
        return None
    return {"requests_per_second": rps, "tpot_limit": tpot / 1e3 if tpot > 0 else None,
            "ttft_limit": ttft / 1e3 if ttft > 0 else None}


def _price_inputs(kw: dict, gpu_choice: bool, default_price: float, prefix: str) -> None:
    from billshape import catalog

    pricing = st.segmented_control("Price", HOW_PRICE, default=HOW_PRICE[0], key=f"{prefix}_pricing", required=True)
    if pricing == HOW_PRICE[0]:
        kw["price"] = st.number_input("USD per GPU-hour", min_value=0.0, value=default_price, step=0.1,
                                      key=f"{prefix}_price", help="> 0.")
    else:
        if gpu_choice:
            names = [a.name for a in catalog.accelerators()]
            kw["gpu"] = st.selectbox("Accelerator", names, index=names.index(catalog.gpu("h100").name),
                                     key=f"{prefix}_gpu")
        c1, c2 = st.columns(2)
        kw["provider"] = c1.selectbox("Provider", catalog.providers(), key=f"{prefix}_provider")
        kw["tier"] = c2.selectbox("Tier", catalog.TIERS, key=f"{prefix}_tier")


def _batch_chart(kw: dict, res):
    """Static batch sizes from 1 to the largest that fits (the serve chain run per batch): cost per token against
    time per output token."""
    import altair as alt
    import pandas as pd

    from billshape.chains import ServeRequest, run
    from billshape.errors import BillshapeInputError

    args = {k: v for k, v in kw.items() if k != "batch"}
    batches = sorted({2 ** i for i in range(0, 16) if 2 ** i < res.max_batch} | {int(res.max_batch)})
    rows = []
    for b in batches:
        try:
            r = run(ServeRequest(**args, batch=b))
        except BillshapeInputError:  # a static batch holds the whole context: fewer fit than under max-load
            break
        rows.append({"batch": b, "tpot_ms": r.tpot_seconds * 1e3, "usd": r.usd_per_million_output_tokens,
                     "tps": r.output_tokens_per_second})
    frame = pd.DataFrame(rows)
    here = pd.DataFrame({"tpot_ms": [res.tpot_seconds * 1e3], "usd": [res.usd_per_million_output_tokens],
                         "label": [f"your setting (batch {res.batch:g})"]})
    y = alt.Y("usd:Q", title="USD per million output tokens (log scale)", scale=alt.Scale(type="log"),
              axis=alt.Axis(format="$,.3~g"))
    x = alt.X("tpot_ms:Q", title="time per output token, ms", scale=alt.Scale(zero=False))
    line = alt.Chart(frame, title="Bigger batches: cheaper tokens, each one slower").mark_line(
        point=alt.OverlayMarkDef(size=40)).encode(
        x=x, y=y, tooltip=[alt.Tooltip("batch:Q"), alt.Tooltip("tpot_ms:Q", format=",.1f", title="TPOT ms"),
                           alt.Tooltip("tps:Q", format=",.0f", title="output tokens/s"),
                           alt.Tooltip("usd:Q", format="$,.4f")])
    labels = alt.Chart(frame).mark_text(align="left", dx=6, dy=-6, fontSize=10, color="#666").encode(
        x=x, y=y, text=alt.Text("batch:Q", format="d"))
    point = alt.Chart(here).mark_point(size=160, filled=True, color="#d62728").encode(
        x=x, y=y, tooltip=[alt.Tooltip("label:N"), alt.Tooltip("usd:Q", format="$,.4f")])
    text = point.mark_text(align="right", dx=-4, dy=-14, color="#d62728", fontWeight="bold").encode(text="label:N")
    return (line + labels + point + text).properties(height=340)


def _render_model(top, left, right) -> None:
    from billshape.chains import ServeRequest

    with left:
        kw = _model_inputs()
        kw["utilization"] = st.slider("Utilization", min_value=0.0, max_value=1.0, value=1.0, step=0.01,
                                      key="serve_m_util", help="Share of paid hours spent busy, in (0, 1].")
        _price_inputs(kw, gpu_choice=False, default_price=MODEL_EXAMPLE["price"], prefix="serve_m")
        st.caption("Roofline serving model: weights and KV cache streamed from HBM each decode step, compute for "
                   "prefill, with fitted efficiencies (docs/serving.md).")
    with top:
        res = _ui.run(ServeRequest, **kw)
    if res is None:
        return
    st.session_state["serve_usd_per_million_tokens"] = res.usd_per_million_output_tokens
    if getattr(res, "prefill_gpus", 0):  # a DisaggregatedServeEstimate
        _render_pools(top, right, res)
        with right:
            _capacity_block(kw)
        _ui.assumptions_table(res)
        return
    with top:
        _headline(res, (f"Whole deployment, batch {res.batch:g} (largest that fits {res.max_batch:g}).",
                        "Decode share of the deployment's time.", "Prefill share of the deployment's time.",
                        "Time to first token (prefill).", "Time per output token (one decode step)."),
                  ("Bound", res.bound, "What limits a decode step: HBM bandwidth or compute."))
    with right:
        st.markdown(f"**{res.model}** ({res.params_total / 1e9:,.1f}B parameters, {res.params_active / 1e9:,.1f}B "
                    f"active) on **{res.gpus:g} x {res.gpu}** at {res.precision}: {res.weight_bytes / 1e9:,.0f} GB "
                    f"of weights, KV cache {res.kv_cache_bytes_per_token / 1e3:,.0f} kB per token · "
                    f"{_ui.fmt(res.usd_per_hour, 'USD')}/hour · {_ui.fmt(res.usd_per_request, 'USD')} per request")
        _ui.altair(_batch_chart(kw, res))
        st.caption("Blue: static batches (each sequence holds its whole context, so fewer fit); red: your setting "
                   "(with Max batch, continuous batching: sequences hold half their output on average).")
        _capacity_block(kw)
    _ui.assumptions_table(res)


def _headline(res, notes: tuple[str, str, str, str, str], bound: tuple[str, str, str]) -> None:
    """The two rows of headline cards of a modeled result (one pool or a disaggregated pair): output tokens/s,
    USD per million output and input tokens; TTFT, TPOT and what bounds it, each with its caption ``notes``."""
    _ui.metrics([
        ("Output tokens/s", _ui.fmt(round(res.output_tokens_per_second)), notes[0]),
        ("USD per million output tokens", _ui.fmt(res.usd_per_million_output_tokens, "USD"), notes[1]),
        ("USD per million input tokens", _ui.fmt(res.usd_per_million_input_tokens, "USD"), notes[2]),
    ])
    _ui.metrics([
        ("TTFT", f"{res.ttft_seconds * 1e3:,.0f} ms", notes[3]),
        ("TPOT", f"{res.tpot_seconds * 1e3:,.1f} ms", notes[4]),
        bound,
    ])


def _capacity_block(kw: dict) -> None:
    """"Capacity for a latency target": the same model with ``requests_per_second`` (capacity mode, replicas of
    one pool), then the cheapest rented fleet for that traffic."""
    from billshape.chains import ServeRequest

    st.subheader("Capacity for a latency target")
    want = _capacity_inputs()
    if want is None:
        return
    if kw.get("prefill_gpus") is not None:
        st.caption("Sized as replicas that both prefill and decode (the capacity search does not size pools).")
    keys = ("model", "gpu", "precision", "kv_precision", "input_tokens", "output_tokens", "price", "provider", "tier",
            "engine")
    cap = _ui.run(ServeRequest, **{k: kw[k] for k in keys if k in kw}, **want)
    if cap is None:
        return
    _ui.metrics([
        ("Replicas", f"{cap.replicas:,}", f"{cap.tensor_parallel} GPUs each (the size that needs the "
                                           "fewest GPUs in all), batch "
                                           f"{cap.batch_per_replica:,} per replica."),
        ("GPUs", f"{cap.gpus:,}", f"{cap.replica_requests_per_second:,.2f} requests/s per replica."),
        ("USD per month", _ui.fmt(cap.usd_per_month, "USD") if cap.usd_per_month is not None else "-",
         f"TPOT {cap.tpot_seconds * 1e3:,.1f} ms, TTFT {cap.ttft_seconds * 1e3:,.0f} ms at that batch."),
    ])
    _fleet(kw, want)


def _bound_words(res) -> str:
    return "KV transfer" if res.bound_pool == "kv-transfer" else f"{res.bound_pool} pool"


def _render_pools(top, right, res) -> None:
    """A disaggregated result (:class:`~billshape.serving_disagg.DisaggregatedServeEstimate`): the pair's
    throughput and cost on top; each pool's throughput (whole pool and per node), the pool ratio against the
    balanced one, the KV transfer and a chart of both pools' capacity beside the inputs."""
    import pandas as pd

    bound = _bound_words(res)
    with top:
        _headline(res, (f"The pair: both pools serve the same requests, at the rate of the slower ({bound}).",
                        "The decode pool's hours (every GPU of both pools is priced).", "The prefill pool's hours.",
                        "A prefill forward + the KV transfer + one decode step.",
                        "Time per output token (one decode-pool step)."),
                  ("Bound by", bound, "The pool (or the fabric between them) that serves the fewest requests/s."))
    with right:
        st.markdown(f"**{res.model}** ({res.params_total / 1e9:,.1f}B parameters, {res.params_active / 1e9:,.1f}B "
                    f"active) on **{res.prefill_gpus:,} + {res.decode_gpus:,} x {res.gpu}** (prefill + decode, "
                    f"nodes of {res.gpus_per_node}) at {res.precision} · {_ui.fmt(res.usd_per_hour, 'USD')}/hour · "
                    f"{_ui.fmt(res.usd_per_request, 'USD')} per request")
        _ui.metrics([
            ("Prefill pool, input tokens/s", _ui.fmt(round(res.prefill_input_tokens_per_second)),
             "What the prefill pool can prompt at full load (cached prompt tokens included)."),
            ("Prefill, per node", _ui.fmt(round(res.prefill_input_tokens_per_second_per_node)),
             f"Per node of {res.gpus_per_node} GPUs, as published deployments report it."),
            ("Decode pool, output tokens/s", _ui.fmt(round(res.decode_output_tokens_per_second)),
             "What the decode pool can generate at full load."),
            ("Decode, per node", _ui.fmt(round(res.decode_output_tokens_per_second_per_node)),
             f"Per node of {res.gpus_per_node} GPUs."),
        ])
        _ui.metrics([
            ("Prefill GPUs per decode GPU", f"{res.pool_ratio:.3g}", "As deployed: prefill GPUs / decode GPUs."),
            ("Balanced ratio", f"{res.balanced_prefill_gpus_per_decode_gpu:.3g}",
             "Prefill GPUs per decode GPU at which both pools serve the same requests/s for this traffic; fewer "
             "than this and the prefill pool bounds."),
            ("KV transfer", f"{res.kv_transfer_seconds * 1e3:,.2f} ms",
             f"{res.kv_transfer_bytes_per_request / 1e6:,.1f} MB of prompt KV cache per request over the fabric; "
             f"{res.kv_transfer_fabric_share:.1%} of its capacity in use."),
        ])
        _ui.altair(_pools_chart(res))
        st.caption("Each bar: the requests/s one pool sustains at full load; the line: what the pair serves, the "
                   "slower pool's rate (the faster pool idles the rest of its hours, which are paid for).")
        st.table(pd.DataFrame([
            {"pool": "prefill", "GPUs": f"{res.prefill_gpus:,}", "TP / EP / attention DP":
             f"{res.prefill_tensor_parallel} / {res.prefill_expert_parallel} / "
             f"{'yes' if res.prefill_attention_dp else 'no'}",
             "batch": f"{res.prefill_batch:,.1f} prompts per forward", "time": f"{res.prefill_seconds:.4g} s forward",
             "requests/s": f"{res.prefill_requests_per_second:,.2f}"},
            {"pool": "decode", "GPUs": f"{res.decode_gpus:,}", "TP / EP / attention DP":
             f"{res.decode_tensor_parallel} / {res.decode_expert_parallel} / "
             f"{'yes' if res.decode_attention_dp else 'no'}",
             "batch": f"{res.decode_batch:,} of {res.decode_max_batch:,} that fit", "time":
             f"{res.tpot_seconds * 1e3:,.1f} ms step ({res.bound})", "requests/s":
             f"{res.decode_requests_per_second:,.2f}"},
        ]), hide_index=True)
        st.caption("The batch-size chart is for one pool that both prefills and decodes; with pools, set the "
                   "decode batch per instance in the pools block.")


def _pools_chart(res):
    """The two pools' capacity in requests/s (the unit both share: each request is prefilled once and decoded
    once), the bounding pool in red, and the pair's rate as a rule."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame([
        {"pool": "prefill pool", "rps": res.prefill_requests_per_second, "bounds": res.bound_pool == "prefill",
         "tokens": f"{_ui.fmt(round(res.prefill_input_tokens_per_second))} input tokens/s"},
        {"pool": "decode pool", "rps": res.decode_requests_per_second, "bounds": res.bound_pool == "decode",
         "tokens": f"{_ui.fmt(round(res.decode_output_tokens_per_second))} output tokens/s"},
    ])
    pair = pd.DataFrame({"rps": [res.requests_per_second],
                         "label": [f"the pair serves {res.requests_per_second:,.1f} requests/s ({_bound_words(res)})"]})
    x = alt.X("rps:Q", title="requests/s at full load")
    bars = alt.Chart(frame, title="Which pool bounds: the slower pool sets the pair's rate").mark_bar().encode(
        x=x, y=alt.Y("pool:N", title=None, sort=["prefill pool", "decode pool"]),
        color=alt.condition("datum.bounds", alt.value("#d62728"), alt.value("#4c78a8")),
        tooltip=[alt.Tooltip("pool:N"), alt.Tooltip("rps:Q", format=",.2f", title="requests/s"),
                 alt.Tooltip("tokens:N", title="tokens/s")])
    rule = alt.Chart(pair).mark_rule(strokeDash=[4, 3], color="#333").encode(x=x, tooltip=["label:N"])
    text = rule.mark_text(align="left", dx=4, dy=-70, color="#333").encode(text="label:N")
    return (bars + rule + text).properties(height=180)


def _fleet(kw: dict, want: dict) -> None:
    """The cheapest rented fleet on this GPU for the same traffic (``billshape fleet --gpu``): replicas, rent and
    the utilization it implies, every provider and tier of the catalog searched."""
    from billshape.chains import FleetRequest

    fields = {k: kw[k] for k in ("model", "gpu", "input_tokens", "output_tokens") if kw.get(k) is not None}
    if kw.get("precision"):
        fields["precision"] = [kw["precision"]]
    fl = _ui.run(FleetRequest, **fields, **want)
    if fl is None:
        return
    b = fl.best
    st.markdown(f"**Rented as a fleet** (every provisioned GPU-hour billed, traffic over the shipped week's hours): "
                f"{b['replicas']} x {b['gpus_per_replica']} {b['gpu']} at {b['provider']} {b['tier']}")
    _ui.metrics([
        ("Fleet rent per month", _ui.fmt(b["usd_per_month"], "USD"), f"{_ui.fmt(b['usd_per_hour'], 'USD')} per hour."),
        ("Utilization", f"{b['utilization']:.0%}", "Traffic served / capacity paid for."),
        ("USD per million output tokens", _ui.fmt(b["usd_per_million_output_tokens"], "USD"),
         "All of the rent over the output tokens served."),
    ])
    st.caption(fl.explanation + " (`billshape fleet` searches every GPU.)")


def _utilization_chart(res):
    import altair as alt
    import numpy as np
    import pandas as pd

    from billshape.inference import usd_per_million_tokens

    grid = np.linspace(0.05, 1.0, 96)
    frame = pd.DataFrame({"utilization": grid,
                          "usd": usd_per_million_tokens(res.usd_per_hour, res.output_tokens_per_second, grid)})
    here = pd.DataFrame({"utilization": [res.utilization], "usd": [res.usd_per_million_output_tokens]})
    curve = alt.Chart(frame, title="Doubling utilization halves the cost per token").mark_line().encode(
        x=alt.X("utilization:Q", title="utilization", axis=alt.Axis(format="%")),
        y=alt.Y("usd:Q", title="USD per million output tokens", scale=alt.Scale(type="log"),
                axis=alt.Axis(format="$,.3~g")),
        tooltip=[alt.Tooltip("utilization:Q", format=".0%"), alt.Tooltip("usd:Q", format="$,.4f")],
    )
    point = alt.Chart(here).mark_point(size=140, filled=True, color="#d62728").encode(
        x="utilization:Q", y="usd:Q",
        tooltip=[alt.Tooltip("utilization:Q", format=".0%", title="your utilization"),
                 alt.Tooltip("usd:Q", format="$,.4f", title="USD / M tokens")])
    return (curve + point).properties(height=320)


def render() -> None:
    from billshape.chains import ServeRequest

    _ui.page_header("Serve", "What does a million tokens cost to serve?", "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        how = st.segmented_control("Throughput", HOW_THROUGHPUT, default=HOW_THROUGHPUT[0], key="serve_how",
                                   required=True, help="Give the measured throughput, or model it from the model "
                                                       "and the hardware (billshape's roofline serving model).")
    if how == HOW_THROUGHPUT[1]:
        _render_model(top, left, right)
        return
    with left:
        kw = _inputs()
    with top:
        res = _ui.run(ServeRequest, **kw)
    if res is None:
        return
    st.session_state["serve_usd_per_million_tokens"] = res.usd_per_million_output_tokens
    items = [
        ("USD per million output tokens", _ui.fmt(res.usd_per_million_output_tokens, "USD"),
         "Deployment $/hour / (output tokens/hour x utilization)."),
        ("Deployment per hour", _ui.fmt(res.usd_per_hour, "USD"), "GPUs x USD per GPU-hour."),
        ("USD per GPU-hour", _ui.fmt(res.usd_per_gpu_hour, "USD"), None),
    ]
    if res.usd_per_million_input_tokens is not None:
        items.insert(1, ("USD per million input tokens", _ui.fmt(res.usd_per_million_input_tokens, "USD"), None))
    with top:
        _ui.metrics(items)
    with right:
        _ui.altair(_utilization_chart(res))
    _ui.assumptions_table(res)
