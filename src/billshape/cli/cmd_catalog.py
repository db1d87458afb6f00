"""``billshape catalog``: list the shipped catalogs with their sources; ``refresh`` and ``snapshots`` (dated
snapshots of public price data, see ``billshape.snapshots``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, SnapshotOpt, Tier

HELP = """List a shipped catalog: gpus | prices | runs | constants (every row with source and as_of); with no KIND,
list the kinds.

`billshape catalog refresh` fetches genai-prices', SkyPilot's and Epoch AI's public data (the only verb that uses
the network) into a dated snapshot; `billshape catalog snapshots` lists them; `--snapshot ID` on any verb uses one.

Examples: billshape catalog gpus; billshape catalog prices --gpu h100 --tier spot --json;
billshape catalog refresh --source skypilot-aws=https://example.org/vms.csv --only skypilot-aws
"""
ACTIONS = {
    "refresh": "fetch the public price data (genai-prices, SkyPilot, Epoch AI) into a dated snapshot (network)",
    "snapshots": "list the dated snapshots (use one with --snapshot ID on any verb)",
}

KINDS = ("gpus", "prices", "runs", "constants")
KIND_HELP = {
    "gpus": "accelerators: dense peaks per precision, HBM size and bandwidth, TDP, purchase price",
    "prices": "$/GPU-hour by provider and tier (on-demand, reserved-1y, reserved-3y, spot)",
    "runs": "published training runs: accelerator, GPU-hours, reported cost and energy",
    "constants": "Epoch AI's amortisation and energy constants, PUE, $/kWh, reserved discounts",
}


def register(app: typer.Typer) -> None:
    @app.command("catalog", help=HELP)
    def catalog_cmd(
        kind: Annotated[Optional[str], typer.Argument(help="gpus | prices | runs | constants (none: list the kinds)")] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Only this accelerator (prices).")] = None,
        provider: Annotated[Optional[str], typer.Option("--provider", help="Only this provider (prices).")] = None,
        tier: Annotated[Optional[Tier], typer.Option("--tier", case_sensitive=False, help="Only this tier (prices).")] = None,
        usd_year: Annotated[Optional[float], typer.Option("--usd-year", help="runs: also state reported costs in dollars of this year (US CPI-U).")] = None,
        source: Annotated[Optional[list[str]], typer.Option("--source", help="refresh: fetch NAME from URL (NAME=URL; repeatable; NAME= drops it).")] = None,
        config: Annotated[Optional[str], typer.Option("--config", help="refresh: a TOML file whose [sources] table maps NAME = URL (default: $BILLSHAPE_REFRESH_CONFIG).")] = None,
        only: Annotated[Optional[list[str]], typer.Option("--only", help="refresh: fetch only this source (repeatable).")] = None,
        timeout: Annotated[float, typer.Option("--timeout", help="refresh: seconds to wait for each file.")] = 60.0,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape import catalog
        from billshape.cli._common import console, fmt, print_json
        from billshape.errors import unknown_name

        if kind is None:
            if json_out:
                print_json({"kinds": [{"kind": k, "what": KIND_HELP[k]} for k in KINDS],
                            "actions": [{"action": k, "what": v} for k, v in ACTIONS.items()]})
            else:
                console().print("\n".join(f"{k:<10} {KIND_HELP[k]}" for k in KINDS)
                                + "\n\nbillshape catalog KIND [--json] lists one\n\n"
                                + "\n".join(f"{k:<10} {v}" for k, v in ACTIONS.items()))
            return
        kind = kind.lower()
        if kind in ACTIONS:
            from billshape.cli._catalog_refresh import refresh_or_list

            refresh_or_list(kind, source, config, only, timeout, json_out)
            return
        if kind not in KINDS:
            raise unknown_name("KIND", kind, KINDS + tuple(ACTIONS))
        # human tables show some columns in friendlier units: (header, key, divisor); --json keeps base SI units
        scaled: dict[str, tuple[str, float]] = {}
        if kind == "gpus":
            rows = [a.model_dump() for a in catalog.accelerators()]
            cols = ["name", "aliases", "memory_gb", "memory_bytes_per_second", "bf16_dense_flops_per_second",
                    "fp8_dense_flops_per_second", "fp4_dense_flops_per_second", "tdp_watts", "purchase_usd", "as_of"]
            scaled = {"memory_gb": ("memory GB", 1), "memory_bytes_per_second": ("memory TB/s", 1e12),
                      "bf16_dense_flops_per_second": ("BF16 dense TFLOP/s", 1e12),
                      "fp8_dense_flops_per_second": ("FP8 dense TFLOP/s", 1e12),
                      "fp4_dense_flops_per_second": ("FP4 dense TFLOP/s", 1e12), "tdp_watts": ("TDP W", 1),
                      "purchase_usd": ("price USD", 1)}
        elif kind == "prices":
            sel = list(catalog.prices())
            if gpu is not None:
                name = catalog.gpu(gpu).name
                sel = [p for p in sel if p.gpu == name]
            if provider is not None:
                if provider.lower() not in catalog.providers():
                    raise unknown_name("--provider", provider, catalog.providers())
                sel = [p for p in sel if p.provider == provider.lower()]
            if tier is not None:
                if tier.lower() not in catalog.TIERS:
                    raise unknown_name("--tier", tier, catalog.TIERS)
                sel = [p for p in sel if p.tier == tier.lower()]
            rows = [p.model_dump() for p in sel]
            cols = ["provider", "gpu", "tier", "usd_per_gpu_hour", "instance_type", "region", "as_of"]
        elif kind == "runs":
            rows = [r.model_dump() for r in catalog.training_runs()]
            cols = ["name", "params_total", "params_active", "tokens", "accelerator", "gpu_hours",
                    "reported_cost_usd", "reported_energy_mwh", "as_of"]
            if usd_year is not None:
                from billshape.price_index import restate_rows

                rows, constant = restate_rows(rows, usd_year)
                cols.insert(cols.index("reported_cost_usd") + 1, "reported_cost_usd_in_usd_year")
        else:
            rows = [c.model_dump() for c in catalog.constants().values()]
            cols = ["name", "value", "unit", "as_of", "source"]
        if usd_year is not None and kind != "runs":
            from billshape.errors import BillshapeInputError

            raise BillshapeInputError("--usd-year", usd_year, "only with KIND runs")
        if json_out:
            payload = {"catalog": kind, "count": len(rows), "rows": rows}
            if usd_year is not None:
                payload["constant_dollars"] = constant
            print_json(payload)
            return
        from rich.table import Table

        table = Table(title=f"{kind} ({len(rows)} rows; sources in --json)", title_justify="left")
        for c in cols:
            header = scaled.get(c, (c.replace("_", " "), 1))[0]
            if c == "reported_cost_usd_in_usd_year":
                header = f"reported cost in {constant['usd_year']} USD (CPI-U)"
            table.add_column(header, overflow="fold", justify="right" if c in scaled else "left")

        def cell(row: dict, c: str) -> str:
            value = row[c]
            if isinstance(value, tuple):
                return ", ".join(value)
            if c in scaled and isinstance(value, (int, float)):
                divisor = scaled[c][1]
                return f"{value:,.0f}" if divisor == 1 else f"{value / divisor:,.4g}"
            return fmt(value)

        for r in rows:
            table.add_row(*[cell(r, c) for c in cols])
        console().print(table)
