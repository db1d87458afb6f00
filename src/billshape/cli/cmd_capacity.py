"""``billshape capacity``: reserved base, on-demand burst and spot for an hourly demand profile."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, SnapshotOpt

HELP = """Cheapest capacity mix for an hourly demand profile (CSV: hour,gpus[,interruptible_gpus]).

Reserve up to the level where the share of hours above it equals reserved price / on-demand price, burst the
rest on on-demand, and optionally run interruptible work on spot (with interruption and checkpoint overhead).

--demand takes a CSV file or a shipped profile by name: example-week (an illustrative synthetic week).

Example: billshape capacity --demand example-week --reserved-price 1.9 --on-demand-price 3.9
"""


def register(app: typer.Typer) -> None:
    @app.command("capacity", help=HELP)
    def capacity(
        demand: Annotated[Optional[str], typer.Option("--demand", help="CSV with hour,gpus[,interruptible_gpus], or a shipped name: example-week.")] = None,
        reserved_price: Annotated[Optional[float], typer.Option("--reserved-price", help="Reserved USD per GPU-hour.")] = None,
        on_demand_price: Annotated[Optional[float], typer.Option("--on-demand-price", help="On-demand USD per GPU-hour.")] = None,
        spot_price: Annotated[Optional[float], typer.Option("--spot-price", help="Spot USD per GPU-hour (interruptible work).")] = None,
        spot_interruptions_per_hour: Annotated[float, typer.Option("--spot-interruptions-per-hour", help="Preemptions per hour on spot.")] = 0.0,
        checkpoint_minutes: Annotated[float, typer.Option("--checkpoint-minutes", help="Minutes lost per preemption (restore + redo).")] = 0.0,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import CapacityRequest, run
        from billshape.cli._common import print_json, render

        res = run(CapacityRequest(demand=demand, reserved_usd_per_gpu_hour=reserved_price,
                                  on_demand_usd_per_gpu_hour=on_demand_price, spot_usd_per_gpu_hour=spot_price,
                                  spot_interruptions_per_hour=spot_interruptions_per_hour,
                                  checkpoint_minutes=checkpoint_minutes))
        if json_out:
            print_json(res.to_dict())
            return
        b = res.breakdown
        render(res, "Capacity tiers", [
            ("hours", res.hours, ""), ("reserved GPUs", res.reserved_gpus, ""),
            ("reserved", b["reserved_usd"], "USD"), ("on-demand burst", b["on_demand_usd"], "USD"),
            ("spot", b["spot_usd"], "USD"), ("total", res.total_usd, "USD"),
            ("all on-demand", res.on_demand_only_usd, "USD"), ("saved", f"{res.saving_fraction:.1%}", ""),
        ], notes=[res.explanation])
