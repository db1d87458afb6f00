import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import inference, serving
from billshape.errors import BillshapeInputError

CAL = serving.cases("serving_calibration.csv")
VAL = serving.cases("serving_validation.csv")


def _err(case):
    return serving.predict_case(case)["predicted_per_gpu"] / case.measured_output_tokens_per_second_per_gpu - 1


@pytest.mark.parametrize("case", CAL, ids=lambda c: c.id)
def test_calibration_case_within_25pct(case):
    # NVIDIA TensorRT-LLM perf-overview (v0.9.0 and v1.0); target: no case beyond 25 %
    assert abs(_err(case)) <= 0.25


def test_calibration_mape_within_15pct():
    assert np.mean([abs(_err(c)) for c in CAL]) <= 0.15


IN_SCOPE = [c for c in VAL if c.tolerance is not None]
KNOWN_MISS = [c for c in VAL if c.tolerance is None]


@pytest.mark.parametrize("case", IN_SCOPE, ids=lambda c: c.id)
def test_validation_case_within_stated_tolerance(case):
    # held out of the fit; tolerance per row in data/serving_validation.csv (25 %)
    assert abs(_err(case)) <= case.tolerance


def test_every_validation_row_claims_a_tolerance():
    # V9 (EP8 + attention-DP MoE) was a documented miss at +69.6 % until the imbalance physics landed; no row may
    # silently drop out of the accuracy claim again
    assert not KNOWN_MISS and len(IN_SCOPE) == len(VAL)


def test_v9_needs_the_imbalance_physics():
    # V9 (Qwen3-235B-A22B, EP8 + attention-DP, TensorRT-LLM v1.0 perf-overview): with the imbalance factors at
    # their balanced limits the model is > 25 % too fast; with them it is within 25 %. Nothing is fitted on V9.
    v9 = next(c for c in VAL if c.id == "V9")
    r = serving.predict_case(v9)["roofline"]
    assert float(r["expert_load_imbalance"]) > 1.3 and float(r["attention_dp_imbalance"]) > 2
    assert abs(_err(v9)) <= 0.25
    arch, acc = serving.architecture(v9.model), __import__("billshape").catalog.gpu(v9.gpu)
    hw = serving.hardware_inputs(arch, acc, "fp8", "fp8")
    kw = dict(tensor_parallel=8, input_tokens=1000, output_tokens=1000, batch=None, mode="max-load",
              kv_memory_fraction=0.9, max_batch_cap=2048, expert_parallel=8, **serving.default_efficiency())
    # uniform routing (cv 0) still leaves the attention-DP prefill imbalance; without attention-DP the EP row
    # would be off by more
    uniform = serving.roofline(**hw, attention_dp=True, expert_load_cv=0.0, **kw)
    skewed = serving.roofline(**hw, attention_dp=True, expert_load_cv=serving.efficiencies()["expert_load_cv"].value, **kw)
    assert float(skewed["step_seconds"]) > float(uniform["step_seconds"])


def test_expert_imbalance_statistics():
    cv = serving.efficiencies()["expert_load_cv"].value
    # source check: TensorRT-LLM tech blog 4 Table 1 (DeepSeek-R1, 256 experts, k=8, EP32, 1024 tokens per rank on
    # average): per-expert std 164.1 on mean 128 -> cv 1.279; per-rank std 491.6 and max/mean 2.564 published. The
    # Gamma model gives rank std ~464 (-6 %) and max/mean 2.17 (-15 %: it under-states the hottest rank)
    rank_cv2 = cv**2 / 8 + 1 / 1024
    assert abs(1024 * rank_cv2**0.5 / 491.6 - 1) < 0.10
    lam32 = inference.moe_rank_imbalance(256, 8, 32, 32 * 1024 / 8, cv)
    assert 2.564 * 0.8 < lam32 < 2.564
    # no EP, no imbalance; more ranks or more skew -> more; more tokens -> less (sampling noise averages out)
    assert inference.moe_rank_imbalance(128, 8, 1, 4096, cv) == 1
    assert inference.moe_rank_imbalance(128, 8, 8, 4096, cv) < inference.moe_rank_imbalance(128, 8, 16, 4096, cv)
    assert inference.moe_rank_imbalance(128, 8, 8, 4096, 0.5) < inference.moe_rank_imbalance(128, 8, 8, 4096, cv)
    assert inference.moe_rank_imbalance(128, 8, 8, 64, 0.0) > inference.moe_rank_imbalance(128, 8, 8, 65536, 0.0) > 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 64), shape=st.floats(0.5, 1e4))
