"""``billshape usage reconcile``: the ledger against a provider's invoice (cost export), residual by day x model x tier."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import Engine, JsonOpt, MaxAgeOpt, SnapshotOpt


def register(group: typer.Typer) -> None:
    @group.command("reconcile", help="Reconcile the ledger against an invoice: OpenAI costs JSON/CSV, Anthropic cost report "
                                     "JSON or a FOCUS file; residual by day x model x tier with its likely cause.")
    def reconcile(
        invoice: Annotated[str, typer.Option("--invoice", help="The provider's cost export: OpenAI Costs API JSON or dashboard CSV, "
                                                               "Anthropic cost report JSON, or a FOCUS CSV/Parquet file.")],
        db: Annotated[str, typer.Option("--db", help="Usage database: a DuckDB file (default engine) or a directory (--engine spark).")] = "usage.duckdb",
        contract: Annotated[Optional[str], typer.Option("--contract", help="Contract table (CSV/YAML): compare at contracted cost.")] = None,
        engine: Annotated[Optional[Engine], typer.Option("--engine", case_sensitive=False, help="duckdb (default) or spark.", show_default=False)] = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options, print_json
        from billshape.staleness import attach
        from billshape.usage.reconcile import reconcile as run

        catalog_options(snapshot, max_age_days)
        res = attach(run(db, invoice, contract=contract, engine=engine))
        if json_out:
            print_json(res.to_dict())
            return
        _render(res)


def _money(x: float) -> str:
    """Dollars to the cent from $100 up, to the micro-dollar below (trailing zeros dropped, two decimals kept)."""
    sign = "-" if x < 0 else ""
    x = abs(x)
    if x >= 100:
        return f"{sign}${x:,.2f}"
    text = f"{x:.6f}".rstrip("0")
    return f"{sign}${text}" + "0" * max(0, 2 - len(text.split(".")[1]))


def _render(res) -> None:
    from rich.table import Table

    from billshape.cli._common import console, render_assumptions

    res.to_dict()  # a non-finite figure fails here, before anything is printed
    pct = "" if res.residual_pct is None else f", {res.residual_pct:+,.2f} %"
    t = Table(title=f"Reconcile {res.invoice} ({res.invoice_format}, {res.period_start} to {res.period_end}) against the "
                    f"ledger at {res.ledger_basis} cost: invoice {_money(res.total_invoice_usd)}, ledger "
                    f"{_money(res.total_ledger_usd)}, residual {_money(res.residual_usd)}{pct}", title_justify="left")
    for col in ("day", "provider", "model", "tier", "invoice", "ledger", "residual", "residual %", "likely cause"):
        t.add_column(col, justify="right" if col in ("invoice", "ledger", "residual", "residual %") else "left")
    for r in res.lines:
        t.add_row(r["day"], r["provider"], r["model"], r["service_tier"], _money(r["invoice_usd"]), _money(r["ledger_usd"]),
                  _money(r["residual_usd"]), "" if r["residual_pct"] is None else f"{r['residual_pct']:+,.2f} %",
                  r["likely_cause"])
    out = console()
    out.print(t)
    for r in res.lines:  # the quarantine's facts behind a residual
        if r.get("quarantined") and r["likely_cause"] != "matched":
            facts = "; ".join(f"{n:,} x {reason}" for reason, n in r["quarantined"].items())
            out.print(f"{r['day']} {r['model']} {r['service_tier']}: rows quarantined at ingest: {facts}", highlight=False)
    for provider, d in res.discounts_detected.items():
        out.print(f"{provider}: a uniform {100 * d:.2f} % gap below list price on every line: a negotiated discount? "
                  "(add it to a --contract table)", highlight=False)
    if res.invoice_other_usd:
        out.print(f"invoice charges other than usage (purchases, tax, credits): {_money(res.invoice_other_usd)}", highlight=False)
    if res.ledger_outside_invoice_usd:
        out.print(f"ledger cost outside the invoice's days: {_money(res.ledger_outside_invoice_usd)}", highlight=False)
    render_assumptions(res.assumptions, out)
    from billshape.cli._common import render_warnings

    render_warnings(res, out)
