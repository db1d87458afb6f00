"""Capacity page: the cheapest mix of reserved, on-demand and spot GPUs for an hourly demand profile (a
:class:`~billshape.chains.CapacityRequest` run by its chain; the profile for the chart read by
:func:`billshape.decide.read_demand` from the same source).

Opens on billshape's example week (``examples/demand_week.csv``, shipped as ``billshape/data/demand_week.csv``)
at $1.90 reserved and $3.90 on-demand per GPU-hour, as in the CLI's capacity example.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui

TITLE = "Capacity"
ICON = ":material/stacked_bar_chart:"
URL = "capacity"

EXAMPLE_FILE = "demand_week.csv"  # in billshape.data: the repository's examples/demand_week.csv with sources
EXAMPLE_DEMAND = "example-week"  # its shipped name, which every reader of a demand source takes
# Example prices: the CLI's capacity example: $1.90 reserved, $3.90 on-demand per GPU-hour;
# spot at $1.20 with one preemption every 5 hours costing 10 minutes.
EXAMPLE = {"reserved": 1.9, "on_demand": 3.9, "spot": 1.2, "interruptions": 0.2, "minutes": 10.0}
EXAMPLE_SOURCE = "billshape's example week of hourly demand, $1.90 reserved vs $3.90 on-demand per GPU-hour"

HOW_DEMAND = ("Example week", "Upload CSV")
HOW_PRICE = ("My prices", "Catalog")


def upload_source(name: str, data: bytes):
    """An upload as a demand source: its bytes in a file object named as the upload, so that messages and the
    assumptions name the upload (no temporary file)."""
    import io
    from pathlib import Path

    source = io.BytesIO(data)
    source.name = Path(name).name
    return source


def read_upload(name: str, data: bytes):
    """Read an uploaded demand CSV with the library's reader; errors name the upload."""
    from billshape.decide import read_demand

    return read_demand(upload_source(name, data))


def read_example():
    from billshape.decide import read_demand

    return read_demand(EXAMPLE_DEMAND)


def _demand() -> tuple | None:
    """``(source, (hours, gpus, interruptible), is_example)``: the source the request reads, and its profile (read
    once here, to chart it and to show a bad upload's message before any price is asked for)."""
    how = st.segmented_control("Demand", HOW_DEMAND, default=HOW_DEMAND[0], key="cap_demand", required=True,
                               help="Hourly GPUs needed: CSV with columns hour,gpus[,interruptible_gpus].")
    if how == HOW_DEMAND[0]:
        st.caption("A synthetic week: 8 GPUs of serving, a weekday daytime peak of up to +12, and a nightly "
                   "interruptible batch job of 6 GPUs.")
        return EXAMPLE_DEMAND, read_example(), True
    up = st.file_uploader("Demand CSV: hour,gpus[,interruptible_gpus]", type=["csv"], key="cap_upload",
                          help="Consecutive integer hours; GPU counts >= 0; interruptible_gpus <= gpus; "
                               "# lines are comments.")
    if up is None:
        st.info("Upload a CSV to plan for it.")
        return None
    got = _ui.attempt(read_upload, up.name, up.getvalue())
    return None if got is None else (upload_source(up.name, up.getvalue()), got, False)


