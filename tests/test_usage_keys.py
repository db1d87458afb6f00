"""Row keys (issue "Usage ledger 2", item 2): rows without a request id are keyed by their content, so a corrected
copy of a file adds only its changed and new rows; identical requests in one file stay distinct; a re-ingest under
a different ``--map`` finds the rows it already holds under the other kind of key."""

from __future__ import annotations

import csv
import io

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import usage
from usage_gen import fault_rows, rows_micro

COLS = ["timestamp", "provider", "model", "customer", "feature", "input_tokens", "output_tokens", "cache_read_tokens"]


def _csv(rows, with_id: bool = False) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow((["request_id"] if with_id else []) + COLS)
    for r in rows:
        w.writerow(([r["request_id"]] if with_id else []) + [r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ"), r["provider"], r["model"], r["customer"],
                                                              r["feature"], r["input_tokens"], r["output_tokens"], r["cache_read_tokens"]])
    return out.getvalue().encode()


def _ledger(db: str):
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute("SELECT count(*), coalesce(sum(usd_micro), 0) FROM ledger").fetchone()
    finally:
        con.close()


def _corrected(rows, fixed=(3, 10, 17)):
    out = [dict(r) for r in rows]
    for i in fixed:  # the row's output was logged wrong; the corrected export has the right count
        out[i]["output_tokens"] += 100
    return out


def test_corrected_file_adds_only_its_changed_rows(tmp_path):
    """The issue's scenario, small: a CSV without request_id, then a corrected copy with a few rows fixed. The
    ledger holds the union of distinct rows (the fixed rows both ways: a fix is a new row; the old rows stay),
    priced as an independent calculation says, not the sum of both files."""
    rows = fault_rows(40)
    fixed = _corrected(rows)
    db = str(tmp_path / "u.duckdb")
    first = usage.ingest([("log.csv", _csv(rows))], db)
    assert (first.rows_priced, first.total_micro_usd) == (40, rows_micro(rows))
    second = usage.ingest([("log-corrected.csv", _csv(fixed))], db)
    assert (second.rows_read, second.rows_priced, second.rows_already_present, second.rows_rekeyed) == (40, 3, 37, 0)
    assert second.total_micro_usd == rows_micro([fixed[i] for i in (3, 10, 17)])
    assert _ledger(db) == (43, rows_micro(rows) + rows_micro([fixed[i] for i in (3, 10, 17)]))
    # the same rows again, in a file with other bytes (another row order, a trailing newline): nothing new
    third = usage.ingest([("again.csv", _csv(list(reversed(fixed))) + b"\n")], db)
    assert (third.rows_priced, third.rows_already_present) == (0, 40)
    assert _ledger(db)[0] == 43


def test_identical_requests_in_one_file_stay_distinct(tmp_path):
    rows = fault_rows(5)
    twice = rows + [rows[2], rows[2], rows[4]]  # the same request three times, another twice
    db = str(tmp_path / "u.duckdb")
    res = usage.ingest([("log.csv", _csv(twice))], db)
    assert (res.rows_priced, res.rows_already_present) == (8, 0)
    assert res.total_micro_usd == rows_micro(twice)
    # a later file holding the row once more than before: only the extra occurrence is new
    res2 = usage.ingest([("log2.csv", _csv(twice + [rows[4]]))], db)
    assert (res2.rows_priced, res2.rows_already_present) == (1, 8)
    assert _ledger(db) == (9, rows_micro(twice + [rows[4]]))


def test_a_different_map_finds_the_rows_under_the_other_key(tmp_path):
    """A file ingested without its id column mapped, then a corrected copy with ``--map request_id`` (and the
    other way round): the rows already there are counted as re-keyed, not added; existing keys are kept."""
    rows = fault_rows(12)
    fixed = _corrected(rows, fixed=(1,))
    for first_ids in (False, True):
        db = str(tmp_path / f"u{first_ids}.duckdb")
        a = usage.ingest([("a.csv", _csv(rows, with_id=first_ids))], db)
        assert a.rows_priced == 12
        b = usage.ingest([("b.csv", _csv(fixed, with_id=not first_ids))], db)
        assert (b.rows_priced, b.rows_already_present, b.rows_rekeyed) == (1, 11, 11)
        assert _ledger(db) == (13, rows_micro(rows) + rows_micro([fixed[1]]))
        con = duckdb.connect(db, read_only=True)
        keys = [k for (k,) in con.execute("SELECT row_key FROM ledger WHERE ingest_id = ?", [a.ingest_id]).fetchall()]
        con.close()
        assert all(k.startswith("req:") for k in keys) if first_ids else all(k.startswith("row:") for k in keys)


