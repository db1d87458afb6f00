"""Readers of the serving benchmarks people run: each turns a tool's output text into one measured row.

The formats (detected from the content, not the file name):

* ``vllm-benchmark-serving``: vLLM's ``benchmarks/benchmark_serving.py --save-result`` / ``vllm bench serve
  --save-result`` JSON (``output_throughput``, ``total_input_tokens``, ``total_output_tokens``, ``completed``).
* ``sglang-bench-serving``: SGLang's ``python -m sglang.bench_serving --output-file`` JSON lines, one line per run
  (``output_throughput``, ``input_throughput``, ``total_output_tokens_retokenized``, ``mean_e2e_latency_ms``, ...);
  the last line (the latest run) is read.
* ``genai-perf``: GenAI-Perf's ``profile_export_genai_perf.json`` (metrics as ``{"unit", "avg", "p50", ...}``
  and an ``input_config`` with the model names and the backend).
* ``aiperf``: AIPerf's ``profile_export_aiperf.json`` (the same metric objects; ``input_config.endpoint``,
  ``input_config.loadgen`` and, with ``--gpu-telemetry``, ``telemetry_data`` naming the GPUs).
* ``trtllm-bench``: the ``trtllm-bench throughput`` report, as printed (``= PERFORMANCE OVERVIEW``,
  ``Request Throughput (req/sec)``, ``Total Output Throughput (tokens/sec)``, ``TensorRT LLM Version``, ``TP Size``)
  or as written by ``--report_json`` (``engine``, ``world_info``, ``request_info``, ``performance``).
* ``csv``: one row ``output_tokens_per_second,input_tokens,output_tokens,gpus`` (optional ``gpu``, ``model``,
  ``tp``, ``precision``, ``engine``, ``engine_version``).

Every reader returns a dict with ``output_tokens_per_second`` [tokens/s of the whole deployment], mean
``input_tokens`` and ``output_tokens`` per request, ``format`` (the tool), ``engine`` and ``engine_version``
(``None`` where the file does not say), and whatever else the file records (``model_id``, ``gpu``, ``gpus``,
``tp``, ``precision``, ``kv_precision``, ``ttft_seconds``, ``tpot_seconds``, ``runs``). Text in, dict out: the
caller (:func:`billshape.serving_measured.read_measured`) reads the path, bytes or file object.

References
----------
.. [1] vLLM ``benchmarks/benchmark_serving.py`` (result keys); SGLang ``python/sglang/bench_serving.py`` (the
       ``result`` dict appended to ``--output-file``); NVIDIA GenAI-Perf ``genai_perf/export_data/json_exporter.py``;
       ai-dynamo/aiperf ``docs/tutorials/working-with-profile-exports.md``; NVIDIA TensorRT-LLM
       ``tensorrt_llm/bench/dataclasses/reporting.py`` (``report_statistics``, ``get_statistics_dict``).
"""

from __future__ import annotations

import csv
import json
import re
from typing import Any

from billshape import _validate as v
from billshape.errors import BillshapeInputError

#: the formats :func:`parse_measured` reads, and what each one is
FORMATS = {
    "vllm-benchmark-serving": "vLLM benchmark_serving JSON (output_throughput, total_input_tokens, "
                              "total_output_tokens, completed)",
    "sglang-bench-serving": "SGLang bench_serving JSON lines (output_throughput, input_throughput, "
                            "total_output_tokens_retokenized)",
    "genai-perf": "GenAI-Perf profile_export_genai_perf.json",
    "aiperf": "AIPerf profile_export_aiperf.json",
    "trtllm-bench": "a trtllm-bench throughput report (printed, or --report_json)",
    "csv": "a CSV with columns output_tokens_per_second,input_tokens,output_tokens,gpus",
}

#: engine names as the benchmark tools write them -> billshape's engine names (``--engine``)
ENGINE_NAMES = {
    "vllm": "vllm", "vllm-chat": "vllm", "sglang": "sglang", "sglang-native": "sglang", "sglang-oai": "sglang",
    "sglang-oai-chat": "sglang", "trt": "trtllm", "trtllm": "trtllm", "tensorrtllm": "trtllm",
    "tensorrt-llm": "trtllm", "trt-llm": "trtllm", "lmdeploy": "lmdeploy", "tgi": "tgi",
}

