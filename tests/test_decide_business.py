import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billshape import business, decide
from billshape.errors import BillshapeInputError


def test_break_even_basic():
    res = decide.break_even(10, 2, 800_000)
    assert res.exists
    assert res.break_even_tokens == pytest.approx(800_000 / (8 / 1e6))
    assert res.break_even_million_tokens == pytest.approx(100_000)


@pytest.mark.parametrize("c", [10, 12])
def test_no_break_even_is_an_answer(c):
    res = decide.break_even(10, c, 1000)
    assert not res.exists and res.break_even_tokens is None
    assert "no break-even" in res.explanation
    assert res.to_dict()["break_even_tokens"] is None


@given(f=st.floats(0, 1e9), p=st.floats(1e-9, 1e-3), frac=st.floats(0, 0.99))
def test_costs_equal_at_break_even(f, p, frac):
    c = p * frac
    v = decide.break_even_tokens(f, p, c)
    assert math.isfinite(v)
    buy = decide.buy_cost_usd(v, p)
    build = decide.build_cost_usd(v, f, c)
    assert buy == pytest.approx(build, rel=1e-9, abs=1e-6)


@given(f=st.floats(1, 1e9), p=st.floats(1e-9, 1e-3), frac=st.floats(0, 0.99), k=st.floats(1.01, 10))
def test_build_wins_above_break_even(f, p, frac, k):
    c = p * frac
    v = decide.break_even_tokens(f, p, c) * k
    assert decide.build_cost_usd(v, f, c) < decide.buy_cost_usd(v, p)


def test_seed_000_payback():
    # T1b: $235,200 over 10,000 users x $10/month = 2.352 months exactly.
    res = business.payback(235_200, 10_000, 10)
    assert res.payback_months == 2.352


def test_payback_with_serving_cost_and_never():
    assert business.payback(1200, 10, 20, 8).payback_months == pytest.approx(10)
    never = business.payback(1200, 10, 5, 8)
    assert never.payback_months is None and not never.pays_back


@given(f=st.floats(1, 1e9), u=st.floats(1, 1e7), r=st.floats(0.01, 1e3), c1=st.floats(0, 1), c2=st.floats(0, 1))
def test_payback_monotone_in_cost(f, u, r, c1, c2):
    lo, hi = sorted((c1 * r, c2 * r))
    assert business.payback_months(f, u, r, lo) <= business.payback_months(f, u, r, hi)


def test_bad_break_even_input():
    with pytest.raises(BillshapeInputError, match="^api_usd_per_million_tokens"):
        decide.break_even(0, 1, 1)
    with pytest.raises(BillshapeInputError, match="^fixed_usd"):
        decide.break_even(2, 1, -5)


def test_cumulative_contribution_reaches_the_fixed_cost_at_payback():
    # seed 000: 10,000 users x $10/month pay back $235,200 in 2.352 months
    res = business.payback(235_200, 10_000, 10.0)
    assert business.cumulative_contribution_usd(res.payback_months, res.monthly_contribution_usd) == \
        pytest.approx(res.fixed_usd, rel=1e-12)
    assert business.cumulative_contribution_usd([0.0, 1.0, 12.0], 100_000.0).tolist() == [0.0, 100_000.0, 1_200_000.0]
