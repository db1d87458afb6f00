"""The rest of the whole bill (issue 14): long-context rows, LiteLLM media rows, the ingest text table, whatif's
tier look-up, reconcile causes read from the quarantine, one OpenAI cost reader, --snapshot/--max-age-days on the
usage verbs. Each test recomputes its figures from the files with the documented rules."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

from billshape import usage

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
CONNECTORS = EXAMPLES / "connectors"


def ledger_rows(db) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute("select * from ledger order by source_file, row_index")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


def quarantine_reasons(db) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("select row_key, reason from quarantine").fetchall())
    finally:
        con.close()


def micro(tokens: int, usd_per_mtok: str) -> int:
    return int((Decimal(tokens) * Decimal(usd_per_mtok)).to_integral_value(rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------------------------- the text table

def test_ingest_table_shows_rows_already_present_and_rekeyed(cli, tmp_path):
    """The JSON had ``rows_already_present`` and ``rows_rekeyed``; the table now shows both."""
    log = tmp_path / "a.csv"
    log.write_text("timestamp,model,input_tokens,output_tokens\n2025-06-01T00:00:00Z,gpt-4o-mini,100,10\n"
                   "2025-06-01T00:01:00Z,gpt-4o-mini,200,20\n")
    db = tmp_path / "u.duckdb"
    assert cli("usage", "ingest", log, "--db", db).code == 0
    log2 = tmp_path / "b.csv"  # the same two rows and a new one: a corrected copy
    log2.write_text(log.read_text() + "2025-06-01T00:02:00Z,gpt-4o-mini,300,30\n")
    res = cli("usage", "ingest", log2, "--db", db)
    assert res.code == 0, res.err
    line = next(ln for ln in res.out.splitlines() if "rows already present" in ln)
    assert line.rstrip(" │").endswith("2")
    assert "re-keyed" in res.out
    js = cli("usage", "ingest", log2, "--db", tmp_path / "v.duckdb", "--json").json()
    assert js["rows_already_present"] == 0 and js["rows_rekeyed"] == 0


# --------------------------------------------------------------------------------------------- one OpenAI cost reader

def test_one_openai_cost_reader_for_json_and_csv():
    """The Costs API JSON and the dashboard CSV go through one reader and give the same lines."""
    import importlib

    R = importlib.import_module("billshape.usage.reconcile")

    assert not hasattr(R, "read_openai_costs_csv")
    doc = json.loads((EXAMPLES / "invoices" / "openai_costs.json").read_text())
    from_json = R.read_openai_costs(doc, "o.json")
    rows = ["start_time,end_time,start_time_iso,end_time_iso,amount_value,amount_currency,line_item,project_id"]
    for b in doc["data"]:
        for r in b.get("results") or []:
            rows.append(f"{b['start_time']},{b['end_time']},,,{r['amount']['value']},{r['amount']['currency']},"
                        f"\"{r.get('line_item') or ''}\",{r.get('project_id') or ''}")
        if not b.get("results"):
            rows.append(f"{b['start_time']},{b['end_time']},,,,,,")
    from_csv = R.read_openai_costs("\n".join(rows) + "\n", "o.csv")
    assert from_json.format == "openai-costs" and from_csv.format == "openai-costs-csv"
    assert from_json.lines == from_csv.lines and from_json.days == from_csv.days and len(from_json.lines) > 3
    total = sum(Decimal(str(r["amount"]["value"])) for b in doc["data"] for r in b.get("results") or [])
    assert sum(line.micro_usd for line in from_json.lines) == int((total * 10**6).to_integral_value(rounding=ROUND_HALF_UP))


# --------------------------------------------------------------------------------------------- tier look-up key

def _chat(rid, model, inp, out, tier=None, ts="2025-10-01T12:00:00Z"):
    body = {"id": rid, "object": "chat.completion", "created": 0, "model": model,
            "usage": {"prompt_tokens": inp, "completion_tokens": out}}
    if tier is not None:
        body["service_tier"] = tier
    return {"ts": ts, "provider": "openai", "response": body}


def _write_jsonl(path: Path, items) -> str:
    path.write_text("\n".join(json.dumps(i) for i in items) + "\n")
    return str(path)


def _times(price, m) -> Decimal:
    return (Decimal(price) * Decimal(m)).quantize(Decimal("1e-9"), rounding=ROUND_HALF_UP)


def test_priority_multiplier_is_found_by_the_pricing_key_at_ingest_and_in_whatif(tmp_path):
    """``gpt-4o-2024-08-06`` is ``openai/gpt-4o`` to genai-prices; the catalog's priority row is ``gpt-4o`` (1.7x):
    the row is priced at 1.7x (it was quarantined as an unknown tier). A what-if route of its requests to
    ``gpt-4.1-2025-04-14`` takes gpt-4.1's priority multiplier (1.75x, not the FROM model's 1.7x)."""
    import datetime as dt

    from billshape import api_prices

    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([_write_jsonl(tmp_path / "r.jsonl", [_chat("p1", "gpt-4o-2024-08-06", 100_000, 20_000, "priority"),
                                                              _chat("s1", "gpt-4o-2024-08-06", 100_000, 20_000)])], db)
    q = api_prices.quote("gpt-4o", "openai", dt.date(2025, 10, 1))
    prio = micro(100_000, _times(q.input_mtok, "1.7")) + micro(20_000, _times(q.output_mtok, "1.7"))
    std = micro(100_000, q.input_mtok) + micro(20_000, q.output_mtok)
    assert res.rows_quarantined == 0 and res.total_micro_usd == prio + std
    q41 = api_prices.quote("gpt-4.1", "openai", dt.date(2025, 10, 1))
    to_prio = micro(100_000, _times(q41.input_mtok, "1.75")) + micro(20_000, _times(q41.output_mtok, "1.75"))
    to_std = micro(100_000, q41.input_mtok) + micro(20_000, q41.output_mtok)
    wi = usage.whatif(db, ["gpt-4o-2024-08-06:1->gpt-4.1-2025-04-14"])
    assert wi.whatif_micro_usd == to_prio + to_std
    assert wi.routes[0]["to_usd_if_all"] == (to_prio + to_std) / 1e6
