import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billshape import inference
from billshape.errors import BillshapeInputError
from billshape.estimates import serving_cost

pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
frac = st.floats(min_value=0.01, max_value=1.0)


def test_deepseek_decode_node():
    # 8 GPUs decoding 14,800 tokens/s at $2/GPU-hour: about $0.30 per million tokens.
    res = serving_cost(tokens_per_second=14_800, gpus=8, price=2, utilization=1)
    assert res.usd_per_hour == 16
    assert res.usd_per_million_tokens == pytest.approx(0.30, abs=0.005)


def test_input_and_output_priced_apart():
    res = serving_cost(tokens_per_second=1000, input_tokens_per_second=10_000, gpus=1, price=3.6)
    assert res.usd_per_million_output_tokens == pytest.approx(1.0)
    assert res.usd_per_million_input_tokens == pytest.approx(0.1)


def test_doubling_utilization_halves_cost():
    a = inference.usd_per_million_tokens(10.0, 1000.0, 0.4)
    b = inference.usd_per_million_tokens(10.0, 1000.0, 0.8)
    assert a == pytest.approx(2 * b)


def test_price_from_catalog_is_an_assumption_with_source():
    res = serving_cost(tokens_per_second=1000, gpus=1, gpu="h100", provider="aws", tier="on-demand")
    quote = [a for a in res.assumptions if "aws" in a.name][0]
    assert quote.as_of and "SkyPilot" in quote.source


@pytest.mark.parametrize("u", [0, -0.1, 1.01, float("nan")])
def test_utilization_bounds(u):
    with pytest.raises(BillshapeInputError, match=r"\(0, 1\]"):
        inference.usd_per_token(1.0, 1.0, u)


@given(price1=pos, price2=pos, tps=pos, u=frac)
def test_cost_monotone_in_price(price1, price2, tps, u):
    lo, hi = sorted((price1, price2))
    assert inference.usd_per_million_tokens(lo, tps, u) <= inference.usd_per_million_tokens(hi, tps, u)


@given(price=pos, tps=pos, u1=frac, u2=frac)
def test_cost_falls_with_utilization(price, tps, u1, u2):
    lo, hi = sorted((u1, u2))
    assert inference.usd_per_million_tokens(price, tps, hi) <= inference.usd_per_million_tokens(price, tps, lo)


def test_vectorised_over_arrays():
    out = inference.usd_per_million_tokens(np.array([1.0, 2.0]), np.array([100.0, 100.0]), 0.5)
    assert out.shape == (2,) and out[1] == pytest.approx(2 * out[0])