def test_expected_max_gamma_bounds(n, shape):
    m = float(inference.expected_max_over_mean_gamma(n, shape))
    # the maximum of n mean-1 loads is >= 1 and <= n (it cannot exceed the sum); n = 1 is the mean
    assert 1 - 1e-9 <= m <= n + 1e-9
    if n == 1:
        assert m == 1


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 64), mean=st.floats(0.0, 300.0))
def test_expected_max_poisson_bounds(n, mean):
    m = float(inference.expected_max_poisson(n, mean))
    assert mean - 1e-9 <= m <= n * mean + 1e-9
    if n == 1:
        assert m == pytest.approx(mean, abs=1e-9)


def test_expected_max_poisson_exact_small_case():
    # two ranks, mean 1: E[max] = sum_j 1 - F(j)^2 with F the Poisson(1) CDF
    import math
    f = [sum(math.exp(-1) / math.factorial(i) for i in range(j + 1)) for j in range(40)]
    assert inference.expected_max_poisson(2, 1.0) == pytest.approx(sum(1 - x * x for x in f), rel=1e-9)


def test_validation_mape_within_15pct():
    assert np.mean([abs(_err(c)) for c in IN_SCOPE]) <= 0.15
    assert np.mean([abs(_err(c)) for c in VAL]) <= 0.20  # all rows, the known miss included


def test_uncertainty_band_matches_validation_ratios():
    # the shipped P10/P90 must be the validation set's current measured/modeled ratios (fit script recomputes them)
    ratios = [1 / (1 + _err(c)) for c in VAL]
    eff = serving.efficiencies()
    assert abs(eff["throughput_ratio_p10"].value - np.percentile(ratios, 10)) < 0.005
    assert abs(eff["throughput_ratio_p90"].value - np.percentile(ratios, 90)) < 0.005


def test_band_brackets_the_estimate_and_carries_into_cost():
    e = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", price=2.5)
    assert e.output_tokens_per_second_low < e.output_tokens_per_second < e.output_tokens_per_second_high
    assert e.usd_per_million_output_tokens_low < e.usd_per_million_output_tokens < e.usd_per_million_output_tokens_high
    assert e.usd_per_million_input_tokens_low < e.usd_per_million_input_tokens < e.usd_per_million_input_tokens_high
    # cost x throughput is constant across the band
    assert abs(e.usd_per_million_output_tokens_low * e.output_tokens_per_second_high
               - e.usd_per_million_output_tokens * e.output_tokens_per_second) < 1e-9 * e.output_tokens_per_second


def test_expert_parallel_physics():
    kw = dict(model="qwen3-235b-a22b", gpu="h200", gpus=8, precision="fp8", batch=2048, mode="max-load")
    tp = serving.serve(**kw)
    ep = serving.serve(**kw, ep=8)
    dp = serving.serve(**kw, ep=8, dp_attention=True)
    # attention-DP replicates the attention/dense weights on every GPU (more weight memory), but TP8 over Qwen3's 4
    # KV heads holds every KV head twice: without attention TP the KV cache is held once, so more sequences fit
    assert dp.weight_bytes > tp.weight_bytes and dp.max_batch > tp.max_batch
    assert ep.weight_bytes == tp.weight_bytes
    assert serving.kv_replication(serving.architecture("qwen3-235b-a22b"), 8) == 2.0
    assert serving.kv_replication(serving.architecture("qwen3-235b-a22b"), 8, attention_dp=True) == 1.0
    # TP splits every expert, so routing skew costs it nothing; EP puts whole experts on ranks, the hot rank waits
    assert tp.expert_load_imbalance == 1 and ep.expert_load_imbalance > 1.3
    # with uniform routing, at a large batch the all-to-all of ~5 token copies (7/8 remote) is cheaper than a second
    # all-reduce per layer; with the measured skew (no EPLB) the hot rank makes EP8 slower than TP8 here
    hw = serving.hardware_inputs(serving.architecture("qwen3-235b-a22b"), __import__("billshape").catalog.gpu("h200"),
                                 "fp8", "fp8")
    rk = dict(tensor_parallel=8, input_tokens=1000, output_tokens=1000, batch=2048, mode="max-load",
              kv_replication=2.0, **serving.default_efficiency())
    step = {cv: float(serving.roofline(**hw, **rk, expert_parallel=8, expert_load_cv=cv)["step_seconds"]) for cv in (0.0, 1.279)}
    assert step[0.0] < tp.tpot_seconds < step[1.279]
    assert ep.tpot_seconds == pytest.approx(step[1.279], rel=1e-3)


