"""The compute and API market over time: price paths, tier discounts, and trend fits on dated prices.

A price path gives a price for each month of a horizon (month 1 is today):

.. math:: p(m) = p_0 \\, f^{(m-1)/12} \\prod_{s:\\, m_s \\le m} k_s

with ``f`` the annual factor (0.1 is "ten times cheaper each year", 2.4 is "2.4 times dearer") and
``k_s`` one-off step factors applied from month ``m_s`` on (a 3-5x API price rise is a step of 3 to 5).
Named trends (a16z's 10x/yr, Epoch AI's 9x-900x/yr, FLOP/$ doubling every ~2.5 years, frontier
training cost x2.4/yr, seed 004's 3-5x rise) are rows of ``data/price_trends.csv``.

A trend fit is a least-squares line through ``log(price)`` against time in years; its slope is the
annual factor. The backtest fits on the older rows and scores the forecast of the newer ones.

References
----------
.. [1] G. Appenzeller (a16z), "Welcome to LLMflation: LLM inference cost is going down fast", 2024-11-12.
.. [2] Epoch AI, "LLM inference prices have fallen rapidly but unequally across tasks", 2025-03-12.
.. [3] Hobbhahn et al. (Epoch AI), "Trends in Machine Learning Hardware", 2023.
.. [4] Cottier et al., "The rising costs of training frontier AI models", arXiv:2405.21015, 2024.
.. [5] billshape seed 004: plan for API prices 3-5x today's.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError, unknown_name

DAYS_PER_YEAR = 365.25
PRICE_COLUMNS = ("usd_per_million_input", "usd_per_million_output", "usd_per_million_mean")

# Bounds on inputs at the shells' boundary (not defaults, so not catalog rows): a 50-year horizon, and price
# trends from 10,000x cheaper to 10,000x dearer a year (the fastest catalogued fall, Epoch AI's 900x/yr, fits).
MAX_MONTHS = 600
MIN_ANNUAL_FACTOR, MAX_ANNUAL_FACTOR = 1e-4, 1e4
MIN_STEP_FACTOR, MAX_STEP_FACTOR = 1e-6, 1e6


def check_months(field: str, months, maximum: int = MAX_MONTHS) -> int:
    """A horizon in whole months in ``[1, maximum]``; returns it as an ``int``."""
    try:
        m = float(months)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past any float (400 digits)
        raise BillshapeInputError(field, months, f"a whole number of months in [1, {maximum}]") from None
    if not np.isfinite(m) or m != int(m) or not 1 <= m <= maximum:
        raise BillshapeInputError(field, months, f"a whole number of months in [1, {maximum}]")
    return int(m)


def check_annual_factor(field: str, factor):
    """A price multiplier per year in ``[MIN_ANNUAL_FACTOR, MAX_ANNUAL_FACTOR]`` (finite)."""
    v.positive(field, factor)  # "> 0" first, then the bounds
    arr = v._arr(factor)
    if arr is None or not np.all(np.isfinite(arr)) or not np.all((arr >= MIN_ANNUAL_FACTOR) & (arr <= MAX_ANNUAL_FACTOR)):
        raise BillshapeInputError(field, factor, f"in [{MIN_ANNUAL_FACTOR:g}, {MAX_ANNUAL_FACTOR:g}] (x per year; "
                                  "0.1 = 10x cheaper a year)")
    return factor


# ------------------------------------------------------------------------------------------------ paths
def monthly_factor(annual_factor):
    """Month-on-month factor of an annual factor: ``f^(1/12)`` [unitless]."""
    v.positive("annual_factor", annual_factor)
    return np.asarray(annual_factor, dtype=float) ** (1.0 / 12.0)


def parse_steps(steps, field: str = "api_price_step") -> list[tuple[int, float]]:
    """Parse step changes given as ``'MONTH:FACTOR'`` strings (or ``(month, factor)`` pairs).

    ``MONTH`` is the first month (1-based) at the new price; ``FACTOR`` multiplies the price from then on.
    """
    out: list[tuple[int, float]] = []
    for step in steps or []:
        if isinstance(step, str):
            parts = step.split(":")
            try:
                if len(parts) != 2:
                    raise ValueError
                month, factor = int(parts[0]), float(parts[1])
            except ValueError:
                raise BillshapeInputError(field, step, "MONTH:FACTOR, e.g. 13:3 (x3 from month 13 on)") from None
        else:
            try:
                month, factor = int(step[0]), float(step[1])
            except (TypeError, ValueError, OverflowError, IndexError):
                raise BillshapeInputError(field, step, "MONTH:FACTOR, e.g. 13:3 (x3 from month 13 on)") from None
        if not 1 <= month <= MAX_MONTHS:
            raise BillshapeInputError(field, step, f"MONTH in [1, {MAX_MONTHS}] (month 1 is the first month)")
        if not np.isfinite(factor) or not MIN_STEP_FACTOR <= factor <= MAX_STEP_FACTOR:
            raise BillshapeInputError(field, step, f"FACTOR in [{MIN_STEP_FACTOR:g}, {MAX_STEP_FACTOR:g}]")
        out.append((month, factor))
    return out


def price_path(start_price, months: int, annual_factor=1.0, steps=None):
    r"""Price in each month of a horizon: exponential trend times step changes.

    Parameters
    ----------
    start_price : numeric
        Price in month 1 [any price unit, e.g. USD per million tokens], > 0. An array adds leading axes.
    months : int
        Horizon [months], >= 1.
    annual_factor : numeric
        Price multiplier per year [unitless], > 0 (1 = flat; 0.1 = 10x cheaper a year).
    steps : list of ``'MONTH:FACTOR'`` or (month, factor), optional
        One-off multipliers applied from ``MONTH`` (1-based) on.

    Returns
    -------
    numpy.ndarray
        Shape ``broadcast(start_price, annual_factor).shape + (months,)`` [same unit as ``start_price``].

    References
    ----------
    .. [1] G. Appenzeller (a16z) 2024; Epoch AI 2025 (see module references).
    """
    v.positive("start_price", start_price)
    v.positive("annual_factor", annual_factor)
    months = int(months)
    if months < 1:
        raise BillshapeInputError("months", months, ">= 1")
    m = np.arange(1, months + 1, dtype=float)
    p0 = np.asarray(start_price, dtype=float)[..., None]
    f = np.asarray(annual_factor, dtype=float)[..., None]
    path = p0 * f ** ((m - 1.0) / 12.0)
    mult = np.ones(months)
    for month, factor in parse_steps(steps):
        mult[m >= month] *= factor
    return path * mult


def multiplier_paths(months: int, annual_factor=1.0, steps=()):
    r"""Price multiplier :math:`k(m) = f^{(m-1)/12} \prod_{s: m_s \le m} k_s` for many samples at once.

    The multiplier of :func:`price_path` (``price_path(1, ...)``), vectorised over samples: the annual factor
    AND each step factor may be arrays (one value per Monte Carlo sample).

    Parameters
    ----------
    months : int
        Horizon [months], >= 1.
    annual_factor : numeric
        Price multiplier per year [unitless], > 0, scalar or shape (n,) or (n, 1).
    steps : sequence of (month, factor)
        ``factor`` [unitless] (> 0; scalar or shape (n,) or (n, 1)) multiplies the price from ``month`` (1-based) on.

    Returns
    -------
    numpy.ndarray
        Shape (1, months) for scalar inputs, else (n, months) [unitless].

    References
    ----------
    .. [1] G. Appenzeller (a16z) 2024; billshape seed 004 (see module references).
    """
    v.positive("annual_factor", annual_factor)
    months = int(months)
    if months < 1:
        raise BillshapeInputError("months", months, ">= 1")
    m = np.arange(1, months + 1, dtype=float)
    f = np.asarray(annual_factor, dtype=float).reshape(-1, 1)
    k = f ** ((m[None, :] - 1.0) / 12.0)
    for month, factor in steps:
        fac = np.asarray(factor, dtype=float).reshape(-1, 1)
        v.positive("step factor", fac)
        k = k * np.where(m[None, :] >= int(month), fac, 1.0)
    return k


def tier_price(on_demand_price, discount):
    """Price after a tier discount: ``on_demand x (1 - discount)`` (reserved, committed-use, batch).

    Parameters
    ----------
    on_demand_price : numeric
        List price [any price unit], > 0.
    discount : numeric
        Fractional discount of the tier, in [0, 1).
    """
    v.positive("on_demand_price", on_demand_price)
    v.below_one("discount", discount)
    return np.asarray(on_demand_price, dtype=float) * (1.0 - np.asarray(discount, dtype=float))


# ------------------------------------------------------------------------------------------------ trends
@lru_cache(maxsize=None)
def trends() -> dict:
    """Named price trends (``data/price_trends.csv``), by name."""
    from billshape.catalog import Row, read_rows

    class PriceTrend(Row):
        """A named annual price factor (or one-off step factor) with its source."""

        name: str
        annual_factor: float
        applies_to: str = ""
        note: str = ""

        def as_assumption(self):
            return self.assumption(f"{self.name} ({self.applies_to})", self.annual_factor, "x per year")

    return {
        r["name"]: PriceTrend(name=r["name"], annual_factor=float(r["annual_factor"]), applies_to=r["applies_to"],
                              source=r["source"], as_of=r["as_of"], note=r.get("note", ""))
        for r in read_rows("price_trends.csv")
    }


def trend(name: str, field: str = "trend"):
    """Look up a named trend (e.g. ``a16z-llmflation``)."""
    table = trends()
    key = str(name).strip().lower()
    if key not in table:
        raise unknown_name(field, name, table)
    return table[key]


# ------------------------------------------------------------------------------------------------ fits
def years_since(dates, origin) -> np.ndarray:
    """Elapsed time from ``origin`` to each date [years of 365.25 days]."""
    o = np.datetime64(origin, "D")
    d = np.asarray(dates, dtype="datetime64[D]")
    return (d - o).astype(float) / DAYS_PER_YEAR


def fit_trend(years, prices):
    r"""Least-squares exponential trend :math:`\log p = a + b t`.

    Parameters
    ----------
    years : array_like
        Time of each price [years from any origin].
    prices : array_like
        Prices [any price unit], > 0.

    Returns
    -------
    tuple of float
        ``(annual_factor, price_at_origin)``: ``exp(b)`` [x per year] and ``exp(a)`` [price unit].
    """
    t = np.asarray(years, dtype=float)
    p = np.asarray(prices, dtype=float)
    v.positive("prices", p)
    if t.size < 2 or np.ptp(t) == 0:
        raise BillshapeInputError("file", f"{t.size} dated price(s)", "at least two prices on different dates")
    b, a = np.polyfit(t, np.log(p), 1)
    return float(np.exp(b)), float(np.exp(a))


def read_price_history(path: str | Path | None = None, field: str = "file") -> list[dict]:
    """Dated API list prices: the shipped ``data/api_price_history.csv`` or a user CSV.

    Required columns: ``date`` (ISO) and at least one of ``usd_per_million_input`` /
    ``usd_per_million_output``; ``model`` and ``series`` are optional. Rows with an empty price in the
    chosen column are skipped at fit time, not here.
    """
    if path is None:
        from importlib import resources

        text = resources.files("billshape.data").joinpath("api_price_history.csv").read_text(encoding="utf-8-sig")
        label = "api_price_history.csv"
    else:
        from billshape.io import read_input_text

        text, label = read_input_text(path, field, None, "a readable CSV file")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(lines)))
    cols = set(reader.fieldnames or [])
    if "date" not in cols or not cols & {"usd_per_million_input", "usd_per_million_output"}:
        raise BillshapeInputError(field, label, "a CSV with columns date and usd_per_million_input and/or "
                                  "usd_per_million_output")
    rows = []
    for i, row in enumerate(reader, start=2):
        try:
            date = _dt.date.fromisoformat((row.get("date") or "").strip())
        except ValueError:
            raise BillshapeInputError(field, f"{label} row {i} date {row.get('date')!r}", "an ISO date") from None
        rec: dict = {"date": date, "model": (row.get("model") or "").strip(),
                     "series": (row.get("series") or "").strip(), "provider": (row.get("provider") or "").strip()}
        for col in ("usd_per_million_input", "usd_per_million_output"):
            raw = (row.get(col) or "").strip()
            if not raw:
                rec[col] = None
                continue
            try:
                val = float(raw)
            except ValueError:
                raise BillshapeInputError(field, f"{label} row {i} {col} {raw!r}", "a number > 0") from None
            if not np.isfinite(val) or val <= 0:
                raise BillshapeInputError(field, f"{label} row {i} {col} {raw!r}", "a number > 0")
            rec[col] = val
        ins, outs = rec["usd_per_million_input"], rec["usd_per_million_output"]
        rec["usd_per_million_mean"] = (ins + outs) / 2.0 if ins is not None and outs is not None else None
        rows.append(rec)
    if not rows:
        raise BillshapeInputError(field, label, "at least two dated prices")
    return rows


# ------------------------------------------------------------------------------------------------ backtest
def _shipped_table():
    """The shipped price table as an assumption: its file, its distinct sources and its latest as_of."""
    from importlib import resources

    from billshape.results import Assumption

    text = resources.files("billshape.data").joinpath("api_price_history.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    sources = list(dict.fromkeys(r["source"].strip() for r in rows if r.get("source")))
    as_of = max((r.get("as_of") or "" for r in rows), default="") or None
    return Assumption(name="price table", value=f"billshape/data/api_price_history.csv ({len(rows)} rows)", unit=None,
                      source=f"shipped table, a source on every row ({len(sources)} distinct; first: {sources[0]})",
                      as_of=as_of)


def _result_classes():
    from billshape.results import Result

    class TrendBacktest(Result):
        """A trend fitted on older dated prices, scored on the newer ones."""

        price_column: str
        rows_used: int
        train_rows: int
        test_rows: int
        cutoff_date: str
        annual_factor_train: float
        annual_factor_all: float
        median_abs_log10_error: float
        median_factor_error: float
        flat_median_factor_error: float
        beats_flat: bool
        named_trend_errors: dict
        forecasts: list
        explanation: str

    return TrendBacktest


def _fit_and_score(sel: list[dict], price_column: str, cutoff: str | None, train_fraction: float,
                   trend_applies_to: str, count_field: str = "file") -> dict:
    """The fit and score both backtests share: rows sorted by date, split at the cutoff, a trend fitted on the
    older rows, its forecast of the newer rows scored against a flat forecast and the named trends that apply."""
    sel = sorted(sel, key=lambda r: r["date"])
    if len(sel) < 3:
        raise BillshapeInputError(count_field, f"{len(sel)} priced rows", "at least 3 dated prices (2 to fit, 1 to test)")
    dates = np.array([r["date"] for r in sel], dtype="datetime64[D]")
    prices = np.array([r[price_column] for r in sel], dtype=float)
    if cutoff is None:
        v.fraction("train_fraction", train_fraction)
        k = min(max(int(round(len(sel) * float(train_fraction))), 2), len(sel) - 1)
        cut = dates[k]
        if np.sum(dates < cut) < 2:  # ties on the boundary date
            cut = dates[np.searchsorted(dates, dates[1], side="right")] if np.any(dates > dates[1]) else cut
    else:
        try:
            cut = np.datetime64(_dt.date.fromisoformat(cutoff), "D")
        except ValueError:
            raise BillshapeInputError("cutoff", cutoff, "an ISO date (YYYY-MM-DD)") from None
    train, test = dates < cut, dates >= cut
    if np.sum(train) < 2 or len(np.unique(dates[train])) < 2 or np.sum(test) < 1:
        raise BillshapeInputError("cutoff", str(cut), "a date with >= 2 dated prices before it and >= 1 on or after it")
    origin = dates[0]
    t = years_since(dates, origin)
    f_train, p_origin = fit_trend(t[train], prices[train])
    f_all, _ = fit_trend(t, prices)
    forecast = p_origin * f_train ** t
    err = np.abs(np.log10(forecast[test] / prices[test]))
    last_train = np.max(np.where(train)[0])
    flat = prices[last_train]
    flat_err = np.abs(np.log10(flat / prices[test]))
    anchor_t = t[last_train]
    anchor_p = p_origin * f_train ** anchor_t
    named = {}
    for name, tr in trends().items():
        if tr.applies_to != trend_applies_to:
            continue
        pred = anchor_p * tr.annual_factor ** (t[test] - anchor_t)
        named[name] = float(10 ** np.median(np.abs(np.log10(pred / prices[test]))))
    med = float(np.median(err))
    flat_med = float(10 ** np.median(flat_err))
    direction = "falls" if f_train < 1 else "rises"
    text = (f"fitted on {int(train.sum())} prices before {cut}: price {direction} {f_train:.3g}x per year "
            f"(all rows: {f_all:.3g}x); forecast of the {int(test.sum())} later prices is off by a median factor "
            f"of {10 ** med:.3g} (a flat forecast: {flat_med:.3g})")
    return dict(
        sel=sel, dates=dates, prices=prices, forecast=forecast, train=train, test=test, cut=cut,
        fields=dict(
            price_column=price_column, rows_used=len(sel), train_rows=int(train.sum()), test_rows=int(test.sum()),
            cutoff_date=str(cut), annual_factor_train=f_train, annual_factor_all=f_all,
            median_abs_log10_error=med, median_factor_error=float(10 ** med), flat_median_factor_error=flat_med,
            beats_flat=bool(10 ** med < flat_med), named_trend_errors=named, explanation=text),
    )


def backtest(rows: list[dict] | None = None, price_column: str | None = None,
             series: str | None = None, model: str | None = None, cutoff: str | None = None,
             train_fraction: float = 0.5, source_label: str | None = None):
    """Fit an exponential trend to dated prices before a cutoff and score its forecast of the rest.

    Parameters
    ----------
    rows : list of dict, optional
        From :func:`read_price_history` (default: the shipped table).
    price_column : str, optional
        ``usd_per_million_input`` (default), ``usd_per_million_output`` or ``usd_per_million_mean``.
    series, model : str, optional
        Keep only rows of this series / model (case-insensitive).
    cutoff : str, optional
        ISO date: rows before it train the fit, rows on or after it test it. Default: the date that puts
        ``train_fraction`` of the rows (by date order) in the training set.
    train_fraction : float
        In (0, 1); used only without ``cutoff``.
    source_label : str, optional
        The user's price table (``file``); ``None``: the shipped table, labelled with its sources.

    Returns
    -------
    TrendBacktest
        Fitted annual factors, the forecast error (median ``|log10(forecast / actual)|`` and the same as a
        factor), the error of a flat forecast (last training price) for comparison, and the error of each
        named API trend anchored at the fitted level on the last training date.
    """
    from billshape.results import derived, user

    TrendBacktest = _result_classes()
    column_given = price_column is not None
    price_column = PRICE_COLUMNS[0] if price_column is None else price_column
    if price_column not in PRICE_COLUMNS:
        raise unknown_name("price_column", price_column, PRICE_COLUMNS)
    rows = read_price_history() if rows is None else rows
    sel = [r for r in rows if r.get(price_column) is not None]
    if series:
        sel = [r for r in sel if r.get("series", "").lower() == series.lower()]
        if not sel:
            raise unknown_name("series", series, {r.get("series", "") for r in rows if r.get("series")})
    if model:
        sel = [r for r in sel if r.get("model", "").lower() == model.lower()]
        if not sel:
            raise unknown_name("model", model, {r.get("model", "") for r in rows if r.get("model")})
    fit = _fit_and_score(sel, price_column, cutoff, train_fraction, "API price for equal capability")
    sel, dates, prices, forecast = fit["sel"], fit["dates"], fit["prices"], fit["forecast"]
    named = fit["fields"]["named_trend_errors"]
    return TrendBacktest(
        **fit["fields"],
        forecasts=[{"date": str(dates[i]), "model": sel[i].get("model", ""), "actual": float(prices[i]),
                    "forecast": float(forecast[i])} for i in np.where(fit["test"])[0]],
        assumptions=[
            user("price table", source_label, None, "file") if source_label is not None else _shipped_table(),
            user("price column", price_column, None, "price_column") if column_given else
            derived("price column", price_column, None, "default: list input prices, the column every row of the "
                    "shipped table has"),
            derived("cutoff date", str(fit["cut"]), None, "`cutoff`, or the train fraction of rows by date"),
            *[trends()[n].as_assumption() for n in named],
        ],
    )


# ------------------------------------------------------------------------------------------------ GPU price history
GPU_PRICE_COLUMN = "usd_per_gpu_hour"
GPU_TREND_APPLIES_TO = "price per FLOP of GPU hardware"


def _gpu_name(raw: str) -> str:
    """The catalogued accelerator name of ``raw`` (aliases resolve: ``h100`` is ``h100-sxm``); an unknown name is
    kept, lower-cased, so a user's table may hold accelerators billshape does not catalogue."""
    from billshape import catalog

    key = raw.strip().lower()
    try:
        return catalog.gpu(key).name
    except BillshapeInputError:
        return key


