r"""The plan's monthly P&L, written once: per-month cost and revenue terms, aggregated two ways.

:func:`pnl_terms` is the one place that says what each month holds, per sample, for a batch of parameter
draws: users, revenue, the API and self-hosted inference cost (each a geometric path with its market trend
and price steps), other variable cost, the fixed monthly costs, the training bill with its amortisation and
retraining schedule, and the self-hosting set-up. Two aggregations read those terms:

* :func:`monthly_pnl`, the monthly view: every row months x samples (the reservoir's percentile rows and
  charts, the tornado, build vs buy) and the summaries summed from them;
* :func:`summary_pnl`, the Monte Carlo hot path: the same summaries in closed form (geometric sums), no
  months x samples pass except for the few samples whose payback is not certified (:func:`~billshape.plan.payback._payback`).

The model, per month :math:`m = 1..H` and sample:

.. math::

    U_m &= U_0 (1 + g - c)^{m-1}                                  && \text{users}\\
    R_m &= U_m \, p                                                && \text{revenue}\\
    I_m &= U_m \, q \sum_r s_r \, k_r \, (t_{in} ((1-h) a_r + h b_r) + t_{out} \rho \, o_r) / 10^6
                                                                    && \text{inference (marginal)}\\
    C_m &= R_m - I_m - U_m v                                       && \text{contribution}\\
    L_m &= C_m - F_m - A_m - S / H                                 && \text{fully loaded profit}

with :math:`q` requests per user-month, :math:`t_{in}, t_{out}` tokens per request, :math:`\rho` the reasoning
multiplier on output tokens, :math:`h` the prompt-cache hit rate, route :math:`r`'s share :math:`s_r` and prices
:math:`a_r, b_r, o_r` (USD per million input, cached-input and output tokens) times its market path
:math:`k_r(m)`, :math:`v` other variable cost per user-month, :math:`F_m` fixed monthly costs, :math:`A_m` the
training amortisation and :math:`S` the one-time self-hosting set-up cost. Cash: the training bill and set-up
are paid at :math:`t = 0`, a retraining at the start of its month. Payback is the first time the cumulative
cash turns non-negative for good (linear within the month; ``None`` when it never does within the horizon).

Both views of unit economics [2]_ are reported: the contribution margin per user-month (revenue minus the costs
one more user adds) and the fully loaded margin per user-month (also fixed costs and the amortised training).
A self-hosted route's $/token comes from :mod:`billshape.inference` (a measured deployment) or from the roofline
quote resolved once (``model:`` routes, :mod:`billshape.plan.resolver`); price paths from
:func:`billshape.market.monthly_factor`.

References
----------
.. [1] billshape seed 000: 280 A100 x 2 weeks x $2.5 = $235,200 paid back by 10,000 users x $10 in 2.352 months.
.. [2] billshape seed 001: marginal (contribution) vs fully loaded unit economics; show both.
.. [3] billshape seed 002: costs start after deployment: retraining, staff, monitoring, on-call.
.. [4] billshape seed 003, section 37.2: cost per token = accelerator $/hour / (tokens/hour x utilization).
.. [5] billshape seed 004: plan for API prices 3-5x today's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from billshape import inference, market
from billshape.plan.dists import Dist
from billshape.plan.payback import _bc, _geo_rows, _geo_sum, _payback, _payback_from_cash, _sv
from billshape.plan.schema import SYSTEM_KEYS, FixedMonthly

SUMMARY_KEYS = ["payback_month", "cumulative_profit_usd", "npv_usd", "contribution_margin_per_user_month_usd",
                "fully_loaded_margin_per_user_month_usd", "training_share_of_lifetime_cost",
                "system_share_of_lifetime_cost"]
EXTRA_KEYS = ["lifetime_revenue_usd", "lifetime_inference_usd", "lifetime_training_usd", "lifetime_fixed_usd"]
HIDDEN_KEYS = ["upfront_usd"]
MONTHLY_KEYS = ["users", "revenue_usd", "inference_usd", "variable_usd", "fixed_usd", "training_amortization_usd",
                "setup_amortization_usd", "training_cash_usd", "contribution_usd", "fully_loaded_profit_usd",
                "cash_flow_usd", "cumulative_cash_usd", "contribution_margin_per_user_usd",
                "fully_loaded_margin_per_user_usd"]
BAND_KEYS = ["cumulative_cash_usd", "contribution_margin_per_user_usd", "fully_loaded_margin_per_user_usd"]
# a plan with a fleet route (self-hosted, billed per provisioned GPU-hour) reports these too
FLEET_SUMMARY_KEYS = ["lifetime_self_hosted_utilization"]
FLEET_EXTRA_KEYS = ["lifetime_self_hosted_usd", "lifetime_self_hosted_gpu_hours"]
FLEET_MONTHLY_KEYS = ["self_hosted_gpu_hours", "self_hosted_usd", "self_hosted_utilization", "self_hosted_replicas"]


# --------------------------------------------------------------------------------------------------------------
# the terms: what each month holds (one place)
# --------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CostPath:
    """One kind of route's inference cost per month: ``scale * level(m) * (r k)^(m - 1)`` [USD].

    ``kind`` is ``"api"`` (the API price trend and steps) or ``"own"`` (self-hosted: the GPU price trend);
    ``scale`` the month-1 cost (users x cost per user-month), ``k`` the market's monthly price factor and
    ``steps`` the price steps ``[(0-based first month, factor), ...]`` whose product is the level.
    """

    kind: str
    scale: Any
    k: Any
    steps: list


@dataclasses.dataclass(frozen=True)
class Terms:
    """The monthly P&L's terms for ``n`` samples over ``H`` months.

    Each parameter is a Python float when it is the same for every sample, else shape (n,) (see
    :func:`~billshape.plan.payback._sv`): users at the start ``u0`` [users] and their monthly ratio ``r`` =
    1 + growth - churn; ``price`` and ``var_pu`` (other variable cost) [USD per user-month]; ``rate`` the annual
    discount rate; ``costs`` the inference cost paths; ``fixed_pm`` [USD per month] (incl. self-hosted standing
    costs), ``setup`` [USD, paid at t = 0], ``bill`` the training bill [USD, paid at t = 0] and ``frac`` each
    retraining's share of it; ``init_amort``, ``re_amort`` and ``re_cash`` the per-month shares of the bill
    (amortisation of the first run, of the retrainings, retraining cash), shape (H,).
    """

    H: int
    n: int
    u0: Any
    r: Any
    price: Any
    var_pu: Any
    rate: Any
    costs: list
    fixed_pm: Any
    setup: Any
    bill: Any
    frac: Any
    init_amort: np.ndarray
    re_amort: np.ndarray
    re_cash: np.ndarray
    fleets: tuple = ()  # FleetTerm per fleet route (billed per provisioned GPU-hour, not per token)
    system_pm: Any = 0.0  # the system around the model (staff, monitoring, data pipelines, evaluation, on-call)


@dataclasses.dataclass(frozen=True)
class FleetTerm:
    r"""A fleet route's monthly rent: whole replicas for the month's peak, every hour paid.

    Month :math:`m`: mean requests/s :math:`\bar\lambda_m = U_m q s / (3600 H_m)`, replicas
    :math:`N_m = \max(N_{min}, \lceil \bar\lambda_m X / c \rceil)` (or the fixed ``replicas``), rent
    :math:`N_m g H_m p k^{m-1}` and utilization :math:`\bar\lambda_m / (N_m c)`. Each parameter is a float or
    shape (n,): ``req_share`` = :math:`q s` [requests per user-month on the route], ``c`` [requests/s per
    replica], ``g`` [GPUs per replica], ``price`` [USD/GPU-hour], ``k`` the GPU price path's monthly factor,
    ``x`` peak to mean, ``n_min`` / ``fixed`` [replicas], ``hours`` [h per month].
    """

    req_share: Any
    c: Any
    g: float
    price: Any
    k: Any
    x: Any
    n_min: Any
    fixed: Any
    hours: float


def fleet_rows(f: FleetTerm, users: np.ndarray) -> dict[str, np.ndarray]:
    """A fleet's monthly rows for users of shape (H, n): replicas, GPU-hours, rent [USD], served and provisioned
    requests (for the utilization), each (H, n)."""
    H = users.shape[0]
    months = np.arange(H, dtype=float)[:, None]
    lam = users * f.req_share / (3600.0 * f.hours)  # mean requests/s
    if f.fixed is not None:
        n_rep = np.broadcast_to(np.asarray(float(f.fixed)), users.shape)
    else:
        # a hair of tolerance: a peak of exactly N replicas' capacity needs N, not N + 1
        n_rep = np.maximum(np.ceil(lam * f.x / f.c * (1.0 - 1e-12)), f.n_min)
    gpu_hours = n_rep * f.g * f.hours
    usd = gpu_hours * f.price * np.asarray(f.k, dtype=float) ** months
    return {"replicas": n_rep, "gpu_hours": gpu_hours, "usd": usd, "served": lam, "capacity": n_rep * f.c}


def pnl_terms(plan, P: dict[str, Any]) -> Terms:
    """The P&L terms of ``plan`` for a batch of parameter draws ``P`` (YAML path -> float or shape (n, 1))."""
    sc = plan.scenario
    H = sc.horizon_months
    g = P.get
    n = max([np.shape(v)[0] for v in P.values() if np.ndim(v) > 0] or [1])
    # an input that is the same for every sample stays a Python float: its arithmetic costs nothing per sample
    u0 = _sv(g("product.users_start"))
    r = _sv(1.0 + np.asarray(g("product.growth_monthly", 0.0) - g("product.churn_monthly", 0.0), dtype=float))
    price = _sv(g("product.price_per_user_month_usd"))
    var_pu = _sv(g("product.variable_cost_per_user_month_usd", 0.0))
    rate = _sv(g("discount_rate_annual"))

    api_pu, own_pu = route_costs(plan, P)
    costs = []
    for kind, per_user in (("api", api_pu), ("own", own_pu)):
        if not plan.routes or not np.any(np.asarray(per_user) != 0):
            continue
        key = "market.api_price_trend_annual" if kind == "api" else "market.gpu_price_trend_annual"
        k = _sv(market.monthly_factor(g(key, 1.0)))
        steps = []
        if kind == "api":
            steps = [(st.month - 1, _sv(g(f"market.api_price_steps[{i}].factor")))
                     for i, st in enumerate(sc.market.api_price_steps) if st.month <= H]
        costs.append(CostPath(kind, u0 * _sv(per_user), k, steps))

    fixed_pm, setup, bill, frac = fixed_costs(plan, P)
    init_amort, re_amort, re_cash = plan._training_patterns(H)
    fleets = []
    for rt in plan.routes:
        f = rt.fleet
        if f is None:
            continue
        pre = rt.prefix
        t_out = g("product.output_tokens_per_request", 0.0) * g("product.reasoning_multiplier", 1.0)
        c = f["replica_requests_per_second"]
        if c is None:  # a measured deployment: its throughput / output tokens per request, per sample
            c = g(f["capacity_path"]) / t_out
        fleets.append(FleetTerm(
            req_share=_sv(g("product.requests_per_user_month", 0.0) * rt.share), c=_sv(c), g=f["gpus_per_replica"],
            price=_sv(g(pre + ".usd_per_gpu_hour")), k=_sv(market.monthly_factor(g("market.gpu_price_trend_annual", 1.0))),
            x=_sv(g(pre + ".peak_to_mean")), n_min=_sv(g(pre + ".min_replicas", 1.0)), fixed=f["replicas"],
            hours=f["hours_per_month"]))
    return Terms(H, n, u0, r, price, var_pu, rate, costs, fixed_pm, setup, bill, frac, init_amort, re_amort, re_cash,
                 fleets=tuple(fleets), system_pm=system_costs(plan, P))


# --------------------------------------------------------------------------------------------------------------
# the two aggregations of the same terms
# --------------------------------------------------------------------------------------------------------------

def monthly_pnl(t: Terms, monthly: bool = True) -> dict[str, np.ndarray]:
    """The P&L month by month: per-sample summaries of shape (n,) and, with ``monthly``, per-month arrays of
    shape (n, H) (views of months x samples arrays: each month is a contiguous vector over the samples, the
    layout the monthly percentiles select along). Each cost path's monthly cost is the blocked geometric
    sequence of :func:`~billshape.plan.payback._geo_rows` (user growth x the market's monthly price factor,
    with the price steps)."""
    H, n = t.H, t.n
    months = np.arange(1, H + 1, dtype=float)

    def full(x):
        return _bc(np.asarray(_sv(x), dtype=float), n)

    # users, and the marginal inference cost: users x cost per user-month x the market's price path
    u0, r, price, var_pu = t.u0, t.r, t.price, t.var_pu
    users = _geo_rows(full(r), H, full(u0))  # (H, n)
    contribution = users * (price - var_pu)
    inference_usd = None
    for c in t.costs:
        steps = [(m0, full(f)) for m0, f in c.steps]
        rows = _geo_rows(full(r * c.k), H, full(c.scale), steps)
        inference_usd = rows if inference_usd is None else np.add(inference_usd, rows, out=inference_usd)
    fleet_out = None
    if t.fleets:  # rented fleets: whole replicas for each month's peak, every GPU-hour paid
        parts = [fleet_rows(f, users) for f in t.fleets]
        fleet_out = {k: sum(p[k] for p in parts) for k in parts[0]}
        inference_usd = fleet_out["usd"].copy() if inference_usd is None else inference_usd + fleet_out["usd"]
    if inference_usd is None:
        inference_usd = np.broadcast_to(0.0, (H, n))
    else:
        contribution -= inference_usd

    # fixed costs, training, set-up
    fixed_pm, setup, bill, frac = (full(x) for x in (t.fixed_pm, t.setup, t.bill, t.frac))
    init_amort, re_amort, re_cash = t.init_amort, t.re_amort, t.re_cash
    retrain = re_cash.any()

    cash = contribution - fixed_pm  # contribution is kept for the monthly rows
    if retrain:
        retrain_cash = re_cash[:, None] * (bill * frac)
        cash -= retrain_cash
    upfront = bill + setup
    # payback: when the cumulative cash turns non-negative for good (it may dip again after a retraining or
    # a price shock: payback is after the last dip), linear within that month; never: inf
    payback, cum = _payback_from_cash(H, cash, upfront, u0, r, price)

    rate = t.rate
    if np.ndim(rate) == 0:
        npv = ((1.0 + rate) ** (-months / 12.0)) @ cash - upfront
    else:
        npv = (cash * (1.0 + rate[None, :]) ** (-months[:, None] / 12.0)).sum(axis=0) - upfront
    user_months = users.sum(axis=0)
    contribution_total = contribution.sum(axis=0)
    amort_total = bill * (init_amort.sum() + frac * re_amort.sum())
    fixed_total = fixed_pm * H + setup
    training_total = bill * (1.0 + frac * re_cash.sum())
    inference_total = inference_usd.sum(axis=0)
    denom = training_total + inference_total
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(denom > 0, training_total / np.where(denom > 0, denom, 1.0), np.nan)
    system_share = _system_share(t.system_pm * H, denom, n)
    out = {
        "payback_month": payback,
        "cumulative_profit_usd": cum[-1],
        "npv_usd": npv,
        "contribution_margin_per_user_month_usd": contribution_total / user_months,
        "fully_loaded_margin_per_user_month_usd": (contribution_total - fixed_total - amort_total) / user_months,
        "training_share_of_lifetime_cost": share,
        "system_share_of_lifetime_cost": system_share,
        "lifetime_revenue_usd": user_months * price,
        "lifetime_inference_usd": inference_total,
        "lifetime_training_usd": training_total,
        "lifetime_fixed_usd": fixed_total,
        "upfront_usd": upfront,
    }
    if fleet_out is not None:
        out["lifetime_self_hosted_utilization"] = fleet_out["served"].sum(axis=0) / fleet_out["capacity"].sum(axis=0)
        out["lifetime_self_hosted_usd"] = fleet_out["usd"].sum(axis=0)
        out["lifetime_self_hosted_gpu_hours"] = fleet_out["gpu_hours"].sum(axis=0)
    if monthly:
        amort = init_amort[:, None] * bill + re_amort[:, None] * (bill * frac)
        fixed = np.broadcast_to(fixed_pm, (H, n))
        setup_m = np.broadcast_to(setup / H, (H, n))
        fully_loaded = contribution - fixed_pm - amort - setup / H
        monthly_rows = {
            "users": users, "revenue_usd": users * price, "inference_usd": inference_usd,
            "variable_usd": users * var_pu, "fixed_usd": fixed, "training_amortization_usd": amort,
            "setup_amortization_usd": setup_m,
            "training_cash_usd": retrain_cash if retrain else np.broadcast_to(0.0, (H, n)),
            "contribution_usd": contribution, "fully_loaded_profit_usd": fully_loaded,
            "cash_flow_usd": cash, "cumulative_cash_usd": cum,
            "contribution_margin_per_user_usd": contribution / users,
            "fully_loaded_margin_per_user_usd": fully_loaded / users,
        }
        if fleet_out is not None:
            monthly_rows.update({"self_hosted_gpu_hours": fleet_out["gpu_hours"], "self_hosted_usd": fleet_out["usd"],
                                 "self_hosted_utilization": fleet_out["served"] / fleet_out["capacity"],
                                 "self_hosted_replicas": fleet_out["replicas"]})
        out.update({k: np.broadcast_to(v, (H, n)).T for k, v in monthly_rows.items()})
    return out


def summary_pnl(t: Terms) -> dict[str, np.ndarray]:
    """The per-sample summaries of :func:`monthly_pnl` without its monthly arrays: the Monte Carlo hot path.

    The same terms, aggregated for speed (a test checks it against :func:`monthly_pnl` and against the plain
    per-sample loop of ``benchmarks/plan_loop_baseline.py``):

    * every lifetime total and the NPV are closed-form geometric sums per sample (users, revenue and each
      cost path are geometric in the month, piecewise at the API price steps), no samples x months pass;
    * only the payback needs the monthly cumulative cash, and :func:`~billshape.plan.payback._payback`
      certifies most samples from bounds of the geometric terms, the rest on a months x samples pass.
    """
    if t.fleets:  # a fleet's rent is a step function of the users: no closed form, the months x samples pass
        return _fleet_summaries(t)
    H, n = t.H, t.n
    u0, r, price, var_pu, rate = t.u0, t.r, t.price, t.var_pu, t.rate
    d = (1.0 + rate) ** (-1.0 / 12.0)  # discount factor per month

    # users and revenue: closed forms
    user_months = u0 * _geo_sum(r, H)
    revenue_total = user_months * price
    unit = u0 * (price - var_pu)
    npv = unit * d * _geo_sum(r * d, H)
    terms = []  # each cost path's monthly cost: -scale x level x (r k)^(month - 1), k its market factor

    inference_total = 0.0
    for c in t.costs:
        k, scale, steps = c.k, c.scale, c.steps
        x = r * k
        # lifetime cost and its NPV, segment by segment between price steps
        bounds = sorted({0, H, *[m0 for m0, _ in steps]})
        level = 1.0
        xd = x * d
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            for m0, f in steps:
                if m0 == lo:
                    level = level * f
            seg = scale * level
            if lo:
                inference_total = inference_total + seg * x ** lo * _geo_sum(x, hi - lo)
                npv = npv - seg * d * xd ** lo * _geo_sum(xd, hi - lo)
            else:
                inference_total = inference_total + seg * _geo_sum(x, hi - lo)
                npv = npv - seg * d * _geo_sum(xd, hi - lo)
        terms.append((-scale, k, steps))

    fixed_pm, setup, bill, frac = t.fixed_pm, t.setup, t.bill, t.frac
    init_amort, re_amort, re_cash = t.init_amort, t.re_amort, t.re_cash
    contribution_total = revenue_total - var_pu * user_months - inference_total
    upfront = bill + setup

    fixed_total = fixed_pm * H + setup
    training_total = bill * (1.0 + frac * re_cash.sum())
    npv = npv - (fixed_pm * d * _geo_sum(d, H) + upfront)
    cum_end = contribution_total - fixed_pm * H - bill * frac * re_cash.sum() - upfront
    retrain = bill * frac
    retrain_months = np.nonzero(re_cash)[0]
    if retrain_months.size:  # the retrainings' discounted cash: one weighted sum of the discount factors
        disc = 0.0
        for m in retrain_months:
            disc = disc + re_cash[m] * d ** (m + 1)
        npv = npv - retrain * disc
    payback = _payback(H, n, unit, terms, fixed_pm, retrain, re_cash, upfront, u0, r, price)

    amort_total = bill * (init_amort.sum() + frac * re_amort.sum())
    denom = _bc(training_total + inference_total, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.array(_bc(training_total / denom, n))
    empty = ~(denom > 0)
    if empty.any():
        share[empty] = np.nan
    system_share = _system_share(t.system_pm * H, denom, n)

    def full(x):
        return _bc(np.asarray(x, dtype=float), n)

    return {
        "payback_month": payback,
        "cumulative_profit_usd": full(cum_end),
        "npv_usd": full(npv),
        "contribution_margin_per_user_month_usd": full(contribution_total / user_months),
        "fully_loaded_margin_per_user_month_usd": full((contribution_total - fixed_total - amort_total)
                                                       / user_months),
        "training_share_of_lifetime_cost": share,
        "system_share_of_lifetime_cost": system_share,
        "lifetime_revenue_usd": full(revenue_total),
        "lifetime_inference_usd": full(inference_total),
        "lifetime_training_usd": full(training_total),
        "lifetime_fixed_usd": full(fixed_total),
        "upfront_usd": full(upfront),
    }


def _fleet_summaries(t: Terms) -> dict[str, np.ndarray]:
    """:func:`monthly_pnl`'s summaries for a plan with fleet routes, with one lean months x samples pass.

    Everything but the fleets' rent is the closed form of :func:`summary_pnl` (a plan without them). The rent
    steps with whole replicas, so it takes a pass over months x samples, but only the replica counts, computed
    as :func:`fleet_rows` computes them (the same operations in the same order, so the same ``ceil``), each month's
    rent from them and the blocked geometric GPU price path (:func:`~billshape.plan.payback._geo_rows`, not a
    ``pow`` per cell), and the monthly cash for the payback, in place: about a third of the vector operations
    of :func:`monthly_pnl`, whose results it matches to rounding (a test checks it).
    """
    H, n = t.H, t.n

    def full(x):
        return _bc(np.asarray(_sv(x), dtype=float), n)

    out = summary_pnl(dataclasses.replace(t, fleets=()))
    users = _geo_rows(full(t.r), H, full(t.u0))  # (H, n), as monthly_pnl's
    user_months = t.u0 * _geo_sum(t.r, H)
    d = (1.0 + t.rate) ** (-1.0 / 12.0)
    rent_total = rent_npv = served = paid = gpu_hours = 0.0
    rent = np.zeros((H, n))
    reps = np.empty((H, n))
    disc = d * _geo_rows(full(d), H, full(1.0)) if np.ndim(d) else d ** np.arange(1, H + 1, dtype=float)
    for f in t.fleets:
        lam_per_user = f.req_share / (3600.0 * f.hours)
        if f.fixed is not None:
            reps.fill(float(f.fixed))
        else:  # fleet_rows' n_rep, operation for operation
            np.multiply(users, f.req_share, out=reps)
            reps /= 3600.0 * f.hours
            reps *= f.x
            reps /= f.c
            reps *= 1.0 - 1e-12
            np.ceil(reps, out=reps)
            np.maximum(reps, f.n_min, out=reps)
        n_sum = reps.sum(axis=0)
        served = served + lam_per_user * user_months
        paid = paid + n_sum * f.c
        gpu_hours = gpu_hours + n_sum * (f.g * f.hours)
        reps *= _geo_rows(full(f.k), H, full(f.g * f.hours * np.asarray(f.price, dtype=float)))  # the rent
        rent += reps
    rent_total = rent.sum(axis=0)
    rent_npv = disc @ rent if np.ndim(disc) == 1 else (disc * rent).sum(axis=0)

    # the payback: certified from geometric upper bounds of the rent (max(N_min, ceil(y)) <= N_min + 1 + y, y the
    # replicas' exact need, proportional to the users) with the exact first month, as summary_pnl certifies the
    # rest; the samples it leaves (a few percent) from their monthly cash, as monthly_pnl's
    def sub(x, rows):
        return full(x)[rows]

    def exact(rows):
        cash = users[:, rows] * sub(t.price - t.var_pu, rows)
        for c in t.costs:
            steps = [(m0, sub(fc, rows)) for m0, fc in c.steps]
            cash -= _geo_rows(sub(t.r * c.k, rows), H, sub(c.scale, rows), steps)
        cash -= rent[:, rows]
        cash -= sub(t.fixed_pm, rows)
        if t.re_cash.any():
            cash -= t.re_cash[:, None] * sub(t.bill * t.frac, rows)
        return _payback_from_cash(H, cash, sub(t.bill + t.setup, rows), sub(t.u0, rows), sub(t.r, rows),
                                  sub(t.price, rows))[0]

    terms = [(-c.scale, c.k, c.steps) for c in t.costs]
    adjust = 0.0
    for f in t.fleets:
        per_gpu_month = f.g * f.hours * np.asarray(f.price, dtype=float)  # rent of one replica in month 1
        if f.fixed is not None:
            terms.append((-float(f.fixed) * per_gpu_month, np.asarray(f.k, dtype=float) / t.r, []))
            continue
        need = f.req_share / (3600.0 * f.hours) * f.x / f.c  # replicas per user, before rounding up
        terms += [(-(f.n_min + 1.0) * per_gpu_month, np.asarray(f.k, dtype=float) / t.r, []),
                  (-t.u0 * need * per_gpu_month, f.k, [])]
        adjust = adjust + ((f.n_min + 1.0) + t.u0 * need) * per_gpu_month
    adjust = adjust - rent[0]
    unit = t.u0 * (t.price - t.var_pu)
    out["payback_month"] = _payback(H, n, unit, terms, t.fixed_pm, t.bill * t.frac, t.re_cash, t.bill + t.setup,
                                    t.u0, t.r, t.price, month1_adjust=adjust, exact=exact)

    inference = out["lifetime_inference_usd"] + rent_total
    training = out["lifetime_training_usd"]
    denom = training + inference
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(denom > 0, training / np.where(denom > 0, denom, 1.0), np.nan)
    out.update({
        "cumulative_profit_usd": out["cumulative_profit_usd"] - rent_total,
        "npv_usd": out["npv_usd"] - rent_npv,
        "contribution_margin_per_user_month_usd": out["contribution_margin_per_user_month_usd"] - rent_total / user_months,
        "fully_loaded_margin_per_user_month_usd": out["fully_loaded_margin_per_user_month_usd"] - rent_total / user_months,
        "training_share_of_lifetime_cost": share,
        "system_share_of_lifetime_cost": _system_share(t.system_pm * H, denom, n),
        "lifetime_inference_usd": inference,
        "lifetime_self_hosted_utilization": full(served) / paid,
        "lifetime_self_hosted_usd": rent_total,
        "lifetime_self_hosted_gpu_hours": gpu_hours,
    })
    return out


# --------------------------------------------------------------------------------------------------------------
# per-user costs and schedules (read by pnl_terms)
# --------------------------------------------------------------------------------------------------------------

def route_costs(plan, P: dict[str, Any]):
    """USD per user-month of API traffic and of self-hosted traffic, before the market paths."""
    g = P.get
    req = g("product.requests_per_user_month", 0.0)
    t_in = g("product.input_tokens_per_request", 0.0)
    t_out = g("product.output_tokens_per_request", 0.0) * g("product.reasoning_multiplier", 1.0)
    h = g("product.cache_hit_rate", 0.0)
    api = 0.0
    own = 0.0
    for r in plan.routes:
        pre = r.prefix
        if r.fleet is not None:
            continue  # billed per provisioned GPU-hour: the fleet term of pnl_terms, not a cost per token
        if r.kind == "api":
            a_in = g(pre + ".usd_per_million_input_tokens", r.api.input if r.api else None)
            a_out = g(pre + ".usd_per_million_output_tokens", r.api.output if r.api else None)
            a_cache = g(pre + ".usd_per_million_cached_input_tokens", r.api.cached_input if r.api else a_in)
        elif r.kind == "measured":
            a_in = g(pre + ".usd_per_million_input_tokens")
            a_out = g(pre + ".usd_per_million_output_tokens")
            a_cache = g(pre + ".usd_per_million_cached_input_tokens", a_in)
        elif r.kind == "model":
            q = plan.model_quotes[pre]
            scale = (g(pre + ".usd_per_gpu_hour") / q["usd_per_gpu_hour"]) * (q["utilization"] / g(pre + ".utilization", 1.0))
            a_in = q["usd_per_million_input_tokens"] * scale
            a_out = q["usd_per_million_output_tokens"] * scale
            a_cache = 0.0
        else:
            per_hour = inference.deployment_usd_per_hour(g(pre + ".usd_per_gpu_hour"), g(pre + ".gpus"))
            u = g(pre + ".utilization", 1.0)
            a_out = inference.usd_per_million_tokens(per_hour, g(pre + ".tokens_per_second"), u)
            tin = g(pre + ".input_tokens_per_second")
            a_in = 0.0 if tin is None else inference.usd_per_million_tokens(per_hour, tin, u)
            a_cache = 0.0
        per_user = req * (t_in * ((1.0 - h) * a_in + h * a_cache) + t_out * a_out) / 1e6
        if r.kind == "api":
            api = api + r.share * per_user
        else:
            own = own + r.share * per_user
    return api, own

def _system_share(system_total, model_total, n: int) -> np.ndarray:
    """system / (system + model) per sample; NaN where there is no cost at all."""
    denom = np.asarray(_bc(system_total + model_total, n), dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.array(_bc(system_total / np.where(denom > 0, denom, 1.0), n), dtype=float)
    out[~(denom > 0)] = np.nan
    return out


def staff_monthly(plan, P: dict[str, Any]):
    """Staff given as people: the sum over roles of headcount x loaded USD per year / 12 [USD per month]."""
    g = P.get
    total = 0.0
    for prefix in plan.scenario.fixed_monthly.staff_prefixes():
        total = total + g(prefix + ".headcount", 0.0) * g(prefix + ".loaded_usd_per_year", 0.0) / 12.0
    return total


def system_costs(plan, P: dict[str, Any]):
    """The system's monthly cost (seed 002: the model is 10 % of the effort, the system 90 %): staff (in dollars
    or as people), monitoring, data pipelines, evaluation and on-call [USD per month], a float or shape (n,)."""
    g = P.get
    return _sv(sum(g(f"fixed_monthly.{k}", 0.0) for k in SYSTEM_KEYS) + staff_monthly(plan, P))


def fixed_costs(plan, P: dict[str, Any]):
    """Fixed monthly costs (incl. self-hosted routes' standing costs), set-up, the training bill and the
    retraining fraction per sample: each a float when the same for every sample, else shape (n,)."""
    g = P.get
    fixed_pm = sum(g(f"fixed_monthly.{k}", 0.0) for k in FixedMonthly.model_fields) + staff_monthly(plan, P)
    setup = 0.0
    for rt in plan.routes:
        if rt.kind != "api":
            fixed_pm = fixed_pm + g(rt.prefix + ".fixed_monthly_usd", 0.0)
            setup = setup + g(rt.prefix + ".setup_usd", 0.0)
    bill = plan.training_usd_p50  # scaled by each uncertain input's ratio to its median (the bill is linear in it)
    for path in plan.training_scale_paths:
        v = plan.values[path]
        if isinstance(v, Dist):
            med = v.ppf(0.5)
            bill = bill * (_sv(g(path)) / med) if med > 0 else bill
    return _sv(fixed_pm), _sv(setup), _sv(bill), _sv(g("training.retrain_cost_fraction", 1.0))


def training_patterns(training, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-month shares of the first training bill over ``H`` months: amortisation of the first run (over
    ``amortization_months``), amortisation of the retrainings (every ``retrain_every_months``, each amortised
    the same way) and the retrainings' cash (paid at the start of their month)."""
    t = training
    init, re_am, re_cash = np.zeros(H), np.zeros(H), np.zeros(H)
    if t is None:
        return init, re_am, re_cash
    A = t.amortization_months
    init[:A] = 1.0 / A
    if t.retrain_every_months:
        for start in range(t.retrain_every_months, H, t.retrain_every_months):
            re_cash[start] += 1.0
            re_am[start:start + A] += 1.0 / A
    return init, re_am, re_cash


def tokens_per_user(P: dict[str, Any]) -> float:
    """Billed tokens (input + output incl. reasoning) per user-month at the given parameter values."""
    g = P.get
    per_req = g("product.input_tokens_per_request", 0.0) + g("product.output_tokens_per_request", 0.0) * g(
        "product.reasoning_multiplier", 1.0)
    return float(np.asarray(g("product.requests_per_user_month", 0.0) * per_req).ravel()[0])
