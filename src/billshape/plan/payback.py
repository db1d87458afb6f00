"""Geometric sums and the payback month: the array helpers of the Monte Carlo P&L.

Users grow geometrically (:math:`U_m = U_0 r^{m-1}`, :math:`r = 1 + g - c`) and every price path is geometric
in the month (:func:`billshape.market.monthly_factor`), piecewise at the API price steps, so each route's
monthly cost is a geometric sequence: :func:`_geo_sum` gives its lifetime total in closed form and
:func:`_geo_rows` its months x samples rows. Payback (seed 000 [1]_) is the first time the cumulative cash turns
non-negative for good, linear within that month (:func:`billshape.business.payback_months_unchecked`):
:func:`_payback` certifies most samples without a months x samples pass and sends the rest to the exact path
(:func:`_payback_months`); :func:`_payback_from_cash` does it from the full monthly cash of the monthly view.

References
----------
.. [1] billshape seed 000: 280 A100 x 2 weeks x $2.5 = $235,200 paid back by 10,000 users x $10 in 2.352 months.
"""

from __future__ import annotations

import math

import numpy as np

from billshape import business

def _geo_sum(x: np.ndarray, length: int) -> np.ndarray:
    r"""``sum_{j=0}^{length-1} x^j`` elementwise: ``expm1(L log x) / (x - 1)``, or ``L`` where ``x == 1``.

    ``x - 1`` is exact near 1 (Sterbenz), ``log``/``expm1`` keep full relative precision: a few ulps.
    """
    x = np.asarray(x, dtype=float)
    d = x - 1.0
    one = d == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.expm1(length * np.log(x)) / d
    if one.any():  # (np.where costs ~10x a multiplication per element: patch the rare exact ones instead)
        if out.ndim == 0:
            return np.float64(length)
        out = np.array(out, dtype=float)
        out[one] = float(length)
    return out


