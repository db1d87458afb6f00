"""Constant dollars (``--usd-year``, data/price_index.csv) and the frontier generation (``train --generation``,
data/frontier_generation.csv), library and CLI, fast path included."""

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import price_index, training
from billshape.cli import _fast, run
from billshape.errors import BillshapeInputError
from billshape.estimates import FrontierGeneration, TrainingBillInUsdYear, generation_parameters, training_bill
from conftest import assert_one_line_error


# --- the price index ---------------------------------------------------------------------------------------------
def test_cpi_series_is_bls_cpi_u():
    s = price_index.series()
    assert s[2024].value == 313.689 and s[2023].value == 304.702 and s[2020].value == 258.811
    years = sorted(s)
    assert years == list(range(years[0], years[-1] + 1))  # no gaps
    assert all(s[a].value < s[b].value for a, b in zip(years, years[1:]))  # CPI-U rose every year 2010-2024
    assert all("CUUR0000SA0" in r.source for r in s.values())


@settings(max_examples=40, deadline=None)
@given(usd=st.floats(1, 1e12), y0=st.integers(2010, 2024), y1=st.integers(2010, 2024))
def test_conversion_round_trips(usd, y0, y1):
    there, _ = price_index.conversion(y0, y1)
    back, _ = price_index.conversion(y1, y0)
    assert there.factor * back.factor == pytest.approx(1.0)
    assert (there.factor > 1) == (y1 > y0) or y0 == y1


def test_years_after_the_series_are_read_as_its_last_year_and_say_so():
    conv, rows = price_index.conversion(2026, 2023)
    assert conv.index_year_used == 2024 and "not counted" in conv.note
    assert conv.factor == pytest.approx(304.702 / 313.689)
    with pytest.raises(BillshapeInputError):
        price_index.conversion(2005, 2023)
    for bad in (2009, 2025, 2020.5, "x", float("nan")):
        with pytest.raises(BillshapeInputError) as e:
            price_index.check_usd_year(bad)
        assert e.value.field == "usd_year"


# --- the generation equation -------------------------------------------------------------------------------------
def test_generation_equation_by_hand():
    g = training.generation_cost_usd(100.0, 2.0, 0.5, 10.0)
    assert g == {"experiments_usd": 100.0, "compute_usd": 200.0, "staff_usd": 200.0, "total_usd": 410.0}
    # staff is the share of the total development cost (compute + staff), as Cottier et al. define it
    g = training.generation_cost_usd(78e6, 2.2, 0.39, 0.0)
    assert g["staff_usd"] / (g["staff_usd"] + g["compute_usd"]) == pytest.approx(0.39)
    with pytest.raises(BillshapeInputError):
        training.generation_cost_usd(1.0, 0.5, 0.1)
    with pytest.raises(BillshapeInputError):
        training.generation_cost_usd(1.0, 2.0, 1.0)


@settings(max_examples=40, deadline=None)
@given(final=st.floats(0, 1e10), mult=st.floats(1, 10), share=st.floats(0, 0.9), data=st.floats(0, 1e9))
def test_generation_total_is_monotone_and_at_least_the_final_run(final, mult, share, data):
    g = training.generation_cost_usd(final, mult, share, data)
    assert g["total_usd"] >= final + data - 1e-6 * (final + data)
    more = training.generation_cost_usd(final, mult * 1.1, share, data)
    assert more["total_usd"] >= g["total_usd"]


def test_generation_parameters_are_sourced_and_ordered():
    p = generation_parameters()
    assert p["experiments_multiplier"]["central"] == 2.2 and p["staff_share"]["high"] == 0.49
    for row in p.values():
        assert row["low"] <= row["central"] <= row["high"] and row["source"] and row["as_of"]


# --- seed 004: a GPT-4-class generation --------------------------------------------------------------------------
def test_gpt4_class_generation_brackets_seed_004():
    """Seed 004: '$100M+' final run, '$200-300M per frontier model generation'. Epoch's cloud-price estimate of
    GPT-4's final run ($78M) gives a central $356M (above the seed), its amortised estimate ($40M) a central
    $219M (inside the seed's range); the seed's $200-300M lies inside both bounding ranges."""
    cloud = training_bill(run="gpt-4-epoch-cloud", generation=True)
    assert isinstance(cloud, FrontierGeneration) and cloud.bill is None and cloud.final_run_usd == 78e6
    assert cloud.total_usd.central == pytest.approx(356.3e6, rel=1e-3)
    assert cloud.total_usd.low < 200e6 and cloud.total_usd.high > 300e6
    amortized = training_bill(run="gpt-4-epoch-amortized", generation=True)
    assert 200e6 <= amortized.total_usd.central <= 300e6
    # experiments 1.2x, staff 39 % of development cost, data 60M$/yr x 15 months
    assert cloud.experiments_usd.central == pytest.approx(1.2 * 78e6)
    assert cloud.data_usd.central == pytest.approx(75e6)


