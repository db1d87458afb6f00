"""Watch the bill: ``usage forecast`` (and its backtest), ``usage check`` and ``usage anomalies`` on generated
ledgers with known answers (a known trend, a budget crossed on a known day, injected spikes)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape import usage
from billshape.usage import anomalies as A
from billshape.usage import check as C
from billshape.usage import forecast as F
from conftest import assert_one_line_error
from watch_gen import START, daily_rows, series, write_csv

DAYS = [dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range(400)]


def _flat_rows(days: int, usd_per_day: float = 15.0) -> list[dict]:
    """One customer, the same spend every day: input tokens at gpt-4o-mini's USD 0.15 per million."""
    tokens = int(round(usd_per_day / 0.15e-6))
    return [{"day": START + dt.timedelta(days=d), "customer": "acme", "requests": 1000, "input_tokens": tokens,
             "output_tokens": 0} for d in range(days)]


@pytest.fixture(scope="module")
def flat_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat")
    db = str(root / "flat.duckdb")
    usage.ingest([write_csv(root / "flat.csv", _flat_rows(20))], db)
    return db


SPIKES = {(1, 150): "cost", (2, 170): "tokens", (3, 120): "cost"}


@pytest.fixture(scope="module")
def trend_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("trend")
    db = str(root / "trend.duckdb")
    rows = daily_rows(200, 4, seed=1, spikes=SPIKES)
    usage.ingest([write_csv(root / "trend.csv", rows)], db)
    return db, rows


# ------------------------------------------------------------------------------------------ forecast

def test_forecast_of_a_known_trend_holds_the_truth_in_its_band():
    rng = np.random.default_rng(1)
    t = np.arange(150)
    truth = 100 + 1.0 * t + 10 * np.sin(2 * np.pi * t / 7)
    y = truth + rng.normal(0, 5, t.size)
    paths, method = F.simulate_daily(y[:120], 30)
    p10, p50, p90 = F.band(0.0, paths)
    assert method == "ets"
    assert p10 <= truth[120:].sum() <= p90
    assert abs(p50 / truth[120:].sum() - 1) < 0.03
    # the trend is seen: the next 30 days cost more than the last 30
    assert p50 > y[90:120].sum() * 1.05


def test_flat_history_forecasts_the_same_spend(flat_db):
    fc = F.forecast(flat_db, horizon_days=10)
    assert fc.total["method"] == "mean"  # 20 days: fewer than MIN_ETS_DAYS
    assert fc.total["p10"] == fc.total["p50"] == fc.total["p90"] == pytest.approx(150.0)
    m = F.forecast(flat_db)  # month-end: 20 days to date, 11 to come
    assert (m.period_start, m.period_end, m.days_to_come) == ("2025-01-01", "2025-01-31", 11)
    assert m.total["actual_to_date_usd"] == pytest.approx(300.0)
    assert m.total["p50"] == pytest.approx(465.0)
    assert m.growth_monthly == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 60), level=st.floats(0.01, 1e4), noise=st.floats(0, 0.5), h=st.integers(1, 40),
       seed=st.integers(0, 10))
def test_forecast_quantiles_are_ordered(n, level, noise, h, seed):
    rng = np.random.default_rng(seed)
    y = np.clip(level * (1 + noise * rng.standard_normal(n)), 0, None)
    paths, _ = F.simulate_daily(y, h, samples=200, seed=seed)
    p10, p50, p90 = F.band(float(y[-5:].sum()), paths)
    assert 0 <= p10 <= p50 <= p90
    assert np.all(np.isfinite(paths)) and np.all(paths >= 0)


def test_backtest_error_and_coverage():
    """The figure docs/usage.md quotes: 4 customers x 400 days (trend, weekly season, 5 % noise). Before the fix the
    band held 47 of 48 months (98 %, statsmodels' simulate inflating the trend shocks); a calibrated 80 % band holds
    between 65 % and 95 % of 48 trials (about 2.5 binomial sigmas), and the P50 stays as good as it was (2.1 %)."""
    days, groups = series(daily_rows(400, 4, seed=3))
    bt = F.backtest_series(days, groups, samples=1000, by="customer")
    print(f"\nbacktest: {len(bt.trials)} trials over {len(bt.months)} months, MAPE {bt.mape:.2f} %, "
          f"coverage P10-P90 {bt.coverage:.0%}")
    assert len(bt.months) == 12 and len(bt.trials) == 48
    assert bt.mape < 2.6
    assert 0.65 <= bt.coverage <= 0.95


