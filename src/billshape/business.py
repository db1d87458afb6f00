"""Unit economics of a product: payback of a fixed cost from per-user margins.

References
----------
.. [1] billshape seed 000: $235,200 of training paid back by 10,000 users x $10/month in 2.352 months.
.. [2] billshape seed 001: the marginal (contribution) view and the fully loaded view of unit economics.
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v
from billshape.results import Result, user


def payback_months(fixed_usd, users, revenue_per_user_month_usd, cost_per_user_month_usd=0.0):
    r"""Months to pay back a fixed cost from the monthly contribution of a steady user base.

    :math:`T = F / (U (r - c))`; ``inf`` where the contribution is not positive (never pays back).

    Parameters
    ----------
    fixed_usd : numeric
        Fixed cost to recover (e.g. the training bill) [USD].
    users : numeric
        Paying users [count].
    revenue_per_user_month_usd : numeric
        Revenue per user per month [USD].
    cost_per_user_month_usd : numeric
        Marginal serving cost per user per month [USD].

    Returns
    -------
    numeric
        Payback time [months].
    """
    v.non_negative("fixed_usd", fixed_usd)
    v.positive("users", users)
    v.non_negative("revenue_per_user_month_usd", revenue_per_user_month_usd)
    v.non_negative("cost_per_user_month_usd", cost_per_user_month_usd)
    return payback_months_unchecked(fixed_usd, users, revenue_per_user_month_usd, cost_per_user_month_usd)


def payback_months_unchecked(fixed_usd, users, revenue_per_user_month_usd, cost_per_user_month_usd=0.0):
    """:func:`payback_months` without its input checks, for callers that validated their inputs already
    (the Monte Carlo hot path of :mod:`billshape.plan`, where the checks cost more than the equation)."""
    monthly = np.asarray(users, dtype=float) * (
        np.asarray(revenue_per_user_month_usd, dtype=float) - np.asarray(cost_per_user_month_usd, dtype=float)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(monthly > 0, np.asarray(fixed_usd, dtype=float) / np.where(monthly > 0, monthly, 1.0), np.inf)


def cumulative_contribution_usd(months, monthly_contribution_usd):
    r"""Contribution earned after ``months`` of a steady monthly contribution: :math:`t \cdot U (r - c)`.

    It reaches the fixed cost at :func:`payback_months`; a chart of it against the fixed cost shows the payback
    where the two cross.

    Parameters
    ----------
    months : numeric
        Time since launch [months], >= 0.
    monthly_contribution_usd : numeric
        Users x (revenue - cost) per user per month [USD per month] (:attr:`Payback.monthly_contribution_usd`).

    Returns
    -------
    numeric
        Cumulative contribution [USD].

    References
    ----------
    .. [1] billshape seed 000: 10,000 users x $10/month contribute $235,200 in 2.352 months.
    """
    return np.asarray(months, dtype=float) * np.asarray(monthly_contribution_usd, dtype=float)


class Payback(Result):
    """Payback of a fixed cost."""

    payback_months: float | None
    pays_back: bool
    monthly_contribution_usd: float
    contribution_per_user_month_usd: float
    fixed_usd: float
    explanation: str


def payback(fixed_usd: float, users: float, revenue_per_user_month_usd: float,
            cost_per_user_month_usd: float = 0.0) -> Payback:
    """Payback months of a fixed cost, with assumptions. Never paying back is an answer (``None``)."""
    v.non_negative("fixed_usd", fixed_usd, v.MAX_USD)
    v.positive("users", users, v.MAX_COUNT)
    v.non_negative("revenue_per_user_month_usd", revenue_per_user_month_usd, v.MAX_USD_RATE)
    v.non_negative("cost_per_user_month_usd", cost_per_user_month_usd, v.MAX_USD_RATE)
    months = float(payback_months(fixed_usd, users, revenue_per_user_month_usd, cost_per_user_month_usd))
    per_user = float(revenue_per_user_month_usd) - float(cost_per_user_month_usd)
    monthly = float(users) * per_user
    ok = bool(np.isfinite(months))
    text = (f"${fixed_usd:,.0f} is paid back in {months:.4g} months by {users:,.0f} users contributing "
            f"${per_user:,.4g} each per month" if ok else
            "never pays back: serving cost per user is not below revenue per user")
    return Payback(
        payback_months=months if ok else None,
        pays_back=ok,
        monthly_contribution_usd=monthly,
        contribution_per_user_month_usd=per_user,
        fixed_usd=float(fixed_usd),
        explanation=text,
        assumptions=[
            user("fixed cost", float(fixed_usd), "USD", "fixed_usd"),
            user("users", float(users), "users", "users"),
            user("revenue per user-month", float(revenue_per_user_month_usd), "USD", "revenue_per_user_month_usd"),
            user("serving cost per user-month", float(cost_per_user_month_usd), "USD", "cost_per_user_month_usd"),
        ],
    )
