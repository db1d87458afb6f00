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


# ------------------------------------------------------------------ QA regressions
@pytest.mark.parametrize("args, field", [
    (("--months", "99999999"), "--months"),
    (("--months", "0"), "--months"),
    (("--annual-factor", "1e308"), "--annual-factor"),
    (("--annual-factor", "1e-308"), "--annual-factor"),
    (("--step", "2:1e308"), "--step"),
    (("--start-price", "1e308"), "--start-price"),
])
def test_path_bounds_are_one_line_errors(cli, args, field):
    opts = {"--start-price": "10", "--months": "12", **dict(zip(args[::2], args[1::2]))}
    res = cli("market", "path", *(x for kv in opts.items() for x in kv), "--json")
    assert_one_line_error(res, field)


def test_path_at_the_bounds_stays_finite(cli):
    d = cli("market", "path", "--start-price", "10", "--months", "600", "--annual-factor", "1e4", "--json").json()
    assert len(d["prices"]) == 600 and d["prices"][-1]["price"] > 1e200


def test_backtest_non_utf8_file_names_flag(cli, tmp_path):
    f = tmp_path / "prices.csv"
    f.write_bytes(b"date,usd_per_million_input\n2024-01-01,\xff\n")
    res = cli("market", "backtest", "--file", str(f), "--json")
    assert_one_line_error(res, "--file")
    assert "UTF-8" in res.err


def test_read_price_history_reads_bom(tmp_path):
    f = tmp_path / "prices.csv"
    f.write_bytes("\ufeffdate,usd_per_million_input\n2024-01-01,10\n2024-06-01,5\n2025-01-01,2\n".encode("utf-8"))
    rows = market.read_price_history(f)
    assert [r["usd_per_million_input"] for r in rows] == [10.0, 5.0, 2.0]


def test_backtest_provenance_of_defaults(cli, tmp_path):
    a = {x["name"]: x for x in cli("market", "backtest", "--series", "openai-flagship", "--json").json()["assumptions"]}
    assert "user input" not in a["price table"]["source"] and "shipped" in a["price table"]["source"]
    assert a["price table"]["as_of"]
    assert "user input" not in a["price column"]["source"]
    f = tmp_path / "p.csv"
    f.write_text("date,usd_per_million_input,usd_per_million_output\n2024-01-01,10,20\n2024-06-01,5,9\n"
                 "2025-01-01,2,5\n2025-06-01,1,3\n")
    a = {x["name"]: x for x in cli("market", "backtest", "--file", str(f), "--price-column", "usd_per_million_output",
                                   "--json").json()["assumptions"]}
    assert a["price table"]["source"] == "user input (--file)"
    assert a["price column"]["source"] == "user input (--price-column)"
