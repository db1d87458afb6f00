"""``billshape payback``: months to pay back a fixed cost."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt

HELP = """Months to pay back a fixed cost from users x (revenue - serving cost) per user-month.

Example (bria.ai's image model, 280 A100 for 14 days): billshape payback --fixed 235200 --users 10000 --revenue-per-user-month 10
"""


def register(app: typer.Typer) -> None:
    @app.command("payback", help=HELP)
    def payback(
        fixed: Annotated[Optional[float], typer.Option("--fixed", help="Fixed cost to recover, USD.")] = None,
        users: Annotated[Optional[float], typer.Option("--users", help="Paying users.")] = None,
        revenue_per_user_month: Annotated[Optional[float], typer.Option("--revenue-per-user-month", help="USD per user per month.")] = None,
        cost_per_user_month: Annotated[float, typer.Option("--cost-per-user-month", help="Serving cost, USD per user per month.")] = 0.0,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.chains import PaybackRequest, run
        from billshape.cli._common import print_json, render

        res = run(PaybackRequest(fixed_usd=fixed, users=users, revenue_per_user_month_usd=revenue_per_user_month,
                                 cost_per_user_month_usd=cost_per_user_month))
        if json_out:
            print_json(res.to_dict())
            return
        render(res, "Payback", [
            ("payback months", res.payback_months, ""),
            ("monthly contribution", res.monthly_contribution_usd, "USD"),
        ], notes=[res.explanation])
