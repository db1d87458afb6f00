"""Measured serving throughput: read a benchmark file (vLLM, SGLang, GenAI-Perf, AIPerf, trtllm-bench or a simple
CSV; from a path, text, bytes or a file object) and cost it, with the serving model's prediction beside it.
The format readers live in :mod:`billshape.serving_readers`.

Re-exported by :mod:`billshape.serving`."""

from __future__ import annotations

import csv
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from billshape import _validate as v
from billshape import catalog, inference
from billshape.catalog import Constant, Row, load_typed, numeric_fields, read_rows, typed_row
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Assumption, Result, derived, user
from billshape.serving_catalog import (  # noqa: F401
    WEIGHT_PRECISIONS, KV_PRECISIONS, MODES, COMPUTE_PRECISION, EFFICIENCY_NAMES, Architecture, parameter_counts, architectures, _arch_index, architecture, efficiencies, _eff, bytes_per_value, default_efficiency)


def read_measured(path: str | Path | bytes | Any) -> dict[str, Any]:
    """Read a measured serving benchmark in any format :mod:`billshape.serving_readers` knows: vLLM
    ``benchmark_serving`` JSON, SGLang ``bench_serving`` JSON lines, GenAI-Perf / AIPerf exports
    (``profile_export_genai_perf.json`` / ``profile_export_aiperf.json``), a ``trtllm-bench`` report (printed or
    ``--report_json``) or a one-row CSV.

    ``path``: a path, the file's text, bytes or a (binary or text) file object (:func:`billshape.io.read_source`).
    Returns a dict with ``output_tokens_per_second``, ``input_tokens``, ``output_tokens``, ``format`` (the tool),
    ``engine`` and ``engine_version`` (``None`` where the file does not say) and whatever optional keys the file
    had (``model_id``, ``gpu``, ``gpus``, ``tp``, ``precision``, ``ttft_seconds``, ``tpot_seconds``, ...).
    """
    from billshape.io import read_source
    from billshape.serving_readers import known_formats, parse_measured

    text, name = read_source(path, "measured", what="a readable benchmark file (" + known_formats() + ")",
                             not_found_hint=False, not_utf8=("UTF-8 text (a benchmark JSON, report or CSV)",
                                                             "the file is not UTF-8 text"))
    return parse_measured(text, name)


def _measured_field(data: dict, key: str, maximum: float) -> float:
    """A positive number from a measured file, checked with its column/key name (``measured KEY``)."""
    from billshape.serving_readers import field

    return field(data, key, maximum)


def _measured_count(data: dict, key: str) -> int:
    from billshape.serving_readers import count

    return count(data, key)


def _catalog_model(raw: str | None) -> str | None:
    """The catalog architecture a recorded model id names (``meta-llama/Llama-3.3-70B-Instruct`` ->
    ``llama-3.3-70b``), else the id unchanged (serve then names the closest catalogued ones)."""
    from billshape.serving_readers import model_candidates

    if raw is None:
        return None
    index = _arch_index()
    for cand in model_candidates(raw):
        if cand in index:
            return index[cand].name
    return raw


