"""The same pipeline on PySpark (local mode): results identical to DuckDB to the micro-dollar."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    if os.environ.get("CI") == "true":  # CI installs Java (.ci/run): a missing one there is a failure, not a skip
        pytest.fail("CI: the Spark tests need Java on PATH (.ci/run installs default-jre-headless)", pytrace=False)
    pytest.skip("PySpark needs Java (java not on PATH)", allow_module_level=True)

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("BILLSHAPE_SPARK_MASTER", "local[1]")
os.environ.setdefault("BILLSHAPE_SPARK_PARTITIONS", "2")

from billshape import usage  # noqa: E402
from billshape.usage import engine as E  # noqa: E402
from usage_gen import make_logs  # noqa: E402


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    files, expect = make_logs(root / "logs", n=40)
    files = [str(f) for f in files]
    duck = str(root / "u.duckdb")
    spark = str(root / "u.spark")
    r_duck = usage.ingest(files, duck, mapping={"tenant": "customer"})
    r_spark = usage.ingest(files, spark, mapping={"tenant": "customer"}, engine="spark")
    # untouched copies for the reprice test (the re-ingest test adds to the originals): a Spark ingest is ~10 s
    shutil.copy(duck, root / "r.duckdb")
    shutil.copytree(spark, root / "r.spark")
    return files, expect, duck, spark, r_duck, r_spark


def test_spark_ingest_identical_to_duckdb(both):
    _, e, _, _, r_duck, r_spark = both
    assert r_spark.total_micro_usd == r_duck.total_micro_usd == e.micro
    assert (r_spark.rows_read, r_spark.rows_priced, r_spark.rows_quarantined) == (e.rows_read, e.priced, e.quarantined)
    assert r_spark.quarantine_reasons == r_duck.quarantine_reasons


def test_spark_reports_identical_to_duckdb(both):
    _, _, duck, spark, _, _ = both
    for by in ("customer", "model", "day"):
        a = usage.report(duck, by).rows
        b = usage.report(spark, by, engine="spark").rows
        assert sorted(a, key=lambda r: r["key"]) == sorted(b, key=lambda r: r["key"]), by
    wa = usage.whatif(duck, ["gpt-4o:0.4->gpt-4o-mini"], cache_hit_rate=0.5)
    wb = usage.whatif(spark, ["gpt-4o:0.4->gpt-4o-mini"], cache_hit_rate=0.5, engine="spark")
    assert wa.whatif_micro_usd == wb.whatif_micro_usd


def test_spark_reingest_and_interrupted_ingest(both, tmp_path, monkeypatch):
    files, _, _, spark, r_duck, _ = both
    again = usage.ingest(files, spark, mapping={"tenant": "customer"}, engine="spark")
    assert again.rows_read == 0 and again.total_micro_usd == 0
    # a crash after the ledger partition is written but before the manifest swap: invisible
    extra = tmp_path / "extra.csv"
    extra.write_text("timestamp,model,input_tokens,output_tokens\n2025-03-02T00:00:00Z,gpt-4o,1000,100\n")
    monkeypatch.setattr(E.SparkStore, "commit", lambda self, ingest_id: (_ for _ in ()).throw(KeyboardInterrupt()))
    monkeypatch.setattr(E.SparkStore, "rollback", lambda self, ingest_id: None)  # as if killed: nothing cleaned up
    with pytest.raises(KeyboardInterrupt):
        usage.ingest([str(extra)], spark, engine="spark")
    monkeypatch.undo()
    assert usage.report(spark, "model", engine="spark").total_micro_usd == r_duck.total_micro_usd
    retry = usage.ingest([str(extra)], spark, engine="spark")
    assert retry.rows_priced == 1
    assert usage.report(spark, "model", engine="spark").total_micro_usd == r_duck.total_micro_usd + retry.total_micro_usd


def test_spark_reprice_identical_to_duckdb(both, tmp_path):
    """Re-pricing the quarantine: same rows moved, same money, same counts on both engines; atomic on Spark."""
    files = both[0]
    prices = tmp_path / "p.csv"
    prices.write_text("provider,model,input_usd_per_mtok,output_usd_per_mtok\nopenai,no-such-model-xyz,1.5,2.25\n")
    root = Path(files[0]).parents[1]  # the fixture's folder: its untouched copies of the two ledgers
    duck, spark = str(root / "r.duckdb"), str(root / "r.spark")
    a = usage.reprice(duck, prices_csv=str(prices))
    b = usage.reprice(spark, prices_csv=str(prices), engine="spark")
    keys = ("rows_considered", "rows_repriced", "rows_still_quarantined", "quarantine_reasons", "repriced_micro_usd",
            "rows_priced_total", "rows_quarantined_total", "rows_read_total")
    assert a.rows_repriced > 0 and [getattr(a, k) for k in keys] == [getattr(b, k) for k in keys]
    assert usage.report(spark, "model", engine="spark").total_micro_usd == usage.report(duck, "model").total_micro_usd
    # a second reprice prices nothing and changes no count
    again = usage.reprice(spark, prices_csv=str(prices), engine="spark")
    assert again.rows_repriced == 0 and again.rows_quarantined_total == b.rows_quarantined_total
    assert usage.report(spark, "model", engine="spark").rows_quarantined == b.rows_quarantined_total
