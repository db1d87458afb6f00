"""FOCUS 1.3 export and contract tables: mandatory columns and types against the spec table, the four costs equal
without a contract and apart as FOCUS defines with one, commitments as Purchase and Unused rows, 1.2 unchanged.

The FinOps Foundation's validator (`focus-validator` 2.2.1) needs Python >= 3.12 and numpy < 2 and ships rules for
FOCUS 1.2 only, so these tests check the 1.3 columns themselves (docs/usage.md, "FOCUS 1.3 and contracts")."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import usage
from billshape.errors import BillshapeInputError
from billshape.usage import contracts as C
from billshape.usage import focus as F
from conftest import assert_one_line_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
CONTRACT = EXAMPLES / "invoices" / "contract.csv"
#: sha256 of the FOCUS 1.2 CSV of the sample ledger as billshape wrote it before 1.3 (main at b6ab6b7)
FOCUS12_SHA256 = "e263c70d19d8b4e3d549a322bfa3cff463952180d54ecd802d0d8120cf007302"
KINDS = {"Decimal": pa.types.is_decimal, "String": pa.types.is_string, "Date/Time": pa.types.is_timestamp,
         "Key-Value Format": pa.types.is_string}


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("focus13")
    db = str(tmp / "u.duckdb")
    res = usage.ingest([str(EXAMPLES / f) for f in ("spans.otlp.json", "openai_usage.json", "requests.csv")], db,
                       mapping={"tenant": "customer"}, prices_csv=str(EXAMPLES / "selfhosted_prices.csv"))
    return db, res, tmp


def test_the_13_mandatory_set_is_the_12_set_plus_the_new_provider_columns():
    assert len(F.MANDATORY_13) == 23 and set(F.MANDATORY_13) - set(F.MANDATORY) == {"HostProviderName", "ServiceProviderName"}
    assert set(F.DEPRECATED_13) <= set(F.MANDATORY_13)  # deprecated in 1.3, still mandatory and not null
    assert set(F.NOT_NULL_13) <= set(F.MANDATORY_13) and set(F.DEPRECATED_13) <= set(F.NOT_NULL_13)


@pytest.mark.parametrize("contract", [None, CONTRACT])
def test_focus13_columns_and_types(sample, contract):
    db, res, tmp = sample
    out = tmp / f"f13_{contract is not None}.parquet"
    summary = usage.export_focus(db, str(out), focus_version="1.3", contract=None if contract is None else str(contract))
    table = pq.read_table(out)
    assert summary["focus_version"] == "1.3" and summary["columns"] == table.column_names
    for col, kind in {**F.MANDATORY_13, **F.CONDITIONAL_13}.items():
        assert col in table.column_names, col
        assert KINDS[kind](table.schema.field(col).type), col
    for col in F.NOT_NULL_13:
        assert table.column(col).null_count == 0, col
    assert all(c.startswith("x_") for c in table.column_names if c[0].islower())
    rows = table.to_pylist()
    assert all(r["ProviderName"] == r["PublisherName"] == r["ServiceProviderName"] == r["HostProviderName"] for r in rows)
    assert {r["ChargeCategory"] for r in rows} <= {"Usage", "Purchase"}
    for r in rows:
        if r["ContractedUnitPrice"] is not None:  # FOCUS: ContractedUnitPrice x PricingQuantity = ContractedCost
            assert abs(r["ContractedUnitPrice"] * r["PricingQuantity"] - r["ContractedCost"]) <= r["PricingQuantity"] * Decimal("1e-9")
        assert (r["CommitmentDiscountStatus"] is None) == (r["ChargeCategory"] == "Purchase" or r["CommitmentDiscountId"] is None)
        assert (r["CommitmentDiscountCategory"] is None) == (r["CommitmentDiscountId"] is None)
        assert r["BillingPeriodStart"] <= r["ChargePeriodStart"] < r["BillingPeriodEnd"]
    usage_rows = [r for r in rows if r["ChargeCategory"] == "Usage" and r["CommitmentDiscountStatus"] != "Unused"]
    assert sum(r["ListCost"] for r in usage_rows) == Decimal(res.total_micro_usd) / 10**6  # the ledger, exactly
    # FOCUS effectivecost.md: with the purchases and the charges they cover in one artifact, sum(Effective) = sum(Billed)
    assert sum(r["EffectiveCost"] for r in rows) == sum(r["BilledCost"] for r in rows)
    assert summary["billed_cost_micro_usd"] == sum(r["x_BilledCostMicroUsd"] for r in rows)
    if contract is None:
        assert all(r["ListCost"] == r["ContractedCost"] == r["EffectiveCost"] == r["BilledCost"] for r in rows)
        assert all(r["CommitmentDiscountId"] is None and r["PricingCategory"] == "Standard" for r in rows)


def test_contract_sets_the_four_costs_apart(sample, tmp_path):
    db, res, _ = sample
    rows = F.focus13_table(db, contract=str(CONTRACT)).to_pylist()
    purchases = [r for r in rows if r["ChargeCategory"] == "Purchase"]
    unused = [r for r in rows if r["CommitmentDiscountStatus"] == "Unused"]
    assert sorted(r["CommitmentDiscountId"] for r in purchases) == ["openai-march-2025", "openai-march-2025-all"]
    assert all(r["EffectiveCost"] == 0 and r["BilledCost"] == r["ListCost"] > 0 and r["ChargeFrequency"] == "One-Time" for r in purchases)
    # 15 % off every Anthropic model
    anth = [r for r in rows if r["ServiceProviderName"] == "Anthropic"]
    assert anth and all(r["ContractedCost"] == (r["ListCost"] * Decimal("0.85")).quantize(Decimal("1e-6")) for r in anth)
    # the mini commitment ($1.50) covers all gpt-4o-mini usage at 10 % off, so it bills nothing and leaves the rest unused
    mini = [r for r in rows if r["ChargeCategory"] == "Usage" and r["CommitmentDiscountId"] == "openai-march-2025"
            and r["CommitmentDiscountStatus"] == "Used"]
    drawn = sum(r["x_ContractedCostMicroUsd"] for r in mini)
    assert all(r["BilledCost"] == 0 and r["EffectiveCost"] == r["ContractedCost"] < r["ListCost"] for r in mini)
    assert [r["EffectiveCost"] for r in unused] == [Decimal(1_500_000 - drawn) / 10**6]
    assert all(r["ContractedCost"] == r["ListCost"] == r["BilledCost"] == 0 for r in unused)
    # the $1 all-models commitment is drawn by gpt-4o first, in time order; what is past it is billed
    allm = [r for r in rows if r["CommitmentDiscountId"] == "openai-march-2025-all" and r["ChargeCategory"] == "Usage"]
    assert sum(r["CommitmentDiscountQuantity"] for r in allm) == Decimal(1)
    assert sum(r["BilledCost"] for r in allm) == sum(r["ContractedCost"] for r in allm) - 1


def test_focus12_is_unchanged(sample, tmp_path):
    db, _, _ = sample
    out = tmp_path / "f12.csv"
    summary = usage.export_focus(db, str(out), focus_version="1.2")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == FOCUS12_SHA256
    assert summary["focus_version"] == "1.2" and len(summary["columns"]) == 35
    assert set(summary) == {"path", "format", "focus_version", "rows", "billed_cost_usd", "billed_cost_micro_usd", "columns"}
    default = tmp_path / "default.csv"
    usage.export_focus(db, str(default))  # the library's default stays 1.2
    assert default.read_bytes() == out.read_bytes()
    with pytest.raises(BillshapeInputError, match="contract"):
        usage.export_focus(db, str(out), focus_version="1.2", contract=str(CONTRACT))


def test_cli_export_default_is_13_and_12_on_request(cli, sample, tmp_path):
    db, _, _ = sample
    res = cli("usage", "export", "--db", db, "-o", tmp_path / "a.csv")
    assert res.code == 0 and "FOCUS 1.3" in res.out
    assert "ServiceProviderName" in (tmp_path / "a.csv").read_text().splitlines()[0]
    res = cli("usage", "export", "--db", db, "-o", tmp_path / "b.csv", "--focus-version", "1.2", "--json")
    assert res.code == 0 and res.json()["focus_version"] == "1.2"
    assert hashlib.sha256((tmp_path / "b.csv").read_bytes()).hexdigest() == FOCUS12_SHA256
    res = cli("usage", "export", "--db", db, "-o", tmp_path / "c.csv", "--contract", CONTRACT, "--json")
    data = res.json()
    assert data["list_cost_usd"] > data["contracted_cost_usd"] and data["effective_cost_usd"] == data["billed_cost_usd"]
    assert data["commitments"] == ["openai-march-2025", "openai-march-2025-all"]


@pytest.mark.parametrize("text, field", [
    ("provider,model,service_tier,discount\nopenai,*,*,1.5\n", "--contract {p}:2 discount"),
    ("provider,model,service_tier,discount\nopenai,*,*,abc\n", "--contract {p}:2 discount"),
    ("provider,model,discount\nopenai,*,0.1\n", "--contract"),
    ("provider,model,service_tier,discount,commitment_usd\nopenai,*,*,0.1,100\n", "--contract {p}:2 period_start"),
    ("provider,model,service_tier,discount,period_start,period_end\nopenai,*,*,0.1,2025-03-01,2025-02-01\n",
     "--contract {p}:2 period_end"),
    ("provider,model,service_tier,discount,period_start\nopenai,*,*,0.1,March\n", "--contract {p}:2 period_start"),
    ("provider,model,service_tier,discount\nopenai,*,*,0.1\nopenai,*,*,0.2\n", "--contract {p}:3 period_start"),
    ("provider,model,service_tier,discount,colour\nopenai,*,*,0.1,red\n", "--contract {p}:1 colour"),
    ("- {provider: openai, model: '*', service_tier: '*', discount: 0.1}\n- {provider: anthropic, model: '*', service_tier: gold, discount: 0.1}\n",
     "--contract {p}:2 service_tier"),
])
def test_cli_contract_errors_name_file_row_and_column(cli, sample, tmp_path, text, field):
    p = tmp_path / ("c.yaml" if text.startswith("-") else "c.csv")
    p.write_text(text)
    res = cli("usage", "export", "--db", sample[0], "-o", tmp_path / "x.csv", "--contract", p)
    assert_one_line_error(res, field.format(p=p))


def test_yaml_contract_reads_like_csv():
    yaml_text = ("contracts:\n  - {provider: anthropic, model: '*', service_tier: '*', discount: 0.15}\n"
                 "  - {provider: openai, model: gpt-4o-mini, service_tier: standard, discount: 0.1, commitment_usd: 1.5,\n"
                 "     period_start: 2025-03-01, period_end: 2025-04-01, commitment_id: openai-march-2025}\n")
    a, b = C.parse_contract(yaml_text, "y"), C.read_contract(str(CONTRACT))
    assert a.terms[0] == b.terms[0].__class__(**{**b.terms[0].__dict__, "row": 1})
    assert a.terms[1].commitment_micro_usd == b.terms[1].commitment_micro_usd == 1_500_000
    day = dt.date(2025, 3, 3)
    assert a.term_for("openai", "gpt-4o-mini-2024-07-18", "standard", day).discount == Decimal("0.1")
    assert b.term_for("openai", "gpt-4o", "standard", day).discount == 0  # the all-models row
    assert b.term_for("openai", "gpt-4o", "standard", dt.date(2025, 4, 1)) is None  # past its period


# --- invariants ---------------------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**15), st.decimals(0, 1, places=6))
def test_contracted_cost_never_exceeds_list(list_micro, discount):
    got = C.contracted_micro_usd(list_micro, discount)
    assert 0 <= got <= list_micro
    assert C.contracted_micro_usd(list_micro, 0) == list_micro and C.contracted_micro_usd(list_micro, 1) == 0


charge = st.tuples(st.integers(0, 9), st.sampled_from(["openai", "anthropic"]), st.sampled_from(["gpt-4o", "claude-3-5-haiku"]),
                   st.integers(0, 10**9))


@settings(max_examples=200, deadline=None)
@given(st.lists(charge, max_size=12), st.decimals(0, 1, places=4), st.one_of(st.none(), st.integers(0, 10**9)))
def test_effective_at_most_list_and_sums_balance(items, discount, commitment_micro):
    charges = [C.Charge(day=dt.date(2025, 3, 1) + dt.timedelta(days=d), provider=p, model=m, list_micro_usd=x)
               for d, p, m, x in items]
    C.apply_contract(charges, None)  # no contract: the four costs are the list cost
    assert all(c.list_micro_usd == c.contracted_micro_usd == c.effective_micro_usd == c.billed_micro_usd for c in charges)
    commit = "" if commitment_micro is None else f",{Decimal(commitment_micro) / 10**6},2025-03-01,2025-03-08"
    contract = C.parse_contract("provider,model,service_tier,discount,commitment_usd,period_start,period_end\n"
                                f"openai,*,*,{discount}{commit or ',,,'}\n", "h")
    commitments = C.apply_contract(charges, contract)
    for c in charges:
        assert c.billed_micro_usd <= c.effective_micro_usd == c.contracted_micro_usd <= c.list_micro_usd
        if c.provider == "anthropic":
            assert c.contracted_micro_usd == c.list_micro_usd
    billed = sum(c.billed_micro_usd for c in charges) + sum(m.amount_micro_usd for m in commitments)
    effective = sum(c.effective_micro_usd for c in charges) + sum(m.unused_micro_usd for m in commitments)
    assert billed == effective


def test_cli_focus_version_choices_mirror_the_library():
    import inspect

    import billshape.cli.cmd_usage as cu

    assert 'Literal["1.3", "1.2"]' in inspect.getsource(cu) and F.FOCUS_VERSIONS == ("1.3", "1.2")
