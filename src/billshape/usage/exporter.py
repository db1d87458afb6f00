"""The ledger as Prometheus metrics (``billshape usage metrics --port P``), for a Grafana board.

A custom prometheus-client collector reads the ledger on every scrape (read-only, one read at a time) and
serves, per ``by`` group (customer by default):

==========================================  =====================================================================
metric (gauge)                              value
==========================================  =====================================================================
``billshape_ledger_cost_usd``               cost of the group over the whole ledger [USD]
``billshape_ledger_requests``               requests of the group
``billshape_ledger_input_tokens``           input tokens of the group
``billshape_ledger_output_tokens``          output tokens of the group
``billshape_ledger_total_cost_usd``         the ledger's total [USD] (no labels)
``billshape_ledger_rows_quarantined``       rows held back for want of a price
``billshape_ledger_last_row_timestamp_seconds``  the newest row's time [s since the epoch]
``billshape_period_cost_usd``               cost of the group in the period (label ``period``: the ledger's newest
                                            month, or day; ``all``: the whole ledger) [USD]
``billshape_budget_usd``                    the budget per group and period (with ``budget_usd``) [USD]
``billshape_budget_used_ratio``             period cost / budget (1 = the budget is spent)
``billshape_revenue_usd``                   the group's revenue in the period (with a ``revenue`` table) [USD]
``billshape_margin_usd``                    revenue - period cost [USD]
``billshape_margin_ratio``                  margin / revenue (groups with revenue > 0)
``billshape_ledger_up``                     1 when the last read of the ledger succeeded, else 0
==========================================  =====================================================================

Labels: ``by`` (the dimension) and ``group`` (its value; ``(none)`` for unattributed rows). The server binds
127.0.0.1 only. prometheus-client is imported when the exporter starts.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass, field
from typing import Any

from billshape.errors import BillshapeInputError

PERIODS = ("month", "day", "all")
PREFIX = "billshape_"
HOST = "127.0.0.1"


def read_revenue(path: str | None, by: str) -> dict[str, float]:
    """A revenue table: CSV with a group column (``by``'s name, ``group`` or ``key``) and ``revenue_usd`` (USD in
    the period)."""
    if not path:
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BillshapeInputError("revenue", path, "a readable UTF-8 CSV file", type(exc).__name__) from None
    cols = rows[0].keys() if rows else []
    key = next((c for c in (by, "group", "key") if c in cols), None)
    if key is None or "revenue_usd" not in cols:
        raise BillshapeInputError("revenue", path, f"a CSV with columns {by} (or group) and revenue_usd")
    out = {}
    for i, row in enumerate(rows, start=2):
        try:
            x = float(row["revenue_usd"])
        except (TypeError, ValueError):
            x = float("nan")
        if not (x == x and 0 <= x <= 1e15):
            raise BillshapeInputError(f"revenue {path}:{i} revenue_usd", row["revenue_usd"], "a number in [0, 1e15] (USD)")
        out[str(row[key]).strip()] = x
    return out


@dataclass
class Snapshot:
    """What one read of the ledger gives the collector (also what the tests check)."""

    by: str
    period: str
    period_key: str
    groups: list[dict] = field(default_factory=list)
    period_cost: dict[str, float] = field(default_factory=dict)
    total_usd: float = 0.0
    rows_quarantined: int = 0
    last_ts: float | None = None


def snapshot(db: str, by: str = "customer", period: str = "month", engine: str | None = None) -> Snapshot:
    """Read the ledger's totals per ``by`` group, and the cost per group in the newest ``period``."""
    from billshape.usage import api
    from billshape.usage import engine as E

    if period not in PERIODS:
        raise BillshapeInputError("period", period, "one of " + ", ".join(PERIODS))
    rep = api.report(db, by, engine=engine)
    store = E.open_store(db, engine, read_only=True)
    try:
        ledger = store.table("ledger")
        last = store.frame(ledger.aggregate(last=ledger.ts.max())).to_pylist()[0]["last"]
        key = "all"
        period_rows = rep.rows
        if period != "all" and last is not None:
            key = last.date().isoformat()[: 7 if period == "month" else 10]
            part = ledger.filter(E.DIMENSION_KEYS[period](ledger) == key)
            period_rows = store.frame(E.attribution(part, by)).to_pylist()
    finally:
        store.close()
    ts = None
    if last is not None:
        import datetime as dt

        ts = (last if last.tzinfo else last.replace(tzinfo=dt.timezone.utc)).timestamp()
    return Snapshot(by=rep.by, period=period, period_key=key, groups=rep.rows,
                    period_cost={r["key"]: api.usd(r["usd_micro"]) for r in period_rows}, total_usd=rep.total_usd,
                    rows_quarantined=rep.rows_quarantined, last_ts=ts)