def test_expert_parallel_bad_input():
    with pytest.raises(BillshapeInputError) as exc:
        serving.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", ep=2)
    assert exc.value.field == "ep"
    with pytest.raises(BillshapeInputError) as exc:  # EP must divide the replica's GPUs
        serving.serve(model="qwen3-235b-a22b", gpu="h200", gpus=8, precision="fp8", ep=3)
    assert exc.value.field == "ep"
    with pytest.raises(BillshapeInputError) as exc:  # attention DP needs an MoE model when tp > 1
        serving.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", dp_attention=True)
    assert exc.value.field == "dp_attention"
    # EP narrower than TP, and attention DP without EP, are deployments that exist (issue 12): accepted
    assert serving.serve(model="qwen3-235b-a22b", gpu="h200", gpus=8, precision="fp8", ep=4).expert_parallel == 4
    assert serving.serve(model="qwen3-235b-a22b", gpu="h200", gpus=8, precision="fp8", dp_attention=True).attention_dp


def test_alltoall_zero_without_ep_and_grows_with_tokens():
    assert inference.alltoall_seconds(100, 4096, 8, 1, 4.5e11, 2e-5, 2) == 0
    a = inference.alltoall_seconds(100, 4096, 8, 8, 4.5e11, 2e-5, 2)
    b = inference.alltoall_seconds(1000, 4096, 8, 8, 4.5e11, 2e-5, 2)
    # one token to k=8 experts over 8 GPUs reaches 8(1-(7/8)^8) = 5.25 GPUs, 7/8 of them remote
    assert abs((b - a) / 2 - 900 * 8 * (1 - (7 / 8) ** 8) * 4096 * 2 * 7 / 8 / 4.5e11) < 1e-12


def test_efficiencies_are_physical():
    e = serving.default_efficiency()
    assert 0.3 <= e["hbm_bandwidth_efficiency"] <= 1
    assert 0.2 <= e["compute_efficiency"] <= 1
    assert 0 <= e["step_overhead_seconds"] <= 0.02
    assert 0 < e["allreduce_latency_seconds"] <= 1e-4


def _hw(**over):
    hw = serving.hardware_inputs(serving.architecture("llama-3.1-70b"), __import__("billshape").catalog.gpu("h100"), "fp8", "fp8")
    hw.update(over)
    return hw


@settings(max_examples=40, deadline=None)
@given(bw1=st.floats(1e11, 2e13), bw2=st.floats(1e11, 2e13), b=st.integers(1, 200),
       i=st.integers(1, 8000), o=st.integers(1, 8000))
def test_more_bandwidth_never_lowers_decode_throughput(bw1, bw2, b, i, o):
    lo, hi = sorted((bw1, bw2))
    kw = dict(tensor_parallel=2, input_tokens=i, output_tokens=o, batch=b, mode="static", **serving.default_efficiency())
    slow = serving.roofline(**_hw(hbm_bytes_per_second=lo), **kw)
    fast = serving.roofline(**_hw(hbm_bytes_per_second=hi), **kw)
    assert fast["output_tokens_per_second"] >= slow["output_tokens_per_second"] * (1 - 1e-12)
    assert fast["step_seconds"] <= slow["step_seconds"] * (1 + 1e-12)


