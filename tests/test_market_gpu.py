"""The GPU rental-price history (data/gpu_price_history.csv) and ``market backtest --gpu``."""

import csv
import datetime as dt
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import catalog, market
from billshape.errors import BillshapeInputError
from conftest import assert_one_line_error


def _shipped_rows():
    text = resources.files("billshape.data").joinpath("gpu_price_history.csv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_history_rows_are_sourced_dated_and_catalogued():
    rows = _shipped_rows()
    names = {a.name for a in catalog.accelerators()}
    for r in rows:
        assert r["source"].strip() and r["gpu"] in names
        as_of = dt.date.fromisoformat(r["as_of"])
        assert as_of <= dt.date.fromisoformat(r["retrieved"])  # in force before we read it
        assert float(r["usd_per_gpu_hour"]) > 0


def test_history_has_several_dates_per_gpu():
    rows = _shipped_rows()
    by_gpu = {}
    for r in rows:
        by_gpu.setdefault((r["gpu"], r["tier"]), set()).add(r["as_of"])
    assert len(by_gpu[("h100-sxm", "on-demand")]) >= 4
    assert len(by_gpu[("a100-40gb-sxm", "on-demand")]) >= 4
    assert sum(len(v) >= 2 for v in by_gpu.values()) >= 5


def test_aws_p5_launch_price_is_the_catalogue_price_before_the_cut():
    """The shipped gpu_prices.csv AWS H100 on-demand quote (12.29) is p5.48xlarge's 2023 launch price / 8."""
    launch = [r for r in _shipped_rows() if r["provider"] == "aws" and r["gpu"] == "h100-sxm"
              and r["tier"] == "on-demand" and r["as_of"] == "2023-07-26"]
    assert float(launch[0]["usd_per_gpu_hour"]) == pytest.approx(98.32 / 8)
    after = [r for r in _shipped_rows() if r["provider"] == "aws" and r["gpu"] == "h100-sxm"
             and r["tier"] == "on-demand" and r["as_of"] > "2025-06-01"]
    assert after and all(float(r["usd_per_gpu_hour"]) < 12.29 * 0.75 for r in after)


def test_gpu_backtest_shipped_h100():
    res = market.gpu_backtest("h100")  # alias resolves to h100-sxm
    assert res.gpu == "h100-sxm" and res.tier == "on-demand" and res.provider is None
    assert res.price_column == "usd_per_gpu_hour"
    assert res.rows_used == res.train_rows + res.test_rows >= 5
    assert "epoch-flop-per-dollar" in res.named_trend_errors
    assert res.annual_factor_all < 1  # the H100-hour got cheaper from 2023 to 2025
    assert {"aws", "azure"} <= set(res.providers)
    assert res.assumptions[0].as_of == max(r["as_of"] for r in _shipped_rows())


def _rows(prices, start=2020, provider="p", gpu="h100-sxm", tier="on-demand"):
    return [{"date": dt.date(start + i, 1, 1), "gpu": gpu, "model": gpu, "provider": provider, "tier": tier,
             "region": "", "series": f"{provider}/{tier}", "source": "test", "usd_per_gpu_hour": p}
            for i, p in enumerate(prices)]


@settings(max_examples=30, deadline=None)
@given(p0=st.floats(0.5, 50), factor=st.floats(0.3, 1.5))
def test_gpu_backtest_recovers_an_exact_trend(p0, factor):
    rows = _rows([p0 * factor ** (((dt.date(2020 + i, 1, 1) - dt.date(2020, 1, 1)).days) / 365.25)
                  for i in range(5)])
    res = market.gpu_backtest("h100-sxm", rows, cutoff="2023-01-01")
    assert res.annual_factor_train == pytest.approx(factor, rel=1e-6)
    assert res.median_factor_error == pytest.approx(1.0, abs=1e-6)


def test_gpu_backtest_filters_provider_and_tier():
    rows = _rows([4, 3, 2, 1]) + _rows([9, 9, 9, 9], provider="q") + _rows([1, 1, 1], tier="spot")
    res = market.gpu_backtest("h100-sxm", rows, provider="Q", cutoff="2022-01-01")
    assert res.providers == ["q"] and res.annual_factor_train == pytest.approx(1.0)
    spot = market.gpu_backtest("h100-sxm", rows, tier="spot")
    assert spot.rows_used == 3 and spot.tier == "spot"
    with pytest.raises(BillshapeInputError) as e:
        market.gpu_backtest("h100-sxm", rows, tier="reserved-1y")
    assert e.value.field == "tier"
    with pytest.raises(BillshapeInputError) as e:
        market.gpu_backtest("a100", rows)
    assert e.value.field == "gpu"


def test_read_user_gpu_history(tmp_path):
    f = tmp_path / "g.csv"
    f.write_text("date,gpu,provider,usd_per_gpu_hour\n2022-01-01,H100,x,4\n2023-01-01,h100,x,2\n"
                 "2024-01-01,h100-sxm5,x,1\n")
    rows = market.read_gpu_price_history(f)
    assert {r["gpu"] for r in rows} == {"h100-sxm"} and rows[0]["tier"] == "on-demand"
    res = market.gpu_backtest("h100", rows, cutoff="2024-01-01")
    assert res.annual_factor_train == pytest.approx(0.5, rel=0.01)


def test_cli_gpu_backtest(cli, tmp_path):
    data = cli("market", "backtest", "--gpu", "h100", "--json").json()
    for key in ("gpu", "tier", "providers", "annual_factor_all", "forecasts", "named_trend_errors", "assumptions"):
        assert key in data
    assert np.isfinite(data["median_factor_error"])
    f = tmp_path / "g.csv"
    f.write_text("as_of,gpu,tier,usd_per_gpu_hour\n2022-01-01,a100,spot,2\n2023-01-01,a100,spot,1\n"
                 "2024-01-01,a100,spot,0.5\n")
    data = cli("market", "backtest", "--gpu", "a100", "--tier", "spot", "--file", str(f), "--json").json()
    assert data["annual_factor_train"] == pytest.approx(0.5, rel=0.01)
    assert data["assumptions"][0]["source"] == "user input (--file)"
    screen = cli("market", "backtest", "--gpu", "h100")
    assert screen.code == 0 and "h100-sxm" in screen.out


@pytest.mark.parametrize("args,field", [
    (("--gpu", "h99"), "--gpu"),
    (("--gpu", "h100", "--series", "openai-flagship"), "--series"),
    (("--gpu", "h100", "--price-column", "usd_per_million_output"), "--price-column"),
    (("--gpu", "h100", "--provider", "nobody"), "--provider"),
    (("--gpu", "h100", "--tier", "weekly"), "--tier"),
    (("--tier", "spot"), "--tier"),
    (("--provider", "aws"), "--provider"),
])
def test_cli_gpu_backtest_errors(cli, args, field):
    assert_one_line_error(cli("market", "backtest", *args, "--json"), field)


def test_cli_gpu_backtest_bad_file(cli, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("as_of,gpu,usd_per_gpu_hour\n2022-01-01,h100,-1\n")
    assert_one_line_error(cli("market", "backtest", "--gpu", "h100", "--file", str(f), "--json"), "--file")
    f.write_text("as_of,price\n2022-01-01,1\n")
    assert_one_line_error(cli("market", "backtest", "--gpu", "h100", "--file", str(f), "--json"), "--file")
