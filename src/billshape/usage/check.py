"""Budget and unit-economics rules over the ledger: each breach (who, how much, since when), the projected breach
date from the forecast, and the 80 / 90 / 100 % budget thresholds.

Rules (:func:`check`; from a small YAML file through :func:`read_rules`, or given directly):

* ``budget_usd`` per ``period`` (``day``, ``week`` from Monday, ``month``) and per ``by`` group (or the total):
  a group is in breach iff its spend in the current period (the one holding the ledger's last day) is at least
  the budget; it has ``warning`` levels at :data:`THRESHOLDS` (80 % and 90 %) before that. ``since``: the first
  day its cumulative spend reached the level. Not yet in breach: ``projected_breach_date``, the first day the
  forecast's P50 path (:mod:`billshape.usage.forecast`) takes the cumulative spend to the budget within the
  period (None when it does not);
* ``max_cost_per_request`` [USD]: in breach iff the period's cost per request exceeds it; ``since``: the first
  day from which the cumulative cost per request stayed above it;
* ``min_margin`` in [-1, 1) with a ``revenue`` table (``{customer: USD in the period}``) or a scenario's
  ``product.price_per_user_month_usd`` (times the most distinct users the customer had on one day of the period,
  at least 1, over the period's share of a month): in
  breach iff the margin to date, 1 - cost / revenue to date (revenue prorated over the period's days), is below
  it. ``projected_margin``: with the forecast's P50 for the whole period.
"""

from __future__ import annotations

import calendar
import datetime as _dt

import numpy as np

from billshape.errors import BillshapeInputError
from billshape.results import Result, derived, user
from billshape.usage import forecast as F

THRESHOLDS = (0.8, 0.9, 1.0)  #: budget levels reported: 80 % and 90 % warn, 100 % is a breach
PERIODS = ("day", "week", "month")


def period_bounds(as_of: _dt.date, period: str) -> tuple[_dt.date, _dt.date]:
    """First and last day of the ``period`` that holds ``as_of``."""
    if period == "day":
        return as_of, as_of
    if period == "week":
        start = as_of - _dt.timedelta(days=as_of.weekday())
        return start, start + _dt.timedelta(days=6)
    return as_of.replace(day=1), as_of.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])


def first_reach(days: list, cumulative: np.ndarray, level: float):
    """The first day whose cumulative value is at least ``level`` (None if none)."""
    hit = np.flatnonzero(cumulative >= level)
    return days[int(hit[0])] if hit.size else None


def since_above(days: list, values: np.ndarray, limit: float, above: bool = True):
    """The first day of the trailing run of days whose value is above (or below) ``limit`` (None if the last is not)."""
    bad = values > limit if above else values < limit
    if not bad.size or not bad[-1]:
        return None
    good = np.flatnonzero(~bad)
    return days[int(good[-1]) + 1 if good.size else 0]


def budget_status(days: list, daily_usd, budget_usd: float, projected_daily_usd=None, days_to_come: list | None = None) -> dict:
    """One group's budget status over the period's days so far (pure): spend, share of budget, ``levels`` reached
    (each with ``since``), ``breach`` (iff spend >= budget) and the projected breach date from a P50 path."""
    y = np.asarray(daily_usd, dtype=float)
    cum = np.cumsum(y)
    spend = float(cum[-1]) if cum.size else 0.0
    levels = []
    for t in THRESHOLDS:
        day = first_reach(days, cum, t * budget_usd)
        if day is not None:
            levels.append({"threshold": t, "since": day.isoformat()})
    breach = spend >= budget_usd
    projected = None
    if not breach and projected_daily_usd is not None and days_to_come:
        day = first_reach(days_to_come, spend + np.cumsum(np.asarray(projected_daily_usd, dtype=float)), budget_usd)
        projected = day.isoformat() if day is not None else None
    return {"spend_usd": F._round(spend), "budget_usd": budget_usd, "share": F._round(spend / budget_usd),
            "levels": levels, "breach": bool(breach), "since": levels[-1]["since"] if breach else None,
            "over_usd": F._round(max(spend - budget_usd, 0.0)), "projected_breach_date": projected}