def test_generation_from_a_priced_bill_and_overrides():
    g = training_bill(run="llama-3.1-405b", provider="lambda", generation=True, experiments_multiplier=3,
                      staff_usd=5e7, data_usd=1e7)
    assert g.bill is not None and g.basis == "the bill's final run"
    assert g.final_run_usd == g.bill.total_usd
    assert g.experiments_multiplier.low == g.experiments_multiplier.high == 3
    assert g.staff_usd.central == 5e7 and g.data_usd.high == 1e7
    assert g.total_usd.central == pytest.approx(3 * g.final_run_usd + 5e7 + 1e7)
    with pytest.raises(BillshapeInputError) as e:
        training_bill(run="claude-3.5-sonnet-amodei", generation=True)  # no figure published
    assert e.value.field == "run"


def test_bill_in_usd_year():
    bill = training_bill(run="deepseek-v3", price=2, usd_year=2020)
    assert isinstance(bill, TrainingBillInUsdYear) and bill.total_usd == 5_576_000
    by = {c.figure: c for c in bill.constant_dollars.conversions}
    assert by["reported_cost_usd"].cost_year == 2024
    assert by["total_usd"].constant_usd == pytest.approx(5_576_000 * 258.811 / 313.689)
    assert any(a.name == "CPI-U 2020 annual average" for a in bill.assumptions)
    plain = training_bill(run="deepseek-v3", price=2)
    assert "constant_dollars" not in plain.to_dict()  # unchanged without --usd-year (golden answers)


# --- CLI ---------------------------------------------------------------------------------------------------------
def _typer(args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(list(args), fast=False)
    return code, out.getvalue()


@pytest.mark.parametrize("argv", [
    "train --run gpt-4-epoch-cloud --generation --json",
    "train --run gpt-4-epoch-amortized --generation --usd-year 2024 --json",
    "train --gpu a100 --gpus 8 --days 1 --price 2 --usd-year 2021 --json",
    "train --run llama-3.1-405b --provider lambda --generation --usd-year 2023 --json",
])
def test_fast_path_prints_what_typer_prints(argv):
    code, typer_out = _typer(argv.split())
    assert code == 0 and _fast.train_json(argv.split()) == typer_out


def test_cli_generation_screen_and_json(cli):
    res = cli("train", "--run", "gpt-4-epoch-cloud", "--generation")
    assert res.code == 0 and "generation total" in res.out and "$356,311,475" in res.out
    data = cli("train", "--run", "gpt-4-epoch-cloud", "--generation", "--usd-year", "2024", "--json").json()
    assert data["total_usd"]["central"] == pytest.approx(356.3e6, rel=1e-3)
    assert data["constant_dollars"]["usd_year"] == 2024 and data["constant_dollars"]["price_index"] == "cpi-u"
    screen = cli("train", "--gpu", "a100", "--gpus", "280", "--days", "14", "--price", "2.5", "--usd-year", "2020")
    assert screen.code == 0 and "In 2020 dollars" in screen.out


def test_cli_catalog_runs_usd_year(cli):
    data = cli("catalog", "runs", "--usd-year", "2024", "--json").json()
    rows = {r["name"]: r for r in data["rows"]}
    assert rows["gpt-4-epoch-cloud"]["reported_cost_usd_in_usd_year"] == pytest.approx(78e6 * 313.689 / 304.702)
    assert rows["llama-2-7b"]["reported_cost_usd_in_usd_year"] is None
    assert data["constant_dollars"]["index_years"]["2023"] == 304.702
    plain = cli("catalog", "runs", "--json").json()
    assert "constant_dollars" not in plain and "reported_cost_usd_in_usd_year" not in plain["rows"][0]


@pytest.mark.parametrize("args,field", [
    (("train", "--run", "gpt-4-epoch-cloud", "--generation", "--usd-year", "2031"), "--usd-year"),
    (("train", "--gpu", "a100", "--gpus", "8", "--days", "1", "--price", "2", "--usd-year", "1999.5"), "--usd-year"),
    (("train", "--run", "claude-3.5-sonnet-amodei", "--generation"), "--run"),
    (("train", "--run", "gpt-4-epoch-cloud", "--generation", "--experiments-multiplier", "0.5"), "--experiments-multiplier"),
    (("catalog", "gpus", "--usd-year", "2020"), "--usd-year"),
    (("catalog", "runs", "--usd-year", "2000"), "--usd-year"),
])
def test_cli_errors(cli, args, field):
    assert_one_line_error(cli(*args, "--json"), field)
