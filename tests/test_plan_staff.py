"""People and the system share (issue 16 item 8): ``fixed_monthly.staff`` as headcount x loaded cost, and
``summary.system_share_of_lifetime_cost`` (P10/P50/P90) on screen, in JSON and in the HTML report."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape.errors import BillshapeInputError
from billshape.scenario import examples_dir, parse
from conftest import assert_one_line_error
from plan_loop_baseline import loop_summaries  # benchmarks/ (on sys.path via conftest.py)

SHOCK = examples_dir() / "api_wrapper_price_shock.yaml"


def base(**over) -> dict:
    data = {"horizon_months": 12, "discount_rate_annual": 0.0,
            "product": {"users_start": 1000, "price_per_user_month_usd": 20, "requests_per_user_month": 100,
                        "input_tokens_per_request": 1000, "output_tokens_per_request": 1000},
            "serving": {"routes": [{"share": 1.0, "api": {"model": "custom", "usd_per_million_input_tokens": 1.0,
                                                          "usd_per_million_output_tokens": 4.0}}]}}
    data.update(over)
    return data


def test_system_share_by_hand():
    # inference: 1000 users x 100 requests x (1000 x $1 + 1000 x $4) / 1e6 = $500 a month; 12 months: $6,000
    # system: staff 2 x $120,000 / 12 = $20,000 + monitoring $1,000 + on-call $500 = $21,500 a month; $258,000
    # other_usd is outside the system share (and outside the model)
    res = parse(base(fixed_monthly={"staff": {"headcount": 2, "loaded_usd_per_year": 120_000},
                                    "monitoring_usd": 1000, "on_call_usd": 500, "other_usd": 7000})).evaluate()
    share = res.summary["system_share_of_lifetime_cost"]
    assert share["p50"] == pytest.approx(258_000 / (258_000 + 6_000))
    assert share["p10"] == share["p50"] == share["p90"]
    assert res.lifetime["lifetime_fixed_usd"]["p50"] == pytest.approx((20_000 + 1_500 + 7_000) * 12)


def test_headcount_equals_the_same_dollars():
    as_usd = parse(base(fixed_monthly={"staff_usd": 40_000})).evaluate().to_dict()
    as_people = parse(base(fixed_monthly={"staff": {"headcount": 4, "loaded_usd_per_year": 120_000}})).evaluate()
    roles = parse(base(fixed_monthly={"staff": [
        {"name": "ML engineers", "headcount": 3, "loaded_usd_per_year": 100_000},
        {"name": "SRE", "headcount": 1, "loaded_usd_per_year": 180_000}]})).evaluate()
    for res in (as_people.to_dict(), roles.to_dict()):
        assert res["summary"] == as_usd["summary"] and res["lifetime"] == as_usd["lifetime"]


def test_no_cost_at_all_gives_none_and_no_system_gives_zero():
    empty = base(product={"users_start": 10, "price_per_user_month_usd": 1}, serving={"routes": []})
    res = parse(empty).evaluate()
    assert res.summary["system_share_of_lifetime_cost"] == {"p10": None, "p50": None, "p90": None}
    json.dumps(res.to_dict(), allow_nan=False)
    assert parse(base()).evaluate().summary["system_share_of_lifetime_cost"]["p50"] == 0.0


def test_uncertain_headcount_is_an_uncertain_input_and_matches_the_plain_loop():
    plan = parse(base(fixed_monthly={"staff": [
        {"name": "eng", "headcount": {"dist": "uniform", "low": 1, "high": 5}, "loaded_usd_per_year": 150_000},
        {"name": "ops", "headcount": 1, "loaded_usd_per_year": {"dist": "triangular", "low": 80e3, "mode": 1e5,
                                                                "high": 1.5e5}}]}))
    assert {"fixed_monthly.staff[0].headcount", "fixed_monthly.staff[1].loaded_usd_per_year"} <= set(plan.uncertain())
    res = plan.evaluate(samples=4000, seed=3)
    s = res.summary["system_share_of_lifetime_cost"]
    assert s["p10"] < s["p50"] < s["p90"]
    assert any(r["input"] == "fixed_monthly.staff[0].headcount" for r in res.sensitivity)
    P = plan._draw(__import__("numpy").random.default_rng(0), 5)
    fast = plan._summaries(P)
    for i in range(5):
        row = {k: (float(v[i, 0]) if hasattr(v, "shape") else v) for k, v in P.items()}
        assert fast["system_share_of_lifetime_cost"][i] == pytest.approx(
            loop_summaries(plan, row)["system_share_of_lifetime_cost"], rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.floats(0, 50), usd=st.floats(1e4, 1e6), mon=st.floats(0, 1e5))
def test_system_share_is_a_share_and_grows_with_headcount(n, usd, mon):
    def share(h):
        fm = {"staff": {"headcount": h, "loaded_usd_per_year": usd}, "monitoring_usd": mon}
        return parse(base(fixed_monthly=fm)).evaluate().summary["system_share_of_lifetime_cost"]["p50"]
    a, b = share(n), share(n + 1)
    assert 0 <= a <= b <= 1


@pytest.mark.parametrize("fm,path", [
    ({"staff": 40000}, "fixed_monthly.staff"),
    ({"staff": {"headcount": -1, "loaded_usd_per_year": 1e5}}, "fixed_monthly.staff[0].headcount"),
    ({"staff": {"headcount": 2}}, "fixed_monthly.staff[0].loaded_usd_per_year"),
    ({"staff": [{"name": "x", "headcount": 1, "loaded_usd_per_year": 1e5, "title": "y"}]}, "fixed_monthly.staff[0].title"),
    ({"staff": {"headcount": 2, "loaded_usd_per_year": 1e5}, "staff_usd": 1000}, "fixed_monthly"),
    ({"staff": []}, "fixed_monthly"),
])
def test_bad_staff(fm, path):
    with pytest.raises(BillshapeInputError) as e:
        parse(base(fixed_monthly=fm))
    assert e.value.field == path


def test_cli_json_screen_and_report(cli, tmp_path):
    data = yaml.safe_load(SHOCK.read_text())
    data["fixed_monthly"] = {"staff": [{"name": "engineers", "headcount": 3, "loaded_usd_per_year": 160_000}],
                             "monitoring_usd": 2000, "on_call_usd": 3000}
    f = tmp_path / "people.yaml"
    f.write_text(yaml.safe_dump(data))
    out = cli("plan", str(f), "--samples", "2000", "--seed", "1", "--json").json()
    q = out["summary"]["system_share_of_lifetime_cost"]
    assert set(q) == {"p10", "p50", "p90"} and 0 < q["p10"] < q["p50"] < q["p90"] < 1
    screen = cli("plan", str(f), "--samples", "2000", "--seed", "1", "--report", str(tmp_path / "r.html"))
    assert screen.code == 0 and "system share of lifetime cost" in screen.out and "model (training + inference)" in screen.out
    html = (tmp_path / "r.html").read_text()
    assert "The model against the system" in html and "system share of lifetime cost" in html
    bad = copy.deepcopy(data)
    bad["fixed_monthly"] = {"staff": {"headcount": "many", "loaded_usd_per_year": 1}}
    f.write_text(yaml.safe_dump(bad))
    assert_one_line_error(cli("plan", str(f), "--json"), "fixed_monthly.staff[0].headcount")