def _geo_rows(x: np.ndarray, months: int, scale: np.ndarray,
              steps: list[tuple[int, np.ndarray]] = ()) -> np.ndarray:
    """``out[m, i] = scale[i] * x[i]^m * prod(step factors from their month on)``, shape (months, n).

    Blocked products (x^(Ba + b) = (x^B)^a x^b, B ~ sqrt(months)): two short recurrences over vectors of
    samples and one multiplication per cell; ``scale`` and the steps from block boundaries on are folded into
    the block factors (per sample, not per cell).
    """
    n = x.shape[0]
    B = max(1, math.isqrt(months - 1) + 1)
    nb = -(-months // B)
    small = np.empty((B, n))
    small[0] = 1.0
    for k in range(1, B):
        np.multiply(small[k - 1], x, out=small[k])
    big = np.empty((nb, n))
    big[0] = scale
    if nb > 1:
        step = small[B - 1] * x
        for k in range(1, nb):
            np.multiply(big[k - 1], step, out=big[k])
    partial = []
    for m0, f in steps:  # m0: 0-based first month at the new price
        a = -(-m0 // B)
        big[a:] *= f
        if m0 < min(a * B, months):
            partial.append((m0, min(a * B, months), f))
    full = np.empty((nb, B, n))
    np.multiply(big[:, None, :], small[None, :, :], out=full)
    out = full.reshape(nb * B, n)[:months]
    for lo, hi, f in partial:
        out[lo:hi] *= f
    return out


def _levels(steps, months: int) -> list[tuple[int, np.ndarray]]:
    """Cumulative price-step levels: ``[(first 0-based month, level from then on), ...]`` in month order."""
    out, level = [], None
    for m0, f in sorted(steps, key=lambda s: s[0]):
        level = f if level is None else level * f
        out.append((m0, level))
    return [(m, lv) for m, lv in out if m < months]


def _payback(H: int, n: int, unit, terms, fixed_pm, retrain, re_cash, upfront, u0, r, price,
             month1_adjust=0.0, exact=None) -> np.ndarray:
    """Payback month per sample: after the last month whose cumulative cash is negative, linear within the month
    that turns it non-negative for good (0 with no up-front spend and no month in the red; inf: never).

    The monthly cash is ``r^i (unit + sum_k coef_k level_k(i) k_k^i) - fixed - retrain re_cash[i]`` (``i`` =
    month - 1; ``r`` the users' monthly ratio, ``k`` a route's market factor, ``level`` its price steps).
    Fast path, no months x samples pass: a sample is *certified* when its first month's cumulative cash is
    already >= 0 and stays so, proved by a lower bound ``b`` of the smooth cash over months 2..H (each factor
    is geometric, so its extremes are at the ends; a stepped level at its lowest / highest) that covers the
    retraining spend at its worst rate ``w = max_i R(i) / i`` (``R(i)`` the retrainings in months 2..i+1):
    ``C(i) >= C(0) + i (b - retrain w) >= C(0) >= 0``. The other samples take the exact path
    (:func:`_payback_months`: the monthly cumulative cash, months x samples).
    Any argument but ``terms`` may be a float (the same for all ``n`` samples).

    Where some cost is not geometric (a fleet's rent steps with whole replicas), ``terms`` may hold geometric
    upper bounds of it: the certificate stays a proof. ``month1_adjust`` then corrects the first month's cash to
    its exact value (bound minus exact cost, per sample), and ``exact(rows)`` gives the payback of the samples
    the certificate leaves from their exact monthly cash.
    """
    cash0 = unit - fixed_pm - retrain * re_cash[0]  # month 1 (i = 0)
    margin = unit  # lower bound of the bracket over months 2..H
    for coef, k, steps in terms:
        lv = _levels(steps, H)
        at0 = [level for m0, level in lv if m0 == 0]
        cash0 = cash0 + coef * (at0[-1] if at0 else 1.0)
        if H > 1:
            with np.errstate(over="ignore", under="ignore", divide="ignore"):
                ends = np.exp((H - 1) * np.log(k))  # a bound: exp/log are SIMD, pow is not
            in_force = [level for m0, level in lv if m0 <= 1][-1:] + [level for m0, level in lv if m0 > 1]
            if not any(m0 <= 1 for m0, _ in lv):
                in_force.append(1.0)
            lv_lo = np.minimum.reduce([_bc(v, n) for v in in_force])
            lv_hi = np.maximum.reduce([_bc(v, n) for v in in_force])
            if np.all(coef <= 0):  # a cost (the usual case): at its highest
                margin = margin + coef * lv_hi * np.maximum(k, ends)
            else:
                margin = margin + np.where(coef >= 0, coef * lv_lo * np.minimum(k, ends), coef * lv_hi * np.maximum(k, ends))
    cash0 = cash0 + month1_adjust
    cum0 = cash0 - upfront
    ok = np.array(_bc(cum0 >= 0.0, n))
    if H > 1:
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            r_end = np.exp((H - 1) * np.log(r))
        # a negative margin is never certified, so the bound is only needed where it is >= 0
        ok &= margin >= 0.0
        lower = margin * np.minimum(r, r_end) - fixed_pm
        worst = float(np.max(np.cumsum(re_cash[1:]) / np.arange(1, H)))
        ok &= lower >= retrain * worst if worst > 0 else lower >= 0.0
    all_ok = bool(ok.all())
    with np.errstate(divide="ignore", invalid="ignore"):
        spend = np.clip(price - cash0 / u0, 0.0, price)
        upf = np.maximum(upfront, 0.0)
    if not all_ok:  # the other samples are done below; keep the call's inputs finite
        spend = np.array(_bc(spend, n))
        upf = np.array(_bc(upf, n))
        spend[~ok] = 0.0
        upf[~ok] = 0.0
    payback = np.array(_bc(np.minimum(business.payback_months_unchecked(upf, u0, price, spend), 1.0), n))
    none = _bc(upfront <= 0, n)
    if none.any():
        payback[none] = 0.0
    rest = np.nonzero(~ok)[0] if not all_ok else np.zeros(0, dtype=np.intp)
    if rest.size and exact is not None:
        payback[rest] = exact(rest)
    elif rest.size:
        def sub(a):
            return _bc(a, n)[rest]

        r_sub = sub(r)
        sub_terms = [(sub(unit), r_sub, [])] + [(sub(c), r_sub * sub(k), [(m0, sub(f)) for m0, f in st])
                                               for c, k, st in terms]
        payback[rest] = _payback_months(H, sub_terms, sub(fixed_pm), sub(retrain), re_cash, sub(upfront),
                                        sub(u0), r_sub, sub(price))
    return payback


def _payback_months(H: int, terms, fixed_pm, retrain, re_cash, upfront, u0, r, price) -> np.ndarray:
    """The exact payback path for the samples the certificate leaves (see :func:`_payback`; a few percent):
    their monthly cumulative cash, samples x months, each term's sequence ``coef x^i`` as ``exp(i log x)`` and
    one ``cumsum``: a handful of array operations whatever the horizon, since on these small arrays the count of
    operations (each one a hand-over of the interpreter between the Monte Carlo threads) is the cost."""
    i = np.arange(H, dtype=float)
    cash = None
    for coef, base, steps in terms:
        rows = np.log(base)[:, None] * i
        np.exp(rows, out=rows)
        rows *= np.asarray(coef)[:, None]
        for m0, f in steps:
            rows[:, m0:] *= np.asarray(f)[:, None]
        cash = rows if cash is None else np.add(cash, rows, out=cash)
    cash -= np.asarray(fixed_pm)[:, None]
    if re_cash.any():
        cash -= np.asarray(retrain)[:, None] * re_cash
    cum = np.cumsum(cash, axis=1, out=cash)
    cum -= np.asarray(upfront)[:, None]
    return _payback_from_cum(H, cum.T, upfront, u0, r, price)


def _payback_from_cash(H: int, cash: np.ndarray, upfront, u0, r, price):
    """Payback month per sample, and the cumulative cash (months x samples), from the monthly cash flow
    (months x samples, before the up-front spend)."""
    n = cash.shape[1]
    cum = cash.copy()
    cum[0] -= upfront
    for m in range(1, H):  # H vector additions: faster than cumsum along either axis on large arrays
        np.add(cum[m - 1], cum[m], out=cum[m])
    return _payback_from_cum(H, cum, upfront, u0, r, price), cum


def _payback_from_cum(H: int, cum: np.ndarray, upfront, u0, r, price) -> np.ndarray:
    """Payback month per sample from the cumulative cash after the up-front spend (months x samples, or a
    transposed view): after the last month in the red, linear within the month that turns it non-negative."""
    n = cum.shape[1]
    upfront, u0, r, price = (_bc(np.asarray(a, dtype=float), n) for a in (upfront, u0, r, price))
    neg = cum < 0.0
    month_no = np.arange(1, H + 1, dtype=np.uint8 if H < 256 else np.uint16)[:, None]
    last_neg = np.multiply(neg, month_no, dtype=month_no.dtype).max(axis=0).astype(np.intp)  # 0: never
    ever_neg = (last_neg > 0) | (upfront > 0)
    f_all = last_neg  # index of the month in which the cumulative cash turns non-negative for good
    payback = np.where(ever_neg, np.inf, 0.0)
    rows = np.nonzero(ever_neg & (f_all < H))[0]
    if rows.size:
        f = f_all[rows]
        cum_f = cum[f, rows]
        before = np.where(f > 0, cum[np.maximum(f - 1, 0), rows], -upfront[rows])
        cash_f = cum_f - before
        remaining = np.maximum(-before, 0.0)
        u_m = u0[rows] * r[rows] ** f
        rev_pu = price[rows]
        spend_pu = np.clip(rev_pu - cash_f / u_m, 0.0, rev_pu)  # all costs of that month per user
        frac_m = business.payback_months_unchecked(remaining, u_m, rev_pu, spend_pu)
        frac_m = np.where(remaining > 0, frac_m, 0.0)
        payback[rows] = f + np.minimum(frac_m, 1.0)
    return payback


def _bc(x, n: int) -> np.ndarray:
    """``x`` (a scalar or shape (n,)) as shape (n,): itself, or a read-only zero-stride view of one value (what
    ``np.broadcast_to`` returns, without its per-call cost)."""
    a = np.asarray(x)
    if a.shape == (n,):
        return a
    one = np.array(a.reshape(-1)[:1] if a.size == 1 else a)
    if one.size != 1:
        return np.broadcast_to(a, (n,))
    view = np.ndarray((n,), one.dtype, one, 0, (0,))
    view.flags.writeable = False
    return view


def _sv(x) -> float | np.ndarray:
    """A parameter (scalar or (n, 1)) as a Python float when it is one number for all samples, else shape (n,)."""
    a = np.asarray(x, dtype=float)
    return float(a) if a.ndim == 0 else a.reshape(-1)

