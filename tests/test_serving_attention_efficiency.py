"""The attention kernels' own efficiency of sglang x mla x hopper: FlashAttention-3's published causal forward
(Shah et al. 2024, arXiv 2407.08608, Fig. 5(d); docs/serving.md "Two kernel facts", (c))."""

from decimal import Decimal

import pytest

from billshape import catalog, inference, serving, serving_catalog as sc
from billshape.serving_roofline import attention_inputs, hardware_inputs, roofline

#: FlashAttention-3, Fig. 5(d) "Forward, with causal mask, head dim 128", H100 80GB SXM5: 579 TFLOPs/s at 4k
#: (read off the bar label; also Dao-AILab/flash-attention assets/flash3_fp16_fwd.png)
FA3_CAUSAL_4K = Decimal("579e12")
#: NVIDIA H100 SXM datasheet dense BF16, 989.4 TFLOPS (the paper's "989 TFLOPS" at its fixed 1830 MHz clock)
BF16_PEAK = Decimal("989.4e12")


def _profile():
    return sc.engine_profile("sglang", "mla", "hopper")


def test_row_is_the_cited_number_over_the_bf16_peak():
    p = _profile()
    want = (FA3_CAUSAL_4K / BF16_PEAK).quantize(Decimal("0.0001"))
    assert want == Decimal("0.5852")
    assert Decimal(str(catalog.gpu("h100-sxm").peak_flops_per_second("bf16"))) == BF16_PEAK
    assert Decimal(str(p.params["attention_compute_efficiency"])) == want
    row = p.rows["attention_compute_efficiency"]
    assert "2407.08608" in row.source and "579" in row.source and "5(d)" in row.source
    assert row.as_of == "2024-07-11" and row.note.strip()
    # a kernel measurement above the dense prior: attention runs faster than at compute_efficiency
    assert p.params["attention_compute_efficiency"] > p.params["compute_efficiency"]
    # only this profile has it: Ampere (no DeepGEMM rows) and vllm x mla keep the model before it
    for other in (sc.engine_profile("sglang", "mla", "ampere"), sc.engine_profile("vllm", "mla", "hopper"),
                  sc.engine_profile("trtllm", "mla", "hopper")):
        assert "attention_compute_efficiency" not in other.params


def test_attention_peak_is_scaled_by_the_row():
    p = _profile()
    h800 = catalog.gpu("h800")
    got = attention_inputs(p, h800, "fp8", "bf16")["attention_peak_flops_per_second"]
    want = (Decimal(str(h800.peak_flops_per_second("bf16"))) * Decimal(str(p.params["attention_compute_efficiency"]))
            / Decimal(str(p.params["compute_efficiency"])))
    assert Decimal(str(got)) == pytest.approx(want, rel=Decimal("1e-12"))
    # the switch off or an FP8 KV cache (no 16-bit kernel row): the row does nothing
    off = p.model_copy(update={"params": {**p.params, "attention_at_kernel_precision": 0.0}})
    assert attention_inputs(off, h800, "fp8", "bf16") == {}
    assert attention_inputs(p, h800, "fp8", "fp8") == {}


def test_batch_one_prefill_attention_time_uses_the_row():
    """A static batch-1 prefill of a 4,096-token prompt: the TTFT with the row minus the TTFT without it is the
    prompt's causal attention FLOPs per GPU, 4 L d_attn (I/2) I / t, times 1/(eta_c P16) - 1/(eta_a P16) (the
    prefill time is FLOPs / (eta_c P) plus the all-reduces, which the row does not touch)."""
    p = _profile()
    arch = serving.architecture("deepseek-v3")
    acc = catalog.gpu("h800")
    hw = hardware_inputs(arch, acc, "fp8", "bf16")
    t, i_len = 8, 4096

    def ttft(peak):
        r = roofline(**hw, tensor_parallel=float(t), input_tokens=float(i_len), output_tokens=1.0, batch=1.0,
                     mode="static", attention_peak_flops_per_second=peak, **p.efficiency)
        return Decimal(str(float(r["ttft_seconds"])))

    p16 = Decimal(str(acc.peak_flops_per_second("bf16")))
    shipped = attention_inputs(p, acc, "fp8", "bf16")["attention_peak_flops_per_second"]
    with_row, without = ttft(shipped), ttft(float(p16))
    eta_c = Decimal(str(p.params["compute_efficiency"]))
    eta_a = Decimal(str(p.params["attention_compute_efficiency"]))
    att = 4 * Decimal(arch.layers) * Decimal(str(arch.attention_dim)) * (Decimal(i_len) / 2) * Decimal(i_len) / t
    # the roofline's own attention FLOPs are the same count (inference.forward_flops' attention term)
    assert Decimal(str(float(inference.forward_flops(0.0, i_len, arch.layers, arch.attention_dim, i_len / 2)))) / t \
        == pytest.approx(att, rel=Decimal("1e-12"))
    want = att * (1 / (eta_c * p16) - 1 / (eta_a * p16))
    assert without - with_row == pytest.approx(want, rel=Decimal("1e-6"))
    assert with_row < without
