"""Training bill figures from the seeds and published reports (shared/cases/training.csv), and invariants."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from billshape import training
from billshape.errors import BillshapeInputError
from billshape.estimates import training_bill

pos = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False, allow_infinity=False)
frac = st.floats(min_value=0.01, max_value=1.0)


def test_seed_000_training_bill_exact():
    # T1: 280 A100 x 14 days x 24 h at $2.5/GPU-hour = 94,080 GPU-hours, $235,200 exactly.
    bill = training_bill(gpu="a100", gpus=280, days=14, price=2.5)
    assert bill.gpu_hours == 94_080
    assert bill.compute_usd == 235_200
    assert bill.total_usd == 235_200


def test_deepseek_v3_final_run_exact():
    # T2: 2,788K H800 GPU-hours at $2 = $5,576,000 (arXiv:2412.19437, Table 1).
    bill = training_bill(gpu="h800", gpu_hours=2_788_000, price=2)
    assert bill.compute_usd == 5_576_000


@pytest.mark.parametrize("precision,expected", [("bf16", 0.346), ("fp8", 0.173)])
def test_deepseek_v3_pretraining_mfu(precision, expected):
    # T3: 6 x 37e9 x 14.8e12 FLOP over 2.664e6 H800-hours; tolerance 0.002.
    bill = training_bill(gpu="h800", gpu_hours=2.664e6, params=671e9, active_params=37e9, tokens=14.8e12,
                         price=2, precision=precision)
    assert bill.training_flops == pytest.approx(6 * 37e9 * 14.8e12)
    assert bill.mfu == pytest.approx(expected, abs=0.002)


def test_mfu_round_trip():
    flops = training.training_flops(70e9, 2e12)
    hours = training.gpu_hours_from_flops(flops, 312e12, 0.4)
    assert training.implied_mfu(flops, hours, 312e12) == pytest.approx(0.4)


def test_gpu_hours_from_flops_via_bill():
    bill = training_bill(gpu="a100", params=7e9, tokens=1e12, mfu=0.5, price=2)
    assert bill.gpu_hours == pytest.approx(6 * 7e9 * 1e12 / (312e12 * 0.5 * 3600))
    assert bill.mfu == 0.5


def test_epoch_amortisation_rule():
    # T6: $40,000 of hardware -> $1.471 per chip-hour; $1.816 with interconnect at 19 % (tolerance 0.1 %).
    assert training.amortized_usd_per_chip_hour(40_000) == pytest.approx(1.471, rel=1e-3)
    assert training.amortized_usd_per_chip_hour(40_000, interconnect_fraction=0.19) == pytest.approx(1.816, rel=1e-3)
    assert training.depreciation_rate_per_year(0.14) == pytest.approx(0.3224, rel=1e-3)


def test_llama2_70b_energy():
    # T4: 1,720,320 A100-80GB GPU-hours at 400 W = 688.1 MWh (chip power only), tolerance 0.1 %.
    kwh = training.energy_kwh(400, 1_720_320)
    assert kwh / 1000 == pytest.approx(688.1, rel=1e-3)


def test_amortized_bill_uses_catalog_constants_and_lists_them():
    bill = training_bill(gpu="h100", gpus=8, days=1, method="amortized")
    names = {a.name for a in bill.assumptions}
    assert {"epoch_value_decay_oom_per_year", "epoch_interconnect_fraction", "datacenter_pue",
            "electricity_usd_per_kwh"} <= names
    rate = training.amortized_usd_per_chip_hour(27_500, 0.14, 8766, 1.64, 0.19)
    assert bill.usd_per_gpu_hour == pytest.approx(float(rate))
    assert bill.energy_usd > 0 and bill.total_usd == pytest.approx(bill.compute_usd + bill.energy_usd)
    assert all(a.source for a in bill.assumptions)


def test_iceberg_beside_not_inside():
    bill = training_bill(gpu="a100", gpus=280, days=14, price=2.5, experiments_multiplier=3, staff_usd=1e6)
    assert bill.total_usd == 235_200  # the final run is unchanged
    assert bill.development.experiments_usd == pytest.approx(2 * 235_200)
    assert bill.development.total_usd == pytest.approx(3 * 235_200 + 1e6)


@pytest.mark.parametrize("kwargs,field", [
    (dict(gpu="a100", gpus=280, days=14, price=0), "price"),
    (dict(gpu="a100", gpus=-1, days=14, price=2), "gpus"),
    (dict(gpu="a100", gpus=2, days=14), "price"),
    (dict(gpu="a100", price=2), "gpu_hours"),
    (dict(gpu="a100", params=7e9, tokens=1e12, mfu=1.5, price=2), "mfu"),
    (dict(gpu="a100", params=7e9, tokens=1e12, mfu=0, price=2), "mfu"),
    (dict(gpu="a100", gpu_hours=10, gpus=2, days=1, price=2), "gpu_hours"),
    (dict(gpu="a100", gpus=2, days=1, hours=3, price=2), "days/hours"),
    (dict(gpu="a100", gpu_hours=1, params=70e9, tokens=15e12, price=2), "gpu_hours"),  # implies MFU > 1
    (dict(gpu="a100", gpu_hours=10, price=2, provider="aws"), "price/provider"),
    (dict(gpu="tpu-v5e", gpu_hours=10, method="amortized"), "gpu"),
])
def test_bad_training_input(kwargs, field):
    with pytest.raises(BillshapeInputError) as err:
        training_bill(**kwargs)
    assert err.value.field == field


@given(hours=pos, p1=pos, p2=pos)
def test_cost_rises_with_price(hours, p1, p2):
    lo, hi = sorted((p1, p2))
    assert training.rental_cost_usd(hours, lo) <= training.rental_cost_usd(hours, hi)


@given(flops=st.floats(1e18, 1e26), m1=frac, m2=frac)
def test_hours_and_cost_fall_with_mfu(flops, m1, m2):
    lo, hi = sorted((m1, m2))
    h_lo = training.gpu_hours_from_flops(flops, 989e12, lo)
    h_hi = training.gpu_hours_from_flops(flops, 989e12, hi)
    assert h_hi <= h_lo
    assert training.rental_cost_usd(h_hi, 2.0) <= training.rental_cost_usd(h_lo, 2.0)


def test_vectorised():
    out = training.rental_cost_usd(np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0]]))
    assert out.shape == (2, 3) and out[1, 2] == 6.0


def test_published_run_from_catalog():
    bill = training_bill(run="deepseek-v3", price=2)
    assert bill.gpu == "h800-sxm" and bill.compute_usd == 5_576_000
    assert any("arXiv:2412.19437" in a.source for a in bill.assumptions)
    # Llama 2 70B: 1,720,320 A100-80GB hours (model card) at 400 W is 688.1 MWh of chip energy.
    llama = training_bill(run="llama-2-70b", price=1)
    assert training.energy_kwh(400, llama.gpu_hours) / 1000 == pytest.approx(688.1, rel=1e-3)
    with pytest.raises(BillshapeInputError):
        training_bill(run="gpt-4-epoch-amortized", price=2)
    with pytest.raises(BillshapeInputError, match="did you mean"):
        training_bill(run="deepseek-v4", price=2)


def test_result_renders_in_jupyter_and_pandas():
    bill = training_bill(gpu="a100", gpus=280, days=14, price=2.5)
    html = bill._repr_html_()
    assert "94,080" in html and "assumptions" in html and "user input" in html
    frame = bill.to_pandas()
    assert frame.loc[0, "total_usd"] == 235_200 and frame.attrs["assumptions"]
    assert list(bill.to_dict())[-1] == "assumptions"


def test_a100_80gb_purchase_price_reproduces_the_server_price():
    # Derived in accelerators.csv: HGX A100 640GB at $18,548.75 per GPU / Epoch's server overhead 1.64.
    from billshape import catalog

    acc = catalog.gpu("a100")
    overhead = catalog.constant("epoch_server_cost_overhead").value
    assert acc.purchase_usd * overhead == pytest.approx(18_548.75, rel=1e-3)
    assert "Hardware prices.csv" in acc.purchase_source
