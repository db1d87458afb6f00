"""``billshape breakeven``: build vs buy."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt

HELP = """Build vs buy: building wins above V* = F / (p - c) tokens; no break-even when c >= p.

With --volume-per-month and --months: month by month over a horizon (volume growth, API price trend and
steps, own-cost trend, discount rate), with the NPV saving of building, the crossover month, and `recheck`:
the decision again at the API price 12 months on.

Example: billshape breakeven --api-price 10 --own-cost 2 --fixed 500000
Example: billshape breakeven --api-price 10 --own-cost 2 --fixed 500000 --volume-per-month 2e10 --months 24 --api-price-annual-factor 0.1

Against a rented fleet (own cost a monthly rent in whole replicas, not a cost per token): --own-usd-per-month F
--own-capacity-tokens-per-month C (one unit's rent and the tokens per month it covers), or --model M with the fleet
options (--gpu --provider --tier --engine --precision --input-tokens --output-tokens --tpot-limit --ttft-limit
--peak-to-mean; the cheapest fleet at --volume-per-month). Prints the crossover volumes, the utilization, the rent,
and what flips the decision; with --months the replicas and the crossover month as the volume grows.

Example: billshape breakeven --api-price 0.6 --own-usd-per-month 14610 --own-capacity-tokens-per-month 8e10 --volume-per-month 3e10
Example: billshape breakeven --api-price 0.6 --model llama-3.1-70b --gpu h100 --volume-per-month 2e10 --months 24 --volume-growth-per-month 0.1
"""


def register(app: typer.Typer) -> None:
    @app.command("breakeven", help=HELP)
    def breakeven(
        api_price: Annotated[Optional[float], typer.Option("--api-price", help="API price p, USD per million tokens.")] = None,
        own_cost: Annotated[Optional[float], typer.Option("--own-cost", help="Own marginal cost c, USD per million tokens.")] = None,
        fixed: Annotated[Optional[float], typer.Option("--fixed", help="Fixed cost F of building, USD.")] = None,
        volume_per_month: Annotated[Optional[float], typer.Option("--volume-per-month", help="Tokens per month in month 1 (horizon mode).")] = None,
        months: Annotated[Optional[int], typer.Option("--months", help="Horizon in months, 1 to 600 (horizon mode).")] = None,
        volume_growth_per_month: Annotated[float, typer.Option("--volume-growth-per-month", help="Compound volume growth per month, in (-1, 1] (0.05 = 5%).")] = 0.0,
        api_price_annual_factor: Annotated[float, typer.Option("--api-price-annual-factor", help="API price multiplier per year, 1e-4 to 1e4 (0.1 = 10x cheaper a year).")] = 1.0,
        api_price_step: Annotated[Optional[list[str]], typer.Option("--api-price-step", help="MONTH:FACTOR API price change from MONTH on (repeatable; 13:3 = x3 from month 13).")] = None,
        own_cost_annual_factor: Annotated[float, typer.Option("--own-cost-annual-factor", help="Own marginal cost multiplier per year.")] = 1.0,
        discount_rate_annual: Annotated[float, typer.Option("--discount-rate-annual", help="Discount rate per year for NPV (0.1 = 10%).")] = 0.0,
        own_usd_per_month: Annotated[Optional[float], typer.Option("--own-usd-per-month", help="Fleet: one unit's rent, USD per month.")] = None,
        own_capacity_tokens_per_month: Annotated[Optional[float], typer.Option("--own-capacity-tokens-per-month", help="Fleet: tokens per month one unit covers.")] = None,
        model: Annotated[Optional[str], typer.Option("--model", help="Fleet: search the cheapest fleet for this model (billshape fleet).")] = None,
        gpu: Annotated[Optional[list[str]], typer.Option("--gpu", help="Fleet search: only these accelerators.")] = None,
        provider: Annotated[Optional[list[str]], typer.Option("--provider", help="Fleet search: only these providers.")] = None,
        tier: Annotated[Optional[list[str]], typer.Option("--tier", help="Fleet search: only these tiers.")] = None,
        engine: Annotated[Optional[list[str]], typer.Option("--engine", help="Fleet search: only these engines.")] = None,
        precision: Annotated[Optional[list[str]], typer.Option("--precision", help="Fleet search: precisions.")] = None,
        input_tokens: Annotated[Optional[float], typer.Option("--input-tokens", help="Fleet search: prompt tokens per request.")] = None,
        output_tokens: Annotated[Optional[float], typer.Option("--output-tokens", help="Fleet search: output tokens per request.")] = None,
        tpot_limit: Annotated[Optional[float], typer.Option("--tpot-limit", help="Fleet search: max time per output token [s].")] = None,
        ttft_limit: Annotated[Optional[float], typer.Option("--ttft-limit", help="Fleet search: max time to first token [s].")] = None,
        peak_to_mean: Annotated[Optional[float], typer.Option("--peak-to-mean", help="Fleet search: peak hour / mean hour.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import BreakevenRequest, run
        from billshape.cli._common import print_json, render
        from billshape.decide import BuildBuyHorizon

        res = run(BreakevenRequest(
            api_usd_per_million_tokens=api_price, own_usd_per_million_tokens=own_cost, fixed_usd=fixed,
            volume_tokens_per_month=volume_per_month, months=months, volume_growth_per_month=volume_growth_per_month,
            api_price_annual_factor=api_price_annual_factor, api_price_steps=api_price_step,
            own_cost_annual_factor=own_cost_annual_factor, discount_rate_annual=discount_rate_annual,
            own_usd_per_month=own_usd_per_month, own_capacity_tokens_per_month=own_capacity_tokens_per_month,
            model=model, gpu=gpu, provider=provider, tier=tier, engine=engine, precision=precision,
            input_tokens=input_tokens, output_tokens=output_tokens, tpot_limit=tpot_limit, ttft_limit=ttft_limit,
            peak_to_mean=peak_to_mean))
        from billshape.fleet.breakeven import FleetBreakEven

        if isinstance(res, FleetBreakEven):
            if json_out:
                print_json(res.to_dict())
                return
            _render_fleet(res)
            return
        if isinstance(res, BuildBuyHorizon):
            hz = res
            if json_out:
                print_json(hz.to_dict())
                return
            render(hz, "Build vs buy over a horizon", [
                ("months", hz.months, ""), ("decision", hz.decision, ""),
                ("NPV saving of building", hz.npv_saving_usd, "USD"), ("crossover month", hz.crossover_month, ""),
                ("total buy", hz.total_api_usd, "USD"), ("total build", hz.total_own_usd, "USD"),
                ("recheck decision (12 months on)", hz.recheck["decision"], ""),
                ("recheck break-even volume", hz.recheck["break_even_tokens"], "tokens"),
            ], notes=[hz.explanation, hz.horizon_explanation])
            return
        if json_out:
            print_json(res.to_dict())
            return
        render(res, "Build vs buy", [
            ("break-even exists", res.exists, ""),
            ("break-even volume", res.break_even_tokens, "tokens"),
            ("margin per million tokens", res.margin_usd_per_million_tokens, "USD"),
        ], notes=[res.explanation])


def _render_fleet(res) -> None:
    from billshape.cli._common import render

    f = res.fleet
    rows = [("API price", res.api_usd_per_million_tokens, "USD"),
            ("fleet unit rent", res.unit_usd_per_month, "USD"),
            ("fleet unit capacity", res.own_capacity_tokens_per_month, "tokens/month")]
    if f:
        rows.insert(0, ("fleet option", f"{f['gpus_per_replica']} x {f['gpu']} {f['precision']} per replica at "
                                        f"{f['provider']} {f['tier']}", ""))
    rows += [("crossover volumes", ", ".join(f"{x:,.4g}" for x in res.crossover_volumes_tokens_per_month[:6]) or "none",
              "tokens/month"),
             ("build wins at every volume above", res.build_always_wins_above_tokens_per_month, "tokens/month")]
    if res.months is None and res.volume_tokens_per_month is not None:
        rows += [("replicas", res.replicas, ""), ("monthly rent", res.own_usd_per_month, "USD"),
                 ("API bill", res.api_usd_per_month, "USD"), ("utilization", f"{res.utilization:.1%}", ""),
                 ("decision", res.decision, "")]
    elif res.months is not None:
        rows += [("months", res.months, ""), ("replicas month 1 / last", f"{res.replicas[0]} / {res.replicas[-1]}", ""),
                 ("rent month 1 / last", f"${res.own_usd_per_month[0]:,.0f} / ${res.own_usd_per_month[-1]:,.0f}", ""),
                 ("utilization month 1 / last", f"{res.utilization[0]:.1%} / {res.utilization[-1]:.1%}", ""),
                 ("crossover month", res.crossover_month, ""), ("NPV saving of building", res.npv_saving_usd, "USD"),
                 ("decision", res.decision, "")]
    render(res, "Build vs buy against a rented fleet", rows, notes=[res.explanation])
