"""Usage ledger, the smaller defects (issue "Usage ledger 2", defect 4): staging folders of killed ingests,
rows dated outside the plausible window, ``whatif --cache-hit-rate 1e-320``, Spark's noise and a missing PySpark."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billshape import usage
from billshape.errors import BillshapeInputError
from billshape.usage import prices as P
from billshape.usage import staging
from conftest import assert_one_line_error

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "usage"
HEADER = "timestamp,model,input_tokens,output_tokens\n"
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _stage_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob(staging.PREFIX + "*") if p.is_dir())


# --- 1. staging folders: removed on every exit path; a killed ingest's folder by the next ingest -------------

@pytest.fixture(scope="module")
def big_log(tmp_path_factory) -> Path:
    """A CSV log that takes the ingest a few seconds (long enough to stop it midway)."""
    p = tmp_path_factory.mktemp("big") / "big.csv"
    start = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
    with open(p, "w") as f:
        f.write(HEADER)
        for i in range(400_000):
            f.write(f"{(start + dt.timedelta(seconds=i)).isoformat()},gpt-4o-mini,{100 + i % 900},{10 + i % 90}\n")
    return p


INGEST = "import sys; from billshape import usage; usage.ingest([sys.argv[1]], sys.argv[2])"


def _start_ingest(log: Path, db: Path, tmp: Path) -> subprocess.Popen:
    """An ingest in a child process whose temporary folder is ``tmp``; returns once it is staging rows."""
    proc = subprocess.Popen([sys.executable, "-c", INGEST, str(log), str(db)], env=_env(TMPDIR=str(tmp)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        folders = _stage_folders(tmp)
        if folders and (folders[0] / "stage.parquet").exists():
            time.sleep(0.3)  # some rows staged: midway through reading
            assert proc.poll() is None, "the ingest finished before it could be stopped midway"
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the ingest never started staging")


def _small_log(tmp_path: Path) -> Path:
    p = tmp_path / "small.csv"
    p.write_text(HEADER + "2025-03-01T00:00:00Z,gpt-4o-mini,100,10\n")
    return p


def test_killed_ingest_leaves_a_folder_that_the_next_ingest_removes(big_log, tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _start_ingest(big_log, tmp_path / "u.duckdb", tmp)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    left = _stage_folders(tmp)
    assert len(left) == 1  # SIGKILL cannot be caught: the folder stays...
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    res = usage.ingest([str(_small_log(tmp_path))], str(tmp_path / "u.duckdb"))
    assert res.rows_priced == 1
    assert _stage_folders(tmp) == []  # ...and the next ingest removes it (its process is gone)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_terminated_ingest_leaves_no_folder(big_log, tmp_path, sig):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = _start_ingest(big_log, tmp_path / "u.duckdb", tmp)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0  # stopped, not finished
    assert _stage_folders(tmp) == [], err.decode()[-2000:]
    # the database is as it was: the stopped ingest committed nothing
    if (tmp_path / "u.duckdb").exists():
        con = duckdb.connect(str(tmp_path / "u.duckdb"), read_only=True)
        assert con.sql("select count(*) from ledger").fetchone()[0] == 0
        con.close()


def test_a_live_ingest_folder_is_kept_and_an_old_unowned_one_removed(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = tmp_path / (staging.PREFIX + "live")
        mine.mkdir()
        (mine / staging.OWNER_FILE).write_text(json.dumps({"pid": live.pid, "host": staging._host()}))
        young = tmp_path / (staging.PREFIX + "young")  # no owner file yet (being created): kept until old
        young.mkdir()
        old = tmp_path / (staging.PREFIX + "old")
        old.mkdir()
        (old / "stage.parquet").write_bytes(b"x" * 10)
        past = time.time() - staging.STALE_AFTER_S - 60
        os.utime(old, (past, past))
        dead = tmp_path / (staging.PREFIX + "dead")
        dead.mkdir()
        (dead / staging.OWNER_FILE).write_text(json.dumps({"pid": _dead_pid(), "host": staging._host()}))
        other = tmp_path / "not-billshape-stage"
        other.mkdir()
        removed = staging.remove_stale(str(tmp_path))
        assert sorted(Path(p).name for p in removed) == sorted([old.name, dead.name])
        assert mine.exists() and young.exists() and other.exists()
    finally:
        live.kill()
        live.wait()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_failed_ingest_leaves_no_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    bad = tmp_path / "x.csv"
    bad.write_text(HEADER + "2025-03-01T00:00:00Z,gpt-4o-mini,100,10\n")
    from billshape.usage import engine as E

    monkeypatch.setattr(E.DuckDBStore, "commit", lambda self, ingest_id: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        usage.ingest([str(bad)], str(tmp_path / "u.duckdb"))
    assert _stage_folders(tmp_path) == []


# --- 2. rows dated outside the plausible window are quarantined, not priced at today's prices --------------

def test_rows_outside_the_window_are_quarantined(tmp_path):
    lo, hi = P.plausible_window()
    assert lo == dt.date(2020, 1, 1)
    assert hi == dt.datetime.now(dt.timezone.utc).date() + dt.timedelta(days=1)
    p = tmp_path / "dates.csv"
    p.write_text(HEADER + "".join(f"{d}T00:00:00Z,gpt-4o,1000,100\n" for d in
                                  ("0001-01-01", "1970-01-01", "2099-06-01", "9999-12-31", "2025-03-01", "2019-12-31",
                                   lo.isoformat(), hi.isoformat())))
    res = usage.ingest([str(p)], str(tmp_path / "u.duckdb"))
    assert (res.rows_read, res.rows_priced, res.rows_quarantined) == (8, 3, 5)
    window = f"{lo.isoformat()} to {hi.isoformat()}"
    assert res.quarantine_reasons == {f"timestamp outside the plausible window {window} (UTC)": 5}
    con = duckdb.connect(str(tmp_path / "u.duckdb"), read_only=True)
    reasons = dict(con.sql("select strftime(ts, '%Y-%m-%d'), reason from quarantine").fetchall())
    con.close()
    assert set(reasons) == {"0001-01-01", "1970-01-01", "2099-06-01", "9999-12-31", "2019-12-31"}
    for day, reason in reasons.items():
        assert reason == f"timestamp {day} outside the plausible window {window} (UTC)"
    a = {x.name: x for x in res.assumptions}["plausible timestamp window"]
    assert a.value == window and a.as_of and "2020" in a.source
    # re-pricing does not price them either (the window is the same)
    rep = usage.reprice(str(tmp_path / "u.duckdb"))
    assert (rep.rows_considered, rep.rows_repriced) == (5, 0)


def test_window_does_not_touch_the_shipped_examples(tmp_path):
    files = [str(EXAMPLES / n) for n in ("spans.otlp.json", "requests.csv", "openai_usage.json")]
    res = usage.ingest(files, str(tmp_path / "u.duckdb"))
    assert not any(r.startswith("timestamp outside") for r in res.quarantine_reasons)


# --- 3. whatif --cache-hit-rate: one line, exit 2, for every float; never an internal error ------------------

@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> str:
    db = str(tmp_path_factory.mktemp("wi") / "u.duckdb")
    usage.ingest([str(EXAMPLES / "requests.csv"), str(EXAMPLES / "spans.otlp.json")], db)
    return db


@pytest.mark.parametrize("value", ["1e-320", "5e-324", "1e-10", "nan", "inf", "-inf", "1e300", "-1e-320", "1.0000001"])
def test_whatif_bad_cache_hit_rate_is_one_line(cli, ledger, value):
    assert_one_line_error(cli("usage", "whatif", "--db", ledger, "--cache-hit-rate", value), "--cache-hit-rate")


@pytest.mark.parametrize("value", ["0.3333333333333333", "0.123456789012", "1e-9", "0", "-0.0", "1"])
def test_whatif_cache_hit_rate_with_many_decimals_runs(cli, ledger, value):
    res = cli("usage", "whatif", "--db", ledger, "--cache-hit-rate", value, "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["cache_hit_rate"] == float(value) and math.copysign(1, out["cache_hit_rate"]) == 1


def test_whatif_rate_is_used_at_nine_decimals(ledger):
    a = usage.whatif(ledger, cache_hit_rate=1 / 3)
    b = usage.whatif(ledger, cache_hit_rate=0.333333333)
    assert a.whatif_micro_usd == b.whatif_micro_usd
    used = {x.name: x for x in a.assumptions}["cache hit rate used"]
    assert used.value == 0.333333333


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True))
def test_whatif_cache_hit_rate_any_float_is_a_result_or_a_named_error(ledger, x):
    try:
        res = usage.whatif(ledger, cache_hit_rate=x)
    except BillshapeInputError as exc:
        assert exc.field == "cache_hit_rate"
        assert not (x == 0 or 1e-9 <= x <= 1)
    else:
        assert x == 0 or 1e-9 <= x <= 1
        assert math.isfinite(res.whatif_usd) and math.isfinite(res.delta_pct)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=st.floats(allow_nan=False, allow_infinity=True, allow_subnormal=True))
def test_whatif_cli_never_exits_1(cli, ledger, x):
    res = cli("usage", "whatif", "--db", ledger, "--cache-hit-rate", repr(x), "--json")
    assert res.code in (0, 2), res.err
    assert "Traceback" not in res.err and "internal error" not in res.err


# --- 4. Spark: without PySpark, the extra to install; with it, nothing from Spark on stdout or stderr -------

NO_PYSPARK = ("import sys; sys.modules['pyspark'] = None; from billshape.cli import run; "
              "sys.exit(run(sys.argv[1:]))")


@pytest.mark.parametrize("verb", [["report"], ["ingest", str(EXAMPLES / "requests.csv")], ["economics"]])
def test_spark_engine_without_pyspark_names_the_extra(tmp_path, verb):
    db = tmp_path / "u.spark"
    db.mkdir()
    p = subprocess.run([sys.executable, "-c", NO_PYSPARK, "usage", *verb, "--db", str(db), "--engine", "spark"],
                       env=_env(), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, p.stderr
    assert "pip install 'billshape[spark]'" in lines[0] and "spark" in lines[0]
    assert "ibis-framework" not in p.stderr and p.stdout == ""


def _need_java():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI: the Spark tests need Java on PATH")
        pytest.skip("PySpark needs Java (java not on PATH)")


QUIET = """
import sys
from billshape.cli import run
db, log = sys.argv[1], sys.argv[2:]
code = run(["usage", "ingest", *log, "--db", db, "--engine", "spark", "--json"])
if code:
    sys.exit(code)
