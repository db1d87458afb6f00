"""Optional dependency groups ("extras"): one check, one message.

The core install runs train, serve, breakeven, payback, size, capacity, route, market, plan and catalog. The rest
needs an extra: ``report`` (Altair + vl-convert: HTML reports and PNGs), ``usage`` (DuckDB, Ibis, PyArrow),
``pandas`` (``Result.to_pandas()``), ``app`` (Streamlit). :func:`require` raises :class:`MissingExtra`, which the
CLI prints as one line (exit 2): ``billshape app needs the [app] extra (...): pip install 'billshape[app]'``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from billshape.errors import MissingExtra

#: the modules each extra provides (checked in this order)
EXTRAS: dict[str, tuple[str, ...]] = {
    "report": ("altair", "vl_convert"),
    "usage": ("duckdb", "ibis", "pyarrow"),
    "pandas": ("pandas",),
    "app": ("streamlit", "altair", "vl_convert", "pandas", "pyarrow", "duckdb", "ibis"),
    "spark": ("pyspark",),
}


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without importing it)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(extra: str) -> str | None:
    """The first module of ``extra`` that is not installed, or None."""
    for module in EXTRAS[extra]:
        if not available(module):
            return module
    return None


def check(extra: str, what: str | None = None) -> None:
    """Raise :class:`MissingExtra` unless every module of ``extra`` is installed (imports nothing)."""
    module = missing(extra)
    if module is not None:
        raise MissingExtra(extra, module, what)


def require(extra: str, module: str, what: str | None = None):
    """Import and return ``module``; raise :class:`MissingExtra` naming ``extra`` if it is not installed."""
    if not available(module):
        raise MissingExtra(extra, module, what)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:  # a dependency of the module is missing
        raise MissingExtra(extra, exc.name or module, what) from None
