r"""Measured self-hosted economics from the serving stack's own Prometheus metrics (``billshape usage measured``).

From two or more scrapes of a vLLM or SGLang ``/metrics`` page (and, optionally, the DCGM exporter's) over a
window (:mod:`billshape.usage.prom`):

* delivered tokens/s: the rates of the engine's prompt and generation token counters;
* utilization (busy share): the mean of ``DCGM_FI_DEV_GPU_UTIL`` / 100 over scrapes and GPUs where DCGM is
  scraped, else the share of scrapes with ``num_requests_running`` > 0;
* measured $/M output tokens at the fleet's rent: :math:`G \cdot p / (3600 \cdot r_{out}) \cdot 10^6` (G GPUs at
  p USD/GPU-hour, :math:`r_{out}` output tokens/s delivered): the whole rent is charged to output tokens,
  idle time included, which is what the fleet costs per token it delivered;
* beside it, the serving model's figure (:func:`billshape.serving.serve` at max load, with the measured mean
  prompt and generation lengths per request) and ``measured_over_modelled`` = delivered / modelled output tokens/s
  (utilization and engine efficiency together; ``busy_over_modelled`` divides the utilization out).

References
----------
.. [1] vLLM, "Production Metrics", https://docs.vllm.ai/en/latest/usage/metrics.html
.. [2] SGLang, "Production Metrics", https://docs.sglang.io/references/production_metrics.html
.. [3] NVIDIA, "DCGM Exporter Metrics",
       https://docs.nvidia.com/datacenter/dcgm/latest/reference/dcgm-exporter-metrics.html
.. [4] billshape seed 003, section 37.2 (cost per token = $/h / (tokens/h x utilization)).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Result, derived, user
from billshape.usage import prom

#: the counters and gauges each engine exposes (names as their /metrics pages write them; see References)
ENGINES: dict[str, dict[str, str]] = {
    "vllm": {"prompt": "vllm:prompt_tokens_total", "generation": "vllm:generation_tokens_total",
             "requests": "vllm:request_success_total", "running": "vllm:num_requests_running",
             "waiting": "vllm:num_requests_waiting", "kv_cache": "vllm:gpu_cache_usage_perc"},
    "sglang": {"prompt": "sglang:prompt_tokens_total", "generation": "sglang:generation_tokens_total",
               "requests": "sglang:num_requests_total", "running": "sglang:num_running_reqs",
               "waiting": "sglang:num_queue_reqs", "kv_cache": "sglang:token_usage"},
}
ENGINE_SOURCES = {"vllm": "https://docs.vllm.ai/en/latest/usage/metrics.html",
                  "sglang": "https://docs.sglang.io/references/production_metrics.html"}
DCGM_UTIL = "DCGM_FI_DEV_GPU_UTIL"      # percent [0, 100] per GPU
DCGM_POWER = "DCGM_FI_DEV_POWER_USAGE"  # W per GPU
DCGM_SOURCE = "https://docs.nvidia.com/datacenter/dcgm/latest/reference/dcgm-exporter-metrics.html"


class MeasuredServing(Result):
    """Delivered throughput, busy share and $/M tokens of a self-hosted fleet, measured from its metrics; the
    serving model's figure beside it (``modelled_*``, ``measured_over_modelled``) when a ``model`` is given."""

    metrics: list[str]
    engine: str
    served_model: str | None = None
    scrapes: int
    window_seconds: float
    timing: str
    counter_resets: int
    output_tokens_per_second: float
    input_tokens_per_second: float
    requests_per_second: float | None = None
    input_tokens_per_request: float | None = None
    output_tokens_per_request: float | None = None
    utilization: float | None = None
    utilization_source: str | None = None
    busy_output_tokens_per_second: float | None = None
    mean_requests_running: float | None = None
    mean_requests_waiting: float | None = None
    gpus: int | None = None
    gpu: str | None = None
    gpu_model_name: str | None = None
    usd_per_gpu_hour: float | None = None
    usd_per_hour: float | None = None
    usd_per_million_output_tokens: float | None = None
    usd_per_million_tokens: float | None = None
    gpu_power_watts: float | None = None
    kwh_per_million_output_tokens: float | None = None
    model: str | None = None
    modelled_output_tokens_per_second: float | None = None
    modelled_usd_per_million_output_tokens: float | None = None
    measured_over_modelled: float | None = None
    busy_over_modelled: float | None = None
    warnings: list[str] = []


def usd_per_million_at_rent(gpus, usd_per_gpu_hour, tokens_per_second):
    """USD per million tokens delivered at a fleet's rent: ``gpus x usd_per_gpu_hour / (3600 x tokens_per_second)
    x 1e6`` (vectorised; idle hours are paid, so they are in the figure)."""
    return np.asarray(gpus, float) * np.asarray(usd_per_gpu_hour, float) / (3600.0 * np.asarray(tokens_per_second, float)) * 1e6


