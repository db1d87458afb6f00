"""Spend forecast from the ledger's daily series: P10/P50/P90 of a period's spend per group, and a backtest.

Model (per group, on the daily USD series, missing days are zero):

* at least :data:`MIN_ETS_DAYS` days of history: statsmodels' ``ExponentialSmoothing`` (Holt-Winters ETS) with an
  additive trend and an additive weekly season (:data:`SEASON_DAYS`): heuristic initial states, smoothing parameters
  fitted by maximum likelihood (no brute-force grid: a fit takes a fraction of a second); the forecast's spread comes
  from :data:`DEFAULT_SAMPLES` paths simulated by :func:`ets_simulate` (the model's error-correction form from the
  fitted last states, normal errors with the fitted variance, vectorised, seeded), clipped at zero (spend is never
  negative). Not statsmodels' ``simulate``: it applies the fitted ``smoothing_trend`` (beta*, component form) as the
  error form's trend gain where the gain is alpha beta*, so its trend shocks are 1/alpha times too large; on daily
  spend (alpha 0.03-0.16) that made a month's P10-P90 band 3-4x too wide (98 % of backtest months inside a nominal
  80 % band). With the error-form gain the band is calibrated: 79 % inside over 144 held-out backtest trials
  (docs/usage.md; ``tests/test_usage_watch.py``). The band covers the day noise and the states' random walk, not
  the uncertainty of the fitted parameters;
* fewer days (or a fit that fails): a documented simple model, the mean of the last 7 days (or fewer) as the
  daily level, with the history's residuals around its mean bootstrapped into the same number of paths.

The period's spend is the actual spend to date plus each path's sum over the days still to come; its P10, P50
and P90 are the quantiles over the paths (so ``p10 <= p50 <= p90``). The forecast is as of the ledger's last day
(that day counts as complete). Default period: the calendar month of that day (month-end spend); with
``horizon_days`` N: the N days after it. Paths are seeded: the same ledger gives the same figures.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import warnings

import numpy as np

from billshape.errors import BillshapeInputError
from billshape.results import Result, derived, user

SEASON_DAYS = 7  #: weekly seasonality [days]
MIN_ETS_DAYS = 21  #: days of history from which the ETS model is fitted (3 seasons)
DEFAULT_SAMPLES = 2000  #: simulated paths per group
GROWTH_WINDOW_DAYS = 30  #: the growth rate compares the next 30 days' P50 with the last 30 days
MAX_HORIZON_DAYS = 366
BY = ("customer", "feature", "project", "user", "model", "provider")
_Q = (10, 50, 90)


def _round(x: float) -> float:
    return float(round(float(x), 6))


def simulate_daily(history_usd, horizon_days: int, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> tuple[np.ndarray, str]:
    """``samples`` x ``horizon_days`` simulated daily spend [USD] after a daily history [USD], and the method used
    (``"ets"`` or ``"mean"``; ``"zero"`` for a history without spend)."""
    y = np.asarray(history_usd, dtype=float)
    h = int(horizon_days)
    if h <= 0:
        return np.zeros((samples, 0)), "none"
    if y.size == 0 or not np.any(y > 0):
        return np.zeros((samples, h)), "zero"
    if y.size >= MIN_ETS_DAYS and np.ptp(y) > 0:
        paths = _ets_paths(y, h, samples, seed)
        if paths is not None:
            return paths, "ets"
    rng = np.random.default_rng(seed)
    level = y[-min(7, y.size):].mean()
    resid = y - y.mean()
    paths = level + rng.choice(resid, size=(samples, h)) if y.size > 1 else np.full((samples, h), level)
    return np.clip(paths, 0.0, None), "mean"


def _ets_paths(y: np.ndarray, h: int, samples: int, seed: int) -> np.ndarray | None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(y, trend="add", seasonal="add", seasonal_periods=SEASON_DAYS,
                                       initialization_method="heuristic").fit(use_brute=False)
    except Exception:  # noqa: BLE001 - a fit that does not converge falls back to the simple model
        return None
    p = fit.params
    resid = y - np.asarray(fit.fittedvalues, dtype=float)
    n_params = 4 + (SEASON_DAYS + 1) + 1  # as statsmodels counts them for its own sigma
    sigma_usd = float(np.sqrt(np.sum(resid ** 2) / max(y.size - n_params, 1)))
    paths = ets_simulate(float(fit.level[-1]), float(fit.trend[-1]), np.asarray(fit.season[-SEASON_DAYS:], float),
                         float(p["smoothing_level"]), float(p["smoothing_trend"]), float(p["smoothing_seasonal"]),
                         sigma_usd, h, samples, seed)
    if not np.all(np.isfinite(paths)):
        return None
    return np.clip(paths, 0.0, None)


def ets_simulate(level_usd: float, trend_usd_per_day: float, season_usd, alpha: float, beta_star: float,
                 gamma: float, sigma_usd: float, horizon_days: int, samples: int, seed: int) -> np.ndarray:
    """``samples`` x ``horizon_days`` paths [USD/day] of additive Holt-Winters in error-correction form, from the
    fitted last states (``season_usd``: the last :data:`SEASON_DAYS` seasonal states, oldest first) and the
    component-form smoothing parameters that statsmodels' ``fit`` estimates::

        y_t = l + b + s_{t-m} + e_t,   e_t ~ N(0, sigma^2)
        l  <- l + b + alpha e_t
        b  <- b + alpha beta* e_t      (the fit's b_t = beta* (l_t - l_{t-1}) + (1 - beta*) b_{t-1})
        s_t = s_{t-m} + gamma e_t

    statsmodels' own ``HoltWintersResults.simulate`` (0.14/0.15) applies ``smoothing_trend`` (beta*) as the error
    form's trend gain, i.e. ``b <- b + beta* e_t``: the trend shocks 1/alpha times too large (x6 to x35 on daily
    spend), which made the month's P10-P90 band about 3 to 4 times too wide."""
    h, n = int(horizon_days), int(samples)
    eps = np.random.default_rng(seed).standard_normal((h, n)) * sigma_usd
    season = np.asarray(season_usd, dtype=float)
    m = season.size

    def before(x):  # the sum of x over the days before each day (an exclusive cumulative sum)
        return np.vstack([np.zeros((1, n)), np.cumsum(x[:-1], axis=0)])

    trend = trend_usd_per_day + alpha * beta_star * before(eps)  # b_{t-1}
    level = level_usd + before(trend + alpha * eps)  # l_{t-1}
    shock = np.zeros((h, n))  # gamma times the past shocks on the same day of the season
    for t in range(m, h):
        shock[t] = shock[t - m] + gamma * eps[t - m]
    return (level + trend + season[np.arange(h) % m][:, None] + shock + eps).T


