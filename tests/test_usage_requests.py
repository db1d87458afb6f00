"""The usage actions as typed requests (billshape.chains.usage): one run each, errors naming fields (the CLI
printing its flags), logs given as a path, bytes or a file object, and --merge-into read bounded."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from billshape import chains, usage
from billshape.chains import (EconomicsRequest, ExportRequest, FocusTableRequest, IngestRequest, ReportRequest,
                              RepriceRequest, ScenarioFragmentRequest, WhatIfRequest, run)
from billshape.errors import BillshapeInputError
from billshape.cli._flags import cli_flag, cli_message
from conftest import assert_one_line_error

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "usage"
LOGS = ("spans.otlp.json", "openai_usage.json", "requests.csv")
PRICES = str(EXAMPLES / "selfhosted_prices.csv")
BASE = ROOT / "src" / "billshape" / "examples" / "high_volume_self_host.yaml"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """The sample logs ingested through the request, as docs/usage.md does."""
    path = str(tmp_path_factory.mktemp("req") / "u.duckdb")
    res = run(IngestRequest(files=[str(EXAMPLES / n) for n in LOGS], db=path, mapping=["tenant=customer"],
                            prices=PRICES))
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (12, 10, 2)  # docs/usage.md
    return path


def _ledger(path: str) -> list[tuple]:
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute("SELECT row_key, file_hash, source_file, model, usd_micro FROM ledger ORDER BY row_key").fetchall()
    finally:
        con.close()


def _error(make) -> BillshapeInputError:
    with pytest.raises(BillshapeInputError) as err:
        make()
    return err.value


# ------------------------------------------------------------------------------ one run per request


def test_each_request_runs_the_library_action(db, tmp_path):
    assert run(ReportRequest(db=db, by="model")).rows == usage.report(db, "model").rows
    assert run(EconomicsRequest(db=db)).to_dict() == usage.economics(db).to_dict()
    w = run(WhatIfRequest(db=db, routes=["gpt-4o-2024-08-06:0.4->gpt-4o-mini"], cache_hit_rate=0.6, prices=PRICES))
    ref = usage.whatif(db, ["gpt-4o-2024-08-06:0.4->gpt-4o-mini"], 0.6, prices_csv=PRICES)
    assert (w.baseline_micro_usd, w.whatif_micro_usd) == (ref.baseline_micro_usd, ref.whatif_micro_usd)
    out = tmp_path / "f.csv"
    written = run(ExportRequest(db=db, output=out))
    assert written["rows"] == run(FocusTableRequest(db=db)).num_rows > 0
    assert written["billed_cost_micro_usd"] == usage.economics(db).total_micro_usd
    rep = run(RepriceRequest(db=db, prices=PRICES))
    assert rep.rows_considered == rep.rows_repriced + rep.rows_still_quarantined
    e = usage.economics(db)
    frag = run(ScenarioFragmentRequest(db=db, economics=e))
    assert frag.text == usage.fragment_yaml(usage.scenario_fragment(e), e, db)
    assert frag.fragment == usage.scenario_fragment(e) and frag.merged is None
    assert run(ScenarioFragmentRequest(db=db)).fragment == frag.fragment  # measured from db when not given


def test_requests_are_registered_and_use_python_names():
    for cls in (IngestRequest, RepriceRequest, ReportRequest, EconomicsRequest, WhatIfRequest, ExportRequest,
                FocusTableRequest, ScenarioFragmentRequest):
        assert cls.__name__ in chains.__all__ and cls in chains._RUNS
        assert all(name.isidentifier() and "-" not in name for name in cls.model_fields)
    assert set(IngestRequest.model_fields) >= {"files", "db", "format", "mapping", "engine", "prices", "self_hosted"}
    assert set(WhatIfRequest.model_fields) == {"db", "routes", "cache_hit_rate", "engine", "prices"}


def test_importing_the_requests_loads_no_engine():
    code = ("import sys; import billshape.chains; print(sorted(m for m in ('pyarrow', 'duckdb', 'ibis', "
            "'billshape.usage', 'billshape.plan') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------------ errors name fields


@pytest.mark.parametrize("make, field", [
    (lambda db: WhatIfRequest(db=db, cache_hit_rate="lots"), "cache_hit_rate"),
    (lambda db: run(WhatIfRequest(db=db, cache_hit_rate=1.5)), "cache_hit_rate"),
    (lambda db: WhatIfRequest(db=db, routes=["gpt-4o:0.4->gpt-4o-mini", 7]), "routes[1]"),
    (lambda db: run(WhatIfRequest(db=db, routes=["gpt-4o:0.4->gpt-4o-mini", "gpt-4o-mini"])), "routes[1]"),
    (lambda db: run(WhatIfRequest(db=db, routes=["gpt-4o:0.1->x", "nosuch:0.4->gpt-4o-mini"])), "routes[1]"),
    (lambda db: run(WhatIfRequest(db=db)), "routes"),
    (lambda db: run(ReportRequest(db=db, by="planet")), "by"),
    (lambda db: ReportRequest(db=db, by=3), "by"),
    (lambda db: EconomicsRequest(db=db, egine="duckdb"), "egine"),
    (lambda db: EconomicsRequest(), "db"),
    (lambda db: run(EconomicsRequest(db=db + ".missing")), "db"),
    (lambda db: run(ReportRequest(db=db, engine="oracle")), "engine"),
    (lambda db: run(IngestRequest(files=[str(EXAMPLES / "requests.csv"), "no/such.csv"], db=db)), "files[1]"),
    (lambda db: run(IngestRequest(files=[str(EXAMPLES / "requests.csv")], db=db, format="xml")), "format"),
    (lambda db: run(IngestRequest(files=[str(EXAMPLES / "requests.csv")], db=db, mapping=["tenant"])), "mapping[0]"),
    (lambda db: IngestRequest(files=[], db=db, self_hosted="x=y"), "self_hosted"),
    (lambda db: run(IngestRequest(files=[12], db=db)), "files[0]"),
    (lambda db: run(RepriceRequest(db=db, prices="no/such.csv")), "prices"),
    (lambda db: run(ExportRequest(db=db)), "output"),
    (lambda db: run(ExportRequest(db=db, output="f.xlsx")), "output"),
    (lambda db: run(ExportRequest(db=db, output="f.csv", format="csv")), "format"),
    (lambda db: run(ScenarioFragmentRequest(db=db, economics={"requests": 3})), "economics"),
])
def test_a_bad_value_names_the_field(db, make, field):
    assert _error(lambda: make(db)).field == field


@pytest.mark.parametrize("args, flag", [
    (("whatif", "--cache-hit-rate", "1.5"), "--cache-hit-rate:"),
    (("whatif", "--route", "gpt-4o-2024-08-06:0.4->gpt-4o-mini", "--route", "bad"), "--route: got 'bad'"),
    (("whatif", "--route", "nosuch:0.4->gpt-4o-mini"), "--route: got 'nosuch'"),
    (("whatif",), "--route: missing"),
    (("ingest", str(EXAMPLES / "requests.csv"), "--map", "tenant"), "--map: got 'tenant'"),
    (("ingest", str(EXAMPLES / "requests.csv"), "no/such.csv"), "FILES: got 'no/such.csv'"),
    (("export", "-o", "f.xlsx"), "-o: got 'f.xlsx'"),
    (("export",), "-o: missing"),
    (("reprice", "--prices", "no/such.csv"), "--prices:"),
])
def test_the_cli_names_the_flag(cli, tmp_path, db, args, flag):
    copy = tmp_path / "u.duckdb"
    copy.write_bytes(Path(db).read_bytes())
    res = cli("usage", args[0], "--db", copy, *args[1:])
    assert_one_line_error(res, flag)


def test_list_items_map_to_the_repeatable_flag():
    assert cli_flag("routes[1]") == "--route" and cli_flag("mapping[0]") == "--map"
    assert cli_flag("cache_hit_rate") == "--cache-hit-rate" and cli_flag("merge_into") == "--merge-into"
    assert cli_flag("merge_into product.users") == "--merge-into product.users"
    assert cli_flag("serving.routes[1].share") == "serving.routes[1].share"  # a YAML path stays as it is


# ------------------------------------------------------------------------------ logs from any source


def _forms(path: Path):
    raw = path.read_bytes()
    named = io.BytesIO(raw)
    named.name = str(path)
    return {"path": str(path), "pathlib": path, "pair": (path.name, raw), "pair-file": (path.name, io.BytesIO(raw)),
            "file": named, "open": open(path, "rb")}


@pytest.mark.parametrize("form", ["pathlib", "pair", "pair-file", "file", "open"])
def test_bytes_and_file_object_ingest_equal_the_path_ingest(tmp_path, form):
    ref_db, got_db = str(tmp_path / "ref.duckdb"), str(tmp_path / "got.duckdb")
    ref = run(IngestRequest(files=[str(EXAMPLES / n) for n in LOGS], db=ref_db, mapping={"tenant": "customer"},
                            prices=PRICES))
    forms = [_forms(EXAMPLES / n)[form] for n in LOGS]
    seen = []
    got = run(IngestRequest(files=forms, db=got_db, mapping={"tenant": "customer"}, prices=PRICES,
                            progress=lambda name, rows: seen.append(name)))
    for f in forms:
        getattr(f, "close", lambda: None)()
    keys = ("rows_read", "rows_priced", "rows_quarantined", "quarantine_reasons", "total_micro_usd", "files_ingested",
            "records_ignored")
    assert {k: getattr(got, k) for k in keys} == {k: getattr(ref, k) for k in keys}
    assert got.files_ingested == list(LOGS)
    assert _ledger(got_db) == _ledger(ref_db)  # same row keys, file hashes and source file names
    assert {Path(str(n)).name for n in seen} == set(LOGS)  # progress names each input


def test_the_same_log_as_bytes_after_its_path_adds_nothing(tmp_path):
    path = EXAMPLES / "requests.csv"
    db = str(tmp_path / "u.duckdb")
    first = usage.ingest([str(path)], db)
    before = _ledger(db)
    again = usage.ingest([("renamed.csv", path.read_bytes()), path.read_bytes()], db)
    assert first.rows_read == 5 and again.rows_read == 0 and again.files_ingested == []
    assert again.files_skipped == ["renamed.csv", "<bytes>"] and _ledger(db) == before
    assert usage.ingest([str(path)], db).files_skipped == [str(path)]  # a path is reported as given


def test_unnamed_bytes_are_read_by_their_content(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_bytes = (EXAMPLES / "requests.csv").read_bytes()
    json_bytes = (EXAMPLES / "openai_usage.json").read_bytes()
    buf = io.BytesIO()
    pq.write_table(pa.table({"timestamp": ["2025-03-01T00:00:00Z"], "model": ["gpt-4o-mini"], "input_tokens": [1000],
                             "output_tokens": [100]}), buf)
    res = usage.ingest([csv_bytes, json_bytes, buf.getvalue()], str(tmp_path / "u.duckdb"))
    assert res.files_ingested == ["bytes.csv", "bytes.json", "bytes.parquet"]
    ref = usage.ingest([str(EXAMPLES / "requests.csv"), str(EXAMPLES / "openai_usage.json")], str(tmp_path / "r.duckdb"))
    assert res.rows_read == ref.rows_read + 1 and res.rows_priced == ref.rows_priced + 1


def test_in_memory_logs_are_capped_naming_the_field(tmp_path, monkeypatch):
    from billshape.usage import sources

    monkeypatch.setattr(sources, "MAX_BYTES", 1000)
    big = b"timestamp,model,input_tokens,output_tokens\n" + b"2025-03-01T00:00:00Z,gpt-4o-mini,1,1\n" * 40
    db = str(tmp_path / "u.duckdb")
    for form in (big, ("big.csv", big), io.BytesIO(big)):
        err = _error(lambda: run(IngestRequest(files=[str(EXAMPLES / "requests.csv"), form], db=db)))
        assert err.field == "files[1]" and "MB" in err.allowed and "pass a path" in err.hint
    assert not Path(db).exists()  # refused before the ledger is opened
    assert usage.ingest([("small.csv", big[:900])], db).rows_read > 0  # under the cap


def test_the_app_ingests_uploads_without_writing_log_files(tmp_path):
    from billshape.app.views.usage import ingest_files

    data = (EXAMPLES / "requests.csv").read_bytes()
    state = ingest_files({"mine.csv": data}, tmp_path, mapping=["tenant=customer"])
    assert state["ingest"].files_ingested == ["mine.csv"] and state["ingest"].rows_read == 5
    assert sorted(p.name for p in Path(state["root"]).rglob("*") if p.is_file()) == ["usage.duckdb"]


# ------------------------------------------------------------------------------ --merge-into, bounded


def test_merge_into_accepts_a_path_text_or_bytes(db):
    e = usage.economics(db)
    by_path = run(ScenarioFragmentRequest(db=db, economics=e, merge_into=str(BASE)))
    assert by_path.merge_into == str(BASE) and by_path.dropped_route_costs
    assert by_path.merged == usage.merge_scenario(yaml.safe_load(BASE.read_text()), by_path.fragment)
    assert yaml.safe_load(by_path.text) == by_path.merged
    for source in (BASE.read_text(), BASE.read_bytes(), io.BytesIO(BASE.read_bytes())):
        assert run(ScenarioFragmentRequest(db=db, economics=e, merge_into=source)).merged == by_path.merged


def _bad_bases(tmp_path) -> dict[str, Path]:
    text = BASE.read_text()
    assert "\n  users_start: 500000\n" in text
    dup = tmp_path / "dup.yaml"  # YAML alone would keep the last users_start silently
    dup.write_text(text.replace("\n  users_start: 500000\n", "\n  users_start: 500000\n  users_start: 5\n", 1))
    big = tmp_path / "big.yaml"
    big.write_text(text + "#" * 100 + "\n" + ("# padding\n" * 220_000))
    deep = tmp_path / "deep.yaml"
    deep.write_text(text + "notes: " + "[" * 200 + "]" * 200 + "\n")
    return {"dup": dup, "big": big, "deep": deep}


@pytest.mark.parametrize("case, field, words", [
    ("dup", "merge_into product.users_start", "a key given twice"),
    ("big", "merge_into", "at most 2,097,152 bytes"),
    ("deep", "merge_into", "levels of nesting"),
])
def test_merge_into_is_read_bounded(cli, tmp_path, db, case, field, words):
    base = _bad_bases(tmp_path)[case]
    err = _error(lambda: run(ScenarioFragmentRequest(db=db, merge_into=str(base))))
    assert err.field == field and words in err.message
    out = tmp_path / "out.yaml"
    res = cli("usage", "economics", "--db", db, "--scenario-out", out, "--merge-into", base)
    assert_one_line_error(res, "--merge-into")
    assert words in res.err and not out.exists()
    assert cli_message(err).startswith(cli_flag(field))


def test_merge_into_bytes_over_the_cap_name_the_field(db):
    from billshape.plan.loader import MAX_BYTES

    err = _error(lambda: run(ScenarioFragmentRequest(db=db, merge_into=b"#" * (MAX_BYTES + 1))))
    assert err.field == "merge_into" and "too large" in err.hint
    err = _error(lambda: run(ScenarioFragmentRequest(db=db, merge_into=b"- a\n- b\n")))
    assert err.field == "merge_into" and err.allowed == "a scenario YAML mapping"
