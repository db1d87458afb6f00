r"""Build vs buy against a fleet: own cost is a monthly rent in steps of whole replicas, not a cost per token.

A fleet unit (a replica, or whatever the user rents as one block) costs :math:`F` USD per month and covers
:math:`C` tokens per month of traffic (its capacity at the traffic's peak). At a volume :math:`V` tokens per month
it needs :math:`N(V) = \max(1, \lceil V / C \rceil)` units, so

.. math::

    \text{buy}(V) = p V, \qquad \text{build}(V) = N(V) F, \qquad u(V) = V / (N(V) C)

with :math:`p` the API price and :math:`u` the utilization the fleet runs at. Build is a step function: within
step :math:`N` (:math:`(N-1)C < V \le NC`) building wins from :math:`V = NF/p` on, so the crossover volumes are
:math:`V_N = \max((N-1)C, NF/p)` for each step with :math:`NF/p \le NC`; when :math:`pC \le F` (the API is
cheaper than a full unit) building never wins. Above :math:`V \ge C F / (pC - F)` it wins at every volume (the
step's jump :math:`F` is covered by the API bill of the volume already on it).

Over a horizon the volume grows (:math:`V_m = V_1 (1+g)^{m-1}`), the API price follows its path and the rent
its trend; the fleet pays a one-off ``fixed_usd`` in month 1; the crossover month is the first where the
cumulative build cost is at or below the cumulative buy cost (as :func:`billshape.decide.horizon_cashflows`).

References
----------
.. [1] billshape seed 003, section 37.5 (build wins once V > F / (p - c); here c is the rent's step function).
.. [2] billshape seed 003, section 37.4 (a rented fleet pays for idle capacity: utilization).
"""

from __future__ import annotations

import math

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Result, derived, user

MAX_STEPS = 64  # crossover volumes listed (the steps beyond follow the same pattern)


def units_needed(volume_tokens_per_month, capacity_tokens_per_month):
    """Whole fleet units for a volume: :math:`\\max(1, \\lceil V / C \\rceil)` (vectorised) [count]."""
    vol = np.asarray(volume_tokens_per_month, dtype=float)
    return np.maximum(1.0, np.ceil(vol / np.asarray(capacity_tokens_per_month, dtype=float) * (1.0 - 1e-12)))


def crossover_volumes(api_usd_per_token: float, unit_usd_per_month: float, capacity_tokens_per_month: float,
                      steps: int = MAX_STEPS) -> tuple[list[float], float | None]:
    """Volumes [tokens/month] where building starts to win within each step, and the volume above which it
    always wins (``None`` when building never wins: :math:`pC \\le F`). See the module docstring."""
    p, F, C = float(api_usd_per_token), float(unit_usd_per_month), float(capacity_tokens_per_month)
    if p * C <= F * (1 + 1e-12):
        return [], None
    always = C * F / (p * C - F)  # from this volume on NF/p <= (N-1)C: the API bill covers each step's jump
    out = []
    for n in range(1, steps + 1):
        start = max((n - 1) * C, n * F / p)
        if start <= n * C:
            if n == 1 or start > (n - 1) * C * (1 + 1e-12):
                out.append(start)
        if (n - 1) * C >= always:
            break
    return out, always


class FleetBreakEven(Result):
    """Build (a rented fleet) vs buy (an API) at a volume, or month by month over a horizon."""

    api_usd_per_million_tokens: float
    unit_usd_per_month: float
    own_capacity_tokens_per_month: float
    volume_tokens_per_month: float | None = None
    own_usd_per_month: float | list | None = None
    replicas: int | list | None = None
    utilization: float | list | None = None
    api_usd_per_month: float | list | None = None
    crossover_volumes_tokens_per_month: list
    build_always_wins_above_tokens_per_month: float | None = None
    exists: bool
    decision: str | None = None
    flips: dict
    months: int | None = None
    monthly: list | None = None
    crossover_month: int | None = None
    monthly_crossover_month: int | None = None
    npv_saving_usd: float | None = None
    fleet: dict | None = None
    explanation: str


