"""Capacity tiers: reserved base by the hours-share rule, on-demand burst, spot for interruptible work."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape.decide import capacity_plan, optimal_reserved_level, spot_overhead_factor, tiered_cost_usd
from conftest import assert_one_line_error

# An analytic profile: 100 hours, 50 at 10 GPUs, 30 at 20 GPUs, 20 at 40 GPUs.
# With r/o = 1/4 the share of hours above 10 is 50 % (> 25 %: reserve more) and above 20 is 20 % (<= 25 %):
# the optimum is 20 GPUs. Cost = 1 x 20 x 100 + 4 x (20 h x 20 GPUs) = 3,600; all on-demand = 4 x 1,900 = 7,600.
PROFILE = np.array([10] * 50 + [20] * 30 + [40] * 20, dtype=float)


def test_hand_computed_profile():
    assert optimal_reserved_level(PROFILE, 1.0, 4.0) == 20
    res = capacity_plan(PROFILE, 1.0, 4.0)
    assert res.reserved_gpus == 20 and res.total_usd == pytest.approx(3600)
    assert res.on_demand_only_usd == pytest.approx(7600)
    assert res.saving_fraction == pytest.approx(1 - 3600 / 7600)
    assert res.breakdown["on_demand_gpu_hours"] == pytest.approx(400)
    # brute force over every integer level agrees
    costs = [float(tiered_cost_usd(PROFILE, k, 1.0, 4.0)) for k in range(0, 41)]
    assert min(costs) == pytest.approx(3600) and int(np.argmin(costs)) == 20


def test_ratio_thresholds():
    # r/o = 0.6: share above 10 is 0.5 <= 0.6 -> reserve 10; r >= o -> reserve nothing
    assert optimal_reserved_level(PROFILE, 3.0, 5.0) == 10
    assert optimal_reserved_level(PROFILE, 5.0, 5.0) == 0
    # r/o = 0.1: share above 20 is 0.2 > 0.1 -> reserve the peak
    assert optimal_reserved_level(PROFILE, 1.0, 10.0) == 40


def test_spot_for_interruptible_work():
    # the 20 hours at 40 GPUs include 20 interruptible GPUs; spot at 0.8 with 5 % overhead beats bursting at 4
    x = np.where(PROFILE == 40, 20.0, 0.0)
    res = capacity_plan(PROFILE, 1.0, 4.0, x, 0.8, 0.1, 30)
    assert spot_overhead_factor(0.1, 30) == pytest.approx(1 / 0.95)
    assert res.uses_spot
    assert res.breakdown["spot_usd"] == pytest.approx(0.8 * 400 / 0.95)
    assert res.total_usd == pytest.approx(2000 + 0.8 * 400 / 0.95)
    # spot that never finishes (1 interruption/h losing 60 min) is not used
    never = capacity_plan(PROFILE, 1.0, 4.0, x, 0.8, 1.0, 60)
    assert not never.uses_spot and never.total_usd == pytest.approx(3600)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=200), st.floats(0.1, 10), st.floats(0.1, 10), st.floats(0, 10))
def test_raising_on_demand_price_never_lowers_the_reserved_level(demand, r, o, extra):
    d = np.array(demand, dtype=float)
    assert optimal_reserved_level(d, r, o + extra) >= optimal_reserved_level(d, r, o)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=100), st.floats(0.1, 10), st.floats(0.1, 10))
def test_rule_level_is_the_brute_force_minimum(demand, r, o):
    d = np.array(demand, dtype=float)
    level = optimal_reserved_level(d, r, o)
    best = min(float(tiered_cost_usd(d, k, r, o)) for k in range(0, 31))
    assert float(tiered_cost_usd(d, level, r, o)) <= best * (1 + 1e-12) + 1e-9


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 48), st.data())
def test_tiered_cost_of_2d_demand_is_the_row_by_row_cost(rows, hours, data):
    """A batch of profiles (rows x hours) costs what each row costs alone: H is the hours axis's length, not the
    array's size (the reserved term was ``rows`` times too large)."""
    cell = st.floats(0, 100, allow_nan=False)
    d = np.array(data.draw(st.lists(st.lists(cell, min_size=hours, max_size=hours), min_size=rows, max_size=rows)))
    level = np.array(data.draw(st.lists(st.floats(0, 100), min_size=rows, max_size=rows)))
    r = np.array(data.draw(st.lists(st.floats(0.1, 10), min_size=rows, max_size=rows)))
    o = np.array(data.draw(st.lists(st.floats(0.1, 10), min_size=rows, max_size=rows)))
    one_by_one = [float(tiered_cost_usd(d[i], level[i], r[i], o[i])) for i in range(rows)]
    assert tiered_cost_usd(d, level, r, o).tolist() == one_by_one
    assert tiered_cost_usd(d.T, level, r, o, hours_axis=0).tolist() == one_by_one


def test_tiered_cost_hand_computed_batch():
    d = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 4.0]])  # 3 profiles x 2 hours
    # r R H + o sum(max(d - R, 0)), R = 2, r = 1, o = 4: 4 + 4; 4 + 0; 4 + 8
    assert tiered_cost_usd(d, 2.0, 1.0, 4.0).tolist() == [8.0, 4.0, 12.0]


def test_vectorised_over_prices():
    o = np.array([1.5, 4.0, 10.0])
    assert list(optimal_reserved_level(PROFILE, 1.0, o)) == [10, 20, 40]


