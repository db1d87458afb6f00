"""The billshape.plan package: run by name, notebook views, the compatibility shim, library error fields."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

import billshape as bs
from billshape import plan, scenario
from billshape.errors import BillshapeInputError
from billshape.plan import errors as plan_errors
from billshape.plan import model as plan_model

SHIM_NAMES = ["load", "examples_dir", "QUANTILES", "plan", "parse", "_order_values", "_from_brackets", "_quantiles",
              "_monthly_quantiles", "_gather", "_select", "WORKERS", "SUMMARY_CHUNK", "SUMMARY_KEYS", "EXTRA_KEYS",
              "MONTHLY_RESERVOIR", "BRACKET_MIN_REST", "Product", "PlanResult", "resolve", "example_names",
              "_to_number", "Scenario", "Plan", "Dist", "api_price", "tokens_per_user"]


@pytest.fixture(scope="module")
def shock():
    return plan.run("api_wrapper_price_shock", samples=3000, seed=2)


def test_run_takes_a_shipped_name_with_or_without_yaml():
    a = plan.run("seed000_image_startup")
    b = plan.plan("seed000_image_startup.yaml", samples=10, seed=3)
    c = scenario.plan(plan.examples_dir() / "seed000_image_startup.yaml")
    assert a.summary == b.summary == c.summary and a.summary["payback_month"]["p50"] == pytest.approx(2.352)
    assert bs.plan.run is plan.run


def test_run_passes_samples_and_seed(shock):
    again = plan.run("api_wrapper_price_shock.yaml", samples=3000, seed=2)
    other = plan.run("api_wrapper_price_shock", samples=3000, seed=3)
    assert shock.samples == 3000 and shock.seed == 2
    assert again.to_dict() == shock.to_dict() and other.summary != shock.summary


def test_the_shim_re_exports_every_name_in_use():
    for name in SHIM_NAMES:
        assert getattr(scenario, name) is not None, name
    assert scenario.Plan is plan.Plan and scenario.load is plan.load and scenario.plan is plan.plan


def test_setting_a_name_on_the_shim_reaches_the_plan_modules(monkeypatch):
    monkeypatch.setattr(scenario, "WORKERS", 1)
    assert plan_model.WORKERS == 1
    monkeypatch.undo()
    assert plan_model.WORKERS == scenario.WORKERS >= 1


def test_to_pandas_rows_are_the_outcomes_and_columns_the_quantiles(shock):
    from billshape.cli.cmd_plan import summary_rows

    frame = shock.to_pandas()
    assert list(frame.columns[:4]) == ["P10", "P50", "P90", "unit"]
    assert list(frame.index) == [row[0] for row in summary_rows(shock)]  # the CLI's labels, in its order
    npv = frame.loc["NPV"]
    assert (npv["P10"], npv["P50"], npv["P90"]) == tuple(shock.summary["npv_usd"][p] for p in ("p10", "p50", "p90"))
    assert npv["unit"] == "USD" and frame.loc["payback month", "unit"] == "months"
    assert frame.loc["contribution margin / user-month", "unit"] == "USD per user-month"
    assert frame.attrs["probability_never_pays_back"] == shock.probability_never_pays_back


def test_never_paying_back_is_inf_in_the_frame():
    res = plan.parse({"horizon_months": 6, "discount_rate_annual": 0.0,
                      "product": {"users_start": 10, "price_per_user_month_usd": 1},
                      "training": {"total_usd": 1e6, "amortization_months": 6}}).evaluate()
    assert res.summary["payback_month"]["p50"] is None
    assert math.isinf(res.to_pandas().loc["payback month", "P50"])


def test_monthly_frame_and_the_json_list_stay_the_same_rows(shock):
    frame = shock.monthly_frame()
    assert len(frame) == shock.horizon_months and frame.index.name == "month"
    rows = shock.to_dict()["monthly"]
    assert isinstance(rows, list) and rows[0]["month"] == 1
    assert frame.loc[1, "revenue_usd"] == rows[0]["revenue_usd"]
    json.dumps(shock.to_dict(), allow_nan=False)


def test_assumptions_frame(shock):
    frame = shock.assumptions_frame()
    assert list(frame.columns) == ["name", "value", "unit", "source", "as_of"]
    assert len(frame) == len(shock.assumptions) and frame["source"].str.len().min() > 0


def test_repr_html_puts_the_headline_first(shock):
    page = shock._repr_html_()
    order = [page.index(x) for x in ("payback month", "NPV", "contribution margin / user-month",
                                     "fully loaded margin / user-month", "never pays back", "<details")]
    assert order == sorted(order)
    assert page.index("lifetime revenue") > page.index("<details")
    assert shock.assumptions[0].name in page


@pytest.mark.parametrize("raised", ["--gpus", "gpus"])
def test_model_route_error_field_maps_to_the_yaml_key_either_way(monkeypatch, raised):
    from billshape import serving

    def bad(*a, **k):
        raise BillshapeInputError(raised, 3, "a multiple of the tensor-parallel size")

    monkeypatch.setattr(serving, "serve", bad)  # the plan runs the serve chain (chains.run(ServeRequest))
    data = {"horizon_months": 12, "discount_rate_annual": 0.0,
            "product": {"users_start": 100, "price_per_user_month_usd": 10, "requests_per_user_month": 10,
                        "input_tokens_per_request": 100, "output_tokens_per_request": 100},
            "serving": {"routes": [{"share": 1.0, "self_hosted": {"model": "llama-3.1-8b", "gpu": "h100", "gpus": 3,
                                                                  "usd_per_gpu_hour": 2.0}}]}}
    with pytest.raises(BillshapeInputError) as err:
        plan.parse(data)
    assert err.value.field == "serving.routes[0].self_hosted.gpus"


def test_the_plan_builds_the_chains_requests_the_cli_builds(monkeypatch):
    """A model: route and a training run go through billshape.chains.run, as `billshape serve` and `train` do."""
    from billshape import chains

    seen, real = [], chains.run
    monkeypatch.setattr(chains, "run", lambda req: seen.append(req) or real(req))
    data = {"horizon_months": 12, "discount_rate_annual": 0.0,
            "product": {"users_start": 100, "price_per_user_month_usd": 10, "requests_per_user_month": 10,
                        "input_tokens_per_request": 100, "output_tokens_per_request": 100},
            "serving": {"routes": [{"share": 1.0, "self_hosted": {"model": "llama-3.1-8b", "gpu": "h100", "gpus": 1,
                                                                  "usd_per_gpu_hour": 2.0}}]},
            "training": {"gpu": "h100", "gpus": 8, "days": 2, "usd_per_gpu_hour": 2, "amortization_months": 6}}
    plan.parse(data)
    assert [type(r).__name__ for r in seen] == ["ServeRequest", "TrainRequest"]
    assert (seen[0].model, seen[0].batch, seen[0].price, seen[1].gpus, seen[1].price) == ("llama-3.1-8b", "max", 2.0, 8, 2)


@pytest.mark.parametrize("raised", ["--gpu-hours", "gpu_hours", "gpu-hours"])
def test_training_error_field_maps_to_the_yaml_key_either_way(monkeypatch, raised):
    from billshape import estimates

    def bad(**k):
        raise BillshapeInputError(raised, 0, "> 0")

    monkeypatch.setattr(estimates, "training_bill", bad)
    data = {"horizon_months": 12, "discount_rate_annual": 0.0,
            "product": {"users_start": 100, "price_per_user_month_usd": 10},
            "training": {"gpu_hours": 10, "usd_per_gpu_hour": 2, "amortization_months": 6}}
    with pytest.raises(BillshapeInputError) as err:
        plan.parse(data)
    assert err.value.field == "training.gpu_hours"


@pytest.mark.parametrize("block, flag, python, key", [
    ("self_hosted_model", "--kv-precision", "kv_precision", "kv_precision"),
    ("self_hosted_model", "--price", "usd_per_gpu_hour", "usd_per_gpu_hour"),
    ("self_hosted_model", "--input-tokens", "input_tokens", "model"),  # not a key of the block: its default
    ("self_hosted_gpu_price", "--gpu", "gpu_name", "gpu"),
    ("training", "--price/--provider", "price/provider", "usd_per_gpu_hour"),
    ("training", "--days/--hours", "days/hours", "days"),
    ("training", "--method", "method", "method"),
])
def test_flag_to_path_reads_cli_flags_and_python_names_alike(block, flag, python, key):
    assert plan_errors.scenario_key(block, flag) == plan_errors.scenario_key(block, python) == key


def test_library_field_normalises():
    assert plan_errors.library_field("--kv-precision") == "kv_precision"
    assert plan_errors.library_field("--price/--provider") == "price/provider"


def test_summaries_and_monthly_view_share_the_terms():
    from billshape.plan import cashflow

    # the shipped example with its self-hosted route billed per served token (utilization given, not a fleet):
    # both kinds of cost path in closed form
    text = (plan.examples_dir() / "high_volume_self_host.yaml").read_text()
    text = "\n".join(line for line in text.splitlines()
                     if not line.lstrip().startswith(("replicas:", "peak_to_mean:", "tpot_limit:")))
    text = text.replace("        setup_usd:", "        utilization: {dist: triangular, low: 0.35, mode: 0.5, high: 0.7}\n"
                        "        setup_usd:")
    p = plan.load(text)
    P = p._draw(np.random.default_rng(1), 200)
    t = cashflow.pnl_terms(p, P)
    assert {c.kind for c in t.costs} == {"api", "own"} and not t.fleets
    fast, full = cashflow.summary_pnl(t), cashflow.monthly_pnl(t, monthly=False)
    for key in cashflow.SUMMARY_KEYS + cashflow.EXTRA_KEYS:
        np.testing.assert_allclose(fast[key], full[key], rtol=1e-9, atol=1e-6, equal_nan=True, err_msg=key)


def test_loading_a_bounded_scenario_imports_neither_scipy_nor_pandas():
    code = ("import sys, billshape.plan as p; p.load('seed000_image_startup'); "
            "print(sorted(m for m in ('scipy', 'pandas', 'altair') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("edit", [
    lambda text: text,  # the shipped fleet: replicas sized per month (tpot_limit), uncertain prices and trend
    lambda text: text.replace("discount_rate_annual: 0.10", "discount_rate_annual: {dist: uniform, low: 0.05, high: 0.2}"),
])
def test_fleet_summaries_match_the_monthly_pass(edit):
    """The lean fleet pass (closed forms + the replica counts month by month) gives monthly_pnl's summaries to
    rounding, with one discount rate for all samples and with one per sample."""
    from billshape.plan import cashflow

    p = plan.load(edit((plan.examples_dir() / "high_volume_self_host.yaml").read_text()))
    P = p._draw(np.random.default_rng(5), 3000)
    t = cashflow.pnl_terms(p, P)
    assert t.fleets
    with np.errstate(all="ignore"):
        fast, full = cashflow.summary_pnl(t), cashflow.monthly_pnl(t, monthly=False)
    assert set(fast) == set(full)
    for key in full:
        np.testing.assert_allclose(fast[key], full[key], rtol=1e-10, atol=1e-6, equal_nan=True, err_msg=key)
