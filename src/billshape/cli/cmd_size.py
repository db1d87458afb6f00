"""``billshape size``: inference-aware model sizing (Sardana et al. 2024)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from billshape.cli._common import JsonOpt, MaxAgeOpt, Precision, SnapshotOpt

HELP = """Size a model for its lifetime: fewest FLOPs (or dollars) to reach a loss and serve its inference tokens.

The loss is --target-loss, or that of a reference model (--reference-params, trained on --reference-tokens or
on its compute-optimal token count). Compared with the Chinchilla plan: the compute-optimal model for the same
loss, paying the same inference. Constants: hoffmann-2022, besiroglu-2024, sardana-2024 (default).

Example: billshape size --reference-params 13e9 --inference-tokens 2e12
"""


def register(app: typer.Typer) -> None:
    @app.command("size", help=HELP)
    def size(
        inference_tokens: Annotated[Optional[float], typer.Option("--inference-tokens", help="Lifetime inference tokens (prompt + generated).")] = None,
        reference_params: Annotated[Optional[float], typer.Option("--reference-params", help="Reference model parameters N.")] = None,
        reference_tokens: Annotated[Optional[float], typer.Option("--reference-tokens", help="Reference training tokens D (default: compute-optimal for N).")] = None,
        target_loss: Annotated[Optional[float], typer.Option("--target-loss", help="Loss to reach, nats per token (> E).")] = None,
        constants: Annotated[str, typer.Option("--constants", help="Scaling-law constant set.")] = "sardana-2024",
        gpu: Annotated[Optional[str], typer.Option("--gpu", help="Accelerator (for dollars): its catalogued dense peak.")] = None,
        precision: Annotated[Precision, typer.Option("--precision", case_sensitive=False, help="Precision of the peak FLOP/s (with --gpu).")] = "bf16",
        usd_per_gpu_hour: Annotated[Optional[float], typer.Option("--usd-per-gpu-hour", help="Accelerator price (for dollars).")] = None,
        mfu_training: Annotated[Optional[float], typer.Option("--mfu-training", help="Training MFU (for dollars).")] = None,
        mfu_prefill: Annotated[Optional[float], typer.Option("--mfu-prefill", help="Prefill (input) MFU (for dollars).")] = None,
        mfu_decode: Annotated[Optional[float], typer.Option("--mfu-decode", help="Decode (output) MFU (for dollars).")] = None,
        decode_share: Annotated[Optional[float], typer.Option("--decode-share", help="Share of inference tokens generated (for dollars).")] = None,
        snapshot: SnapshotOpt = None,
        max_age_days: MaxAgeOpt = None,
        json_out: JsonOpt = False,
    ) -> None:
        from billshape.cli._common import catalog_options

        catalog_options(snapshot, max_age_days)
        from billshape.chains import SizeRequest, run
        from billshape.cli._common import print_json, render

        res = run(SizeRequest(inference_tokens=inference_tokens, reference_params=reference_params,
                              reference_tokens=reference_tokens, target_loss=target_loss, constants=constants, gpu=gpu,
                              precision=precision, usd_per_gpu_hour=usd_per_gpu_hour, mfu_training=mfu_training,
                              mfu_prefill=mfu_prefill, mfu_decode=mfu_decode, decode_share=decode_share))
        if json_out:
            print_json(res.to_dict())
            return
        rows = [
            ("constants", res.constants, ""), ("loss", res.loss, "nats/token"),
            ("parameters", res.params, ""), ("training tokens", res.tokens, ""),
            ("tokens per parameter", res.tokens_per_param, ""),
            ("total FLOPs", res.total_flops, "FLOP"), ("Chinchilla parameters", res.chinchilla_params, ""),
            ("Chinchilla tokens", res.chinchilla_tokens, ""), ("Chinchilla total FLOPs", res.chinchilla_total_flops, "FLOP"),
            ("FLOPs saved", res.saving_fraction, ""),
        ]
        if res.total_usd is not None:
            rows += [("total cost", res.total_usd, "USD"), ("Chinchilla cost", res.chinchilla_total_usd, "USD"),
                     ("dollars saved", res.usd_saving_fraction, "")]
        render(res, "Inference-aware sizing", rows, notes=[res.explanation])