# held-out ledgers: nothing was chosen on them (other seeds, trend, noise, weekend and spikes); the last figure is
# the P50's mean error [%] before the fix (statsmodels' simulate), which the fix must not worsen by more than 10 %
_HELD_OUT_SPIKES = {(c, d): ("cost" if (c + d) % 2 else "tokens") for c in range(4) for d in (75, 140, 230, 310, 365)}
HELD_OUT = {
    "seed 7": (dict(seed=7), 2.43),
    "trend 1 %/day, noise 10 %": (dict(seed=11, trend=0.01, noise=0.10), 3.38),
    "trend 0.2 %/day, noise 2 %, weekend 0.4, spikes": (dict(seed=5, trend=0.002, noise=0.02, weekend=0.4,
                                                            spikes=_HELD_OUT_SPIKES), 6.05),
}


def test_backtest_band_is_calibrated_on_held_out_ledgers():
    """Pooled over three generated ledgers the model was not tuned on (144 trials): the share of months inside
    P10-P90 is within 3 binomial sigmas of 80 % (0.70-0.90; before the fix: 134 of 144, 93 %), and each ledger's
    P50 error is no worse than before the fix (10 % slack for the paths' Monte Carlo noise)."""
    inside = trials = 0
    for name, (kw, mape_before) in HELD_OUT.items():
        days, groups = series(daily_rows(400, 4, **kw))
        bt = F.backtest_series(days, groups, samples=1000, by="customer")
        print(f"\n{name}: MAPE {bt.mape:.2f} % (before {mape_before} %), coverage {bt.coverage:.0%} of {len(bt.trials)}")
        assert len(bt.trials) == 48
        assert bt.mape <= 1.1 * mape_before
        inside += sum(t["inside"] for t in bt.trials)
        trials += len(bt.trials)
    assert trials == 144
    assert 0.70 <= inside / trials <= 0.90


def test_trend_shocks_use_the_error_form_gain():
    """:func:`F.ets_simulate` is statsmodels' additive Holt-Winters recursion from the same fitted states; with the
    trend gain statsmodels' ``simulate`` uses (beta* instead of alpha beta*) it gives statsmodels' own moments, and
    the correct gain gives a month-sum spread several times narrower (the over-wide band's cause)."""
    import warnings

    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    days, groups = series(daily_rows(200, 3, seed=3))
    y = groups["c2"]["usd"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = ExponentialSmoothing(y, trend="add", seasonal="add", seasonal_periods=7,
                                   initialization_method="heuristic").fit(use_brute=False)
        theirs = np.asarray(fit.simulate(31, repetitions=20000, error="add", random_state=0)).T
    p = fit.params
    a, b, g = p["smoothing_level"], p["smoothing_trend"], p["smoothing_seasonal"]
    sigma = np.sqrt(np.sum((y - fit.fittedvalues) ** 2) / (y.size - 14))
    args = (fit.level[-1], fit.trend[-1], fit.season[-7:])
    as_statsmodels = F.ets_simulate(*args, a, b / a, g, sigma, 31, 20000, 0)
    np.testing.assert_allclose(as_statsmodels.mean(axis=0), fit.forecast(31), atol=0.02 * y[-30:].mean())
    np.testing.assert_allclose(as_statsmodels.std(axis=0), theirs.std(axis=0), rtol=0.05)
    ours = F.ets_simulate(*args, a, b, g, sigma, 31, 20000, 0)
    assert ours.sum(axis=1).std() < 0.5 * theirs.sum(axis=1).std()
    paths, method = F.simulate_daily(y, 31, samples=20000)
    assert method == "ets"
    np.testing.assert_allclose(paths.sum(axis=1).std(), ours.sum(axis=1).std(), rtol=0.05)


def test_forecast_cli_json_png_and_fragment(cli, trend_db, tmp_path):
    db, rows = trend_db
    png, frag = tmp_path / "f.png", tmp_path / "growth.yaml"
    r = cli("usage", "forecast", "--db", db, "--by", "customer", "--json", "--png", png, "--scenario-out", frag)
    assert r.code == 0, r.err
    d = r.json()
    assert {g["key"] for g in d["groups"]} == {"c0", "c1", "c2", "c3"}
    for g in d["groups"] + [d["total"]]:
        assert g["p10"] <= g["p50"] <= g["p90"]
    assert d["period_end"] == "2025-07-31" and d["as_of"] == "2025-07-19"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import yaml

    from billshape.plan import parse

    f = yaml.safe_load(frag.read_text())
    assert f == d["scenario_fragment"] and 0 < f["product"]["growth_monthly"] < 0.2  # the generator's trend: +12 %/month at most
    parse({"name": "t", "horizon_months": 12, "discount_rate_annual": 0.1,  # a valid scenario with the growth merged in
           "product": {"users_start": 100, "price_per_user_month_usd": 10, **f["product"]}}, "growth")
    bt = cli("usage", "forecast", "--db", db, "--backtest", "--json")
    assert bt.code == 0, bt.err
    assert set(bt.json()) >= {"mape", "coverage", "trials", "months"}


@pytest.mark.parametrize("args, flag", [
    (("--horizon-days", "0"), "--horizon-days"),
    (("--samples", "5"), "--samples"),
    (("--backtest", "--horizon-days", "5"), "--horizon-days"),
])
def test_forecast_bad_input(cli, flat_db, args, flag):
    assert_one_line_error(cli("usage", "forecast", "--db", flat_db, *args), flag)


# ------------------------------------------------------------------------------------------ check

def test_budget_crossed_on_a_known_day(cli, flat_db):
    r = cli("usage", "check", "--db", flat_db, "--budget-usd", "100", "--period", "month", "--json")
    assert r.code == 1, r.err  # a breach
    d = r.json()
    (b,) = d["breaches"]
    assert (b["key"], b["amount"], b["since"]) == ("(all)", pytest.approx(300.0), "2025-01-07")  # 7 x $15 >= $100
    levels = {lv["threshold"]: lv["since"] for lv in d["statuses"][0]["levels"]}
    assert levels == {0.8: "2025-01-06", 0.9: "2025-01-06", 1.0: "2025-01-07"}  # $90 on the 6th
    ok = cli("usage", "check", "--db", flat_db, "--budget-usd", "400", "--json")
    assert ok.code == 0, ok.err
    s = ok.json()["statuses"][0]
    assert not s["breach"] and s["levels"] == [] and s["projected_breach_date"] == "2025-01-27"  # 300 + 7 x 15
    week = cli("usage", "check", "--db", flat_db, "--budget-usd", "100", "--period", "week", "--json").json()
    assert week["period_start"] == "2025-01-20" and week["ok"]  # a Monday: $15 so far this week


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e3), min_size=1, max_size=40), st.floats(0.01, 2e4))
def test_breach_iff_spend_reaches_budget(daily, budget):
    s = C.budget_status(DAYS[:len(daily)], daily, budget)
    assert s["breach"] == (float(np.sum(daily)) >= budget)
    assert (s["since"] is not None) == s["breach"]


