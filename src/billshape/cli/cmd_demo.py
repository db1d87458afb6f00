"""``billshape demo``: the seeds' worked examples, each with its assumptions."""

from __future__ import annotations

import typer

from billshape.cli._common import JsonOpt

HELP = "Walk through the seeds' worked examples (training bill, payback, DeepSeek-V3, Epoch AI's rule, $/token, build vs buy)."


def examples() -> list[dict]:
    """The worked examples as (title, command, result) records."""
    from billshape import training
    from billshape.business import payback
    from billshape.decide import break_even
    from billshape.estimates import serving_cost, training_bill
    from billshape.results import Assumption

    out = []
    bill = training_bill(gpu="a100", gpus=280, days=14, price=2.5)
    out.append({"title": "Seed 000: an image model on 280 A100 for two weeks at $2.5/GPU-hour",
                "command": "billshape train --gpu a100 --gpus 280 --days 14 --price 2.5", "result": bill})
    pb = payback(bill.total_usd, 10_000, 10.0)
    out.append({"title": "Seed 000: 10,000 users at $10/month pay the training bill back",
                "command": "billshape payback --fixed 235200 --users 10000 --revenue-per-user-month 10", "result": pb})
    ds = training_bill(gpu="h800", gpu_hours=2_788_000, price=2.0)
    out.append({"title": "Seed 003: DeepSeek-V3's final run, 2.788M H800-hours at $2",
                "command": "billshape train --gpu h800 --gpu-hours 2788000 --price 2", "result": ds})
    mfu = training_bill(gpu="h800", gpu_hours=2_664_000, params=671e9, active_params=37e9, tokens=14.8e12, price=2.0)
    out.append({"title": "DeepSeek-V3 pre-training: the MFU that 6 x 37B x 14.8T FLOPs in 2.664M hours imply",
                "command": "billshape train --gpu h800 --gpu-hours 2664000 --params 671e9 --active-params 37e9 "
                           "--tokens 14.8e12 --price 2", "result": mfu})
    rate = float(training.amortized_usd_per_chip_hour(40_000.0))
    rate_ic = float(training.amortized_usd_per_chip_hour(40_000.0, interconnect_fraction=0.19))
    from billshape.results import Result

    class EpochRule(Result):
        usd_per_chip_hour: float
        usd_per_chip_hour_with_interconnect: float

    from billshape import catalog

    c = catalog.constants()
    out.append({"title": "Epoch AI's amortisation rule: $40,000 of hardware per chip",
                "command": "python -c 'import billshape.training as t; print(t.amortized_usd_per_chip_hour(40000))'",
                "result": EpochRule(usd_per_chip_hour=rate, usd_per_chip_hour_with_interconnect=rate_ic, assumptions=[
                    Assumption(name="hardware value", value=40_000.0, unit="USD", source="worked example", as_of=None),
                    c["epoch_value_decay_oom_per_year"].as_assumption(), c["hours_per_year"].as_assumption(),
                    c["epoch_interconnect_fraction"].as_assumption()])})
    sv = serving_cost(tokens_per_second=14_800, gpus=8, price=2.0, utilization=1.0)
    out.append({"title": "Seed 003: a DeepSeek decode node (8 GPUs, 14,800 tokens/s) at $2/GPU-hour",
                "command": "billshape serve --tokens-per-second 14800 --gpus 8 --price 2 --utilization 1", "result": sv})
    be = break_even(1.10, sv.usd_per_million_tokens, 100_000)
    out.append({"title": "Seed 003: build vs buy: that node's cost against a $1.10/M API price with $100k fixed",
                "command": f"billshape breakeven --api-price 1.10 --own-cost {sv.usd_per_million_tokens:.4f} --fixed 100000",
                "result": be})
    return out


def register(app: typer.Typer) -> None:
    @app.command("demo", help=HELP)
    def demo(json_out: JsonOpt = False) -> None:
        from billshape.cli._common import console, print_json, render_assumptions

        items = examples()
        if json_out:
            print_json({"examples": [{"title": e["title"], "command": e["command"], "result": e["result"].to_dict()} for e in items]})
            return
        from rich.panel import Panel
        from rich.table import Table

        out = console()
        for e in items:
            res = e["result"]
            table = Table(show_header=False, box=None)
            for k, v in res.scalars().items():
                if isinstance(v, str) and len(v) > 60:
                    continue
                from billshape.cli._common import fmt

                table.add_row(k, fmt(v, "USD" if k.endswith("_usd") else ""))
            out.print(Panel(table, title=e["title"], subtitle=e["command"], title_align="left", subtitle_align="left"))
            if hasattr(res, "explanation"):
                out.print(res.explanation)
            render_assumptions(res.assumptions, out)
            out.print()
