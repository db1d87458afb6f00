"""Train page: the bill of a training run (a :class:`~billshape.chains.TrainRequest` run by its chain), its
development iceberg, and the payback of that bill from users (a :class:`~billshape.chains.PaybackRequest`).

Opens on bria.ai's image-model example (280 A100 for 14 days at $2.5/GPU-hour: 94,080 GPU-hours, $235,200;
10,000 users at $10/month pay it back in 2.352 months) so a new user sees real figures without typing.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui

TITLE = "Train"
ICON = ":material/model_training:"
URL = "train"

# Example inputs the page opens with: seed 000 (bria.ai's image model: "280 A100 for 2 weeks", rented at
# lambdalabs.com for "$2.5 per hr"; "10k users forking over $10 each month"). These are a worked example,
# not defaults of the library: every library default shows in the assumptions table with its source.
EXAMPLE = {"gpu": "a100", "gpus": 280, "days": 14.0, "price": 2.5, "users": 10_000, "revenue": 10.0}
EXAMPLE_SOURCE = "bria.ai's image model (280 A100 for 2 weeks at $2.5 per GPU-hour; 10k users at $10/month)"

HOW_HOURS = ("GPUs × days", "GPU-hours", "6·N·D")
HOW_PRICE = ("My price", "Catalog", "Amortized")


def _inputs() -> dict:
    """The sidebar-free input column; returns the fields of the :class:`~billshape.chains.TrainRequest`."""
    from billshape import catalog

    names = [a.name for a in catalog.accelerators()]
    kw: dict = {}
    kw["gpu"] = st.selectbox("Accelerator", names, index=names.index(catalog.gpu(EXAMPLE["gpu"]).name), key="train_gpu",
                             help="From billshape's accelerator catalog (`billshape catalog gpus`).")
    how = st.segmented_control("Size of the run", HOW_HOURS, default=HOW_HOURS[0], key="train_how", required=True,
                               help="GPUs × days, total GPU-hours, or the compute 6 × N_active × D at an MFU.")
    if how == HOW_HOURS[0]:
        c1, c2 = st.columns(2)
        kw["gpus"] = c1.number_input("GPUs", min_value=0, value=EXAMPLE["gpus"], step=8, key="train_gpus",
                                     help="Accelerators in the cluster; > 0.")
        kw["days"] = c2.number_input("Days", min_value=0.0, value=EXAMPLE["days"], step=1.0, key="train_days",
                                     help="Wall-clock days of the run; > 0.")
    elif how == HOW_HOURS[1]:
        kw["gpu_hours"] = st.number_input("GPU-hours", min_value=0.0, value=2_788_000.0, step=1000.0, format="%.0f",
                                          key="train_gpu_hours", help="Accelerator-hours of the run; > 0.")
    else:
        c1, c2 = st.columns(2)
        params_b = c1.number_input("Parameters (billions)", min_value=0.0, value=7.0, step=1.0, key="train_params",
                                   help="Total parameters; > 0.")
        tokens_b = c2.number_input("Training tokens (billions)", min_value=0.0, value=2000.0, step=100.0,
                                   key="train_tokens", help="Tokens seen in training; > 0.")
        active_b = c1.number_input("Active parameters (billions, MoE)", min_value=0.0, value=None,
                                   placeholder="= parameters (dense)", key="train_active",
                                   help="Active parameters per token for a mixture of experts; <= parameters.")
        kw["mfu"] = c2.number_input("MFU", min_value=0.0, max_value=1.0, value=0.4, step=0.05, key="train_mfu",
                                    help="Model FLOPs utilization, in (0, 1].")
        kw["precision"] = st.selectbox("Precision (defines the peak)", ("bf16", "fp8", "fp4"), key="train_precision")
        kw["params"] = params_b * 1e9
        kw["tokens"] = tokens_b * 1e9
        kw["active_params"] = None if active_b is None else active_b * 1e9

    pricing = st.segmented_control("Price", HOW_PRICE, default=HOW_PRICE[0], key="train_pricing", required=True,
                                   help="Your rental price, a catalogued rental quote, or Epoch AI's amortised "
                                        "hardware + energy method.")
    if pricing == HOW_PRICE[0]:
        kw["price"] = st.number_input("USD per GPU-hour", min_value=0.0, value=EXAMPLE["price"], step=0.1,
                                      key="train_price", help="Rental price; > 0.")
    elif pricing == HOW_PRICE[1]:
        c1, c2 = st.columns(2)
        kw["provider"] = c1.selectbox("Provider", catalog.providers(), key="train_provider")
        kw["tier"] = c2.selectbox("Tier", catalog.TIERS, key="train_tier")
    else:
        kw["method"] = "amortized"
        c = catalog.constants()
        c1, c2, c3 = st.columns(3)
        kw["hardware_usd"] = c1.number_input("Chip price, USD", min_value=0.0, value=None, step=1000.0,
                                             placeholder="catalog", key="train_hw", help="> 0; empty: catalog price.")
        kw["usd_per_kwh"] = c2.number_input("USD per kWh", min_value=0.0, value=None, step=0.01, format="%.4f",
                                            placeholder=f"{c['electricity_usd_per_kwh'].value:g}", key="train_kwh",
                                            help=">= 0; empty: catalog default.")
        kw["pue"] = c3.number_input("PUE", min_value=0.0, value=None, step=0.05, placeholder=f"{c['datacenter_pue'].value:g}",
                                    key="train_pue", help="> 0; empty: catalog default.")

    with st.expander("Development iceberg (beside the final run)"):
        mult = catalog.constants()["rnd_compute_multiplier"].value
        kw["experiments_multiplier"] = st.number_input(
            "Experiments multiplier", min_value=0.0, value=None, step=0.1, placeholder=f"{mult:g} (Epoch AI)",
            key="train_mult", help="Total development compute / final run; empty: catalog default.")
        c1, c2 = st.columns(2)
        kw["staff_usd"] = c1.number_input("Staff, USD", min_value=0.0, value=0.0, step=10_000.0, format="%.0f", key="train_staff")
        kw["data_usd"] = c2.number_input("Data, USD", min_value=0.0, value=0.0, step=10_000.0, format="%.0f", key="train_data")
    with st.expander("Constant dollars"):
        kw["usd_year"] = st.number_input(
            "Dollars of year", min_value=0, value=None, step=1, placeholder="nominal (none)", key="train_usd_year",
            help="Also state the costs in dollars of this year (US CPI-U annual averages); empty: nominal only.")
    return kw


def _iceberg_chart(bill):
    import altair as alt
    import pandas as pd

    d = bill.development
    parts = ["final run", "experiments", "staff", "data"]
    frame = pd.DataFrame({"part": parts, "usd": [d.final_run_usd, d.experiments_usd, d.staff_usd, d.data_usd]})
    bars = alt.Chart(frame, title="The final run is the tip of the development bill").mark_bar().encode(
        y=alt.Y("part:N", sort=parts, title=None),
        # room on the right for the value labels
        x=alt.X("usd:Q", title="USD", axis=alt.Axis(format="$,.3~s"),
                scale=alt.Scale(domainMin=0, domainMax=float(frame["usd"].max()) * 1.2 or 1.0)),
        color=alt.Color("part:N", sort=parts, legend=None),
        tooltip=[alt.Tooltip("part:N"), alt.Tooltip("usd:Q", format="$,.0f")],
    )
    labels = bars.mark_text(align="left", dx=4).encode(text=alt.Text("usd:Q", format="$,.0f"), color=alt.value("#333"))
    return (bars + labels).properties(height=200)


def _payback_chart(res):
    import altair as alt
    import numpy as np
    import pandas as pd

    from billshape.business import cumulative_contribution_usd

    horizon = 2 * res.payback_months if res.pays_back and res.payback_months > 0 else 12.0
    months = np.linspace(0.0, horizon, 50)
    frame = pd.DataFrame({"month": months, "usd": cumulative_contribution_usd(months, res.monthly_contribution_usd),
                          "line": "cumulative contribution"})
    fixed = pd.DataFrame({"usd": [res.fixed_usd], "line": ["fixed cost"]})
    base = alt.Chart(frame, title="Contribution pays the fixed cost back where the lines cross")
    lines = base.mark_line().encode(
        x=alt.X("month:Q", title="months"), y=alt.Y("usd:Q", title="USD", axis=alt.Axis(format="$,.0f")),
        color=alt.Color("line:N", title=None, legend=alt.Legend(orient="bottom")))
    rule = alt.Chart(fixed).mark_rule(strokeDash=[6, 4]).encode(y="usd:Q", color=alt.Color("line:N"))
    chart = lines + rule
    if res.pays_back:
        point = pd.DataFrame({"month": [res.payback_months], "usd": [res.fixed_usd]})
        chart += alt.Chart(point).mark_point(size=120, filled=True, color="black").encode(
            x="month:Q", y="usd:Q", tooltip=[alt.Tooltip("month:Q", format=".3f", title="payback months")])
    return chart.properties(height=260)


def render() -> None:
    from billshape.chains import PaybackRequest, TrainRequest

    _ui.page_header("Train", "What does a training run cost?", "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        kw = _inputs()
    with top:
        bill = _ui.run(TrainRequest, **kw)
    if bill is not None:
        st.session_state["train_total_usd"] = bill.total_usd
        d = bill.development
        with top:
            _ui.metrics([
                ("GPU-hours", _ui.fmt(bill.gpu_hours), "Accelerator-hours of the final run."),
                ("USD per GPU-hour", _ui.fmt(bill.usd_per_gpu_hour, "USD"), f"Method: {bill.method}."),
                ("Final run", _ui.fmt(bill.total_usd, "USD"), "Compute + energy of the final training run."),
                ("Development total", _ui.fmt(d.total_usd, "USD"),
                 "Final run + experiments + staff + data (the iceberg, shown beside the run)."),
            ])
        with right:
            extra = []
            if bill.mfu is not None:
                extra.append(f"MFU **{bill.mfu:.3g}**")
            if bill.training_flops is not None:
                extra.append(f"training compute **{bill.training_flops:.3g} FLOP**")
            if bill.energy_kwh is not None:
                extra.append(f"energy **{_ui.fmt(bill.energy_kwh)} kWh** costing **{_ui.fmt(bill.energy_usd, 'USD')}**")
            if extra:
                st.markdown(" · ".join(extra))
            constant = getattr(bill, "constant_dollars", None)
            if constant is not None:
                for c in constant.conversions:
                    st.markdown(f"In **{constant.usd_year}** dollars ({constant.price_index.upper()}): {c.figure} "
                                f"{_ui.fmt(c.nominal_usd, 'USD')} of {c.cost_year} is "
                                f"**{_ui.fmt(c.constant_usd, 'USD')}** (x{c.factor:.4f})")
            _ui.altair(_iceberg_chart(bill))
        _ui.assumptions_table(bill)

    st.divider()
    st.header("Payback", anchor="payback")
    st.markdown("**How many months of users pay that bill back?**")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        choices = ("Final run", "Development total", "Other amount")
        what = st.segmented_control("Fixed cost to pay back", choices, default=choices[0], key="payback_what",
                                    required=True)
        if what == choices[2] or bill is None:
            fixed = st.number_input("Fixed cost, USD", min_value=0.0, value=235_200.0, step=10_000.0, format="%.0f",
                                    key="payback_fixed", help=">= 0.")
        else:
            fixed = bill.total_usd if what == choices[0] else bill.development.total_usd
        c1, c2 = st.columns(2)
        users = c1.number_input("Paying users", min_value=0, value=EXAMPLE["users"], step=1000, key="payback_users",
                                help="> 0.")
        revenue = c2.number_input("Revenue per user-month, USD", min_value=0.0, value=EXAMPLE["revenue"], step=1.0,
                                  key="payback_revenue", help=">= 0.")
        cost = st.number_input("Serving cost per user-month, USD", min_value=0.0, value=0.0, step=0.5,
                               key="payback_cost", help=">= 0; the marginal cost of serving one user for a month.")
    with top:
        res = _ui.run(PaybackRequest, fixed_usd=fixed, users=users, revenue_per_user_month_usd=revenue,
                      cost_per_user_month_usd=cost)
    if res is None:
        return
    with top:
        _ui.metrics([
            ("Payback", f"{res.payback_months:.4g} months" if res.pays_back else "never",
             "Fixed cost / (users x (revenue - cost) per month)."),
            ("Monthly contribution", _ui.fmt(res.monthly_contribution_usd, "USD"), None),
            ("Fixed cost", _ui.fmt(res.fixed_usd, "USD"), None),
        ])
    with right:
        (st.success if res.pays_back else st.warning)(res.explanation)
        _ui.altair(_payback_chart(res))
    _ui.assumptions_table(res, expanded=False)
