"""Altair charts of a plan: cost stack, margin per user (both views), cumulative cash, payback, tornado,
build vs buy."""

from __future__ import annotations

import math
from typing import Any

import altair as alt

from billshape.present.format import share_text  # noqa: F401  (re-exported)

WIDTH = 560
HEIGHT = 260
COLORS = {
    "inference": "#4C78A8", "other variable": "#9ECAE9", "fixed (staff, monitoring, ...)": "#F58518",
    "training (amortised)": "#E45756", "self-hosting set-up (amortised)": "#FF9DA6",
}


def _money_axis(title: str) -> alt.Axis:
    return alt.Axis(title=title, format="$~s", labelExpr="replace(datum.label, 'G', 'B')")


def cost_stack(res) -> alt.Chart:
    """Monthly costs (P50) stacked by kind, with the revenue line over them."""
    parts = [("inference", "inference_usd"), ("other variable", "variable_usd"),
             ("fixed (staff, monitoring, ...)", "fixed_usd"), ("training (amortised)", "training_amortization_usd"),
             ("self-hosting set-up (amortised)", "setup_amortization_usd")]
    present = [(label, key) for label, key in parts if any(abs(r[key]) > 0 for r in res.monthly)]
    rows = [{"month": r["month"], "cost": label, "usd": r[key], "order": i}
            for r in res.monthly for i, (label, key) in enumerate(present)]
    rev = [{"month": r["month"], "usd": r["revenue_usd"], "series": "revenue"} for r in res.monthly]
    domain = [label for label, _ in present]
    area = alt.Chart(alt.Data(values=rows)).mark_area(opacity=0.85).encode(
        x=alt.X("month:Q", title="month", scale=alt.Scale(domain=[1, res.horizon_months], nice=False)),
        y=alt.Y("usd:Q", stack="zero", axis=_money_axis("USD per month (P50)")),
        color=alt.Color("cost:N", title="cost", scale=alt.Scale(domain=domain, range=[COLORS[d] for d in domain]),
                        legend=alt.Legend(orient="bottom", columns=3)),
        order=alt.Order("order:Q"),
        tooltip=[alt.Tooltip("month:Q"), alt.Tooltip("cost:N"), alt.Tooltip("usd:Q", format="$,.0f")],
    )
    line = alt.Chart(alt.Data(values=rev)).mark_line(color="black", strokeWidth=2).encode(
        x="month:Q", y="usd:Q", tooltip=[alt.Tooltip("month:Q"), alt.Tooltip("usd:Q", title="revenue", format="$,.0f")])
    label = alt.Chart(alt.Data(values=[rev[-1]])).mark_text(align="right", dy=-8, fontWeight="bold").encode(
        x="month:Q", y="usd:Q", text=alt.value("revenue"))
    return (area + line + label).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title("Where the money goes, month by month",
                        subtitle="P50 monthly costs stacked by kind; the black line is revenue"))


def _band(res, key: str, title: str, subtitle: str | list[str], color: str, y_domain) -> alt.LayerChart:
    rows = [{"month": b["month"], "p10": b[f"{key}_p10"], "p50": b[f"{key}_p50"], "p90": b[f"{key}_p90"]}
            for b in res._bands if b["month"] > 0]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("month:Q", title="month", scale=alt.Scale(domain=[1, res.horizon_months], nice=False)))
    band = base.mark_area(opacity=0.25, color=color).encode(
        y=alt.Y("p10:Q", title="USD per user-month", scale=alt.Scale(domain=y_domain), axis=alt.Axis(format="$,.2f")), y2="p90:Q")
    line = base.mark_line(color=color, strokeWidth=2.5).encode(
        y="p50:Q", tooltip=[alt.Tooltip("month:Q"), alt.Tooltip("p10:Q", format="$,.2f"),
                            alt.Tooltip("p50:Q", format="$,.2f"), alt.Tooltip("p90:Q", format="$,.2f")])
    zero = alt.Chart(alt.Data(values=[{"y": 0}])).mark_rule(color="#666", strokeDash=[4, 3]).encode(y="y:Q")
    return (band + line + zero).properties(width=WIDTH // 2 - 20, height=HEIGHT,
                                           title=alt.Title(title, subtitle=subtitle))


def margins(res) -> alt.HConcatChart:
    """Both views of unit economics side by side, on the same scale (seed 001)."""
    vals = [b[f"{k}_{q}"] for b in res._bands if b["month"] > 0 for k in ("contribution_margin_per_user_usd",
                                                       "fully_loaded_margin_per_user_usd") for q in ("p10", "p90")]
    lo, hi = min(vals + [0.0]), max(vals + [0.0])
    pad = 0.05 * (hi - lo or 1.0)
    dom = [lo - pad, hi + pad]
    left = _band(res, "contribution_margin_per_user_usd", "Contribution margin per user (marginal view)",
                 ["revenue - inference - other variable costs", "Do I make money on one more user?"], "#4C78A8", dom)
    right = _band(res, "fully_loaded_margin_per_user_usd", "Fully loaded margin per user",
                  ["... - fixed costs - amortised training and set-up", "Do the users pay for the whole business?"],
                  "#E45756", dom)
    return alt.hconcat(left, right, spacing=30).properties(
        title=alt.Title("Margin per user-month: both views (P50 line, P10-P90 band)", anchor="start", fontSize=15))


