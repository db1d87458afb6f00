"""The two kernel terms of issue 12 (docs/serving.md, "DeepGEMM's grouped GEMMs (sglang x mla)"): attention timed
at the attention kernels' 16-bit peak, and the grouped-GEMM factor and expert loads at two-batch overlap's
micro-batch tokens. Expectations are computed independently (Decimal, the equations written out)."""

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from billshape import catalog, inference, serving, serving_catalog as sc, serving_disagg as sd
from billshape import serving_roofline as sr
from billshape.serving_roofline import attention_inputs, hardware_inputs, roofline

H100 = catalog.gpu("h100")
#: the catalog's H100 SXM dense peaks (datasheet sparse / 2: BF16 989.4, FP8 1,978.9 TFLOP/s)
BF16_PEAK, FP8_PEAK = Decimal("9.894e14"), Decimal("1.9789e15")


def test_catalog_peaks_are_the_datasheet_ones():
    assert H100.peak_flops_per_second("bf16") == float(BF16_PEAK) and H100.peak_flops_per_second("fp8") == float(FP8_PEAK)


def test_flops_at_reference_peak_times_attention_at_the_bf16_peak():
    flops, eta = Decimal("3.1e15"), Decimal("0.5")
    got = sr.flops_at_reference_peak(float(flops), float(FP8_PEAK), float(BF16_PEAK))
    # timed at the roofline's (FP8) peak it takes what the FLOPs take at the BF16 peak
    assert float(Decimal(float(got)) / (eta * FP8_PEAK)) == pytest.approx(float(flops / (eta * BF16_PEAK)), rel=1e-12)
    assert float(got) == pytest.approx(2 * float(flops), rel=1e-3)  # Hopper: FP8 is twice BF16
    assert sr.flops_at_reference_peak(5.0, 7.0) == 5.0  # no kernel peak: unchanged


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 256), st.integers(1, 16), st.integers(1, 100_000), st.integers(1, 4))
def test_micro_batch_expert_loads(experts, k, tokens, m):
    k = min(k, experts)
    got = float(sr.micro_batch_expert_loads(experts, k, tokens, m))
    e, kk, n = Decimal(experts), Decimal(k), Decimal(tokens) / Decimal(m)
    one = e * (1 - (1 - kk / e) ** n) if n >= 1 else kk  # moe_experts_touched floors the tokens at one
    want = Decimal(m) * min(max(one, min(kk, e)), e)
    assert got == pytest.approx(float(want), rel=1e-9)
    assert min(k, experts) - 1e-9 <= got <= m * experts + 1e-9
    if m == 1:
        assert got == pytest.approx(float(inference.moe_experts_touched(experts, k, tokens)), rel=1e-12)


def _dense_kw():
    arch = sc.architecture("llama-3.1-8b")
    hw = hardware_inputs(arch, H100, "fp8", "fp8")
    return arch, dict(**hw, tensor_parallel=1.0, hbm_bandwidth_efficiency=0.9, compute_efficiency=0.5,
                      step_overhead_seconds=0.0, allreduce_latency_seconds=0.0)


def test_roofline_prefill_attention_at_the_bf16_peak():
    arch, kw = _dense_kw()
    i_len, batch = 4096.0, 8.0
    base = roofline(**kw, input_tokens=i_len, output_tokens=1.0, batch=batch, mode="static")
    bf16 = roofline(**kw, input_tokens=i_len, output_tokens=1.0, batch=batch, mode="static",
                    attention_peak_flops_per_second=H100.peak_flops_per_second("bf16"))
    # causal attention of the batch: B * 2 L d_attn I^2 FLOPs, now at 0.5 x the BF16 peak instead of the FP8 one
    attn = Decimal(batch) * 2 * Decimal(arch.layers) * Decimal(arch.attention_dim) * Decimal(i_len) ** 2
    eta = Decimal("0.5")
    extra = attn / (eta * BF16_PEAK) - attn / (eta * FP8_PEAK)
    assert float(bf16["prefill_seconds"]) - float(base["prefill_seconds"]) == pytest.approx(float(extra), rel=1e-6)