def fleet_breakeven(*, api_usd_per_million_tokens: float, own_usd_per_month: float, own_capacity_tokens_per_month: float,
                    volume_tokens_per_month: float | None = None, months=None, fixed_usd: float | None = None,
                    volume_growth_per_month: float = 0.0, api_price_annual_factor: float = 1.0,
                    api_price_steps=None, own_cost_annual_factor: float = 1.0, discount_rate_annual: float = 0.0,
                    fleet: dict | None = None, assumptions: list[Assumption] | None = None,
                    peak_to_mean: float = 1.0) -> FleetBreakEven:
    """Build vs buy with own cost a monthly rent of ``own_usd_per_month`` per unit of
    ``own_capacity_tokens_per_month`` (see the module docstring); over ``months`` when given (with
    ``volume_tokens_per_month`` in month 1). ``peak_to_mean`` [x] converts the share of the capacity the volume
    covers into the fleet's utilization (busy over provisioned): :math:`u = V / (N C X)` (1: a unit's capacity is
    what it serves all month)."""
    from billshape import market
    from billshape.decide import horizon_cashflows

    v.positive("api_usd_per_million_tokens", api_usd_per_million_tokens, v.MAX_USD_RATE * 1e6)
    v.positive("own_usd_per_month", own_usd_per_month, v.MAX_USD)
    v.positive("own_capacity_tokens_per_month", own_capacity_tokens_per_month, v.MAX_TOKENS)
    p_m, F, C = float(api_usd_per_million_tokens), float(own_usd_per_month), float(own_capacity_tokens_per_month)
    p = p_m / 1e6
    vols, always = crossover_volumes(p, F, C)
    exists = bool(vols)
    a = list(assumptions or []) + [
        user("API price", p_m, "USD per million tokens", "api_usd_per_million_tokens"),
        (derived("fleet rent per replica", F, "USD per month", "the fleet option's monthly rent / its replicas")
         if fleet else user("fleet rent per unit", F, "USD per month", "own_usd_per_month")),
        (derived("fleet capacity per replica", C, "tokens per month", "one replica's requests/s at the service level "
                 "x (input + output tokens) x 3600 x hours per month / peak to mean") if fleet
         else user("fleet capacity per unit", C, "tokens per month", "own_capacity_tokens_per_month")),
        derived("billing", "whole units rented every hour", None, "own cost = max(1, ceil(V / capacity)) x rent: "
                "a step function of volume, not a cost per token"),
    ]
    if fixed_usd is not None:
        v.non_negative("fixed_usd", fixed_usd, v.MAX_USD)
        if months is None:
            raise BillshapeInputError("fixed_usd", fixed_usd, "given with `months` and `volume_tokens_per_month` "
                                      "(a one-off cost is compared with a monthly rent over a horizon)")
    if months is not None and volume_tokens_per_month is None:
        raise BillshapeInputError("volume_tokens_per_month", None, "given with `months`")
    head = dict(api_usd_per_million_tokens=p_m, unit_usd_per_month=F, own_capacity_tokens_per_month=C,
                crossover_volumes_tokens_per_month=vols, build_always_wins_above_tokens_per_month=always,
                exists=exists, fleet=fleet)
    if months is None:
        flips: dict = {"api_usd_per_million_tokens_build_wins_above": F / C * 1e6,
                       "volume_tokens_per_month_build_wins_from": vols[0] if vols else None}
        text = (f"a fleet unit rents for ${F:,.0f}/month and covers {C:,.4g} tokens/month: "
                + (f"building wins from {vols[0]:,.4g} tokens/month (utilization {vols[0] / C / peak_to_mean:.0%})"
                   + (f" and at every volume above {always:,.4g}" if always and always > vols[0] else "")
                   if exists else f"building never wins: the API at ${p_m:,.4g}/M is cheaper than a full unit "
                   f"(${F / C * 1e6:,.4g}/M at 100% utilization); it flips above ${F / C * 1e6:,.4g}/M"))
        out = dict(head, flips=flips, explanation=text, assumptions=a)
        if volume_tokens_per_month is not None:
            v.non_negative("volume_tokens_per_month", volume_tokens_per_month, v.MAX_TOKENS)
            V = float(volume_tokens_per_month)
            n = int(units_needed(V, C))
            own, api = n * F, p * V
            u = V / (n * C * peak_to_mean)
            decision = "build" if own < api else "buy"
            flips.update({
                "api_usd_per_million_tokens_other_side_wins": own / V * 1e6 if V > 0 else None,
                "gpu_price_factor_other_side_wins": api / own,
                "volume_tokens_per_month_next_step": n * C,
            })
            text = (f"at {V:,.4g} tokens/month: {n} unit{'s' if n != 1 else ''} rent for ${own:,.0f}/month at "
                    f"{u:.0%} utilization vs ${api:,.0f}/month on the API: {decision}; it flips "
                    + (f"if the API price falls below ${own / V * 1e6:,.4g}/M or the GPU rent rises {api / own - 1:.0%}"
                       if decision == "build" else
                       f"if the API price rises above ${own / V * 1e6:,.4g}/M or the GPU rent falls {1 - api / own:.0%}")
                    + (f"; building wins from {vols[0]:,.4g} tokens/month" if vols else "; building never wins at "
                       "this API price"))
            out.update(volume_tokens_per_month=V, own_usd_per_month=own, replicas=n, utilization=u,
                       api_usd_per_month=api, decision=decision, explanation=text)
            a.append(user("volume", V, "tokens per month", "volume_tokens_per_month"))
        return FleetBreakEven(**out)
    # horizon: per month, the units the month's volume needs; the rent on its trend; the API on its path
    months = market.check_months("months", months)
    steps = market.parse_steps(api_price_steps)
    flows = horizon_cashflows(float(fixed_usd or 0.0), p_m, 0.0, float(volume_tokens_per_month) / 1e6, months,
                              volume_growth_per_month, api_price_annual_factor, own_cost_annual_factor,
                              discount_rate_annual, steps)
    vol = float(volume_tokens_per_month) * (1.0 + float(volume_growth_per_month)) ** np.arange(months)
    n = units_needed(vol, C)
    rent_path = market.price_path(F, months, own_cost_annual_factor)
    own = n * rent_path + float(fixed_usd or 0.0) * (np.arange(months) == 0)
    api = np.asarray(flows["api_usd"], dtype=float)
    cum_own, cum_api = np.cumsum(own), np.cumsum(api)
    below = cum_own <= cum_api
    prev = np.concatenate([[False], below[:-1]])
    cross = below & ~prev
    cross_m = int(np.argmax(cross)) + 1 if cross.any() else None
    m_below = own <= api
    month_cross = int(np.argmax(m_below)) + 1 if m_below.any() else None
    disc = (1.0 + float(discount_rate_annual)) ** (-np.arange(months) / 12.0)
    npv = float(np.sum((api - own) * disc))
    if not (np.all(np.isfinite(own)) and np.all(np.isfinite(api))):
        raise BillshapeInputError("months", months, "a horizon over which every cost stays finite")
    util = vol / (n * C * peak_to_mean)
    rows = [{"month": i + 1, "volume_tokens": float(vol[i]), "replicas": int(n[i]), "own_usd": float(own[i]),
             "api_usd": float(api[i]), "utilization": float(util[i]),
             "api_usd_per_million_tokens": float(flows["api_usd_per_token"][i]),
             "cumulative_own_usd": float(cum_own[i]), "cumulative_api_usd": float(cum_api[i])} for i in range(months)]
    decision = "build" if npv > 0 else "buy"
    last = months - 1
    flips = {"api_usd_per_million_tokens_other_side_wins_last_month": float(own[last] / vol[last] * 1e6),
             "gpu_price_factor_other_side_wins": float(np.sum(api * disc) / np.sum(own * disc)),
             "volume_tokens_per_month_build_wins_from": vols[0] if vols else None}
    text = (f"over {months} months the fleet grows from {int(n[0])} to {int(n[-1])} unit(s) ({util[0]:.0%} to "
            f"{util[-1]:.0%} utilization, ${own[0]:,.0f} to ${own[-1]:,.0f}/month); building "
            f"{'saves' if npv > 0 else 'costs'} ${abs(npv):,.0f} in present value: {decision}"
            + (f"; the cumulative cost crosses in month {cross_m}" if cross_m else "; no crossover")
            + (f" (build is cheaper month by month from month {month_cross})" if month_cross else "")
            + f"; the other side wins if the rent moves x{flips['gpu_price_factor_other_side_wins']:.3g}")
    a += [user("volume in month 1", float(volume_tokens_per_month), "tokens per month", "volume_tokens_per_month"),
          user("horizon", int(months), "months", "months"),
          user("volume growth", float(volume_growth_per_month), "fraction per month", "volume_growth_per_month"),
          user("API price trend", float(api_price_annual_factor), "x per year", "api_price_annual_factor"),
          user("API price steps", [f"{m}:{f:g}" for m, f in steps], "MONTH:FACTOR", "api_price_steps"),
          user("rent trend", float(own_cost_annual_factor), "x per year", "own_cost_annual_factor"),
          user("discount rate", float(discount_rate_annual), "fraction per year", "discount_rate_annual")]
    if fixed_usd:
        a.append(user("one-off fixed cost", float(fixed_usd), "USD", "fixed_usd"))
    return FleetBreakEven(**head, volume_tokens_per_month=float(volume_tokens_per_month),
                          own_usd_per_month=[float(x) for x in own], replicas=[int(x) for x in n],
                          utilization=[float(x) for x in util], api_usd_per_month=[float(x) for x in api],
                          decision=decision, flips=flips, months=int(months), monthly=rows, crossover_month=cross_m,
                          monthly_crossover_month=month_cross, npv_saving_usd=npv, explanation=text, assumptions=a)


def fleet_unit(result) -> tuple[float, float, dict, float]:
    """A :class:`~billshape.fleet.FleetResult`'s best option as a break-even unit: rent per replica per month
    [USD], the tokens per month one replica covers at the traffic's peak [tokens], the option, and the traffic's
    peak to mean [x]."""
    b = result.best
    rent = b["usd_per_month"] / b["replicas"]
    peak_to_mean = result.peak_requests_per_second / result.mean_requests_per_second
    capacity = (b["replica_requests_per_second"] * (result.input_tokens + result.output_tokens) * 3600.0
                * result.hours_per_month / peak_to_mean)
    return rent, capacity, b, peak_to_mean
