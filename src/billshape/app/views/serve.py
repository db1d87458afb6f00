"""Serve page: one :class:`~billshape.chains.ServeRequest` run by the serve chain, whose fields pick the estimate
(:func:`billshape.chains.serving.mode`): cost per million tokens of a deployment from a given throughput, and how
it falls as utilization rises (:func:`billshape.inference.usd_per_million_tokens`, vectorised over utilization);
or, in "Model the throughput", the throughput, latency and cost that billshape's roofline serving model predicts
for a model on some GPUs, with the batch-size trade-off (the chain run per static batch) and the capacity for a
latency target (the same request with ``requests_per_second``).

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
    kw["gpus"] = c2.number_input("GPUs", min_value=1, value=MODEL_EXAMPLE["gpus"], step=1, key="serve_m_gpus",
                                 help="Whole GPUs, one tensor-parallel replica; >= what the weights need.")
    kw["precision"] = c1.selectbox("Precision", serving.WEIGHT_PRECISIONS,
                                   index=serving.WEIGHT_PRECISIONS.index(MODEL_EXAMPLE["precision"]),
                                   key="serve_m_precision", help="Weights and KV cache.")
    max_batch = c2.toggle("Max batch", value=True, key="serve_m_batch_max",
                          help="Continuous batching at the largest batch whose KV cache fits (max-load).")
    if not max_batch:
        kw["batch"] = c2.number_input("Batch", min_value=1, value=32, step=8, key="serve_m_batch",
                                      help="Sequences decoded together (static batch); a whole number >= 1.")
    c1, c2 = st.columns(2)
    kw["input_tokens"] = c1.number_input("Input tokens per request", min_value=0, value=MODEL_EXAMPLE["input_tokens"],
                                         step=100, key="serve_m_in", help="> 0.")
    kw["output_tokens"] = c2.number_input("Output tokens per request", min_value=0,
                                          value=MODEL_EXAMPLE["output_tokens"], step=100, key="serve_m_out",
                                          help="> 0.")
    with st.expander("Parallelism, KV cache, reasoning, prompt cache"):
        _advanced_inputs(kw)
    return kw


def _advanced_inputs(kw: dict) -> None:
    """The rest of the roofline request's fields: ``tp``, ``kv_precision``, ``ep``, ``dp_attention``,
    ``reasoning_multiplier``, ``cache_hit_rate``. Each is set only when it differs from the library's default, so
    the assumptions table says "default" or "user input" as the CLI would."""
    from billshape import serving

    gpus = int(kw["gpus"]) if float(kw["gpus"]) == int(kw["gpus"]) and kw["gpus"] >= 1 else 1
    sizes = [d for d in range(1, gpus + 1) if gpus % d == 0]
    c1, c2 = st.columns(2)
    # keyed by the GPU count: a new count starts again at the library's default (one replica of all the GPUs)
    tp = c1.selectbox("Tensor-parallel GPUs per replica", sizes, index=len(sizes) - 1, key=f"serve_m_tp_{gpus}",
                      help="GPUs that split each layer; GPUs / TP replicas serve side by side.")
    if tp != gpus:
        kw["tp"] = tp
    same = "same as weights"
    kv = c2.selectbox("KV cache precision", (same, *serving.KV_PRECISIONS), key="serve_m_kv",
                      help="A lower precision holds more sequences per GPU.")
    if kv != same:
        kw["kv_precision"] = kv
    if serving.architecture(kw["model"]).is_moe:
        ep = c1.selectbox("Expert-parallel GPUs per replica", sorted({1, tp}), key=f"serve_m_ep_{tp}",
                          help="MoE: 1 keeps every expert on every GPU; TP spreads whole experts.")
        if ep != 1:
            kw["ep"] = ep
            if c2.toggle("Attention data-parallel", value=False, key="serve_m_dp",
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
    with top:
        _ui.metrics([
            ("Output tokens/s", _ui.fmt(round(res.output_tokens_per_second)),
             f"Whole deployment, batch {res.batch:g} (largest that fits {res.max_batch:g})."),
            ("USD per million output tokens", _ui.fmt(res.usd_per_million_output_tokens, "USD"),
             "Decode share of the deployment's time."),
            ("USD per million input tokens", _ui.fmt(res.usd_per_million_input_tokens, "USD"),
             "Prefill share of the deployment's time."),
        ])
        _ui.metrics([
            ("TTFT", f"{res.ttft_seconds * 1e3:,.0f} ms", "Time to first token (prefill)."),
            ("TPOT", f"{res.tpot_seconds * 1e3:,.1f} ms", "Time per output token (one decode step)."),
            ("Bound", res.bound, "What limits a decode step: HBM bandwidth or compute."),
        ])
    with right:
        st.markdown(f"**{res.model}** ({res.params_total / 1e9:,.1f}B parameters, {res.params_active / 1e9:,.1f}B "
                    f"active) on **{res.gpus:g} x {res.gpu}** at {res.precision}: {res.weight_bytes / 1e9:,.0f} GB "
                    f"of weights, KV cache {res.kv_cache_bytes_per_token / 1e3:,.0f} kB per token · "
                    f"{_ui.fmt(res.usd_per_hour, 'USD')}/hour · {_ui.fmt(res.usd_per_request, 'USD')} per request")
        _ui.altair(_batch_chart(kw, res))
        st.caption("Blue: static batches (each sequence holds its whole context, so fewer fit); red: your setting "
                   "(with Max batch, continuous batching: sequences hold half their output on average).")
        st.subheader("Capacity for a latency target")
        want = _capacity_inputs()
        if want is not None:
            keys = ("model", "gpu", "precision", "kv_precision", "input_tokens", "output_tokens", "price", "provider",
                    "tier")
            cap = _ui.run(ServeRequest, **{k: kw[k] for k in keys if k in kw}, **want)
            if cap is not None:
                _ui.metrics([
                    ("Replicas", f"{cap.replicas:,}", f"{cap.tensor_parallel} GPUs each (the size that needs the "
                                                       "fewest GPUs in all), batch "
                                                       f"{cap.batch_per_replica:,} per replica."),
                    ("GPUs", f"{cap.gpus:,}", f"{cap.replica_requests_per_second:,.2f} requests/s per replica."),
                    ("USD per month", _ui.fmt(cap.usd_per_month, "USD") if cap.usd_per_month is not None else "-",
                     f"TPOT {cap.tpot_seconds * 1e3:,.1f} ms, TTFT {cap.ttft_seconds * 1e3:,.0f} ms at that batch."),
                ])
                _fleet(kw, want)
    _ui.assumptions_table(res)


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