class LedgerCollector:
    """A prometheus-client collector: one ledger read per scrape (serialised)."""

    def __init__(self, db: str, by: str = "customer", period: str = "month", engine: str | None = None,
                 budget_usd: float | None = None, revenue: dict[str, float] | None = None):
        self.db, self.by, self.period, self.engine = db, by, period, engine
        self.budget_usd, self.revenue = budget_usd, revenue or {}
        self._lock = threading.Lock()

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        def fam(name, doc, labels=()):
            return GaugeMetricFamily(PREFIX + name, doc, labels=list(labels))

        up = fam("ledger_up", "1 when the last read of the ledger succeeded")
        try:
            with self._lock:
                snap = snapshot(self.db, self.by, self.period, self.engine)
        except Exception:  # a locked or missing ledger: say so on the page, keep serving
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        g = ("by", "group")
        p = ("by", "group", "period")
        fams = {n: fam(n, d, g) for n, d in (("ledger_cost_usd", "Cost per group over the whole ledger (USD)"),
                                               ("ledger_requests", "Requests per group over the whole ledger"),
                                               ("ledger_input_tokens", "Input tokens per group over the whole ledger"),
                                               ("ledger_output_tokens", "Output tokens per group over the whole ledger"))}
        for r in snap.groups:
            lab = [snap.by, r["key"]]
            fams["ledger_cost_usd"].add_metric(lab, r["usd"])
            fams["ledger_requests"].add_metric(lab, r["requests"])
            fams["ledger_input_tokens"].add_metric(lab, r["input_tokens"])
            fams["ledger_output_tokens"].add_metric(lab, r["output_tokens"])
        yield from fams.values()
        total = fam("ledger_total_cost_usd", "The ledger's total cost (USD)")
        total.add_metric([], snap.total_usd)
        quarantined = fam("ledger_rows_quarantined", "Rows quarantined for want of a price")
        quarantined.add_metric([], snap.rows_quarantined)
        yield total
        yield quarantined
        if snap.last_ts is not None:
            last = fam("ledger_last_row_timestamp_seconds", "The newest ledger row's time (s since the epoch)")
            last.add_metric([], snap.last_ts)
            yield last
        cost = fam("period_cost_usd", "Cost per group in the period (USD)", p)
        budget = fam("budget_usd", "Budget per group and period (USD)", p)
        used = fam("budget_used_ratio", "Period cost / budget (1 = spent)", p)
        rev = fam("revenue_usd", "Revenue per group in the period (USD)", p)
        margin = fam("margin_usd", "Revenue - period cost per group (USD)", p)
        mratio = fam("margin_ratio", "Margin / revenue per group", p)
        groups = list(snap.period_cost) + [k for k in self.revenue if k not in snap.period_cost]
        for key in groups:
            c = snap.period_cost.get(key, 0.0)
            lab = [snap.by, key, snap.period_key]
            cost.add_metric(lab, c)
            if self.budget_usd is not None:
                budget.add_metric(lab, self.budget_usd)
                used.add_metric(lab, c / self.budget_usd)
            if key in self.revenue:
                r = self.revenue[key]
                rev.add_metric(lab, r)
                margin.add_metric(lab, r - c)
                if r > 0:
                    mratio.add_metric(lab, (r - c) / r)
        yield cost
        if self.budget_usd is not None:
            yield budget
            yield used
        if self.revenue:
            yield rev
            yield margin
            yield mratio


@dataclass
class Exporter:
    """A running exporter: ``url`` to scrape, ``stop()`` to shut it down."""

    port: int
    server: Any
    thread: Any
    collector: LedgerCollector

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start(db: str, port: int, *, by: str | None = None, period: str = "month", engine: str | None = None,
          budget_usd: float | None = None, revenue: str | None = None) -> Exporter:
    """Serve the ledger's metrics on 127.0.0.1:``port`` (0: any free port) in a background thread."""
    import os

    from billshape import _validate as v
    from billshape._extras import require
    from billshape.usage.api import REPORT_BY

    by = by or REPORT_BY[0]
    if by not in REPORT_BY:
        raise BillshapeInputError("by", by, "one of " + ", ".join(REPORT_BY))
    if period not in PERIODS:
        raise BillshapeInputError("period", period, "one of " + ", ".join(PERIODS))
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise BillshapeInputError("port", port, "a TCP port in [0, 65535] (0: any free port)")
    if budget_usd is not None:
        v.positive("budget_usd", budget_usd, v.MAX_USD)
    if engine in (None, "duckdb") and not os.path.exists(db):
        raise BillshapeInputError("db", db, "an existing usage database (run `billshape usage ingest` first)")
    snapshot(db, by, period, engine)  # a ledger that cannot be read fails here, before the server starts
    collector = LedgerCollector(db, by, period, engine, budget_usd, read_revenue(revenue, by))
    pc = require("usage", "prometheus_client", "billshape usage metrics")
    registry = pc.CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, thread = pc.start_http_server(port, addr=HOST, registry=registry)
    except OSError as exc:
        raise BillshapeInputError("port", port, "a free TCP port on 127.0.0.1", exc.strerror or type(exc).__name__) from None
    return Exporter(port=server.server_port, server=server, thread=thread, collector=collector)