def _prices() -> tuple[dict, list]:
    """The prices and spot fields of the :class:`~billshape.chains.CapacityRequest`, and the catalog rows they
    came from."""
    from billshape import catalog

    kw: dict = {}
    rows: list = []
    pricing = st.segmented_control("Prices", HOW_PRICE, default=HOW_PRICE[0], key="cap_pricing", required=True,
                                   help="Your prices, or catalogued quotes for one accelerator at one provider.")
    spot = st.toggle("Run interruptible work on spot", key="cap_spot_toggle",
                     help="The interruptible_gpus column may run on spot, inflated by the preemption overhead.")
    if pricing == HOW_PRICE[0]:
        c1, c2 = st.columns(2)
        kw["reserved_usd_per_gpu_hour"] = c1.number_input("Reserved, USD/GPU-hour", min_value=0.0,
                                                          value=EXAMPLE["reserved"], step=0.1, key="cap_reserved",
                                                          help="> 0; paid every hour of the period.")
        kw["on_demand_usd_per_gpu_hour"] = c2.number_input("On-demand, USD/GPU-hour", min_value=0.0,
                                                           value=EXAMPLE["on_demand"], step=0.1, key="cap_on_demand",
                                                           help="> 0; paid only in the hours used.")
        if spot:
            kw["spot_usd_per_gpu_hour"] = st.number_input("Spot, USD/GPU-hour", min_value=0.0, value=EXAMPLE["spot"],
                                                          step=0.1, key="cap_spot", help="> 0.")
    else:
        names = [a.name for a in catalog.accelerators()]
        c1, c2 = st.columns(2)
        gpu = c1.selectbox("Accelerator", names, index=names.index(catalog.gpu("h100").name), key="cap_gpu")
        provider = c2.selectbox("Provider", catalog.providers(), key="cap_provider")
        term = st.selectbox("Reserved term", ("reserved-1y", "reserved-3y"), key="cap_term")
        tiers = [("reserved_usd_per_gpu_hour", term), ("on_demand_usd_per_gpu_hour", "on-demand")]
        if spot:
            tiers.append(("spot_usd_per_gpu_hour", "spot"))
        for arg, tier in tiers:
            quote = _ui.attempt(catalog.price, gpu, provider, tier)
            if quote is None:
                return {}, []
            kw[arg] = quote.usd_per_gpu_hour
            rows.append(quote.assumption(f"{quote.gpu} {quote.provider} {tier} price", quote.usd_per_gpu_hour,
                                         "USD per GPU-hour"))
        st.caption(" · ".join(f"{r.name.split(' ', 2)[2]}: **{_ui.fmt(r.value, 'USD')}**" for r in rows))
    if spot:
        c1, c2 = st.columns(2)
        kw["spot_interruptions_per_hour"] = c1.number_input(
            "Preemptions per hour", min_value=0.0, value=EXAMPLE["interruptions"], step=0.05, key="cap_interrupts",
            help=">= 0; with minutes lost, below 60 minutes lost per hour.")
        kw["checkpoint_minutes"] = c2.number_input(
            "Minutes lost per preemption", min_value=0.0, value=EXAMPLE["minutes"], step=1.0, key="cap_minutes",
            help=">= 0: restore from the last checkpoint and redo the work since it.")
    return kw, rows


def _demand_chart(hours, gpus, interruptible, res):
    import altair as alt
    import numpy as np
    import pandas as pd

    from billshape.decide_capacity import firm_demand_gpus

    firm = firm_demand_gpus(gpus, interruptible)
    parts = ["firm", "interruptible (on spot)" if res.uses_spot else "interruptible"]
    frame = pd.DataFrame({"hour": np.concatenate([hours, hours]), "gpus": np.concatenate([firm, interruptible]),
                          "part": np.repeat(parts, len(hours))})
    area = alt.Chart(frame, title="Reserve the base (dashed), burst the peaks on on-demand").mark_area(
        interpolate="step-after", opacity=0.75).encode(
        x=alt.X("hour:Q", title="hour of the profile", scale=alt.Scale(nice=False)),
        y=alt.Y("gpus:Q", title="GPUs", stack=True),
        color=alt.Color("part:N", title=None, sort=parts, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=parts, range=["#9ecae9", "#f2cf5b"])),
        tooltip=[alt.Tooltip("hour:Q"), alt.Tooltip("part:N"), alt.Tooltip("gpus:Q", format=",.4g")],
    )
    level = pd.DataFrame({"gpus": [res.reserved_gpus], "label": [f"reserved: {res.reserved_gpus:,.4g} GPUs"]})
    rule = alt.Chart(level).mark_rule(color="#d62728", strokeWidth=2, strokeDash=[6, 4]).encode(y="gpus:Q")
    text = alt.Chart(level).mark_text(align="left", dx=4, dy=-7, color="#d62728", fontWeight="bold").encode(
        y="gpus:Q", x=alt.value(0), text="label:N")
    return (area + rule + text).properties(height=340)