def cumulative_cash(res) -> alt.LayerChart:
    rows = [{"month": b["month"], "p10": b["cumulative_cash_usd_p10"], "p50": b["cumulative_cash_usd_p50"],
             "p90": b["cumulative_cash_usd_p90"]} for b in res._bands]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("month:Q", title="month", scale=alt.Scale(domain=[0, res.horizon_months], nice=False)))
    band = base.mark_area(opacity=0.25, color="#54A24B").encode(y=alt.Y("p10:Q", axis=_money_axis("cumulative cash (USD)")),
                                                                y2="p90:Q")
    line = base.mark_line(color="#2F6B2A", strokeWidth=2.5).encode(
        y="p50:Q", tooltip=[alt.Tooltip("month:Q"), alt.Tooltip("p10:Q", format="$,.0f"),
                            alt.Tooltip("p50:Q", format="$,.0f"), alt.Tooltip("p90:Q", format="$,.0f")])
    zero = alt.Chart(alt.Data(values=[{"y": 0}])).mark_rule(color="#666", strokeDash=[4, 3]).encode(y="y:Q")
    return (band + line + zero).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title("Cumulative cash (training and set-up paid at month 0)",
                        subtitle="P50 line, P10-P90 band; it crosses zero at payback"))


def payback(res) -> alt.Chart:
    """Histogram of the payback month over the samples, with 'never (within the horizon)' as its own bar.

    The histogram's shape comes from the payback months kept on the result (the first samples drawn, at most
    5,000, to keep the report small); its bars are scaled so that they and the 'never' bar add up to 1, the
    'never' share being the result's ``probability_never_pays_back`` over ALL samples (as in the summary).
    """
    kept = res._payback_samples
    finite = [x for x in kept if x is not None]
    H = res.horizon_months
    if res.samples == 1 or len(kept) == 1:
        x = finite[0] if finite else None
        text = f"pays back at month {x:.4g}" if x is not None else f"never pays back within {H} months"
        rows = [{"x": x if x is not None else H, "text": text}]
        height = HEIGHT // 2
        rule = alt.Chart(alt.Data(values=rows)).mark_rule(color="#72B7B2", strokeWidth=4).encode(
            x=alt.X("x:Q", title="payback month", scale=alt.Scale(domain=[0, H])))
        right_side = (x if x is not None else H) > 0.6 * H  # label on the side with room
        label = alt.Chart(alt.Data(values=rows)).mark_text(
            align="right" if right_side else "left", dx=-10 if right_side else 10, baseline="middle",
            fontSize=16, fontWeight="bold").encode(x="x:Q", y=alt.value(height / 2), text="text:N")
        return (rule + label).properties(width=WIDTH, height=height, title=alt.Title(
            "Payback: when the cumulative cash turns non-negative for good",
            subtitle="a deterministic plan (no uncertain inputs): one payback month"))
    never_share = float(res.probability_never_pays_back)
    width = max(H / 40.0, 0.25) if finite and max(finite) - min(finite) > 1e-9 else 0.25
    rows = []
    if finite:
        lo = math.floor(min(finite) / width) * width
        counts: dict[float, int] = {}
        for x in finite:
            k = lo + math.floor((x - lo) / width) * width
            counts[k] = counts.get(k, 0) + 1
        scale = (1.0 - never_share) / len(finite)
        rows = [{"start": k, "end": k + width, "share": c * scale, "label": "pays back"} for k, c in sorted(counts.items())]
    if len(kept) < res.samples:
        shape = f"share of all {res.samples:,} samples by payback month (bar shapes from the first {len(kept):,} drawn)"
    else:
        shape = f"share of {res.samples:,} samples by payback month"
    title = alt.Title("Payback: when the cumulative cash turns non-negative for good",
                      subtitle=[shape, f"never within {H} months: {share_text(never_share)} of {res.samples:,} samples"])
    bars = alt.Chart(alt.Data(values=rows)).mark_bar(color="#72B7B2").encode(
        x=alt.X("start:Q", title="payback month", scale=alt.Scale(domain=[0, H + 0.0001]) if not finite else alt.Undefined),
        x2="end:Q", y=alt.Y("share:Q", axis=alt.Axis(format="%", title="share of samples")), y2=alt.datum(0),
        tooltip=[alt.Tooltip("start:Q", format=".2f"), alt.Tooltip("share:Q", format=".1%")])
    chart = bars.properties(width=WIDTH - 120, height=HEIGHT)
    nv_rows = [{"what": f"never (> {H} mo)", "share": never_share, "text": share_text(never_share)}]
    nv_base = alt.Chart(alt.Data(values=nv_rows)).encode(
        x=alt.X("what:N", title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share:Q", axis=alt.Axis(format="%", title=None), scale=alt.Scale(domain=[0, 1])))
    nv_bar = nv_base.mark_bar(color="#B279A2").encode(tooltip=[alt.Tooltip("share:Q", format=".2%")])
    nv_text = nv_base.mark_text(baseline="bottom", dy=-4, fontWeight="bold").encode(text="text:N")
    nv = (nv_bar + nv_text).properties(width=90, height=HEIGHT)
    return alt.hconcat(chart, nv, spacing=10).properties(title=title)


def tornado(res) -> alt.Chart | None:
    rows = res.sensitivity
    if not rows:
        return None
    base = rows[0]["base"]
    data = []
    for i, r in enumerate(rows[:12]):
        label = r["input"]
        for side, key, q in (("input at its P10", "at_input_p10", "input_p10"), ("input at its P90", "at_input_p90", "input_p90")):
            data.append({"input": label, "rank": i, "side": side, "lo": min(base, r[key]), "hi": max(base, r[key]),
                         "outcome": r[key], "input_value": r[q]})
    order = [r["input"] for r in rows[:12]]
    bars = alt.Chart(alt.Data(values=data)).mark_bar(opacity=0.9).encode(
        y=alt.Y("input:N", sort=order, title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("lo:Q", axis=_money_axis("NPV (USD)")), x2="hi:Q",
        color=alt.Color("side:N", title=None, scale=alt.Scale(range=["#4C78A8", "#F58518"]),
                        legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("input:N"), alt.Tooltip("side:N"), alt.Tooltip("input_value:Q", format=",.4g"),
                 alt.Tooltip("outcome:Q", title="NPV", format="$,.0f")],
    )
    rule = alt.Chart(alt.Data(values=[{"x": base}])).mark_rule(color="black").encode(x="x:Q")
    return (bars + rule).properties(
        width=WIDTH - 200, height=max(24 * len(order), 60),
        title=alt.Title("What moves the NPV most (tornado)",
                        subtitle=f"one input at a time from its P10 to its P90, all others at their P50 (NPV there: ${base:,.0f})"))


def build_vs_buy(res) -> alt.LayerChart | None:
    b = res.build_vs_buy
    if not b:
        return None
    rows = []
    for p in b["curve"]:
        rows.append({"tokens": p["tokens"], "usd": p["buy_usd"], "option": f"buy: API ({b['api_route']})"})
        rows.append({"tokens": p["tokens"], "usd": p["build_usd"], "option": f"build: self-host ({b['self_hosted_route']})"})
    lines = alt.Chart(alt.Data(values=rows)).mark_line(strokeWidth=2.5).encode(
        x=alt.X("tokens:Q", axis=alt.Axis(title="tokens over the horizon", format="~s")),
        y=alt.Y("usd:Q", axis=_money_axis("total cost (USD)")),
        color=alt.Color("option:N", title=None, scale=alt.Scale(range=["#4C78A8", "#E45756"]),
                        legend=alt.Legend(orient="bottom")))
    marks = [{"tokens": b["scenario_lifetime_tokens"], "what": "this plan's volume (P50)"}]
    if b["break_even_tokens"] is not None:
        marks.append({"tokens": b["break_even_tokens"], "what": "break-even V* = F / (p - c)"})
    rules = alt.Chart(alt.Data(values=marks)).mark_rule(strokeDash=[5, 3], color="#444").encode(
        x="tokens:Q", tooltip=[alt.Tooltip("what:N"), alt.Tooltip("tokens:Q", format=",.3s")])
    text = alt.Chart(alt.Data(values=marks)).mark_text(align="left", dx=4, dy=-6, angle=0, baseline="bottom").encode(
        x="tokens:Q", y=alt.value(14), text="what:N")
    sub = (f"API ${b['api_usd_per_million_tokens']:.3g}/M tokens vs own ${b['own_usd_per_million_tokens']:.3g}/M "
           f"+ ${b['fixed_usd']:,.0f} fixed (set-up + standing cost over the horizon)")
    return (lines + rules + text).properties(
        width=WIDTH, height=HEIGHT, title=alt.Title("Build vs buy: total cost by volume", subtitle=sub))


def charts(res) -> dict[str, Any]:
    """Every chart of a plan's report, by name (absent ones are left out)."""
    out = {
        "cost_stack": cost_stack(res),
        "margin_per_user": margins(res),
        "cumulative_cash": cumulative_cash(res),
        "payback": payback(res),
        "tornado": tornado(res),
        "build_vs_buy": build_vs_buy(res),
    }
    return {k: v for k, v in out.items() if v is not None}


def forecast_band(fc) -> alt.LayerChart:
    """A usage forecast (:class:`billshape.usage.forecast.Forecast`): the ledger's daily spend (the last 60 days)
    and the forecast's daily P10-P90 band with its P50 line."""
    hist = [{"day": d["day"], "usd": d["actual_usd"]} for d in fc.daily if "actual_usd" in d]
    fut = [d for d in fc.daily if "p50" in d]
    x = alt.X("day:T", title="day (UTC)")
    actual = alt.Chart(alt.Data(values=hist)).mark_line(color="#4C78A8", strokeWidth=2).encode(
        x=x, y=alt.Y("usd:Q", axis=_money_axis("USD per day")),
        tooltip=[alt.Tooltip("day:T"), alt.Tooltip("usd:Q", title="actual", format="$,.2f")])
    layers = [actual]
    if fut:
        base = alt.Chart(alt.Data(values=fut)).encode(x=x)
        layers += [base.mark_area(opacity=0.3, color="#F58518").encode(y="p10:Q", y2="p90:Q"),
                   base.mark_line(color="#F58518", strokeDash=[4, 3], strokeWidth=2).encode(
                       y="p50:Q", tooltip=[alt.Tooltip("day:T"), alt.Tooltip("p10:Q", format="$,.2f"),
                                           alt.Tooltip("p50:Q", format="$,.2f"), alt.Tooltip("p90:Q", format="$,.2f")])]
    t = fc.total
    return alt.layer(*layers).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title(f"Spend forecast to {fc.period_end}: P50 ${t['p50']:,.2f} (P10 ${t['p10']:,.2f}, P90 "
                        f"${t['p90']:,.2f})", subtitle="blue: actual daily spend; orange: forecast P50 and P10-P90 band"))


def backtest_chart(bt) -> alt.LayerChart:
    """A usage forecast backtest (:class:`billshape.usage.forecast.Backtest`): each replayed month's actual spend
    against its forecast P10-P90 band, per group."""
    rows = [{"month": r["month"], "key": r["key"], "actual": r["actual_usd"], "p10": r["p10"], "p50": r["p50"],
             "p90": r["p90"]} for r in bt.trials]
    base = alt.Chart(alt.Data(values=rows)).encode(x=alt.X("month:O", title="month"),
                                                  color=alt.Color("key:N", title="group"))
    rule = base.mark_rule(strokeWidth=6, opacity=0.35).encode(y=alt.Y("p10:Q", axis=_money_axis("USD per month")), y2="p90:Q")
    dots = base.mark_point(filled=True, size=50).encode(
        y="actual:Q", tooltip=[alt.Tooltip("month:O"), alt.Tooltip("key:N"), alt.Tooltip("actual:Q", format="$,.2f"),
                               alt.Tooltip("p10:Q", format="$,.2f"), alt.Tooltip("p90:Q", format="$,.2f")])
    return (rule + dots).properties(
        width=WIDTH, height=HEIGHT,
        title=alt.Title(f"Forecast backtest: {bt.coverage:.0%} of months inside P10-P90, mean abs error {bt.mape:.1f} %",
                        subtitle="bars: the forecast's P10-P90 from the history before the month; dots: actual"))


def fleet_frontier(res) -> alt.LayerChart:
    """A fleet's Pareto frontier: USD per million output tokens against TPOT, the best option marked."""
    rows = [{"tpot_ms": o["tpot_s"] * 1e3, "usd": o["usd_per_million_output_tokens"],
             "option": f"{o['replicas']} x {o['gpus_per_replica']} {o['gpu']} {o['precision']} {o['provider']} {o['tier']}",
             "best": o == res.best} for o in res.frontier]
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("tpot_ms:Q", title="time per output token (ms)"),
        y=alt.Y("usd:Q", title="USD per million output tokens", axis=alt.Axis(format="$.3~f")),
        tooltip=["option:N", "usd:Q", "tpot_ms:Q"])
    line = base.mark_line(point=True, interpolate="step-after", color="#4C78A8")
    best = base.transform_filter("datum.best").mark_point(size=160, color="#E45756", filled=True)
    label = base.transform_filter("datum.best").mark_text(align="left", dx=8, dy=-8).encode(text="option:N")
    return (line + best + label).properties(
        width=WIDTH, height=HEIGHT,
        title={"text": f"{res.model}: cheapest fleet for each time per output token",
               "subtitle": f"{res.mean_requests_per_second:,.3g} requests/s mean, {res.peak_requests_per_second:,.3g} at "
                           f"the peak; {res.options_evaluated:,} options searched"})