print("=====")
sys.exit(run(["usage", "report", "--db", db, "--engine", "spark", "--by", "model"]))
"""


@pytest.mark.spark
@pytest.mark.slow
def test_spark_prints_nothing_of_its_own(tmp_path, capfd):
    _need_java()
    db = tmp_path / "u.spark"
    dates = tmp_path / "dates.csv"  # and the plausible window on Spark: year 1 and 9999 quarantined, 2025 priced
    dates.write_text(HEADER + "0001-01-01T00:00:00Z,gpt-4o,1000,100\n9999-12-31T00:00:00Z,gpt-4o,1000,100\n"
                     "2025-03-01T00:00:00Z,gpt-4o,1000,100\n")
    logs = [str(EXAMPLES / "requests.csv"), str(EXAMPLES / "spans.otlp.json"), str(dates)]
    env = _env(SPARK_LOCAL_IP="127.0.0.1", BILLSHAPE_SPARK_MASTER="local[1]", BILLSHAPE_SPARK_PARTITIONS="2")
    env.pop("BILLSHAPE_SPARK_LOG", None)
    p = subprocess.run([sys.executable, "-c", QUIET, str(db), *logs], env=env, timeout=600)
    out, err = capfd.readouterr()
    assert p.returncode == 0, err[-3000:]
    assert err == "", err[-3000:]
    ingest_json, table = out.split("=====\n")
    ingested = json.loads(ingest_json)
    assert ingested["rows_priced"] > 0
    assert sum(n for r, n in ingested["quarantine_reasons"].items() if r.startswith("timestamp outside")) == 2
    for noise in ("WARN", "log4j", "[Stage", "Spark", "py4j", "WARNING", "INFO"):
        assert noise not in table, noise
    assert table.lstrip().startswith("Spend by model")
