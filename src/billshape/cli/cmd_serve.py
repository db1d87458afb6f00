"""``billshape serve``: cost per token of a deployment."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt

HELP = """Cost per million tokens of a deployment: $/hour / (tokens/hour x utilization).

Example (DeepSeek's decode node): billshape serve --tokens-per-second 14800 --gpus 8 --price 2 --utilization 1
"""


def register(app: typer.Typer) -> None:
    @app.command("serve", help=HELP)
    def serve(
        tokens_per_second: Annotated[Optional[float], typer.Option("--tokens-per-second", help="Output tokens/s of the whole deployment.")] = None,
        input_tokens_per_second: Annotated[Optional[float], typer.Option("--input-tokens-per-second", help="Input (prefill) tokens/s of the deployment, to price input tokens.")] = None,
        gpus: Annotated[Optional[float], typer.Option("--gpus", help="GPUs in the deployment.")] = None,
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Accelerator (for --provider pricing).")] = None,
        price: Annotated[Optional[float], typer.Option("--price", help="USD per GPU-hour.")] = None,
        provider: Annotated[Optional[str], typer.Option("--provider", help="Price from the rental catalog.")] = None,
        tier: Annotated[Optional[str], typer.Option("--tier", help="on-demand|reserved-1y|reserved-3y|spot.")] = None,
        utilization: Annotated[Optional[float], typer.Option("--utilization", help="Busy share of paid hours, (0, 1]; default 1.")] = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import print_json, render
        from billshape.errors import BillshapeInputError
        from billshape.estimates import serving_cost

        if tokens_per_second is None:
            raise BillshapeInputError("--tokens-per-second", None, "> 0: the deployment's output tokens/s")
        if gpus is None:
            raise BillshapeInputError("--gpus", None, "> 0: GPUs in the deployment")
        res = serving_cost(tokens_per_second=tokens_per_second, gpus=gpus, price=price, provider=provider, tier=tier,
                           gpu=gpu, utilization=utilization, input_tokens_per_second=input_tokens_per_second)
        if json_out:
            print_json(res.to_dict())
            return
        render(res, "Serving cost", [
            ("deployment price", res.usd_per_hour, "USD"),
            ("utilization", res.utilization, ""),
            ("output tokens/s", res.output_tokens_per_second, ""),
            ("USD per million output tokens", res.usd_per_million_output_tokens, "USD"),
            ("USD per million input tokens", res.usd_per_million_input_tokens, "USD"),
        ])
