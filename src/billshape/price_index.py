"""Constant dollars: a shipped price index (``data/price_index.csv``) and the conversion of a cost between years.

A cost of ``C`` dollars of year ``y0`` is, in dollars of year ``y1``,

.. math:: C_{y1} = C_{y0} \\, I(y1) / I(y0)

with ``I`` the annual-average price index. The shipped series is the US BLS CPI-U (all items, U.S. city average),
the index Epoch AI's published training-cost dataset uses for its constant-dollar figures. A year after the last
one in the series is read as the last year (no inflation after it is counted) and the result says so; a year
before the first is an error.

Standard library only: ``billshape train ... --json`` (the fast path) imports this.

References
----------
.. [1] US Bureau of Labor Statistics, CPI for All Urban Consumers (CPI-U), series CUUR0000SA0, annual averages.
.. [2] Cottier et al., "The rising costs of training frontier AI models", arXiv:2405.21015, 2024 (costs in
   constant 2023 US dollars).
"""

from __future__ import annotations

from functools import lru_cache

from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Record

DEFAULT_INDEX = "cpi-u"


class IndexYear(Record):
    """One year of a price index."""

    model_config = {"frozen": True}

    index: str
    year: int
    value: float
    unit: str = ""
    source: str
    as_of: str
    note: str = ""


class Conversion(Record):
    """How a cost was converted to constant dollars: the index, the years and the factor."""

    model_config = {"frozen": True}

    price_index: str
    usd_year: int
    cost_year: int
    index_year_used: int
    factor: float
    note: str = ""


@lru_cache(maxsize=None)
def series(index: str = DEFAULT_INDEX) -> dict[int, IndexYear]:
    """The annual values of a shipped price index, by year."""
    from billshape.catalog import load_keyed

    rows = load_keyed(IndexYear, "price_index.csv", ("index", "year"))
    out: dict[int, IndexYear] = {year: r for (name, year), r in rows.items() if name == index}
    if not out:
        raise BillshapeInputError("price_index", index, "a shipped price index: " + DEFAULT_INDEX)
    return out


def check_usd_year(usd_year, index: str = DEFAULT_INDEX) -> int:
    """``usd_year`` as an ``int``, a whole year the shipped index covers."""
    years = series(index)
    lo, hi = min(years), max(years)
    allowed = f"a whole year in [{lo}, {hi}] (the years of the shipped {index.upper()} series)"
    try:
        y = float(usd_year)
    except (TypeError, ValueError, OverflowError):
        raise BillshapeInputError("usd_year", usd_year, allowed) from None
    if y != y or y in (float("inf"), float("-inf")) or y != int(y) or not lo <= int(y) <= hi:
        raise BillshapeInputError("usd_year", usd_year, allowed)
    return int(y)


def constant_usd(nominal_usd, index_at_cost_year, index_at_usd_year):
    """A cost in another year's dollars: ``nominal x I(usd year) / I(cost year)``.

    Parameters
    ----------
    nominal_usd : float
        The cost in dollars of its own year [USD].
    index_at_cost_year, index_at_usd_year : float
        The price index in the cost's year and in the target year [index points], > 0.

    Returns
    -------
    float
        The cost in dollars of the target year [USD of that year].
    """
    return nominal_usd * index_at_usd_year / index_at_cost_year


def conversion(cost_year: int, usd_year: int, index: str = DEFAULT_INDEX,
               field: str = "usd_year") -> tuple[Conversion, list[Assumption]]:
    """The factor turning dollars of ``cost_year`` into dollars of ``usd_year``, with the index rows it used."""
    years = series(index)
    usd_year = check_usd_year(usd_year, index)
    lo, hi = min(years), max(years)
    cost_year = int(cost_year)
    if cost_year < lo:
        raise BillshapeInputError(field, f"a cost of {cost_year}", f"a cost year in [{lo}, {hi}] "
                                  f"(the shipped {index.upper()} series starts in {lo})")
    used = min(cost_year, hi)
    note = ""
    if used != cost_year:
        note = (f"{cost_year} dollars read as {hi} dollars: the shipped {index.upper()} series ends in {hi}, so "
                f"inflation after {hi} is not counted")
    a, b = years[used], years[usd_year]
    factor = constant_usd(1.0, a.value, b.value)
    conv = Conversion(price_index=index, usd_year=usd_year, cost_year=cost_year, index_year_used=used,
                      factor=factor, note=note)
    assumptions = [Assumption(name=f"{index.upper()} {a.year} annual average", value=a.value, unit=a.unit or None,
                              source=a.source, as_of=a.as_of)]
    if b.year != a.year:
        assumptions.append(Assumption(name=f"{index.upper()} {b.year} annual average", value=b.value,
                                      unit=b.unit or None, source=b.source, as_of=b.as_of))
    return conv, assumptions


__all__ = ["series", "check_usd_year", "constant_usd", "conversion", "Conversion", "IndexYear", "DEFAULT_INDEX"]


def restate_rows(rows: list[dict], usd_year, cost_key: str = "reported_cost_usd", year_key: str = "year",
                 index: str = DEFAULT_INDEX) -> tuple[list[dict], dict]:
    """Rows (dicts) with ``<cost_key>_in_usd_year`` added: each row's cost restated from its year's dollars into
    ``usd_year`` dollars (None where the row has no cost or no year); and a summary of the index and years used."""
    year = check_usd_year(usd_year, index)
    years = series(index)
    out, used = [], set()
    for r in rows:
        cost, y = r.get(cost_key), r.get(year_key)
        value = None
        if cost is not None and y:
            conv, _ = conversion(int(y), year, index, field="usd_year")
            value = constant_usd(float(cost), 1.0, conv.factor)
            used.add(conv.index_year_used)
        out.append({**r, f"{cost_key}_in_usd_year": value})
    last = max(years)
    rows_used = [years[y] for y in sorted(used | {year})]
    summary = {"usd_year": year, "price_index": index, "index_years": {str(a.year): a.value for a in rows_used},
               "source": years[year].source, "as_of": max(a.as_of for a in rows_used),
               "note": f"{cost_key} of each run's year restated in {year} dollars; years after {last} are read as "
                       f"{last} (the series ends there)"}
    return out, summary