def band(actual_to_date_usd: float, paths: np.ndarray) -> tuple[float, float, float]:
    """P10, P50, P90 of the period's spend: the actual to date plus each path's sum."""
    totals = actual_to_date_usd + paths.sum(axis=1)
    p10, p50, p90 = np.percentile(totals, _Q)
    return float(p10), float(p50), float(p90)


# ------------------------------------------------------------------------------------------ the ledger's series

def load_series(db: str, by: str | None, engine: str | None = None, grain: str = "day") -> dict:
    """The ledger's series per group, zero-filled over the ledger's span: ``{"periods": [...], "groups": {key:
    {"usd", "requests", "input_tokens", "output_tokens", "users"}: arrays}}`` (days as ``datetime.date``, hours as
    UTC ``datetime``)."""
    from billshape.usage import engine as E

    if by is not None and by not in BY:
        raise BillshapeInputError("by", by, "one of " + ", ".join(BY))
    store = E.open_store(db, engine, read_only=True)
    try:
        rows = store.frame(E.group_series(store.table("ledger"), by, grain)).to_pylist()
    finally:
        store.close()
    if not rows:
        raise BillshapeInputError("db", db, "a usage database with priced rows", "ingest some logs first")
    step = _dt.timedelta(hours=1) if grain == "hour" else _dt.timedelta(days=1)

    def at(p):
        if grain == "hour":  # the engine's UTC hours (naive from DuckDB: UTC, not local time)
            p = p.replace(tzinfo=_dt.timezone.utc) if p.tzinfo is None else p.astimezone(_dt.timezone.utc)
            return p.replace(minute=0, second=0, microsecond=0)
        return p.date() if isinstance(p, _dt.datetime) else p

    first = min(at(r["period"]) for r in rows)
    last = max(at(r["period"]) for r in rows)
    n = int((last - first) / step) + 1
    periods = [first + i * step for i in range(n)]
    fields = ("usd", "requests", "input_tokens", "output_tokens", "users")
    groups: dict[str, dict[str, np.ndarray]] = {}
    for r in rows:
        g = groups.setdefault(r["key"], {f: np.zeros(n) for f in fields})
        i = int((at(r["period"]) - first) / step)
        g["usd"][i] += int(r["usd_micro"] or 0) / 1e6
        for f in fields[1:]:
            g[f][i] += int(r[f] or 0)
    return {"periods": periods, "groups": groups}


