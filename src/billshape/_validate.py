"""Input checks shared by the equation modules (vectorised: they accept scalars or numpy arrays)."""

from __future__ import annotations

import numpy as np

from billshape.errors import BillshapeInputError


def _arr(value):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return arr


def finite(field: str, value, allowed: str = "a finite number"):
    arr = _arr(value)
    if arr is None or not np.all(np.isfinite(arr)):
        raise BillshapeInputError(field, value, allowed)
    return value


def positive(field: str, value, maximum: float | None = None):
    """Require value > 0 (and finite, and <= ``maximum`` when given)."""
    arr = _arr(value)
    ok = arr is not None and np.all(np.isfinite(arr)) and np.all(arr > 0)
    if maximum is not None:
        ok = ok and np.all(arr <= maximum)
        if not ok:
            raise BillshapeInputError(field, value, f"in (0, {maximum:g}]")
    if not ok:
        raise BillshapeInputError(field, value, "> 0 (finite)")
    return value


def non_negative(field: str, value, maximum: float | None = None):
    """Require value >= 0 (and finite, and <= ``maximum`` when given)."""
    arr = _arr(value)
    ok = arr is not None and np.all(np.isfinite(arr)) and np.all(arr >= 0)
    if maximum is not None:
        ok = ok and np.all(arr <= maximum)
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
    arr = _arr(value)
    if arr is None or not np.all(np.isfinite(arr)) or not np.all((arr > 0) & (arr <= 1)):
        raise BillshapeInputError(field, value, "in (0, 1]")
    return value


def unit_interval(field: str, value):
    """Require 0 <= value <= 1, as for shares and hit rates."""
    arr = _arr(value)
    if arr is None or not np.all(np.isfinite(arr)) or not np.all((arr >= 0) & (arr <= 1)):
        raise BillshapeInputError(field, value, "in [0, 1]")
    return value


def below_one(field: str, value):
    """Require 0 <= value < 1, as for a fraction of cost that cannot be the whole."""
    arr = _arr(value)
    if arr is None or not np.all(np.isfinite(arr)) or not np.all((arr >= 0) & (arr < 1)):
        raise BillshapeInputError(field, value, "in [0, 1)")
    return value
