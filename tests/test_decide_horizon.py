"""Build vs buy over a horizon: monthly costs, NPV, crossover, recheck at next year's API price."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape.decide import break_even, build_vs_buy_horizon, horizon_cashflows
from conftest import assert_one_line_error


def test_flat_prices_crossover_matches_break_even():
    # F = 500k, p - c = $8/M: V* = 62.5B tokens; at 10B tokens/month the cumulative build cost falls below
    # the cumulative buy cost in month ceil(62.5 / 10) = 7.
    res = build_vs_buy_horizon(10, 2, 500_000, 1e10, 24)
    assert res.crossover_month == 7
    assert res.break_even_tokens == pytest.approx(6.25e10)
    assert res.decision == "build"
    assert res.npv_saving_usd == pytest.approx(24 * 1e10 * 8e-6 - 500_000)
    assert res.recheck["decision"] == "build" and res.recheck["break_even_tokens"] == pytest.approx(6.25e10)
    rows = res.monthly
    assert len(rows) == 24 and rows[0]["own_usd"] == pytest.approx(500_000 + 2e4)
    assert rows[-1]["cumulative_api_usd"] == pytest.approx(24 * 1e5)


def test_discounting_lowers_npv():
    a = build_vs_buy_horizon(10, 2, 500_000, 1e10, 24).npv_saving_usd
    b = build_vs_buy_horizon(10, 2, 500_000, 1e10, 24, discount_rate_annual=0.1).npv_saving_usd
    # each month's saving of $80k is discounted by 1.1^-((m-1)/12)
    m = np.arange(1, 25)
    assert b == pytest.approx(-500_000 + np.sum(80_000 * 1.1 ** (-(m - 1) / 12)))
    assert b < a


def test_falling_api_price_flips_the_recheck():
    # seed 003: a build justified at this year's API price can be underwater next year (10x/yr fall).
    res = build_vs_buy_horizon(10, 2, 500_000, 1e10, 12, api_price_annual_factor=0.1)
    assert res.recheck["api_usd_per_million_tokens"] == pytest.approx(1.0)
    assert res.recheck["decision"] == "buy" and res.recheck["break_even_tokens"] is None


def test_price_step_and_growth():
    # API price triples from month 7 (seed 004's 3-5x rise): building pays back sooner
    flat = build_vs_buy_horizon(10, 2, 2_000_000, 1e10, 36)
    step = build_vs_buy_horizon(10, 2, 2_000_000, 1e10, 36, api_price_steps=["7:3"])
    assert step.crossover_month < flat.crossover_month
    grown = horizon_cashflows(0, 1e-6, 0, 100.0, 3, volume_growth_per_month=0.5)
    assert grown["api_usd"] == pytest.approx([1e-4, 1.5e-4, 2.25e-4])


def test_own_cost_above_api_price_is_an_answer():
    res = build_vs_buy_horizon(1, 2, 100_000, 1e10, 12)
    assert res.exists is False and res.decision == "buy" and res.crossover_month is None
    assert res.recheck["break_even_tokens"] is None


def test_crossback_when_price_falls():
    res = build_vs_buy_horizon(10, 2, 500_000, 2e10, 24, api_price_annual_factor=0.1)
    assert res.crossover_month == 5 and res.crossback_month is not None and res.crossback_month > 5


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 1e7), st.floats(0.1, 50), st.floats(0, 40), st.floats(1e6, 1e11), st.integers(1, 60),
       st.floats(-0.1, 0.2), st.floats(0.05, 3))
def test_at_the_crossover_cumulative_costs_cross(fixed, p, c, vol, months, growth, factor):
    out = horizon_cashflows(fixed, p / 1e6, c / 1e6, vol, months, volume_growth_per_month=growth,
                            api_price_annual_factor=factor)
    m = int(out["crossover_month"])
    cum_api, cum_own = out["cumulative_api_usd"], out["cumulative_own_usd"]
    if m == 0:
        # never crosses within the horizon: build was never at or below buy
        assert np.all(cum_own > cum_api)
    else:
        assert cum_own[m - 1] <= cum_api[m - 1]
        assert np.all(cum_own[: m - 1] > cum_api[: m - 1])


def test_vectorised_sweep_matches_single_cases():
    fixed = np.array([1e5, 5e5, 1e6])
    out = horizon_cashflows(fixed, 1e-5, 2e-6, 1e10, 24)
    for i, f in enumerate(fixed):
        one = horizon_cashflows(f, 1e-5, 2e-6, 1e10, 24)
        assert out["npv_saving_usd"][i] == pytest.approx(one["npv_saving_usd"])
        assert out["crossover_month"][i] == one["crossover_month"]


def test_cli_breakeven_horizon_keys(cli):
    res = cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "500000", "--volume-per-month", "1e10",
              "--months", "24", "--volume-growth-per-month", "0.02", "--api-price-annual-factor", "0.5",
              "--api-price-step", "13:3", "--own-cost-annual-factor", "0.9", "--discount-rate-annual", "0.08", "--json")
    assert res.code == 0, res.err
    data = res.json()
    for key in ("exists", "break_even_tokens", "monthly", "crossover_month", "decision", "npv_saving_usd", "recheck"):
        assert key in data
    assert data["decision"] in ("build", "buy")
    assert set(data["monthly"][0]) >= {"month", "api_usd", "own_usd", "cumulative_api_usd", "cumulative_own_usd"}
    assert set(data["recheck"]) >= {"decision", "break_even_tokens"}
    # month 13 carries the x3 step on top of 12 months at 0.5x/yr
    assert data["monthly"][12]["api_usd_per_million_tokens"] == pytest.approx(10 * 0.5 * 3)


def test_cli_breakeven_without_months_is_unchanged(cli):
    data = cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "800000", "--json").json()
    assert "monthly" not in data and data["break_even_tokens"] == pytest.approx(1e11)
    from billshape.cli._flags import cli_payload

    assert data == cli_payload(break_even(10, 2, 800000).to_dict())  # the library's provenance, in the CLI's flags


@pytest.mark.parametrize("args,field", [
    (("--volume-per-month", "1e10"), "--months"),
    (("--volume-per-month", "1e10", "--months", "0"), "--months"),
    (("--volume-per-month", "-1", "--months", "12"), "--volume-per-month"),
    (("--volume-per-month", "1e10", "--months", "12", "--api-price-step", "13"), "--api-price-step"),
    (("--volume-per-month", "1e10", "--months", "12", "--volume-growth-per-month", "-1"), "--volume-growth-per-month"),
    (("--volume-per-month", "1e10", "--months", "12", "--api-price-annual-factor", "0"), "--api-price-annual-factor"),
])
def test_cli_breakeven_horizon_bad_input(cli, args, field):
    assert_one_line_error(cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "1", *args, "--json"), field)


# ------------------------------------------------------------------ QA regressions: bounds, exact JSON, money sign
BASE = ("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "1000", "--volume-per-month", "1e9")


@pytest.mark.parametrize("extra, field", [
    (("--months", "1200", "--volume-growth-per-month", "1"), "--months"),
    (("--months", "99999999"), "--months"),
    (("--months", "0"), "--months"),
    (("--months", "60", "--volume-growth-per-month", "1e308"), "--volume-growth-per-month"),
    (("--months", "60", "--volume-growth-per-month", "-1"), "--volume-growth-per-month"),
    (("--months", "60", "--api-price-annual-factor", "1e308"), "--api-price-annual-factor"),
    (("--months", "60", "--own-cost-annual-factor", "0"), "--own-cost-annual-factor"),
    (("--months", "60", "--api-price-step", "13:1e308"), "--api-price-step"),
    (("--months", "60", "--api-price-step", "99999999:3"), "--api-price-step"),
    (("--months", "60", "--discount-rate-annual", "1e308"), "--discount-rate-annual"),
    # each input in bounds, but compounding over 50 years overflows: named, not NaN/inf
    (("--months", "600", "--volume-growth-per-month", "1", "--api-price-annual-factor", "1e4"), "--months"),
])
@pytest.mark.parametrize("json_flag", [(), ("--json",)])
def test_horizon_extreme_inputs_are_one_line_errors(cli, extra, field, json_flag):
    res = cli(*BASE, *extra, *json_flag)
    assert_one_line_error(res, field)
    assert "nan" not in res.err.lower() and "internal error" not in res.err


def test_horizon_volume_bound(cli):
    assert_one_line_error(cli(*BASE[:-1], "1e300", "--months", "12", "--json"), "--volume-per-month")


def test_break_even_exact_for_round_inputs(cli):
    # README: 800k fixed at $10 vs $2 per million -> exactly 1e11 tokens (was 99999999999.99998)
    assert cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "800000", "--json").json()[
        "break_even_tokens"] == 100_000_000_000.0
    d = cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "500000", "--volume-per-month", "2e10",
            "--months", "24", "--api-price-annual-factor", "0.1", "--json").json()
    assert d["break_even_tokens"] == 62_500_000_000.0  # was 62499999999.99999
    assert all(type(r["month"]) is int for r in d["monthly"]) and d["monthly"][2]["month"] == 3
    assert type(d["months"]) is int


def test_negative_money_prints_minus_before_dollar(cli):
    res = cli("breakeven", "--api-price", "10", "--own-cost", "2", "--fixed", "500000", "--volume-per-month", "2e10",
              "--months", "24", "--api-price-annual-factor", "0.1")
    assert res.code == 0
    assert "-$325,952.20" in res.out and "$-" not in res.out


def test_months_not_an_integer_is_one_line_error(cli):
    assert_one_line_error(cli(*BASE, "--months", "1e26", "--json"), "--months")
