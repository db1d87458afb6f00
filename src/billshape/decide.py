"""Decisions built on the equations: build vs buy.

References
----------
.. [1] billshape seed 003, section 37.5: buying costs p V, building F + c V; building wins once
       V > F / (p - c), which exists only when c < p.
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v
from billshape.results import Result, user


def buy_cost_usd(volume_tokens, api_usd_per_token):
    """Cost of buying a volume through an API: ``p x V`` [USD]."""
    return np.asarray(api_usd_per_token, dtype=float) * np.asarray(volume_tokens, dtype=float)


def build_cost_usd(volume_tokens, fixed_usd, own_usd_per_token):
    """Cost of building: ``F + c x V`` [USD]."""
    return np.asarray(fixed_usd, dtype=float) + np.asarray(own_usd_per_token, dtype=float) * np.asarray(
        volume_tokens, dtype=float
    )


def break_even_tokens(fixed_usd, api_usd_per_token, own_usd_per_token):
    r"""Break-even volume of build vs buy: :math:`V^* = F / (p - c)`.

    Parameters
    ----------
    fixed_usd : numeric
        Fixed cost of building (standing up and reserving own capacity, training) [USD], >= 0.
    api_usd_per_token : numeric
        API price p [USD/token], > 0.
    own_usd_per_token : numeric
        Own marginal cost c [USD/token], >= 0.

    Returns
    -------
    numeric
        Break-even volume [tokens]; ``inf`` where ``c >= p`` (building never wins on price).

    References
    ----------
    .. [1] billshape seed 003, section 37.5.
    """
    v.non_negative("fixed_usd", fixed_usd)
    v.positive("api_usd_per_token", api_usd_per_token)
    v.non_negative("own_usd_per_token", own_usd_per_token)
    f = np.asarray(fixed_usd, dtype=float)
    margin = np.asarray(api_usd_per_token, dtype=float) - np.asarray(own_usd_per_token, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(margin > 0, f / np.where(margin > 0, margin, 1.0), np.inf)
    return out


class BreakEven(Result):
    """Build vs buy at constant prices."""

    exists: bool
    break_even_tokens: float | None
    break_even_million_tokens: float | None
    api_usd_per_million_tokens: float
    own_usd_per_million_tokens: float
    fixed_usd: float
    margin_usd_per_million_tokens: float
    explanation: str


def break_even(api_usd_per_million_tokens: float, own_usd_per_million_tokens: float, fixed_usd: float) -> BreakEven:
    """Break-even volume of building vs buying, with its assumptions.

    When the own marginal cost is at or above the API price there is no break-even: that is an answer
    (``exists=False``), not an error.
    """
    v.positive("--api-price", api_usd_per_million_tokens)
    v.non_negative("--own-cost", own_usd_per_million_tokens)
    v.non_negative("--fixed", fixed_usd)
    p = float(api_usd_per_million_tokens)
    c = float(own_usd_per_million_tokens)
    vstar = float(break_even_tokens(fixed_usd, p / 1e6, c / 1e6))
    exists = bool(np.isfinite(vstar))
    if exists:
        text = (f"building wins above {vstar:,.0f} tokens ({vstar / 1e9:,.3g} billion): each million tokens "
                f"saves ${p - c:,.4g} against ${fixed_usd:,.0f} fixed")
    else:
        text = (f"no break-even: own cost ${c:,.4g}/M tokens is not below the API price ${p:,.4g}/M, so buying "
                "is cheaper at every volume")
    return BreakEven(
        exists=exists,
        break_even_tokens=vstar if exists else None,
        break_even_million_tokens=vstar / 1e6 if exists else None,
        api_usd_per_million_tokens=p,
        own_usd_per_million_tokens=c,
        fixed_usd=float(fixed_usd),
        margin_usd_per_million_tokens=p - c,
        explanation=text,
        assumptions=[
            user("api price p", p, "USD per million tokens", "--api-price"),
            user("own marginal cost c", c, "USD per million tokens", "--own-cost"),
            user("fixed cost F", float(fixed_usd), "USD", "--fixed"),
        ],
    )
