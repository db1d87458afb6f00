"""``billshape demo``: the main job on the three shipped example scenarios."""

from __future__ import annotations

from typing import Annotated

import typer

from billshape.cli._common import JsonOpt

HELP = """Run billshape's main job on the shipped example scenarios: bria.ai's image-model start-up (280 A100 x
2 weeks = $235,200, paid back by 10,000 users at $10 in 2.352 months), an API-wrapper SaaS facing a 3-5x API price
rise, and a high-volume product deciding whether to self-host (build vs buy). Prints a one-screen summary of each
and writes their HTML reports (default ./billshape-demo/)."""

EXAMPLES = ("seed000_image_startup", "api_wrapper_price_shock", "high_volume_self_host")


def register(app: typer.Typer) -> None:
    @app.command("demo", help=HELP)
    def demo(
        out: Annotated[str, typer.Option("--out", help="Directory for the HTML reports.")] = "billshape-demo",
        samples: Annotated[int, typer.Option("--samples", help="Monte Carlo samples per scenario.")] = 20_000,
        seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
        json_out: JsonOpt = False,
    ) -> None:
        from pathlib import Path

        from billshape.cli._common import console, print_json
        from billshape.cli.cmd_plan import render_summary, run_plan
        from billshape.errors import BillshapeInputError
        from billshape.estimates import training_bill
        from billshape.report import write_html
        from billshape.plan import examples_dir

        folder = Path(out)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BillshapeInputError("--out", out, "a writable directory", type(exc).__name__) from None
        results = []
        for name in EXAMPLES:
            path = examples_dir() / f"{name}.yaml"
            res = run_plan(str(path), samples, seed, show_progress=not json_out)
            report = write_html(res, folder / f"{name}.html")
            results.append((name, path, res, report))
        seed000 = results[0][2]
        bill = training_bill(gpu="a100", gpus=280, days=14, price=2.5)
        headline = {
            "training_bill_usd": bill.total_usd,
            "payback_month": seed000.summary["payback_month"]["p50"],
            "text": (f"Image start-up (bria.ai): 280 A100 x 14 days x $2.5/GPU-hour = ${bill.total_usd:,.0f}; 10,000 users x $10/month "
                     f"pay it back in {seed000.summary['payback_month']['p50']:.4g} months"),
        }
        if json_out:
            print_json({"out": str(folder), "seed000": headline, "examples": [
                {"name": name, "file": str(path), "report": str(report), "result": res.to_dict()}
                for name, path, res, report in results]})
            return
        con = console()
        con.print(f"[bold]{headline['text']}[/]")
        for name, path, res, report in results:
            con.rule(f"{path.name}")
            if res.description:
                con.print(f"[dim]{res.description}[/]")
            render_summary(res, con, str(report), assumptions=False)
        con.rule()
        con.print(f"HTML reports written to {folder.resolve()}/ (open them in a browser; they work offline). "
                  f"Full assumptions and sources: billshape plan FILE.yaml --json; the examples are in {examples_dir()}")