class Check(Result):
    """Each rule's status per group (``statuses``), the breaches among them (``breaches``: ``rule``, ``key``,
    ``amount``, ``limit``, ``since``) and the warnings (80 / 90 % of a budget); ``ok`` iff no breach."""

    as_of: str
    period: str
    period_start: str
    period_end: str
    by: str | None
    statuses: list[dict]
    breaches: list[dict]
    warnings: list[dict]
    ok: bool


def _positive(name: str, value, allow_zero: bool = False):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or \
            (value < 0 if allow_zero else value <= 0):
        raise BillshapeInputError(name, value, ">= 0" if allow_zero else "> 0 (USD)")
    return float(value)


def check_series(periods: list, groups: dict, *, budget_usd: float | None = None, period: str = "month",
                 by: str | None = None, max_cost_per_request: float | None = None, min_margin: float | None = None,
                 revenue: dict | None = None, price_per_user_month_usd: float | None = None,
                 samples: int = 500, seed: int = 0) -> Check:
    """:func:`check` on series already loaded (:func:`billshape.usage.forecast.load_series`)."""
    if period not in PERIODS:
        raise BillshapeInputError("period", period, "one of " + ", ".join(PERIODS))
    budget_usd = _positive("budget_usd", budget_usd)
    max_cost_per_request = _positive("max_cost_per_request", max_cost_per_request)
    if min_margin is not None and (isinstance(min_margin, bool) or not -1 <= min_margin < 1):
        raise BillshapeInputError("min_margin", min_margin, "in [-1, 1)")
    if min_margin is not None and revenue is None and price_per_user_month_usd is None:
        raise BillshapeInputError("min_margin", min_margin, "with a `revenue` table or a `scenario` price")
    if budget_usd is None and max_cost_per_request is None and min_margin is None:
        raise BillshapeInputError("budget_usd", None, "a rule: `budget_usd`, `max_cost_per_request` or `min_margin`")
    as_of = periods[-1]
    start, end = period_bounds(as_of, period)
    lo = next(i for i, d in enumerate(periods) if d >= start) if periods[0] <= start else 0
    days = periods[lo:]
    to_come = [as_of + _dt.timedelta(days=i + 1) for i in range((end - as_of).days)]
    n_days = (end - start).days + 1
    elapsed = (as_of - start).days + 1
    if min_margin is not None and revenue is not None and not set(revenue) & set(groups):
        raise BillshapeInputError("revenue", ", ".join(sorted(revenue))[:80], "rows naming the checked groups: " +
                                  ", ".join(sorted(groups))[:120], "check `by` customer with a revenue per customer")
    statuses, breaches, warns = [], [], []
    for key, g in sorted(groups.items(), key=lambda kv: -kv[1]["usd"].sum()):
        y = g["usd"][lo:]
        need_fc = budget_usd is not None or min_margin is not None
        p50 = np.zeros(len(to_come))
        if need_fc and to_come:
            paths, _ = F.simulate_daily(g["usd"], len(to_come), samples, seed)
            p50 = np.median(paths, axis=0)
        if budget_usd is not None:
            s = budget_status(days, y, budget_usd, p50, to_come)
            statuses.append({"rule": "budget_usd", "key": key, **s})
            if s["breach"]:
                breaches.append({"rule": "budget_usd", "key": key, "amount": s["spend_usd"], "limit": budget_usd,
                                 "over": s["over_usd"], "since": s["since"]})
            elif s["levels"]:
                warns.append({"rule": "budget_usd", "key": key, "threshold": s["levels"][-1]["threshold"],
                              "amount": s["spend_usd"], "limit": budget_usd, "since": s["levels"][-1]["since"],
                              "projected_breach_date": s["projected_breach_date"]})
        req = g["requests"][lo:]
        if max_cost_per_request is not None and req.sum() > 0:
            cum_r = np.cumsum(req)
            ratio = np.divide(np.cumsum(y), cum_r, out=np.zeros_like(y), where=cum_r > 0)
            cpr = float(y.sum() / req.sum())
            breach = cpr > max_cost_per_request
            statuses.append({"rule": "max_cost_per_request", "key": key, "usd_per_request": cpr, "breach": bool(breach)})
            if breach:
                breaches.append({"rule": "max_cost_per_request", "key": key, "amount": cpr, "limit": max_cost_per_request,
                                 "over": cpr - max_cost_per_request,
                                 "since": _iso(since_above(days, ratio, max_cost_per_request))})
        if min_margin is not None:
            if revenue is not None:
                rev = revenue.get(key)
                if rev is None:
                    continue
            else:
                rev = price_per_user_month_usd * max(int(g["users"][lo:].max()) if len(g["users"][lo:]) else 0, 1) * \
                    n_days / (365.25 / 12)
            rev_to_date = rev * np.arange(1, len(days) + 1) / n_days
            margin_path = 1 - np.cumsum(y) / np.where(rev_to_date > 0, rev_to_date, np.inf)
            margin = float(margin_path[-1]) if rev > 0 else -1.0
            projected = 1 - (y.sum() + p50.sum()) / rev if rev > 0 else -1.0
            breach = margin < min_margin
            statuses.append({"rule": "min_margin", "key": key, "revenue_usd": F._round(rev),
                             "revenue_to_date_usd": F._round(rev * elapsed / n_days), "margin": F._round(margin),
                             "projected_margin": F._round(projected), "breach": bool(breach)})
            if breach:
                breaches.append({"rule": "min_margin", "key": key, "amount": F._round(margin), "limit": min_margin,
                                 "over": F._round(min_margin - margin),
                                 "since": _iso(since_above(days, margin_path, min_margin, above=False))})
    rules = [user(n, v, u, n) for n, v, u in (("budget_usd", budget_usd, "USD"), ("max_cost_per_request",
             max_cost_per_request, "USD/request"), ("min_margin", min_margin, None)) if v is not None]
    return Check(as_of=as_of.isoformat(), period=period, period_start=start.isoformat(), period_end=end.isoformat(),
                 by=by, statuses=statuses, breaches=breaches, warnings=warns, ok=not breaches,
                 assumptions=[*rules, user("period", period, None, "period"),
                              derived("thresholds", list(THRESHOLDS), "share of budget", "80 / 90 % warn, 100 % breach"),
                              derived("as of", as_of.isoformat(), "date", "the ledger's last day")])