MAX_MS = v.MAX_HOURS * 3.6e6


def known_formats() -> str:
    """The formats as one line, for errors."""
    return "; ".join(FORMATS.values())


def field(data: dict, key: str, maximum: float, name: str | None = None) -> float:
    """A positive number from a measured file, checked under its own key name (``measured KEY``)."""
    if key not in data or data[key] is None:
        raise KeyError(name or key)
    label = f"measured {name or key}"
    try:
        value = float(data[key])
    except (TypeError, ValueError):
        raise BillshapeInputError(label, data[key], f"a number in (0, {maximum:g}]") from None
    v.positive(label, value, maximum)
    return value


def count(data: dict, key: str, name: str | None = None) -> int:
    """A whole positive count (GPUs, parallel sizes) from a measured file."""
    value = field(data, key, v.MAX_COUNT, name)
    if value != int(value):
        raise BillshapeInputError(f"measured {name or key}", value, "a whole number of GPUs")
    return int(value)


def engine_name(raw: Any) -> str | None:
    """billshape's name for an engine as a tool wrote it (``None`` for an unknown or OpenAI-compatible one)."""
    if raw is None:
        return None
    return ENGINE_NAMES.get(str(raw).strip().lower())


def _ms(data: dict, key: str, out: dict, name: str) -> None:
    if data.get(key) is not None:
        out[name] = field(data, key, MAX_MS) / 1e3


def _hand_added(data: dict, out: dict) -> None:
    """Keys the tools do not write but a user may add to the file by hand (``gpu``, ``gpus``, ``tp``, ...)."""
    for key in ("gpu", "precision", "kv_precision"):
        if data.get(key) is not None:
            out[key] = str(data[key])
    for key in ("gpus", "tp"):
        if data.get(key) is not None:
            out[key] = count(data, key)
    if data.get("engine") is not None:
        out["engine"] = engine_name(data["engine"]) or str(data["engine"]).strip().lower()
    if data.get("engine_version") is not None:
        out["engine_version"] = str(data["engine_version"])


# --------------------------------------------------------------------------------------------------------------
# vLLM and SGLang: one flat JSON object per run
# --------------------------------------------------------------------------------------------------------------

SGLANG_KEYS = ("total_output_tokens_retokenized", "mean_e2e_latency_ms", "accept_length")


def read_vllm(data: dict) -> dict[str, Any]:
    """vLLM ``benchmark_serving`` result: totals over ``completed`` requests give the mean lengths."""
    completed = field(data, "completed", v.MAX_COUNT)
    out = {"output_tokens_per_second": field(data, "output_throughput", v.MAX_TOKENS),
           "input_tokens": field(data, "total_input_tokens", v.MAX_TOKENS) / completed,
           "output_tokens": field(data, "total_output_tokens", v.MAX_TOKENS) / completed,
           "format": "vllm-benchmark-serving", "engine": engine_name(data.get("backend")), "engine_version": None}
    _ms(data, "mean_ttft_ms", out, "ttft_seconds")
    _ms(data, "mean_tpot_ms", out, "tpot_seconds")
    if data.get("model_id"):
        out["model_id"] = str(data["model_id"])
    _hand_added(data, out)
    return out


def read_sglang(data: dict) -> dict[str, Any]:
    """SGLang ``bench_serving`` result line; ``backend`` names the engine benchmarked (``sglang``, ``vllm``,
    ``trt``, ...). SGLang records neither the model nor the engine version: add ``model``/``engine_version``
    keys by hand, or give the flags."""
    completed = field(data, "completed", v.MAX_COUNT)
    out = {"output_tokens_per_second": field(data, "output_throughput", v.MAX_TOKENS),
           "input_tokens": field(data, "total_input_tokens", v.MAX_TOKENS) / completed,
           "output_tokens": field(data, "total_output_tokens", v.MAX_TOKENS) / completed,
           "format": "sglang-bench-serving", "engine": engine_name(data.get("backend")), "engine_version": None}
    _ms(data, "mean_ttft_ms", out, "ttft_seconds")
    _ms(data, "mean_tpot_ms", out, "tpot_seconds")
    for key in ("model", "model_id", "model_path"):
        if data.get(key):
            out["model_id"] = str(data[key])
            break
    _hand_added(data, out)
    return out


