"""How old the figures in an answer are: the pricing date, per-kind age thresholds and staleness warnings.

A catalog row's ``as_of`` is the date its figure was in force at its source (see ``docs/sources.md``). An answer
is priced at a *pricing date*: a plan's ``as_of`` (``plan --as-of DATE``, the scenario's ``as_of:`` or
``serving.api_prices_as_of``), else today (UTC; ``BILLSHAPE_TODAY=YYYY-MM-DD`` fixes "today", for tests and
reproducible runs). :func:`warnings_for` names every used figure older than its kind's threshold on that date:

* **prices** (an assumption whose unit is a money unit: ``USD``, ``USD/GPU-hour``, ``USD per million tokens``,
  ``USD per kWh``, ...) go stale after ``stale_after_days_price`` days (``data/constants.csv``, 90);
* **specs** (FLOP/s, bytes, watts, fractions, published run sizes) never go stale.

User inputs and computed values carry no ``as_of`` and are never stale. A figure dated *after* the pricing date
is named too: the price in force on that date is then not in the catalog.

``max_age_days`` (``--max-age-days N`` on the CLI, ``BILLSHAPE_MAX_AGE_DAYS``, or :func:`set_max_age_days`)
overrides the price threshold for a run.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
from collections.abc import Iterable

from billshape.errors import BillshapeInputError

TODAY_ENV = "BILLSHAPE_TODAY"
MAX_AGE_ENV = "BILLSHAPE_MAX_AGE_DAYS"
THRESHOLD_ROWS = {"price": "stale_after_days_price"}  # kind -> constants.csv row; kinds not listed never go stale
MONEY_UNITS = ("USD",)

_max_age: contextvars.ContextVar[int | None] = contextvars.ContextVar("billshape_max_age_days", default=None)
_pricing_day: contextvars.ContextVar[dt.date | None] = contextvars.ContextVar("billshape_pricing_day", default=None)


def today() -> dt.date:
    """Today's UTC date, or ``BILLSHAPE_TODAY`` (an ISO date) when set."""
    given = os.environ.get(TODAY_ENV, "").strip()
    if given:
        try:
            return dt.date.fromisoformat(given)
        except ValueError:
            raise BillshapeInputError(TODAY_ENV, given, "an ISO date YYYY-MM-DD") from None
    return dt.datetime.now(tz=dt.timezone.utc).date()


def set_max_age_days(days: int | None) -> contextvars.Token:
    """Override the price threshold (days) for what runs next in this context; ``None``: the catalog's."""
    if days is not None and (isinstance(days, bool) or int(days) != days or days < 0 or days > 36_500):
        raise BillshapeInputError("max_age_days", days, "a whole number of days in [0, 36500]")
    return _max_age.set(None if days is None else int(days))


def max_age_days() -> int | None:
    """The override in force: :func:`set_max_age_days`, else ``BILLSHAPE_MAX_AGE_DAYS``, else None."""
    value = _max_age.get()
    if value is not None:
        return value
    env = os.environ.get(MAX_AGE_ENV, "").strip()
    if not env:
        return None
    if not env.isdigit() or int(env) > 36_500:
        raise BillshapeInputError(MAX_AGE_ENV, env, "a whole number of days in [0, 36500]")
    return int(env)


def set_pricing_day(day: dt.date | None) -> contextvars.Token:
    """Price catalog look-ups at ``day`` (a plan's as_of) for what runs next in this context."""
    return _pricing_day.set(day)


def reset_pricing_day(token: contextvars.Token) -> None:
    _pricing_day.reset(token)


def pricing_day() -> dt.date | None:
    """The pricing date set by :func:`set_pricing_day` (a plan's as_of), else None (price at the latest rows)."""
    return _pricing_day.get()


def kind_of(unit: str | None) -> str:
    """``"price"`` for a money unit, else ``"spec"``."""
    return "price" if unit and any(m in unit for m in MONEY_UNITS) else "spec"


def threshold_days(kind: str) -> int | None:
    """Days after which a figure of ``kind`` is stale: the override, else its constants.csv row; None: never."""
    row = THRESHOLD_ROWS.get(kind)
    if row is None:
        return None
    override = max_age_days()
    if override is not None:
        return override
    from billshape import catalog

    return int(catalog.constant(row).value)


def warnings_for(assumptions: Iterable, on: dt.date | None = None) -> list[str]:
    """One line per used figure older than its kind's threshold on ``on`` (default :func:`today`), or dated
    after it; each name appears once (the oldest date wins)."""
    on = today() if on is None else on
    out: dict[str, str] = {}
    for a in assumptions:
        as_of = getattr(a, "as_of", None)
        if not as_of:
            continue
        source = str(getattr(a, "source", ""))
        if source.startswith(("user input", "computed")):
            continue
        limit = threshold_days(kind_of(getattr(a, "unit", None)))
        if limit is None:
            continue
        try:
            day = dt.date.fromisoformat(str(as_of)[:10])
        except ValueError:
            continue
        age = (on - day).days
        if age > limit:
            line = (f"stale: {a.name} is {age} days old on {on.isoformat()} (as_of {day.isoformat()}; prices go "
                    f"stale after {limit} days)")
        elif age < 0:
            line = (f"dated after the pricing date: {a.name} is as_of {day.isoformat()}, {-age} days after "
                    f"{on.isoformat()} (the price in force then is not catalogued)")
        else:
            continue
        out.setdefault(a.name, line)
    return list(out.values())


def attach(result):
    """``result`` with its staleness warnings (on the pricing date, else today) and the catalog snapshot its
    prices came from recorded; results that keep their own ``warnings`` (the usage ledger's) are left as they
    are. Returns ``result``."""
    from billshape.results import Result, _declares_warnings

    if not isinstance(result, Result) or _declares_warnings(type(result)):
        return result
    from billshape import snapshots

    found = warnings_for(result.assumptions, pricing_day() or today()) if result.assumptions else []
    d = result.__dict__  # written directly, so that a frozen result is dated too
    d["warnings"] = list(result.warnings) + [w for w in found if w not in result.warnings]
    sid = snapshots.active_id()
    if sid is not None:
        d["snapshot"] = sid
    return result