def read_gpu_price_history(path: str | Path | None = None, field: str = "file") -> list[dict]:
    """Dated GPU rental prices: the shipped ``data/gpu_price_history.csv`` or a user CSV.

    Required columns: ``gpu``, ``usd_per_gpu_hour`` and the date the price was in force, ``as_of`` (or ``date``);
    ``provider``, ``tier`` (default ``on-demand``) and ``region`` are optional. Each row becomes a dict with
    ``date``, ``gpu``, ``provider``, ``tier``, ``region``, ``model`` (the GPU), ``series`` (``provider/tier``)
    and ``usd_per_gpu_hour`` [USD per GPU-hour].
    """
    if path is None:
        from billshape.catalog import read_rows

        raw_rows, label = read_rows("gpu_price_history.csv"), "gpu_price_history.csv"
        cols = set(raw_rows[0]) if raw_rows else set()
    else:
        from billshape.io import read_input_text

        text, label = read_input_text(path, field, None, "a readable CSV file")
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        reader = csv.DictReader(io.StringIO("\n".join(lines)))
        cols = set(reader.fieldnames or [])
        raw_rows = list(reader)
    date_col = "as_of" if "as_of" in cols else "date"
    if not {"gpu", GPU_PRICE_COLUMN, date_col} <= cols:
        raise BillshapeInputError(field, label, "a CSV with columns gpu, usd_per_gpu_hour and as_of (or date)")
    rows = []
    for i, row in enumerate(raw_rows, start=2):
        try:
            date = _dt.date.fromisoformat((row.get(date_col) or "").strip())
        except ValueError:
            raise BillshapeInputError(field, f"{label} row {i} {date_col} {row.get(date_col)!r}", "an ISO date") from None
        raw = (row.get(GPU_PRICE_COLUMN) or "").strip()
        try:
            price = float(raw)
        except ValueError:
            raise BillshapeInputError(field, f"{label} row {i} {GPU_PRICE_COLUMN} {raw!r}", "a number > 0") from None
        if not np.isfinite(price) or price <= 0:
            raise BillshapeInputError(field, f"{label} row {i} {GPU_PRICE_COLUMN} {raw!r}", "a number > 0")
        gpu = _gpu_name(row.get("gpu") or "")
        if not gpu:
            raise BillshapeInputError(field, f"{label} row {i} gpu ''", "an accelerator name")
        provider = (row.get("provider") or "").strip().lower()
        tier = (row.get("tier") or "").strip().lower() or "on-demand"
        rows.append({"date": date, "gpu": gpu, "model": gpu, "provider": provider, "tier": tier,
                     "region": (row.get("region") or "").strip(), "series": f"{provider}/{tier}",
                     "source": (row.get("source") or "").strip(), GPU_PRICE_COLUMN: price})
    if not rows:
        raise BillshapeInputError(field, label, "at least three dated prices")
    return rows


