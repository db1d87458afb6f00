"""``billshape breakeven``: build vs buy."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt

HELP = """Build vs buy: building wins above V* = F / (p - c) tokens; no break-even when c >= p.

Example: billshape breakeven --api-price 10 --own-cost 2 --fixed 500000
"""


def register(app: typer.Typer) -> None:
    @app.command("breakeven", help=HELP)
    def breakeven(
        api_price: Annotated[Optional[float], typer.Option("--api-price", help="API price p, USD per million tokens.")] = None,
        own_cost: Annotated[Optional[float], typer.Option("--own-cost", help="Own marginal cost c, USD per million tokens.")] = None,
        fixed: Annotated[Optional[float], typer.Option("--fixed", help="Fixed cost F of building, USD.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import print_json, render
        from billshape.decide import break_even
        from billshape.errors import BillshapeInputError

        for flag, val in (("--api-price", api_price), ("--own-cost", own_cost), ("--fixed", fixed)):
            if val is None:
                raise BillshapeInputError(flag, None, "required")
        res = break_even(api_price, own_cost, fixed)
        if json_out:
            print_json(res.to_dict())
            return
        render(res, "Build vs buy", [
            ("break-even exists", res.exists, ""),
            ("break-even volume", res.break_even_tokens, "tokens"),
            ("margin per million tokens", res.margin_usd_per_million_tokens, "USD"),
        ], notes=[res.explanation])
