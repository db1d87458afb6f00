"""The usage ledger's actions as typed requests, one run each (:mod:`billshape.usage`).

=============================  ===============================================  ==============================
request                        runs                                             result
=============================  ===============================================  ==============================
``IngestRequest``              :func:`billshape.usage.ingest`                   ``usage.IngestResult``
``RepriceRequest``             :func:`billshape.usage.reprice`                  ``usage.RepriceResult``
``ReportRequest``              :func:`billshape.usage.report`                   ``usage.Report``
``EconomicsRequest``           :func:`billshape.usage.economics`                ``usage.Economics``
``WhatIfRequest``              :func:`billshape.usage.whatif`                   ``usage.WhatIf``
``ExportRequest``              :func:`billshape.usage.export_focus`             ``dict`` (what was written)
``FocusTableRequest``          :func:`billshape.usage.focus_table`              ``pyarrow.Table``
``ScenarioFragmentRequest``    :func:`billshape.usage.scenario_fragment`,       :class:`ScenarioFragment`
                               merged into a base scenario (``merge_into``)
``ForecastRequest``            :func:`billshape.usage.forecast.forecast`        ``forecast.Forecast``
                               (``backtest``: ``forecast.backtest``)            (``forecast.Backtest``)
``CheckRequest``               :func:`billshape.usage.check.check`              ``check.Check``
``AnomaliesRequest``           :func:`billshape.usage.anomalies.anomalies`      ``anomalies.Anomalies``
``MeasuredRequest``            :func:`billshape.usage.measured_metrics.measure` ``MeasuredServing``
``MetricsRequest``             :func:`billshape.usage.exporter.start`           the exporter (serving)
=============================  ===============================================  ==============================

Importing this module loads pydantic only; DuckDB, Ibis and pyarrow load when a request runs. Errors name the
fields (``cache_hit_rate``, ``routes[1]``, ``files[0]``, ``merge_into``); the CLI prints its flags.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional, Union

from billshape.chains.requests import Request, Source
from billshape.errors import BillshapeInputError
from billshape.results import Result

#: a usage database: a DuckDB file, or a directory for ``engine="spark"``
Db = Union[str, Path]


class IngestRequest(Request):
    """Usage logs to read, price and store in ``db`` (atomic; a log already in the ledger adds nothing).

    ``files``: each a path, bytes, a binary file object or a ``(name, bytes | file object)`` pair; in-memory
    inputs are capped at 20 MB and go by their name (format detection, the ledger's ``source_file``).
    ``mapping``: ``{COL: FIELD}`` or ``["COL=FIELD", ...]``. ``prices``: a user price table CSV (path).
    ``progress(name, rows)`` is called as each file is read.
    """

    files: Any
    db: Db
    format: Optional[str] = None
    mapping: Optional[Union[dict[str, str], list[str]]] = None
    engine: Optional[str] = None
    prices: Optional[Db] = None
    self_hosted: Optional[list[str]] = None
    progress: Optional[Callable[..., Any]] = None


class RepriceRequest(Request):
    """Re-price the rows of ``db`` quarantined for want of a price (with a new ``prices``/``self_hosted``)."""

    db: Db
    engine: Optional[str] = None
    prices: Optional[Db] = None
    self_hosted: Optional[list[str]] = None


class ReportRequest(Request):
    """Spend attributed ``by`` customer (default), feature, project, user, model, provider, day or month."""

    db: Db
    by: Optional[str] = None
    engine: Optional[str] = None


class EconomicsRequest(Request):
    """Measured unit economics of the ledger: cost per request, tokens per request, cost per user-month."""

    db: Db
    engine: Optional[str] = None


class WhatIfRequest(Request):
    """Re-price the measured usage: ``routes`` (``'FROM:SHARE->TO'``) and/or a ``cache_hit_rate`` in [0, 1]."""

    db: Db
    routes: list[str] = []
    cache_hit_rate: Optional[float] = None
    engine: Optional[str] = None
    prices: Optional[Db] = None


class ExportRequest(Request):
    """Write the ledger as a FOCUS dataset to ``output`` (``.csv`` or ``.parquet``): ``focus_version`` "1.2" (the
    library default) or "1.3" (the CLI's default), with a ``contract`` table (a path; 1.3 only)."""

    db: Db
    output: Optional[Db] = None
    format: str = "focus"
    engine: Optional[str] = None
    focus_version: str = "1.2"
    contract: Optional[Db] = None


class FocusTableRequest(Request):
    """The ledger as FOCUS 1.2 cost and usage rows (an Arrow table, sorted: the same rows every time)."""

    db: Db
    engine: Optional[str] = None


class ScenarioFragmentRequest(Request):
    """The measured inputs as a scenario fragment, or merged into the scenario ``merge_into`` (a path, YAML text,
    bytes or a file object; read bounded as a scenario is: size, nesting and duplicate keys) and validated.

    ``economics``: a measured :class:`~billshape.usage.Economics` (else it is measured from ``db``); ``db`` names
    the ledger in the YAML's header comment.
    """

    db: Db
    economics: Optional[Any] = None
    engine: Optional[str] = None
    merge_into: Optional[Source] = None


class ScenarioFragment(Result):
    """A scenario fragment (``fragment``: the scenario schema's keys) and its YAML ``text``; with ``merge_into``,
    the ``merged`` scenario (``text`` is then the merged scenario's YAML) and the deployment costs of the base's
    routes that the measured routes replaced (``dropped_route_costs``)."""

    fragment: dict
    text: str
    merge_into: Optional[str] = None
    merged: Optional[dict] = None
    dropped_route_costs: list[dict] = []


def _p(value: Any) -> Any:
    return None if value is None else os.fspath(value)


def run_ingest(req: IngestRequest):
    from billshape.usage import api

    return api.ingest(req.files, _p(req.db), fmt=req.format, mapping=req.mapping, engine=req.engine,
                      prices_csv=_p(req.prices), progress=req.progress, self_hosted=req.self_hosted)


def run_reprice(req: RepriceRequest):
    from billshape.usage import api

    return api.reprice(_p(req.db), engine=req.engine, prices_csv=_p(req.prices), self_hosted=req.self_hosted)


def run_report(req: ReportRequest):
    from billshape.usage import api

    return api.report(_p(req.db), req.by, engine=req.engine)


def run_economics(req: EconomicsRequest):
    from billshape.usage import api

    return api.economics(_p(req.db), engine=req.engine)


def run_whatif(req: WhatIfRequest):
    from billshape.usage import api

    return api.whatif(_p(req.db), req.routes, req.cache_hit_rate, engine=req.engine, prices_csv=_p(req.prices))


def _output(req) -> str:
    if req.output is None:
        raise BillshapeInputError("output", None, "an output path ending in .csv or .parquet")
    out = os.fspath(req.output)
    if not out.lower().endswith((".parquet", ".pq", ".csv")):
        raise BillshapeInputError("output", out, "a path ending in .csv or .parquet")
    return out


def run_export(req: ExportRequest) -> dict:
    from billshape.usage.focus import export_focus

    if req.format != "focus":
        raise BillshapeInputError("format", req.format, "focus")
    return export_focus(_p(req.db), _output(req), engine=req.engine, focus_version=req.focus_version,
                        contract=_p(req.contract) if req.contract is not None else None)


def run_focus_table(req: FocusTableRequest):
    from billshape.usage.focus import focus_table

    return focus_table(_p(req.db), req.engine)


def run_scenario_fragment(req: ScenarioFragmentRequest) -> ScenarioFragment:
    import textwrap

    import yaml

    from billshape.usage import api

    db = _p(req.db)
    econ = req.economics
    if econ is None:
        econ = api.economics(db, engine=req.engine)
    elif not isinstance(econ, api.Economics):
        raise BillshapeInputError("economics", type(econ).__name__, "a measured usage.Economics (or none: measured "
                                  "from `db`)")
    frag = api.scenario_fragment(econ)
    text = api.fragment_yaml(frag, econ, db)
    if req.merge_into is None:
        return ScenarioFragment(fragment=frag, text=text)
    from billshape.plan import parse as parse_plan

    base, name = read_base_scenario(req.merge_into)
    merged = api.merge_scenario(base, frag)
    parse_plan(merged, name)  # refuse a merged scenario that does not validate
    dropped = api.dropped_route_costs(base, frag)
    head = "".join(line + "\n" for line in text.splitlines()[:2])
    note = "".join(f"# {line}\n" for line in textwrap.wrap(api.dropped_costs_text(dropped), 116)) if dropped else ""
    text = head + f"# Merged into {name}: product keys overridden, serving.routes replaced.\n" + note + \
        yaml.safe_dump(merged, sort_keys=False, default_flow_style=None, width=120)
    return ScenarioFragment(fragment=frag, text=text, merge_into=name, merged=merged, dropped_route_costs=dropped)


def read_base_scenario(source: Any, field: str = "merge_into") -> tuple[dict, str]:
    """A base scenario's mapping, as written (not validated), and its name, read bounded by the plan's loader
    (:mod:`billshape.plan.loader`: at most 2 MB, 64 levels of nesting, no key twice in a mapping); every error
    names ``field`` (``merge_into product.users`` for a key given twice)."""
    from billshape.plan.loader import MAX_BYTES, _yaml_data

    cap = f"a scenario file of at most {MAX_BYTES:,} bytes ({MAX_BYTES // 2**20} MB)"
    is_text = isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{"))
    if isinstance(source, (str, os.PathLike)) and not is_text:
        name = os.fspath(source)
        try:
            size = os.stat(name).st_size
            if size > MAX_BYTES:
                raise BillshapeInputError(field, name, cap, f"{size:,} bytes; a scenario is a page of YAML")
            with open(name, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except OSError as exc:
            raise BillshapeInputError(field, name, "a readable scenario YAML file", type(exc).__name__) from None
    elif is_text:
        name, raw = "<text>", source.encode("utf-8", "surrogatepass")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        name, raw = "<bytes>", bytes(source)
    elif hasattr(source, "read"):
        name = str(getattr(source, "name", "") or "<file>")
        raw = source.read(MAX_BYTES + 1)
        raw = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw or b"")
    else:
        raise BillshapeInputError(field, type(source).__name__, "a scenario YAML file: a path, YAML text, bytes or a "
                                  "file object")
    if len(raw) > MAX_BYTES:
        raise BillshapeInputError(field, name, cap, "the input is too large; a scenario is a page of YAML")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BillshapeInputError(field, name, "a UTF-8 text scenario YAML file",
                                  f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        base = _yaml_data(text, name)
    except BillshapeInputError as exc:  # named by the file (size, depth, syntax) or by a YAML path (a key twice)
        where = exc.field
        where = field if where == name else field + where[len(name):] if where.startswith(name + " ") else \
            f"{field} {where}"
        raise BillshapeInputError(where, exc.value, exc.allowed, exc.hint) from None
    if not isinstance(base, dict):
        raise BillshapeInputError(field, name, "a scenario YAML mapping")
    return base, name


class MeasuredRequest(Request):
    """Measured self-hosted economics from two or more Prometheus scrapes (``metrics``: files or loopback URLs, in
    the order taken) of a vLLM/SGLang page and optionally DCGM's: tokens/s, busy share, $/M output tokens at the
    rent (``price`` USD/GPU-hour or ``provider`` [+ ``tier``] with ``gpu``), and with ``model`` the serving
    model's figure beside it. ``window_seconds``: first to last scrape, for samples without timestamps."""

    metrics: list[str]
    gpus: Optional[float] = None
    price: Optional[float] = None
    gpu: Optional[str] = None
    provider: Optional[str] = None
    tier: Optional[str] = None
    model: Optional[str] = None
    precision: Optional[str] = None
    window_seconds: Optional[float] = None


class MetricsRequest(Request):
    """Serve the ledger ``db`` as Prometheus metrics on 127.0.0.1:``port`` (0: any free port): totals per ``by``
    group, cost in the newest ``period`` (month, day or all), ``budget_usd`` usage and margin against a
    ``revenue`` CSV. The run returns a running :class:`billshape.usage.exporter.Exporter` (``stop()`` it)."""

    db: Db
    port: int = 9464
    by: Optional[str] = None
    period: str = "month"
    engine: Optional[str] = None
    budget_usd: Optional[float] = None
    revenue: Optional[Db] = None


def run_measured(req: MeasuredRequest):
    from billshape.usage.measured_metrics import measure

    return measure(req.metrics, gpus=req.gpus, price=req.price, gpu=req.gpu, provider=req.provider, tier=req.tier,
                   model=req.model, precision=req.precision, window_seconds=req.window_seconds)


def run_metrics(req: MetricsRequest):
    from billshape.usage import exporter

    return exporter.start(_p(req.db), req.port, by=req.by, period=req.period, engine=req.engine,
                          budget_usd=req.budget_usd, revenue=_p(req.revenue))
# ------------------------------------------------------------------------------------------ watch the bill

class ForecastRequest(Request):
    """Month-end (or ``horizon_days``) spend with P10/P50/P90 per ``by`` group (:func:`billshape.usage.forecast.
    forecast`); ``backtest``: replay the ledger's past months instead (:func:`~billshape.usage.forecast.backtest`)."""

    db: Db
    by: Optional[str] = None
    horizon_days: Optional[int] = None
    engine: Optional[str] = None
    samples: int = 2000
    seed: int = 0
    backtest: bool = False


class CheckRequest(Request):
    """Budget and unit-economics rules over the current ``period`` (:func:`billshape.usage.check.check`): a
    ``budget_usd`` per ``by`` group (80 / 90 / 100 % levels), a ``max_cost_per_request``, a ``min_margin`` with a
    ``revenue`` table (``{customer: USD}`` or a CSV path) or a ``scenario`` (its ``product.price_per_user_month_usd``);
    ``rules``: a YAML file of the same keys (the fields given here win)."""

    db: Db
    rules: Optional[Db] = None
    budget_usd: Optional[float] = None
    period: Optional[str] = None
    by: Optional[str] = None
    max_cost_per_request: Optional[float] = None
    min_margin: Optional[float] = None
    revenue: Optional[Union[dict[str, float], str, Path]] = None
    scenario: Optional[Source] = None
    engine: Optional[str] = None


class AnomaliesRequest(Request):
    """Days (or hours: ``grain``) whose cost or tokens per request for a ``by`` group leave their usual range
    (:func:`billshape.usage.anomalies.anomalies`: rolling median / MAD), with the ``rows`` costliest ledger rows."""

    db: Db
    by: str = "customer"
    grain: str = "day"
    threshold: float = 6.0
    window: int = 28
    rows: int = 5
    engine: Optional[str] = None


def run_forecast(req: ForecastRequest):
    from billshape.usage import forecast as F

    if req.backtest:
        if req.horizon_days is not None:
            raise BillshapeInputError("horizon_days", req.horizon_days, "not with `backtest` (it replays whole months)")
        return F.backtest(_p(req.db), req.by, engine=req.engine, samples=req.samples, seed=req.seed)
    return F.forecast(_p(req.db), req.by, req.horizon_days, engine=req.engine, samples=req.samples, seed=req.seed)


def run_check(req: CheckRequest):
    from billshape.usage import check as C

    rules = C.read_rules(_p(req.rules)) if req.rules is not None else {}
    given = {k: getattr(req, k) for k in ("budget_usd", "period", "by", "max_cost_per_request", "min_margin")
             if getattr(req, k) is not None}
    rules.update(given)
    revenue = req.revenue if req.revenue is not None else rules.pop("revenue", None)
    rules.pop("revenue", None)
    if isinstance(revenue, (str, Path)):
        revenue = C.read_revenue(os.fspath(revenue))
    price = rules.pop("price_per_user_month_usd", None)
    if req.scenario is not None:
        base, name = read_base_scenario(req.scenario, "scenario")
        price = (base.get("product") or {}).get("price_per_user_month_usd")
        if not isinstance(price, (int, float)) or isinstance(price, bool) or price < 0:
            raise BillshapeInputError("scenario", name, "a scenario whose product.price_per_user_month_usd is a number >= 0")
    by = rules.pop("by", None)
    return C.check(_p(req.db), by=by, engine=req.engine, revenue=revenue, price_per_user_month_usd=price,
                   period=rules.pop("period", None) or "month", **rules)


def run_anomalies(req: AnomaliesRequest):
    from billshape.usage import anomalies as A

    return A.anomalies(_p(req.db), req.by, req.grain, engine=req.engine, threshold=req.threshold, window=req.window,
                       rows=req.rows)
