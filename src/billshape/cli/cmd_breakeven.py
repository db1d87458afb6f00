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
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import BreakevenRequest, run
        from billshape.cli._common import print_json, render
        from billshape.decide import BuildBuyHorizon

        res = run(BreakevenRequest(
            api_usd_per_million_tokens=api_price, own_usd_per_million_tokens=own_cost, fixed_usd=fixed,
            volume_tokens_per_month=volume_per_month, months=months, volume_growth_per_month=volume_growth_per_month,
            api_price_annual_factor=api_price_annual_factor, api_price_steps=api_price_step,
            own_cost_annual_factor=own_cost_annual_factor, discount_rate_annual=discount_rate_annual))
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
