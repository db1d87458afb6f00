"""``billshape usage forecast|check|anomalies``: watch the bill (spend forecast and backtest, budget and margin
rules that exit 1 on a breach, anomalous days or hours)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from billshape.cli._common import Engine, JsonOpt

DbOpt = Annotated[str, typer.Option("--db", help="Usage database: a DuckDB file (default engine) or a directory (--engine spark).")]
EngineOpt = Annotated[Optional[Engine], typer.Option("--engine", case_sensitive=False, help="duckdb (default) or spark.", show_default=False)]
Group = Literal["customer", "feature", "project", "user", "model", "provider"]


def register(group: typer.Typer) -> None:
    @group.command("forecast", help="Month-end (or --horizon-days N) spend with P10/P50/P90 per --by group (ETS with a "
                                    "weekly season); --backtest replays past months.")
    def forecast(
        db: DbOpt = "usage.duckdb",
        by: Annotated[Optional[Group], typer.Option("--by", case_sensitive=False, help="Forecast per group (default: the total only).", show_default=False)] = None,
        horizon_days: Annotated[Optional[int], typer.Option("--horizon-days", help="Forecast the N days after the ledger's last day (default: to the end of its month).", show_default=False)] = None,
        backtest: Annotated[bool, typer.Option("--backtest", help="Replay each complete past month: the forecast's error and the share of months inside P10-P90.")] = False,
        png: Annotated[Optional[str], typer.Option("--png", help="Write the chart (actual vs forecast band) to this PNG file.")] = None,
        scenario_out: Annotated[Optional[str], typer.Option("--scenario-out", help="Write the forecast growth as a scenario YAML fragment (product.growth_monthly).")] = None,
        samples: Annotated[int, typer.Option("--samples", help="Simulated paths per group, in [100, 100000].")] = 2000,
        seed: Annotated[int, typer.Option("--seed", help="Random seed of the simulated paths.")] = 0,
        engine: EngineOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import ForecastRequest, run
        from billshape.cli._common import print_json
        from billshape.errors import BillshapeInputError

        if backtest and scenario_out:
            raise BillshapeInputError("--scenario-out", scenario_out, "not with --backtest")
        res = run(ForecastRequest(db=db, by=by, horizon_days=horizon_days, engine=engine, samples=samples, seed=seed,
                                  backtest=backtest))
        res.to_dict()  # a non-finite figure fails here, before anything is written
        frag = None
        if scenario_out:
            from billshape.cli.cmd_usage import _write
            from billshape.usage import forecast as F

            frag = F.scenario_fragment(res)
            _write(scenario_out, F.fragment_yaml(frag, res, db))
        if png:
            _png(res, png)
        if json_out:
            out = res.to_dict()
            if frag is not None:
                out["scenario_out"] = scenario_out
                out["scenario_fragment"] = frag
            if png:
                out["png"] = png
            print_json(out)
            return
        _render_backtest(res) if backtest else _render_forecast(res)
        from billshape.cli._common import console

        if scenario_out:
            console().print(f"wrote the forecast growth ({res.growth_monthly:+.2%} a month) as a scenario fragment to {scenario_out}")
        if png:
            console().print(f"chart: {png}")

    @group.command("check", help="Budget and unit-economics rules (a YAML file or flags); exits 1 on a breach.")
    def check(
        db: DbOpt = "usage.duckdb",
        rules: Annotated[Optional[str], typer.Option("--rules", help="YAML rules: budget_usd, period, by, max_cost_per_request, min_margin, revenue, price_per_user_month_usd.")] = None,
        budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Budget per group and period [USD] (> 0); 80 / 90 % warn, 100 % is a breach.", show_default=False)] = None,
        period: Annotated[Optional[Literal["day", "week", "month"]], typer.Option("--period", case_sensitive=False, help="The budget's period: the one holding the ledger's last day (default month).", show_default=False)] = None,
        by: Annotated[Optional[Group], typer.Option("--by", case_sensitive=False, help="Apply the rules per group (default: the total).", show_default=False)] = None,
        max_cost_per_request: Annotated[Optional[float], typer.Option("--max-cost-per-request", help="Largest cost per request in the period [USD] (> 0).", show_default=False)] = None,
        min_margin: Annotated[Optional[float], typer.Option("--min-margin", help="Smallest margin 1 - cost / revenue, in [-1, 1) (with --revenue or --scenario).", show_default=False)] = None,
        revenue: Annotated[Optional[str], typer.Option("--revenue", help="Revenue table CSV: customer, revenue_usd (USD in the period).")] = None,
        scenario: Annotated[Optional[str], typer.Option("--scenario", help="Scenario YAML: its product.price_per_user_month_usd x each customer's users (most in a day, at least 1) is the revenue.")] = None,
        engine: EngineOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import CheckRequest, run
        from billshape.cli._common import print_json

        res = run(CheckRequest(db=db, rules=rules, budget_usd=budget_usd, period=period, by=by,
                               max_cost_per_request=max_cost_per_request, min_margin=min_margin, revenue=revenue,
                               scenario=scenario, engine=engine))
        if json_out:
            print_json(res.to_dict())
        else:
            _render_check(res)
        if not res.ok:
            raise typer.Exit(1)

    @group.command("anomalies", help="Days (or hours) whose cost or tokens per request for a customer, feature or model "
                                     "leave their usual range (rolling median / MAD), with the rows that caused them.")
    def anomalies(
        db: DbOpt = "usage.duckdb",
        by: Annotated[Group, typer.Option("--by", case_sensitive=False, help="Group: customer, feature, model, ...")] = "customer",
        grain: Annotated[Literal["day", "hour"], typer.Option("--grain", case_sensitive=False, help="Score days or hours.")] = "day",
        threshold: Annotated[float, typer.Option("--threshold", help="Flag |robust z| above this, in [1, 100].")] = 6.0,
        window: Annotated[int, typer.Option("--window", help="Periods of history in the rolling window, in [7, 365].")] = 28,
        rows: Annotated[int, typer.Option("--rows", help="Ledger rows shown per anomaly (the costliest).")] = 5,
        engine: EngineOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import AnomaliesRequest, run
        from billshape.cli._common import print_json
        from billshape.errors import BillshapeInputError

        if not 0 <= rows <= 100:
            raise BillshapeInputError("--rows", rows, "an integer in [0, 100]")
        res = run(AnomaliesRequest(db=db, by=by, grain=grain, threshold=threshold, window=window, rows=rows, engine=engine))
        if json_out:
            print_json(res.to_dict())
            return
        _render_anomalies(res)


def _png(res, path: str) -> None:
    from billshape._extras import require
    from billshape.errors import BillshapeInputError
    from billshape.report.charts import backtest_chart, forecast_band

    vlc = require("report", "vl_convert", "billshape usage forecast --png")
    chart = backtest_chart(res) if hasattr(res, "trials") else forecast_band(res)
    try:
        with open(path, "wb") as f:
            f.write(vlc.vegalite_to_png(chart.to_dict(), scale=2.0))
    except OSError as exc:
        raise BillshapeInputError("--png", path, "a writable file path", type(exc).__name__) from None


def _usd(x) -> str:
    return "" if x is None else f"${x:,.2f}" if abs(x) >= 100 else f"${x:,.4f}" if abs(x) >= 1 else f"${x:,.6f}"


def _render_forecast(res) -> None:
    from rich.table import Table

    from billshape.cli._common import console, render_assumptions

    t = Table(title=f"Spend forecast {res.period_start} to {res.period_end} (as of {res.as_of}, {res.days_to_come} days "
                    f"to come; growth {res.growth_monthly:+.2%} a month)", title_justify="left")
    for col in (res.by or "group", "to date", "P10", "P50", "P90", "model"):
        t.add_column(col, justify="left" if col in (res.by or "group", "model") else "right")
    for g in [*res.groups, res.total] if res.by else [res.total]:
        t.add_row(g["key"], _usd(g["actual_to_date_usd"]), _usd(g["p10"]), _usd(g["p50"]), _usd(g["p90"]), g["method"])
    out = console()
    out.print(t)
    render_assumptions(res.assumptions, out)


def _render_backtest(res) -> None:
    from rich.table import Table

    from billshape.cli._common import console

    t = Table(title=f"Backtest: {len(res.trials)} month forecasts, mean abs error {res.mape:.2f} % of P50, "
                    f"{res.coverage:.0%} inside P10-P90", title_justify="left")
    for col in ("month", "group", "actual", "P10", "P50", "P90", "inside", "error %"):
        t.add_column(col, justify="left" if col in ("month", "group") else "right")
    for r in res.trials:
        t.add_row(r["month"], r["key"], _usd(r["actual_usd"]), _usd(r["p10"]), _usd(r["p50"]), _usd(r["p90"]),
                  "yes" if r["inside"] else "no", "" if r["abs_pct_error"] is None else f"{r['abs_pct_error']:.2f}")
    console().print(t)


def _render_check(res) -> None:
    from billshape.cli._common import console

    out = console()
    out.print(f"Checked {res.period} {res.period_start} to {res.period_end} (as of {res.as_of}): "
              f"{len(res.breaches)} breach(es), {len(res.warnings)} warning(s)", highlight=False)
    for b in res.breaches:
        amount = f"{b['amount']:.2%}" if b["rule"] == "min_margin" else _usd(b["amount"])
        limit = f"{b['limit']:.2%}" if b["rule"] == "min_margin" else _usd(b["limit"])
        out.print(f"[red]BREACH[/] {b['rule']} {b['key']}: {amount} against {limit} since {b['since']}", highlight=False)
    for w in res.warnings:
        proj = f"; projected to reach the budget on {w['projected_breach_date']}" if w["projected_breach_date"] else ""
        out.print(f"[yellow]warning[/] {w['key']}: {_usd(w['amount'])} is {w['threshold']:.0%}+ of {_usd(w['limit'])} "
                  f"since {w['since']}{proj}", highlight=False)
    for s in res.statuses:
        if s["rule"] == "budget_usd" and not s["breach"] and not s["levels"] and s["projected_breach_date"]:
            out.print(f"projected: {s['key']} reaches {_usd(s['budget_usd'])} on {s['projected_breach_date']}", highlight=False)


def _render_anomalies(res) -> None:
    from rich.table import Table

    from billshape.cli._common import console

    t = Table(title=f"{len(res.anomalies)} anomalous {res.grain}s by {res.by} over {res.group_periods:,} {res.by}-"
                    f"{res.grain}s (|robust z| > {res.threshold:g}, {res.window}-{res.grain} window)", title_justify="left")
    for col in (res.grain, res.by, "metric", "value", "usual", "z", "costliest rows"):
        t.add_column(col, justify="right" if col in ("value", "usual", "z") else "left")
    for a in res.anomalies:
        rows = "; ".join(f"{r['source_file']}:{r['row_index']} {r['model']} ${r['usd']:,.4f}" for r in a["rows"][:3])
        fmt = _usd if a["metric"] != "tokens_per_request" else (lambda x: f"{x:,.0f}")
        t.add_row(a["period"], a["key"], a["metric"], fmt(a["value"]), fmt(a["median"]), f"{a['z']:+.1f}", rows)
    console().print(t)
