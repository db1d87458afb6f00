"""Measured economics: ingest usage logs, price them, attribute cost, export FOCUS.

>>> from billshape import usage
>>> usage.ingest(["spans.json"], "usage.duckdb")          # doctest: +SKIP
>>> usage.report("usage.duckdb", by="customer")             # doctest: +SKIP

See ``docs/usage.md``. Engines: DuckDB (default, one file) and PySpark (``engine="spark"``), same Ibis code.
"""

from billshape.usage.api import (  # noqa: F401
    Economics,
    IngestResult,
    RepriceResult,
    Report,
    WhatIf,
    dropped_costs_text,
    dropped_route_costs,
    economics,
    fragment_yaml,
    ingest,
    merge_scenario,
    parse_map,
    parse_route,
    report,
    reprice,
    scenario_fragment,
    whatif,
)
from billshape.usage.focus import export_focus, focus13_table, focus_table  # noqa: F401
from billshape.usage.reconcile import Reconciliation, reconcile  # noqa: F401