def serve_measured(path: str | Path, *, model: str | None = None, gpu: str | None = None, gpus: float | None = None,
                   tp: float | None = None, precision: str | None = None, kv_precision: str | None = None,
                   price: float | None = None, provider: str | None = None, tier: str | None = None,
                   utilization: float | None = None) -> ServeEstimate:
    """Cost from a measured throughput, with the model's prediction beside it (``measured_over_modeled``).

    Flags given override the file; the file's lengths are used for the prediction (max-load mode). The result
    says which tool wrote the file (``measured_source``) and the engine and version it measured
    (``measured_engine``, ``measured_engine_version``; ``None`` where the file does not record them).
    """
    from billshape.io import source_name
    from billshape.serving import MeasuredServeEstimate, _attach_cost, serve  # (serving imports this module)
    from billshape.serving_readers import gpu_from_name

    m = read_measured(path)
    model = model or m.get("model") or _catalog_model(m.get("model_id"))
    gpu = gpu or m.get("gpu") or (gpu_from_name(m["gpu_name"]) if m.get("gpu_name") else None)
    given_gpus = gpus
    gpus = gpus if gpus is not None else m.get("gpus")
    if model is None:
        raise BillshapeInputError("model", None, "a model name (the measured file does not name a catalogued one)")
    if gpu is None:
        raise BillshapeInputError("gpu", None, "the accelerator the measurement ran on")
    if gpus is None:
        raise BillshapeInputError("gpus", None, f"the GPUs the measurement used (a {m['format']} file does not "
                                  "record them)")
    if utilization is not None:
        v.fraction("utilization", utilization)
    tp_used = tp if tp is not None else m.get("tp")
    # expert parallelism as the file records it (trtllm-bench EP Size), where the serving model can express it
    ep = m.get("ep") if m.get("ep", 1) > 1 and tp_used is not None and m.get("ep") == tp_used else None
    est = serve(model=model, gpu=gpu, gpus=gpus, tp=tp_used,
                precision=precision or m.get("precision"), kv_precision=kv_precision or m.get("kv_precision"),
                input_tokens=m["input_tokens"], output_tokens=m["output_tokens"], batch="max",
                **({"ep": ep} if ep is not None and architecture(model).is_moe else {}))
    est = MeasuredServeEstimate(**dict(est), measured_source=m["format"], measured_engine=m.get("engine"),
                                measured_engine_version=m.get("engine_version"))
    # values read from the file are the measurement's, not typed flags: label them with the file
    from_file = {"input tokens": True, "output tokens": True, "GPUs": m.get("gpus") is not None and given_gpus is None,
                 "tensor parallel": m.get("tp") is not None and tp is None,
                 "weight precision": m.get("precision") is not None and precision is None,
                 "KV precision": m.get("kv_precision") is not None and kv_precision is None,
                 "expert parallel": ep is not None}
    label = f"measured: {source_name(path)} ({m['format']})"
    est.assumptions = [Assumption(name=a.name, value=a.value, unit=a.unit, source=label, as_of=None)
                       if from_file.get(a.name) else a for a in est.assumptions]
    ratio = m["output_tokens_per_second"] / est.output_tokens_per_second
    modeled = est.output_tokens_per_second
    est.source = "measured"
    for key in ("output_tokens_per_second", "input_tokens_per_second"):  # a measurement has no model band
        setattr(est, f"{key}_low", None)
        setattr(est, f"{key}_high", None)
    est.measured_output_tokens_per_second = m["output_tokens_per_second"]
    est.modeled_output_tokens_per_second = modeled
    est.measured_over_modeled = ratio
    est.output_tokens_per_second = m["output_tokens_per_second"]
    est.input_tokens_per_second = est.input_tokens_per_second * ratio
    est.decode_tokens_per_second = est.decode_tokens_per_second * ratio
    if "ttft_seconds" in m:
        est.ttft_seconds = m["ttft_seconds"]
    if "tpot_seconds" in m:
        est.tpot_seconds = m["tpot_seconds"]
    est.assumptions.insert(0, Assumption(name="measured output throughput", value=m["output_tokens_per_second"],
                                         unit="tokens/s", source=label, as_of=None))
    if m.get("engine") or m.get("engine_version"):
        engine = m.get("engine") or "engine not recorded"
        version = m.get("engine_version") or "not recorded in the file"
        est.assumptions.insert(1, Assumption(name="measured engine", value=f"{engine} (version {version})", unit=None,
                                             source=label, as_of=None))
    if m.get("runs"):
        est.assumptions.insert(1, Assumption(name="measured run", value=f"line {m['runs']} of {m['runs']}",
                                             unit=None, source=label + ": the latest run of the JSON lines", as_of=None))
    if price is not None or provider is not None:
        _attach_cost(est, price, provider, tier, utilization, est.input_tokens_per_second, est.decode_tokens_per_second)
    return est
