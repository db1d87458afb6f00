"""``billshape usage measured`` (self-hosted economics from Prometheus scrapes) and ``billshape usage metrics`` (the
ledger served as Prometheus metrics)."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from billshape.cli._common import Engine, JsonOpt, Tier, WeightPrecision


def register(group: typer.Typer) -> None:
    @group.command("measured", help="Measured self-hosted economics from the serving stack's Prometheus metrics (vLLM, "
                                    "SGLang, DCGM): tokens/s delivered, busy share, $/M output tokens at the rent, and "
                                    "the serving model's figure beside it.")
    def measured(
        metrics: Annotated[list[str], typer.Option("--metrics", help="A saved /metrics scrape or a loopback URL "
                                                                   "(127.0.0.1, localhost, [::1]); repeat for two or more "
                                                                   "scrapes over the window, in the order taken.")],
        gpus: Annotated[Optional[float], typer.Option("--gpus", help="GPUs serving the engine (default: the GPUs on a DCGM scrape).", show_default=False)] = None,
        price: Annotated[Optional[float], typer.Option("--price", help="Rent in USD per GPU-hour.", show_default=False)] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Accelerator (for --provider pricing and --model).", show_default=False)] = None,
        provider: Annotated[Optional[str], typer.Option("--provider", help="Price the GPUs from the catalog at this provider.", show_default=False)] = None,
        tier: Annotated[Optional[Tier], typer.Option("--tier", case_sensitive=False, help="Catalog tier with --provider (default on-demand).", show_default=False)] = None,
        model: Annotated[Optional[str], typer.Option("--model", help="Architecture for the modelled figure (see `billshape serve --help`).", show_default=False)] = None,
        precision: Annotated[Optional[WeightPrecision], typer.Option("--precision", case_sensitive=False, help="Weight precision for the modelled figure (default bf16).", show_default=False)] = None,
        window_seconds: Annotated[Optional[float], typer.Option("--window-seconds", help="Seconds from the first to the last scrape (for samples without timestamps).", show_default=False)] = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import MeasuredRequest, run
        from billshape.cli._common import print_json

        res = run(MeasuredRequest(metrics=metrics, gpus=gpus, price=price, gpu=gpu, provider=provider, tier=tier,
                                  model=model, precision=precision, window_seconds=window_seconds))
        if json_out:
            print_json(res.to_dict())
            return
        _render_measured(res)

    @group.command("metrics", help="Serve the ledger's totals, budget usage and margin per group as Prometheus metrics "
                                   "on 127.0.0.1 (for a Grafana board; docs/grafana_billshape.json). Ctrl-C stops it.")
    def metrics_cmd(
        port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0: any free port).")] = 9464,
        db: Annotated[str, typer.Option("--db", help="Usage database: a DuckDB file (default engine) or a directory (--engine spark).")] = "usage.duckdb",
        by: Annotated[Optional[Literal["customer", "feature", "project", "user", "model", "provider"]], typer.Option("--by", case_sensitive=False, help="Group the metrics by this dimension (default customer).", show_default=False)] = None,
        period: Annotated[Literal["month", "day", "all"], typer.Option("--period", case_sensitive=False, help="Budget and margin period: the ledger's newest month or day, or all of it.")] = "month",
        budget_usd: Annotated[Optional[float], typer.Option("--budget-usd", help="Budget per group and period (USD): serves billshape_budget_used_ratio.", show_default=False)] = None,
        revenue: Annotated[Optional[str], typer.Option("--revenue", help="Revenue CSV (GROUP or group, revenue_usd per period): serves billshape_margin_usd.", show_default=False)] = None,
        engine: Annotated[Optional[Engine], typer.Option("--engine", case_sensitive=False, help="duckdb (default) or spark.", show_default=False)] = None,
    ) -> None:
        import time

        from billshape.chains import MetricsRequest, run

        exp = run(MetricsRequest(db=db, port=port, by=by, period=period, engine=engine, budget_usd=budget_usd,
                                 revenue=revenue))
        typer.echo(f"serving {db} as Prometheus metrics on {exp.url} (Ctrl-C stops)", err=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            exp.stop()


def _render_measured(res) -> None:
    from billshape.cli._common import render

    rows = [("engine", f"{res.engine} ({res.served_model})" if res.served_model else res.engine, ""),
            ("window", res.window_seconds, "s"), ("output tokens/s delivered", res.output_tokens_per_second, "tokens/s"),
            ("input tokens/s delivered", res.input_tokens_per_second, "tokens/s")]
    if res.requests_per_second is not None:
        rows.append(("requests/s", res.requests_per_second, "req/s"))
    if res.utilization is not None:
        rows.append(("utilization (busy share)", f"{100 * res.utilization:.1f} %", ""))
    if res.gpus is not None:
        rows.append(("GPUs", res.gpus, ""))
    if res.usd_per_million_output_tokens is not None:
        rows += [("rent", res.usd_per_hour, "USD"), ("measured $/M output tokens", res.usd_per_million_output_tokens, "USD")]
    if res.gpu_power_watts is not None:
        rows.append(("GPU power (DCGM)", res.gpu_power_watts, "W"))
    if res.modelled_output_tokens_per_second is not None:
        rows += [(f"modelled output tokens/s ({res.model}, max load)", res.modelled_output_tokens_per_second, "tokens/s"),
                 ("measured / modelled", res.measured_over_modelled, "")]
        if res.modelled_usd_per_million_output_tokens is not None:
            rows.append(("modelled $/M output tokens", res.modelled_usd_per_million_output_tokens, "USD"))
    render(res, f"Measured serving economics from {res.scrapes} scrape(s)", rows,
           notes=[f"warning: {w}" for w in res.warnings])