def test_cost_per_request_and_margin_rules(cli, flat_db, tmp_path):
    # $15 a day over 1000 requests: $0.015 a request
    r = cli("usage", "check", "--db", flat_db, "--max-cost-per-request", "0.01", "--json")
    assert r.code == 1
    (b,) = r.json()["breaches"]
    assert b["rule"] == "max_cost_per_request" and b["amount"] == pytest.approx(0.015) and b["since"] == "2025-01-01"
    assert cli("usage", "check", "--db", flat_db, "--max-cost-per-request", "0.02").code == 0
    rev = tmp_path / "revenue.csv"
    rev.write_text("customer,revenue_usd\n(all),620\n")  # $20 a day over January: margin 1 - 15/20 = 25 %
    m = cli("usage", "check", "--db", flat_db, "--min-margin", "0.3", "--revenue", rev, "--json")
    assert m.code == 1
    st_ = m.json()["statuses"][0]
    assert st_["margin"] == pytest.approx(0.25) and st_["projected_margin"] == pytest.approx(0.25)
    assert cli("usage", "check", "--db", flat_db, "--min-margin", "0.2", "--revenue", rev).code == 0
    other = tmp_path / "other.csv"
    other.write_text("customer,revenue_usd\nnobody,620\n")
    assert_one_line_error(cli("usage", "check", "--db", flat_db, "--min-margin", "0.2", "--revenue", other), "--revenue")
    scn = tmp_path / "s.yaml"
    scn.write_text("name: t\nhorizon_months: 12\nproduct:\n  users_start: 10\n  price_per_user_month_usd: 10\n")
    sc = cli("usage", "check", "--db", flat_db, "--min-margin", "0", "--scenario", scn, "--json")
    assert sc.code == 1  # one user (no user_id in the ledger) at $10 a month against $15 a day
    assert sc.json()["statuses"][0]["revenue_usd"] == pytest.approx(10 * 31 / (365.25 / 12), abs=1e-6)
    rules = tmp_path / "rules.yaml"
    rules.write_text("budget_usd: 100\nperiod: month\n")
    assert cli("usage", "check", "--db", flat_db, "--rules", rules).code == 1