def test_keys_with_an_id_stay_id_keys(tmp_path):
    db = str(tmp_path / "u.duckdb")
    rows = fault_rows(6)
    usage.ingest([("a.csv", _csv(rows, with_id=True))], db)
    con = duckdb.connect(db, read_only=True)
    got = con.execute("SELECT row_key, content_key FROM ledger ORDER BY row_key").fetchall()
    con.close()
    assert [k for k, _ in got] == sorted(f"req:{r['request_id']}" for r in rows)
    assert all(c is None for _, c in got)  # an all-ids ledger stores no content keys (computed when needed)
    more = fault_rows(8)[6:]  # two new rows, and two already there by content
    res = usage.ingest([("b.csv", _csv(rows[:2] + more))], db)
    assert (res.rows_priced, res.rows_rekeyed) == (2, 2)
    con = duckdb.connect(db, read_only=True)
    got = con.execute("SELECT row_key, content_key FROM ledger WHERE row_key NOT LIKE 'req:%'").fetchall()
    con.close()
    assert len(got) == 2 and all(k == c and k.startswith("row:") and len(k.split(":")[1]) == 32 for k, c in got)


@settings(max_examples=8, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_ledger_is_the_multiset_union(tmp_path_factory, first, second):
    """Invariant: after ingesting two id-less files, each distinct row appears max(count in a, count in b) times."""
    from collections import Counter

    pool = fault_rows(6, seed=3)
    db = str(tmp_path_factory.mktemp("u") / "u.duckdb")
    usage.ingest([("a.csv", _csv([pool[i] for i in first]))], db)
    usage.ingest([("b.csv", _csv([pool[i] for i in second]))], db)
    ca, cb = Counter(first), Counter(second)
    want = [pool[i] for i in set(ca) | set(cb) for _ in range(max(ca[i], cb[i]))]
    assert _ledger(db) == (len(want), rows_micro(want))


def test_a_ledger_from_before_content_keys(tmp_path):
    """A ledger whose id-less rows carry the old ``file hash:row`` keys and no content key (as billshape wrote it
    before): its rows keep their keys, and a corrected copy of their file adds only the changed rows."""
    rows = fault_rows(20)
    fixed = _corrected(rows, fixed=(2, 9))
    db = str(tmp_path / "u.duckdb")
    usage.ingest([("log.csv", _csv(rows))], db)
    con = duckdb.connect(db)
    con.execute("UPDATE ledger SET row_key = file_hash || ':' || row_index, content_key = NULL")
    con.close()
    res = usage.ingest([("log-corrected.csv", _csv(fixed))], db)
    assert (res.rows_priced, res.rows_already_present, res.rows_rekeyed) == (2, 18, 18)
    assert _ledger(db) == (22, rows_micro(rows) + rows_micro([fixed[2], fixed[9]]))
    con = duckdb.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM ledger WHERE content_key IS NULL AND row_key LIKE file_hash || ':%'").fetchone() == (20,)
    con.close()


@pytest.mark.spark
def test_spark_keys_and_costs_identical_to_duckdb(tmp_path):
    """The content key on Spark is DuckDB's, to the hex digit (timestamps to the microsecond), and the corrected
    file adds the same rows on either engine."""
    import shutil

    import pyarrow.parquet as pq

    if shutil.which("java") is None:
        pytest.skip("no Java: Spark cannot run")
    rows = fault_rows(8)
    rows[5]["ts"] = rows[5]["ts"].replace(microsecond=123456)
    body = _csv(rows + [rows[1]]).replace(b"Z\n", b".000001Z\n", 1)  # one row at ...:00.000001
    body = body.replace(rows[5]["ts"].strftime("%Y-%m-%dT%H:%M:%SZ").encode(), rows[5]["ts"].strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode())
    fixed = _corrected(rows, fixed=(3,))
    got = {}
    for engine, db in (("duckdb", str(tmp_path / "u.duckdb")), ("spark", str(tmp_path / "spark"))):
        usage.ingest([("log.csv", body)], db, engine=engine)
        res = usage.ingest([("fixed.csv", _csv(fixed))], db, engine=engine)
        led = duckdb.connect(db, read_only=True).sql("SELECT row_key, content_key, usd_micro FROM ledger").fetchall() if engine == "duckdb" \
            else list(zip(*(pq.read_table(str(tmp_path / "spark" / "ledger")).column(c).to_pylist() for c in ("row_key", "content_key", "usd_micro"))))
        got[engine] = (res.rows_priced, res.rows_already_present, sorted(led))
    assert got["duckdb"] == got["spark"]
    assert got["duckdb"][0] >= 1 and len(got["duckdb"][2]) == 9 + got["duckdb"][0]


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["f1", "f2"]), st.sampled_from(["gpt-4o", "gpt-5"]), st.integers(0, 3)),
                min_size=1, max_size=40))
