"""``billshape train``: the bill of a training run."""

from __future__ import annotations

from typing import Annotated, Literal, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, SnapshotOpt, Tier, TrainPrecision

HELP = """Estimate a training run's bill.

Give the GPU-hours one way: --gpu-hours H | --gpus N --days D (or --hours) | --params N [--active-params N]
--tokens D --mfu M. Price by --price USD_PER_GPU_HOUR or --provider P --tier T (rental), or use
--method amortized (Epoch AI: hardware amortisation + energy).

--usd-year YYYY also states the figures in dollars of that year (US CPI-U annual averages). --generation prints a
frontier generation's total instead: the final run (the bill, or a catalogued run's reported cost) + experiments +
staff + data, low / central / high.

Example (bria.ai's image model, 280 A100 for 14 days): billshape train --gpu a100 --gpus 280 --days 14 --price 2.5
Example (a GPT-4-class generation): billshape train --run gpt-4-epoch-cloud --generation
"""


def register(app: typer.Typer) -> None:
    @app.command("train", help=HELP)
    def train(
        run: Annotated[Optional[str], typer.Option("--run", help="A published run from `billshape catalog runs` (its GPU and GPU-hours).")] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Accelerator name or alias (see `billshape catalog gpus`).")] = None,
        gpu_hours: Annotated[Optional[float], typer.Option("--gpu-hours", help="Accelerator-hours of the run.")] = None,
        gpus: Annotated[Optional[float], typer.Option("--gpus", help="Accelerators in the cluster.")] = None,
        days: Annotated[Optional[float], typer.Option("--days", help="Wall-clock days (with --gpus).")] = None,
        hours: Annotated[Optional[float], typer.Option("--hours", help="Wall-clock hours (with --gpus).")] = None,
        params: Annotated[Optional[float], typer.Option("--params", help="Total parameters, e.g. 7e9.")] = None,
        active_params: Annotated[Optional[float], typer.Option("--active-params", help="Active parameters per token (MoE).")] = None,
        tokens: Annotated[Optional[float], typer.Option("--tokens", help="Training tokens, e.g. 2e12.")] = None,
        flops: Annotated[Optional[float], typer.Option("--flops", help="Training compute in FLOP (instead of --params/--tokens).")] = None,
        mfu: Annotated[Optional[float], typer.Option("--mfu", help="Model FLOPs utilization in (0, 1].")] = None,
        precision: Annotated[TrainPrecision, typer.Option("--precision", case_sensitive=False, help="Precision whose dense peak defines MFU.")] = "bf16",
        price: Annotated[Optional[float], typer.Option("--price", help="Rental price, USD per GPU-hour.")] = None,
        provider: Annotated[Optional[str], typer.Option("--provider", help="Price from the rental catalog: provider.")] = None,
        tier: Annotated[Optional[Tier], typer.Option("--tier", case_sensitive=False, help="Price tier (default on-demand).")] = None,
        method: Annotated[Literal["rental", "amortized"], typer.Option("--method", case_sensitive=False, help="Rental price, or Epoch AI's amortised hardware + energy.")] = "rental",
        hardware_usd: Annotated[Optional[float], typer.Option("--hardware-usd", help="Chip price for --method amortized (default: catalog).")] = None,
        usd_per_kwh: Annotated[Optional[float], typer.Option("--usd-per-kwh", help="Electricity price for --method amortized.")] = None,
        pue: Annotated[Optional[float], typer.Option("--pue", help="Data-centre PUE for --method amortized.")] = None,
        experiments_multiplier: Annotated[Optional[float], typer.Option("--experiments-multiplier", help="Development compute / final run (iceberg).")] = None,
        staff_usd: Annotated[float, typer.Option("--staff-usd", help="Staff cost, shown beside the run.")] = 0.0,
        data_usd: Annotated[float, typer.Option("--data-usd", help="Data cost, shown beside the run.")] = 0.0,
        usd_year: Annotated[Optional[float], typer.Option("--usd-year", help="Also state the costs in dollars of this year (US CPI-U).")] = None,
        generation: Annotated[bool, typer.Option("--generation", help="A frontier generation's total: final run + experiments + staff + data, with its range.")] = False,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import TrainRequest
        from billshape.chains import run as run_chain  # the option --run is named run
        from billshape.cli._common import print_json, render

        bill = run_chain(TrainRequest(
            run=run, gpu=gpu, gpu_hours=gpu_hours, gpus=gpus, days=days, hours=hours, params=params,
            active_params=active_params, tokens=tokens, flops=flops, mfu=mfu, precision=precision, price=price,
            provider=provider, tier=tier, method=method, hardware_usd=hardware_usd, usd_per_kwh=usd_per_kwh,
            pue=pue, experiments_multiplier=experiments_multiplier, staff_usd=staff_usd, data_usd=data_usd,
            usd_year=usd_year, generation=generation,
        ))
        if json_out:
            print_json(bill.to_dict())
            return
        if generation:
            _render_generation(bill, render)
            return
        d = bill.development
        render(bill, f"Training bill ({bill.method})", [
            ("accelerator", bill.gpu, ""),
            ("GPU-hours", bill.gpu_hours, ""),
            ("wall-clock hours", bill.wall_clock_hours, ""),
            ("training FLOPs", bill.training_flops, ""),
            ("MFU", bill.mfu, ""),
            ("USD per GPU-hour", bill.usd_per_gpu_hour, "USD"),
            ("compute", bill.compute_usd, "USD"),
            ("energy", bill.energy_usd, "USD"),
            ("final run total", bill.total_usd, "USD"),
        ], notes=[
            f"Development iceberg (beside the final run, not in it): experiments x{d.experiments_multiplier:g} "
            f"add ${d.experiments_usd:,.0f}, staff ${d.staff_usd:,.0f}, data ${d.data_usd:,.0f}: "
            f"${d.total_usd:,.0f} in all."
        ] + _constant_notes(getattr(bill, "constant_dollars", None)))


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _span(r) -> str:
    return f"{_usd(r.central)} ({_usd(r.low)} to {_usd(r.high)})"


def _constant_notes(constant) -> list[str]:
    if constant is None:
        return []
    return [f"In {constant.usd_year} dollars ({constant.price_index.upper()}): {c.figure} {_usd(c.nominal_usd)} of "
            f"{c.cost_year} is {_usd(c.constant_usd)} (x{c.factor:.4f}; {c.note})" for c in constant.conversions]


def _render_generation(g, render) -> None:
    rows = [
        ("basis", g.basis, ""),
        ("final run", _usd(g.final_run_usd), ""),
        ("experiments (central, low to high)", _span(g.experiments_usd), ""),
        ("staff", _span(g.staff_usd), ""),
        ("data", _span(g.data_usd), ""),
        ("generation total", _span(g.total_usd), ""),
        ("months per generation", f"{g.generation_months.central:g} ({g.generation_months.low:g} to "
                                  f"{g.generation_months.high:g})", ""),
    ]
    notes = [
        f"A frontier generation: final run x experiments multiplier {g.experiments_multiplier.central:g} "
        f"({g.experiments_multiplier.low:g} to {g.experiments_multiplier.high:g}), staff at "
        f"{g.staff_share.central:.0%} ({g.staff_share.low:.0%} to {g.staff_share.high:.0%}) of development cost, "
        f"data licences over the generation. Low and high take every low (high) input together: a bounding range, "
        f"not a probability interval.",
    ] + _constant_notes(g.constant_dollars)
    render(g, f"Frontier generation ({g.run or 'this run'})", rows, notes=notes)
