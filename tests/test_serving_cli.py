from conftest import assert_one_line_error

KEYS = ("output_tokens_per_second", "input_tokens_per_second", "ttft_seconds", "tpot_seconds", "max_batch",
        "kv_cache_bytes_per_token", "bound", "params_total", "params_active", "usd_per_million_output_tokens",
        "usd_per_million_input_tokens", "assumptions")


def test_serve_model_json_keys(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "2", "--precision", "fp8",
              "--input-tokens", "1000", "--output-tokens", "1000", "--batch", "max", "--price", "2.5", "--json")
    assert res.code == 0, res.err
    d = res.json()
    for k in KEYS:
        assert k in d
    assert d["mode"] == "max-load" and d["tensor_parallel"] == 2
    # published: TensorRT-LLM v1.0 Llama 3.3 70B, 2 x H100 FP8, 1000/1000: 4,205 tokens/s (same architecture)
    assert abs(d["output_tokens_per_second"] / 4205 - 1) < 0.25


def test_serve_static_batch_and_provider(cli):
    res = cli("serve", "--model", "llama-2-70b", "--gpu", "h100", "--gpus", "2", "--tp", "2", "--precision", "fp8",
              "--input-tokens", "2048", "--output-tokens", "2048", "--batch", "64", "--mode", "static",
              "--provider", "aws", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["batch"] == 64 and d["usd_per_million_output_tokens"] > 0


def test_old_throughput_path_still_works(cli):
    res = cli("serve", "--tokens-per-second", "14800", "--gpus", "8", "--price", "2", "--utilization", "1", "--json")
    assert res.code == 0 and abs(res.json()["usd_per_million_output_tokens"] - 0.30) < 0.005


def test_measured_example(cli):
    res = cli("serve", "--measured", "examples/measured/simple.csv", "--price", "2.5", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["source"] == "measured" and d["output_tokens_per_second"] == 4205
    assert d["modeled_output_tokens_per_second"] > 0 and d["measured_over_modeled"] > 0


def test_capacity_path(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second", "5",
              "--tpot-limit", "0.05", "--price", "2.5", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["gpus"] >= 1 and d["usd_per_month"] > 0 and d["tpot_seconds"] <= 0.05


def test_too_large_model_one_line(cli):
    res = cli("serve", "--model", "llama-3.1-405b", "--gpu", "h100", "--gpus", "2", "--precision", "fp8", "--json")
    assert_one_line_error(res, "--gpus")
    assert "needs at least" in res.err


def test_unknown_names_suggest(cli):
    res = cli("serve", "--model", "mixtral-8x7", "--gpu", "h100", "--json")
    assert_one_line_error(res, "--model")
    assert "mixtral-8x7b" in res.err
    res = cli("serve", "--model", "mixtral-8x7b", "--gpu", "h10", "--json")
    assert_one_line_error(res, "--gpu")


def test_bad_batch_and_lengths(cli):
    assert_one_line_error(cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--batch", "-3", "--json"), "--batch")
    assert_one_line_error(cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--input-tokens", "0", "--json"),
                          "--input-tokens")
    assert_one_line_error(cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--batch", "max", "--mode", "static",
                              "--json"), "--mode")
    assert_one_line_error(cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--gpus", "3", "--tp", "2", "--json"),
                          "--tp")


def test_serve_band_and_ep_flags(cli):
    res = cli("serve", "--model", "qwen3-235b-a22b", "--gpu", "h200", "--gpus", "8", "--ep", "8", "--dp-attention",
              "--precision", "fp8", "--price", "3", "--json")
    assert res.code == 0, res.err
    d = res.json()
    for k in KEYS + ("output_tokens_per_second_low", "output_tokens_per_second_high",
                     "usd_per_million_output_tokens_low", "usd_per_million_output_tokens_high",
                     "usd_per_million_input_tokens_low", "usd_per_million_input_tokens_high"):
        assert k in d and d[k] is not None
    assert d["expert_parallel"] == 8 and d["attention_dp"] is True
    assert d["output_tokens_per_second_low"] < d["output_tokens_per_second"] < d["output_tokens_per_second_high"]
    human = cli("serve", "--model", "llama-3.1-8b", "--gpu", "h100", "--precision", "fp8", "--price", "2")
    assert human.code == 0 and "P10-P90" in human.out


def test_serve_ep_on_dense_model_is_one_line_error(cli):
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "2", "--ep", "2", "--precision", "fp8")
    assert_one_line_error(res, "--ep")


def test_serve_lengths_and_burst_flags(cli, tmp_path):
    base = ("serve", "--model", "qwen3-235b-a22b", "--gpu", "h100", "--gpus", "8", "--engine", "vllm", "--json")
    steady = cli(*base, "--lengths", "sharegpt")
    res = cli(*base, "--lengths", "sharegpt", "--arrival", "burst", "--requests", "984")
    assert steady.code == 0 and res.code == 0, res.err
    d, s = res.json(), steady.json()
    assert d["arrival"] == "burst" and d["requests"] == 984 and d["lengths"] == "sharegpt" and d["makespan_seconds"] > 0
    assert s["arrival"] == "steady" and s["makespan_seconds"] is None
    # the draining batch of a heavy-tailed burst: far below the steady state at the same mean lengths
    assert d["output_tokens_per_second"] < 0.5 * s["output_tokens_per_second"]
    # published: gpustack vLLM 0.11, 8 x H100 BF16, 984 ShareGPT requests at rate inf: 4,015 output tokens/s
    assert abs(d["output_tokens_per_second"] / 4015.36 - 1) < 0.35
    f = tmp_path / "pairs.csv"
    f.write_text("input,output\n200,100\n2000,50\n")
    mine = cli(*base, "--lengths", str(f), "--input-tokens", "2200", "--arrival", "burst", "--requests", "10")
    assert mine.code == 0, mine.err
    assert abs(mine.json()["input_tokens"] - 2200) < 1e-6


def test_burst_flag_errors_are_one_line(cli):
    base = ("serve", "--model", "qwen3-235b-a22b", "--gpu", "h100", "--gpus", "8", "--json")
    assert_one_line_error(cli(*base, "--arrival", "burst"), "--requests")
    assert_one_line_error(cli(*base, "--requests", "100"), "--requests")
    assert_one_line_error(cli(*base, "--arrival", "poisson", "--requests", "5"), "--arrival")
    assert_one_line_error(cli(*base, "--arrival", "burst", "--requests", "5", "--batch", "8"), "--batch")
    assert_one_line_error(cli(*base, "--lengths", "nosuch"), "--lengths")
