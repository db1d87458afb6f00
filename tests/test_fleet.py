"""billshape fleet: the vectorised search agrees with scalar serve, and its answers obey the invariants of a
cheapest-option search (restriction never helps, frontier is Pareto, replicas cover the peak, cost follows the
GPU price)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape import decide_capacity, serving
from billshape.errors import BillshapeInputError
from billshape.fleet import OPTION_KEYS, fleet, pricing, sizing

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _serve_of(o, in_len, out_len):
    return serving.serve(model=MODEL, gpu=o["gpu"], gpus=o["tp"], tp=o["tp"], ep=o["ep"], precision=o["precision"],
                         input_tokens=in_len, output_tokens=out_len, batch=o["batch"], mode="max-load",
                         engine=o["engine"])


MODEL = "llama-3.1-70b"


@pytest.fixture(scope="module")
def base():
    return fleet(model=MODEL, requests_per_second=5, tpot_limit=0.05, ttft_limit=2)


def test_json_shape(base):
    d = base.to_dict()
    assert set(OPTION_KEYS) <= set(d["best"])
    assert all(set(OPTION_KEYS) <= set(o) for o in d["frontier"])
    assert d["options_evaluated"] >= len(d["frontier"]) > 0
    assert {"count", "examples"} <= set(next(iter(d["rejected"].values())))
    json.dumps(d, allow_nan=False)


def test_every_reported_option_matches_scalar_serve(base):
    """For the best and every frontier entry, serve with the same settings gives the same tokens/s, TTFT, TPOT,
    and they meet the SLO."""
    for o in [base.best, *base.frontier]:
        est = _serve_of(o, base.input_tokens, base.output_tokens)
        assert est.output_tokens_per_second == pytest.approx(o["replica_output_tokens_per_second"], rel=1e-9)
        assert est.ttft_seconds == pytest.approx(o["ttft_s"], rel=1e-9)
        assert est.tpot_seconds == pytest.approx(o["tpot_s"], rel=1e-9)
        assert est.tpot_seconds <= 0.05 and est.ttft_seconds <= 2


def test_batch_is_the_largest_within_the_slo(base):
    """One more sequence than the chosen batch misses the TPOT limit, or does not fit."""
    o = base.best
    est = serving.serve(model=MODEL, gpu=o["gpu"], gpus=o["tp"], tp=o["tp"], precision=o["precision"])
    if o["batch"] < min(est.max_batch, 2048):
        nxt = serving.serve(model=MODEL, gpu=o["gpu"], gpus=o["tp"], tp=o["tp"], precision=o["precision"],
                            batch=o["batch"] + 1, mode="max-load")
        assert nxt.tpot_seconds > 0.05 or nxt.ttft_seconds > 2


def test_no_frontier_entry_cheaper_than_best_and_frontier_is_pareto(base):
    f = base.frontier
    assert all(o["usd_per_month"] >= base.best["usd_per_month"] for o in f)
    for a in f:
        for b in f:
            if a is b:
                continue
            dominated = (b["usd_per_month"] <= a["usd_per_month"] and b["tpot_s"] <= a["tpot_s"]
                         and (b["usd_per_month"] < a["usd_per_month"] or b["tpot_s"] < a["tpot_s"]))
            assert not dominated


def test_replicas_cover_the_peak(base):
    for o in [base.best, *base.frontier]:
        assert o["replicas"] * o["replica_requests_per_second"] >= base.peak_requests_per_second * (1 - 1e-12)
        assert 0 < o["utilization"] <= 1


def test_rejections_name_their_reasons():
    r = fleet(model=MODEL, requests_per_second=5, tpot_limit=0.02, gpu=["a100-40gb-sxm", "l4", "h100"])
    assert "does not fit" in r.rejected and "misses the SLO" in r.rejected
    with pytest.raises(BillshapeInputError) as e:
        fleet(model=MODEL, requests_per_second=5, tpot_limit=0.001)
    assert "rejected" in str(e.value.hint)


@SETTINGS
@given(st.sampled_from(["h100-sxm", "a100-80gb-sxm", "h200-sxm", "b200", "l40s"]),
       st.floats(0.2, 40), st.sampled_from([None, 0.03, 0.08]))
def test_restricting_gpu_never_cheaper_than_open_search(g, rps, tpot):
    try:
        open_ = fleet(model="llama-3.1-8b", requests_per_second=rps, tpot_limit=tpot)
    except BillshapeInputError:
        return
    try:
        only = fleet(model="llama-3.1-8b", requests_per_second=rps, tpot_limit=tpot, gpu=g)
    except BillshapeInputError:
        return
    assert only.best["usd_per_month"] >= open_.best["usd_per_month"] * (1 - 1e-12)


@SETTINGS
@given(st.floats(0.2, 5.0), st.floats(0.2, 50))
def test_cost_is_monotone_in_gpu_price(factor, rps):
    a = fleet(model="llama-3.1-8b", requests_per_second=rps, gpu="h100")
    b = fleet(model="llama-3.1-8b", requests_per_second=rps, gpu="h100", gpu_price_factor=factor)
    assert (b.best["usd_per_month"] - a.best["usd_per_month"]) * (factor - 1) >= -1e-9 * a.best["usd_per_month"]
    assert b.best["usd_per_month"] == pytest.approx(a.best["usd_per_month"] * factor, rel=1e-9)


@SETTINGS
@given(st.floats(1.0, 6.0))
def test_reshape_keeps_mean_and_hits_peak(x):
    load, _, _ = sizing.profile()
    s = sizing.reshape(load, x)
    assert s.mean() == pytest.approx(1.0, rel=1e-9)
    assert s.max() / s.mean() == pytest.approx(x, rel=1e-6)
    assert (s >= 0).all()


def test_vectorised_reserved_level_is_decide_capacity_rule():
    rng = np.random.default_rng(0)
    d = rng.integers(1, 30, size=(20, 168)).astype(float)
    r = rng.uniform(0.5, 3, 20)
    o = r * rng.uniform(0.8, 3, 20)
    lv = pricing.reserved_level(d, r, o)
    for i in range(20):
        assert lv[i] == decide_capacity.optimal_reserved_level(d[i], r[i], o[i])
        usd, _, _ = pricing.rent(np.array(["mixed"], dtype=object), [1.0], [r[i]], [o[i]], [0.0], d[i:i + 1],
                                 np.zeros((1, 168)))
        assert usd[0] * 168 == pytest.approx(float(decide_capacity.tiered_cost_usd(d[i], lv[i], r[i], o[i])), rel=1e-12)


def test_spiky_demand_reserved_base_plus_burst_beats_reserving_the_peak():
    r = fleet(model="llama-3.1-8b", requests_per_second=20, peak_to_mean=4, gpu="h100", provider="aws",
              tier=["reserved-1y", "on-demand"])
    tiers = {o["tier"]: o for o in [r.best, *r.frontier]}
    assert r.best["tier"] in ("reserved-1y+on-demand", "on-demand")
    only_reserved = fleet(model="llama-3.1-8b", requests_per_second=20, peak_to_mean=4, gpu="h100", provider="aws",
                          tier="reserved-1y")
    assert r.best["usd_per_month"] < only_reserved.best["usd_per_month"]
    assert tiers  # the frontier carries the tier mix


def test_spot_only_for_interruptible_demand():
    r = fleet(model="llama-3.1-8b", requests_per_second=5, gpu="h100", provider="aws")
    assert r.best["tier"] != "spot" and "spot is preemptible" in r.rejected
    csv = "hour,gpus,interruptible_gpus\n" + "".join(f"{h},{10},{5}\n" for h in range(24))
    r2 = fleet(model="llama-3.1-8b", requests_per_second=100, demand=csv, gpu="h100", provider="aws",
               tier=["on-demand", "spot"])
    assert r2.best["tier"] == "on-demand+spot"  # half the traffic tolerates preemption: it rides on spot
    od = fleet(model="llama-3.1-8b", requests_per_second=100, demand=csv, gpu="h100", provider="aws", tier="on-demand")
    assert r2.best["usd_per_month"] < od.best["usd_per_month"]


def test_tokens_per_month_is_requests_per_second():
    a = fleet(model="llama-3.1-8b", tokens_per_month=2000 * 3 * 730.5 * 3600, gpu="h100")
    b = fleet(model="llama-3.1-8b", requests_per_second=3, gpu="h100")
    assert a.best == b.best


def test_cli_json_and_bad_input(cli):
    from conftest import assert_one_line_error

    out = cli("fleet", "--model", "llama-3.1-8b", "--requests-per-second", "2", "--gpu", "h100", "--json")
    assert out.code == 0, out.err
    data = out.json()
    assert data["best"]["gpu"] == "h100-sxm" and data["options_evaluated"] > 0
    assert_one_line_error(cli("fleet", "--model", "llama-3.1-8b", "--requests-per-second", "2", "--peak-to-mean", "0.5"),
                          "--peak-to-mean")
    assert_one_line_error(cli("fleet", "--requests-per-second", "2"), "--model")
    human = cli("fleet", "--model", "llama-3.1-8b", "--requests-per-second", "2", "--gpu", "h100")
    assert human.code == 0 and "utilization" in human.out and "frontier" in human.out


# ---------------------------------------------------------------------------------------------- plans bill a fleet
def _plan(self_hosted: dict, users=100, requests=100, months=12):
    import yaml

    from billshape import plan

    doc = {"name": "fleet", "horizon_months": months, "discount_rate_annual": 0.1,
           "product": {"users_start": users, "price_per_user_month_usd": 10, "requests_per_user_month": requests,
                       "input_tokens_per_request": 500, "output_tokens_per_request": 500},
           "serving": {"routes": [{"name": "own", "share": 1, "self_hosted": self_hosted}]}}
    return plan.load(yaml.safe_dump(doc))


EIGHT_H100 = {"model": "llama-3.1-70b", "gpu": "h100", "gpus": 8, "precision": "fp8", "usd_per_gpu_hour": 2.5}


def test_plan_eight_h100_little_traffic_pays_every_gpu_hour():
    res = _plan(dict(EIGHT_H100)).evaluate()
    m1 = res.monthly[0]
    assert m1["self_hosted_usd"] == pytest.approx(730.5 * 8 * 2.5) and m1["self_hosted_usd"] >= 14_600
    assert m1["inference_usd"] == pytest.approx(m1["self_hosted_usd"])
    assert m1["self_hosted_gpu_hours"] == pytest.approx(730.5 * 8) and m1["self_hosted_replicas"] == 1
    assert 0 < m1["self_hosted_utilization"] < 0.01
    assert 0 < res.summary["lifetime_self_hosted_utilization"]["p50"] < 0.01
    assert any(a.value == "every provisioned GPU-hour" for a in res.assumptions)


def test_plan_route_with_utilization_keeps_per_token_and_says_so(cli, tmp_path):
    import yaml

    res = _plan({**EIGHT_H100, "utilization": 0.5}).evaluate()
    assert "self_hosted_usd" not in res.monthly[0] and res.monthly[0]["inference_usd"] < 100
    assert any(a.value == "billed per served token, not per provisioned hour" for a in res.assumptions)
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"name": "x", "horizon_months": 3, "discount_rate_annual": 0.1,
                                 "product": {"users_start": 10, "price_per_user_month_usd": 1,
                                             "requests_per_user_month": 10, "input_tokens_per_request": 100,
                                             "output_tokens_per_request": 100},
                                 "serving": {"routes": [{"share": 1, "self_hosted": {**EIGHT_H100, "utilization": 0.5}}]}}))
    out = cli("plan", str(f))
    assert out.code == 0 and "billed per served token, not per provisioned hour" in out.out


def test_plan_auto_replicas_follow_the_peak_and_fixed_replicas_do_not():
    heavy = _plan({**EIGHT_H100, "peak_to_mean": 2.0}, users=20_000, requests=3000)
    res = heavy.evaluate()
    c = float(heavy.routes[0].fleet["replica_requests_per_second"])
    lam = 20_000 * 3000 / (3600 * 730.5)
    assert res.monthly[0]["self_hosted_replicas"] == math.ceil(lam * 2.0 / c)
    assert res.monthly[0]["self_hosted_utilization"] == pytest.approx(lam / (res.monthly[0]["self_hosted_replicas"] * c))
    fixed = _plan({**EIGHT_H100, "replicas": 3}, users=20_000, requests=3000).evaluate()
    assert all(m["self_hosted_replicas"] == 3 for m in fixed.monthly)
    assert fixed.monthly[0]["self_hosted_usd"] == pytest.approx(3 * 8 * 730.5 * 2.5)


def test_plan_fleet_keys_need_a_fleet():
    with pytest.raises(BillshapeInputError) as e:
        _plan({**EIGHT_H100, "utilization": 0.5, "replicas": 2})
    assert e.value.field.endswith(".replicas")
    with pytest.raises(BillshapeInputError):
        _plan({**EIGHT_H100, "replicas": "many"})


def test_shipped_self_hosting_example_is_a_fleet():
    from billshape import plan

    p = plan.load("high_volume_self_host")
    assert any(r.fleet is not None for r in p.routes)


# ----------------------------------------------------------------------------------------- break-even vs a fleet
from billshape.fleet.breakeven import crossover_volumes, fleet_breakeven, units_needed  # noqa: E402


@SETTINGS
@given(st.floats(0.05, 20), st.floats(1e3, 1e6), st.floats(1e8, 1e12))
def test_crossover_volumes_are_where_build_starts_to_win(p_m, rent, cap):
    p = p_m / 1e6
    vols, always = crossover_volumes(p, rent, cap)
    grid = np.linspace(1, cap * 6, 4001)
    build_wins = units_needed(grid, cap) * rent <= p * grid
    if not vols:
        assert not build_wins.any()
        return
    assert always is not None
    assert build_wins[grid >= always * (1 + 1e-9)].all()
    # at each listed crossover build wins, and just below it (inside the same step) buy does
    for x in vols:
        assert units_needed(x, cap) * rent <= p * x * (1 + 1e-9)
        below = x * (1 - 1e-6)
        if below > (units_needed(x, cap) - 1) * cap:
            assert units_needed(below, cap) * rent > p * below


def test_fleet_breakeven_static_states_the_decision():
    r = fleet_breakeven(api_usd_per_million_tokens=0.6, own_usd_per_month=14_610, own_capacity_tokens_per_month=8e10,
                        volume_tokens_per_month=3e10)
    assert r.replicas == 1 and r.own_usd_per_month == 14_610 and r.decision == "build"
    assert r.utilization == pytest.approx(3 / 8)
    assert r.crossover_volumes_tokens_per_month[0] == pytest.approx(14_610 / 0.6e-6)
    flip = r.flips["api_usd_per_million_tokens_other_side_wins"]
    assert flip == pytest.approx(14_610 / 3e10 * 1e6)
    again = fleet_breakeven(api_usd_per_million_tokens=flip * 0.99, own_usd_per_month=14_610,
                            own_capacity_tokens_per_month=8e10, volume_tokens_per_month=3e10)
    assert again.decision == "buy"


def test_fleet_breakeven_horizon_replicas_and_crossover_month():
    r = fleet_breakeven(api_usd_per_million_tokens=0.6, own_usd_per_month=14_610, own_capacity_tokens_per_month=8e10,
                        volume_tokens_per_month=1e10, months=24, volume_growth_per_month=0.15, fixed_usd=50_000)
    assert len(r.replicas) == 24 and r.replicas == sorted(r.replicas) and r.replicas[-1] > 1
    assert r.own_usd_per_month[0] == pytest.approx(14_610 + 50_000)
    m = r.crossover_month
    assert m is not None
    cum_own, cum_api = np.cumsum(r.own_usd_per_month), np.cumsum(r.api_usd_per_month)
    assert cum_own[m - 1] <= cum_api[m - 1] and (m == 1 or cum_own[m - 2] > cum_api[m - 2])


def test_breakeven_cli_fleet_modes(cli):
    from conftest import assert_one_line_error

    d = cli("breakeven", "--api-price", "0.6", "--own-usd-per-month", "14610", "--own-capacity-tokens-per-month",
            "8e10", "--volume-per-month", "3e10", "--json").json()
    assert d["own_usd_per_month"] == 14610 and d["replicas"] == 1 and "flips" in d
    d = cli("breakeven", "--api-price", "0.6", "--model", "llama-3.1-8b", "--gpu", "h100", "--volume-per-month", "2e10",
            "--months", "6", "--json").json()
    assert len(d["replicas"]) == 6 and len(d["own_usd_per_month"]) == 6 and d["fleet"]["gpu"] == "h100-sxm"
    assert_one_line_error(cli("breakeven", "--api-price", "0.6", "--own-usd-per-month", "100"),
                          "--own-capacity-tokens-per-month")
    assert_one_line_error(cli("breakeven", "--api-price", "0.6", "--model", "llama-3.1-8b"), "--volume-per-month")
    out = cli("breakeven", "--api-price", "0.6", "--own-usd-per-month", "14610", "--own-capacity-tokens-per-month",
              "8e10", "--volume-per-month", "3e10")
    assert out.code == 0 and "utilization" in out.out and "flips" in out.out


# ----------------------------------------------------------------------------------- the ledger's self-hosted rows
def _csv(tmp_path, rows):
    f = tmp_path / "req.csv"
    f.write_text("request_id,timestamp,provider,model,customer,feature,input_tokens,output_tokens,cached_tokens\n"
                 + "".join(rows))
    return f


def test_usage_fleet_rent_is_spread_over_the_days_tokens(cli, tmp_path):
    pytest.importorskip("duckdb")
    f = _csv(tmp_path, ["r1,2025-03-04T11:00:00Z,selfhosted,ours,acme,chat,4000,1000,0\n",
                        "r2,2025-03-04T12:00:00Z,selfhosted,ours,acme,chat,4000,3000,0\n",
                        "r3,2025-03-05T09:00:00Z,selfhosted,ours,acme,chat,100,500,0\n"])
    d = cli("usage", "ingest", str(f), "--self-hosted", "ours=fleet:llama-3.1-8b@h100:fp8:2.5:2",
            "--db", str(tmp_path / "u.duckdb"), "--json").json()
    assert d["rows_priced"] == 3
    # two days of a 2 x H100 fleet at $2.50/GPU-hour: $120 a day, all of it billed whatever the traffic
    assert d["total_usd"] == pytest.approx(240.0, abs=1e-5)
    util = [a for a in d["assumptions"] if a["name"] == "self-hosted fleet ours utilization"][0]
    cap = [a for a in d["assumptions"] if a["name"] == "self-hosted fleet ours"][0]
    assert "spread over the output tokens" in cap["source"]
    assert 0 < util["value"] < 1e-4


def test_usage_per_token_self_hosted_keeps_its_utilization(cli, tmp_path):
    pytest.importorskip("duckdb")
    f = _csv(tmp_path, ["r1,2025-03-04T11:00:00Z,selfhosted,ours,acme,chat,4000,1000,0\n"])
    d = cli("usage", "ingest", str(f), "--self-hosted", "ours=llama-3.1-8b@h100:fp8:2.5:0.6",
            "--db", str(tmp_path / "u.duckdb"), "--json").json()
    assert d["total_usd"] < 0.01  # per served token: a thousand tokens cost a fraction of a cent
    assert any("utilization 0.6" in a["source"] for a in d["assumptions"])


def test_usage_fleet_mapping_errors(tmp_path):
    from billshape.usage import prices

    with pytest.raises(BillshapeInputError):
        prices.read_self_hosted(["ours=fleet:llama-3.1-8b@h100:fp8:2.5:0.5"])  # replicas must be whole
    f = tmp_path / "m.yaml"
    f.write_text("- {name: ours, model: llama-3.1-8b, gpu: h100, usd_per_gpu_hour: 2.5, billing: fleet, utilization: 0.5}\n")
    with pytest.raises(BillshapeInputError) as e:
        prices.read_self_hosted([str(f)])
    assert "utilization" in e.value.field


@SETTINGS
@given(st.lists(st.floats(0.0, 500.0), min_size=1, max_size=48), st.floats(0.05, 50.0), st.integers(1, 4))
def test_replicas_times_capacity_cover_every_hour(rps, c, n_min):
    n = sizing.replicas_needed(rps, [c], n_min)[0]
    assert (n * c >= np.asarray(rps) * (1 - 1e-9)).all() and (n >= n_min).all()
    # never a replica more than needed: one fewer would not cover the hour (unless it is the floor)
    assert ((n == n_min) | ((n - 1) * c < np.asarray(rps) * (1 + 1e-9))).all()


def test_fleet_benchmark_runs():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_fleet.py"), "--scalar-sample", "3",
                           "--repeats", "1"], capture_output=True, text=True, timeout=300, cwd=root)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["options_evaluated"] > 10_000 and out["fleet_seconds"] > 0 and out["ratio_scalar_over_vectorised"] > 0
