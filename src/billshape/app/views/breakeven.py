"""Build vs buy page: the volume above which building beats an API (a :class:`~billshape.chains.BreakevenRequest`
run by its chain), drawn as the two cost lines (:func:`billshape.decide.buy_cost_usd`,
:func:`billshape.decide.build_cost_usd`) crossing at the break-even volume; then the same request with a monthly
volume and months: the decision month by month over a horizon (volume growth, API price trend and step, discount
rate, crossover month, and the re-check at next year's API price).

Opens on the build-vs-buy chapter's example: the DeepSeek node's $0.30 per million tokens against a $1.10 API price with
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
EXAMPLE_SOURCE = "the build-vs-buy example of \"The Economics of AI\" (an own node at $0.30/M tokens vs a $1.10/M API, $100,000 fixed)"


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


HORIZON = {"volume_b": 10.0, "months": 24}  # example: 10 billion tokens a month for two years
FLAT, CUSTOM = "flat (1x per year)", "my factor"


def _horizon_inputs() -> tuple[dict, list]:
    """The horizon's fields of the :class:`~billshape.chains.BreakevenRequest` beyond p, c, F; and the catalog rows
    they came from."""
    from billshape import market

    kw: dict = {}
    rows: list = []
    c1, c2 = st.columns(2)
    kw["volume_tokens_per_month"] = c1.number_input(
        "Volume in month 1, billion tokens", min_value=0.0, value=HORIZON["volume_b"], step=1.0, key="hz_volume",
        help=">= 0.") * 1e9
    kw["months"] = c2.number_input("Months", min_value=1, max_value=240, value=HORIZON["months"], step=6,
                                   key="hz_months", help=">= 1.")
    kw["volume_growth_per_month"] = c1.number_input(
        "Volume growth, % per month", min_value=-99.9, value=0.0, step=1.0, key="hz_growth",
        help="Compound; > -100 %.") / 100
    kw["discount_rate_annual"] = c2.number_input("Discount rate, % per year", min_value=0.0, value=0.0, step=1.0,
                                                 key="hz_discount", help=">= 0; for the present value.") / 100
    trends = {t.name: t for t in market.trends().values() if t.applies_to.startswith("API price")}
    choice = st.selectbox("API price trend", [FLAT, *trends, CUSTOM], key="hz_trend",
                          help="Multiplier per year on the API price, from billshape's price-trend catalog.")
    if choice == CUSTOM:
        kw["api_price_annual_factor"] = st.number_input("API price factor per year", min_value=0.0, value=0.5,
                                                        step=0.1, key="hz_factor", help="> 0; 0.5 halves it a year.")
    elif choice in trends:
        kw["api_price_annual_factor"] = trends[choice].annual_factor
        rows.append(trends[choice].as_assumption())
        st.caption(f"x{trends[choice].annual_factor:.3g} per year ({trends[choice].source.split(',')[0]}, "
                   f"{trends[choice].as_of})")
    else:
        kw["api_price_annual_factor"] = 1.0
    kw["own_cost_annual_factor"] = st.number_input(
        "Own cost factor per year", min_value=0.0, value=1.0, step=0.05, key="hz_own_factor",
        help="> 0; e.g. 0.76 if your cost per token follows FLOP/$ (Epoch AI).")
    if st.toggle("A one-off API price change", key="hz_step_toggle",
                 help="A price cut or rise from one month on, e.g. x3 from month 13."):
        c1, c2 = st.columns(2)
        month = c1.number_input("From month", min_value=1, value=13, step=1, key="hz_step_month", help=">= 1.")
        factor = c2.number_input("Price x", min_value=0.0, value=0.5, step=0.1, key="hz_step_factor", help="> 0.")
        kw["api_price_steps"] = [f"{month}:{factor:g}"]
    return kw, rows


def _horizon_chart(hz):
    import altair as alt
    import pandas as pd

    rows = hz.monthly
    frame = pd.concat([
        pd.DataFrame({"month": [r["month"] for r in rows], "usd": [r["cumulative_api_usd"] for r in rows],
                      "option": "buy (API)"}),
        pd.DataFrame({"month": [r["month"] for r in rows], "usd": [r["cumulative_own_usd"] for r in rows],
                      "option": "build (own)"}),
    ])
    title = (f"Cumulative costs cross in month {hz.crossover_month}" if hz.crossover_month
             else "The cumulative costs never cross in the horizon")
    chart = alt.Chart(frame, title=title).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("month:Q", title="month", scale=alt.Scale(domain=[1, hz.months], nice=False)),
        y=alt.Y("usd:Q", title="cumulative cost, USD", axis=alt.Axis(format="$,.3~s")),
        color=alt.Color("option:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=["buy (API)", "build (own)"], range=["#e45756", "#4c78a8"])),
        tooltip=[alt.Tooltip("option:N"), alt.Tooltip("month:Q"), alt.Tooltip("usd:Q", format="$,.0f")],
    )
    if hz.crossover_month:
        r = rows[hz.crossover_month - 1]
        cross = pd.DataFrame({"month": [r["month"]], "usd": [r["cumulative_own_usd"]]})
        chart += alt.Chart(cross).mark_point(size=160, filled=True, color="black").encode(
            x="month:Q", y="usd:Q", tooltip=[alt.Tooltip("month:Q", title="crossover month")])
    return chart.properties(height=340)


def _horizon(api: float, own: float, fixed: float) -> None:
    from billshape.chains import BreakevenRequest

    st.divider()
    st.header("Over time", anchor="over-time")
    st.markdown("**Month by month: when does building pay, and does the answer survive next year's API price?**")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        kw, rows = _horizon_inputs()
    with top:
        hz = _ui.run(BreakevenRequest, api_usd_per_million_tokens=api, own_usd_per_million_tokens=own,
                     fixed_usd=fixed, **kw)
    if hz is None:
        return
    rc = hz.recheck
    with top:
        _ui.metrics([
            ("Decision", hz.decision, "Build when the present value of buy minus build is positive."),
            ("NPV of building", _ui.fmt(hz.npv_saving_usd, "USD"), "Discounted buy minus build costs."),
            ("Crossover", f"month {hz.crossover_month}" if hz.crossover_month else "none",
             "First month the cumulative build cost is at or below buying."),
            ("Next year's decision", rc["decision"],
             f"The same decision at next year's API price ({_ui.fmt(rc['api_usd_per_million_tokens'], 'USD')}/M)."),
            ("Break-even, year 2", f"{rc['break_even_tokens'] / 1e9:,.4g}B"
             if rc["break_even_tokens"] is not None else "none", "Billion tokens: F / (p - c) at next year's prices."),
        ])
        flips = rc["decision"] != hz.decision
        (st.warning if flips or hz.decision == "buy" else st.success)(
            hz.horizon_explanation[0].upper() + hz.horizon_explanation[1:])
    with right:
        _ui.altair(_horizon_chart(hz))
        last = hz.monthly[-1]
        st.caption(f"API price {_ui.fmt(hz.monthly[0]['api_usd_per_million_tokens'], 'USD')}/M in month 1, "
                   f"{_ui.fmt(last['api_usd_per_million_tokens'], 'USD')}/M in month {last['month']}; own cost "
                   f"{_ui.fmt(hz.monthly[0]['own_usd_per_million_tokens'], 'USD')}/M -> "
                   f"{_ui.fmt(last['own_usd_per_million_tokens'], 'USD')}/M. Totals: buy "
                   f"{_ui.fmt(hz.total_api_usd, 'USD')}, build {_ui.fmt(hz.total_own_usd, 'USD')}.")
    _ui.assumptions_table(hz.model_copy(update={"assumptions": list(hz.assumptions) + rows}), expanded=False)


def render() -> None:
    from billshape.chains import BreakevenRequest

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
        res = _ui.run(BreakevenRequest, api_usd_per_million_tokens=api, own_usd_per_million_tokens=own,
                      fixed_usd=fixed)
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
    _horizon(api, own, fixed)
