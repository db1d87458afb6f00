"""Price paths, tier discounts, named trends and the trend backtest."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import market
from billshape.errors import BillshapeInputError
from conftest import assert_one_line_error


def test_price_path_annual_factor():
    path = market.price_path(10.0, 25, annual_factor=0.1)
    assert path[0] == 10.0
    assert path[12] == pytest.approx(1.0)  # a16z: 10x cheaper per year
    assert path[24] == pytest.approx(0.1)


def test_price_path_steps_and_vectorised():
    path = market.price_path(1.0, 24, 1.0, ["13:3"])
    assert np.all(path[:12] == 1.0) and np.all(path[12:] == 3.0)  # seed 004: a 3x rise from month 13
    sweep = market.price_path(np.array([1.0, 2.0]), 13, np.array([0.5, 2.0]))
    assert sweep.shape == (2, 13)
    assert sweep[0, 12] == pytest.approx(0.5) and sweep[1, 12] == pytest.approx(4.0)


def test_tier_discount():
    assert market.tier_price(4.0, 0.41) == pytest.approx(2.36)


def test_named_trends_have_sources():
    t = market.trends()
    assert t["a16z-llmflation"].annual_factor == 0.1
    assert t["epoch-frontier-training-cost"].annual_factor == 2.4  # Cottier et al. 2024, arXiv:2405.21015
    assert t["epoch-flop-per-dollar"].annual_factor == pytest.approx(0.5 ** (1 / 2.5), rel=1e-6)
    assert t["epoch-api-price-slow"].annual_factor == pytest.approx(1 / 9)
    assert t["epoch-api-price-fast"].annual_factor == pytest.approx(1 / 900)
    for row in t.values():
        assert row.source and row.as_of


def test_fit_recovers_exact_trend():
    years = np.array([0.0, 0.5, 1.0, 2.0, 3.5])
    factor, p0 = market.fit_trend(years, 30 * 0.1 ** years)
    assert factor == pytest.approx(0.1) and p0 == pytest.approx(30)


@settings(max_examples=50, deadline=None)
@given(st.floats(0.01, 10), st.floats(0.01, 100))
def test_fit_recovers_any_trend(factor, p0):
    years = np.linspace(0, 3, 7)
    f, p = market.fit_trend(years, p0 * factor ** years)
    assert f == pytest.approx(factor, rel=1e-6) and p == pytest.approx(p0, rel=1e-6)


def test_shipped_history_is_dated_and_sourced():
    rows = market.read_price_history()
    assert len(rows) >= 30
    assert {"openai-flagship", "openai-small", "anthropic-opus", "deepseek"} <= {r["series"] for r in rows}


def test_backtest_on_exact_trend_has_no_error(tmp_path):
    csv = tmp_path / "p.csv"
    lines = ["date,model,usd_per_million_input,usd_per_million_output"]
    for i, year in enumerate(range(2020, 2026)):
        lines.append(f"{year}-01-01,m{i},{60 * 0.1 ** i:.12g},1")
    csv.write_text("\n".join(lines))
    rows = market.read_price_history(csv)
    # prices 60, 6, 0.6 ... at dates one calendar year apart: the fit should find ~0.1x per year
    res = market.backtest(rows, cutoff="2023-01-01")
    assert res.annual_factor_train == pytest.approx(0.1, rel=0.01)
    assert res.median_factor_error == pytest.approx(1.0, abs=0.02)
    assert res.beats_flat


def test_backtest_shipped_flagship():
    res = market.backtest(series="openai-flagship")
    assert res.test_rows >= 3 and res.train_rows >= 3
    assert res.annual_factor_all < 1  # list prices of OpenAI's flagship fell over 2023-2026
    assert np.isfinite(res.median_factor_error)


def test_cli_backtest_json(cli, tmp_path):
    data = cli("market", "backtest", "--json").json()
    for key in ("annual_factor_train", "annual_factor_all", "median_factor_error", "flat_median_factor_error",
                "forecasts", "named_trend_errors", "assumptions"):
        assert key in data
    csv = tmp_path / "p.csv"
    csv.write_text("date,usd_per_million_input\n2023-01-01,10\n2024-01-01,5\n2025-01-01,2.5\n2026-01-01,1.25\n")
    data = cli("market", "backtest", "--file", str(csv), "--cutoff", "2025-01-01", "--json").json()
    assert data["annual_factor_train"] == pytest.approx(0.5, rel=0.01)


def test_cli_path_json(cli):
    data = cli("market", "path", "--start-price", "10", "--months", "13", "--trend", "a16z-llmflation", "--json").json()
    assert data["prices"][12]["price"] == pytest.approx(1.0)
    assert data["assumptions"][1]["as_of"] == "2024-11-12"


@pytest.mark.parametrize("content,field", [
    ("date,usd_per_million_input\n2023-01-01,abc\n2024-01-01,1\n2025-01-01,1\n", "--file"),
    ("date,usd_per_million_input\n2023-13-01,1\n2024-01-01,1\n2025-01-01,1\n", "--file"),
    ("date,usd_per_million_input\n2023-01-01,-1\n2024-01-01,1\n2025-01-01,1\n", "--file"),
    ("when,price\n2023-01-01,1\n", "--file"),
    ("date,usd_per_million_input\n2023-01-01,1\n2024-01-01,1\n", "--file"),
])
def test_cli_backtest_bad_file(cli, tmp_path, content, field):
    csv = tmp_path / "bad.csv"
    csv.write_text(content)
    assert_one_line_error(cli("market", "backtest", "--file", str(csv), "--json"), field)


def test_cli_bad_step_and_series(cli):
    assert_one_line_error(cli("market", "path", "--start-price", "1", "--step", "x:3", "--json"), "--step")
    assert_one_line_error(cli("market", "backtest", "--series", "openai-flagshp", "--json"), "--series")


def test_parse_steps_rejects_bad():
    with pytest.raises(BillshapeInputError):
        market.parse_steps(["0:2"])
    with pytest.raises(BillshapeInputError):
        market.parse_steps(["3:-1"])
