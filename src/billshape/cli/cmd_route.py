"""``billshape route``: the cheapest model that clears a quality bar, and cascades."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt

HELP = """Pick the cheapest model of a ladder (YAML) that clears a quality bar; --cascade adds the cascade of the
models that give a rejection_rate (cheapest first, ending on the largest), with its expected cost and quality.

Example: billshape route --ladder examples/ladder_frugalgpt.yaml --quality-bar 0.845 --cascade
"""


def register(app: typer.Typer) -> None:
    @app.command("route", help=HELP)
    def route_cmd(
        ladder: Annotated[Optional[str], typer.Option("--ladder", help="Ladder YAML (models: name, quality, usd_per_request).")] = None,
        quality_bar: Annotated[Optional[float], typer.Option("--quality-bar", help="Minimum quality, in [0, 1].")] = None,
        cascade: Annotated[bool, typer.Option("--cascade", help="Also evaluate the cascade.")] = False,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import print_json, render
        from billshape.decide import read_ladder, route
        from billshape.errors import BillshapeInputError

        for flag, val in (("--ladder", ladder), ("--quality-bar", quality_bar)):
            if val is None:
                raise BillshapeInputError(flag, None, "required")
        res = route(read_ladder(ladder), quality_bar, cascade=cascade)
        if json_out:
            print_json(res.to_dict())
            return
        rows = [("chosen", res.chosen, ""), ("USD per request", res.usd_per_request, ""), ("quality", res.quality, ""),
                ("largest", res.largest, ""), ("saving vs largest", res.saving_vs_largest, "")]
        if res.cascade:
            rows += [("cascade USD per request", res.cascade["usd_per_request"], ""),
                     ("cascade quality", res.cascade["quality"], "")]
        render(res, "Model ladder", rows, notes=[res.explanation])
