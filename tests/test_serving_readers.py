"""`serve --measured` reads the benchmark outputs people already have (issue 12 item 6): SGLang bench_serving,
GenAI-Perf, AIPerf and trtllm-bench, besides vLLM's JSON and the CSV, and says which tool, engine and version."""

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import serving
from billshape.errors import BillshapeInputError
from billshape.serving_measured import read_measured
from billshape.serving_readers import gpu_from_name, model_candidates, parse_measured
from conftest import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT / "examples" / "serving" / "measured"
OLD = ROOT / "examples" / "measured"

# file -> (format, engine, version, input tokens, output tokens, output tokens/s)
EXPECTED = {
    "sglang_bench_serving_qwen3-235b_h100.jsonl": ("sglang-bench-serving", "sglang", None, 1000, 1000, 4968.7),
    "profile_export_genai_perf.json": ("genai-perf", "trtllm", None, 1000, 1000, 9318.52),
    "profile_export_aiperf.json": ("aiperf", None, None, 550, 100, 3317.85),
    "trtllm_bench_deepseek-r1_b200.txt": ("trtllm-bench", "trtllm", "1.0.0", 1000, 1000, 31284.7102),
    "trtllm_bench_report_llama-3.3-70b_h100.json": ("trtllm-bench", "trtllm", "1.0.0", 1000, 1000, 4134.4),
}
# the flags each sample needs (what its tool does not record)
FLAGS = {
    "sglang_bench_serving_qwen3-235b_h100.jsonl": ["--model", "qwen3-235b-a22b", "--gpu", "h100", "--gpus", "8",
                                                   "--precision", "fp8"],
    "profile_export_genai_perf.json": ["--gpu", "h100", "--precision", "fp8"],
    "profile_export_aiperf.json": ["--precision", "fp8"],
    "trtllm_bench_deepseek-r1_b200.txt": ["--gpu", "b200"],
    "trtllm_bench_report_llama-3.3-70b_h100.json": ["--gpu", "h100"],
}


def test_every_sample_is_tested_and_documented():
    shipped = {p.name for p in HERE.iterdir() if p.name != "README.md"}
    assert shipped == set(EXPECTED)
    readme = (HERE / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in shipped)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_reads_as_its_format(name):
    fmt, engine, version, i_len, o_len, tps = EXPECTED[name]
    m = read_measured(HERE / name)
    assert (m["format"], m["engine"], m["engine_version"]) == (fmt, engine, version)
    assert (m["input_tokens"], m["output_tokens"], m["output_tokens_per_second"]) == (i_len, o_len, tps)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_path_text_bytes_and_file_object_read_the_same(name):
    path = HERE / name
    raw = path.read_bytes()
    from_path = read_measured(path)
    assert read_measured(raw) == from_path
    assert read_measured(io.BytesIO(raw)) == from_path
    assert read_measured(raw.decode()) == from_path
    assert read_measured(io.StringIO(raw.decode())) == from_path


def test_old_examples_keep_their_formats():
    assert read_measured(OLD / "vllm_llama-3.1-8b_h100.json")["format"] == "vllm-benchmark-serving"
    assert read_measured(OLD / "vllm_llama-3.1-8b_h100.json")["engine"] == "vllm"
    csv = read_measured(OLD / "simple.csv")
    assert csv["format"] == "csv" and csv["engine"] is None and csv["output_tokens_per_second"] == 4205


