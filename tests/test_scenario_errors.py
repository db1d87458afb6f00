"""Bad scenarios: one line naming the YAML path, exit 2; a generated corpus never gives a traceback, NaN or inf."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape.errors import BillshapeInputError
from billshape.scenario import parse
from conftest import assert_one_line_error

VALID = {
    "name": "t", "horizon_months": 12, "discount_rate_annual": 0.1,
    "product": {"users_start": 1000, "growth_monthly": 0.05, "churn_monthly": 0.02, "price_per_user_month_usd": 20,
                "requests_per_user_month": {"dist": "lognormal", "p10": 50, "p90": 200},
                "input_tokens_per_request": 500, "output_tokens_per_request": 200, "cache_hit_rate": 0.2},
    "serving": {"routes": [
        {"share": 0.6, "api": {"model": "x", "usd_per_million_input_tokens": 1, "usd_per_million_output_tokens": 4}},
        {"share": 0.4, "self_hosted": {"tokens_per_second": 2000, "gpus": 1, "usd_per_gpu_hour": 2,
                                       "utilization": 0.5, "setup_usd": 1000}}]},
    "training": {"gpu": "a100", "gpus": 8, "days": {"dist": "triangular", "low": 1, "mode": 2, "high": 4},
                 "usd_per_gpu_hour": 2, "amortization_months": 6, "retrain_every_months": 3},
    "fixed_monthly": {"staff_usd": 5000},
    "market": {"api_price_steps": [{"month": 6, "factor": {"dist": "uniform", "low": 3, "high": 5}}]},
}


def with_(path: str, value, data=None):
    data = copy.deepcopy(data or VALID)
    node = data
    parts = path.replace("]", "").replace("[", ".").split(".")
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node[p]
    last = parts[-1]
    if value is DELETE:
        del node[int(last) if last.isdigit() else last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return data


DELETE = object()


def test_valid_base_runs(cli, tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text(yaml.safe_dump(VALID))
    res = cli("plan", str(f), "--samples", "500", "--json")
    assert res.code == 0, res.err
    assert res.json()["build_vs_buy"] is not None


CASES = [
    ("unknown key", with_("product.userz", 5), "product.userz"),
    ("unknown top key", with_("pricing", 5), "pricing"),
    ("malformed value", with_("product.users_start", "lots"), "product.users_start"),
    ("boolean", with_("product.users_start", True), "product.users_start"),
    ("missing", with_("product.price_per_user_month_usd", DELETE), "product.price_per_user_month_usd"),
    ("missing horizon", with_("horizon_months", DELETE), "horizon_months"),
    ("p10 > p90", with_("product.requests_per_user_month", {"dist": "lognormal", "p10": 300, "p90": 100}),
     "product.requests_per_user_month"),
    ("negative price", with_("product.price_per_user_month_usd", -5), "product.price_per_user_month_usd"),
    ("negative api price", with_("serving.routes[0].api.usd_per_million_input_tokens", -1),
     "serving.routes[0].api.usd_per_million_input_tokens"),
    ("negative gpu price", with_("serving.routes[1].self_hosted.usd_per_gpu_hour", -2),
     "serving.routes[1].self_hosted.usd_per_gpu_hour"),
    ("shares", with_("serving.routes[1].share", 0.5), "serving.routes[1].share"),
    ("share > 1", with_("serving.routes[0].share", 1.5), "serving.routes[0].share"),
    ("unknown dist", with_("product.users_start", {"dist": "poisson", "lam": 3}), "product.users_start"),
    ("dist keys", with_("product.users_start", {"dist": "uniform", "low": 1}), "product.users_start"),
    ("fraction > 1", with_("product.cache_hit_rate", 1.2), "product.cache_hit_rate"),
    ("uniform outside", with_("product.churn_monthly", {"dist": "uniform", "low": 0.5, "high": 1.5}),
     "product.churn_monthly"),
    ("normal tail", with_("product.users_start", {"dist": "normal", "mean": 10, "sd": 10}), "product.users_start"),
    ("both api and self", with_("serving.routes[0].self_hosted", {"usd_per_million_input_tokens": 1,
                                                                  "usd_per_million_output_tokens": 1}),
     "serving.routes[0]"),
    ("self-hosted neither", with_("serving.routes[1].self_hosted", {"gpus": 1}), "serving.routes[1].self_hosted"),
    ("unknown gpu", with_("training.gpu", "a1000"), "training.gpu"),
    ("training total and run", with_("training.total_usd", 5), "training.total_usd"),
    ("unknown route key", with_("serving.routes[1].self_hosted.modle", "llama-3-70b"),
     "serving.routes[1].self_hosted.modle"),
    ("two self-hosted ways", with_("serving.routes[1].self_hosted.model", "llama-3.1-70b"),
     "serving.routes[1].self_hosted.model"),
    ("horizon", with_("horizon_months", 0), "horizon_months"),
    ("step month", with_("market.api_price_steps[0].month", 0), "market.api_price_steps[0].month"),
    ("not a mapping", [1, 2], "bad.yaml"),
]


@pytest.mark.parametrize("label,data,field", CASES, ids=[c[0] for c in CASES])
def test_bad_scenario_one_line_exit_2(cli, tmp_path, label, data, field):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(data))
    assert_one_line_error(cli("plan", str(f)), field)


def test_unknown_api_model_suggests_close_names(cli, tmp_path):
    data = with_("serving.routes[0].api", {"model": "gpt-4o-mni"})
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(data))
    res = cli("plan", str(f))
    assert_one_line_error(res, "serving.routes[0].api.model")
    assert "gpt-4o-mini" in res.err and len(res.err) < 400


def test_unknown_key_suggests(cli, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(yaml.safe_dump(with_("product.user_start", 5)))
    res = cli("plan", str(f))
    assert_one_line_error(res, "product.user_start")
    assert "users_start" in res.err


def test_yaml_syntax_error_names_line(cli, tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("horizon_months: 12\nproduct: {users_start: 5\n")
    res = cli("plan", str(f))
    assert_one_line_error(res, "broken.yaml line")


def test_missing_file(cli, tmp_path):
    assert_one_line_error(cli("plan", str(tmp_path / "nope.yaml")), "FILE")


def test_bad_samples(cli):
    from billshape.scenario import examples_dir

    assert_one_line_error(cli("plan", str(examples_dir() / "api_wrapper_price_shock.yaml"), "--samples", "0"), "--samples")


# --- generated corpus ------------------------------------------------------------------------------------------

def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(VALID) if p]
JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e12, 1e13, 0.0, -0.0, 1e-320, "", "x", "1e3", "nan", "inf", [], {}, [1, 2]]),
    st.text(max_size=8),
    st.fixed_dictionaries({"dist": st.sampled_from(["lognormal", "normal", "uniform", "triangular", "beta"])},
                          optional={"p10": st.floats(-1e3, 1e13), "p90": st.floats(-1e3, 1e13),
                                    "low": st.floats(-5, 1e13), "high": st.floats(-5, 1e13), "mode": st.floats(-5, 10),
                                    "mean": st.floats(-10, 1e13), "sd": st.floats(-1, 1e12)}),
)


@st.composite
def broken(draw):
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        node = data
        try:
            for p in path[:-1]:
                node = node[p]
            last = path[-1]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "delete":
                del node[last]
            elif action == "add" and isinstance(node, dict):
                node[draw(st.sampled_from(["zzz", "share", "dist", "model", "p10", "users_start"]))] = draw(JUNK)
            else:
                node[last] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            pass
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broken())
def test_broken_corpus_never_traceback_nan_or_inf(data):
    try:
        res = parse(data).evaluate(samples=64, seed=0)
    except BillshapeInputError as exc:
        assert "\n" not in exc.message and exc.field
        return
    text = json.dumps(res.to_dict(), allow_nan=False)  # raises on NaN or inf
    assert "Infinity" not in text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(broken())
def test_broken_corpus_through_the_cli(cli, tmp_path, data):
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(data))
    res = cli("plan", str(f), "--samples", "32", "--json")
    assert res.code in (0, 2), res.err
    assert "Traceback" not in res.err and "internal error" not in res.err
    if res.code == 0:
        json.loads(res.out)
    else:
        assert res.out == "" and len(res.err.strip().splitlines()) == 1


# --- every numeric key, every bad number: "<yaml.path>: got <value>; allowed: <range>" (QA: horizon_months: 0
# gave pydantic's raw "Input should be greater than or equal to 1") ---

import math  # noqa: E402
import re  # noqa: E402

from billshape import scenario as _scn  # noqa: E402

WHERE = {  # where each schema model sits in VALID
    _scn.Scenario: "", _scn.Product: "product", _scn.Route: "serving.routes[0]", _scn.ApiRoute: "serving.routes[0].api",
    _scn.SelfHosted: "serving.routes[1].self_hosted", _scn.TrainingProject: "training",
    _scn.FixedMonthly: "fixed_monthly", _scn.Market: "market", _scn.PriceStep: "market.api_price_steps[0]",
}


def _numeric_keys() -> list[str]:
    keys = []
    for model, prefix in WHERE.items():
        for name, field in model.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if "bound" in extra or field.annotation in (int, float):
                keys.append(f"{prefix}.{name}" if prefix else name)
    return keys


NUMERIC_KEYS = _numeric_keys()
BAD_NUMBERS = [0, -1, 1e308, -1e308, math.nan, math.inf, 2.5, True, "abc", [1]]


def test_every_numeric_key_is_covered():
    assert len(NUMERIC_KEYS) >= 40
    for key in ("horizon_months", "training.amortization_months", "training.retrain_every_months",
                "serving.routes[0].share", "market.api_price_steps[0].month", "product.users_start"):
        assert key in NUMERIC_KEYS


def _check_message(key: str, value, exc: BillshapeInputError) -> None:
    msg = str(exc)
    assert "Input should" not in msg and "pydantic" not in msg.lower(), msg
    # the key itself, or (a conflict such as hours next to days, shares not summing to 1) a key beside it
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    assert exc.field == key or exc.field.startswith(key + ".") or (parent and exc.field.startswith(parent)) \
        or (key.endswith(".share") and exc.field.endswith(".share")), msg
    assert re.match(r"^\S+: (got .+; allowed|missing; required): .+", msg), msg
    if exc.field == key:
        # the allowed part is a range (a bound) or a list of choices, not a parser's sentence
        assert re.search(r"(>=?|<=?|one of|shares|integer|number|text|only with|without|exactly one of|not both|in [(\[])", exc.allowed), msg
    assert "\n" not in msg


@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_bad_numbers_name_the_key_and_its_range(key):
    for value in BAD_NUMBERS:
        try:
            parse(with_(key, value))
        except BillshapeInputError as exc:
            _check_message(key, value, exc)
        else:
            assert not (isinstance(value, float) and not math.isfinite(value)), f"{key}={value!r} accepted"
            assert value is not True and value != "abc" and value != [1], f"{key}={value!r} accepted"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(NUMERIC_KEYS), st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20)))
def test_any_number_in_any_key_is_accepted_or_one_clean_message(key, value):
    try:
        parse(with_(key, value))
    except BillshapeInputError as exc:
        _check_message(key, value, exc)


def test_horizon_zero_reads_like_billshape(cli, tmp_path):
    f = tmp_path / "h.yaml"
    f.write_text(yaml.safe_dump(with_("horizon_months", 0)))
    res = cli("plan", str(f))
    assert_one_line_error(res, "horizon_months")
    assert "horizon_months: got 0; allowed: an integer >= 1 and <= 240" in res.err
