"""The public Python API: ``import billshape as bs`` reaches the verbs, the plan, the ledger (issue 11)."""

import subprocess
import sys
from pathlib import Path

import pytest

import billshape as bs

ROOT = Path(__file__).resolve().parents[1]


def test_plan_by_shipped_name_shows_payback_and_npv_as_p10_p50_p90():
    frame = bs.plan("seed000_image_startup", samples=200, seed=0).to_pandas()
    assert {"P10", "P50", "P90"} <= set(frame.columns)
    assert {"payback month", "NPV"} <= set(frame.index)
    # bria.ai's anecdote: $235,200 of training paid back by 10,000 users x $10/month in 2.352 months
    assert frame.loc["payback month", "P50"] == pytest.approx(2.352)


def test_plan_by_path_equals_plan_by_name():
    by_name = bs.plan("seed000_image_startup", samples=100, seed=3)
    by_path = bs.plan(bs.plan.examples_dir() / "seed000_image_startup.yaml", samples=100, seed=3)
    assert by_name.to_dict() == by_path.to_dict()


def test_serve_error_names_the_field_not_the_flag():
    with pytest.raises(bs.BillshapeInputError) as info:
        bs.serve(model="llama-3.1-70b", gpu="h100", gpus=-1)
    assert info.value.field == "gpus"
    assert "--gpus" not in str(info.value)


def test_verbs_return_results_with_assumptions():
    bill = bs.train(gpu="a100", gpus=280, days=14, price=2.5)
    assert bill.total_usd == 235_200.0
    assert all(a.source for a in bill.assumptions)
    be = bs.breakeven(api_usd_per_million_tokens=10, own_usd_per_million_tokens=2, fixed_usd=800_000)
    assert be.to_dict()["assumptions"]  # the CLI's JSON, assumptions last


@pytest.mark.parametrize("name", ["scenario", "serving", "usage", "plan", "chains", "catalog", "training"])
def test_submodules_resolve(name):
    assert getattr(bs, name).__name__ == f"billshape.{name}"


def test_everything_in_all_resolves():
    for name in bs.__all__:
        assert getattr(bs, name) is not None


def test_importing_billshape_loads_nothing_heavy():
    code = ("import sys, billshape; heavy = {'numpy', 'pydantic', 'pandas', 'scipy'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_api_reference_is_up_to_date():
    sys.path.insert(0, str(ROOT / "scripts"))
    import gen_api_docs

    assert (ROOT / "docs" / "api.md").read_text() == gen_api_docs.render(), \
        "docs/api.md is stale: run python scripts/gen_api_docs.py"