def test_sglang_reads_the_latest_run_of_the_lines():
    m = read_measured(HERE / "sglang_bench_serving_qwen3-235b_h100.jsonl")
    lines = (HERE / "sglang_bench_serving_qwen3-235b_h100.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    assert m["runs"] == 2 and m["output_tokens_per_second"] == last["output_throughput"]
    assert m["tpot_seconds"] == pytest.approx(last["mean_tpot_ms"] / 1e3)
    one = parse_measured(lines[0], "one-line")  # a single run is told from vLLM's JSON by SGLang's own keys
    assert one["format"] == "sglang-bench-serving" and "runs" not in one


def test_vllm_json_with_sglang_like_keys_stays_vllm():
    data = json.loads((OLD / "vllm_llama-3.1-8b_h100.json").read_text())
    assert "model_id" in data
    assert parse_measured(json.dumps(data), "v")["format"] == "vllm-benchmark-serving"


def test_trtllm_text_report_details():
    m = read_measured(HERE / "trtllm_bench_deepseek-r1_b200.txt")
    assert (m["tp"], m["gpus"], m["ep"], m["precision"], m["kv_precision"]) == (8, 8, 8, "fp4", "fp8")
    assert m["model_id"] == "nvidia/DeepSeek-R1-FP4" and m["engine_backend"] == "Pytorch"
    # the label "Model" is not read from "Model Path", nor "Dtype" from "KV Cache Dtype"
    assert "/models" not in m["model_id"]


def test_trtllm_old_report_token_throughput_and_pp():
    text = ("= ENGINE DETAILS\nModel:\t\t\tmeta-llama/Llama-3.1-70B\nTensorRT-LLM Version:\t0.15.0\nDtype:\t\t\tbfloat16\n"
            "Quantization:\t\tNone\nTP Size:                2\nPP Size:                2\n"
            "= PERFORMANCE OVERVIEW\nNumber of requests:             100\n"
            "Average Input Length (tokens):  128.0000\nAverage Output Length (tokens): 2048.0000\n"
            "Token Throughput (tokens/sec):  3011.5\nRequest Throughput (req/sec):   1.4705\n")
    m = parse_measured(text, "old")
    assert (m["engine_version"], m["tp"], m["pp"], m["gpus"], m["precision"]) == ("0.15.0", 2, 2, 4, "bf16")
    assert m["output_tokens_per_second"] == 3011.5 and m["engine_backend"] == "TRT"


def test_genai_perf_older_flat_input_config():
    data = json.loads((HERE / "profile_export_genai_perf.json").read_text())
    data["input_config"] = {"model": ["llama-3.1-8b"], "backend": "vllm", "service_kind": "triton"}
    data.pop("telemetry_stats")
    m = parse_measured(json.dumps(data), "g")
    assert (m["format"], m["engine"], m["model_id"]) == ("genai-perf", "vllm", "llama-3.1-8b") and "gpus" not in m
    data["input_config"]["service_kind"] = "openai"  # an OpenAI endpoint: the backend field says nothing
    assert parse_measured(json.dumps(data), "g")["engine"] is None


def test_aiperf_telemetry_names_the_gpus():
    m = read_measured(HERE / "profile_export_aiperf.json")
    assert m["gpus"] == 1 and m["gpu_name"] == "NVIDIA H200" and m["model_id"] == "Qwen/Qwen3-32B-FP8"


@pytest.mark.parametrize("raw,catalog", [("meta-llama/Llama-3.3-70B-Instruct", "llama-3.3-70b"),
                                         ("Qwen/Qwen3-32B-FP8", "qwen3-32b"), ("nvidia/DeepSeek-R1-FP4", "deepseek-v3"),
                                         ("openai/gpt-oss-120b", "gpt-oss-120b"), ("llama-3.1-8b", "llama-3.1-8b")])
def test_model_ids_map_to_the_catalog(raw, catalog):
    names = model_candidates(raw)
    assert any(serving._arch_index().get(n) is not None and serving._arch_index()[n].name == catalog for n in names)


@pytest.mark.parametrize("raw,gpu", [("NVIDIA H100 80GB HBM3", "h100-sxm"), ("NVIDIA H100 PCIe", "h100-pcie"),
                                     ("NVIDIA H200", "h200-sxm"), ("NVIDIA B200", "b200"), ("NVIDIA A100-SXM4-40GB", "a100-40gb-sxm"),
                                     ("NVIDIA A100-SXM4-80GB", "a100-80gb-sxm"), ("NVIDIA L4", "l4"),
                                     ("AMD Instinct MI300X", "mi300x"), ("NVIDIA RTX 6000 Ada Generation", None)])
def test_gpu_names(raw, gpu):
    assert gpu_from_name(raw) == gpu


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_json_says_tool_engine_and_version(cli, name):
    fmt, engine, version, *_ = EXPECTED[name]
    res = cli("serve", "--measured", HERE / name, *FLAGS[name], "--price", "2.5", "--json")
    assert res.code == 0, res.err
    d = json.loads(res.out)
    assert (d["measured_source"], d["measured_engine"], d["measured_engine_version"]) == (fmt, engine, version)
    assert d["source"] == "measured" and d["output_tokens_per_second"] == EXPECTED[name][5]
    assert d["usd_per_million_output_tokens"] > 0 and d["modeled_output_tokens_per_second"] > 0
    labels = {a["name"]: a["source"] for a in d["assumptions"]}
    assert labels["measured output throughput"].endswith(f"({fmt})")


def test_cli_screen_names_the_tool(cli):
    res = cli("serve", "--measured", HERE / "trtllm_bench_deepseek-r1_b200.txt", "--gpu", "b200")
    assert res.code == 0 and "trtllm-bench (trtllm 1.0.0)" in res.out


def test_file_values_are_labelled_as_measured(cli):
    res = cli("serve", "--measured", HERE / "trtllm_bench_deepseek-r1_b200.txt", "--gpu", "b200", "--json")
    src = {a["name"]: a["source"] for a in json.loads(res.out)["assumptions"]}
    for name in ("GPUs", "tensor parallel", "weight precision", "KV precision", "expert parallel"):
        assert src[name].startswith("measured: trtllm_bench_deepseek-r1_b200.txt"), name


def test_unknown_format_names_the_formats(cli, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("throughput was about 4000 tokens per second\n")
    res = cli("serve", "--measured", p, "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1")
    assert_one_line_error(res, "--measured")
    for fmt in ("vLLM", "SGLang", "GenAI-Perf", "AIPerf", "trtllm-bench", "CSV"):
        assert fmt in res.err


@pytest.mark.parametrize("name,mutate,key", [
    ("profile_export_genai_perf.json", lambda d: d.pop("output_token_throughput") and None, None),
    ("profile_export_aiperf.json", lambda d: d["input_sequence_length"].pop("avg"), "input_sequence_length.avg"),
    ("trtllm_bench_report_llama-3.3-70b_h100.json", lambda d: d["performance"].pop("system_output_throughput_tok_s"),
     "Total Output Throughput"),
])
def test_known_format_missing_a_key_is_one_line(cli, tmp_path, name, mutate, key):
    data = json.loads((HERE / name).read_text())
    mutate(data)
    p = tmp_path / name
    p.write_text(json.dumps(data))
    res = cli("serve", "--measured", p, "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1")
    assert_one_line_error(res, "--measured")
    if key:
        assert key in res.err


def test_bad_values_name_the_key(tmp_path):
    text = (HERE / "trtllm_bench_deepseek-r1_b200.txt").read_text().replace("31284.7102", "-5")
    with pytest.raises(BillshapeInputError, match="Total Output Throughput"):
        parse_measured(text, "neg")
    line = json.loads((HERE / "sglang_bench_serving_qwen3-235b_h100.jsonl").read_text().splitlines()[0])
    line["completed"] = "many"
    with pytest.raises(BillshapeInputError, match="^measured completed"):
        parse_measured(json.dumps(line), "s")


def test_broken_json_is_one_line(cli, tmp_path):
    p = tmp_path / "cut.json"
    p.write_text((HERE / "profile_export_aiperf.json").read_text()[:300])
    res = cli("serve", "--measured", p, "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1")
    assert_one_line_error(res, "--measured")


@settings(max_examples=60, deadline=None)
@given(otp=st.floats(1.0, 1e6), isl=st.floats(1.0, 1e5), osl=st.floats(1.0, 1e5), ttft=st.floats(0.01, 1e5))
def test_perf_export_numbers_round_trip(otp, isl, osl, ttft):
    data = json.loads((HERE / "profile_export_genai_perf.json").read_text())
    data["output_token_throughput"]["avg"] = otp
    data["input_sequence_length"]["avg"] = isl
    data["output_sequence_length"]["avg"] = osl
    data["time_to_first_token"]["avg"] = ttft
    m = parse_measured(json.dumps(data), "h")
    assert (m["output_tokens_per_second"], m["input_tokens"], m["output_tokens"]) == (otp, isl, osl)
    assert m["ttft_seconds"] == pytest.approx(ttft / 1e3)


@settings(max_examples=60, deadline=None)
@given(completed=st.integers(1, 10_000), i_len=st.integers(1, 50_000), o_len=st.integers(1, 20_000))
def test_sglang_mean_lengths_are_totals_over_completed(completed, i_len, o_len):
    line = json.loads((HERE / "sglang_bench_serving_qwen3-235b_h100.jsonl").read_text().splitlines()[0])
    line.update(completed=completed, total_input_tokens=completed * i_len, total_output_tokens=completed * o_len)
    m = parse_measured(json.dumps(line), "s")
    assert m["input_tokens"] == pytest.approx(i_len) and m["output_tokens"] == pytest.approx(o_len)


def test_csv_may_name_its_engine_and_version():
    text = ("output_tokens_per_second,input_tokens,output_tokens,gpus,engine,engine_version\n"
            "4205,1000,1000,2,TensorRT-LLM,1.0\n")
    m = parse_measured(text, "c")
    assert (m["format"], m["engine"], m["engine_version"], m["gpus"]) == ("csv", "trtllm", "1.0", 2)


def test_genai_perf_counts_the_telemetry_gpus():
    assert read_measured(HERE / "profile_export_genai_perf.json")["gpus"] == 1