def test_cli_capacity_example(cli):
    res = cli("capacity", "--demand", "examples/demand_week.csv", "--reserved-price", "1.9", "--on-demand-price", "3.9",
              "--spot-price", "1.2", "--spot-interruptions-per-hour", "0.05", "--checkpoint-minutes", "10", "--json")
    assert res.code == 0, res.err
    data = res.json()
    for key in ("reserved_gpus", "total_usd", "on_demand_only_usd", "saving_fraction", "breakdown", "assumptions"):
        assert key in data
    assert 0 < data["saving_fraction"] < 1 and data["total_usd"] < data["on_demand_only_usd"]


def test_cli_capacity_hand_profile(cli, tmp_path):
    f = tmp_path / "d.csv"
    f.write_text("hour,gpus\n" + "\n".join(f"{h},{int(g)}" for h, g in enumerate(PROFILE)) + "\n")
    data = cli("capacity", "--demand", str(f), "--reserved-price", "1", "--on-demand-price", "4", "--json").json()
    assert data["reserved_gpus"] == 20 and data["total_usd"] == pytest.approx(3600)


@pytest.mark.parametrize("content", [
    "hour,gpus\n0,1\n2,1\n",             # gap
    "hour,gpus\n0,1\n1,-2\n",            # negative
    "hour,gpus\n0,1\n1,many\n",          # non-numeric
    "hour,gpus\n0,1\n0,1\n",             # duplicate hour
    "hour,gpus,interruptible_gpus\n0,1,2\n",  # interruptible above total
    "time,load\n0,1\n",                  # wrong columns
    "hour,gpus\n",                       # empty
    "hour,gpus\n0,nan\n",                # NaN
])
def test_cli_capacity_bad_demand(cli, tmp_path, content):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    res = cli("capacity", "--demand", str(f), "--reserved-price", "1", "--on-demand-price", "4", "--json")
    assert_one_line_error(res, "--demand")


def test_cli_capacity_bad_prices(cli):
    res = cli("capacity", "--demand", "examples/demand_week.csv", "--reserved-price", "0", "--on-demand-price", "4", "--json")
    assert_one_line_error(res, "--reserved-price")
    res = cli("capacity", "--demand", "nope.csv", "--reserved-price", "1", "--on-demand-price", "4", "--json")
    assert_one_line_error(res, "--demand")


# ------------------------------------------------------------------ QA regressions
PRICES = ("--reserved-price", "1.9", "--on-demand-price", "3.9")


def test_shipped_demand_by_name_matches_example_file(cli):
    by_name = cli("capacity", "--demand", "example-week", *PRICES, "--json").json()
    by_path = cli("capacity", "--demand", "examples/demand_week.csv", *PRICES, "--json").json()
    assert by_name["total_usd"] == by_path["total_usd"] == pytest.approx(5170.8)
    assert type(by_name["reserved_gpus"]) is int and by_name["reserved_gpus"] == 14
    demand = next(a for a in by_name["assumptions"] if a["name"] == "demand")
    assert "shipped" in demand["value"]


def test_unknown_demand_name_suggests_closest(cli):
    res = cli("capacity", "--demand", "example-wek", *PRICES)
    assert_one_line_error(res, "--demand")
    assert "example-week" in res.err


@pytest.mark.parametrize("flag", ["--reserved-price", "--on-demand-price", "--spot-price"])
def test_capacity_price_bounds(cli, flag):
    opts = {"--demand": "example-week", "--reserved-price": "1.9", "--on-demand-price": "3.9", flag: "1e308"}
    assert_one_line_error(cli("capacity", *(x for kv in opts.items() for x in kv), "--json"), flag)


def test_capacity_csv_gpu_bound_and_encoding(cli, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("hour,gpus\n0,1e308\n1,3\n")
    assert_one_line_error(cli("capacity", "--demand", str(big), *PRICES), "--demand")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"hour,gpus\n0,\xff\n")
    res = cli("capacity", "--demand", str(bad), *PRICES)
    assert_one_line_error(res, "--demand")
    assert "not UTF-8" in res.err


def test_capacity_reads_bom_csv(cli, tmp_path):
    f = tmp_path / "bom.csv"
    f.write_bytes("\ufeffhour,gpus\n0,3\n1,5\n".encode("utf-8"))
    assert cli("capacity", "--demand", str(f), *PRICES, "--json").json()["hours"] == 2


def test_capacity_human_output_percent_and_title(cli):
    res = cli("capacity", "--demand", "example-week", *PRICES)
    assert res.code == 0
    assert res.out.splitlines()[0].strip() == "Capacity tiers"
    assert "40.7%" in res.out and "0.4065" not in res.out


def test_firm_demand_is_what_is_left_for_reserved_and_on_demand():
    from billshape.decide_capacity import firm_demand_gpus

    d, x = np.array([8.0, 20.0, 14.0]), np.array([6.0, 0.0, 14.0])
    assert firm_demand_gpus(d, x).tolist() == [2.0, 20.0, 0.0]
    # the plan reserves and bursts exactly the firm part when the interruptible part goes to spot
    plan = capacity_plan(d, 1.9, 3.9, x, spot_usd_per_gpu_hour=0.5)
    firm = firm_demand_gpus(d, x)
    assert plan.uses_spot and plan.reserved_gpus == optimal_reserved_level(firm, 1.9, 3.9)
    assert plan.breakdown["on_demand_gpu_hours"] == float(np.maximum(firm - plan.reserved_gpus, 0).sum())