def _period(as_of: _dt.date, horizon_days: int | None) -> tuple[_dt.date, _dt.date]:
    if horizon_days is None:
        return as_of.replace(day=1), as_of.replace(day=calendar.monthrange(as_of.year, as_of.month)[1])
    return as_of + _dt.timedelta(days=1), as_of + _dt.timedelta(days=horizon_days)


def _check_horizon(horizon_days) -> int | None:
    if horizon_days is None:
        return None
    if isinstance(horizon_days, bool) or int(horizon_days) != horizon_days or not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise BillshapeInputError("horizon_days", horizon_days, f"an integer in [1, {MAX_HORIZON_DAYS}]")
    return int(horizon_days)


def _check_samples(samples) -> int:
    if isinstance(samples, bool) or int(samples) != samples or not 100 <= samples <= 100_000:
        raise BillshapeInputError("samples", samples, "an integer in [100, 100000]")
    return int(samples)


# ------------------------------------------------------------------------------------------ forecast

class Forecast(Result):
    """P10/P50/P90 of each group's spend over the period (``groups``: ``key``, ``actual_to_date_usd``, ``p10``,
    ``p50``, ``p90``, ``method``), the ledger's ``total`` the same way, the total's daily band (``daily``: actual
    history, then P10/P50/P90 per day) and its monthly ``growth_monthly`` (next 30 days' P50 vs the last 30)."""

    by: str | None
    as_of: str
    period_start: str
    period_end: str
    days_to_come: int
    samples: int
    groups: list[dict]
    total: dict
    daily: list[dict]
    growth_monthly: float


def forecast_series(periods: list, groups: dict, horizon_days: int | None = None, samples: int = DEFAULT_SAMPLES,
                    seed: int = 0, by: str | None = None) -> Forecast:
    """:func:`forecast` on series already loaded (:func:`load_series`): pure numpy and statsmodels."""
    as_of = periods[-1]
    start, end = _period(as_of, horizon_days)
    to_come = (end - as_of).days
    in_period = np.array([start <= d <= as_of for d in periods])
    out, total_paths, total_actual = [], None, 0.0
    series = {k: g["usd"] for k, g in groups.items()}
    series_total = np.sum(list(series.values()), axis=0)
    for key, y in sorted(series.items(), key=lambda kv: -kv[1].sum()):
        paths, method = simulate_daily(y, to_come, samples, seed)
        actual = float(y[in_period].sum())
        p10, p50, p90 = band(actual, paths)
        out.append({"key": key, "actual_to_date_usd": _round(actual), "p10": _round(p10), "p50": _round(p50),
                    "p90": _round(p90), "method": method})
    paths, method = simulate_daily(series_total, max(to_come, GROWTH_WINDOW_DAYS), samples, seed)
    total_actual = float(series_total[in_period].sum())
    t10, t50, t90 = band(total_actual, paths[:, :to_come])
    total = {"key": "(total)", "actual_to_date_usd": _round(total_actual), "p10": _round(t10), "p50": _round(t50),
             "p90": _round(t90), "method": method}
    last = series_total[-GROWTH_WINDOW_DAYS:]
    next_mean = float(np.median(paths[:, :GROWTH_WINDOW_DAYS].sum(axis=1))) / GROWTH_WINDOW_DAYS
    growth = next_mean / last.mean() - 1.0 if last.mean() > 0 else 0.0
    daily = [{"day": d.isoformat(), "actual_usd": _round(v)} for d, v in zip(periods[-60:], series_total[-60:])]
    q = np.percentile(paths[:, :to_come], _Q, axis=0) if to_come else np.zeros((3, 0))
    for i in range(to_come):
        daily.append({"day": (as_of + _dt.timedelta(days=i + 1)).isoformat(), "p10": _round(q[0, i]),
                      "p50": _round(q[1, i]), "p90": _round(q[2, i])})
    return Forecast(
        by=by, as_of=as_of.isoformat(), period_start=start.isoformat(), period_end=end.isoformat(),
        days_to_come=to_come, samples=samples, groups=out, total=total, daily=daily, growth_monthly=_round(growth),
        assumptions=[
            derived("as of", as_of.isoformat(), "date", "the ledger's last day (counted as complete)"),
            derived("period", f"{start} to {end}", None, "the month of the last day" if horizon_days is None
                    else f"the {horizon_days} days after the last day"),
            derived("model", f"ETS (additive trend, {SEASON_DAYS}-day season) from {MIN_ETS_DAYS} days of history, "
                    "paths in error-correction form (trend gain alpha x beta*); else the last 7 days' mean with "
                    "bootstrapped residuals", None, "statsmodels ExponentialSmoothing fit"),
            user("samples", samples, "paths", "samples"),
            user("seed", seed, None, "seed"),
        ],
    )