def test_roofline_decode_attention_at_the_bf16_peak_only_when_compute_bound():
    arch, kw = _dense_kw()
    args = dict(input_tokens=1.0, output_tokens=8193.0, mode="static")
    peak = H100.peak_flops_per_second("bf16")
    for batch in (1.0, 64.0):
        a = roofline(**kw, **args, batch=batch)
        b = roofline(**kw, **args, batch=batch, attention_peak_flops_per_second=peak)
        # the attention roofline: max(KV bytes / bw, F_attn / (eta P)); F_attn = 4 L d_attn c per token
        ctx = Decimal(1) + Decimal(8192) / 2
        f = 4 * Decimal(arch.layers) * Decimal(arch.attention_dim) * ctx * Decimal(batch)
        kv = Decimal(batch) * ctx * Decimal(kw["kv_bytes_per_token"]) / (Decimal("0.9") * Decimal(H100.memory_bytes_per_second))
        gain = max(kv, f / (Decimal("0.5") * BF16_PEAK)) - max(kv, f / (Decimal("0.5") * FP8_PEAK))
        assert float(b["step_seconds"]) - float(a["step_seconds"]) == pytest.approx(float(gain), rel=1e-6, abs=1e-12)


def _moe_kw(half_tokens):
    hw = hardware_inputs(sc.architecture("qwen3-235b-a22b"), catalog.gpu("h200"), "fp8", "fp8")
    return hw, dict(**hw, tensor_parallel=8.0, expert_parallel=8.0, hbm_bandwidth_efficiency=0.9,
                    compute_efficiency=0.5, step_overhead_seconds=0.0, allreduce_latency_seconds=0.0,
                    moe_gemm_efficiency=1.3, moe_gemm_half_tokens=half_tokens)


@pytest.mark.parametrize("m", [1.0, 2.0, 3.0])
def test_roofline_grouped_gemm_factor_at_the_micro_batch_tokens(m):
    hw, kw = _moe_kw(131.0)
    batch = 512.0
    r = roofline(**kw, input_tokens=1.0, output_tokens=101.0, batch=batch, mode="static", micro_batches=m)
    n = Decimal(batch) / Decimal(m) * Decimal(hw["experts_per_token"]) / Decimal(hw["experts_routed"])
    assert float(r["tokens_per_expert"]) == pytest.approx(float(n), rel=1e-12)
    assert float(r["moe_gemm_factor"]) == pytest.approx(float(Decimal("1.3") * n / (n + 131)), rel=1e-12)


def test_roofline_micro_batches_read_the_weights_once_per_micro_batch():
    hw, kw = _moe_kw(0.0)
    kw["moe_weight_read_efficiency"] = 1.0  # expert reads at the dense HBM efficiency (not slowed by g)
    args = dict(input_tokens=1.0, output_tokens=101.0, batch=4096.0, mode="static")
    one, two = roofline(**kw, **args), roofline(**kw, **args, micro_batches=2.0)
    # g flat: the factor is the same; every expert is touched by either half of 4,096 tokens, so the second
    # micro-batch reads the dense share (1/t of it) and every expert (spread over t GPUs) once more
    assert float(two["moe_gemm_factor"]) == float(one["moe_gemm_factor"])
    t, e = Decimal(8), Decimal(hw["experts_routed"])
    dense = Decimal(hw["params_total"]) - Decimal(hw["expert_params"])
    weights = (dense / t + Decimal(hw["expert_params"]) / e * e / t) * Decimal(hw["weight_bytes_per_param"])
    got = Decimal(float(two["step_bytes_per_gpu"])) - Decimal(float(one["step_bytes_per_gpu"]))
    assert float(got) == pytest.approx(float(weights), rel=1e-6)