# --------------------------------------------------------------------------------------------------------------
# GenAI-Perf and AIPerf: metric objects {"unit", "avg", ...} and an input_config
# --------------------------------------------------------------------------------------------------------------


def _avg(data: dict, key: str, maximum: float) -> float:
    metric = data.get(key)
    if not isinstance(metric, dict):
        raise KeyError(key)
    return field(metric, "avg", maximum, f"{key}.avg")


def _first(names: Any) -> str | None:
    if isinstance(names, list) and names:
        return str(names[0])
    return str(names) if isinstance(names, str) and names else None


def is_perf_export(data: dict) -> bool:
    return isinstance(data.get("output_token_throughput"), dict) and isinstance(data.get("input_config"), dict)


def is_aiperf(data: dict) -> bool:
    cfg = data["input_config"]
    return ("loadgen" in cfg or str(cfg.get("cli_command", "")).lstrip().startswith("aiperf")
            or (isinstance(cfg.get("endpoint"), dict) and "model_names" in cfg["endpoint"]) or "telemetry_data" in data)


def read_perf_export(data: dict) -> dict[str, Any]:
    """GenAI-Perf or AIPerf aggregate export: mean throughput, lengths, TTFT and inter-token latency."""
    aiperf = is_aiperf(data)
    cfg = data["input_config"]
    endpoint = cfg.get("endpoint") if isinstance(cfg.get("endpoint"), dict) else {}
    out = {"output_tokens_per_second": _avg(data, "output_token_throughput", v.MAX_TOKENS),
           "input_tokens": _avg(data, "input_sequence_length", v.MAX_TOKENS),
           "output_tokens": _avg(data, "output_sequence_length", v.MAX_TOKENS),
           "format": "aiperf" if aiperf else "genai-perf", "engine": None, "engine_version": None}
    for key, name in (("time_to_first_token", "ttft_seconds"), ("inter_token_latency", "tpot_seconds")):
        if isinstance(data.get(key), dict) and data[key].get("avg") is not None:
            out[name] = _avg(data, key, MAX_MS) / 1e3
    model = _first(endpoint.get("model_names")) or _first(cfg.get("model_names")) or _first(cfg.get("model"))
    if model:
        out["model_id"] = model
    # GenAI-Perf names the backend behind Triton (tensorrtllm, vllm); an OpenAI-compatible endpoint names none
    service = str(endpoint.get("service_kind") or cfg.get("service_kind") or "").lower()
    backend = endpoint.get("backend") or cfg.get("backend")
    if service != "openai":
        out["engine"] = engine_name(backend)
    if aiperf:
        gpus = _telemetry_gpus(data.get("telemetry_data"))
        if gpus:
            out["gpus"] = len(gpus)
            names = {g for g in gpus if g}
            if len(names) == 1:
                out["gpu_name"] = names.pop()
    elif isinstance(data.get("telemetry_stats"), dict):
        ids = {k for metric in data["telemetry_stats"].values() if isinstance(metric, dict)
               for k in metric if re.fullmatch(r"gpu\d+", str(k))}
        if ids:
            out["gpus"] = len(ids)
    _hand_added(data, out)
    return out


def _telemetry_gpus(telemetry: Any) -> list[str | None]:
    """The GPUs AIPerf's ``--gpu-telemetry`` saw (their ``gpu_name``), over every DCGM endpoint."""
    if not isinstance(telemetry, dict) or not isinstance(telemetry.get("endpoints"), dict):
        return []
    out = []
    for endpoint in telemetry["endpoints"].values():
        gpus = endpoint.get("gpus") if isinstance(endpoint, dict) else None
        if isinstance(gpus, dict):
            out += [str(g.get("gpu_name")) if isinstance(g, dict) and g.get("gpu_name") else None for g in gpus.values()]
    return out


# --------------------------------------------------------------------------------------------------------------
# trtllm-bench: the printed report, or --report_json
# --------------------------------------------------------------------------------------------------------------