def _cost_chart(res):
    import altair as alt
    import pandas as pd

    b = res.breakdown
    parts = ["reserved", "on-demand", "spot"]
    plans = ["this plan", "all on-demand"]
    frame = pd.DataFrame({
        "plan": ["this plan"] * 3 + ["all on-demand"],
        "part": parts + ["on-demand"],
        "rank": [0, 1, 2, 1],
        "usd": [b["reserved_usd"], b["on_demand_usd"], b["spot_usd"], res.on_demand_only_usd],
    })
    y = alt.Y("plan:N", title=None, scale=alt.Scale(domain=plans))
    bars = alt.Chart(frame, title="Cost over the profile").mark_bar(height=22).encode(
        y=y,
        x=alt.X("sum(usd):Q", title="USD", stack="zero", axis=alt.Axis(format="$,.3~s"),
                scale=alt.Scale(domain=[0, res.on_demand_only_usd * 1.2 or 1.0])),
        color=alt.Color("part:N", title=None, sort=parts, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=parts, range=["#4c78a8", "#e45756", "#f2cf5b"])),
        order=alt.Order("rank:Q"),
        tooltip=[alt.Tooltip("plan:N"), alt.Tooltip("part:N"), alt.Tooltip("sum(usd):Q", format="$,.0f")],
    )
    totals = pd.DataFrame({"plan": plans, "usd": [res.total_usd, res.on_demand_only_usd]})
    labels = alt.Chart(totals).mark_text(align="left", dx=4, color="#333").encode(
        y=y, x="usd:Q", text=alt.Text("usd:Q", format="$,.0f"))
    return (bars + labels).properties(height=230)


def render() -> None:
    from billshape.chains import CapacityRequest

    _ui.page_header("Capacity", "How many GPUs should you reserve, and what should burst on on-demand or spot?",
                    "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        demand = _demand()
        kw, rows = _prices()
        st.caption("Reserve up to the level where the share of hours above it equals reserved / on-demand "
                   "price; burst the rest ('The Economics of AI', section 37.4).")
    if demand is None or not kw:
        return
    source, (hours, gpus, interruptible), is_example = demand
    with top:
        res = _ui.run(CapacityRequest, demand=source, **kw)
    if res is None:
        return
    b = res.breakdown
    with top:
        _ui.metrics([
            ("Reserved GPUs", _ui.fmt(res.reserved_gpus), f"Demand is above it in "
                                                         f"{b['share_of_hours_above_reserved']:.1%} of hours."),
            ("Total cost", _ui.fmt(res.total_usd, "USD"), f"Over {res.hours} hours."),
            ("All on-demand", _ui.fmt(res.on_demand_only_usd, "USD"), None),
            ("Saved", f"{res.saving_fraction:.1%}", "1 - total / all on-demand."),
        ])
        st.success(res.explanation[0].upper() + res.explanation[1:])
    with right:
        _ui.altair(_demand_chart(hours, gpus, interruptible, res))
        _ui.altair(_cost_chart(res))
        util = b["reserved_utilization"]
        st.caption(f"Reserved GPUs busy {util:.1%} of their hours · on-demand {_ui.fmt(b['on_demand_gpu_hours'])} "
                   f"GPU-hours · spot {_ui.fmt(b['spot_gpu_hours'])} GPU-hours "
                   f"(overhead x{b['spot_overhead_factor']:.3g})" if util is not None else
                   "Nothing reserved: every hour on on-demand or spot.")
    extra = list(rows)  # the catalogued prices, and the example profile's source
    if is_example:
        from billshape.catalog import read_rows
        from billshape.results import Assumption

        first = read_rows(EXAMPLE_FILE)[0]
        extra.append(Assumption(name="example demand profile", value=f"{res.hours} hours", unit=None,
                                source=first["source"], as_of=first["as_of"]))
    _ui.assumptions_table(res.model_copy(update={"assumptions": list(res.assumptions) + extra}))