def test_attention_kernel_catalog():
    rows = sc.attention_kernels()
    keys = [(r.engine, r.arch_class, r.kv_precision) for r in rows]
    assert len(keys) == len(set(keys))
    for r in rows:
        assert r.engine in sc.ENGINES and r.arch_class in sc.ARCH_CLASSES
        assert r.kv_precision in sc.KV_PRECISIONS and r.attention_precision in ("bf16", "fp8")
    # the sources: TensorRT-LLM's trtllm-bench builds FP8 context attention; vLLM and SGLang run 16-bit attention
    # on a 16-bit KV cache; SGLang with an FP8 KV cache and TensorRT-LLM with a BF16 one have no source (no row)
    assert sc.attention_kernel("trtllm", "dense", "fp8").attention_precision == "fp8"
    assert sc.attention_kernel("vllm", "moe", "bf16").attention_precision == "bf16"
    assert sc.attention_kernel("sglang", "mla", "fp16").attention_precision == "bf16"
    assert sc.attention_kernel("sglang", "mla", "fp8") is None and sc.attention_kernel("trtllm", "mla", "bf16") is None


def _switched(engine, cls, on):
    prof = sc.engine_profile(engine, cls, "hopper")
    return prof.model_copy(update={"params": {**prof.params, "attention_at_kernel_precision": 1.0 if on else 0.0}})


def test_attention_inputs_follow_the_switch_and_the_catalog():
    bf16 = H100.peak_flops_per_second("bf16")
    # shipped profiles: only sglang x mla x hopper (DeepGEMM, variant L) has the switch rows; every other profile
    # keeps the model before them (Ampere's sglang x mla included: no DeepGEMM there)
    for engine in sc.ENGINES:
        for cls in sc.ARCH_CLASSES:
            prof = sc.engine_profile(engine, cls, "hopper")
            if (engine, cls) == ("sglang", "mla"):
                assert all(prof.params[n] == 1.0 for n in sc.KERNEL_SWITCH_NAMES)
                # with FlashAttention-3's measured efficiency row: the BF16 peak x eta_a / eta_c
                scaled = bf16 * prof.params["attention_compute_efficiency"] / prof.params["compute_efficiency"]
                assert attention_inputs(prof, H100, "fp8", "bf16") == {"attention_peak_flops_per_second": scaled}
                assert attention_inputs(prof, H100, "fp8", "fp8") == {}  # SGLang FP8 KV: no source, no row
                continue
            assert not any(n in prof.params for n in sc.KERNEL_SWITCH_NAMES)
            assert attention_inputs(prof, H100, "fp8", "bf16") == {}
    assert not any(n in sc.engine_profile("sglang", "mla", "ampere").params for n in sc.KERNEL_SWITCH_NAMES)
    no_eta_a = _switched("sglang", "mla", True)
    no_eta_a = no_eta_a.model_copy(update={"params": {k: v for k, v in no_eta_a.params.items()
                                                      if k != "attention_compute_efficiency"}})
    assert attention_inputs(no_eta_a, H100, "fp8", "bf16") == {"attention_peak_flops_per_second": bf16}
    assert attention_inputs(_switched("sglang", "mla", False), H100, "fp8", "bf16") == {}
    assert attention_inputs(_switched("sglang", "mla", True), H100, "bf16", "bf16") == {}  # GEMMs already 16-bit
    assert attention_inputs(_switched("trtllm", "dense", True), H100, "fp8", "fp8") == {}  # FP8 context FMHA
    assert attention_inputs(_switched("trtllm", "mla", True), H100, "fp8", "bf16") == {}  # no source: unchanged


def test_pools_pass_the_micro_batches_only_with_overlap_and_the_switch():
    seen = []

    def spy(**kw):
        seen.append(kw.get("micro_batches"))
        return roofline(**kw)

    _, kw = _moe_kw(131.0)
    for overlap, on, want in ((True, True, 2.0), (True, False, None), (False, True, None)):
        seen.clear()
        sd.decode_pool(spy, kw, input_tokens=1000.0, output_tokens=100.0, batch=256.0, overlap=overlap,
                       micro_batch_kernels=on)
        sd.prefill_pool(spy, kw, input_tokens=1000.0, prefill_tokens_per_gpu=8192.0, overlap=overlap,
                        micro_batch_kernels=on)
        assert seen and all(s == want for s in seen)