#: trtllm-bench's quantization / dtype names -> billshape's weight precisions
TRTLLM_PRECISION = {"fp8": "fp8", "fp8_block_scales": "fp8", "fp8_per_channel_per_token": "fp8", "nvfp4": "fp4",
                    "fp4": "fp4", "w4a16_awq": "int4", "w4a16": "int4", "w4a8_awq": "int4", "int4_awq": "int4",
                    "bfloat16": "bf16", "bf16": "bf16", "float16": "fp16", "fp16": "fp16"}
TRTLLM_KV = {"fp8": "fp8", "int8": "int8", "nvfp4": "fp4", "fp4": "fp4"}

#: (label in the printed report, key) — a line ``LABEL: VALUE`` (tabs or spaces; log prefixes ignored)
TRTLLM_LINES = {
    "model": "Model", "version": r"TensorRT[- ]LLM Version", "dtype": "Dtype", "kv_cache_dtype": "KV Cache Dtype",
    "quantization": "Quantization", "tp_size": "TP Size", "pp_size": "PP Size", "ep_size": "EP Size",
    "num_requests": "Number of requests", "avg_input_length": r"Average Input Length \(tokens\)",
    "avg_output_length": r"Average Output Length \(tokens\)",
    "request_throughput_req_s": r"Request Throughput \(req/sec\)",
    "system_output_throughput_tok_s": r"Total Output Throughput \(tokens/sec\)",
    "token_throughput_tok_s": r"Token Throughput \(tokens/sec\)",  # reports before TensorRT-LLM 0.16
    "avg_ttft_ms": r"Average time-to-first-token \[TTFT\] \(ms\)",
    "avg_tpot_ms": r"Average time-per-output-token \[TPOT\] \(ms\)",
}


def is_trtllm_text(text: str) -> bool:
    return "PERFORMANCE OVERVIEW" in text and "Request Throughput (req/sec)" in text


def _trtllm_text_fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, label in TRTLLM_LINES.items():
        # anchored at a line start or after a log prefix ("[TRT-LLM] [I] "): "Model Path" is not "Model"
        m = re.search(rf"(?:^|\]\s*|\n)\s*{label}:[ \t]*([^\n]*)", text, flags=re.MULTILINE)
        if m and m.group(1).strip():
            out[key] = m.group(1).strip()
    return out


