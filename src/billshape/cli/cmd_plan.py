"""``billshape plan``: a scenario file -> monthly P&L with P10/P50/P90, tornado, HTML report."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, SnapshotOpt
from billshape.present.format import summary_rows  # noqa: F401  (moved to present; the app shares it)

HELP = """Evaluate a product plan (scenario YAML): monthly P&L with Monte Carlo uncertainty, both views of unit
economics, payback, NPV, the training vs inference split, a sensitivity tornado, and an offline HTML report.

FILE is a scenario YAML file or, when no such file exists here, the name of a shipped example (with or without
.yaml): seed000_image_startup, api_wrapper_price_shock, high_volume_self_host.

Example (bria.ai's image model, 280 A100 for 14 days): billshape plan seed000_image_startup --report plan.html
"""


def run_plan(path: str, samples: int, seed: int, show_progress: bool, as_of: str | None = None):
    """Load and evaluate a scenario, with a Rich progress bar on stderr for long runs on a terminal."""
    from billshape.plan import load

    if as_of is not None:
        from billshape.errors import BillshapeInputError
        from billshape.plan.schema import _as_of

        try:
            _as_of(as_of)
        except ValueError:
            raise BillshapeInputError("--as-of", as_of, "an ISO date YYYY-MM-DD or today") from None
    plan = load(path, as_of=as_of)
    cells = samples * plan.scenario.horizon_months if plan.uncertain() else 0
    if not show_progress or cells < 20_000_000:
        return plan.evaluate(samples=samples, seed=seed)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    err = Console(stderr=True)
    if not err.is_terminal:
        return plan.evaluate(samples=samples, seed=seed)
    with Progress(TextColumn("[bold]plan[/] {task.description}"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(plan.scenario.name, total=samples)
        return plan.evaluate(samples=samples, seed=seed, progress=lambda done, total: bar.update(task, completed=done))


def render_summary(res, out, report: str | None = None, pngs: list | None = None, assumptions: bool = True) -> None:
    """One screen: headline P10/P50/P90 table, both views, tornado top 3, build vs buy, files written."""
    from rich.table import Table

    from billshape.cli._common import render_assumptions
    from billshape.present.format import plan_value as _fmt
    from billshape.present.format import samples_text

    table = Table(title=res.name, title_justify="left", title_style="bold",
                  caption=f"{samples_text(res.samples)} (seed {res.seed}), {res.horizon_months} months", caption_justify="left")
    table.add_column("outcome", style="bold")
    for p in ("P10", "P50", "P90"):
        table.add_column(p, justify="right")
    for row in summary_rows(res):
        table.add_row(*row)
    out.print(table)
    if getattr(res, "as_of", None):
        out.print(f"priced at {res.as_of} (the plan's pricing date: as_of)", highlight=False)
    out.print("[dim]contribution margin = marginal view: do I make money on one more user? "
              "fully loaded = do the users pay for the whole business, training included?[/]")
    from billshape.present.format import system_share_text

    system = system_share_text(res.summary.get("system_share_of_lifetime_cost"))
    if system:
        out.print(system)
    never = res.probability_never_pays_back
    if res.samples > 1:
        from billshape.present.format import share_text

        out.print(f"never pays back within {res.horizon_months} months in {share_text(never)} of samples")
    if res.sensitivity:
        top = ", ".join(f"{r['input']} (NPV {_fmt('npv_usd', r['at_input_p10'])} .. {_fmt('npv_usd', r['at_input_p90'])})"
                        for r in res.sensitivity[:3])
        out.print(f"moves the NPV most (P10 -> P90 of the input): {top}")
    for a in res.assumptions:
        if a.value == "billed per served token, not per provisioned hour":
            out.print(f"{a.name}: billed per served token, not per provisioned hour (utilization given)")
    if res.monthly and "self_hosted_replicas" in res.monthly[0]:
        first, last = res.monthly[0], res.monthly[-1]
        out.print(f"self-hosted fleet (P50): {first['self_hosted_replicas']:,.0f} replicas, "
                  f"{first['self_hosted_gpu_hours']:,.0f} GPU-hours, {_fmt('u_utilization', first['self_hosted_utilization'])} "
                  f"utilization in month 1; {last['self_hosted_replicas']:,.0f} replicas, "
                  f"{_fmt('u_utilization', last['self_hosted_utilization'])} in "
                  f"month {last['month']}")
    if res.build_vs_buy:
        out.print(f"build vs buy: {res.build_vs_buy['explanation']}")
    if report:
        out.print(f"report: {report}")
    if pngs:
        out.print(f"charts: {', '.join(str(p) for p in pngs)}")
    if assumptions:
        render_assumptions(res.assumptions, out, fields=False)
    from billshape.cli._common import render_warnings

    render_warnings(res, out)


def register(app: typer.Typer) -> None:
    @app.command("plan", help=HELP)
    def plan(
        file: Annotated[str, typer.Argument(metavar="FILE.yaml", help="Scenario file (see docs/plan.md), or a shipped example's name.")],
        samples: Annotated[int, typer.Option("--samples", help="Monte Carlo samples (1 when nothing is uncertain).")] = 20_000,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        report: Annotated[Optional[str], typer.Option("--report", help="Write a self-contained HTML report here.")] = None,
        png: Annotated[Optional[str], typer.Option("--png", help="Write each chart as a PNG into this directory.")] = None,
        as_of: Annotated[Optional[str], typer.Option("--as-of", help="Price the plan at this date (YYYY-MM-DD or today; replaces the scenario's as_of:).")] = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.cli._common import console, print_json

        res = run_plan(file, samples, seed, show_progress=True, as_of=as_of)
        written = None
        pngs = None
        if report:
            from billshape.report import write_html

            written = str(write_html(res, report))
        if png:
            from billshape.report import write_pngs

            pngs = [str(p) for p in write_pngs(res, png)]
        if json_out:
            data = res.to_dict()
            if written:
                data["report"] = written
            if pngs:
                data["png"] = pngs
            print_json(data, fields=False)  # a plan's provenance names its file and YAML paths, never a flag
            return
        render_summary(res, console(), written, pngs)