def _iso(d):
    return None if d is None else d.isoformat()


def check(db: str, *, by: str | None = None, engine: str | None = None, **rules) -> Check:
    """Load the ledger's daily series ``by`` group and apply the rules (:func:`check_series`)."""
    s = F.load_series(db, by, engine)
    return check_series(s["periods"], s["groups"], by=by, **rules)


def read_rules(path: str) -> dict:
    """Rules from a small YAML file: ``budget_usd``, ``period``, ``by``, ``max_cost_per_request``, ``min_margin``,
    ``revenue`` (``{customer: USD}``) and ``price_per_user_month_usd``."""
    import yaml

    allowed = ("budget_usd", "period", "by", "max_cost_per_request", "min_margin", "revenue", "price_per_user_month_usd")
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f.read(1 << 20))
    except (OSError, yaml.YAMLError) as exc:
        raise BillshapeInputError("rules", path, "a readable YAML rules file", type(exc).__name__) from None
    if not isinstance(data, dict) or any(k not in allowed for k in data):
        raise BillshapeInputError("rules", path, "a YAML mapping of " + ", ".join(allowed))
    return data


def read_revenue(path: str) -> dict:
    """A revenue table: CSV with ``customer`` and ``revenue_usd`` columns (USD in the checked period)."""
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        out = {r["customer"]: float(r["revenue_usd"]) for r in rows}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise BillshapeInputError("revenue", path, "a CSV with customer and revenue_usd columns", type(exc).__name__) from None
    if any(not np.isfinite(v) or v < 0 for v in out.values()):
        raise BillshapeInputError("revenue", path, "revenue_usd >= 0 on every row")
    return out