def _engine(scrapes: Sequence[prom.Scrape]) -> str:
    names = set().union(*(s.names() for s in scrapes))
    found = [e for e, m in ENGINES.items() if m["generation"] in names]
    if not found:
        raise BillshapeInputError("metrics", ", ".join(s.source for s in scrapes),
                                  "scrapes of a vLLM or SGLang /metrics page (" +
                                  ", ".join(m["generation"] for m in ENGINES.values()) + ")",
                                  "no engine token counter found")
    if len(found) > 1:
        raise BillshapeInputError("metrics", ", ".join(found), "scrapes of one engine (vLLM or SGLang), not both")
    return found[0]


def measure(sources: Sequence[str], *, gpus: float | None = None, price: float | None = None, gpu: str | None = None,
            provider: str | None = None, tier: str | None = None, model: str | None = None,
            precision: str | None = None, window_seconds: float | None = None) -> MeasuredServing:
    """Measured economics from scrapes ``sources`` (files or loopback URLs, in the order they were taken).

    ``gpus`` defaults to the GPUs on the DCGM page; ``price`` [USD/GPU-hour] or ``provider`` [+ ``tier``] with
    ``gpu`` for the rent (optional: without it the $ keys are None); ``model`` (+ ``gpu``) for the modelled figure;
    ``window_seconds``: seconds from the first to the last scrape, for samples without timestamps.
    """
    if not sources:
        raise BillshapeInputError("metrics", None, "two or more scrapes (files or loopback URLs) over a window")
    if window_seconds is not None:
        v.positive("window_seconds", window_seconds, v.MAX_HOURS * 3600)
    scrapes = [prom.read_scrape(s) for s in sources]
    engine = _engine(scrapes)
    names = ENGINES[engine]
    assumptions: list[Assumption] = [
        Assumption(name=f"{engine} metrics", value=", ".join(names.values()), source=ENGINE_SOURCES[engine], as_of=None),
        user("scrapes", len(scrapes), None, "metrics"),
    ]
    if window_seconds is not None:
        assumptions.append(user("window", float(window_seconds), "s", "window_seconds"))
    gen = prom.counter_rate(scrapes, names["generation"], window_seconds)
    pre = prom.counter_rate(scrapes, names["prompt"], window_seconds)
    req = prom.counter_rate(scrapes, names["requests"], window_seconds)
    if gen is None or gen.increase <= 0:
        raise BillshapeInputError("metrics", names["generation"], "a window in which the engine generated tokens",
                                  "the generation counter did not move between the scrapes")
    warnings: list[str] = []
    out_tps = gen.per_second
    in_tps = pre.per_second if pre is not None else 0.0
    if pre is None:
        warnings.append(f"no {names['prompt']} in the scrapes: input tokens/s taken as 0")
    resets = sum(r.resets for r in (gen, pre, req) if r is not None)
    if resets:
        warnings.append(f"{resets} counter reset(s) in the window (an engine restart): counted from zero after each")
    rps = req.per_second if req is not None and req.increase > 0 else None
    in_per_req = in_tps / rps if rps and pre is not None else None
    out_per_req = out_tps / rps if rps else None
    served = (prom.label_values(scrapes, names["generation"], "model_name") or [None])[0]

    running = prom.gauge_sums(scrapes, names["running"])
    waiting = prom.gauge_sums(scrapes, names["waiting"])
    util_pct = prom.gauge_means(scrapes, DCGM_UTIL)
    util = util_src = None
    if util_pct.size:
        util = float(np.clip(util_pct.mean() / 100.0, 0.0, 1.0))
        util_src = f"mean {DCGM_UTIL} / 100 over {util_pct.size} scrape(s) and the GPUs on the page"
        assumptions.append(Assumption(name="utilization", value=util, source=DCGM_SOURCE, as_of=None))
    elif running.size:
        util = float((running > 0).mean())
        util_src = f"share of {running.size} scrape(s) with {names['running']} > 0"
        assumptions.append(derived("utilization", util, None, util_src))
    else:
        warnings.append("no DCGM utilization or running-requests gauge in the scrapes: utilization unknown")
    if running.size and running.size < 10 and not util_pct.size:
        warnings.append(f"busy share from {running.size} point samples of {names['running']}: scrape more often "
                        "(or add DCGM) for a finer figure")

    dcgm_gpus = prom.series_count(scrapes, DCGM_UTIL) or prom.series_count(scrapes, DCGM_POWER)
    gpu_model = (prom.label_values(scrapes, DCGM_UTIL, "modelName") or prom.label_values(scrapes, DCGM_POWER, "modelName")
                 or [None])[0]
    if gpus is None and dcgm_gpus:
        n_gpus = int(dcgm_gpus)
        assumptions.append(Assumption(name="gpus", value=n_gpus, source=f"GPUs on the DCGM page ({DCGM_SOURCE})", as_of=None))
    elif gpus is not None:
        v.positive("gpus", gpus, v.MAX_COUNT)
        if gpus != int(gpus):
            raise BillshapeInputError("gpus", gpus, "a whole number of GPUs >= 1")
        n_gpus = int(gpus)
        assumptions.append(user("gpus", n_gpus, None, "gpus"))
        if dcgm_gpus and dcgm_gpus != n_gpus:
            warnings.append(f"`gpus` {n_gpus} differs from the {dcgm_gpus} GPU(s) on the DCGM page")
    else:
        n_gpus = None

    power = prom.gauge_sums(scrapes, DCGM_POWER)
    watts = float(power.mean()) if power.size else None
    kwh = watts / out_tps * 1e6 / 3.6e6 if watts is not None else None

    res = MeasuredServing(
        metrics=[s.source for s in scrapes], engine=engine, served_model=served, scrapes=len(scrapes),
        window_seconds=gen.seconds, timing=gen.timing, counter_resets=resets, output_tokens_per_second=out_tps,
        input_tokens_per_second=in_tps, requests_per_second=rps, input_tokens_per_request=in_per_req,
        output_tokens_per_request=out_per_req, utilization=util, utilization_source=util_src,
        busy_output_tokens_per_second=out_tps / util if util else None,
        mean_requests_running=float(running.mean()) if running.size else None,
        mean_requests_waiting=float(waiting.mean()) if waiting.size else None,
        gpus=n_gpus, gpu=gpu, gpu_model_name=gpu_model, gpu_power_watts=watts, kwh_per_million_output_tokens=kwh,
        model=model, warnings=warnings, assumptions=assumptions)
    if price is not None or provider is not None:
        _price(res, price, provider, tier)
    if model is not None:
        _modelled(res, precision)
    return res


