"""``billshape market``: price paths and trend backtests on dated API prices."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, SnapshotOpt

HELP = "Price trends: project a price path, or backtest a trend fit on dated API or GPU rental prices."


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=HELP, no_args_is_help=True)

    @group.command("backtest", help="""Fit an exponential trend to dated prices before a cutoff and score its
forecast of the later ones (and a flat forecast, and the named API trends).

With --gpu NAME it fits the GPU's rental price (USD per GPU-hour) from the dated GPU price history
(data/gpu_price_history.csv, or --file) instead, at --tier (default on-demand), one --provider or all pooled, and
compares it with Epoch AI's hardware price-performance trend.

Examples: billshape market backtest --series openai-flagship; billshape market backtest --gpu h100
""")
    def backtest_cmd(
        file: Annotated[Optional[str], typer.Option("--file", help="CSV: date, usd_per_million_input/output[, model, series] (default: shipped table).")] = None,
        price_column: Annotated[Optional[str], typer.Option("--price-column", help="usd_per_million_input (default), usd_per_million_output or usd_per_million_mean.")] = None,
        series: Annotated[Optional[str], typer.Option("--series", help="Keep one series (e.g. openai-flagship).")] = None,
        model: Annotated[Optional[str], typer.Option("--model", help="Keep one model.")] = None,
        cutoff: Annotated[Optional[str], typer.Option("--cutoff", help="ISO date splitting fit (before) from test (on/after).")] = None,
        train_fraction: Annotated[float, typer.Option("--train-fraction", help="Share of rows (by date) to fit on, without --cutoff.")] = 0.5,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Fit this accelerator's rental price from the GPU price history.")] = None,
        provider: Annotated[Optional[str], typer.Option("--provider", help="With --gpu: one provider (default: all pooled).")] = None,
        tier: Annotated[Optional[str], typer.Option("--tier", help="With --gpu: price tier (default on-demand; spot, capacity-block, ...).")] = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import MarketBacktestRequest, run
        from billshape.cli._common import print_json, render

        res = run(MarketBacktestRequest(file=file, price_column=price_column, series=series, model=model,
                                        cutoff=cutoff, train_fraction=train_fraction, gpu=gpu, provider=provider,
                                        tier=tier))
        if json_out:
            print_json(res.to_dict())
            return
        if gpu is not None:
            render(res, f"GPU price trend backtest: {res.gpu} {res.tier}", [
                ("providers", ", ".join(res.providers), ""),
                ("rows (fit / test)", f"{res.train_rows} / {res.test_rows}", ""), ("cutoff", res.cutoff_date, ""),
                ("fitted factor per year", res.annual_factor_train, "x"),
                ("all-rows factor per year", res.annual_factor_all, "x"),
                ("median forecast error", res.median_factor_error, "x"),
                ("flat forecast error", res.flat_median_factor_error, "x"),
            ], notes=[res.explanation])
            return
        render(res, "Trend backtest", [
            ("rows (fit / test)", f"{res.train_rows} / {res.test_rows}", ""), ("cutoff", res.cutoff_date, ""),
            ("fitted factor per year", res.annual_factor_train, "x"), ("all-rows factor per year", res.annual_factor_all, "x"),
            ("median forecast error", res.median_factor_error, "x"), ("flat forecast error", res.flat_median_factor_error, "x"),
        ], notes=[res.explanation])

    @group.command("path", help="""Price in each month: start price x annual factor^((m-1)/12) x step changes.

Example: billshape market path --start-price 10 --months 24 --trend a16z-llmflation --step 13:3
""")
    def path_cmd(
        start_price: Annotated[Optional[float], typer.Option("--start-price", help="Price in month 1.")] = None,
        months: Annotated[int, typer.Option("--months", help="Horizon in months, 1 to 600.")] = 12,
        annual_factor: Annotated[Optional[float], typer.Option("--annual-factor", help="Multiplier per year (0.1 = 10x cheaper a year).")] = None,
        trend: Annotated[Optional[str], typer.Option("--trend", help="A named trend from price_trends.csv (instead of --annual-factor).")] = None,
        step: Annotated[Optional[list[str]], typer.Option("--step", help="MONTH:FACTOR step change (repeatable).")] = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import MarketPathRequest, run
        from billshape.cli._common import print_json, render_assumptions

        res = run(MarketPathRequest(start_price=start_price, months=months, annual_factor=annual_factor, trend=trend,
                                    steps=step))
        payload = res.to_dict()
        assumptions = res.assumptions
        if json_out:
            print_json(payload)
            return
        from rich.table import Table

        from billshape.cli._common import console, fmt

        out = console()
        table = Table(title="Price path", title_justify="left")
        table.add_column("month", justify="right")
        table.add_column("price", justify="right")
        for row_ in payload["prices"]:
            table.add_row(str(row_["month"]), fmt(row_["price"]))
        out.print(table)
        render_assumptions(assumptions, out)

    app.add_typer(group, name="market")
