"""Anomalies: days (or hours) whose cost, cost per request or tokens per request for a customer, feature or model
leave their usual range, with the ledger rows that caused them.

Method (robust, per group and metric): for each period, the median and the MAD (median absolute deviation) of
the same metric over the :data:`WINDOW` periods before it (periods without requests left out); the robust score is
``z = (x - median) / (1.4826 MAD)``, with the scale floored at :data:`REL_FLOOR` of the median (a perfectly
steady series is not infinitely sensitive). A period is flagged when ``|z| > threshold`` (default
:data:`THRESHOLD`) once the window holds at least :data:`MIN_HISTORY` periods. Both directions are flagged (a
spike, or a drop such as an outage). Metrics: ``usd`` (the period's cost), ``usd_per_request``,
``tokens_per_request`` (input + output). Cost follows the week (or the day, by the hour): it is scored as its
ratio to the median of the same weekday over the :data:`SEASONS` weeks before (the same hour over the days
before), so that a quiet weekend is not an anomaly; the per-request metrics are scored as they are.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np

from billshape.errors import BillshapeInputError
from billshape.results import Result, derived, user
from billshape.usage import forecast as F

WINDOW = 28  #: periods of history in the rolling window
MIN_HISTORY = 7  #: periods of history before a period can be flagged
THRESHOLD = 6.0  #: |robust z| above which a period is flagged
REL_FLOOR = 0.02  #: the scale's floor, as a share of the median
MAD_TO_SIGMA = 1.4826  #: MAD x this = the standard deviation of a normal distribution
SEASONS = 5  #: same-weekday (same-hour) values in the cost's seasonal baseline
METRICS = ("usd", "usd_per_request", "tokens_per_request")
BY = ("customer", "feature", "model", "project", "user", "provider")


def robust_scores(x, window: int = WINDOW, min_history: int = MIN_HISTORY, valid=None) -> tuple[np.ndarray, np.ndarray]:
    """Rolling robust scores of a series (pure, vectorised over the windows): ``(z, median)``; NaN where there is
    too little history or the value is not valid."""
    x = np.asarray(x, dtype=float)
    n = x.size
    ok = np.ones(n, bool) if valid is None else np.asarray(valid, bool)
    z = np.full(n, np.nan)
    med = np.full(n, np.nan)
    if n <= min_history:
        return z, med
    xs = np.where(ok, x, np.nan)
    pad = np.concatenate([np.full(window, np.nan), xs])
    idx = np.arange(n)[:, None] + np.arange(window)[None, :]  # row i: the window periods before period i
    w = pad[idx]
    count = np.sum(~np.isnan(w), axis=1)
    enough = (count >= min_history) & ok
    if not enough.any():
        return z, med
    with np.errstate(all="ignore"):
        m = np.nanmedian(w[enough], axis=1)
        mad = np.nanmedian(np.abs(w[enough] - m[:, None]), axis=1)
    scale = np.maximum(MAD_TO_SIGMA * mad, np.maximum(REL_FLOOR * np.abs(m), 1e-12))
    z[enough] = (x[enough] - m) / scale
    med[enough] = m
    return z, med


def seasonal_baseline(x, season: int, k: int = SEASONS) -> np.ndarray:
    """For each period, the median of the ``k`` values one, two, ... ``k`` seasons before it (NaN before that)."""
    x = np.asarray(x, dtype=float)
    pad = np.concatenate([np.full(season * k, np.nan), x])
    idx = np.arange(x.size)[:, None] + (season * k - season * np.arange(1, k + 1))[None, :]
    w = pad[idx]
    out = np.full(x.size, np.nan)
    full = ~np.isnan(w).any(axis=1)
    out[full] = np.median(w[full], axis=1)
    return out


def flag(series: dict, threshold: float = THRESHOLD, window: int = WINDOW, min_history: int = MIN_HISTORY,
         season: int = 7) -> list[dict]:
    """The flagged (period index, metric) pairs of one group's series (``usd``, ``requests``, ``input_tokens``,
    ``output_tokens`` arrays): ``[{"i", "metric", "value", "median", "z"}]``, one per period (its largest |z|)."""
    req = np.asarray(series["requests"], dtype=float)
    usd = np.asarray(series["usd"], dtype=float)
    tok = np.asarray(series["input_tokens"], dtype=float) + np.asarray(series["output_tokens"], dtype=float)
    has = req > 0
    base = seasonal_baseline(usd, season)
    seasonal = ~np.isnan(base) & (base > 0)
    with np.errstate(all="ignore"):
        ratio = np.where(seasonal, usd / np.where(seasonal, base, 1), 0)
        metrics = {"usd": (ratio, seasonal), "usd_per_request": (np.where(has, usd / np.where(has, req, 1), 0), has),
                   "tokens_per_request": (np.where(has, tok / np.where(has, req, 1), 0), has)}
    best: dict[int, dict] = {}
    for name, (x, valid) in metrics.items():
        z, med = robust_scores(x, window, min_history, valid)
        for i in np.flatnonzero(np.abs(np.nan_to_num(z)) > threshold):
            i = int(i)
            if i not in best or abs(z[i]) > abs(best[i]["z"]):
                value, usual = (usd[i], base[i] * med[i]) if name == "usd" else (x[i], med[i])
                best[i] = {"i": i, "metric": name, "value": float(value), "median": float(usual), "z": float(z[i])}
    return [best[i] for i in sorted(best)]


class Anomalies(Result):
    """Flagged periods (``anomalies``: ``key``, ``period``, ``metric``, ``value``, ``median``, ``z``,
    ``direction``, ``rows``; ``median`` is the usual value: for cost, the seasonal baseline times the usual ratio: the costliest ledger rows of that group and period) over ``group_periods`` evaluated."""

    by: str
    grain: str
    threshold: float
    window: int
    group_periods: int
    anomalies: list[dict]


def anomalies_series(periods: list, groups: dict, by: str, grain: str = "day", threshold: float = THRESHOLD,
                     window: int = WINDOW) -> Anomalies:
    """:func:`anomalies` on series already loaded (no ledger rows attached)."""
    out, evaluated = [], 0
    for key, g in sorted(groups.items()):
        evaluated += max(len(periods) - MIN_HISTORY, 0)
        for a in flag(g, threshold, window, season=24 if grain == "hour" else 7):
            p = periods[a["i"]]
            out.append({"key": key, "period": p.isoformat(), "metric": a["metric"], "value": F._round(a["value"]),
                        "median": F._round(a["median"]), "z": round(a["z"], 3),
                        "direction": "high" if a["z"] > 0 else "low", "rows": []})
    out.sort(key=lambda a: (a["period"], -abs(a["z"]), a["key"]))
    return Anomalies(by=by, grain=grain, threshold=threshold, window=window, group_periods=evaluated, anomalies=out,
                     assumptions=[user("threshold", threshold, "|robust z|", "threshold"),
                                  user("window", window, grain + "s", "window"),
                                  derived("method", "rolling median / MAD", None,
                                          f"z = (x - median) / max(1.4826 MAD, {REL_FLOOR:g} median); at least "
                                          f"{MIN_HISTORY} {grain}s of history")])


def anomalies(db: str, by: str = "customer", grain: str = "day", engine: str | None = None,
              threshold: float = THRESHOLD, window: int = WINDOW, rows: int = 5) -> Anomalies:
    """Flag each group's days (or hours) whose cost or tokens per request leave their usual range; attach the
    ``rows`` costliest ledger rows of each flagged group-period."""
    if by not in BY:
        raise BillshapeInputError("by", by, "one of " + ", ".join(BY))
    if grain not in ("day", "hour"):
        raise BillshapeInputError("grain", grain, "day or hour")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 1 <= threshold <= 100:
        raise BillshapeInputError("threshold", threshold, "in [1, 100]")
    if isinstance(window, bool) or int(window) != window or not MIN_HISTORY <= window <= 365:
        raise BillshapeInputError("window", window, f"an integer in [{MIN_HISTORY}, 365]")
    s = F.load_series(db, by, engine, grain)
    res = anomalies_series(s["periods"], s["groups"], by, grain, float(threshold), int(window))
    if rows and res.anomalies:
        from billshape.usage import engine as E

        step = _dt.timedelta(hours=1) if grain == "hour" else _dt.timedelta(days=1)
        store = E.open_store(db, engine, read_only=True)
        try:
            ledger = store.table("ledger")
            for a in res.anomalies[:200]:
                start = _dt.datetime.fromisoformat(a["period"])
                start = start if start.tzinfo else start.replace(tzinfo=_dt.timezone.utc)
                got = store.frame(E.rows_in(ledger, by, a["key"], start, start + step, rows)).to_pylist()
                a["rows"] = [{**{k: v for k, v in r.items() if k not in ("usd_micro", "ts")},
                              "ts": r["ts"].isoformat() if r.get("ts") else None,
                              "usd": int(r["usd_micro"]) / 1e6} for r in got]
        finally:
            store.close()
    return res
