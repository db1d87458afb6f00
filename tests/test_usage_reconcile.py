"""`billshape usage reconcile --invoice FILE [--contract FILE]`: residuals by day x model x tier with their causes.

The ledger is built here from a CSV priced by a user price table, so every ledger cost is known exactly; the
invoices are built from it with known injected gaps: a day the ledger lacks, a 15 % discount on one provider,
a tier the ledger does not price."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from billshape import usage
from billshape.usage import contracts as C
from conftest import assert_one_line_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
INVOICES = EXAMPLES / "invoices"

# USD per million tokens (input, output): user prices, so the ledger's costs are exact integers of micro-dollars
PRICES = {("openai", "gpt-4o-mini"): (Decimal("0.15"), Decimal("0.60")), ("openai", "gpt-4o"): (Decimal("2.5"), Decimal("10")),
          ("anthropic", "claude-3-5-haiku-20241022"): (Decimal("0.8"), Decimal("4")),
          ("anthropic", "claude-3-7-sonnet-20250219"): (Decimal("3"), Decimal("15"))}
DAYS = [dt.date(2025, 3, 3), dt.date(2025, 3, 4), dt.date(2025, 3, 5)]


def _tokens(day_i: int, model_i: int) -> tuple[int, int]:
    return 1_000_000 * (day_i + 2) + 137_000 * model_i, 200_000 * (model_i + 1) + 11_000 * day_i


def _micro(provider, model, inp, out) -> int:
    p_in, p_out = PRICES[(provider, model)]
    return int(inp * p_in) + int(out * p_out)  # tokens x USD/M = micro-dollars, integers here


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    """A ledger of 3 days x 4 models (one request per day and model), and its exact cost per (day, provider, model)."""
    tmp = tmp_path_factory.mktemp("reconcile")
    prices = tmp / "prices.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok\n"
                      + "".join(f"{p},{m},{a},{b}\n" for (p, m), (a, b) in PRICES.items()))
    rows, cost = ["request_id,timestamp,provider,model,input_tokens,output_tokens"], {}
    for d_i, day in enumerate(DAYS):
        for m_i, (provider, model) in enumerate(PRICES):
            inp, out = _tokens(d_i, m_i)
            rows.append(f"r{d_i}{m_i},{day}T12:00:00Z,{provider},{model},{inp},{out}")
            cost[(day, provider, model)] = _micro(provider, model, inp, out)
    logs = tmp / "logs.csv"
    logs.write_text("\n".join(rows) + "\n")
    db = str(tmp / "u.duckdb")
    res = usage.ingest([str(logs)], db, prices_csv=str(prices))
    assert res.rows_priced == 12 and res.total_micro_usd == sum(cost.values())
    return db, cost, tmp


def _openai_invoice(cost) -> dict:
    """OpenAI Costs API page: exact at list price, plus a day the ledger lacks and a batch line."""
    buckets = []
    for day in [*DAYS, dt.date(2025, 3, 6)]:
        start = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc).timestamp())
        results = []
        for (d, p, m), micro in cost.items():
            if d == day and p == "openai":
                snapshot = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}[m]
                half = micro // 3  # split like the Costs API: input and output line items
                results += [{"object": "organization.costs.result", "amount": {"value": str(Decimal(half) / 10**6), "currency": "usd"},
                             "line_item": f"{snapshot}, input", "project_id": "proj_a"},
                            {"object": "organization.costs.result", "amount": {"value": str(Decimal(micro - half) / 10**6), "currency": "usd"},
                             "line_item": f"{snapshot}, output", "project_id": "proj_a"}]
        if day == dt.date(2025, 3, 6):  # injected: a day of usage that never reached the ledger
            results.append({"object": "organization.costs.result", "amount": {"value": "4.321", "currency": "usd"},
                            "line_item": "gpt-4o-mini-2024-07-18, input", "project_id": "proj_a"})
        if day == dt.date(2025, 3, 4):  # injected: batch usage (the ledger does not price the batch tier)
            results.append({"object": "organization.costs.result", "amount": {"value": "1.25", "currency": "usd"},
                            "line_item": "gpt-4o-2024-08-06, input (batch)", "project_id": "proj_a"})
        buckets.append({"object": "bucket", "start_time": start, "end_time": start + 86400, "results": results})
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def _anthropic_invoice(cost, discount=Decimal("0.15")) -> dict:
    """Anthropic cost report (cents as decimal strings): every line 15 % below list."""
    data = []
    for day in DAYS:
        results = [{"currency": "USD", "amount": str(Decimal(micro) * (1 - discount) / 10**4), "workspace_id": None,
                    "description": f"{m} usage", "cost_type": "tokens", "context_window": "0-200k", "model": m,
                    "service_tier": "standard", "token_type": "output_tokens"}
                   for (d, p, m), micro in cost.items() if d == day and p == "anthropic"]
        data.append({"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day + dt.timedelta(days=1)}T00:00:00Z", "results": results})
    return {"data": data, "has_more": False, "next_page": None}


def test_openai_invoice_finds_the_missing_day_and_the_unpriced_tier(ledger, tmp_path):
    db, cost, _ = ledger
    inv = tmp_path / "openai.json"
    inv.write_text(json.dumps(_openai_invoice(cost)))
    res = usage.reconcile(db, str(inv))
    assert res.invoice_format == "openai-costs" and res.providers == ["openai"]
    assert (res.period_start, res.period_end) == ("2025-03-03", "2025-03-06")
    by = {(r["day"], r["model"], r["service_tier"]): r for r in res.lines}
    missing = by[("2025-03-06", "gpt-4o-mini", "standard")]
    assert missing["likely_cause"] == "missing rows" and missing["residual_micro_usd"] == 4_321_000
    assert missing["residual_pct"] is None and missing["ledger_micro_usd"] == 0
    batch = by[("2025-03-04", "gpt-4o", "batch")]
    # the ledger holds no batch rows, priced or quarantined: missing rows (an unpriced tier needs the quarantine's facts)
    assert batch["likely_cause"] == "missing rows" and batch["residual_micro_usd"] == 1_250_000 and batch["quarantined"] == {}
    rest = [r for k, r in by.items() if k not in {("2025-03-06", "gpt-4o-mini", "standard"), ("2025-03-04", "gpt-4o", "batch")}]
    assert len(rest) == 6 and all(r["likely_cause"] == "matched" and r["residual_micro_usd"] == 0 for r in rest)
    openai_micro = sum(v for (d, p, m), v in cost.items() if p == "openai")
    assert res.total_ledger_micro_usd == openai_micro  # the Anthropic rows are not on an OpenAI invoice
    assert res.residual_micro_usd == 4_321_000 + 1_250_000
    assert res.residual_pct == pytest.approx(100 * 5_571_000 / openai_micro, abs=1e-6)
    assert res.causes["missing rows"]["residual_micro_usd"] == 4_321_000 + 1_250_000 and res.discounts_detected == {}


def test_anthropic_invoice_finds_the_negotiated_discount(ledger, tmp_path):
    db, cost, _ = ledger
    inv = tmp_path / "anthropic.json"
    inv.write_text(json.dumps(_anthropic_invoice(cost)))
    res = usage.reconcile(db, str(inv))
    assert res.invoice_format == "anthropic-cost" and len(res.lines) == 6
    for r in res.lines:
        micro = cost[(dt.date.fromisoformat(r["day"]), "anthropic", {"claude-3-5-haiku": "claude-3-5-haiku-20241022",
                                                                   "claude-3-7-sonnet": "claude-3-7-sonnet-20250219"}[r["model"]])]
        assert r["likely_cause"] == "negotiated discount"
        assert r["ledger_micro_usd"] == micro
        assert r["residual_micro_usd"] == int((Decimal(micro) * Decimal("0.85")).to_integral_value()) - micro
        assert r["residual_pct"] == pytest.approx(-15.0, abs=1e-4)
    assert res.discounts_detected == {"anthropic": pytest.approx(0.15, abs=1e-6)}
    # the same invoice under a contract with that discount reconciles
    contract = tmp_path / "c.csv"
    contract.write_text("provider,model,service_tier,discount\nanthropic,*,*,0.15\n")
    under = usage.reconcile(db, str(inv), contract=str(contract))
    assert under.ledger_basis == "contracted" and {r["likely_cause"] for r in under.lines} == {"matched"}
    assert abs(under.residual_micro_usd) <= 6 and under.discounts_detected == {}


def test_a_non_uniform_gap_is_unexplained(ledger, tmp_path):
    db, cost, _ = ledger
    doc = _anthropic_invoice(cost)
    doc["data"][0]["results"][0]["amount"] = str(Decimal(doc["data"][0]["results"][0]["amount"]) * 2)  # one line doubled
    inv = tmp_path / "a.json"
    inv.write_text(json.dumps(doc))
    res = usage.reconcile(db, str(inv))
    assert res.discounts_detected == {} and {r["likely_cause"] for r in res.lines} == {"unexplained"}


def test_ledger_rows_missing_from_the_invoice_are_not_invoiced(ledger, tmp_path):
    db, cost, _ = ledger
    doc = _openai_invoice(cost)
    doc["data"][0]["results"] = []  # the first day billed nothing
    inv = tmp_path / "o.json"
    inv.write_text(json.dumps(doc))
    res = usage.reconcile(db, str(inv))
    first = [r for r in res.lines if r["day"] == "2025-03-03"]
    assert len(first) == 2 and all(r["likely_cause"] == "not invoiced" and r["residual_micro_usd"] == -r["ledger_micro_usd"]
                                   for r in first)


def test_focus_export_reconciles_with_itself(ledger, tmp_path):
    db, cost, _ = ledger
    for name in ("f.parquet", "f.csv"):
        usage.export_focus(db, str(tmp_path / name), focus_version="1.3")
        res = usage.reconcile(db, str(tmp_path / name))
        assert res.invoice_format == "focus" and res.residual_micro_usd == 0
        assert res.total_invoice_micro_usd == sum(cost.values()) and {r["likely_cause"] for r in res.lines} == {"matched"}


def test_openai_dashboard_csv(ledger, tmp_path):
    db, cost, _ = ledger
    lines = ["start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,line_item,project_id,organization_id"]
    for (d, p, m), micro in cost.items():
        if p == "openai":
            start = int(dt.datetime.combine(d, dt.time(), tzinfo=dt.timezone.utc).timestamp())
            lines.append(f"{start},{start + 86400},{d}T00:00:00+00:00,,{Decimal(micro) / 10**6},usd,\"{m}, input\",proj_a,org-1")
    inv = tmp_path / "costs.csv"
    inv.write_text("\n".join(lines) + "\n")
    res = usage.reconcile(db, str(inv))
    assert res.invoice_format == "openai-costs-csv" and res.residual_micro_usd == 0 and len(res.lines) == 6


def test_an_invoice_without_model_lines_is_compared_per_day(ledger, tmp_path):
    db, cost, _ = ledger
    doc = _openai_invoice(cost)
    for b in doc["data"]:
        total = sum(Decimal(r["amount"]["value"]) for r in b["results"])
        b["results"] = [{"object": "organization.costs.result", "amount": {"value": str(total), "currency": "usd"},
                         "line_item": None, "project_id": None}]
    inv = tmp_path / "o.json"
    inv.write_text(json.dumps(doc))
    res = usage.reconcile(db, str(inv))
    assert {r["model"] for r in res.lines} == {"*"} and len(res.lines) == 4
    assert res.residual_micro_usd == 4_321_000 + 1_250_000


def test_shipped_sample_invoices(tmp_path):
    db = str(tmp_path / "u.duckdb")
    usage.ingest([str(EXAMPLES / f) for f in ("spans.otlp.json", "openai_usage.json", "requests.csv")], db,
                 mapping={"tenant": "customer"}, prices_csv=str(EXAMPLES / "selfhosted_prices.csv"))
    oa = usage.reconcile(db, str(INVOICES / "openai_costs.json"))
    # the batch line's rows are not in the sample logs at all (none quarantined): missing rows, as the day the ledger lacks
    assert {c: v["lines"] for c, v in oa.causes.items()} == {"matched": 4, "missing rows": 2}
    assert oa.causes["missing rows"]["residual_micro_usd"] == 258_000 + 37_500
    an = usage.reconcile(db, str(INVOICES / "anthropic_cost_report.json"), contract=str(INVOICES / "contract.csv"))
    assert "unpriced tier" not in an.causes and an.causes["missing rows"]["lines"] == 2
    assert an.causes["missing rows"]["residual_micro_usd"] - 2_500_000 == next(
        r["residual_micro_usd"] for r in an.lines if r["likely_cause"] == "missing rows" and r["service_tier"] == "standard")


def test_model_key():
    assert C.model_key("gpt-4o-mini-2024-07-18") == C.model_key("GPT-4o mini") == "gpt-4o-mini"
    assert C.model_key("claude-3-5-haiku-20241022") == C.model_key("Claude 3.5 Haiku") == "claude-3-5-haiku"


# --- CLI ----------------------------------------------------------------------------------------------

def test_cli_reconcile_json_and_text(cli, ledger, tmp_path):
    db, cost, _ = ledger
    inv = tmp_path / "anthropic.json"
    inv.write_text(json.dumps(_anthropic_invoice(cost)))
    res = cli("usage", "reconcile", "--db", db, "--invoice", inv, "--json")
    assert res.code == 0, res.err
    data = res.json()
    assert {"lines", "total_invoice_usd", "total_ledger_usd", "residual_usd", "residual_pct", "causes",
            "discounts_detected", "assumptions"} <= set(data)
    assert {"day", "provider", "model", "service_tier", "invoice_usd", "ledger_usd", "residual_usd", "residual_pct",
            "likely_cause"} <= set(data["lines"][0])
    text = cli("usage", "reconcile", "--db", db, "--invoice", inv)
    assert text.code == 0 and "negotiated discount" in text.out and "15.00 %" in text.out


@pytest.mark.parametrize("make, field", [
    (lambda t: t / "none.json", "--invoice"),
    (lambda t: (t / "x.json").write_text("{\"foo\": 1}") and t / "x.json", "--invoice"),
    (lambda t: (t / "x.json").write_text("{\"data\": [{\"starting_at\": \"2025-03-03T00:00:00Z\", \"results\": "
                                         "[{\"amount\": \"1\", \"currency\": \"EUR\"}]}]}") and t / "x.json", "--invoice"),
    (lambda t: (t / "x.json").write_text("{not json") and t / "x.json", "--invoice"),
])
def test_cli_bad_invoice_is_one_line(cli, ledger, tmp_path, make, field):
    res = cli("usage", "reconcile", "--db", ledger[0], "--invoice", make(tmp_path))
    assert_one_line_error(res, field)


def test_cli_bad_contract_names_file_row_and_column(cli, ledger, tmp_path):
    bad = tmp_path / "c.csv"
    bad.write_text("provider,model,service_tier,discount\nopenai,*,*,0.1\nanthropic,*,gold,0.2\n")
    res = cli("usage", "reconcile", "--db", ledger[0], "--invoice", INVOICES / "openai_costs.json", "--contract", bad)
    assert_one_line_error(res, f"--contract {bad}:3 service_tier")