def _gpu_result_class():
    TrendBacktest = _result_classes()

    class GpuTrendBacktest(TrendBacktest):
        """A GPU rental-price trend fitted on older dated prices, scored on the newer ones."""

        gpu: str
        provider: str | None
        tier: str
        providers: list

    return GpuTrendBacktest


def _shipped_gpu_table(rows: list[dict]):
    from billshape.results import Assumption

    sources = list(dict.fromkeys(r["source"] for r in rows if r.get("source")))
    return Assumption(name="GPU price table", value=f"billshape/data/gpu_price_history.csv ({len(rows)} rows)",
                      unit=None, source=f"shipped table, a source on every row ({len(sources)} distinct; "
                      f"first: {sources[0] if sources else ''})",
                      as_of=max(str(r["date"]) for r in rows))


def gpu_backtest(gpu: str, rows: list[dict] | None = None, provider: str | None = None, tier: str | None = None,
                 cutoff: str | None = None, train_fraction: float = 0.5, source_label: str | None = None):
    """Fit an exponential trend to one accelerator's dated rental prices and score its forecast of the later ones.

    The rows of ``gpu`` at ``tier`` (default on-demand), at one ``provider`` or pooled over all of them, are
    split at ``cutoff`` (or by ``train_fraction``) as in :func:`backtest`; the forecast is compared with a flat
    forecast and with the catalogued hardware price-performance trends (Epoch AI's FLOP per dollar doubling every
    ~2.5 years, i.e. the price of the same chip's hour falling ~24 % a year).

    Parameters
    ----------
    gpu : str
        Accelerator name or alias (``h100`` is ``h100-sxm``).
    rows : list of dict, optional
        From :func:`read_gpu_price_history` (default: the shipped history).
    provider : str, optional
        Keep one provider; default: every provider (the fit then measures the market, provider spreads included).
    tier : str, optional
        ``on-demand`` (default), ``spot``, ``reserved-1y``, ``reserved-3y``, ``capacity-block``, ...
    cutoff, train_fraction, source_label
        As in :func:`backtest`.

    Returns
    -------
    GpuTrendBacktest
        The fields of :func:`backtest`'s result (``price_column`` is ``usd_per_gpu_hour``) plus ``gpu``,
        ``provider``, ``tier`` and ``providers`` (those whose prices were used).

    References
    ----------
    .. [3] Hobbhahn et al. (Epoch AI), "Trends in Machine Learning Hardware", 2023.
    """
    from billshape.results import derived, user

    GpuTrendBacktest = _gpu_result_class()
    shipped = rows is None
    rows = read_gpu_price_history() if rows is None else rows
    name = _gpu_name(str(gpu))
    sel = [r for r in rows if r["gpu"] == name]
    if not sel:
        raise unknown_name("gpu", gpu, {r["gpu"] for r in rows})
    tier_key = "on-demand" if tier is None else str(tier).strip().lower()
    at_tier = [r for r in sel if r["tier"] == tier_key]
    if not at_tier:
        raise unknown_name("tier", tier_key, {r["tier"] for r in sel})
    sel = at_tier
    provider_key = None
    if provider is not None:
        provider_key = str(provider).strip().lower()
        sel = [r for r in sel if r["provider"] == provider_key]
        if not sel:
            raise unknown_name("provider", provider, {r["provider"] for r in at_tier})
    fit = _fit_and_score(sel, GPU_PRICE_COLUMN, cutoff, train_fraction, GPU_TREND_APPLIES_TO,
                         "provider" if provider_key else "gpu")
    sel, dates, prices, forecast = fit["sel"], fit["dates"], fit["prices"], fit["forecast"]
    named = fit["fields"]["named_trend_errors"]
    scope = f"{provider_key}" if provider_key else "all providers pooled"
    fields = dict(fit["fields"])
    fields["explanation"] = f"{name} {tier_key} ({scope}): " + fields["explanation"]
    table = (user("GPU price table", source_label, None, "file") if source_label is not None
             else _shipped_gpu_table(rows) if shipped else derived("GPU price table", f"{len(rows)} rows", None,
                                                                   "rows given by the caller"))
    return GpuTrendBacktest(
        **fields, gpu=name, provider=provider_key, tier=tier_key,
        providers=sorted({r["provider"] for r in sel}),
        forecasts=[{"date": str(dates[i]), "model": sel[i]["gpu"], "provider": sel[i]["provider"],
                    "region": sel[i]["region"], "actual": float(prices[i]), "forecast": float(forecast[i])}
                   for i in np.where(fit["test"])[0]],
        assumptions=[
            table,
            derived("price column", GPU_PRICE_COLUMN, "USD/GPU-hour", "rental price per GPU-hour"),
            user("tier", tier_key, None, "tier") if tier is not None else
            derived("tier", tier_key, None, "default: on-demand list prices"),
            derived("cutoff date", str(fit["cut"]), None, "`cutoff`, or the train fraction of rows by date"),
            *[trends()[n].as_assumption() for n in named],
        ],
    )
