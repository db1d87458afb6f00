"""``billshape usage``: measured economics from usage logs (ingest, report, economics, whatif, export)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from billshape.cli._common import Engine, JsonOpt, MaxAgeOpt, SnapshotOpt

HELP = """Measured economics: ingest usage logs, price them, attribute cost, export FOCUS.

Example: billshape usage ingest spans.json --db usage.duckdb && billshape usage report --db usage.duckdb --by customer
"""

DbOpt = Annotated[str, typer.Option("--db", help="Usage database: a DuckDB file (default engine) or a directory (--engine spark).")]
EngineOpt = Annotated[Optional[Engine], typer.Option("--engine", case_sensitive=False, help="duckdb (default, one file) or spark (local or cluster).", show_default=False)]
SelfHostedOpt = Annotated[Optional[list[str]], typer.Option(
    "--self-hosted", help="Price a self-hosted model with the serving model: 'NAME=MODEL@GPU[xN][:PRECISION[:USD_PER_GPU_HOUR"
    "[:UTILIZATION]]]' (NAME as in the logs), or a YAML/CSV mapping file (repeatable).")]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=HELP, no_args_is_help=True)
    app.add_typer(group, name="usage")

    @group.command("ingest", help="Read, price and store usage logs (atomic; re-ingesting a file adds nothing).")
    def ingest(
        files: Annotated[list[str], typer.Argument(help="Log files: OTLP JSON spans, OpenAI usage JSON, raw responses JSONL, CSV, Parquet.")],
        db: DbOpt = "usage.duckdb",
        fmt: Annotated[Optional[Literal["otel", "openai", "raw", "csv", "parquet", "anthropic-usage", "anthropic-cost", "litellm", "langfuse"]], typer.Option("--format", case_sensitive=False, help="Log format (default: from the extension and content).")] = None,
        mapping: Annotated[Optional[list[str]], typer.Option("--map", help="COL=FIELD: read column/attribute COL as FIELD (customer, feature, project, user_id, ts, model, provider, request_id, requests, *_tokens).")] = None,
        engine: EngineOpt = None,
        prices: Annotated[Optional[str], typer.Option("--prices", help="User price table CSV (self-hosted models; wins over genai-prices).")] = None,
        self_hosted: SelfHostedOpt = None,
        reprice_quarantine: Annotated[bool, typer.Option("--reprice-quarantine", help="After the ingest, re-price rows quarantined earlier that now have a price.")] = False,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import IngestRequest, RepriceRequest
        from billshape.cli._common import catalog_options, print_json

        catalog_options(snapshot, max_age_days)

        progress = None
        bar = None
        err_console = None
        if not json_out:
            from rich.console import Console

            err_console = Console(stderr=True)
        if err_console is not None and err_console.is_terminal:  # a live bar only for a person watching a terminal
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
                           TimeElapsedColumn(), console=err_console, transient=True)
            bar.start()
            tasks = {}

            def progress(path: str, rows: int) -> None:
                if path not in tasks:
                    tasks[path] = bar.add_task(f"reading {path}", total=None)
                bar.update(tasks[path], completed=rows)

        try:
            res = _run(IngestRequest(files=files, db=db, format=fmt, mapping=mapping or [], engine=engine, prices=prices,
                                    progress=progress, self_hosted=self_hosted))
        finally:
            if bar is not None:
                bar.stop()
        rep = _run(RepriceRequest(db=db, engine=engine, prices=prices, self_hosted=self_hosted)) if reprice_quarantine else None
        if json_out:
            out = res.to_dict()
            if rep is not None:
                out["reprice"] = rep.to_dict()
            print_json(out)
            return
        _render_ingest(res, db)
        if rep is not None:
            _render_reprice(rep, db)
        from billshape.cli._common import render_warnings

        render_warnings(res)

    @group.command("reprice", help="Re-price quarantined rows that now have a price (atomic; rows read = priced + quarantined).")
    def reprice(
        db: DbOpt = "usage.duckdb",
        prices: Annotated[Optional[str], typer.Option("--prices", help="User price table CSV (wins over genai-prices).")] = None,
        self_hosted: SelfHostedOpt = None,
        engine: EngineOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import RepriceRequest
        from billshape.cli._common import print_json

        res = _run(RepriceRequest(db=db, engine=engine, prices=prices, self_hosted=self_hosted))
        if json_out:
            print_json(res.to_dict())
            return
        _render_reprice(res, db)

    @group.command("report", help="Spend attributed by customer, feature, project, user, model, provider, day or month.")
    def report(
        db: DbOpt = "usage.duckdb",
        by: Annotated[Optional[Literal["customer", "feature", "project", "user", "model", "provider", "day", "month"]], typer.Option("--by", case_sensitive=False, help="Group by (default customer).", show_default=False)] = None,
        engine: EngineOpt = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import ReportRequest
        from billshape.cli._common import catalog_options, print_json

        catalog_options(snapshot, max_age_days)
        res = _run(ReportRequest(db=db, by=by, engine=engine))
        if json_out:
            print_json(res.to_dict())
            return
        from rich.table import Table

        from billshape.cli._common import console, fmt

        t = Table(title=f"Spend by {res.by} (total {fmt(res.total_usd, 'USD')}; {res.rows_quarantined} rows quarantined)", title_justify="left")
        for col in (res.by, "requests", "input tokens", "output tokens", "USD"):
            t.add_column(col, justify="left" if col == res.by else "right")
        for r in res.rows:
            t.add_row(str(r["key"]), f"{r['requests']:,}", f"{r['input_tokens']:,}", f"{r['output_tokens']:,}", f"${r['usd']:,.4f}")
        console().print(t)
        for hint in res.hints:
            console().print(f"[yellow]hint:[/] {hint}", highlight=False)
        from billshape.cli._common import render_warnings

        render_warnings(res)

    @group.command("economics", help="Measured unit economics: cost per request, tokens per request, cost per user.")
    def economics(
        db: DbOpt = "usage.duckdb",
        engine: EngineOpt = None,
        scenario_out: Annotated[Optional[str], typer.Option("--scenario-out", help="Write the measured inputs as a scenario YAML fragment (product.*, serving.routes).")] = None,
        merge_into: Annotated[Optional[str], typer.Option("--merge-into", help="With --scenario-out: write this scenario with the fragment merged in (validated) instead.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import EconomicsRequest, ScenarioFragmentRequest
        from billshape.cli._common import print_json, render
        from billshape.errors import BillshapeInputError

        if merge_into and not scenario_out:
            raise BillshapeInputError("--merge-into", merge_into, "only with --scenario-out FILE.yaml")
        res = _run(EconomicsRequest(db=db, engine=engine))
        frag = _run(ScenarioFragmentRequest(db=db, economics=res, merge_into=merge_into)) if scenario_out else None
        if frag is not None:
            _write(scenario_out, frag.text)
        dropped = frag.dropped_route_costs if frag is not None else []
        if json_out:
            out = res.to_dict()
            if frag is not None:
                out["scenario_out"] = scenario_out
                out["scenario_fragment"] = frag.fragment
            if merge_into:
                out["dropped_route_costs"] = dropped
            print_json(out)
            return
        render(res, "Measured unit economics", [
            ("requests", res.requests, ""), ("total", res.total_usd, "USD"), ("cost per request", res.usd_per_request, "USD/request"),
            ("input tokens per request", res.input_tokens_per_request, ""), ("output tokens per request", res.output_tokens_per_request, ""),
            ("cache hit rate", res.cache_hit_rate, ""), ("blended $ per million tokens", res.usd_per_million_tokens, "USD"),
            (f"users (distinct {res.users_from})", res.users, ""), ("cost per user per month", res.usd_per_user_per_month, "USD/user-month"),
            ("period", res.period_days, "days"),
        ])
        if scenario_out:
            from billshape.cli._common import console

            what = f"scenario {merge_into} with the measured inputs merged in" if merge_into else "scenario fragment"
            console().print(f"wrote {what} to {scenario_out}")
            if dropped:
                from billshape.usage import dropped_costs_text

                console().print("note: " + dropped_costs_text(dropped))

    @group.command("whatif", help="Re-price measured usage: route a share of a model to another, change the cache hit rate.")
    def whatif(
        db: DbOpt = "usage.duckdb",
        route: Annotated[Optional[list[str]], typer.Option("--route", help="'FROM:SHARE->TO', e.g. 'gpt-4o:0.4->gpt-4o-mini' (repeatable).")] = None,
        cache_hit_rate: Annotated[Optional[float], typer.Option("--cache-hit-rate", help="Cache-read share of input tokens, in [0, 1].")] = None,
        prices: Annotated[Optional[str], typer.Option("--prices", help="User price table CSV for TO models.")] = None,
        engine: EngineOpt = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import WhatIfRequest
        from billshape.cli._common import catalog_options, print_json, render

        catalog_options(snapshot, max_age_days)

        res = _run(WhatIfRequest(db=db, routes=route or [], cache_hit_rate=cache_hit_rate, engine=engine, prices=prices))
        if json_out:
            print_json(res.to_dict())
            return
        render(res, "What if", [("measured", _usd(res.baseline_usd), ""), ("what-if", _usd(res.whatif_usd), ""),
                                ("change (USD)", _usd(res.delta_usd, signed=True), ""), ("change (%)", f"{res.delta_pct:+,.2f} %", "")])

    @group.command("export", help="Export the ledger as a FOCUS 1.3 (or 1.2) dataset (.csv or .parquet).")
    def export(
        db: DbOpt = "usage.duckdb",
        fmt: Annotated[Literal["focus"], typer.Option("--format", case_sensitive=False, help="FinOps FOCUS.")] = "focus",
        out: Annotated[Optional[str], typer.Option("-o", "--output", help="Output file (.csv or .parquet).")] = None,
        focus_version: Annotated[Literal["1.3", "1.2"], typer.Option("--focus-version", help="FOCUS version (1.2: as billshape wrote it before 1.3).")] = "1.3",
        contract: Annotated[Optional[str], typer.Option("--contract", help="Contract table (CSV/YAML: discounts, commitments; FOCUS 1.3 only).")] = None,
        engine: EngineOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import ExportRequest
        from billshape.cli._common import console, print_json

        res = _run(ExportRequest(db=db, output=out or None, format=fmt, engine=engine, focus_version=focus_version,
                                 contract=contract))
        if json_out:
            print_json(res)
            return
        console().print(f"wrote {res['rows']} FOCUS {res['focus_version']} rows to {out} (BilledCost total ${res['billed_cost_usd']:,.6f})")

    __import__("billshape.cli._usage_reconcile", fromlist=["register"]).register(group)  # usage reconcile
    __import__("billshape.cli._usage_metrics", fromlist=["register"]).register(group)  # usage measured, usage metrics
    __import__("billshape.cli._usage_watch", fromlist=["register"]).register(group)  # usage forecast|check|anomalies


#: what the usage verbs call two fields where the label table's flags do not fit: the positional FILES argument
#: (``files[i]``) and the short ``-o`` of export (``output``)
_SHELL_WORDS = {"files": "FILES", "output": "-o"}


def _run(request):
    """Run a usage request (:func:`billshape.chains.run`); an error on ``files[i]`` or ``output`` names FILES / -o."""
    from billshape.chains import run
    from billshape.errors import BillshapeInputError

    try:
        return run(request)
    except BillshapeInputError as exc:
        word = _SHELL_WORDS.get(exc.field.split("[")[0])
        if word is None:
            raise
        raise BillshapeInputError(word, exc.value, exc.allowed, exc.hint) from None


def _usd(x: float, signed: bool = False) -> str:
    """Dollars as people write them: ``$1,234.50``, ``-$0.80`` (``+$0.80`` with ``signed``); sub-cent amounts keep
    their significant digits (``$0.000042``)."""
    from billshape.cli._common import fmt

    text = fmt(abs(x), "USD")
    if 0 < abs(x) < 0.005:
        text = f"${abs(x):.2g}" if abs(x) < 1e-6 else f"${abs(x):.6f}".rstrip("0")
    sign = "-" if x < 0 else "+" if signed and x > 0 else ""
    return sign + text


def _write(path: str, text: str) -> None:
    """Write the scenario (fragment) the user asked for."""
    from billshape.errors import BillshapeInputError

    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise BillshapeInputError("--scenario-out", path, "a writable file path", type(exc).__name__) from None


def _render_reprice(res, db: str) -> None:
    from rich.table import Table

    from billshape.cli._common import console, fmt

    out = console()
    t = Table(title=f"Re-priced quarantined rows in {db}", show_header=False, title_justify="left")
    t.add_column("quantity", style="bold")
    t.add_column("value", justify="right")
    for label, value in (("rows considered (quarantined for want of a price)", res.rows_considered), ("rows re-priced", res.rows_repriced),
                         ("rows still quarantined", res.rows_still_quarantined), ("re-priced total", f"${res.repriced_usd:,.6f}"),
                         ("database: rows read", res.rows_read_total), ("database: rows priced", res.rows_priced_total),
                         ("database: rows quarantined", res.rows_quarantined_total)):
        t.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    out.print(t)
    _print_reasons(out, res.quarantine_reasons, "still quarantined, by reason")


def _print_reasons(out, reasons: dict[str, int], title: str) -> None:
    """A table of quarantine reasons and their row counts (nothing when there are none)."""
    if not reasons:
        return
    from rich.table import Table

    q = Table(title=title, title_justify="left")
    q.add_column("reason")
    q.add_column("rows", justify="right")
    for reason, n in reasons.items():
        q.add_row(reason, f"{n:,}")
    out.print(q)


def _render_ingest(res, db: str) -> None:
    from rich.table import Table

    from billshape.cli._common import console, fmt

    out = console()
    t = Table(title=f"Ingest into {db}", show_header=False, title_justify="left")
    t.add_column("quantity", style="bold")
    t.add_column("value", justify="right")
    for label, value in (("rows read", res.rows_read), ("rows priced", res.rows_priced), ("rows quarantined", res.rows_quarantined),
                         ("total", fmt(res.total_usd, "USD")), ("files ingested", len(res.files_ingested)),
                         ("files skipped (already ingested)", len(res.files_skipped)),
                         ("rows already present (quarantined as duplicates)", res.rows_already_present),
                         ("  of which re-keyed (the same rows under another key)", res.rows_rekeyed)):
        t.add_row(label, f"{value:,}" if isinstance(value, int) else str(value))
    out.print(t)
    _print_reasons(out, res.quarantine_reasons, "quarantined rows by reason")
