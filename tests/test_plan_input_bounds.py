"""Bounded scenario input: no YAML may cause an internal error (exit 1); each limit is one line naming the file or
the key path, exit 2 (duplicate keys, deep nesting, over-long numbers, oversized files)."""

from __future__ import annotations

import io

import pytest

from billshape import plan
from billshape.errors import BillshapeInputError
from billshape.plan import loader
from conftest import assert_one_line_error

GOOD = """\
name: t
horizon_months: 12
discount_rate_annual: 0.1
product:
  users_start: 1000
  price_per_user_month_usd: 20
"""


def write(tmp_path, text: str, name: str = "s.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_key_names_its_path(cli, tmp_path):
    text = GOOD + "  users_start: 2000\n"  # product.users_start given twice: not "last wins"
    res = cli("plan", write(tmp_path, text), "--json")
    assert_one_line_error(res, "product.users_start")
    assert "twice" in res.err and "line 7" in res.err


def test_duplicate_top_level_and_list_item_keys(tmp_path):
    with pytest.raises(BillshapeInputError) as err:
        plan.load(GOOD + "horizon_months: 24\n")
    assert err.value.field == "horizon_months"
    text = GOOD + "serving:\n  routes:\n    - share: 1\n      share: 1\n"
    with pytest.raises(BillshapeInputError) as err:
        plan.load(text)
    assert err.value.field == "serving.routes[0].share"
    # the same key in two different mappings is fine
    ok = GOOD + "fixed_monthly:\n  staff_usd: 1\nmarket:\n  api_price_steps:\n    - {month: 2, factor: 2}\n" \
                "    - {month: 3, factor: 2}\n"
    assert plan.load(ok).scenario.market.api_price_steps[1].month == 3


@pytest.mark.parametrize("depth", [100, 100_000])
def test_deep_nesting_is_an_input_error_not_a_recursion_error(cli, tmp_path, depth):
    text = GOOD + "description: " + "[" * depth + "]" * depth + "\n"
    res = cli("plan", write(tmp_path, text), "--json")
    assert_one_line_error(res, "s.yaml")
    assert "levels of nesting" in res.err


def test_nesting_within_the_limit_reaches_the_schema(tmp_path):
    text = GOOD + "description: " + "[" * 10 + "]" * 10 + "\n"
    with pytest.raises(BillshapeInputError) as err:
        plan.load(text)
    assert err.value.field == "description"  # a list, not text: the schema's own message


@pytest.mark.parametrize("digits", [400, 5000])
def test_huge_integer_names_the_field(cli, tmp_path, digits):
    text = GOOD.replace("users_start: 1000", "users_start: 1" + "0" * digits)
    res = cli("plan", write(tmp_path, text), "--json")
    assert_one_line_error(res, "product.users_start")
    assert len(res.err) < 400


def test_huge_integer_in_a_mapping_given_directly():
    data = {"horizon_months": 12, "discount_rate_annual": 0.1,
            "product": {"users_start": 10**5000, "price_per_user_month_usd": 20}}
    with pytest.raises(BillshapeInputError) as err:
        plan.parse(data)
    assert err.value.field == "product.users_start" and "digits" in err.value.message
    data["horizon_months"], data["product"]["users_start"] = 10**5000, 1000
    with pytest.raises(BillshapeInputError) as err:
        plan.parse(data)
    assert err.value.field == "horizon_months"


def test_oversized_file_names_the_file_and_the_cap(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_BYTES", 4096)  # the same check as at 2 MB, without writing 2 MB
    text = GOOD + "".join(f"# padding line {i}\n" for i in range(400))
    res = cli("plan", write(tmp_path, text, "big.yaml"), "--json")
    assert_one_line_error(res, "big.yaml")
    assert "4,096 bytes" in res.err


def test_default_cap_is_two_megabytes(tmp_path):
    assert loader.MAX_BYTES == 2 * 1024 * 1024
    path = tmp_path / "huge.yaml"
    with open(path, "wb") as fh:
        fh.write(GOOD.encode())
        fh.write(b"#" * (loader.MAX_BYTES + 10))
    with pytest.raises(BillshapeInputError) as err:
        plan.load(path)
    assert err.value.field == "huge.yaml" and "2 MB" in err.value.allowed
    with pytest.raises(BillshapeInputError):  # bytes and file objects are capped too
        plan.parse_bytes(path.read_bytes(), "up.yaml")
    with pytest.raises(BillshapeInputError):
        plan.load(io.BytesIO(path.read_bytes()))


def test_load_takes_text_bytes_and_file_objects(tmp_path):
    want = plan.load(write(tmp_path, GOOD), name="scenario.yaml").evaluate().to_dict()
    for source in (GOOD, GOOD.encode(), io.BytesIO(GOOD.encode()), io.StringIO(GOOD)):
        assert plan.load(source).evaluate().to_dict() == want  # unnamed input: "scenario.yaml" in its messages
    assert plan.parse_bytes(GOOD.encode(), "upload.yaml").source == "upload.yaml"
    assert plan.parse(GOOD.encode(), "x.yaml").scenario.horizon_months == 12
    with open(write(tmp_path, GOOD), "rb") as fh:
        assert plan.read(fh).source == "s.yaml"


def test_bytes_errors_name_the_upload():
    with pytest.raises(BillshapeInputError) as err:
        plan.parse_bytes(b"name: x\nproduct: [\n", "up.yaml")
    assert err.value.field.startswith("up.yaml line")
    with pytest.raises(BillshapeInputError) as err:
        plan.parse_bytes(b"\xff\xfe", "up.yaml")
    assert err.value.field == "up.yaml" and "UTF-8" in err.value.allowed


def test_too_many_nodes_is_an_input_error(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_NODES", 500)
    steps = "".join(f"    - {{month: {i % 200 + 1}, factor: 1.5}}\n" for i in range(200))
    res = cli("plan", write(tmp_path, GOOD + "market:\n  api_price_steps:\n" + steps, "many.yaml"), "--json")
    assert_one_line_error(res, "many.yaml")
    assert "500 YAML nodes" in res.err


def test_text_libyaml_refuses_is_still_judged_by_the_python_parser(monkeypatch):
    import yaml

    class Refusing(yaml.SafeLoader):
        def __init__(self, stream):
            raise yaml.YAMLError("refused")

    monkeypatch.setattr(yaml, "CSafeLoader", Refusing)
    assert plan.load(GOOD).scenario.horizon_months == 12


def test_a_crlf_file_reads_as_its_lf_twin(tmp_path):
    lf = plan.load(write(tmp_path, GOOD + 'description: "two\n  lines"\n'), name="x.yaml")
    crlf_path = tmp_path / "crlf.yaml"
    crlf_path.write_bytes((GOOD + 'description: "two\n  lines"\n').replace("\n", "\r\n").encode())
    crlf = plan.load(crlf_path, name="x.yaml")
    assert crlf.scenario == lf.scenario and crlf.values == lf.values
