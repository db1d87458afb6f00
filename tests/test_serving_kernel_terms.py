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
    # shipped profiles: no switch row, so every engine keeps today's behaviour
    for engine in sc.ENGINES:
        for cls in sc.ARCH_CLASSES:
            assert "attention_at_kernel_precision" not in sc.engine_profile(engine, cls, "hopper").params
            assert attention_inputs(sc.engine_profile(engine, cls, "hopper"), H100, "fp8", "bf16") == {}
    assert attention_inputs(_switched("sglang", "mla", True), H100, "fp8", "bf16") == {
        "attention_peak_flops_per_second": bf16}
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


def test_shipped_reproductions_do_not_move():
    # the switches are off in every shipped profile (not adopted): the reproductions are those of the table
    got = {d.id: round(100 * sd.reproduce(d)["error"], 1) for d in sd.deployments()}
    assert got == {"LM1": -9.2, "LM2": 17.9, "DS2": -32.6, "DS1": 46.5}
    assert np.isfinite(serving.serve(model="deepseek-v3", gpu="h200", gpus=32, tp=32, ep=32, dp_attention=True,
                                     engine="sglang", precision="fp8").output_tokens_per_second)
