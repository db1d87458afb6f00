"""Product plans: deterministic hand calculations, market paths, Monte Carlo vs closed form, tornado."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import scenario
from billshape.decide import break_even
from billshape.estimates import serving_cost
from billshape.errors import BillshapeInputError
from billshape.scenario import examples_dir, parse
from plan_loop_baseline import loop_summaries  # benchmarks/ (on sys.path via conftest.py)

SEED000 = examples_dir() / "seed000_image_startup.yaml"


def base(**over) -> dict:
    data = {"horizon_months": 12, "discount_rate_annual": 0.0,
            "product": {"users_start": 1000, "price_per_user_month_usd": 20}}
    for k, v in over.items():
        data[k] = v
    return data


def api_route(share=1.0, pin=1.0, pout=4.0, pcache=None):
    api = {"model": "custom", "usd_per_million_input_tokens": pin, "usd_per_million_output_tokens": pout}
    if pcache is not None:
        api["usd_per_million_cached_input_tokens"] = pcache
    return {"share": share, "api": api}


# --- seed 000 ----------------------------------------------------------------------------------------------

def test_seed000_reproduces_payback_exactly():
    # Seed 000: 280 A100 x 24 h x 14 days x $2.5 = $235,200; 10,000 users x $10 = $100,000/month -> 2.352 months.
    res = scenario.plan(SEED000)
    s = res.summary
    assert res.samples == 1 and res.uncertain_inputs == []
    assert s["payback_month"] == {"p10": 2.352, "p50": 2.352, "p90": 2.352}
    assert res.lifetime["lifetime_training_usd"]["p50"] == 235_200
    assert s["cumulative_profit_usd"]["p50"] == 24 * 100_000 - 235_200
    assert s["contribution_margin_per_user_month_usd"]["p50"] == 10.0
    # fully loaded: (revenue - training amortised over 12 of the 24 months) / user-months
    assert s["fully_loaded_margin_per_user_month_usd"]["p50"] == pytest.approx((2_400_000 - 235_200) / 240_000, rel=1e-12)
    assert s["training_share_of_lifetime_cost"]["p50"] == 1.0
    # NPV at 10 %/yr: -F + sum_m 100,000 (1.1)^(-m/12)
    npv = -235_200 + sum(100_000 * 1.1 ** (-m / 12) for m in range(1, 25))
    assert s["npv_usd"]["p50"] == pytest.approx(npv, rel=1e-12)
    assert res.monthly[0]["training_amortization_usd"] == pytest.approx(235_200 / 12)
    assert res.monthly[12]["training_amortization_usd"] == 0


def test_plan_cli_json_seed000(cli):
    res = cli("plan", str(SEED000), "--json")
    assert res.code == 0, res.err
    data = res.json()
    keys = {"payback_month", "cumulative_profit_usd", "npv_usd", "contribution_margin_per_user_month_usd",
            "fully_loaded_margin_per_user_month_usd", "training_share_of_lifetime_cost"}
    assert keys <= set(data["summary"])
    for k in keys:
        assert set(data["summary"][k]) == {"p10", "p50", "p90"}
    assert data["summary"]["payback_month"]["p50"] == 2.352
    assert len(data["monthly"]) == 24 and data["monthly"][0]["month"] == 1
    assert data["sensitivity"] == [] and data["assumptions"]
    assert any(a["source"].startswith("computed: billshape.estimates.training_bill") and a["value"] == 235_200
               for a in data["assumptions"])
    human = cli("plan", str(SEED000))
    assert human.code == 0 and "2.352" in human.out and "$235,200" in human.out


# --- hand calculations -------------------------------------------------------------------------------------

def test_api_route_cost_per_user_with_cache():
    prod = {"users_start": 1000, "price_per_user_month_usd": 20, "requests_per_user_month": 100,
            "input_tokens_per_request": 1000, "output_tokens_per_request": 500, "cache_hit_rate": 0.5}
    res = parse(base(product=prod, serving={"routes": [api_route(pcache=0.1)]})).evaluate()
    # per request: 1000 x (0.5 x $1 + 0.5 x $0.1)/M + 500 x $4/M = $0.00055 + $0.002; x 100 requests
    per_user = 100 * (1000 * (0.5 * 1.0 + 0.5 * 0.1) + 500 * 4.0) / 1e6
    assert res.summary["contribution_margin_per_user_month_usd"]["p50"] == pytest.approx(20 - per_user, rel=1e-12)
    assert res.monthly[0]["inference_usd"] == pytest.approx(1000 * per_user, rel=1e-12)


def test_reasoning_multiplier_bills_output_tokens():
    prod = {"users_start": 10, "price_per_user_month_usd": 1, "requests_per_user_month": 10,
            "output_tokens_per_request": 1000, "reasoning_multiplier": 3}
    res = parse(base(product=prod, serving={"routes": [api_route(pin=0, pout=10)]})).evaluate()
    assert res.monthly[0]["inference_usd"] == pytest.approx(10 * 10 * 3000 * 10 / 1e6)


def test_self_hosted_deployment_uses_serving_cost_equation():
    # Seed 003's DeepSeek decode node: 8 GPUs at $2, 14,800 tokens/s -> about $0.30 per million output tokens.
    sv = serving_cost(tokens_per_second=14_800, gpus=8, price=2.0, utilization=0.5, input_tokens_per_second=100_000)
    prod = {"users_start": 100, "price_per_user_month_usd": 5, "requests_per_user_month": 1000,
            "input_tokens_per_request": 2000, "output_tokens_per_request": 800}
    route = {"share": 1, "self_hosted": {"tokens_per_second": 14_800, "gpus": 8, "usd_per_gpu_hour": 2,
                                         "utilization": 0.5, "input_tokens_per_second": 100_000}}
    res = parse(base(product=prod, serving={"routes": [route]})).evaluate()
    per_user = 1000 * (2000 * sv.usd_per_million_input_tokens + 800 * sv.usd_per_million_output_tokens) / 1e6
    assert res.monthly[0]["inference_usd"] == pytest.approx(100 * per_user, rel=1e-12)


def test_self_hosted_gpu_price_from_catalog():
    route = {"share": 1, "self_hosted": {"tokens_per_second": 1000, "gpus": 1, "gpu": "h100", "provider": "lambda",
                                         "utilization": 1}}  # per served token (without utilization: a fleet)
    prod = {"users_start": 1, "price_per_user_month_usd": 5, "requests_per_user_month": 1, "output_tokens_per_request": 1e6}
    p = parse(base(product=prod, serving={"routes": [route]}))
    quote = [a for a in p.assumptions if "lambda" in a.name]
    assert quote and quote[0].as_of and quote[0].source
    res = p.evaluate()
    sv = serving_cost(tokens_per_second=1000, gpus=1, gpu="h100", provider="lambda")
    assert res.monthly[0]["inference_usd"] == pytest.approx(sv.usd_per_million_output_tokens)


def test_api_price_from_genai_prices():
    import genai_prices

    prod = {"users_start": 1, "price_per_user_month_usd": 100, "requests_per_user_month": 1,
            "input_tokens_per_request": 1e6, "output_tokens_per_request": 1e6}
    res = parse(base(product=prod, serving={"routes": [{"share": 1, "api": {"model": "gpt-4o-mini"}}]})).evaluate()
    want = float(genai_prices.calc_price(genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000),
                                         "gpt-4o-mini").total_price)
    assert res.monthly[0]["inference_usd"] == pytest.approx(want, rel=1e-9)
    src = [a for a in res.assumptions if a.name.startswith("gpt-4o-mini input price")]
    assert src and "genai-prices" in src[0].source and src[0].as_of


def test_growth_and_churn_compound():
    prod = {"users_start": 1000, "price_per_user_month_usd": 1, "growth_monthly": 0.10, "churn_monthly": 0.04}
    res = parse(base(product=prod)).evaluate()
    for m in (1, 2, 7, 12):
        assert res.monthly[m - 1]["users"] == pytest.approx(1000 * 1.06 ** (m - 1), rel=1e-12)


def test_api_price_step_and_trend():
    prod = {"users_start": 1, "price_per_user_month_usd": 100, "requests_per_user_month": 1,
            "output_tokens_per_request": 1e6}
    step = parse(base(horizon_months=24, product=prod, serving={"routes": [api_route(pin=0, pout=1)]},
                      market={"api_price_steps": [{"month": 4, "factor": 3}]})).evaluate()
    inf = [r["inference_usd"] for r in step.monthly]
    assert inf[2] == pytest.approx(1.0) and inf[3] == pytest.approx(3.0) and inf[-1] == pytest.approx(3.0)
    trend = parse(base(horizon_months=25, product=prod, serving={"routes": [api_route(pin=0, pout=1)]},
                       market={"api_price_trend_annual": 0.5, "gpu_price_trend_annual": 9})).evaluate()
    inf = [r["inference_usd"] for r in trend.monthly]
    assert inf[12] == pytest.approx(0.5) and inf[24] == pytest.approx(0.25) and inf[6] == pytest.approx(0.5 ** 0.5)


def test_market_multiplier_paths_vectorised_matches_scalar():
    # the scenario's price paths come from billshape.market (per-sample trend AND step factors)
    from billshape import market

    months = np.arange(1, 37)
    k = market.multiplier_paths(36, np.array([0.5, 1.0, 2.0]), [(7, np.array([3.0, 4.0, 5.0]))])
    assert k.shape == (3, 36)
    for i, (t, f) in enumerate(((0.5, 3.0), (1.0, 4.0), (2.0, 5.0))):
        want = np.array([t ** ((m - 1) / 12) * (f if m >= 7 else 1.0) for m in months])
        np.testing.assert_allclose(k[i], want, rtol=1e-12)
    np.testing.assert_allclose(market.multiplier_paths(24, 0.1, [(13, 3.0)])[0],
                               market.price_path(1.0, 24, 0.1, ["13:3"]), rtol=0, atol=0)


def test_retraining_and_payback_for_good():
    # $1,000 up front, retrain every 4 months for $1,000 (fraction 1); cash +$300/month.
    data = base(horizon_months=12, product={"users_start": 30, "price_per_user_month_usd": 10},
                training={"total_usd": 1000, "amortization_months": 4, "retrain_every_months": 4})
    res = parse(data).evaluate()
    cash = [r["cash_flow_usd"] for r in res.monthly]
    assert cash[3] == 300 and cash[4] == 300 - 1000 and cash[8] == -700
    # cumulative: -1000 + 300 m - 1000 [m>=5] - 1000 [m>=9]; it is below zero after month 9 and turns
    # non-negative for good at 3000/300 = month 10
    assert res.summary["payback_month"]["p50"] == pytest.approx(10.0)
    assert res.lifetime["lifetime_training_usd"]["p50"] == 3000
    amort = [r["training_amortization_usd"] for r in res.monthly]
    assert amort == pytest.approx([250.0] * 12)


def test_never_pays_back_is_null_not_nan(cli, tmp_path):
    data = base(product={"users_start": 10, "price_per_user_month_usd": 1},
                fixed_monthly={"staff_usd": 1000})
    f = tmp_path / "loss.yaml"
    f.write_text(yaml.safe_dump(data))
    res = cli("plan", str(f), "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["summary"]["payback_month"] == {"p10": None, "p50": None, "p90": None}
    assert out["probability_never_pays_back"] == 1.0
    assert "NaN" not in res.out and "Infinity" not in res.out


def test_training_share_none_when_no_cost():
    res = parse(base()).evaluate()
    assert res.summary["training_share_of_lifetime_cost"] == {"p10": None, "p50": None, "p90": None}
    json.dumps(res.to_dict(), allow_nan=False)


# --- Monte Carlo -------------------------------------------------------------------------------------------

def test_monte_carlo_quantiles_match_closed_form():
    # Cumulative profit = U x H x price - B is linear and increasing in a lognormal price, so its quantiles are
    # U x H x (price quantiles) - B exactly; the sample quantiles of 200,000 draws are within 1 %.
    data = base(horizon_months=10, product={"users_start": 100,
                                            "price_per_user_month_usd": {"dist": "lognormal", "p10": 5, "p90": 20}},
                training={"total_usd": 1000, "amortization_months": 10})
    res = parse(data).evaluate(samples=200_000, seed=1)
    mu, sigma = math.log(10), (math.log(20) - math.log(5)) / (2 * 1.2815515655446004)
    for key, z in (("p10", -1.2815515655446004), ("p50", 0.0), ("p90", 1.2815515655446004)):
        price_q = math.exp(mu + sigma * z)
        assert res.summary["cumulative_profit_usd"][key] == pytest.approx(100 * 10 * price_q - 1000, rel=0.01)
        assert res.summary["contribution_margin_per_user_month_usd"][key] == pytest.approx(price_q, rel=0.01)


@pytest.mark.parametrize("spec,q", [
    ({"dist": "uniform", "low": 2, "high": 4}, {0.1: 2.2, 0.5: 3.0, 0.9: 3.8}),
    ({"dist": "normal", "mean": 10, "sd": 1}, {0.1: 10 - 1.2815515655446004, 0.5: 10.0, 0.9: 10 + 1.2815515655446004}),
    ({"dist": "triangular", "low": 0, "mode": 0, "high": 1}, {0.1: 1 - math.sqrt(0.9), 0.5: 1 - math.sqrt(0.5), 0.9: 1 - math.sqrt(0.1)}),
    ({"dist": "triangular", "low": 1, "mode": 2, "high": 4}, {0.1: 1 + math.sqrt(0.1 * 3 * 1), 0.5: 4 - math.sqrt(0.5 * 3 * 2), 0.9: 4 - math.sqrt(0.1 * 3 * 2)}),
    ({"dist": "lognormal", "p10": 800, "p90": 2500}, {0.1: 800.0, 0.5: math.sqrt(800 * 2500), 0.9: 2500.0}),
])
def test_distribution_ppf_and_samples(spec, q):
    d = scenario._to_number(spec)
    x = d.sample(np.random.default_rng(0), 200_000)
    for p, want in q.items():
        assert d.ppf(p) == pytest.approx(want, rel=1e-9, abs=1e-12)
        assert np.quantile(x, p) == pytest.approx(want, rel=0.02, abs=0.005)


@pytest.mark.parametrize("low,mode,high", [(0, 0.5, 1), (1, 2, 4), (0.3, 0.7, 1.2), (0, 0, 1), (0, 1, 1), (4, 6, 10)])
def test_triangular_draws_follow_the_law(low, mode, high):
    # The two-uniform method of Stein & Keblis (2009) against the triangular CDF (Kolmogorov-Smirnov, 100,000 draws)
    from scipy import stats

    x = scenario._to_number({"dist": "triangular", "low": low, "mode": mode, "high": high}).sample(
        np.random.default_rng(11), 100_000)
    assert x.min() >= low and x.max() <= high
    law = stats.triang((mode - low) / (high - low), loc=low, scale=high - low)
    assert stats.kstest(x, law.cdf).pvalue > 0.001


def test_plan_draws_each_input_from_its_own_law():
    # Batched draws (one generator call per kind of law) keep each input's law and keep the inputs independent
    from scipy import stats

    plan = scenario.load(examples_dir() / "high_volume_self_host.yaml")
    P = plan._draw(np.random.default_rng(2), 50_000)
    for path in plan.uncertain():
        d = plan.values[path]
        x = P[path][:, 0]
        for q in (0.1, 0.5, 0.9):
            assert np.quantile(x, q) == pytest.approx(d.ppf(q), rel=0.03, abs=1e-3), path
    a, b = P["product.growth_monthly"][:, 0], P["training.days"][:, 0]
    assert abs(stats.spearmanr(a, b).statistic) < 0.03


@pytest.mark.parametrize("name", ["api_wrapper_price_shock.yaml", "high_volume_self_host.yaml"])
def test_monthly_inference_follows_the_market_paths(name):
    # The planner's monthly costs (blocked products of market.monthly_factor) equal users x cost per user-month x
    # billshape.market.multiplier_paths, the market module's own price paths (trend and step factors per sample)
    from billshape import market

    plan = scenario.load(examples_dir() / name)
    H = plan.scenario.horizon_months
    P = plan._draw(np.random.default_rng(8), 300)
    sim = plan._simulate(P)
    api_pu, own_pu = plan._route_costs(P)
    g = P.get
    steps = [(st.month, g(f"market.api_price_steps[{i}].factor"))
             for i, st in enumerate(plan.scenario.market.api_price_steps) if st.month <= H]
    want = sim["users"] * (np.asarray(api_pu).reshape(-1, 1) * market.multiplier_paths(
        H, g("market.api_price_trend_annual", 1.0), steps) + np.asarray(own_pu).reshape(-1, 1) * market.multiplier_paths(
        H, g("market.gpu_price_trend_annual", 1.0)))
    # a fleet route's rent is not a cost per token (test_vectorised_summaries_equal_the_plain_loop checks it)
    fleet = sim.get("self_hosted_usd", 0.0)
    np.testing.assert_allclose(sim["inference_usd"] - fleet, want, rtol=1e-12, atol=1e-6 * np.max(sim["inference_usd"]))
    assert np.any(want != 0)


def test_same_result_on_one_thread_or_two(monkeypatch):
    f = examples_dir() / "high_volume_self_host.yaml"
    two = scenario.load(f).evaluate(samples=30_000, seed=5)
    monkeypatch.setattr(scenario, "WORKERS", 1)
    one = scenario.load(f).evaluate(samples=30_000, seed=5)
    assert one.summary == two.summary and one.monthly == two.monthly and one.lifetime == two.lifetime


def test_bracketed_quantiles_equal_a_full_selection(monkeypatch):
    # Above BRACKET_MIN_REST samples past the reservoir the quantiles come from per-chunk bracket candidates; they
    # must be exactly those of a selection over every sample (np.quantile's), not an approximation
    f = examples_dir() / "high_volume_self_host.yaml"
    calls = []
    real = scenario._from_brackets

    def spy(*args):
        out = real(*args)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(scenario, "_from_brackets", spy)
    n = scenario.MONTHLY_RESERVOIR + scenario.BRACKET_MIN_REST + 5_000
    fast = scenario.load(f).evaluate(samples=n, seed=9)
    assert calls and all(calls)
    monkeypatch.setattr(scenario, "BRACKET_MIN_REST", 10**12)
    calls.clear()
    slow = scenario.load(f).evaluate(samples=n, seed=9)
    assert not calls
    assert fast.summary == slow.summary and fast.lifetime == slow.lifetime


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=400), st.floats(-2e6, 2e6), st.floats(0, 2e6),
       st.booleans())
@settings(max_examples=150, deadline=None)
def test_from_brackets_is_exact_or_declines(xs, lo, width, payback):
    # Whatever the brackets, the answer is np.quantile's to the bit, or None (the caller then selects over all)
    x = np.array(xs)
    key = "payback_month" if payback else "npv_usd"
    if payback:
        x = np.abs(x) % 30
        x[::7] = np.inf  # never pays back
    br = [(lo, lo + width)] * len(scenario.QUANTILES)
    head = len(xs) // 3
    parts = [scenario._gather(scenario._order_values(key, x[head:]), br)]
    got = scenario._from_brackets(key, x, head, parts, br)
    v = scenario._order_values(key, x)
    want = np.quantile(v, scenario.QUANTILES, method="inverted_cdf" if payback else "linear")
    assert got is None or got == list(want)
    wide = [(-math.inf, math.inf)] * len(scenario.QUANTILES)
    parts = [scenario._gather(scenario._order_values(key, x[head:]), wide)]
    assert scenario._from_brackets(key, x, head, parts, wide) == list(want)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200), st.lists(st.integers(0, 199), max_size=6))
@settings(max_examples=100, deadline=None)
def test_select_puts_each_order_statistic_in_place(xs, ks):
    t = np.array(xs)
    kth = sorted({k for k in ks if k < t.size})
    scenario._select(t, kth)
    ref = np.sort(xs)
    for k in kth:
        assert t[k] == ref[k] and np.all(t[:k] <= t[k]) and np.all(t[k + 1:] >= t[k])
    assert sorted(t.tolist()) == ref.tolist()


def test_monthly_quantiles_equal_numpy_with_repeated_months():
    rng = np.random.default_rng(0)
    rows = rng.lognormal(size=(5, 1001))
    t = rows[[0, 1, 1, 2, 0, 3, 4, 4, 4, 2]]  # months that repeat an earlier month's row
    want = np.quantile(t, scenario.QUANTILES, axis=1)
    np.testing.assert_array_equal(scenario._monthly_quantiles(t.copy(), scenario.QUANTILES), want)
    med = scenario._monthly_quantiles(t.copy(), (0.5,))
    np.testing.assert_array_equal(med[1], np.quantile(t, 0.5, axis=1))
    assert not med[0].any() and not med[2].any()


def test_same_seed_same_result_across_chunks():
    f = examples_dir() / "high_volume_self_host.yaml"
    a = scenario.load(f).evaluate(samples=7000, seed=3)
    b = scenario.load(f).evaluate(samples=7000, seed=3)
    c = scenario.load(f).evaluate(samples=7000, seed=4)
    assert a.summary == b.summary and a.summary != c.summary


# --- sensitivity ---------------------------------------------------------------------------------------------

def test_tornado_ordering_on_a_linear_case():
    # NPV (no discounting) = 12 x users x price - staff x 12. At the medians users = 1000, price = 10.
    # price P10..P90 = 6..14 moves NPV by 12 x 1000 x 8 = 96,000; users 900..1100 moves it by 12 x 200 x 10 =
    # 24,000; staff 1000..2000 (uniform, P10..P90 = 1100..1900) by 12 x 800 = 9,600. Order: price, users, staff.
    data = base(product={"users_start": {"dist": "uniform", "low": 875, "high": 1125},
                         "price_per_user_month_usd": {"dist": "uniform", "low": 5, "high": 15}},
                fixed_monthly={"staff_usd": {"dist": "uniform", "low": 1000, "high": 2000}})
    rows = parse(data).evaluate(samples=1000).sensitivity
    assert [r["input"] for r in rows] == ["product.price_per_user_month_usd", "product.users_start",
                                          "fixed_monthly.staff_usd"]
    assert rows[0]["swing"] == pytest.approx(96_000) and rows[1]["swing"] == pytest.approx(24_000)
    assert rows[2]["swing"] == pytest.approx(9_600)
    assert rows[0]["base"] == pytest.approx(12 * 1000 * 10 - 12 * 1500)
    assert rows[2]["at_input_p90"] < rows[2]["at_input_p10"]  # more staff cost, lower NPV


def test_build_vs_buy_uses_decide_break_even():
    prod = {"users_start": 1000, "price_per_user_month_usd": 20, "requests_per_user_month": 100,
            "input_tokens_per_request": 1000, "output_tokens_per_request": 1000}
    own = {"share": 0.5, "self_hosted": {"usd_per_million_input_tokens": 0.2, "usd_per_million_output_tokens": 0.8,
                                         "setup_usd": 10_000, "fixed_monthly_usd": 1000}}
    res = parse(base(product=prod, serving={"routes": [api_route(share=0.5), own]})).evaluate()
    b = res.build_vs_buy
    assert b["api_usd_per_million_tokens"] == pytest.approx(2.5) and b["own_usd_per_million_tokens"] == pytest.approx(0.5)
    want = break_even(2.5, 0.5, 10_000 + 12 * 1000)
    assert b["break_even_tokens"] == pytest.approx(want.break_even_tokens) == pytest.approx(22_000 / 2e-6)
    assert b["scenario_lifetime_tokens"] == pytest.approx(1000 * 12 * 100 * 2000)


def test_examples_all_evaluate_finite():
    for f in sorted(examples_dir().glob("*.yaml")):
        res = scenario.load(f).evaluate(samples=2000)
        json.dumps(res.to_dict(), allow_nan=False)
        assert len(res.monthly) == res.horizon_months


def test_fast_summaries_equal_full_simulation():
    # evaluate() uses the in-place hot path after the first samples; it must be the same model
    for f in sorted(examples_dir().glob("*.yaml")):
        plan = scenario.load(f)
        P = plan._draw(np.random.default_rng(5), 500)
        full, fast = plan._simulate(P), plan._summaries(P)
        for key, value in fast.items():
            np.testing.assert_allclose(value, full[key], rtol=1e-10, atol=1e-6, err_msg=f"{f.name}: {key}")


# --- self-hosted route from the serving model ---------------------------------------------------------------

def model_route(**over):
    sh = {"model": "llama-3.1-70b", "gpu": "h100", "gpus": 8, "precision": "fp8", "usd_per_gpu_hour": 2.5}
    sh.update(over)
    return {"share": 1.0, "self_hosted": sh}


MODEL_PRODUCT = {"users_start": 1000, "price_per_user_month_usd": 20, "requests_per_user_month": 100,
                 "input_tokens_per_request": 800, "output_tokens_per_request": 300, "reasoning_multiplier": 2}


def test_model_route_prices_equal_serving_self_hosted_price():
    from billshape import serving

    plan = parse(base(product=MODEL_PRODUCT, serving={"routes": [model_route(utilization=0.5)]}))
    want = serving.self_hosted_price("llama-3.1-70b", "h100", 8, "fp8", 800, 600, 2.5, 0.5)
    q = plan.model_quotes["serving.routes[0].self_hosted"]
    assert q["usd_per_million_input_tokens"] == want["usd_per_million_input_tokens"]
    assert q["usd_per_million_output_tokens"] == want["usd_per_million_output_tokens"]
    # the plan's inference cost per user-month is the hand calculation from those $/M tokens
    res = plan.evaluate()
    per_user = 100 * (800 * want["usd_per_million_input_tokens"] + 600 * want["usd_per_million_output_tokens"]) / 1e6
    assert res.monthly[0]["inference_usd"] == pytest.approx(1000 * per_user, rel=1e-12)
    assert any("self_hosted_price" in a.source for a in res.assumptions)


def test_model_route_scales_price_and_utilization_per_sample_without_new_roofline_calls(monkeypatch):
    from billshape import serving

    plan = parse(base(product=MODEL_PRODUCT, serving={"routes": [model_route(
        usd_per_gpu_hour={"dist": "uniform", "low": 1.5, "high": 3.5},
        utilization={"dist": "triangular", "low": 0.3, "mode": 0.5, "high": 0.9})]}))
    calls = []
    monkeypatch.setattr(serving, "serve", lambda *a, **k: calls.append((a, k)))  # the roofline behind the chain
    P = {"serving.routes[0].self_hosted.usd_per_gpu_hour": np.array([[1.5], [3.5]]),
         "serving.routes[0].self_hosted.utilization": np.array([[0.3], [0.9]])}
    api, own = plan._route_costs({**plan._medians(), **P})
    plan.evaluate(samples=3000)
    assert calls == []  # the roofline ran once, when the plan was parsed
    monkeypatch.undo()
    for i, (price, util) in enumerate(((1.5, 0.3), (3.5, 0.9))):
        want = serving.self_hosted_price("llama-3.1-70b", "h100", 8, "fp8", 800, 600, price, util)
        per_user = 100 * (800 * want["usd_per_million_input_tokens"] + 600 * want["usd_per_million_output_tokens"]) / 1e6
        assert float(own[i, 0]) == pytest.approx(per_user, rel=1e-12)


@pytest.mark.parametrize("over,field", [
    ({"model": "no-such-model-70b"}, "serving.routes[0].self_hosted.model"),
    ({"gpus": 1, "precision": "bf16"}, "serving.routes[0].self_hosted.gpus"),
    ({"gpus": {"dist": "uniform", "low": 8, "high": 16}}, "serving.routes[0].self_hosted.gpus"),
    ({"precision": "fp3"}, "serving.routes[0].self_hosted.precision"),
    ({"tp": 3}, "serving.routes[0].self_hosted.tp"),
    ({"gpu": "h1000"}, "serving.routes[0].self_hosted.gpu"),
    ({"usd_per_gpu_hour": None}, "serving.routes[0].self_hosted.usd_per_gpu_hour"),
    ({"tokens_per_second": 1000}, "serving.routes[0].self_hosted.model"),
    ({"input_tokens_per_second": 1000}, "serving.routes[0].self_hosted.input_tokens_per_second"),
])
def test_model_route_errors_name_the_yaml_path(over, field):
    sh = model_route(**over)
    sh["self_hosted"] = {k: v for k, v in sh["self_hosted"].items() if v is not None}
    with pytest.raises(BillshapeInputError) as exc:
        parse(base(product=MODEL_PRODUCT, serving={"routes": [sh]}))
    assert exc.value.field == field


def test_precision_without_model_is_an_error():
    route = {"share": 1.0, "self_hosted": {"tokens_per_second": 1000, "gpus": 1, "usd_per_gpu_hour": 2,
                                           "precision": "fp8"}}
    with pytest.raises(BillshapeInputError) as exc:
        parse(base(product=MODEL_PRODUCT, serving={"routes": [route]}))
    assert exc.value.field == "serving.routes[0].self_hosted.precision"


# --- named market trends -------------------------------------------------------------------------------------

def test_named_api_trend_uses_the_catalog_factor_and_source():
    from billshape import market

    prod = {"users_start": 1, "price_per_user_month_usd": 10, "requests_per_user_month": 1,
            "output_tokens_per_request": 1_000_000}
    res = parse(base(horizon_months=25, product=prod, serving={"routes": [api_route(pin=0, pout=1)]},
                     market={"api_price_trend": "a16z-llmflation", "gpu_price_trend": "epoch-flop-per-dollar"})).evaluate()
    inf = [r["inference_usd"] for r in res.monthly]
    f = market.trend("a16z-llmflation").annual_factor  # 0.1: ten times cheaper a year (a16z 2024)
    assert inf[12] == pytest.approx(f) and inf[24] == pytest.approx(f ** 2)
    rows = [a for a in res.assumptions if a.name.startswith("market.api_price_trend")]
    assert rows and "a16z" in rows[0].source and rows[0].as_of == "2024-11-12"


@pytest.mark.parametrize("market_,field", [
    ({"api_price_trend": "a16z-llmflaton"}, "market.api_price_trend"),
    ({"api_price_trend": "seed004-api-price-rise-high"}, "market.api_price_trend"),  # a step, not a trend
    ({"gpu_price_trend": "a16z-llmflation"}, "market.gpu_price_trend"),  # an API trend, not hardware
    ({"api_price_trend": "a16z-llmflation", "api_price_trend_annual": 0.5}, "market.api_price_trend"),
])
def test_named_trend_errors(market_, field):
    with pytest.raises(BillshapeInputError) as exc:
        parse(base(market=market_))
    assert exc.value.field == field


# --- vectorised == plain loop --------------------------------------------------------------------------------

LOOP_CASES = [f.name for f in sorted(examples_dir().glob("*.yaml"))] + ["steps-and-retraining", "dips", "all-uncertain"]


def U(low, high):
    return {"dist": "uniform", "low": low, "high": high}


@pytest.mark.parametrize("case", LOOP_CASES)
def test_vectorised_summaries_equal_the_plain_loop(case):
    if case == "steps-and-retraining":
        plan = parse(base(
            horizon_months=37, discount_rate_annual={"dist": "uniform", "low": 0.0, "high": 0.3},
            product={**MODEL_PRODUCT, "growth_monthly": {"dist": "uniform", "low": 0.0, "high": 0.1},
                     "churn_monthly": 0.03, "cache_hit_rate": 0.3},
            serving={"routes": [{**api_route(0.5), "share": 0.5}, {**model_route(), "share": 0.5}]},
            training={"total_usd": {"dist": "uniform", "low": 1e5, "high": 5e5}, "amortization_months": 5,
                      "retrain_every_months": 7, "retrain_cost_fraction": 0.4},
            fixed_monthly={"staff_usd": 3000},
            market={"api_price_steps": [{"month": 5, "factor": {"dist": "uniform", "low": 2, "high": 4}},
                                        {"month": 30, "factor": 0.5}],
                    "api_price_trend_annual": {"dist": "uniform", "low": 0.3, "high": 1.5}}))
    elif case == "dips":
        # cumulative cash that turns positive, dips again (retraining, a 3x API price step, shrinking users) and
        # may never recover: both payback paths (certified in month 1, and the exact months x samples one)
        plan = parse(base(
            horizon_months=48,
            product={**MODEL_PRODUCT, "price_per_user_month_usd": {"dist": "uniform", "low": 3, "high": 12},
                     "growth_monthly": {"dist": "uniform", "low": 0.0, "high": 0.06},
                     "churn_monthly": {"dist": "uniform", "low": 0.0, "high": 0.08}},
            serving={"routes": [api_route(1.0)]},
            training={"total_usd": {"dist": "uniform", "low": 0, "high": 3e4}, "amortization_months": 6,
                      "retrain_every_months": 8, "retrain_cost_fraction": {"dist": "uniform", "low": 0, "high": 2}},
            fixed_monthly={"staff_usd": {"dist": "uniform", "low": 0, "high": 4000}},
            market={"api_price_steps": [{"month": 1, "factor": {"dist": "uniform", "low": 0.5, "high": 1.5}},
                                        {"month": 20, "factor": 3.0}],
                    "api_price_trend_annual": {"dist": "uniform", "low": 0.5, "high": 1.5}}))
        P = plan._draw(np.random.default_rng(4), 3000)
        pb = plan._summaries(P)["payback_month"]
        assert 0.1 < np.mean(pb < 1) < 0.9 and np.isinf(pb).any() and ((pb > 1) & np.isfinite(pb)).any()
    elif case == "all-uncertain":
        # every number a draw (the users at the start, the discount rate, a deployment's set-up and standing
        # cost, measured self-hosted prices, both market trends): no input stays a float in the hot path
        plan = parse(base(
            horizon_months=30, discount_rate_annual=U(0.0, 0.2),
            product={"users_start": U(500, 5000), "price_per_user_month_usd": U(5, 30),
                     "growth_monthly": U(0.0, 0.08), "churn_monthly": U(0.0, 0.05),
                     "requests_per_user_month": U(50, 300), "input_tokens_per_request": U(200, 2000),
                     "output_tokens_per_request": U(100, 800), "reasoning_multiplier": U(1, 3),
                     "cache_hit_rate": U(0.0, 0.6), "variable_cost_per_user_month_usd": U(0, 1)},
            serving={"routes": [{**api_route(0.5, pin=U(0.5, 2), pout=U(2, 8), pcache=U(0.1, 0.5)), "share": 0.5},
                                {"share": 0.5, "self_hosted": {
                                    "usd_per_million_input_tokens": U(0.1, 0.5),
                                    "usd_per_million_output_tokens": U(0.5, 2),
                                    "setup_usd": U(1e4, 5e4), "fixed_monthly_usd": U(1e3, 5e3)}}]},
            training={"total_usd": U(1e4, 1e6), "amortization_months": 4, "retrain_every_months": 9,
                      "retrain_cost_fraction": U(0.2, 1)},
            fixed_monthly={"staff_usd": U(0, 2e4), "monitoring_usd": U(0, 2e3)},
            market={"api_price_steps": [{"month": 4, "factor": U(1, 5)}],
                    "api_price_trend_annual": U(0.3, 1.2), "gpu_price_trend_annual": U(0.5, 1.0)}))
        assert len(plan.uncertain()) >= 25
    else:
        plan = scenario.load(examples_dir() / case)
    n = 400 if plan.uncertain() else 1
    P = plan._draw(np.random.default_rng(3), n)
    rows = [{k: (float(v[i, 0]) if isinstance(v, np.ndarray) else v) for k, v in P.items()} for i in range(n)]
    loop = [loop_summaries(plan, r) for r in rows]
    fast = plan._summaries(P)
    full = plan._simulate(P)  # the monthly model (the reservoir's, the tornado's) is the same model too
    for key, value in fast.items():
        want = np.array([row[key] for row in loop])
        for got in (value, full[key]):
            np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=1e-9, atol=1e-6,
                                       equal_nan=True, err_msg=f"{case}: {key}")


@given(st.lists(st.floats(-1e9, 1e9), min_size=1, max_size=300))
@settings(max_examples=60, deadline=None)
def test_quantiles_equal_numpy(xs):
    x = np.array(xs)
    got = scenario._quantiles(x, None)
    want = np.quantile(x, scenario.QUANTILES)
    assert [got["p10"], got["p50"], got["p90"]] == pytest.approx(list(want), rel=1e-12, abs=1e-9)
    pb = scenario._quantiles(np.abs(x) % 30, 30)
    want = np.quantile(np.abs(x) % 30, scenario.QUANTILES, method="inverted_cdf")
    assert [pb["p10"], pb["p50"], pb["p90"]] == pytest.approx(list(want))