def test_content_key_occurrences_match_a_row_by_row_count(rows):
    """``engine._with_content_key`` numbers rows only where a hash repeats in its file: every key equals the one a
    plain count gives (0, 1, ... among the rows of the same file and the same hashed fields, in row order)."""
    import datetime as dt

    import ibis
    import pyarrow as pa

    from billshape.usage import engine as E
    from billshape.usage.schema import STAGE

    ts = dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc)
    recs = []
    for i, (fh, model, tokens) in enumerate(rows):
        r = {f.name: None for f in STAGE}
        r.update(file_hash=fh, row_index=i, row_key=f"{fh}:{i}", ts=ts, model=model, provider="openai", requests=1,
                 input_tokens=tokens, output_tokens=1)
        for f in STAGE:
            if pa.types.is_integer(f.type) and r[f.name] is None and f.name != "reported_usd_micro":
                r[f.name] = 0
        recs.append(r)
    t = ibis.memtable(pa.Table.from_pylist(recs, schema=STAGE))
    con = ibis.duckdb.connect()
    got = {r["row_index"]: r["k"] for r in con.to_pyarrow(E._with_content_key(t, "duckdb", "k").select("row_index", "k")).to_pylist()}
    hashes = {r["row_index"]: r["h"] for r in con.to_pyarrow(t.select("row_index", h=E.content_hash(t))).to_pylist()}
    seen: dict = {}
    for i, (fh, _, _) in enumerate(rows):
        n = seen.get((fh, hashes[i]), 0)
        seen[(fh, hashes[i])] = n + 1
        assert got[i] == f"row:{hashes[i]}:{n}"
    assert len(got) == len(rows)


def _stage_rows(n_extra: dict | None = None):
    import datetime as dt

    from billshape.usage.schema import STAGE

    r = {f.name: None for f in STAGE}
    r.update(file_hash="f" * 64, row_index=0, row_key="x", ts=dt.datetime(2025, 3, 1, 12, 0, 0, 250, tzinfo=dt.timezone.utc),
             provider="openai", model="gpt-4o|mini", requests=1, input_tokens=1200, cache_read_tokens=200, output_tokens=30,
             customer="acme", feature=None)
    for f in STAGE:
        if f.type == "int64" and r[f.name] is None and f.name != "reported_usd_micro":
            r[f.name] = 0
    r.update(n_extra or {})
    return r


@pytest.mark.parametrize("extra", [{}, {"cache_write_tokens": 50, "cache_write_1h_tokens": 20}])
def test_content_hash_is_the_documented_text(extra):
    """The content key's MD5 is of the text docs/usage.md describes, built here by hand (hashlib): the timestamp in
    microseconds, then each of CONTENT_KEY_FIELDS (strings length-prefixed, a null ``-``), joined by ``|``, then
    ``|name=value`` for each non-zero CONTENT_KEY_NONZERO_FIELDS field. A change in how the engine builds the text
    (a faster concatenation) must keep every stored key."""
    import datetime as dt
    import hashlib

    import ibis
    import pyarrow as pa

    from billshape.usage import engine as E
    from billshape.usage.schema import CONTENT_KEY_FIELDS, CONTENT_KEY_NONZERO_FIELDS, STAGE

    r = _stage_rows(extra)
    t = ibis.memtable(pa.Table.from_pylist([r], schema=STAGE))
    got = ibis.duckdb.connect().to_pyarrow(t.select(h=E.content_hash(t))).column("h")[0].as_py()

    def part(v):
        return "-" if v is None else f"{len(v)}:{v}" if isinstance(v, str) else str(v)

    epoch_us = (r["ts"] - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
    text = "|".join([str(epoch_us), *[part(r[f]) for f in CONTENT_KEY_FIELDS]])
    text += "".join(f"|{f}={r[f]}" for f in CONTENT_KEY_NONZERO_FIELDS if r.get(f))
    assert got == hashlib.md5(text.encode()).hexdigest()


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)), min_size=1, max_size=30))
def test_occurrence_matches_a_row_number(rows):
    """``_occurrence`` (numbering only the keys that repeat) gives each row its row_number among the rows with its
    key, in order, as a window over every row does."""
    import ibis
    import pyarrow as pa

    from billshape.usage import engine as E

    t = ibis.memtable(pa.table({"k": [k for k, _ in rows], "g": [g for _, g in rows], "pos": list(range(len(rows)))}))
    got = {r["pos"]: r["n"] for r in ibis.duckdb.connect().to_pyarrow(E._occurrence(t, ["k", "g"], ["pos"], "n")).to_pylist()}
    seen: dict = {}
    want = {}
    for pos, key in enumerate(rows):
        want[pos] = seen.get(key, 0)
        seen[key] = want[pos] + 1
    assert got == want
