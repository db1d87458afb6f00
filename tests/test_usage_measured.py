"""Usage ledger, continued: self-hosted prices from the serving model, re-pricing the quarantine, and measured
unit economics as a scenario fragment that the planner validates and plans."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
import yaml

from billshape import scenario, serving, usage
from billshape.usage import engine as E
from billshape.usage import prices as P
from conftest import assert_one_line_error
from usage_gen import make_logs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
CSV = str(EXAMPLES / "requests.csv")
LLAMA = "llama-3.1-8b-ours=llama-3.1-8b@h100:fp8:2.5:0.6"
NINE = Decimal("1e-9")


def _micro(tokens: int, price: Decimal) -> int:
    return int((tokens * price).to_integral_value(rounding=ROUND_HALF_UP))


def _q(db: str, sql: str):
    con = duckdb.connect(db, read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


# --- self-hosted prices from the serving model ------------------------------------------------------------------

def test_self_hosted_price_is_the_serving_model_called_once_per_mapping(tmp_path, monkeypatch):
    calls = []
    real = serving.self_hosted_price

    def counting(*a, **k):
        calls.append((a, k))
        return real(*a, **k)

    monkeypatch.setattr(serving, "self_hosted_price", counting)
    base = usage.ingest([CSV], str(tmp_path / "a.duckdb"), mapping={"tenant": "customer"})
    res = usage.ingest([CSV], str(tmp_path / "b.duckdb"), mapping={"tenant": "customer"}, self_hosted=[LLAMA])
    assert len(calls) == 1  # one call for the mapping, not one per row
    p = real("llama-3.1-8b", "h100", gpus=1, precision="fp8", usd_per_gpu_hour=2.5, utilization=0.6)
    ip = Decimal(repr(p["usd_per_million_input_tokens"])).quantize(NINE)
    op = Decimal(repr(p["usd_per_million_output_tokens"])).quantize(NINE)
    # the example's llama row: 4000 input, 1000 output tokens (examples/usage/requests.csv)
    assert res.rows_priced == base.rows_priced + 1
    assert res.total_micro_usd - base.total_micro_usd == _micro(4000, ip) + _micro(1000, op)
    [(src, model)] = _q(str(tmp_path / "b.duckdb"), "select price_source, price_model from ledger where model = 'llama-3.1-8b-ours'")
    assert src.startswith("billshape serving model: llama-3.1-8b on 1x h100 fp8 at $2.5/GPU-hour, utilization 0.6")
    assert any(a["name"] == "self-hosted price of llama-3.1-8b-ours" for a in res.to_dict()["assumptions"])
    # without a price the row is quarantined (never $0), and the quarantine says which source was tried
    [(reason, qsrc, tokens)] = _q(str(tmp_path / "a.duckdb"), "select reason, price_source, input_tokens from quarantine where model is not null")
    assert reason.startswith("no price for model llama-3.1-8b-ours") and qsrc.startswith("genai-prices") and tokens == 4000


def test_self_hosted_mapping_files_equal_the_inline_form(tmp_path):
    inline = P.read_self_hosted(["big=llama-3.1-70b@h100x2:fp8:2.5"])
    yml = tmp_path / "hosted.yaml"
    yml.write_text("self_hosted:\n  - {name: big, model: llama-3.1-70b, gpu: h100, gpus: 2, precision: fp8, usd_per_gpu_hour: 2.5}\n")
    csv = tmp_path / "hosted.csv"
    csv.write_text("name,model,gpu,gpus,precision,usd_per_gpu_hour,utilization,input_tokens,output_tokens\n"
                   "big,llama-3.1-70b,h100,2,fp8,2.5,,,\n")
    assert P.read_self_hosted([str(yml)]) == P.read_self_hosted([str(csv)]) == inline
    # typical lengths and utilization change the price as the serving model says
    longer = P.read_self_hosted(["big=llama-3.1-70b@h100x2:fp8:2.5:0.5"])
    assert longer[("", "big")].output_mtok > inline[("", "big")].output_mtok


@pytest.mark.parametrize("spec, field", [
    ("nonsense", "--self-hosted"),
    ("x=llama-3.1-70b@h100:bf16:2.5", "--self-hosted x=llama-3.1-70b@h100:bf16:2.5"),  # does not fit one GPU
    ("x=no-such-model@h100:fp8:2.5", "--self-hosted x=no-such-model@h100:fp8:2.5"),
    ("x=llama-3.1-8b@h100:fp8", "--self-hosted x=llama-3.1-8b@h100:fp8 usd_per_gpu_hour"),
])
def test_self_hosted_bad_input(cli, tmp_path, spec, field):
    res = cli("usage", "ingest", CSV, "--db", str(tmp_path / "u.duckdb"), "--self-hosted", spec, "--json")
    assert_one_line_error(res, field)
    assert not (tmp_path / "u.duckdb").exists()  # refused before anything is written


# --- re-pricing the quarantine --------------------------------------------------------------------------------

@pytest.fixture()
def gen(tmp_path):
    files, expect = make_logs(tmp_path / "logs", n=60)
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([str(f) for f in files], db, mapping={"tenant": "customer"})
    prices = tmp_path / "prices.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok,source,as_of\n"
                      "openai,no-such-model-xyz,1.5,2.25,negotiated rate (test),2025-03-01\n")
    return db, res, expect, str(prices)


def _counts(db):
    (led,), (q,), (read,) = (_q(db, f"select {x}")[0] for x in (
        "count(*) from ledger", "count(*) from quarantine", "sum(rows_read) from files"))
    return led, q, read


def test_reprice_moves_rows_that_now_have_a_price_and_nothing_else(gen):
    db, res, e, prices = gen
    waiting = _q(db, "select input_tokens, output_tokens from quarantine where reason like 'no price for model no-such-model-xyz%'")
    assert waiting  # the generator writes rows of an unknown model
    before = _counts(db)
    rp = usage.reprice(db, prices_csv=prices)
    assert rp.rows_repriced == len(waiting) and rp.rows_considered == rp.rows_repriced + rp.rows_still_quarantined
    # priced at the table's price, rounded per component like every ledger row
    assert rp.repriced_micro_usd == sum(_micro(i, Decimal("1.5")) + _micro(o, Decimal("2.25")) for i, o in waiting)
    led, q, read = _counts(db)
    assert (led, q) == (before[0] + len(waiting), before[1] - len(waiting)) and led + q == read == e.rows_read
    assert (rp.rows_priced_total, rp.rows_quarantined_total, rp.rows_read_total) == (led, q, read)
    assert usage.report(db, "model").total_micro_usd == res.total_micro_usd + rp.repriced_micro_usd
    # unreadable rows and duplicates stay, with their reasons
    reasons = {r for (r,) in _q(db, "select distinct reason from quarantine")}
    assert "duplicate row (already ingested)" in reasons and "negative output_tokens" in reasons
    assert not any(r.startswith("no price for model no-such-model-xyz") for r in reasons)
    [(src,)] = _q(db, "select distinct price_source from ledger where model = 'no-such-model-xyz'")
    assert src == "negotiated rate (test) (as of 2025-03-01)"
    # nothing twice: a second reprice prices nothing (only llama-private, still without a price, is considered)
    again = usage.reprice(db, prices_csv=prices)
    assert (again.rows_considered, again.rows_repriced) == (1, 0) and _counts(db) == (led, q, read)
    assert list(again.quarantine_reasons) == ["no price for model llama-private (provider openai)"]


def test_reprice_without_a_new_price_changes_nothing(gen):
    db, _, _, _ = gen
    before = _counts(db)
    rows_before = sorted(_q(db, "select row_key, reason from quarantine"))
    rp = usage.reprice(db)
    assert rp.rows_repriced == 0 and rp.rows_still_quarantined == rp.rows_considered > 0
    assert _counts(db) == before and sorted(_q(db, "select row_key, reason from quarantine")) == rows_before


def test_interrupted_reprice_leaves_the_database_as_it_was(gen, monkeypatch):
    db, _, _, prices = gen
    before = _counts(db)
    q_before = sorted(_q(db, "select row_key, reason from quarantine"))

    def killed(self, name, expr):
        raise KeyboardInterrupt("killed midway")

    monkeypatch.setattr(E.DuckDBStore, "append", killed)  # after the quarantine rewrite was staged
    with pytest.raises(KeyboardInterrupt):
        usage.reprice(db, prices_csv=prices)
    monkeypatch.undo()
    assert _counts(db) == before and sorted(_q(db, "select row_key, reason from quarantine")) == q_before
    assert usage.reprice(db, prices_csv=prices).rows_repriced > 0


def test_reprice_keeps_one_copy_of_a_row_quarantined_twice(tmp_path):
    """The same request (same request_id) in two files, both unpriced: re-priced once, the copy is a duplicate."""
    db = str(tmp_path / "u.duckdb")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("request_id,timestamp,model,input_tokens,output_tokens\nreq-1,2025-03-01T00:00:00Z,mine,100,10\n")
    b.write_text("request_id,timestamp,model,input_tokens,output_tokens,note\nreq-1,2025-03-01T00:00:00Z,mine,100,10,again\n")
    usage.ingest([str(a)], db)
    usage.ingest([str(b)], db)
    assert _counts(db) == (0, 2, 2)
    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok\n,mine,1,1\n")
    rp = usage.reprice(db, prices_csv=str(prices))
    assert (rp.rows_repriced, rp.rows_still_quarantined, rp.quarantine_reasons) == (1, 1, {"duplicate row (already ingested)": 1})
    assert rp.repriced_micro_usd == 110 and _counts(db) == (1, 1, 2)


def test_ingest_reprice_quarantine_flag(cli, tmp_path):
    db = str(tmp_path / "u.duckdb")
    first = cli("usage", "ingest", CSV, "--db", db, "--map", "tenant=customer", "--json").json()
    assert first["quarantine_reasons"].get("no price for model llama-3.1-8b-ours (provider selfhosted)") == 1
    out = cli("usage", "ingest", str(EXAMPLES / "openai_usage.json"), "--db", db, "--self-hosted", LLAMA,
              "--reprice-quarantine", "--json").json()
    assert out["reprice"]["rows_repriced"] == 1
    r = out["reprice"]
    assert r["rows_read_total"] == r["rows_priced_total"] + r["rows_quarantined_total"] == first["rows_read"] + out["rows_read"]
    rep = cli("usage", "reprice", "--db", db, "--json").json()
    assert rep["rows_considered"] == 0


def test_old_database_gets_the_new_quarantine_columns(tmp_path):
    db = str(tmp_path / "old.duckdb")
    con = duckdb.connect(db)
    con.execute("CREATE TABLE quarantine (row_key VARCHAR, file_hash VARCHAR, source_file VARCHAR, row_index BIGINT, "
                "reason VARCHAR, detail VARCHAR, ingest_id VARCHAR)")
    con.execute("INSERT INTO quarantine VALUES ('k', 'h', 'f.csv', 0, 'no price for model m', 'm', 'i0')")
    con.execute("CREATE TABLE files (file_hash VARCHAR, source_file VARCHAR, format VARCHAR, rows_read BIGINT, "
                "ingest_id VARCHAR, ingested_at TIMESTAMPTZ)")
    con.execute("INSERT INTO files VALUES ('h', 'f.csv', 'csv', 1, 'i0', '2025-03-01 00:00:00+00')")
    con.close()
    E.DuckDBStore(db).close()
    cols = [r[0] for r in _q(db, "select column_name from information_schema.columns where table_name = 'quarantine' order by ordinal_position")]
    assert cols == usage.engine.QUARANTINE.names
    # an old quarantined row has no record to price: it stays
    assert usage.reprice(db).rows_considered == 0 and _q(db, "select count(*) from quarantine") == [(1,)]


# --- measured unit economics as scenario inputs ---------------------------------------------------------------

@pytest.fixture()
def measured(tmp_path):
    db = str(tmp_path / "u.duckdb")
    usage.ingest([CSV, str(EXAMPLES / "spans.otlp.json"), str(EXAMPLES / "openai_usage.json")], db,
                 mapping={"tenant": "customer"}, self_hosted=[LLAMA])
    return db


def test_fragment_uses_the_scenario_keys_and_plans_merged_into_an_example(measured):
    econ = usage.economics(measured)
    frag = usage.scenario_fragment(econ)
    assert set(frag) == {"product", "serving"}
    assert set(frag["product"]) == {"requests_per_user_month", "input_tokens_per_request", "output_tokens_per_request",
                                    "reasoning_multiplier", "cache_hit_rate"}
    assert set(frag["product"]) <= set(scenario.Product.model_fields)
    routes = frag["serving"]["routes"]
    assert sum(r["share"] for r in routes) == pytest.approx(1.0, abs=1e-12)
    assert {r["name"] for r in routes} == set(econ.model_shares)
    hosted = [r for r in routes if "self_hosted" in r]
    assert [r["name"] for r in hosted] == ["llama-3.1-8b-ours"]
    # measured $/M from the ledger: 4000 input tokens charged round(4000 x price) micro-dollars
    [(mi, mo)] = _q(measured, "select usd_micro_input, usd_micro_output from ledger where model = 'llama-3.1-8b-ours'")
    assert hosted[0]["self_hosted"]["usd_per_million_input_tokens"] == pytest.approx(mi / 4000)
    assert hosted[0]["self_hosted"]["usd_per_million_output_tokens"] == pytest.approx(mo / 1000)
    assert frag["product"]["input_tokens_per_request"] == pytest.approx(econ.input_tokens_per_request)
    for name in ("high_volume_self_host.yaml", "seed000_image_startup.yaml", "api_wrapper_price_shock.yaml"):
        base = yaml.safe_load((scenario.examples_dir() / name).read_text())
        merged = usage.merge_scenario(base, frag)
        plan = scenario.parse(merged, name)
        res = plan.evaluate(samples=400, seed=1)
        assert res.to_dict()  # finite outputs
        assert plan.median("product.input_tokens_per_request") == pytest.approx(frag["product"]["input_tokens_per_request"])
        assert plan.scenario.horizon_months == base["horizon_months"]  # the base's other keys are kept


def test_reasoning_multiplier_is_billed_over_visible_output(tmp_path):
    db = str(tmp_path / "u.duckdb")
    f = tmp_path / "r.csv"
    f.write_text("timestamp,model,user,input_tokens,output_tokens,reasoning_tokens\n"
                 "2025-03-01T00:00:00Z,gpt-4o-mini,u1,1000,300,200\n2025-03-02T00:00:00Z,gpt-4o-mini,u2,3000,500,300\n")
    usage.ingest([str(f)], db, mapping={"user": "user_id"})
    frag = usage.scenario_fragment(usage.economics(db))["product"]
    assert frag["output_tokens_per_request"] == 150.0  # (800 - 500) / 2 visible
    assert frag["reasoning_multiplier"] == pytest.approx(800 / 300)
    assert frag["input_tokens_per_request"] == 2000.0


def test_cli_scenario_out(cli, measured, tmp_path):
    out = tmp_path / "measured.yaml"
    res = cli("usage", "economics", "--db", measured, "--scenario-out", str(out), "--json")
    assert res.code == 0, res.err
    frag = yaml.safe_load(out.read_text())
    assert frag == res.json()["scenario_fragment"]
    merged = tmp_path / "merged.yaml"
    base = scenario.examples_dir() / "high_volume_self_host.yaml"
    assert cli("usage", "economics", "--db", measured, "--scenario-out", str(merged), "--merge-into", str(base)).code == 0
    plan = scenario.load(merged)
    assert plan.median("product.requests_per_user_month") == pytest.approx(frag["product"]["requests_per_user_month"])
    assert cli("plan", str(merged), "--samples", "300", "--json").code == 0
    assert_one_line_error(cli("usage", "economics", "--db", measured, "--merge-into", str(base)), "--merge-into")


def test_merge_names_the_deployment_costs_it_drops(cli, measured, tmp_path):
    # high_volume_self_host.yaml's own-nodes route carries a $250,000 set-up and $60,000 a month: the measured
    # routes replace it, so the merged plan no longer has them; the CLI says so (text, JSON, and the YAML header)
    base = scenario.examples_dir() / "high_volume_self_host.yaml"
    frag = usage.scenario_fragment(usage.economics(measured))
    dropped = usage.dropped_route_costs(yaml.safe_load(base.read_text()), frag)
    assert dropped == [{"route": "own nodes (llama-3.1-70b)", "setup_usd": 250000, "fixed_monthly_usd": 60000}]
    assert usage.dropped_route_costs(yaml.safe_load(base.read_text()), {"product": {}}) == []  # routes kept
    out = tmp_path / "merged.yaml"
    res = cli("usage", "economics", "--db", measured, "--scenario-out", str(out), "--merge-into", str(base))
    assert res.code == 0, res.err
    assert "'own nodes (llama-3.1-70b)' (setup_usd 250,000, fixed_monthly_usd 60,000)" in " ".join(res.out.split())
    header = [line for line in out.read_text().splitlines() if line.startswith("#")]
    assert any("setup_usd 250,000" in line for line in header)
    res = cli("usage", "economics", "--db", measured, "--scenario-out", str(out), "--merge-into", str(base), "--json")
    assert res.json()["dropped_route_costs"] == dropped
    seed = scenario.examples_dir() / "seed000_image_startup.yaml"  # no self-hosted route: nothing dropped
    res = cli("usage", "economics", "--db", measured, "--scenario-out", str(out), "--merge-into", str(seed), "--json")
    assert res.json()["dropped_route_costs"] == []
    # a cost given as a distribution is named as the scenario wrote it
    data = yaml.safe_load(base.read_text())
    data["serving"]["routes"][1]["self_hosted"]["setup_usd"] = {"dist": "uniform", "low": 1e5, "high": 4e5}
    dist_base = tmp_path / "dist.yaml"
    dist_base.write_text(yaml.safe_dump(data))
    res = cli("usage", "economics", "--db", measured, "--scenario-out", str(out), "--merge-into", str(dist_base))
    assert res.code == 0, res.err
    assert "setup_usd {\"dist\": \"uniform\"" in " ".join(res.out.split())
