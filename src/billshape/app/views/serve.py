"""Serve page: cost per million tokens of a deployment (:func:`billshape.estimates.serving_cost`) and how it
falls as utilization rises (:func:`billshape.inference.usd_per_million_tokens`, vectorised over utilization).

Opens on seed 003's DeepSeek decode node: 8 GPUs at $2/GPU-hour decoding 14,800 tokens/s, about $0.30 per
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
EXAMPLE_SOURCE = "billshape seed 003 (DeepSeek's decode node: 8 H800 at $2/GPU-hour, 14,800 output tokens/s)"

HOW_PRICE = ("My price", "Catalog")


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
    from billshape.estimates import serving_cost

    _ui.page_header("Serve", "What does a million tokens cost to serve?", "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        kw = _inputs()
    with top:
        res = _ui.attempt(serving_cost, **kw)
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
