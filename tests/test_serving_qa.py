"""Regression tests for the QA findings on `billshape serve` (lengths, tensor parallelism, bounds, provenance)."""

import json

import pytest
from conftest import assert_one_line_error
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import serving
from billshape.errors import BillshapeInputError

# config.json max_position_embeddings of the cited checkpoints (source column of data/architectures.csv)
PUBLISHED_CONTEXT = {"llama-2-70b": 4096, "llama-3.1-8b": 131072, "llama-3.1-70b": 131072, "llama-3.1-405b": 131072,
                     "mixtral-8x7b": 32768, "mixtral-8x22b": 65536, "deepseek-v3": 163840, "qwen3-235b-a22b": 40960}


@pytest.mark.parametrize("name", sorted(PUBLISHED_CONTEXT))
def test_max_context_tokens_catalogued(name):
    assert serving.architecture(name).max_context_tokens == PUBLISHED_CONTEXT[name]


def test_every_architecture_has_a_context_window():
    for a in serving.architectures():
        assert a.max_context_tokens and a.max_context_tokens >= 4096


def test_length_beyond_context_is_one_line_error(cli):
    res = cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "1", "--precision", "fp8",
              "--input-tokens", "200000", "--output-tokens", "1000", "--batch", "max", "--price", "2")
    assert_one_line_error(res, "--input-tokens/--output-tokens")
    assert "201,000" in res.err and "131,072" in res.err


def test_context_check_comes_before_memory(cli):
    # 1e6 + 1e6 tokens on Llama 3.1 70B: a context error, not "needs at least N GPUs"
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--input-tokens", "1e6",
              "--output-tokens", "1e6", "--json")
    assert_one_line_error(res, "--input-tokens/--output-tokens")
    assert "needs at least" not in res.err


def test_context_limit_exactly_is_accepted():
    est = serving.serve(model="llama-2-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=2048,
                        output_tokens=2048)
    assert est.output_tokens_per_second > 0
    with pytest.raises(BillshapeInputError, match="4,096"):
        serving.serve(model="llama-2-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=2048, output_tokens=2049)


def test_reasoning_tokens_count_against_context():
    with pytest.raises(BillshapeInputError, match="reasoning_multiplier"):
        serving.serve(model="llama-3.1-8b", gpu="h100", input_tokens=1000, output_tokens=10000, reasoning_multiplier=20)


def test_capacity_checks_context_first(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second",
              "5", "--tpot-limit", "0.05", "--input-tokens", "200000")
    assert_one_line_error(res, "--input-tokens/--output-tokens")


def test_tp_must_divide_heads(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "3", "--precision", "fp8")
    assert_one_line_error(res, "--gpus")
    assert "64 attention heads" in res.err
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "6", "--tp", "3", "--precision", "fp8")
    assert_one_line_error(res, "--tp")
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second", "5",
              "--tpot-limit", "0.05", "--tp", "3")
    assert_one_line_error(res, "--tp")


def test_tp_rule_on_kv_heads():
    a = serving.architecture("mixtral-8x22b")  # 48 query heads, 8 KV heads
    assert 48 % 6 == 0 and not a.valid_tensor_parallel(6)  # 6 neither splits nor replicates 8 KV heads
    assert a.valid_tensor_parallel(8) and a.valid_tensor_parallel(16)
    assert serving.architecture("llama-2-13b").valid_tensor_parallel(5)  # MHA, 40 heads


@given(st.sampled_from([a.name for a in serving.architectures()]), st.integers(1, 200))
@settings(max_examples=60, deadline=None)
def test_next_valid_tp_is_valid_and_minimal(name, at_least):
    a = serving.architecture(name)
    t = a.next_valid_tensor_parallel(at_least)
    if t is None:
        assert not any(a.valid_tensor_parallel(x) for x in range(at_least, int(a.heads) + 1))
    else:
        assert t >= at_least and a.valid_tensor_parallel(t) and int(a.heads) % t == 0
        assert not any(a.valid_tensor_parallel(x) for x in range(at_least, t))


def test_needs_more_gpus_suggests_a_valid_tp(cli):
    res = cli("serve", "--model", "llama-3.1-405b", "--gpu", "h100", "--gpus", "2", "--precision", "fp8")
    assert_one_line_error(res, "--gpus")
    assert "needs at least 6" in res.err and "--tp 8" in res.err


def test_utilization_validated_without_price(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "2", "--precision", "fp8",
              "--utilization", "1.5", "--json")
    assert_one_line_error(res, "--utilization")
    with pytest.raises(BillshapeInputError, match="^utilization"):
        serving.serve(model="llama-3.1-8b", gpu="h100", utilization=0)


def _source(d, name):
    return next(a["source"] for a in d["assumptions"] if a["name"] == name)


def test_capacity_provenance_labels(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second", "5",
              "--tpot-limit", "0.05", "--json")
    assert res.code == 0, res.err
    d = res.json()
    for name in ("GPUs", "tensor parallel", "KV precision"):
        assert not _source(d, name).startswith("user input"), name
    assert _source(d, "input tokens") == serving.efficiencies()["default_input_tokens"].source
    assert _source(d, "weight precision") == "user input (--precision)"
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second", "5",
              "--tpot-limit", "0.05", "--tp", "4", "--kv-precision", "fp8", "--input-tokens", "500", "--json")
    d = res.json()
    assert _source(d, "tensor parallel") == "user input (--tp)"
    assert _source(d, "KV precision") == "user input (--kv-precision)"
    assert _source(d, "input tokens") == "user input (--input-tokens)"
    assert not _source(d, "GPUs").startswith("user input")


