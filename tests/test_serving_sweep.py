"""serving_sweep: serve() over arrays (issue 12 item 8). Every configuration gets serve()'s numbers (to 1e-9
relative) or serve()'s refusal (valid False, the same field)."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape import serving
from billshape.errors import BillshapeInputError
from billshape.serving_sweep import OUTPUTS, sweep, sweep_grid

COMPARED = ("output_tokens_per_second", "input_tokens_per_second", "decode_tokens_per_second", "ttft_seconds",
            "tpot_seconds", "batch", "max_batch", "replicas", "usd_per_hour", "usd_per_million_output_tokens",
            "usd_per_million_input_tokens", "usd_per_request", "makespan_seconds")
# (model, gpu, precision): dense GQA, MHA, MoE, MLA-MoE, a 2025 model, FP4 on Blackwell, an A100 (no FP8)
SETUPS = [("llama-3.1-70b", "h100", "fp8"), ("llama-2-13b", "a100", "bf16"), ("qwen3-235b-a22b", "h200", "fp8"),
          ("deepseek-v3", "h200", "fp8"), ("qwen3-32b", "mi325x", "bf16"), ("gpt-oss-120b", "b200", "fp4"),
          ("mixtral-8x7b", "l40s", "int4")]

config = st.fixed_dictionaries({
    "gpus": st.sampled_from([1, 2, 3, 4, 6, 8, 16, 0, 2.5]),
    "tp": st.sampled_from([None, 1, 2, 4, 8, 3, 16, 5]),
    "input_tokens": st.one_of(st.integers(1, 40_000), st.sampled_from([0, -5])),
    "output_tokens": st.integers(1, 8_000),
    "batch": st.one_of(st.none(), st.integers(1, 3000), st.sampled_from([0, 1.5])),
    "ep": st.sampled_from([None, None, 1, 2, 4, 8, 16]),
    "redundant_experts": st.sampled_from([None, None, 0, 2, 32, 1.5]),
    "engine": st.sampled_from([None, "trtllm", "vllm", "sglang"]),
    "requests": st.sampled_from([None, None, None, 1, 50, 700, 0, 2.5]),
})


def _serve(setup, c, **scalars):
    model, gpu, precision = setup
    kw = {k: c[k] for k in ("gpus", "tp", "input_tokens", "output_tokens", "ep", "engine")}
    kw["redundant_experts"] = 0 if c.get("redundant_experts") is None else c["redundant_experts"]
    kw["requests"] = c.get("requests")
    return serving.serve(model=model, gpu=gpu, precision=precision, batch="max" if c["batch"] is None else c["batch"],
                         **kw, **scalars)


def _compare(setup, configs, **scalars):
    model, gpu, precision = setup
    s = sweep(model=model, gpu=gpu, precision=precision, **{k: [c[k] for c in configs] for k in configs[0]}, **scalars)
    assert len(s) == len(configs)
    for j, c in enumerate(configs):
        try:
            est = _serve(setup, c, **scalars)
        except BillshapeInputError as exc:
            assert not s.valid[j], (c, exc.message)
            assert s.field[j] == exc.field, (c, exc.message, s.reason[j])
            assert all(math.isnan(s.columns[k][j]) for k in COMPARED)
            continue
        assert s.valid[j], (c, s.field[j], s.reason[j])
        for k in COMPARED:
            want = getattr(est, k)
            if want is None:  # no price: no cost
                assert math.isnan(s.columns[k][j])
                continue
            assert s.columns[k][j] == pytest.approx(want, rel=1e-9, abs=0), (c, k)
        assert bool(s.memory_bound[j]) == (est.bound == "memory-bandwidth")
    return s


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.sampled_from(SETUPS), configs=st.lists(config, min_size=1, max_size=12),
       price=st.sampled_from([None, 2.5]))
def test_sweep_matches_serve_on_random_configurations(setup, configs, price):
    _compare(setup, configs, price=price)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.sampled_from([SETUPS[2], SETUPS[3]]), configs=st.lists(config, min_size=1, max_size=8),
       dp=st.booleans(), rm=st.sampled_from([1.0, 3.0]), chr_=st.sampled_from([0.0, 0.5]),
       util=st.sampled_from([None, 0.6]), mode=st.sampled_from([None, "max-load"]))
def test_sweep_matches_serve_with_moe_options(setup, configs, dp, rm, chr_, util, mode):
    # expert/attention-DP groups, reasoning tokens, a prompt cache, utilization and max-load with a number
    _compare(setup, configs, price=2.0, dp_attention=dp, reasoning_multiplier=rm, cache_hit_rate=chr_,
             utilization=util, mode=mode)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.sampled_from(SETUPS), configs=st.lists(config, min_size=1, max_size=6),
       lengths=st.sampled_from([None, "sharegpt"]), arrival=st.sampled_from([None, "steady", "burst"]),
       rm=st.sampled_from([1.0, 2.0]), chr_=st.sampled_from([0.0, 0.3]))
def test_sweep_matches_serve_with_lengths_and_bursts(setup, configs, lengths, arrival, rm, chr_):
    # a length distribution (its means, rescaled by the row's lengths), bursts of N requests at t=0 and refusals
    # (requests without a burst, a burst without requests or with a numeric batch)
    s = _compare(setup, configs, price=2.0, lengths=lengths, arrival=arrival, reasoning_multiplier=rm,
                 cache_hit_rate=chr_)
    if arrival == "burst":
        assert np.isfinite(s.makespan_seconds[s.valid]).all()


def test_part1_options_match_serve():
    # the falsifying example of part 1 (attention-DP without EP on 16 GPUs; tp not dividing the heads) and the
    # relaxed checks: EP any divisor of tp, redundant experts, engines side by side, EP wider than a node
    base = {"tp": None, "input_tokens": 1, "output_tokens": 1, "batch": None, "ep": None, "redundant_experts": None,
            "engine": None}
    configs = [{**base, "gpus": 1}, {**base, "gpus": 16}, {**base, "gpus": 12, "ep": 4, "engine": "vllm"},
               {**base, "gpus": 16, "ep": 16, "redundant_experts": 32, "engine": "sglang", "input_tokens": 2000,
                "output_tokens": 500}, {**base, "gpus": 32, "ep": 32, "redundant_experts": 32},
               {**base, "gpus": 8, "ep": 8, "redundant_experts": 3}]
    s = _compare(SETUPS[3], configs, price=2.0, dp_attention=True)
    assert s.valid[1] and s.valid[2] and s.valid[3] and s.field[5] == "ep"
    assert list(s.engine) == ["trtllm", "trtllm", "vllm", "sglang", "trtllm", "trtllm"]
    s = _compare(SETUPS[2], [{**base, "gpus": 8, "engine": e, "input_tokens": 1000, "output_tokens": 1000}
                             for e in ("trtllm", "vllm", "sglang")], price=2.0)
    assert len(set(s.output_tokens_per_second.tolist())) == 3  # each engine its own profile


def test_each_refusal_has_serves_field_and_a_reason():
    s = sweep(model="llama-3.1-70b", gpu="h100", precision="bf16", gpus=[1, 2, 3, 4, 4, 8, 4],
              tp=[1, 2, 3, 3, 4, None, 4], input_tokens=[1000, 1000, 1000, 1000, 200_000, 1000, 1000],
              output_tokens=1000, batch=[None, None, None, None, None, None, 100_000])
    assert list(s.field) == ["gpus", "", "tp", "tp", "input_tokens/output_tokens", "", "batch"]
    assert "memory" in s.reason[0] and "heads" in s.reason[2] and "divisor" in s.reason[3]
    assert "context window" in s.reason[4] and "fits" in s.reason[6]
    assert s.valid.tolist() == [f == "" for f in s.field]
    assert all(r == "" for r, ok in zip(s.reason, s.valid) if ok)


def test_scalar_errors_raise_as_serve_does():
    with pytest.raises(BillshapeInputError, match="^precision"):
        sweep(model="llama-3.1-8b", gpu="h100", precision="fp3")
    with pytest.raises(BillshapeInputError, match="^precision"):  # FP8 on an A100: the chip has no FP8
        sweep(model="llama-3.1-8b", gpu="a100", precision="fp8")
    with pytest.raises(BillshapeInputError, match="^reasoning_multiplier"):
        sweep(model="llama-3.1-8b", gpu="h100", reasoning_multiplier=0.5)
    with pytest.raises(BillshapeInputError, match="^model"):
        sweep(model="llama-9", gpu="h100")
    with pytest.raises(BillshapeInputError, match="^batch"):
        sweep(model="llama-3.1-8b", gpu="h100", batch=["max", "lots"])


def test_grid_is_the_cartesian_product_and_matches_sweep():
    g = sweep_grid(model=["llama-3.1-8b", "qwen3-30b-a3b"], gpu=["h100", "h200"], precision="fp8", gpus=[1, 2, 4],
                   tp=[1, 2], input_tokens=[1000, 8000], output_tokens=[500], price=2.0)
    assert len(g) == 2 * 2 * 3 * 2 * 2
    assert set(zip(g.model, g.gpu)) == {(m, x) for m in ("llama-3.1-8b", "qwen3-30b-a3b") for x in ("h100-sxm", "h200-sxm")}
    one = sweep(model="qwen3-30b-a3b", gpu="h200", precision="fp8", gpus=[1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4],
                tp=[1, 1, 2, 2] * 3, input_tokens=[1000, 8000] * 6, output_tokens=500, price=2.0)
    rows = (g.model == "qwen3-30b-a3b") & (g.gpu == "h200-sxm")
    np.testing.assert_array_equal(g.output_tokens_per_second[rows], one.output_tokens_per_second)
    np.testing.assert_array_equal(g.valid[rows], one.valid)


def test_outputs_and_conversions():
    s = sweep(model="llama-3.1-8b", gpu="h100", precision="fp8", gpus=[1, 2], tp=[1, 3], price=2.0)
    assert set(OUTPUTS) <= set(s.columns)
    d = s.to_dict()
    assert d["valid"] == [True, False] and d["output_tokens_per_second"][1] is None
    json.dumps(d, allow_nan=False)  # no NaN leaks into JSON
    assert any(a["name"] == "rental price" for a in d["assumptions"])
    frame = s.to_pandas()
    assert len(frame) == 2 and frame.attrs["assumptions"]


def test_broadcasting_shapes():
    s = sweep(model="llama-3.1-8b", gpu="h100", gpus=np.array([[1], [2]]), input_tokens=[100, 1000, 10_000])
    assert len(s) == 6 and s.gpus.tolist() == [1, 1, 1, 2, 2, 2]
    assert np.isnan(s.usd_per_million_output_tokens).all()  # no price given


@pytest.mark.parametrize("setup", SETUPS, ids=lambda s: f"{s[0]}@{s[1]}")
def test_sweep_matches_serve_on_a_seeded_sample_with_both_outcomes(setup):
    # the same comparison on 60 seeded configurations per setup, with enough of both outcomes to mean something
    rng = np.random.default_rng(12)
    ctx = serving.architecture(setup[0]).max_context_tokens
    configs = [{"gpus": int(rng.choice([1, 2, 4, 8, 16, 16])), "tp": [None, None, 1, 2, 4, 8][rng.integers(6)],
                "input_tokens": int(rng.integers(1, min(20_000, ctx // 2))),
                "output_tokens": int(rng.integers(1, min(4_000, ctx // 4))),
                "batch": None if rng.random() < 0.5 else int(rng.integers(1, 1500)), "ep": None,
                "engine": ["trtllm", "vllm", "sglang"][rng.integers(3)]} for _ in range(60)]
    s = _compare(setup, configs, price=2.0)
    assert 5 <= int(s.valid.sum()) <= 55, int(s.valid.sum())


def test_benchmark_runs_at_toy_size():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_serving_sweep.py"), "--cases", "400",
                           "--scalar-cases", "60", "--repeats", "1"], capture_output=True, text=True, timeout=300,
                          cwd=root)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: the target missed (toy sizes judge nothing)
    out = json.loads(proc.stdout)
    assert out["cases"] == 400 and out["max_rel_diff_vs_serve"] < 1e-9 and out["refusal_mismatches"] == 0
    assert 0 < out["valid_share"] < 1 and out["sweep_seconds"] > 0 and out["ratio_scalar_over_sweep"] > 0


# issue 12 item 3: pipeline parallelism and speculative decoding, drawn like the rest and compared with serve
deploy_config = st.fixed_dictionaries({
    "gpus": st.sampled_from([1, 2, 4, 8, 16, 3]),
    "tp": st.sampled_from([None, 1, 2, 4, 8]),
    "input_tokens": st.integers(1, 20_000),
    "output_tokens": st.integers(1, 4_000),
    "batch": st.one_of(st.none(), st.integers(1, 2000)),
    "ep": st.sampled_from([None, None, 1, 2, 8]),
    "engine": st.sampled_from([None, "vllm"]),
    "pp": st.sampled_from([None, 1, 2, 3, 4, 0, 1.5, 200]),
    "draft_tokens": st.sampled_from([None, 1, 3, 0, 17]),
    "acceptance": st.sampled_from([None, 0.0, 0.6, 0.9, 1.0]),
    "requests": st.sampled_from([None, None, 40, 300]),
})


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup=st.sampled_from(SETUPS[:4]), configs=st.lists(deploy_config, min_size=1, max_size=6),
       spec=st.sampled_from([None, None, "mtp", "eagle", ("draft", "llama-3.1-8b")]), dp=st.booleans(),
       mode=st.sampled_from([None, "max-load"]), traffic=st.sampled_from([(None, None), ("burst", None),
                                                                          ("burst", "sharegpt")]))
def test_sweep_matches_serve_with_pipeline_and_speculative(setup, configs, spec, dp, mode, traffic):
    model, gpu, precision = setup
    method, draft = spec if isinstance(spec, tuple) else (spec, None)
    scalars = dict(speculative=method, draft_model=draft, dp_attention=dp, mode=mode, price=2.0,
                   arrival=traffic[0], lengths=traffic[1])
    s = sweep(model=model, gpu=gpu, precision=precision, **{k: [c[k] for c in configs] for k in configs[0]},
              **scalars)
    for j, c in enumerate(configs):
        try:
            est = serving.serve(model=model, gpu=gpu, precision=precision,
                                batch="max" if c["batch"] is None else c["batch"],
                                **{k: x for k, x in c.items() if k != "batch"}, **scalars)
        except BillshapeInputError as exc:
            assert not s.valid[j], (c, exc.message)
            assert s.field[j] == exc.field, (c, exc.message, s.reason[j])
            continue
        assert s.valid[j], (c, s.field[j], s.reason[j])
        for k in (*COMPARED, "tokens_per_step", "speculative_speedup", "pipeline_bubble"):
            want = getattr(est, k, None)
            if want is None:
                assert math.isnan(s.columns[k][j]), (c, k)
                continue
            assert s.columns[k][j] == pytest.approx(want, rel=1e-9, abs=0), (c, k)


def test_pipeline_and_speculative_bursts_match_serve():
    # a burst's requests split over gpus / (tp x pp) replicas, and speculative steps, as serve runs them
    for kw in (dict(pp=2, tp=4, gpus=8), dict(pp=2, tp=2, gpus=8), dict(speculative="eagle", draft_tokens=2, gpus=8)):
        est = serving.serve(model="llama-3.1-70b", gpu="h100", precision="fp8", lengths="sharegpt", arrival="burst",
                            requests=300, **kw)
        s = sweep(model="llama-3.1-70b", gpu="h100", precision="fp8", lengths="sharegpt", arrival="burst",
                  requests=[300], **{k: (x if k == "speculative" else [x]) for k, x in kw.items()})
        assert s.valid[0] and s.replicas[0] == est.replicas
        assert s.output_tokens_per_second[0] == pytest.approx(est.output_tokens_per_second, rel=1e-9)
        assert s.makespan_seconds[0] == pytest.approx(est.makespan_seconds, rel=1e-9)


def _switches_off():
    """The shipped profile rows with the sglang x mla kernel switches removed (the model before them)."""
    from billshape import serving_catalog as sc

    rows = tuple(r for r in sc.engine_profile_rows() if r.name not in sc.KERNEL_SWITCH_NAMES)
    return lambda: rows


def test_sweep_matches_serve_for_sglang_mla_with_the_kernel_switches_on():
    # sglang x mla x hopper ships attention_at_kernel_precision = 1 (DeepGEMM profile, variant L): on a BF16 KV
    # cache beside FP8 weights the attention FLOPs run at the BF16 peak, in serve and in the sweep alike, on the
    # plain, expert-parallel, attention-DP, pipelined, speculative and burst paths
    from unittest import mock

    from billshape import serving_catalog as sc

    assert sc.engine_profile("sglang", "mla", "hopper").params["attention_at_kernel_precision"] == 1.0
    setup = ("deepseek-v3", "h200", "fp8")
    base = {"tp": None, "input_tokens": 4000, "output_tokens": 500, "batch": None, "ep": None,
            "redundant_experts": None, "engine": "sglang", "requests": None}
    configs = [{**base, "gpus": 8}, {**base, "gpus": 16, "ep": 16, "redundant_experts": 32},
               {**base, "gpus": 32, "ep": 32, "input_tokens": 2000, "output_tokens": 100},
               {**base, "gpus": 8, "batch": 64}, {**base, "gpus": 8, "engine": "trtllm"}]
    s = _compare(setup, configs, price=2.0, kv_precision="bf16", dp_attention=True)
    assert s.valid.all()
    _compare(setup, configs[:3], price=2.0, kv_precision="bf16", mode="max-load")
    burst = [{**c, "requests": 300} for c in configs[:2]]
    _compare(setup, burst, price=2.0, kv_precision="bf16", arrival="burst", lengths="sharegpt")
    # the switch bites here (a case that did not exercise it would prove nothing): without it serve is faster
    with mock.patch.object(sc, "engine_profile_rows", _switches_off()):
        off = sweep(model=setup[0], gpu=setup[1], precision=setup[2], kv_precision="bf16", dp_attention=True,
                    **{k: [c[k] for c in configs] for k in configs[0]})
        off_serve = _serve(setup, configs[0], kv_precision="bf16", dp_attention=True)
    assert off.output_tokens_per_second[0] == pytest.approx(off_serve.output_tokens_per_second, rel=1e-9)
    assert (s.output_tokens_per_second[:4] < off.output_tokens_per_second[:4]).all()
    assert s.output_tokens_per_second[4] == off.output_tokens_per_second[4]  # trtllm: no switch rows
    # pipeline stages and speculative decoding take the same attention peak
    for kw in (dict(pp=2, tp=8, gpus=16), dict(speculative="mtp", draft_tokens=2, gpus=8)):
        est = serving.serve(model=setup[0], gpu=setup[1], precision=setup[2], kv_precision="bf16", engine="sglang",
                            input_tokens=4000, output_tokens=500, **kw)
        sw = sweep(model=setup[0], gpu=setup[1], precision=setup[2], kv_precision="bf16", engine="sglang",
                   input_tokens=[4000], output_tokens=[500], **{k: (x if k == "speculative" else [x])
                                                                for k, x in kw.items()})
        assert sw.valid[0]
        assert sw.output_tokens_per_second[0] == pytest.approx(est.output_tokens_per_second, rel=1e-9)
        assert sw.ttft_seconds[0] == pytest.approx(est.ttft_seconds, rel=1e-9)