@settings(max_examples=30, deadline=None)
@given(model=st.sampled_from(["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "deepseek-v3", "qwen3-30b-a3b"]),
       i=st.integers(1, 4000), o=st.integers(1, 4000), mode=st.sampled_from(["static", "max-load"]))
def test_bigger_batch_never_lowers_throughput_until_memory_runs_out(model, i, o, mode):
    arch = serving.architecture(model)
    gpus = 16 if model == "deepseek-v3" else 8
    hw = serving.hardware_inputs(arch, __import__("billshape").catalog.gpu("h200"), "fp8", "fp8")
    r = serving.roofline(**hw, tensor_parallel=gpus, input_tokens=i, output_tokens=o, batch=None, mode=mode,
                         **serving.default_efficiency())
    fits = int(min(r["max_batch"], 4096))
    batches = np.unique(np.linspace(1, fits, 60).astype(int)).astype(float)
    tps = serving.roofline(**hw, tensor_parallel=gpus, input_tokens=i, output_tokens=o, batch=batches, mode=mode,
                           **serving.default_efficiency())["output_tokens_per_second"]
    assert np.all(np.diff(tps) >= -1e-9 * tps[:-1])


def test_moe_experts_touched_grows_with_batch():
    t = inference.moe_experts_touched(8, 2, np.array([1, 2, 8, 64, 512]))
    assert t[0] == pytest.approx(2) and np.all(np.diff(t) > 0) and t[-1] == pytest.approx(8, rel=1e-6)
    assert inference.moe_experts_touched(256, 8, 1) == pytest.approx(8)


def test_prefill_attention_term_is_quadratic():
    base = inference.prefill_flops(0, 1000, 32, 4096)
    assert inference.prefill_flops(0, 2000, 32, 4096) == pytest.approx(4 * base)


def test_allreduce_zero_without_tensor_parallelism():
    assert inference.allreduce_seconds(1e6, 1, 4.5e11, 1e-5, 160) == 0
    assert inference.allreduce_seconds(1e6, 2, 4.5e11, 1e-5, 160) > 160 * 1e-5


def test_serve_keys_and_cost():
    e = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=4, tp=2, precision="fp8", input_tokens=1000,
                      output_tokens=1000, price=2.5, utilization=0.5)
    d = e.to_dict()
    for key in ("output_tokens_per_second", "input_tokens_per_second", "ttft_seconds", "tpot_seconds", "max_batch",
                "kv_cache_bytes_per_token", "bound", "params_total", "params_active",
                "usd_per_million_output_tokens", "usd_per_million_input_tokens", "assumptions"):
        assert key in d
    assert e.replicas == 2
    # cost of a request splits exactly into input and output shares of the deployment's time
    seconds_per_request = 1000 / e.output_tokens_per_second * e.replicas  # replica-seconds... per deployment-request
    usd = e.usd_per_hour / 3600 / 0.5 * 1000 / e.output_tokens_per_second
    assert e.usd_per_request == pytest.approx(usd, rel=1e-6)
    assert seconds_per_request > 0


def test_fp8_beats_bf16_and_halving_utilization_doubles_cost():
    kw = dict(model="llama-3.1-8b", gpu="h100", gpus=1, input_tokens=1000, output_tokens=1000, price=2)
    bf16 = serving.serve(precision="bf16", **kw)
    fp8 = serving.serve(precision="fp8", **kw)
    assert fp8.output_tokens_per_second > bf16.output_tokens_per_second
    assert fp8.kv_cache_bytes_per_token == bf16.kv_cache_bytes_per_token / 2
    half = serving.serve(precision="fp8", utilization=0.5, **kw)
    assert half.usd_per_million_output_tokens == pytest.approx(2 * fp8.usd_per_million_output_tokens)


def test_reasoning_raises_and_cache_lowers_cost_per_request():
    kw = dict(model="llama-3.1-8b", gpu="h100", gpus=1, precision="fp8", input_tokens=4000, output_tokens=500, price=2)
    base = serving.serve(**kw)
    assert serving.serve(reasoning_multiplier=4, **kw).usd_per_request > 2 * base.usd_per_request
    cached = serving.serve(cache_hit_rate=0.8, **kw)
    assert cached.usd_per_million_input_tokens < base.usd_per_million_input_tokens
    assert cached.usd_per_request < base.usd_per_request


def test_static_batch_ttft_is_prefill_and_grows_with_batch():
    kw = dict(model="llama-2-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=2048, output_tokens=2048, mode="static")
    small, big = serving.serve(batch=8, **kw), serving.serve(batch=64, **kw)
    assert big.ttft_seconds > small.ttft_seconds and big.output_tokens_per_second > small.output_tokens_per_second
    assert small.mode == "static" and small.bound == "memory-bandwidth"


def test_too_large_model_says_how_many_gpus():
    with pytest.raises(BillshapeInputError, match="needs at least 6 h100-sxm GPUs"):
        serving.serve(model="llama-3.1-405b", gpu="h100", gpus=2, precision="fp8")
    serving.serve(model="llama-3.1-405b", gpu="h100", gpus=8, precision="fp8")  # fits


def test_batch_that_does_not_fit_is_an_input_error():
    with pytest.raises(BillshapeInputError, match="^batch"):
        serving.serve(model="llama-3.1-8b", gpu="h100", gpus=1, batch=100000, precision="fp8")


def test_fp4_on_hopper_is_a_clear_error():
    with pytest.raises(BillshapeInputError, match="supports"):
        serving.serve(model="llama-3.1-8b", gpu="h100", precision="fp4")
    assert serving.serve(model="llama-3.1-70b", gpu="b200", precision="fp4").output_tokens_per_second > 0


def test_self_hosted_price_library_function():
    p = serving.self_hosted_price("llama-3.1-8b", "h100", 1, "fp8", 1000, 1000, 2.0, 0.5)
    assert set(p) >= {"usd_per_million_input_tokens", "usd_per_million_output_tokens"}
    assert 0 < p["usd_per_million_input_tokens"] < p["usd_per_million_output_tokens"] < 1.0


def test_capacity_meets_tpot_limit():
    c = serving.capacity(model="llama-3.1-70b", gpu="h100", requests_per_second=10, precision="fp8",
                         input_tokens=1000, output_tokens=500, tpot_limit=0.05, price=2.5)
    assert c.tpot_seconds <= 0.05 and c.replicas * c.replica_requests_per_second >= 10
    assert c.gpus == c.replicas * c.tensor_parallel and c.usd_per_month > 0
    looser = serving.capacity(model="llama-3.1-70b", gpu="h100", requests_per_second=10, precision="fp8",
                              input_tokens=1000, output_tokens=500, tpot_limit=0.2, price=2.5)
    assert looser.gpus <= c.gpus


def test_impossible_tpot_limit():
    with pytest.raises(BillshapeInputError, match="^tpot_limit"):
        serving.capacity(model="llama-3.1-70b", gpu="h100", requests_per_second=1, precision="fp8", tpot_limit=1e-4)


def test_measured_csv_and_vllm_json(tmp_path):
    e = serving.serve_measured("examples/measured/simple.csv", price=2.5)
    assert e.output_tokens_per_second == 4205 and e.source == "measured"
    assert e.measured_over_modeled == pytest.approx(4205 / e.modeled_output_tokens_per_second)
    assert 0.75 < e.measured_over_modeled < 1.25
    j = serving.serve_measured("examples/measured/vllm_llama-3.1-8b_h100.json", gpu="h100", gpus=1, precision="fp8", price=2)
    assert j.input_tokens == 1000 and j.output_tokens == 1000 and j.tpot_seconds == pytest.approx(0.0426)
    bad = tmp_path / "bad.json"
    bad.write_text('{"completed": 3}')
    with pytest.raises(BillshapeInputError, match="^measured"):
        serving.serve_measured(bad, model="llama-3.1-8b", gpu="h100", gpus=1)


def test_serve_is_fast():
    serving.serve(model="llama-3.1-8b", gpu="h100")  # warm the catalogs
    t0 = time.perf_counter()
    serving.serve(model="deepseek-v3", gpu="h200", gpus=8, precision="fp8", price=3)
    assert time.perf_counter() - t0 < 0.5