def _no_switches():
    rows = tuple(r for r in sc.engine_profile_rows() if r.name not in sc.KERNEL_SWITCH_NAMES)
    return lambda: rows


def test_capacity_takes_the_attention_switch_as_serve_does():
    # a replica's throughput at its batch is serve's at that batch (max-load), switch on (sglang x mla, BF16 KV);
    # without the switch rows the same replica is faster (the term bites here)
    from unittest import mock

    kw = dict(model="deepseek-v3", gpu="h200", precision="fp8", kv_precision="bf16", engine="sglang",
              input_tokens=4000, output_tokens=500)
    c = serving.capacity(requests_per_second=5, tp=8, tpot_limit=0.1, **kw)
    est = serving.serve(gpus=8, tp=8, batch=c.batch_per_replica, mode="max-load", **kw)
    assert c.tpot_seconds == pytest.approx(est.tpot_seconds, rel=1e-9)
    assert c.ttft_seconds == pytest.approx(est.ttft_seconds, rel=1e-9)
    assert c.replica_requests_per_second * 500 == pytest.approx(est.output_tokens_per_second, rel=1e-9)
    with mock.patch.object(sc, "engine_profile_rows", _no_switches()):
        off = serving.serve(gpus=8, tp=8, batch=c.batch_per_replica, mode="max-load", **kw)
        c_off = serving.capacity(requests_per_second=5, tp=8, tpot_limit=0.1, **kw)
        est_off = serving.serve(gpus=8, tp=8, batch=c_off.batch_per_replica, mode="max-load", **kw)
    assert off.ttft_seconds < est.ttft_seconds
    assert c_off.ttft_seconds == pytest.approx(est_off.ttft_seconds, rel=1e-9)
    assert c_off.replica_requests_per_second >= c.replica_requests_per_second


def test_fleet_search_takes_the_attention_switch_as_serve_does():
    # the fleet's KV cache is at the weights' precision: at FP8 SGLang has no 16-bit attention row, so the switch
    # has no effect there (documented); the evaluation is serve's either way, and with a 16-bit attention kernel
    # row (BF16 KV forced through attention_inputs) the grouped evaluation still equals serve's
    from unittest import mock

    from billshape.fleet import search

    arch = serving.architecture("deepseek-v3")
    cfgs = [("h200-sxm", 8, 8, "fp8", "sglang"), ("h200-sxm", 8, 1, "fp8", "trtllm")]
    res = search.evaluate(arch, cfgs, input_tokens=4000.0, output_tokens=500.0)
    for j, (g, t, e, p, eng) in enumerate(cfgs):
        est = serving.serve(model="deepseek-v3", gpu=g, gpus=t, tp=t, ep=e, precision=p, engine=eng,
                            input_tokens=4000, output_tokens=500, batch=int(res.batch[j]), mode="max-load")
        assert res.output_tokens_per_second[j] == pytest.approx(est.output_tokens_per_second, rel=1e-9)
        assert res.ttft_seconds[j] == pytest.approx(est.ttft_seconds, rel=1e-9)
    prof = sc.engine_profile("sglang", "mla", "hopper")
    bf16 = (catalog.gpu("h200").peak_flops_per_second("bf16") * sc.attention_efficiency_at(4000.0)
            / prof.params["compute_efficiency"])  # the BF16 peak at FlashAttention-3's efficiency at 4,000 tokens
    with mock.patch.object(search, "attention_inputs",
                           lambda prof, acc, p, kv, seq: sr.attention_inputs(prof, acc, p, "bf16", seq)):
        forced = search.evaluate(arch, cfgs[:1], input_tokens=4000.0, output_tokens=500.0)
    hw = hardware_inputs(arch, catalog.gpu("h200"), "fp8", "fp8")
    prof = sc.engine_profile("sglang", "mla", "hopper")
    r = roofline(**hw, tensor_parallel=8.0, expert_parallel=8.0, input_tokens=4000.0, output_tokens=500.0,
                 batch=float(forced.batch[0]), mode="max-load",
                 kv_memory_fraction=sc.efficiencies()["kv_memory_fraction"].value,
                 max_batch_cap=prof.params["max_batch_cap"], expert_load_cv=sc.efficiencies()["expert_load_cv"].value,
                 kv_replication=sr.kv_replication(arch, 8, False), attention_peak_flops_per_second=bf16,
                 **prof.efficiency)
    assert forced.ttft_seconds[0] == pytest.approx(float(r["ttft_seconds"]), rel=1e-9)
    assert forced.ttft_seconds[0] > res.ttft_seconds[0]