def read_trtllm(text: str | None = None, report: dict | None = None) -> dict[str, Any]:
    """A ``trtllm-bench throughput`` report: the printed text or the ``--report_json`` dict.

    ``Total Output Throughput`` is the deployment's output tokens/s (all ``TP x PP`` GPUs); the average lengths
    are the dataset's. The engine is TensorRT-LLM, its version the report's ``TensorRT LLM Version``.
    """
    if report is not None:
        engine, world = report.get("engine") or {}, report.get("world_info") or {}
        req, perf = report.get("request_info") or {}, report.get("performance") or {}
        stream = report.get("streaming_metrics") or {}
        flat: dict[str, Any] = {"model": engine.get("model"), "version": engine.get("version"),
                                "dtype": engine.get("dtype"), "kv_cache_dtype": engine.get("kv_cache_dtype"),
                                "quantization": engine.get("quantization"), "backend": engine.get("backend"),
                                **{k: world.get(k) for k in ("tp_size", "pp_size", "ep_size", "world_size")},
                                "avg_input_length": req.get("avg_input_length"),
                                "avg_output_length": req.get("avg_output_length"),
                                "system_output_throughput_tok_s": perf.get("system_output_throughput_tok_s"),
                                "avg_ttft_ms": stream.get("avg_ttft_ms"), "avg_tpot_ms": stream.get("avg_tpot_ms")}
    else:
        flat = _trtllm_text_fields(text or "")
        flat["backend"] = "Pytorch" if "PYTORCH BACKEND" in (text or "") else ("TRT" if "ENGINE DETAILS" in (text or "") else None)
        if "system_output_throughput_tok_s" not in flat and "token_throughput_tok_s" in flat:
            flat["system_output_throughput_tok_s"] = flat["token_throughput_tok_s"]
    out: dict[str, Any] = {
        "output_tokens_per_second": field(flat, "system_output_throughput_tok_s", v.MAX_TOKENS,
                                          "Total Output Throughput (tokens/sec)"),
        "input_tokens": field(flat, "avg_input_length", v.MAX_TOKENS, "Average Input Length (tokens)"),
        "output_tokens": field(flat, "avg_output_length", v.MAX_TOKENS, "Average Output Length (tokens)"),
        "format": "trtllm-bench", "engine": "trtllm",
        "engine_version": str(flat["version"]).strip() if flat.get("version") not in (None, "") else None,
    }
    if flat.get("backend"):
        out["engine_backend"] = str(flat["backend"])
    _ms(flat, "avg_ttft_ms", out, "ttft_seconds")
    _ms(flat, "avg_tpot_ms", out, "tpot_seconds")
    if flat.get("model"):
        out["model_id"] = str(flat["model"])
    tp = count(flat, "tp_size", "TP Size") if flat.get("tp_size") not in (None, "") else None
    pp = count(flat, "pp_size", "PP Size") if flat.get("pp_size") not in (None, "") else 1
    if tp is not None:
        out["tp"] = tp
        out["gpus"] = count(flat, "world_size", "world_size") if flat.get("world_size") not in (None, "") else tp * pp
        if pp > 1:
            out["pp"] = pp
    if flat.get("ep_size") not in (None, ""):
        out["ep"] = count(flat, "ep_size", "EP Size")
    quant = str(flat.get("quantization") or "").strip().lower()
    dtype = str(flat.get("dtype") or "").strip().lower()
    precision = TRTLLM_PRECISION.get(quant) or (TRTLLM_PRECISION.get(dtype) if quant in ("", "none") else None)
    if precision:
        out["precision"] = precision
    kv = TRTLLM_KV.get(str(flat.get("kv_cache_dtype") or "").strip().lower())
    if kv:
        out["kv_precision"] = kv
    return out


# --------------------------------------------------------------------------------------------------------------
# CSV and the dispatcher
# --------------------------------------------------------------------------------------------------------------

CSV_COLUMNS = ("output_tokens_per_second", "input_tokens", "output_tokens", "gpus")


def read_csv(text: str) -> dict[str, Any]:
    rows = list(csv.DictReader(text.splitlines()))
    if len(rows) != 1:
        raise ValueError(f"{len(rows)} data rows, expected 1")
    row = {(k or "").strip(): (val or "").strip() for k, val in rows[0].items()}
    out = {"output_tokens_per_second": field(row, "output_tokens_per_second", v.MAX_TOKENS),
           "input_tokens": field(row, "input_tokens", v.MAX_TOKENS),
           "output_tokens": field(row, "output_tokens", v.MAX_TOKENS),
           "gpus": count(row, "gpus"), "format": "csv",
           "engine": (engine_name(row["engine"]) or row["engine"].lower()) if row.get("engine") else None,
           "engine_version": row.get("engine_version") or None}
    for key in ("gpu", "model", "precision"):
        if row.get(key):
            out[key] = row[key]
    if row.get("tp"):
        out["tp"] = count(row, "tp")
    return out


def _json_values(text: str) -> list[Any] | None:
    """One JSON value, or JSON lines (SGLang appends a line per run); ``None`` when the text is not JSON."""
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:
        pass
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    try:
        return [json.loads(ln) for ln in lines]
    except json.JSONDecodeError:
        return None


def detect(text: str) -> tuple[str, Any]:
    """The format of ``text`` and its parsed content (a dict, the text, or ``None`` for an unknown format)."""
    stripped = text.lstrip()
    if is_trtllm_text(text):  # before JSON: the printed report may open with a "[date] [TRT-LLM] [I]" log prefix
        return "trtllm-bench", text
    if stripped.startswith(("{", "[")):
        values = _json_values(stripped)
        if values is None:
            return "json-error", None
        data = values[-1]
        if not isinstance(data, dict):
            return "unknown", None
        if is_perf_export(data):
            return ("aiperf" if is_aiperf(data) else "genai-perf"), data
        if isinstance(data.get("engine"), dict) and isinstance(data.get("performance"), dict):
            return "trtllm-bench", data
        if "output_throughput" in data:
            sglang = len(values) > 1 or (any(k in data for k in SGLANG_KEYS) and "model_id" not in data)
            return ("sglang-bench-serving" if sglang else "vllm-benchmark-serving"), data
        return "unknown", None
    first = stripped.splitlines()[0] if stripped else ""
    if "output_tokens_per_second" in first and "," in first:
        return "csv", text
    return "unknown", None


