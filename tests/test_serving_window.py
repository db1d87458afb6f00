"""Sliding-window / chunked local attention (hybrid models) in the KV cache and attention cost (issue 12 item 4)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import catalog, inference, serving
from billshape.serving_catalog import _eff, architecture
from billshape.serving_roofline import hardware_inputs, held_kv_bytes_per_token, roofline, window_inputs

WINDOW_KEYS = ("sliding_window_tokens", "sliding_window_layers", "sliding_window_chunked")


def _pair(model, gpu="h100", precision="bf16", **kw):
    """The roofline of ``model`` with its hybrid attention and as if every layer were full attention."""
    hw = hardware_inputs(architecture(model), catalog.gpu(gpu), precision, precision)
    full = {k: x for k, x in hw.items() if k not in WINDOW_KEYS}
    common = dict(kv_memory_fraction=_eff("kv_memory_fraction").value, **serving.default_efficiency(), **kw)
    return roofline(**hw, **common), roofline(**full, **common)


def test_catalog_rows_follow_the_published_configs():
    oss = architecture("gpt-oss-120b")
    assert (oss.sliding_window_tokens, oss.sliding_window_layers, oss.sliding_window_kind) == (128, 18, "sliding")
    assert "sliding_window 128" in oss.source and "layer_types" in oss.source
    assert architecture("gpt-oss-20b").sliding_window_layers == 12
    for m in ("llama-4-scout", "llama-4-maverick"):
        a = architecture(m)
        assert (a.sliding_window_tokens, a.sliding_window_layers, a.sliding_window_kind) == (8192, 36, "chunked")
        assert "attention_chunk_size 8192" in a.source
    # full-attention architectures: empty columns, no roofline keywords (their outputs stay bit for bit)
    for m in ("llama-3.1-70b", "qwen3-235b-a22b", "deepseek-v3"):
        assert not architecture(m).has_window and window_inputs(architecture(m)) == {}


def test_gpt_oss_120b_at_64k_holds_half_the_kv_of_full_attention():
    # 18 of 36 layers cache 128 tokens instead of 65,536: (65,536 + 128) / (2 x 65,536) = 0.5009765625
    ratio = (65536 + 128) / (2 * 65536)
    assert inference.windowed_kv_fraction(65536, 36, 128, 18) == pytest.approx(ratio, rel=1e-15)
    hw = hardware_inputs(architecture("gpt-oss-120b"), catalog.gpu("h100"), "bf16", "bf16")
    assert held_kv_bytes_per_token(hw, 65536) == pytest.approx(ratio * hw["kv_bytes_per_token"], rel=1e-12)
    win, full = _pair("gpt-oss-120b", tensor_parallel=8, input_tokens=64512, output_tokens=1024, mode="static")
    free = 0.9 * 8 * catalog.gpu("h100").memory_bytes - float(win["weight_bytes"])
    per_seq_full = hw["kv_bytes_per_token"] * 65536
    assert float(full["max_batch"]) == np.floor(free / per_seq_full)
    assert float(win["max_batch"]) == np.floor(free / (per_seq_full * ratio))
    assert float(win["max_batch"]) / float(full["max_batch"]) == pytest.approx(1 / ratio, abs=0.03)  # 141 vs 70
    # serve sizes its batch the same way
    s = serving.serve(model="gpt-oss-120b", gpu="h100", gpus=8, input_tokens=64512, output_tokens=1024,
                      precision="bf16", mode="static", batch=1)
    assert s.max_batch == int(win["max_batch"])


def test_windowed_layers_cut_the_decode_step_and_the_long_prefill():
    win, full = _pair("gpt-oss-120b", tensor_parallel=8, input_tokens=32000, output_tokens=1000, batch=64.0,
                      mode="static")
    assert float(win["step_seconds"]) < float(full["step_seconds"])
    assert float(win["prefill_seconds"]) < float(full["prefill_seconds"])
    # a short context inside the window: nothing changes
    win, full = _pair("gpt-oss-120b", tensor_parallel=8, input_tokens=100, output_tokens=20, batch=8.0, mode="static")
    assert float(win["step_seconds"]) == pytest.approx(float(full["step_seconds"]), rel=1e-12)
    assert float(win["prefill_seconds"]) == pytest.approx(float(full["prefill_seconds"]), rel=1e-12)


def test_prefill_context_of_windows_and_chunks():
    # sliding: I/2 inside the window, W - W^2/(2I) beyond; chunked: (q W^2 + r^2) / (2I)
    assert inference.windowed_prefill_context_tokens(100, 128) == 50
    assert inference.windowed_prefill_context_tokens(1024, 128) == 128 - 128 ** 2 / 2048
    assert inference.windowed_prefill_context_tokens(3 * 8192, 8192, chunked=True) == 4096
    assert inference.windowed_prefill_context_tokens(8192 + 100, 8192, chunked=True) == (
        (8192 ** 2 + 100 ** 2) / (2 * 8292))
    assert inference.windowed_prefill_context_tokens(5000, 0) == 2500  # no window: full causal attention


@settings(max_examples=60, deadline=None)
@given(c=st.floats(1, 1e6), w=st.floats(1, 1e5), layers=st.integers(1, 128), frac=st.floats(0, 1),
       chunked=st.booleans())
def test_window_invariants(c, w, layers, frac, chunked):
    lw = float(np.floor(frac * layers))
    f = float(inference.windowed_kv_fraction(c, layers, w, lw))
    assert 0 < f <= 1 + 1e-12
    assert f == pytest.approx(1.0) if (lw == 0 or c <= w) else f < 1
    assert float(inference.windowed_kv_fraction(c, layers, w, 0)) == 1.0
    m = float(inference.windowed_prefill_context_tokens(c, w, chunked))
    assert 0 < m <= min(c / 2.0, w) + 1e-9 * c