def test_shipped_reproductions_under_the_adopted_switches():
    # sglang x mla x hopper ships DeepGEMM's rows, both switches and FlashAttention-3's measured attention
    # efficiency (variant L): the reproductions move to L's figures (benchmarks/deepgemm_ablation.py); without the
    # switch rows they are variant B's (the efficiency row only scales the 16-bit attention peak the switch sets)
    from unittest import mock

    got = {d.id: round(100 * sd.reproduce(d)["error"], 1) for d in sd.deployments()}
    assert got == {"LM1": 8.9, "LM2": 20.4, "DS2": -22.8, "DS1": 76.3, "LM3": 8.2, "LM4": 4.0, "LM5": -5.2,
                   "LM6": -17.0}
    with mock.patch.object(sc, "engine_profile_rows", _no_switches()):
        off = {d.id: round(100 * sd.reproduce(d)["error"], 1) for d in sd.deployments()}
    assert off == {"LM1": 22.5, "LM2": 27.6, "DS2": -9.1, "DS1": 97.1, "LM3": 18.9, "LM4": 17.1, "LM5": 11.3,
                   "LM6": -2.0}
    assert np.isfinite(serving.serve(model="deepseek-v3", gpu="h200", gpus=32, tp=32, ep=32, dp_attention=True,
                                     engine="sglang", precision="fp8").output_tokens_per_second)


def test_attention_efficiency_follows_the_published_curve():
    """The attention kernels' efficiency at a prompt length is FlashAttention-3's published causal forward at that
    length over the H100 SXM BF16 peak (the catalog's points exactly, log-linear between them, held at the ends),
    rises with the length, and at 4,096 tokens is the profile's attention_compute_efficiency row."""
    pts = sc.attention_efficiency_points()
    peak = catalog.gpu("h100-sxm").peak_flops_per_second("bf16")
    for p in pts:
        assert sc.attention_efficiency_at(p.seq_len) == pytest.approx(p.tflops * 1e12 / peak, rel=1e-12)
    grid = np.geomspace(100, 100_000, 200)
    eta = sc.attention_efficiency_at(grid)
    assert np.all(np.diff(eta) >= 0) and eta[0] == pytest.approx(pts[0].tflops * 1e12 / peak)
    assert eta[-1] == pytest.approx(pts[-1].tflops * 1e12 / peak)
    mid = np.sqrt(1024 * 2048)  # halfway in log L
    assert sc.attention_efficiency_at(mid) == pytest.approx(0.5 * (423 + 521) * 1e12 / peak, rel=1e-12)
    prof = sc.engine_profile("sglang", "mla", "hopper")
    assert sc.attention_efficiency_at(4096) == pytest.approx(prof.params["attention_compute_efficiency"], abs=5e-5)
    # a longer prompt runs its attention more efficiently: the 16-bit peak the roofline takes rises with it
    acc = catalog.gpu("h100-sxm")
    short, long_ = (sr.attention_inputs(prof, acc, "fp8", "bf16", n)["attention_peak_flops_per_second"] for n in (1024, 8192))
    assert short < long_