def forecast(db: str, by: str | None = None, horizon_days: int | None = None, engine: str | None = None,
             samples: int = DEFAULT_SAMPLES, seed: int = 0) -> Forecast:
    """Month-end (or ``horizon_days``) spend with P10/P50/P90 per ``by`` group (None: the ledger's total only)."""
    horizon_days = _check_horizon(horizon_days)
    samples = _check_samples(samples)
    s = load_series(db, by, engine)
    return forecast_series(s["periods"], s["groups"], horizon_days, samples, seed, by)


# ------------------------------------------------------------------------------------------ backtest

class Backtest(Result):
    """Past months replayed: each (group, month) forecast from the history before the month's first day, against
    the month's actual spend. ``mape``: mean |P50 - actual| / actual; ``coverage``: the share of trials whose
    actual lies in [P10, P90] (80 % for a calibrated band)."""

    by: str | None
    trials: list[dict]
    months: list[str]
    mape: float | None
    coverage: float | None


def backtest_series(periods: list, groups: dict, samples: int = DEFAULT_SAMPLES, seed: int = 0,
                    by: str | None = None, min_history_days: int = 28) -> Backtest:
    first, last = periods[0], periods[-1]
    index = {d: i for i, d in enumerate(periods)}
    months = []
    d = first.replace(day=1)
    while d <= last:
        end = d.replace(day=calendar.monthrange(d.year, d.month)[1])
        if d in index and end <= last and index[d] >= min_history_days:
            months.append((d, end))
        d = end + _dt.timedelta(days=1)
    series = {k: g["usd"] for k, g in groups.items()}
    if by is None:
        series = {"(all)": np.sum(list(series.values()), axis=0)}
    trials = []
    for start, end in months:
        i, j = index[start], index[end] + 1
        for key, y in sorted(series.items()):
            paths, method = simulate_daily(y[:i], j - i, samples, seed)
            p10, p50, p90 = band(0.0, paths)
            actual = float(y[i:j].sum())
            err = abs(p50 - actual) / actual if actual > 0 else None
            trials.append({"month": start.isoformat()[:7], "key": key, "actual_usd": _round(actual), "p10": _round(p10),
                           "p50": _round(p50), "p90": _round(p90), "inside": bool(p10 <= actual <= p90),
                           "abs_pct_error": None if err is None else _round(100 * err), "method": method})
    errs = [t["abs_pct_error"] for t in trials if t["abs_pct_error"] is not None]
    return Backtest(
        by=by, trials=trials, months=[m.isoformat()[:7] for m, _ in months],
        mape=_round(sum(errs) / len(errs)) if errs else None,
        coverage=_round(sum(t["inside"] for t in trials) / len(trials)) if trials else None,
        assumptions=[derived("history", min_history_days, "days", "the least history before a replayed month"),
                     derived("mape", "mean |P50 - actual| / actual", "%", "over trials with spend")],
    )


def backtest(db: str, by: str | None = None, engine: str | None = None, samples: int = DEFAULT_SAMPLES,
             seed: int = 0) -> Backtest:
    """Replay each complete past month (with at least 28 days of history before it)."""
    samples = _check_samples(samples)
    s = load_series(db, by, engine)
    res = backtest_series(s["periods"], s["groups"], samples, seed, by)
    if not res.trials:
        raise BillshapeInputError("db", db, "a ledger with at least one complete month after 28 days of history",
                                  f"the ledger spans {s['periods'][0]} to {s['periods'][-1]}")
    return res


# ------------------------------------------------------------------------------------------ scenario fragment

def scenario_fragment(fc: Forecast) -> dict:
    """The forecast's monthly growth as scenario keys: ``product.growth_monthly`` (or ``churn_monthly`` for a
    shrinking spend; each in [0, 1))."""
    g = fc.growth_monthly
    return {"product": {"growth_monthly": float(f"{min(max(g, 0.0), 1.0):.6g}"),
                        "churn_monthly": float(f"{min(max(-g, 0.0), 0.999):.6g}")}}


def fragment_yaml(fragment: dict, fc: Forecast, db: str) -> str:
    import os

    import yaml

    head = (f"# Forecast by `billshape usage forecast --db {os.path.basename(db)}` as of {fc.as_of}: the next "
            f"{GROWTH_WINDOW_DAYS} days' P50 spend vs the last {GROWTH_WINDOW_DAYS} days,\n# {fc.growth_monthly:+.2%} a "
            "month (spend growth, read as user growth). Merge into a scenario: product keys override.\n")
    return head + yaml.safe_dump(fragment, sort_keys=False, default_flow_style=None, width=120)