def test_serve_default_provenance(cli):
    d = cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--json").json()
    assert _source(d, "GPUs") == serving.efficiencies()["default_gpus"].source
    for name in ("tensor parallel", "weight precision", "KV precision"):
        assert _source(d, name).startswith("computed"), name
    assert _source(d, "output tokens") == serving.efficiencies()["default_output_tokens"].source


def test_counts_are_integers_in_json(cli):
    res = cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "8", "--tp", "1", "--precision", "fp8",
              "--json")
    assert res.code == 0, res.err
    raw = res.out
    d = json.loads(raw)
    for key in ("gpus", "tensor_parallel", "replicas", "batch", "max_batch", "expert_parallel"):
        assert type(d[key]) is int, (key, d[key])
    assert '"gpus": 8,' in raw and '"replicas": 8,' in raw
    d = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second", "10",
            "--tpot-limit", "0.05", "--json").json()
    for key in ("gpus", "tensor_parallel", "replicas", "batch_per_replica"):
        assert type(d[key]) is int, (key, d[key])
    assert d["gpus"] == d["replicas"] * d["tensor_parallel"]


def _measured(tmp_path, text, name="m.csv", mode="w"):
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return str(p)


def test_measured_not_utf8_names_flag(cli, tmp_path):
    res = cli("serve", "--measured", _measured(tmp_path, b"\xff\xfe\x00bad"), "--model", "llama-3.1-8b", "--gpu", "h100")
    assert_one_line_error(res, "--measured")
    assert "UTF-8" in res.err


@pytest.mark.parametrize("body,field", [
    ("output_tokens_per_second,input_tokens,output_tokens,gpus\n4205,1000,1000,1e308\n", "--measured gpus"),
    ("output_tokens_per_second,input_tokens,output_tokens,gpus\n4205,abc,1000,2\n", "--measured input_tokens"),
    ("output_tokens_per_second,input_tokens,output_tokens,gpus\n1e300,1000,1000,2\n", "--measured output_tokens_per_second"),
    ("output_tokens_per_second,input_tokens,output_tokens,gpus\n4205,1000,1000,1.5\n", "--measured gpus"),
    ("output_tokens_per_second,input_tokens\n4205,1000\n", "--measured"),
    ("output_tokens_per_second,input_tokens,output_tokens,gpus\n4205,1000,1000,2\n4205,1000,1000,2\n", "--measured"),
])
def test_measured_csv_fields_validated(cli, tmp_path, body, field):
    res = cli("serve", "--measured", _measured(tmp_path, body), "--model", "llama-3.1-70b", "--gpu", "h100",
              "--precision", "fp8", "--price", "2")
    assert_one_line_error(res, field)
    assert "nan" not in res.err


@pytest.mark.parametrize("body,field", [
    ('[1, 2]', "--measured"),
    ('{"completed": 10, "output_throughput": NaN, "total_input_tokens": 1, "total_output_tokens": 1}',
     "--measured output_throughput"),
    ('{"completed": 0, "output_throughput": 100, "total_input_tokens": 1, "total_output_tokens": 1}',
     "--measured completed"),
    ('{"completed": 10, "output_throughput": 100, "total_input_tokens": 1e4, "total_output_tokens": 1e4, "gpus": "x"}',
     "--measured gpus"),
])
def test_measured_json_fields_validated(cli, tmp_path, body, field):
    res = cli("serve", "--measured", _measured(tmp_path, body, "m.json"), "--model", "llama-3.1-70b", "--gpu", "h100",
              "--gpus", "2", "--precision", "fp8")
    assert_one_line_error(res, field)


def test_measured_file_values_labelled_with_file(cli):
    d = cli("serve", "--measured", "examples/measured/simple.csv", "--price", "2.5", "--json").json()
    assert _source(d, "GPUs").startswith("measured: simple.csv")
    assert _source(d, "input tokens").startswith("measured: simple.csv")


@pytest.mark.parametrize("args,field", [
    (("--gpus", "1e300"), "--gpus"),
    (("--gpus", "8", "--tp", "1e300"), "--tp"),
    (("--input-tokens", "1e300"), "--input-tokens"),
    (("--output-tokens", "1e300"), "--output-tokens"),
    (("--price", "1e300"), "--price"),
    (("--reasoning-multiplier", "1e300"), "--reasoning-multiplier"),
    (("--requests-per-second", "1e300", "--tpot-limit", "0.05"), "--requests-per-second"),
    (("--requests-per-second", "5", "--tpot-limit", "1e300"), "--tpot-limit"),
    (("--requests-per-second", "5", "--ttft-limit", "1e300"), "--ttft-limit"),
])
def test_model_path_upper_bounds(cli, args, field):
    res = cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--precision", "fp8", *args, "--json")
    assert_one_line_error(res, field)


@given(rps=st.floats(1e-6, 1e12), tpot=st.floats(0.03, 1e9), price=st.floats(1e-3, 1e6))
@settings(max_examples=15, deadline=None)
def test_capacity_extremes_stay_finite(rps, tpot, price):
    c = serving.capacity(model="llama-3.1-8b", gpu="h100", precision="fp8", requests_per_second=rps, tpot_limit=tpot,
                         price=price, tp=1)
    d = c.to_dict()  # raises on NaN/inf
    assert d["gpus"] >= 1 and d["usd_per_month"] > 0