def parse_measured(text: str, name: str) -> dict[str, Any]:
    """Read a measured serving benchmark from its text (``name`` labels errors).

    Raises :class:`BillshapeInputError` (field ``measured``) for a file in no known format, naming the formats it
    reads, and for a known format that lacks a key it needs (naming them).
    """
    fmt, content = detect(text)
    if fmt == "unknown":
        raise BillshapeInputError("measured", name, "a benchmark file in a format billshape reads: " + known_formats(),
                                  "its content matches none of them")
    if fmt == "json-error":
        raise BillshapeInputError("measured", name, "valid JSON: " + known_formats(), "the JSON does not parse")
    try:
        if fmt == "csv":
            out = read_csv(content)
        elif fmt == "trtllm-bench":
            out = read_trtllm(report=content) if isinstance(content, dict) else read_trtllm(text=content)
        elif fmt in ("genai-perf", "aiperf"):
            out = read_perf_export(content)
        elif fmt == "sglang-bench-serving":
            out = read_sglang(content)
            runs = len(_json_values(text.lstrip()) or [])
            if runs > 1:
                out["runs"] = runs
        else:
            out = read_vllm(content)
    except BillshapeInputError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, csv.Error) as exc:
        raise BillshapeInputError("measured", name, FORMATS[fmt], f"{type(exc).__name__}: {exc}") from None
    return out


# --------------------------------------------------------------------------------------------------------------
# Names in the files -> catalog names
# --------------------------------------------------------------------------------------------------------------

_MODEL_SUFFIXES = ("-instruct", "-chat", "-it", "-hf", "-base", "-fp8", "-fp4", "-nvfp4", "-bf16", "-awq", "-int4",
                   "-w4a16", "-gptq", "-fp8-dynamic", "-original", "-thinking")


def model_candidates(raw: str) -> list[str]:
    """Names to try in the architecture catalog for a model id a tool recorded
    (``meta-llama/Llama-3.3-70B-Instruct`` -> ``llama-3.3-70b-instruct``, ``llama-3.3-70b``)."""
    name = str(raw).strip().lower()
    out = [name]
    base = name.rsplit("/", 1)[-1]
    out.append(base)
    changed = True
    while changed:
        changed = False
        for s in _MODEL_SUFFIXES:
            if base.endswith(s):
                base = base[: -len(s)]
                out.append(base)
                changed = True
    base = re.sub(r"-(\d{4})$", "", base)  # release dates (-2507, -0905)
    out.append(base)
    return list(dict.fromkeys(out))


#: GPU names as nvidia-smi/DCGM report them -> catalog names (first match wins)
_GPU_PATTERNS = (("gb200", "gb200"), ("b300", "b300"), ("b200", "b200"), ("h200", "h200-sxm"),
                 ("h100 pcie", "h100-pcie"), ("h100 nvl", "h100-pcie"), ("h100", "h100-sxm"), ("h800", "h800-sxm"),
                 ("a100-sxm4-40gb", "a100-40gb-sxm"), ("a100 40gb", "a100-40gb-sxm"), ("a100", "a100-80gb-sxm"),
                 ("l40s", "l40s"), (" l4", "l4"), ("mi355x", "mi355x"), ("mi325x", "mi325x"), ("mi300x", "mi300x"),
                 ("rtx pro 6000 blackwell server", "rtx-pro-6000"))


def gpu_from_name(raw: str) -> str | None:
    """The catalog GPU for a device name (``NVIDIA H100 80GB HBM3`` -> ``h100-sxm``), or ``None``."""
    name = " " + str(raw).strip().lower().replace("_", " ")
    for pattern, gpu in _GPU_PATTERNS:
        if pattern in name:
            return gpu
    return None
