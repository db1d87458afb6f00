"""``billshape route``: the cheapest model that clears a quality bar, and cascades."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, SnapshotOpt

HELP = """Pick the cheapest model of a ladder (YAML) that clears a quality bar; --cascade adds the cascade of the
models that give a rejection_rate (cheapest first, ending on the largest), with its expected cost and quality.

--ladder takes a YAML file or a shipped ladder by name: frugalgpt-headlines (FrugalGPT's HEADLINES task).
When no single model clears the bar: an error without --cascade; with --cascade the answer is the cascade if it
clears the bar (chosen: null, recommendation: cascade), else an error.

Example: billshape route --ladder frugalgpt-headlines --quality-bar 0.845 --cascade
"""


def register(app: typer.Typer) -> None:
    @app.command("route", help=HELP)
    def route_cmd(
        ladder: Annotated[Optional[str], typer.Option("--ladder", help="Ladder YAML (models: name, quality, usd_per_request), or a shipped name: frugalgpt-headlines.")] = None,
        quality_bar: Annotated[Optional[float], typer.Option("--quality-bar", help="Minimum quality, in [0, 1].")] = None,
        cascade: Annotated[bool, typer.Option("--cascade", help="Also evaluate the cascade.")] = False,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import RouteRequest, run
        from billshape.cli._common import print_json, render
        from billshape.decide import usd_text

        res = run(RouteRequest(ladder=ladder, quality_bar=quality_bar, cascade=cascade, cascade_only=True))
        if json_out:
            print_json(res.to_dict())
            return
        if res.chosen is not None:
            rows = [("chosen", res.chosen, ""), ("USD per request", usd_text(res.usd_per_request), ""),
                    ("quality", res.quality, ""), ("largest", res.largest, ""),
                    ("saving vs largest", f"{res.saving_vs_largest:.1%}", "")]
        else:
            rows = [("chosen", "the cascade (no single model clears the bar)", ""), ("largest", res.largest, "")]
        if res.cascade:
            rows += [("cascade USD per request", usd_text(res.cascade["usd_per_request"]), ""),
                     ("cascade quality", res.cascade["quality"], ""),
                     ("cascade saving vs largest", f"{res.cascade['saving_vs_largest']:.1%}", "")]
        render(res, "Model ladder", rows, notes=[res.explanation])