def _price(res: MeasuredServing, price, provider, tier) -> None:
    from billshape.estimates import rental_price

    if res.gpus is None:
        raise BillshapeInputError("gpus", None, "> 0: the GPUs serving the engine (or scrape DCGM with the engine)")
    rate, a = rental_price(res.gpu, price, provider, tier)
    res.assumptions.append(a)
    res.usd_per_gpu_hour = rate
    res.usd_per_hour = rate * res.gpus
    res.usd_per_million_output_tokens = float(usd_per_million_at_rent(res.gpus, rate, res.output_tokens_per_second))
    res.usd_per_million_tokens = float(usd_per_million_at_rent(res.gpus, rate, res.output_tokens_per_second + res.input_tokens_per_second))
    res.assumptions.append(derived("usd_per_million_output_tokens", res.usd_per_million_output_tokens, "USD/M tokens",
                                   "gpus x USD/GPU-hour / (3600 x output tokens/s delivered) x 1e6 (the whole rent on output tokens)"))


def _modelled(res: MeasuredServing, precision: str | None) -> None:
    from billshape import serving

    if res.gpu is None:
        raise BillshapeInputError("gpu", None, "an accelerator name with `model` (the serving model needs the GPU)")
    if res.gpus is None:
        raise BillshapeInputError("gpus", None, "> 0: the GPUs serving the engine, for the modelled figure")
    kw = {}
    if res.input_tokens_per_request is not None and res.output_tokens_per_request is not None:
        kw = {"input_tokens": max(1.0, round(res.input_tokens_per_request)),
              "output_tokens": max(1.0, round(res.output_tokens_per_request))}
    est = serving.serve(model=res.model, gpu=res.gpu, gpus=res.gpus, precision=precision or "bf16", batch="max",
                        price=res.usd_per_gpu_hour, **kw)
    for a in est.assumptions:  # the serving model's inputs: lengths measured here, GPUs and rent already listed
        if a.name in ("rental price", "utilization", "GPUs"):
            continue
        if a.name in ("input tokens", "output tokens") and kw:
            a = Assumption(name=f"modelled {a.name}", value=a.value, unit=a.unit, as_of=None,
                           source="computed: measured tokens per request (token counter / request counter rates)")
        res.assumptions.append(a)
    res.modelled_output_tokens_per_second = float(est.output_tokens_per_second)
    if res.usd_per_gpu_hour is not None:  # on the measured figure's basis: the whole rent over output tokens, at max load
        res.modelled_usd_per_million_output_tokens = float(usd_per_million_at_rent(
            res.gpus, res.usd_per_gpu_hour, res.modelled_output_tokens_per_second))
    res.measured_over_modelled = res.output_tokens_per_second / res.modelled_output_tokens_per_second
    if res.utilization:
        res.busy_over_modelled = res.measured_over_modelled / res.utilization
    if not math.isfinite(res.measured_over_modelled):  # pragma: no cover (the roofline gives a finite > 0 figure)
        res.measured_over_modelled = None