@pytest.mark.parametrize("args, flag", [
    (("--budget-usd", "-3"), "--budget-usd"),
    (("--min-margin", "0.2"), "--min-margin"),
    ((), "--budget-usd"),
    (("--budget-usd", "10", "--period", "year"), "--period"),
])
def test_check_bad_input(cli, flat_db, args, flag):
    assert_one_line_error(cli("usage", "check", "--db", flat_db, *args), flag)


# ------------------------------------------------------------------------------------------ anomalies

def test_anomaly_recall_and_false_alarms():
    """Injected spikes over 6 generated ledgers of 8 customers x 180 days: every spike found, at most 1 false alarm
    per 1,000 customer-days (the figures docs/usage.md quotes)."""
    spikes_n = found_n = false_n = group_days = 0
    for seed in range(6):
        rng = np.random.default_rng(seed + 10)
        spikes = {(c, int(d)): ("cost" if rng.random() < 0.5 else "tokens")
                  for c in range(8) for d in rng.choice(np.arange(45, 180), 4, replace=False)}
        days, groups = series(daily_rows(180, 8, seed=seed, spikes=spikes))
        res = A.anomalies_series(days, groups, "customer")
        found = {(int(a["key"][1:]), (dt.date.fromisoformat(a["period"]) - START).days) for a in res.anomalies}
        spikes_n += len(spikes)
        found_n += len(found & set(spikes))
        false_n += len(found - set(spikes))
        group_days += res.group_periods
    rate = 1000 * false_n / group_days
    print(f"\nanomalies: recall {found_n}/{spikes_n}, {false_n} false alarms over {group_days} customer-days "
          f"({rate:.2f} per 1,000)")
    assert found_n == spikes_n
    assert rate <= 1.0


def test_a_quiet_weekend_and_a_trend_are_not_anomalies():
    days, groups = series(daily_rows(200, 4, seed=2, weekend=0.3, trend=0.01))
    assert A.anomalies_series(days, groups, "customer").anomalies == []


def test_anomalies_cli_names_the_rows(cli, trend_db):
    db, rows = trend_db
    r = cli("usage", "anomalies", "--db", db, "--by", "customer", "--json")
    assert r.code == 0, r.err
    got = {(a["key"], a["period"]): a for a in r.json()["anomalies"]}
    want = {(f"c{c}", (START + dt.timedelta(days=d)).isoformat()) for c, d in SPIKES}
    assert set(got) == want
    a = got[("c2", (START + dt.timedelta(days=170)).isoformat())]
    assert a["metric"] in ("usd_per_request", "tokens_per_request") and a["direction"] == "high"
    (row,) = a["rows"]  # the day's one row: the one that caused it
    assert row["source_file"] == "trend.csv" and row["customer"] == "c2"
    assert_one_line_error(cli("usage", "anomalies", "--db", db, "--threshold", "0"), "--threshold")


def test_requests_run_through_chains(trend_db):
    from billshape.chains import AnomaliesRequest, CheckRequest, ForecastRequest, run

    db, _ = trend_db
    assert run(ForecastRequest(db=db, horizon_days=7, samples=200)).days_to_come == 7
    assert run(CheckRequest(db=db, budget_usd=1e9)).ok
    assert len(run(AnomaliesRequest(db=db, rows=0)).anomalies) == len(SPIKES)


def test_hourly_anomaly_at_a_known_utc_hour(cli, tmp_path, monkeypatch):
    """By the hour (a diurnal cycle, 10 days): the one hour whose tokens per request jump x4 is found, named in UTC
    whatever the local time zone."""
    import time

    rng = np.random.default_rng(4)
    lines = ["request_id,timestamp,provider,model,customer,feature,requests,input_tokens,output_tokens"]
    spike = dt.datetime(2025, 1, 9, 15, tzinfo=dt.timezone.utc)
    for h in range(24 * 10):
        when = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=h)
        req = int(200 * (1.5 + np.sin(2 * np.pi * h / 24)) * (1 + 0.05 * rng.standard_normal()))
        per = 2000 * (1 + 0.03 * rng.standard_normal()) * (4 if when == spike else 1)
        lines.append(f"h{h},{when:%Y-%m-%dT%H:%M:%SZ},openai,gpt-4o-mini,acme,chat,{req},{int(req * per)},{req * 300}")
    (tmp_path / "hours.csv").write_text("\n".join(lines) + "\n")
    db = str(tmp_path / "hours.duckdb")
    usage.ingest([str(tmp_path / "hours.csv")], db)
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        r = cli("usage", "anomalies", "--db", db, "--grain", "hour", "--json")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert r.code == 0, r.err
    (a,) = r.json()["anomalies"]
    assert a["period"] == spike.isoformat() and a["metric"] in ("tokens_per_request", "usd_per_request")
    assert a["rows"][0]["ts"] == spike.isoformat()
