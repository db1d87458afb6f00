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


def positive(field: str, value):
    """Require value > 0 (and finite)."""
    arr = _arr(value)
    if arr is None or not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise BillshapeInputError(field, value, "> 0 (finite)")
    return value


def non_negative(field: str, value):
    """Require value >= 0 (and finite)."""
    arr = _arr(value)
    if arr is None or not np.all(np.isfinite(arr)) or not np.all(arr >= 0):
        raise BillshapeInputError(field, value, ">= 0 (finite)")
    return value


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
