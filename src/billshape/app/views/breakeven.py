"""Build vs buy page: the volume above which building beats an API (:func:`billshape.decide.break_even`),
drawn as the two cost lines (:func:`billshape.decide.buy_cost_usd`, :func:`billshape.decide.build_cost_usd`)
crossing at the break-even volume.

Opens on seed 003's example: the DeepSeek node's $0.30 per million tokens against a $1.10 API price with
$100,000 fixed.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui

TITLE = "Build vs buy"
ICON = ":material/balance:"
URL = "build-vs-buy"

# Example inputs: seed 003, section 37.5, as in `billshape demo` (own cost = the DeepSeek decode node's
# $/M tokens at $2/GPU-hour; API price $1.10/M; $100,000 fixed).
EXAMPLE = {"api": 1.10, "own": 0.30, "fixed": 100_000.0}
EXAMPLE_SOURCE = "billshape seed 003 (an own node at $0.30/M tokens vs a $1.10/M API, $100,000 fixed)"


def _chart(res):
    import altair as alt
    import numpy as np
    import pandas as pd

    from billshape.decide import build_cost_usd, buy_cost_usd

    top = 2 * res.break_even_tokens if res.exists and res.break_even_tokens > 0 else 1e12
    volume = np.linspace(0.0, top, 80)
    p, c = res.api_usd_per_million_tokens / 1e6, res.own_usd_per_million_tokens / 1e6
    frame = pd.concat([
        pd.DataFrame({"billion tokens": volume / 1e9, "usd": buy_cost_usd(volume, p), "option": "buy (API)"}),
        pd.DataFrame({"billion tokens": volume / 1e9, "usd": build_cost_usd(volume, res.fixed_usd, c),
                      "option": "build (own)"}),
    ])
    title = "Building wins right of the crossing" if res.exists else "The lines never cross: buying is cheaper"
    chart = alt.Chart(frame, title=title).mark_line().encode(
        x=alt.X("billion tokens:Q", title="volume, billion tokens"),
        y=alt.Y("usd:Q", title="total cost, USD", axis=alt.Axis(format="$,.3~s")),
        color=alt.Color("option:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=["buy (API)", "build (own)"], range=["#e45756", "#4c78a8"])),
        tooltip=[alt.Tooltip("option:N"), alt.Tooltip("billion tokens:Q", format=",.4g"),
                 alt.Tooltip("usd:Q", format="$,.0f")],
    )
    if res.exists:
        cross = pd.DataFrame({"billion tokens": [res.break_even_tokens / 1e9],
                              "usd": buy_cost_usd([res.break_even_tokens], p)})
        chart += alt.Chart(cross).mark_point(size=140, filled=True, color="black").encode(
            x="billion tokens:Q", y="usd:Q",
            tooltip=[alt.Tooltip("billion tokens:Q", format=",.4g", title="break-even, billion tokens")])
    return chart.properties(height=340)


def render() -> None:
    from billshape.decide import break_even

    _ui.page_header("Build vs buy", "Above what volume does running your own model beat an API?",
                    "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        api = st.number_input("API price p, USD per million tokens", min_value=0.0, value=EXAMPLE["api"], step=0.1,
                              key="be_api", help="> 0.")
        own_default = EXAMPLE["own"]
        serve_cost = st.session_state.get("serve_usd_per_million_tokens")
        use_serve = False
        if serve_cost is not None:
            use_serve = st.checkbox(f"Use the Serve page's cost ({_ui.fmt(serve_cost, 'USD')}/M)",
                                    key="be_use_serve", help="The $/M output tokens the Serve page computed.")
        if use_serve:
            own = serve_cost
        else:
            own = st.number_input("Own marginal cost c, USD per million tokens", min_value=0.0, value=own_default,
                                  step=0.05, key="be_own", help=">= 0.")
        fixed = st.number_input("Fixed cost F of building, USD", min_value=0.0, value=EXAMPLE["fixed"], step=10_000.0, format="%.0f",
                                key="be_fixed", help=">= 0: standing up and reserving capacity, training, staff.")
        st.caption("Building wins once volume V > F / (p - c); only when c < p. API prices fall over time, "
                   "so re-check against next year's price.")
    with top:
        res = _ui.attempt(break_even, api, own, fixed)
    if res is None:
        return
    with top:
        _ui.metrics([
            ("Break-even volume", f"{res.break_even_tokens / 1e9:,.4g} billion tokens" if res.exists else "none",
             "F / (p - c)."),
            ("Saving per million tokens", _ui.fmt(res.margin_usd_per_million_tokens, "USD"), "p - c."),
            ("Fixed cost", _ui.fmt(res.fixed_usd, "USD"), None),
        ])
        (st.success if res.exists else st.warning)(res.explanation)
    with right:
        _ui.altair(_chart(res))
    _ui.assumptions_table(res)
