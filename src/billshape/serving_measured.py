"""Measured serving throughput: read a vLLM ``benchmark_serving`` JSON or a simple CSV (from a path, text,
bytes or a file object) and cost it, with the serving model's prediction beside it.

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
    """Read a measured serving benchmark: a vLLM ``benchmark_serving`` result JSON or a simple CSV.

    ``path``: a path, the file's text, bytes or a (binary or text) file object (:func:`billshape.io.read_source`).

    JSON: vLLM's keys ``output_throughput`` [tokens/s], ``total_input_tokens``, ``total_output_tokens``,
    ``completed`` (mean lengths = totals / completed), optional ``mean_ttft_ms``, ``mean_tpot_ms``, ``model_id``.
    CSV (one row): ``output_tokens_per_second,input_tokens,output_tokens,gpus`` and optional ``gpu``, ``model``,
    ``tp``, ``precision``. Returns a dict with ``output_tokens_per_second``, ``input_tokens``, ``output_tokens`` and
    whatever optional keys the file had.
    """
    from billshape.io import read_source

    text, name = read_source(path, "measured", what="a readable vLLM benchmark_serving JSON or CSV file",
                             not_found_hint=False, not_utf8=("UTF-8 text (a vLLM benchmark_serving JSON or a CSV)",
                                                             "the file is not UTF-8 text"))
    try:
        if name.lower().endswith(".json") or text.lstrip().startswith("{"):
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("the JSON is not an object")
            completed = _measured_field(data, "completed", v.MAX_COUNT)
            out = {"output_tokens_per_second": _measured_field(data, "output_throughput", v.MAX_TOKENS),
                   "input_tokens": _measured_field(data, "total_input_tokens", v.MAX_TOKENS) / completed,
                   "output_tokens": _measured_field(data, "total_output_tokens", v.MAX_TOKENS) / completed,
                   "format": "vllm-benchmark-serving"}
            for key, name in (("mean_ttft_ms", "ttft_seconds"), ("mean_tpot_ms", "tpot_seconds")):
                if data.get(key) is not None:
                    out[name] = _measured_field(data, key, v.MAX_HOURS * 3.6e6) / 1e3
            if data.get("model_id"):
                out["model_id"] = str(data["model_id"])
            for key in ("gpu", "precision"):  # not written by vLLM; accepted when added by hand
                if data.get(key) is not None:
                    out[key] = str(data[key])
            for key in ("gpus", "tp"):
                if data.get(key) is not None:
                    out[key] = _measured_count(data, key)
        else:
            rows = list(csv.DictReader(text.splitlines()))
            if len(rows) != 1:
                raise ValueError(f"{len(rows)} data rows, expected 1")
            row = {k.strip(): (val or "").strip() for k, val in rows[0].items()}
            out = {"output_tokens_per_second": _measured_field(row, "output_tokens_per_second", v.MAX_TOKENS),
                   "input_tokens": _measured_field(row, "input_tokens", v.MAX_TOKENS),
                   "output_tokens": _measured_field(row, "output_tokens", v.MAX_TOKENS),
                   "gpus": _measured_count(row, "gpus"), "format": "csv"}
            for key in ("gpu", "model", "precision"):
                if row.get(key):
                    out[key] = row[key]
            if row.get("tp"):
                out["tp"] = _measured_count(row, "tp")
    except BillshapeInputError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, csv.Error, json.JSONDecodeError) as exc:
        raise BillshapeInputError("measured", name, "a vLLM benchmark_serving JSON (output_throughput, "
                                  "total_input_tokens, total_output_tokens, completed) or a CSV with columns "
                                  "output_tokens_per_second,input_tokens,output_tokens,gpus", f"{type(exc).__name__}: {exc}") from None
    return out


def _measured_field(data: dict, key: str, maximum: float) -> float:
    """A positive number from a measured file, checked with its column/key name (``measured KEY``)."""
    if key not in data:
        raise KeyError(key)
    try:
        value = float(data[key])
    except (TypeError, ValueError):
        raise BillshapeInputError(f"measured {key}", data[key], f"a number in (0, {maximum:g}]") from None
    v.positive(f"measured {key}", value, maximum)
    return value


def _measured_count(data: dict, key: str) -> int:
    value = _measured_field(data, key, v.MAX_COUNT)
    if value != int(value):
        raise BillshapeInputError(f"measured {key}", value, "a whole number of GPUs")
    return int(value)


def serve_measured(path: str | Path, *, model: str | None = None, gpu: str | None = None, gpus: float | None = None,
                   tp: float | None = None, precision: str | None = None, kv_precision: str | None = None,
                   price: float | None = None, provider: str | None = None, tier: str | None = None,
                   utilization: float | None = None) -> ServeEstimate:
    """Cost from a measured throughput, with the model's prediction beside it (``measured_over_modeled``).

    Flags given override the file; the file's lengths are used for the prediction (max-load mode).
    """
    from billshape.io import source_name
    from billshape.serving import ServeEstimate, _attach_cost, serve  # noqa: F401  (serving imports this module)

    m = read_measured(path)
    model = model or m.get("model") or m.get("model_id")
    gpu = gpu or m.get("gpu")
    given_gpus = gpus
    gpus = gpus if gpus is not None else m.get("gpus")
    if model is None:
        raise BillshapeInputError("model", None, "a model name (the measured file does not name a catalogued one)")
    if gpu is None:
        raise BillshapeInputError("gpu", None, "the accelerator the measurement ran on")
    if gpus is None:
        raise BillshapeInputError("gpus", None, "the GPUs the measurement used (vLLM's JSON does not record them)")
    if utilization is not None:
        v.fraction("utilization", utilization)
    est = serve(model=model, gpu=gpu, gpus=gpus, tp=tp if tp is not None else m.get("tp"),
                precision=precision or m.get("precision"), kv_precision=kv_precision,
                input_tokens=m["input_tokens"], output_tokens=m["output_tokens"], batch="max")
    # values read from the file are the measurement's, not typed flags: label them with the file
    from_file = {"input tokens": True, "output tokens": True, "GPUs": m.get("gpus") is not None and given_gpus is None,
                 "tensor parallel": m.get("tp") is not None and tp is None,
                 "weight precision": m.get("precision") is not None and precision is None}
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
                                         unit="tokens/s", source=f"measured: {source_name(path)} ({m['format']})", as_of=None))
    if price is not None or provider is not None:
        _attach_cost(est, price, provider, tier, utilization, est.input_tokens_per_second, est.decode_tokens_per_second)
    return est
