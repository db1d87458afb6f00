"""Input checks shared by the equation modules (vectorised: they accept scalars or numpy arrays).

A plain Python ``float`` or ``int`` is checked with ``math`` (numpy is not imported for it, so that the CLI's
scalar paths start fast); anything else (arrays, numpy scalars, lists, strings, booleans) goes through
``numpy.asarray(value, dtype=float)`` exactly as before. Both give the same answer for a plain number.
"""

from __future__ import annotations

import math

from billshape.errors import BillshapeInputError

#: the exact types checked without numpy (bool is not one: numpy reads True as 1.0, as before)
SCALARS = (float, int)


def is_scalar(value) -> bool:
    """True for a plain Python float or int (not bool, not a numpy scalar)."""
    return type(value) in SCALARS


def _arr(value):
    import numpy as np

    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr


def _scalar(value) -> float | None:
    """``float(value)`` for a plain float or int (None when an int is too large for a float, as numpy would fail)."""
    try:
        return float(value)
    except OverflowError:
        return None


def _check(value, test) -> bool:
    """``test`` holds for every element of ``value`` (and each is finite); False when ``value`` is not numeric."""
    if type(value) in SCALARS:
        x = _scalar(value)
        return x is not None and math.isfinite(x) and bool(test(x))
    import numpy as np

    arr = _arr(value)
    return arr is not None and bool(np.all(np.isfinite(arr))) and bool(np.all(test(arr)))


def finite(field: str, value, allowed: str = "a finite number"):
    if not _check(value, lambda x: x == x):
        raise BillshapeInputError(field, value, allowed)
    return value


def positive(field: str, value, maximum: float | None = None):
    """Require value > 0 (and finite, and <= ``maximum`` when given)."""
    ok = _check(value, lambda x: x > 0)
    if maximum is not None:
        ok = ok and _check(value, lambda x: x <= maximum)
        if not ok:
            raise BillshapeInputError(field, value, f"in (0, {maximum:g}]")
    if not ok:
        raise BillshapeInputError(field, value, "> 0 (finite)")
    return value


def non_negative(field: str, value, maximum: float | None = None):
    """Require value >= 0 (and finite, and <= ``maximum`` when given)."""
    ok = _check(value, lambda x: x >= 0)
    if maximum is not None:
        ok = ok and _check(value, lambda x: x <= maximum)
        if not ok:
            raise BillshapeInputError(field, value, f"in [0, {maximum:g}]")
    if not ok:
        raise BillshapeInputError(field, value, ">= 0 (finite)")
    return value


# Upper bounds on inputs at the shells' boundary: far beyond any real deployment, and small enough that no
# product of them overflows a float. Not defaults (nothing is assumed from them), so they are not catalog rows.
MAX_USD = 1e15            # a fixed cost or bill
MAX_USD_RATE = 1e6        # a price per GPU-hour, per million tokens, or per user-month
MAX_COUNT = 1e12          # GPUs, users
MAX_HOURS = 1e6           # wall-clock hours (114 years)
MAX_DAYS = 4e4
MAX_GPU_HOURS = 1e13
MAX_TOKENS = 1e18         # tokens, parameters, tokens per second
MAX_FLOPS = 1e32


def fraction(field: str, value):
    """Require 0 < value <= 1, as for utilization and MFU."""
    if not _check(value, lambda x: (x > 0) & (x <= 1)):
        raise BillshapeInputError(field, value, "in (0, 1]")
    return value


def unit_interval(field: str, value):
    """Require 0 <= value <= 1, as for shares and hit rates."""
    if not _check(value, lambda x: (x >= 0) & (x <= 1)):
        raise BillshapeInputError(field, value, "in [0, 1]")
    return value


def below_one(field: str, value):
    """Require 0 <= value < 1, as for a fraction of cost that cannot be the whole."""
    if not _check(value, lambda x: (x >= 0) & (x < 1)):
        raise BillshapeInputError(field, value, "in [0, 1)")
    return value
