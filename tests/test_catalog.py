import csv
import datetime as dt
from importlib import resources

import pytest

from billshape import catalog
from billshape.errors import BillshapeInputError

DATA_FILES = sorted(p.name for p in resources.files("billshape.data").iterdir() if p.name.endswith(".csv"))


@pytest.mark.parametrize("filename", DATA_FILES)
def test_every_row_has_source_and_date(filename):
    text = resources.files("billshape.data").joinpath(filename).read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert rows, filename
    for i, row in enumerate(rows, start=2):
        assert None not in row, f"{filename}:{i} has extra columns"
        assert (row["source"] or "").strip(), f"{filename}:{i} has no source"
        dt.date.fromisoformat(row["as_of"].strip())  # raises on a missing or malformed date


def test_catalog_files_are_all_checked():
    assert {"accelerators.csv", "gpu_prices.csv", "training_runs.csv", "constants.csv"} <= set(DATA_FILES)


REQUIRED = ["a100-40gb-sxm", "a100-80gb-sxm", "h100-sxm", "h100-pcie", "h800-sxm", "h200-sxm", "b200", "l4",
            "l40s", "mi300x", "tpu-v5e", "tpu-v5p"]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_accelerators(name):
    acc = catalog.gpu(name)
    assert acc.name == name
    assert acc.peak_flops_per_second("bf16") > 1e13
    assert acc.memory_bytes > 1e10 and acc.memory_bytes_per_second > 1e11


def test_every_sold_accelerator_has_a_sourced_purchase_price():
    # the amortised training method needs a chip price; TPUs are only rented, so they have none
    for row in catalog.read_rows("accelerators.csv"):
        if row["name"].startswith("tpu-"):
            assert not row["purchase_usd"] and "Not sold" in row["purchase_source"]
            continue
        if row["purchase_source"].startswith(("No published", "No catalogued purchase price")):  # no sourced price
            assert not row["purchase_usd"] and len(row["purchase_source"]) > 30, row["name"]
            with pytest.raises(BillshapeInputError, match="purchase price"):
                catalog.gpu(row["name"]).purchase_assumption()
            continue
        assert 1_000 <= float(row["purchase_usd"]) <= 100_000, row["name"]
        assert len(row["purchase_source"].strip()) > 30, row["name"]
        if row["purchase_as_of"]:  # the price's own date, reported with the price
            dt.date.fromisoformat(row["purchase_as_of"])
            assert catalog.gpu(row["name"]).purchase_assumption().as_of == row["purchase_as_of"]


@pytest.mark.parametrize("alias,name", [("a100", "a100-80gb-sxm"), ("H100", "h100-sxm"), ("h800", "h800-sxm"),
                                        ("H200", "h200-sxm"), ("  A100-80GB-SXM ", "a100-80gb-sxm")])
def test_aliases_case_insensitive(alias, name):
    assert catalog.gpu(alias).name == name


def test_dense_not_sparse_peaks():
    # NVIDIA's datasheet quotes 1,979 TFLOP/s BF16 "with sparsity" for H100 SXM; the dense peak is half.
    h100 = catalog.gpu("h100")
    assert h100.peak_flops_per_second("bf16") == pytest.approx(989.4e12, rel=1e-3)
    assert h100.peak_flops_per_second("fp8") == pytest.approx(1978.9e12, rel=1e-3)
    assert catalog.gpu("a100").peak_flops_per_second("bf16") == pytest.approx(312e12)
    assert catalog.gpu("b200").peak_flops_per_second("fp4") > catalog.gpu("b200").peak_flops_per_second("fp8")


def test_missing_precision_is_a_clear_error():
    with pytest.raises(BillshapeInputError, match="a100-80gb-sxm supports"):
        catalog.gpu("a100").peak_flops_per_second("fp8")


def test_unknown_gpu_suggests_closest():
    with pytest.raises(BillshapeInputError) as err:
        catalog.gpu("h10")
    assert "did you mean" in err.value.message and "h100" in err.value.message


def test_prices_cover_providers_and_tiers():
    assert len(catalog.providers()) >= 6
    assert {"aws", "gcp", "azure"} <= set(catalog.providers())
    tiers = {p.tier for p in catalog.prices()}
    assert tiers == set(catalog.TIERS)
    assert all(p.usd_per_gpu_hour > 0 for p in catalog.prices())


def test_reserved_cheaper_than_on_demand_where_both_listed():
    by = {}
    for p in catalog.prices():
        by.setdefault((p.provider, p.gpu, p.tier), []).append(p.usd_per_gpu_hour)
    checked = 0
    for (prov, g, tier), vals in by.items():
        if tier.startswith("reserved") and (prov, g, "on-demand") in by:
            assert min(vals) < max(by[(prov, g, "on-demand")])
            checked += 1
    assert checked >= 5


