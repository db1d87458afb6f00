"""The one place that turns numbers into text for people: money, counts, shares, months.

Used by the CLI, the app and the HTML report (none of them formats a number its own way). Pure functions; no
imports beyond the standard library, so every shell can use them without loading numpy or a UI toolkit.
"""

from __future__ import annotations

from typing import Any

#: a plan's headline outcomes: key -> (label, what it is)
OUTCOME_LABELS = {
    "payback_month": ("payback month", "months until the cumulative cash turns non-negative for good"),
    "cumulative_profit_usd": ("cumulative profit", "cash over the horizon, training and set-up included"),
    "npv_usd": ("NPV", "the same cash flows discounted at the plan's rate"),
    "contribution_margin_per_user_month_usd": ("contribution margin / user-month",
                                               "marginal view: do I make money on one more user?"),
    "fully_loaded_margin_per_user_month_usd": ("fully loaded margin / user-month",
                                               "fully loaded view: do the users pay for the whole business?"),
    "training_share_of_lifetime_cost": ("training share of lifetime cost",
                                        "training / (training + inference) over the horizon"),
    "system_share_of_lifetime_cost": ("system share of lifetime cost",
                                      "staff, monitoring, data pipelines, evaluation and on-call / (those + "
                                      "training + inference) over the horizon; the model's share is 1 minus it"),
    "lifetime_revenue_usd": ("lifetime revenue", ""),
    "lifetime_inference_usd": ("lifetime inference cost", ""),
    "lifetime_training_usd": ("lifetime training cost", "first run and retrainings"),
    "lifetime_fixed_usd": ("lifetime fixed cost", "staff, monitoring, ... and self-hosting set-up"),
    "lifetime_self_hosted_utilization": ("self-hosted fleet utilization",
                                         "requests served / capacity provisioned over the horizon (fleet routes)"),
    "lifetime_self_hosted_usd": ("lifetime self-hosted fleet rent", "every provisioned GPU-hour (in inference cost)"),
    "lifetime_self_hosted_gpu_hours": ("lifetime self-hosted GPU-hours", "provisioned, busy or not"),
}


def fmt(value: Any, unit: str = "") -> str:
    """A value in a CLI table: ``$235,200.00``, ``94,080``, ``0.3003``, ``1.25e+11``, ``yes``, ``-``."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        x = float(value)
        if unit == "USD":
            sign = "-" if x < 0 else ""  # "-$290,257.18", not "$-290,257.18"
            return f"{sign}${abs(x):,.2f}" if abs(x) < 1e9 else f"{sign}${abs(x):,.4g}"
        if x != 0 and (abs(x) >= 1e9 or abs(x) < 1e-3):
            return f"{x:.4g}"
        return f"{x:,.4f}".rstrip("0").rstrip(".") if abs(x) < 1000 else f"{x:,.0f}"
    return str(value)


def money(value: Any, unit: str = "") -> str:
    """A value on an app card: ``$235,200``, ``$0.30``, ``$0.000123``; other units as :func:`fmt`."""
    if unit == "USD" and isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        if x < 0:
            return "-" + money(-x, unit)
        if abs(x) >= 1e9:
            return f"${x:,.4g}"
        if abs(x) >= 100:
            return f"${x:,.0f}"
        if 0 < abs(x) < 0.01:
            return f"${x:.3g}"
        if abs(x) < 1 and round(x, 2) != round(x, 4):
            return f"${x:.4g}"
        return f"${x:,.2f}"
    return fmt(value)


def plan_value(key: str, x) -> str:
    """A plan outcome by its key: payback months (``never`` when None), shares, $/user-month, whole dollars."""
    if x is None:
        return "never" if key == "payback_month" else "-"
    if key == "payback_month":
        return f"{x:,.3f}".rstrip("0").rstrip(".") if x < 100 else f"{x:,.0f}"
    if key in ("training_share_of_lifetime_cost", "system_share_of_lifetime_cost") or key.endswith("_utilization"):
        return f"{x:.1%}" if x >= 0.001 or x == 0 else f"{x:.3%}"
    if key.endswith("_gpu_hours"):
        return f"{x:,.0f}"
    if key.endswith("_per_user_month_usd"):
        return f"${x:,.2f}" if x >= 0 else f"-${-x:,.2f}"
    return f"${x:,.0f}" if x >= 0 else f"-${-x:,.0f}"


def system_share_text(q: dict | None) -> str | None:
    """The model against the system of a plan's lifetime cost, from ``summary.system_share_of_lifetime_cost``
    (P10/P50/P90): the model's share is 1 minus the system's, so its P10 is 1 minus the system's P90."""
    if not q or q.get("p50") is None:
        return None

    def pct(x):
        return "-" if x is None else plan_value("system_share_of_lifetime_cost", x)

    def one_minus(x):
        return None if x is None else 1.0 - x

    return (f"model (training + inference) {pct(one_minus(q['p50']))} (P10 {pct(one_minus(q['p90']))}, P90 "
            f"{pct(one_minus(q['p10']))}) against the system (staff, monitoring, data pipelines, evaluation, "
            f"on-call) {pct(q['p50'])} (P10 {pct(q['p10'])}, P90 {pct(q['p90'])}) of lifetime cost "
            f"(seed 002: 'the model is 10% of the effort, the system is 90%')")


def samples_text(n: int) -> str:
    """'1 sample', '20,000 samples'."""
    return f"{n:,} sample{'' if n == 1 else 's'}"


def share_text(p: float) -> str:
    """A share as a percentage that never rounds a non-zero share to 0 % (or a short one to 100 %)."""
    if p <= 0:
        return "0%"
    if p >= 1:
        return "100%"
    if p < 0.001:
        return "< 0.1%"
    if p > 0.999:
        return "> 99.9%"
    return f"{p:.1%}"


def summary_rows(res) -> list[tuple[str, str, str, str]]:
    """(label, P10, P50, P90) strings of a plan's headline outcomes (the CLI's table and the app's)."""
    rows = []
    for key, q in list(res.summary.items()) + list(res.lifetime.items()):
        rows.append((OUTCOME_LABELS.get(key, (key, ""))[0], *(plan_value(key, q[p]) for p in ("p10", "p50", "p90"))))
    return rows
