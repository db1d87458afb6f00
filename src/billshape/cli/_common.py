"""Shared rendering and options for the CLI verbs (no arithmetic here)."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal, Optional

import typer

from billshape.present.format import fmt  # noqa: F401  (re-exported: the verbs format through it)

# Options with a fixed set of values are Typer choices (help lists them, completion offers them, case does not
# matter); a bad value is reported in billshape's one-line format by cli.run(). These mirror the library's
# lists (catalog.TIERS, catalog.PRECISIONS, serving.WEIGHT_PRECISIONS, ...): tests/test_cli.py checks they agree.
Tier = Literal["on-demand", "reserved-1y", "reserved-3y", "spot"]
Precision = Literal["bf16", "fp16", "fp8", "fp4", "int8", "int4"]  # catalog.PRECISIONS
TrainPrecision = Literal["bf16", "fp16", "fp8", "fp4"]  # dense peaks an MFU can refer to
WeightPrecision = Literal["bf16", "fp16", "fp8", "fp4", "int4"]  # serving.WEIGHT_PRECISIONS
KvPrecision = Literal["bf16", "fp16", "fp8", "fp4", "int4", "int8"]  # serving.KV_PRECISIONS
Engine = Literal["duckdb", "spark"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
# The catalog options every verb that reads catalog rows takes (apply them with catalog_options first thing).
SnapshotOpt = Annotated[Optional[str], typer.Option(
    "--snapshot", help="Catalog prices from this refreshed snapshot (an id from `billshape catalog snapshots`, "
                       "latest, or shipped; default: $BILLSHAPE_SNAPSHOT, else shipped).")]
MaxAgeOpt = Annotated[Optional[float], typer.Option(
    "--max-age-days", help="Warn about each used price older than N days on the pricing date "
                           "(default: constants.csv stale_after_days_price, 90).")]


def render_warnings(result, out=None) -> None:
    """Each staleness warning of a result, one line each, after its tables (the JSON lists them in
    ``warnings``); and the snapshot its prices came from."""
    out = out or console()
    for w in getattr(result, "warnings", None) or []:
        out.print(f"[yellow]warning:[/] {w}", highlight=False)
    if getattr(result, "snapshot", None):
        out.print(f"prices from catalog snapshot {result.snapshot}", highlight=False)


from billshape.cli._fast import print_json  # noqa: E402,F401  (one JSON writer, shared with train's fast path)
from billshape.cli._fast import catalog_options  # noqa: E402,F401  (--snapshot / --max-age-days, shared too)


def console():
    from rich.console import Console

    out = Console()
    if not out.is_terminal:  # pipes and files: wide enough for the assumptions table
        out = Console(width=max(out.width, 140))
    return out


def render(result, title: str, rows: list[tuple[str, Any, str]], notes: list[str] | None = None) -> None:
    """Print a headline table and the assumptions table of a result."""
    from rich.table import Table

    result.to_dict()  # raises NonFiniteResult (one-line error, exit 2) before anything non-finite is printed
    for label, value, _unit in rows:
        if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
            from billshape.results import NonFiniteResult

            raise NonFiniteResult(label, value)

    out = console()
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("quantity", style="bold")
    table.add_column("value", justify="right")
    for label, value, unit in rows:
        shown = fmt(value, unit)
        if unit and unit != "USD" and value is not None:
            shown += f" {unit}"
        table.add_row(label, shown)
    out.print(table)
    for note in notes or []:
        out.print(note)
    render_assumptions(result.assumptions, out)
    render_warnings(result, out)


def render_assumptions(assumptions, out=None, fields: bool = True) -> None:
    """The assumptions table; ``fields=False`` for a plan (its ``user input (FILE)`` is not a field)."""
    from rich.table import Table

    from billshape.cli._flags import cli_source

    out = out or console()
    table = Table(title="assumptions (full sources: --json)", title_justify="left", header_style="dim", box=None)
    table.add_column("name", no_wrap=True, width=30, overflow="ellipsis")
    table.add_column("value", no_wrap=True, width=24, overflow="ellipsis", justify="right")
    table.add_column("as_of", no_wrap=True, width=10)
    table.add_column("source", no_wrap=True, overflow="ellipsis", max_width=70)
    for a in assumptions:
        value = fmt(a.value) + (f" {a.unit}" if a.unit else "")
        source = cli_source(a.source, fields)
        source = source if len(source) <= 70 else source[:69] + "…"
        table.add_row(a.name, value, a.as_of or "", source)
    out.print(table)