def test_price_lookup_and_unknown_provider():
    q = catalog.price("h100", "aws", "on-demand")
    assert q.gpu == "h100-sxm" and q.usd_per_gpu_hour > 0
    with pytest.raises(BillshapeInputError, match="did you mean"):
        catalog.price("h100", "awz")
    with pytest.raises(BillshapeInputError, match="^tier"):
        catalog.price("h100", "aws", "weekly")


def test_training_runs_include_published_cases():
    ds = catalog.training_run("deepseek-v3")
    assert ds.params_active == pytest.approx(37e9) and ds.gpu_hours == pytest.approx(2.788e6)
    assert catalog.training_run("llama-2-70b").gpu_hours == pytest.approx(1_720_320)


def test_epoch_constants():
    c = catalog.constants()
    assert c["epoch_value_decay_oom_per_year"].value == 0.14
    assert c["epoch_interconnect_fraction"].value == 0.19
    assert c["hours_per_year"].value == 8766


def test_price_rows_say_when_the_price_was_in_force_and_when_it_was_read():
    """Issue 16: as_of is the date the price was in force at its source, retrieved when billshape read it."""
    for p in catalog.prices():
        assert p.retrieved, (p.provider, p.gpu, p.tier)
        assert dt.date.fromisoformat(p.as_of) <= dt.date.fromisoformat(p.retrieved), (p.provider, p.gpu, p.tier)
        if p.provider == "gcp" and p.gpu != "tpu-v5p" and p.tier in ("on-demand", "spot"):  # GPU-only rows omit the VM
            assert "VM" in p.note and "GPU component only" not in p.note, (p.gpu, p.tier, p.note)
    l4 = catalog.price("l4", "gcp")
    assert l4.usd_per_gpu_hour == 1.00042 and l4.instance_type == "g2-standard-96"
    assert catalog.price("h100", "aws").as_of == "2025-05-31"  # before AWS's June 2025 P5 price cut


def test_api_price_history_rows_are_dated_by_their_own_date():
    for row in catalog.read_rows("api_price_history.csv"):
        assert row["as_of"] == row["date"] and row["retrieved"] >= row["date"]


def test_load_keyed_refuses_a_key_two_rows_share(monkeypatch):
    """The one keyed loader (price index years, request-length distributions, rental quotes) names both lines."""
    assert list(catalog.load_keyed(catalog.Constant, "constants.csv", "name")) == list(catalog.constants())
    text = "name,value,unit,source,as_of\nmfu,0.4,,a paper,2024-01-01\nmfu,0.5,,another,2024-02-01\n"
    monkeypatch.setattr(catalog, "_data_text", lambda filename: text)
    with pytest.raises(catalog.CatalogError, match=r"x.csv:3: name 'mfu' also on line 2"):
        catalog.load_keyed(catalog.Constant, "x.csv", "name")


def test_one_rental_quote_per_provider_gpu_tier_and_date():
    """:func:`billshape.catalog.price` takes no region: on a date it answers the lowest of the quotes in force, so
    two shipped quotes of one date for one provider, GPU and tier (two regions) would let the lower win silently.
    Quotes of other dates are the dated history ``plan --as-of`` prices from (Lambda's H100: 2024-01-29, 2026-11-24)."""
    key = ("provider", "gpu", "tier", "as_of")
    rows = catalog.load_keyed(catalog.GpuPrice, "gpu_prices.csv", key)
    assert len(rows) == len(catalog.load_typed(catalog.GpuPrice, "gpu_prices.csv"))
    assert [r.region for k, r in rows.items() if k[:3] == ("gcp", "h100-sxm", "on-demand")] == ["us-east4"]
    assert sorted(k[3] for k in rows if k[:3] == ("lambda", "h100-sxm", "on-demand")) == ["2024-01-29", "2026-11-24"]
    assert catalog.price("h100-sxm", "gcp").usd_per_gpu_hour == 10.9791  # not the unconfirmed us-central1 5.38


def test_a_row_citing_a_seed_names_its_file():
    """A source that cites a billshape seed says which file it is (``seeds/NNN_<hash>.txt``), so a reader can open it."""
    import re

    for filename in DATA_FILES:
        for i, row in enumerate(catalog.read_rows(filename), start=2):
            if re.search(r"billshape seed \d{3}", row["source"]):
                assert re.search(r"seeds/\d{3}_[0-9a-f]{16}\.txt", row["source"]), f"{filename}:{i}"
