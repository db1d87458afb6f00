"""The serve chain: one :class:`~billshape.chains.requests.ServeRequest` -> the right serving estimate.

The mode follows from the fields given (see :class:`ServeRequest`): capacity (``requests_per_second``) ->
:class:`~billshape.serving.Capacity`; measured (``measured``) or roofline (``model``) ->
:class:`~billshape.serving.ServeEstimate`; a given throughput (``tokens_per_second``) ->
:class:`~billshape.estimates.ServingCost`.
"""

from __future__ import annotations

from typing import Any

from billshape.chains.requests import ServeRequest
from billshape.errors import BillshapeInputError


def mode(req: ServeRequest) -> str:
    """``"capacity"``, ``"measured"``, ``"model"`` or ``"throughput"``: which estimate ``run`` makes."""
    if req.requests_per_second is not None:
        return "capacity"
    if req.measured is not None:
        return "measured"
    if req.model is not None:
        return "model"
    return "throughput"


def run(req: ServeRequest) -> Any:
    """Run the serving estimate the request asks for.

    Returns
    -------
    billshape.serving.Capacity | billshape.serving.ServeEstimate | billshape.estimates.ServingCost
    """
    if req.utilization is not None:  # checked on every path, priced or not
        from billshape import _validate

        _validate.fraction("utilization", req.utilization)
    how = mode(req)
    if how != "model":
        for name in ("prefill_gpus", "decode_gpus"):
            if getattr(req, name) is not None:
                raise BillshapeInputError(name, getattr(req, name), "omitted except with `model` and `gpu` (the "
                                          "serving model runs disaggregated pools; capacity, measured and given "
                                          "throughputs do not)")
    if how == "throughput":
        from billshape.estimates import serving_cost

        if req.tokens_per_second is None:
            raise BillshapeInputError("tokens_per_second", None,
                                      "> 0: the deployment's output tokens/s (or give `model`/`measured`)")
        if req.gpus is None:
            raise BillshapeInputError("gpus", None, "> 0: GPUs in the deployment")
        return serving_cost(tokens_per_second=req.tokens_per_second, gpus=req.gpus, price=req.price,
                            provider=req.provider, tier=req.tier, gpu=req.gpu, utilization=req.utilization,
                            input_tokens_per_second=req.input_tokens_per_second)

    from billshape import serving

    if req.tokens_per_second is not None:
        raise BillshapeInputError("tokens_per_second", req.tokens_per_second,
                                  "omitted with `model`/`measured` (the throughput is modeled or measured)")
    if how in ("capacity", "measured"):
        for name in ("pp", "speculative", "draft_tokens", "acceptance", "draft_model"):
            if getattr(req, name) is not None:
                raise BillshapeInputError(name, getattr(req, name), "omitted with `requests_per_second`/`measured` "
                                          "(pipeline and speculative deployments are modeled with `model` only)")
    if how == "capacity":
        if req.model is None or req.gpu is None:
            raise BillshapeInputError("model" if req.model is None else "gpu", None, "required with `requests_per_second`")
        if req.tpot_limit is None and req.ttft_limit is None:
            raise BillshapeInputError("tpot_limit", None, "a TPOT and/or TTFT limit with `requests_per_second`")
        return serving.capacity(model=req.model, gpu=req.gpu, requests_per_second=req.requests_per_second, tp=req.tp,
                                precision=req.precision, kv_precision=req.kv_precision,
                                input_tokens=req.input_tokens, output_tokens=req.output_tokens,
                                tpot_limit=req.tpot_limit, ttft_limit=req.ttft_limit, price=req.price,
                                provider=req.provider, tier=req.tier, engine=req.engine)
    if how == "measured":
        if req.mode is not None or req.batch is not None:
            raise BillshapeInputError("batch/mode", req.batch or req.mode, "omitted with `measured` (lengths come from the file)")
        return serving.serve_measured(req.measured, model=req.model, gpu=req.gpu, gpus=req.gpus, tp=req.tp,
                                      precision=req.precision, kv_precision=req.kv_precision, price=req.price,
                                      provider=req.provider, tier=req.tier, utilization=req.utilization)
    if req.gpu is None:
        raise BillshapeInputError("gpu", None, "an accelerator name with `model`")
    return serving.serve(model=req.model, gpu=req.gpu, gpus=req.gpus, tp=req.tp, precision=req.precision,
                         kv_precision=req.kv_precision, input_tokens=req.input_tokens,
                         output_tokens=req.output_tokens, batch=req.batch or "max", mode=req.mode, price=req.price,
                         provider=req.provider, tier=req.tier, utilization=req.utilization,
                         reasoning_multiplier=req.reasoning_multiplier, cache_hit_rate=req.cache_hit_rate,
                         ep=req.ep, dp_attention=req.dp_attention, engine=req.engine,
                         redundant_experts=req.redundant_experts, expert_routing=req.expert_routing,
                         lengths=req.lengths, requests=req.requests,
                         arrival=req.arrival, prefill_gpus=req.prefill_gpus, decode_gpus=req.decode_gpus,
                         prefill_tp=req.prefill_tp, prefill_ep=req.prefill_ep,
                         prefill_dp_attention=req.prefill_dp_attention, decode_tp=req.decode_tp,
                         decode_ep=req.decode_ep, decode_dp_attention=req.decode_dp_attention,
                         decode_batch=req.decode_batch, two_batch_overlap=req.two_batch_overlap,
                         pp=req.pp, speculative=req.speculative,
                         draft_tokens=req.draft_tokens, acceptance=req.acceptance, draft_model=req.draft_model)
