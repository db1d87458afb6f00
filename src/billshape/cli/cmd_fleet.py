"""``billshape fleet``: the cheapest rented fleet for a traffic under a service level."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt

HELP = """The cheapest deployment for a traffic and a service level: a fleet rented by the hour.

Searches GPU x GPUs per replica (tensor parallel) x expert parallel x precision x engine with the serving model,
sizes whole replicas for every hour of the traffic, and prices them at every catalogued provider and tier
(reserved for the peak, on-demand hour by hour, reserved base + on-demand burst, spot for interruptible work).
Prints the cheapest option, the frontier of USD per million output tokens against TPOT, and what was rejected.

Traffic: --requests-per-second R (mean) or --tokens-per-month T (input + output) with --peak-to-mean X (default: the
shipped week's), or an hourly --demand FILE (hour,gpus[,interruptible_gpus] as capacity reads; with R or T only its
shape counts). --gpu, --provider, --tier, --engine and --precision restrict the search (repeat them, or comma-separate).

Examples:
  billshape fleet --model llama-3.1-70b --requests-per-second 5 --tpot-limit 0.05 --ttft-limit 2
  billshape fleet --model llama-3.1-70b --tokens-per-month 2e10 --peak-to-mean 3 --gpu h100 --provider aws
"""


def _frontier_table(res, out) -> None:
    from rich.table import Table

    from billshape.cli._common import fmt

    t = Table(title="frontier: USD per million output tokens against TPOT (cheapest first)", title_justify="left")
    for col in ("replicas x GPUs", "gpu", "precision", "engine", "provider", "tier", "USD/month", "USD/M out",
                "utilization", "TPOT ms", "TTFT s"):
        t.add_column(col, justify="right" if col not in ("gpu", "precision", "engine", "provider", "tier") else "left",
                     no_wrap=col == "tier")
    for o in res.frontier:
        t.add_row(f"{o['replicas']} x {o['gpus_per_replica']}" + (f" (ep {o['ep']})" if o["ep"] > 1 else ""),
                  o["gpu"], o["precision"], o["engine"], o["provider"], o["tier"], fmt(o["usd_per_month"], "USD"),
                  fmt(o["usd_per_million_output_tokens"], "USD"), f"{o['utilization']:.0%}", f"{o['tpot_s'] * 1e3:,.1f}",
                  f"{o['ttft_s']:,.3g}")
    out.print(t)


def _rejected_table(res, out) -> None:
    from rich.table import Table

    t = Table(title="rejected", title_justify="left")
    t.add_column("reason")
    t.add_column("options", justify="right")
    t.add_column("for example")
    for reason, r in sorted(res.rejected.items(), key=lambda kv: -kv[1]["count"]):
        t.add_row(reason, f"{r['count']:,}", "; ".join(r["examples"]))
    out.print(t)


def register(app: typer.Typer) -> None:
    @app.command("fleet", help=HELP)
    def fleet(
        model: Annotated[Optional[str], typer.Option("--model", help="Model architecture (catalog name).")] = None,
        requests_per_second: Annotated[Optional[float], typer.Option("--requests-per-second", help="Mean request rate [requests/s].")] = None,
        tokens_per_month: Annotated[Optional[float], typer.Option("--tokens-per-month", help="Input + output tokens per month.")] = None,
        peak_to_mean: Annotated[Optional[float], typer.Option("--peak-to-mean", help="Peak hour / mean hour of the traffic (default: the shipped week's).")] = None,
        demand: Annotated[Optional[str], typer.Option("--demand", help="Hourly profile CSV hour,gpus[,interruptible_gpus], or example-week.")] = None,
        input_tokens: Annotated[Optional[float], typer.Option("--input-tokens", help="Prompt tokens per request (default 1000).")] = None,
        output_tokens: Annotated[Optional[float], typer.Option("--output-tokens", help="Output tokens per request (default 1000).")] = None,
        tpot_limit: Annotated[Optional[float], typer.Option("--tpot-limit", help="Max time per output token [s].")] = None,
        ttft_limit: Annotated[Optional[float], typer.Option("--ttft-limit", help="Max time to first token [s].")] = None,
        gpu: Annotated[Optional[list[str]], typer.Option("--gpu", help="Only these accelerators (repeatable).")] = None,
        provider: Annotated[Optional[list[str]], typer.Option("--provider", help="Only these providers (repeatable).")] = None,
        tier: Annotated[Optional[list[str]], typer.Option("--tier", help="Only these tiers: on-demand, reserved-1y, reserved-3y, spot (repeatable; a mix needs each of its tiers).")] = None,
        engine: Annotated[Optional[list[str]], typer.Option("--engine", help="Only these serving engines (repeatable).")] = None,
        precision: Annotated[Optional[list[str]], typer.Option("--precision", help="Weight precisions to search (repeatable; default bf16 and fp8).")] = None,
        png: Annotated[Optional[str], typer.Option("--png", help="Write the frontier chart to this PNG file.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import FleetRequest, run
        from billshape.cli._common import console, print_json, render

        res = run(FleetRequest(model=model, requests_per_second=requests_per_second, tokens_per_month=tokens_per_month,
                               peak_to_mean=peak_to_mean, demand=demand, input_tokens=input_tokens,
                               output_tokens=output_tokens, tpot_limit=tpot_limit, ttft_limit=ttft_limit, gpu=gpu,
                               provider=provider, tier=tier, engine=engine, precision=precision))
        if png:
            _write_png(res, png)
        if json_out:
            data = res.to_dict()
            if png:
                data["png"] = png
            print_json(data)
            return
        b = res.best
        out = console()
        _frontier_table(res, out)
        _rejected_table(res, out)
        render(res, f"Cheapest fleet: {res.model}", [
            ("deployment", f"{b['replicas']} x {b['gpus_per_replica']} {b['gpu']} (tp {b['tp']}, ep {b['ep']})", ""),
            ("precision / engine", f"{b['precision']} / {b['engine']}", ""),
            ("provider / tier", f"{b['provider']} / {b['tier']}", ""),
            ("monthly rent", b["usd_per_month"], "USD"), ("USD per hour", b["usd_per_hour"], "USD"),
            ("utilization", f"{b['utilization']:.1%}", ""),
            ("USD per million output tokens", b["usd_per_million_output_tokens"], "USD"),
            ("TPOT / TTFT", f"{b['tpot_s'] * 1e3:,.1f} ms / {b['ttft_s']:,.3g} s", ""),
            ("options searched", res.options_evaluated, ""),
        ], notes=[res.explanation] + ([f"chart: {png}"] if png else []))


def _write_png(res, path: str) -> None:
    from billshape._extras import require
    from billshape.errors import BillshapeInputError

    vlc = require("report", "vl_convert", "billshape fleet --png")
    from billshape.report.charts import fleet_frontier

    try:
        with open(path, "wb") as f:
            f.write(vlc.vegalite_to_png(fleet_frontier(res).to_dict(), scale=2.0))
    except OSError as exc:
        raise BillshapeInputError("png", path, "a writable file path", type(exc).__name__) from None
