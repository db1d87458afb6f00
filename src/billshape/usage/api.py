"""Measured economics from usage logs: ingest, report, unit economics, what-if, FOCUS export.

Every function takes a ``--db`` path and an ``engine`` (``duckdb`` or ``spark``) and runs the same Ibis
expressions on either. Money is integer micro-dollars in the ledger; results show USD as exact decimals
rounded to the micro-dollar (floats in JSON, with ``*_micro_usd`` integers beside them).
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Result, derived, user
from billshape.usage import engine as E
from billshape.usage import prices as P
from billshape.usage import readers as R
from billshape.usage.schema import FILES, MAPPABLE, MICRO, QUARANTINE, STAGE

FORMATS = ("otel", "openai", "raw", "csv", "parquet")
REPORT_BY = ("customer", "feature", "project", "user", "model", "provider", "day", "month")


def usd(micro: int | None) -> float:
    """Micro-dollars as a float USD (exact to the micro-dollar for any realistic total)."""
    return float(Decimal(int(micro or 0)) / MICRO)


def parse_map(items: Sequence[str] | None) -> dict[str, str]:
    """``COL=FIELD`` pairs into ``{COL: FIELD}``; FIELD must be one of :data:`MAPPABLE`."""
    out = {}
    for item in items or []:
        col, sep, fld = item.partition("=")
        if not sep or not col.strip() or fld.strip() not in MAPPABLE:
            raise BillshapeInputError("--map", item, "COL=FIELD with FIELD one of " + ", ".join(MAPPABLE))
        out[col.strip()] = fld.strip()
    return out


class IngestResult(Result):
    rows_read: int
    rows_priced: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int]
    total_usd: float
    total_micro_usd: int
    files_ingested: list[str]
    files_skipped: list[str]
    records_ignored: int
    engine: str
    ingest_id: str | None


def ingest(
    files: Sequence[str],
    db: str,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    engine: str = "duckdb",
    prices_csv: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> IngestResult:
    """Read, price and store usage logs, atomically and idempotently.

    Each file is identified by the SHA-256 of its content: a file already in the database is skipped.
    Rows are keyed by a natural id when the log has one (OTel trace/span id, response id, a mapped
    ``request_id``, OpenAI bucket coordinates) and by ``file hash : row`` otherwise; a key already in the
    ledger is quarantined as a duplicate. Everything lands in one transaction (DuckDB) or one manifest
    swap (Spark): an ingest stopped midway leaves the database as it was.

    Invariant: ``rows_read == rows_priced + rows_quarantined``.
    """
    if fmt is not None and fmt not in FORMATS:
        raise BillshapeInputError("--format", fmt, "one of " + ", ".join(FORMATS))
    mapping = mapping or {}
    for f in files:
        if not os.path.isfile(f):
            raise BillshapeInputError("FILES", f, "existing files")
    user_prices = P.read_user_prices(prices_csv)
    store = E.open_store(db, engine)
    ingest_id = uuid.uuid4().hex[:16]
    tmp = tempfile.mkdtemp(prefix="billshape-stage-")
    try:
        seen = {r["file_hash"] for r in store.frame(store.table("files").select("file_hash")).to_pylist()}
        bad_rows: list[dict] = []
        file_rows: list[dict] = []
        skipped: list[str] = []
        ignored = staged = 0
        stage_path = os.path.join(tmp, "stage.parquet")
        writer = pq.ParquetWriter(stage_path, STAGE)
        now = _dt.datetime.now(_dt.timezone.utc)
        for path in files:
            h = R.file_sha256(path)
            if h in seen:
                skipped.append(path)
                continue
            seen.add(h)
            n_file = 0
            for chunk in R.read(path, h, fmt, mapping):
                if chunk.batch is not None and chunk.batch.num_rows:
                    writer.write_batch(chunk.batch)
                    staged += chunk.batch.num_rows
                    n_file += chunk.batch.num_rows
                for b in chunk.bad:
                    bad_rows.append({"row_key": b.row_key, "file_hash": h, "source_file": os.path.basename(path),
                                     "row_index": b.row_index, "reason": b.reason, "detail": b.detail, "ingest_id": ingest_id})
                n_file += len(chunk.bad)
                ignored += chunk.ignored
                if progress:
                    progress(path, n_file)
            file_rows.append({"file_hash": h, "source_file": os.path.basename(path), "format": fmt or R.detect_format(path),
                              "rows_read": n_file, "ingest_id": ingest_id, "ingested_at": now})
        writer.close()
        n_read = staged + len(bad_rows)

        store.begin()
        try:
            stage = store.read_stage(stage_path)
            keys = store.frame(stage.select(pk=stage.provider, model=stage.model, day=stage.ts.date()).distinct()).to_pylist()
            ptable = P.price_table([(k["pk"], k["model"], k["day"]) for k in keys], user_prices)
            prices = store.register(f"_prices_{ingest_id}", ptable)
            ledger_keys = store.table("ledger").row_key
            ledger_new, quarantine_new = E.priced(stage, prices, ledger_keys, ingest_id)
            if staged:  # quarantine first: its duplicate test reads the ledger as it was before this ingest
                store.append("quarantine", quarantine_new)
                store.append("ledger", ledger_new)
            if bad_rows:
                store.append("quarantine", store.register(f"_bad_{ingest_id}", pa.Table.from_pylist(bad_rows, schema=QUARANTINE)))
            if file_rows:
                store.append("files", store.register(f"_files_{ingest_id}", pa.Table.from_pylist(file_rows, schema=FILES)))
            mine_l = store.table("ledger") if engine == "duckdb" else None
            # counts of this ingest (read back inside the transaction on DuckDB; from the written partitions on Spark)
            if engine == "duckdb":
                led = mine_l.filter(mine_l.ingest_id == ingest_id)
                q = store.table("quarantine")
                q = q.filter(q.ingest_id == ingest_id)
            else:
                led, q = _spark_partition(store, "ledger", ingest_id), _spark_partition(store, "quarantine", ingest_id)
            n_priced = int(store.scalar(led.count())) if led is not None else 0
            micro = int(store.scalar(led.usd_micro.sum()) or 0) if led is not None else 0
            reasons = Counter()
            if q is not None:
                for r in store.frame(q.group_by("reason").aggregate(n=q.count())).to_pylist():
                    reasons[_reason_class(r["reason"])] += int(r["n"])
            n_quar = sum(reasons.values())
            if n_priced + n_quar != n_read:  # the ledger's own invariant: refuse to commit if it fails
                raise RuntimeError(f"internal error: rows read {n_read} != priced {n_priced} + quarantined {n_quar}")
            store.commit(ingest_id)
        except BaseException:
            store.rollback(ingest_id)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        store.close()
    return IngestResult(
        rows_read=n_read, rows_priced=n_priced, rows_quarantined=n_quar, quarantine_reasons=dict(sorted(reasons.items())),
        total_usd=usd(micro), total_micro_usd=micro, files_ingested=[f["source_file"] for f in file_rows],
        files_skipped=skipped, records_ignored=ignored, engine=engine, ingest_id=ingest_id if file_rows else None,
        assumptions=[
            user("files", len(files), "files", "FILES"), user("engine", engine, None, "--engine"),
            Assumption(name="price source", value="genai-prices snapshot" + (f" + {prices_csv}" if prices_csv else ""), source=_genai_source(), as_of=None),
        ],
    )


def _spark_partition(store, name: str, ingest_id: str):
    root = os.path.join(store.path, name, f"ingest_id={ingest_id}")
    if not os.path.isdir(root):
        return None
    df = store.con._session.read.parquet(root)
    view = f"_{name}_{ingest_id}_new"
    df.createOrReplaceTempView(view)
    return store.con.table(view)


def _reason_class(reason: str) -> str:
    """Group reasons for the summary (``no price for model X`` keeps the model: it is the actionable part)."""
    if reason.startswith("invalid JSON"):
        return "invalid JSON"
    if reason.startswith("unreadable "):
        return reason.split(" from row")[0]
    return reason


def _genai_source() -> str:
    from genai_prices import __version__

    return f"genai-prices {__version__} (pydantic/genai-prices, bundled offline snapshot)"


# ------------------------------------------------------------------------------------------ reports

class ReportRow(Result):
    key: str
    requests: int
    input_tokens: int
    output_tokens: int
    usd: float
    usd_micro: int


class Report(Result):
    by: str
    rows: list[dict]
    total_usd: float
    total_micro_usd: int
    rows_quarantined: int


def _open(db: str, engine: str):
    return E.open_store(db, engine, read_only=True)


def report(db: str, by: str, engine: str = "duckdb") -> Report:
    """Spend attributed to customers, features, projects, users, models, providers, days or months."""
    if by not in REPORT_BY:
        raise BillshapeInputError("--by", by, "one of " + ", ".join(REPORT_BY))
    store = _open(db, engine)
    try:
        ledger = store.table("ledger")
        rows = store.frame(E.attribution(ledger, by)).to_pylist()
        nq = int(store.scalar(store.table("quarantine").count()))
    finally:
        store.close()
    out = [{"key": r["key"], "requests": int(r["requests"]), "input_tokens": int(r["input_tokens"]),
            "cache_read_tokens": int(r["cache_read_tokens"]), "output_tokens": int(r["output_tokens"]),
            "usd": usd(r["usd_micro"]), "usd_micro": int(r["usd_micro"])} for r in rows]
    micro = sum(r["usd_micro"] for r in out)
    return Report(by=by, rows=out, total_usd=usd(micro), total_micro_usd=micro, rows_quarantined=nq,
                  assumptions=[user("by", by, None, "--by"), derived("ledger", db, None, "priced usage rows")])


# ------------------------------------------------------------------------------------------ economics

class Economics(Result):
    """Measured unit economics: the inputs a scenario takes, from real usage."""

    requests: int
    total_usd: float
    total_micro_usd: int
    usd_per_request: float
    input_tokens_per_request: float
    output_tokens_per_request: float
    cache_hit_rate: float
    usd_per_million_tokens: float
    users: int
    users_from: str
    usd_per_user: float
    usd_per_user_per_month: float
    requests_per_user_per_month: float
    period_days: float
    first_ts: str | None
    last_ts: str | None
    model_shares: dict[str, float]


def economics(db: str, engine: str = "duckdb") -> Economics:
    """Cost per request, tokens per request, cost per user (per month) and the model mix, as measured."""
    store = _open(db, engine)
    try:
        ledger = store.table("ledger")
        t = store.frame(E.totals(ledger)).to_pylist()[0]
        mix = store.frame(E.attribution(ledger, "model")).to_pylist()
    finally:
        store.close()
    n = int(t["requests"] or 0)
    if n == 0:
        raise BillshapeInputError("--db", db, "a usage database with priced rows", "ingest some logs first")
    micro = int(t["usd_micro"] or 0)
    users, users_from = (int(t["users"]), "user_id") if t["users"] else (int(t["customers"]), "customer")
    users = max(users, 1) if (t["users"] or t["customers"]) else 0
    first, last = t["first_ts"], t["last_ts"]
    # a period of at least one day: a log of one afternoon is a day of usage, not 0.2 days
    days = max((last - first).total_seconds() / 86400.0, 1.0)
    months = days / (365.25 / 12)
    tokens = int(t["input_tokens"]) + int(t["output_tokens"])
    total = usd(micro)
    return Economics(
        requests=n, total_usd=total, total_micro_usd=micro, usd_per_request=total / n,
        input_tokens_per_request=int(t["input_tokens"]) / n, output_tokens_per_request=int(t["output_tokens"]) / n,
        cache_hit_rate=int(t["cache_read_tokens"]) / int(t["input_tokens"]) if int(t["input_tokens"]) else 0.0,
        usd_per_million_tokens=total / tokens * 1e6 if tokens else 0.0,
        users=users, users_from=users_from, usd_per_user=total / users if users else 0.0,
        usd_per_user_per_month=total / users / months if users else 0.0,
        requests_per_user_per_month=n / users / months if users else 0.0,
        period_days=days, first_ts=first.isoformat() if first else None, last_ts=last.isoformat() if last else None,
        model_shares={r["key"]: int(r["requests"]) / n for r in mix},
        assumptions=[
            derived("period", days, "days", "last - first request timestamp, at least 1 day"),
            derived("month", 365.25 / 12, "days", "Julian year / 12"),
            derived("users", users, "count", f"distinct {users_from} in the ledger"),
        ],
    )


# ------------------------------------------------------------------------------------------ what-if

class WhatIf(Result):
    baseline_usd: float
    whatif_usd: float
    delta_usd: float
    delta_pct: float
    routes: list[dict]
    cache_hit_rate: float | None
    baseline_micro_usd: int
    whatif_micro_usd: int


def parse_route(text: str) -> tuple[str, Decimal, str]:
    """``'FROM:SHARE->TO'`` (SHARE in [0, 1] or a percentage like ``40%``)."""
    allowed = "'FROM:SHARE->TO', e.g. 'gpt-4o:0.4->gpt-4o-mini'"
    left, arrow, to = text.partition("->")
    src, colon, share = left.rpartition(":")
    if not arrow or not colon or not src.strip() or not to.strip():
        raise BillshapeInputError("--route", text, allowed)
    try:
        s = Decimal(share.strip().rstrip("%")) / (100 if share.strip().endswith("%") else 1)
    except ArithmeticError:
        raise BillshapeInputError("--route", text, allowed) from None
    if not s.is_finite() or not 0 <= s <= 1:
        raise BillshapeInputError("--route", text, "SHARE in [0, 1] (or 0%-100%)")
    return src.strip(), s, to.strip()


def whatif(db: str, routes: Sequence[str] = (), cache_hit_rate: float | None = None, engine: str = "duckdb",
           prices_csv: str | None = None) -> WhatIf:
    """Re-price the measured usage: move a share of one model's requests to another, and/or set the
    cache hit rate (cache-read share of input tokens) of every request.

    Per request: cost = (1 - s) x cost(model, tokens') + s x cost(TO, tokens'), where s is the routed share
    of that request's model (0 if none) and tokens' are its tokens with ``cache_read = floor(R x input)``
    and cache writes capped to what is left, when a cache hit rate R is given. Same token counts on the
    new model (a simplification: tokenisers differ).
    """
    import ibis

    parsed = [parse_route(r) for r in routes]
    if len({p[0] for p in parsed}) != len(parsed):
        raise BillshapeInputError("--route", list(routes), "each FROM model at most once")
    if cache_hit_rate is not None:
        from billshape._validate import unit_interval

        unit_interval("--cache-hit-rate", cache_hit_rate)
    if not parsed and cache_hit_rate is None:
        raise BillshapeInputError("--route", None, "at least one --route or a --cache-hit-rate")
    user_prices = P.read_user_prices(prices_csv)
    store = _open(db, engine)
    try:
        ledger = store.table("ledger")
        models = {r["model"] for r in store.frame(ledger.select("model").distinct()).to_pylist()}
        for src, _, _ in parsed:
            if src not in models:
                from billshape.errors import unknown_name

                raise unknown_name("--route", src, models)
        base_micro = int(store.scalar(ledger.usd_micro.sum()) or 0)
        t = ledger
        if cache_hit_rate is not None:
            rate = ibis.literal(Decimal(str(cache_hit_rate)), type="decimal(18,9)")
            cr = (t.input_tokens.cast("decimal(18,0)") * rate).floor().cast("int64")
            t = t.mutate(cache_read_tokens=cr)
            t = t.mutate(cache_write_tokens=ibis.least(t.cache_write_tokens, t.input_tokens - t.cache_read_tokens))
        keys = store.frame(t.select(pk=t.provider, model=t.model, day=t.ts.date()).distinct()).to_pylist()
        days = sorted({k["day"] for k in keys})
        # the ledger's own models at the re-split tokens, and each TO model on the days of its FROM rows
        j = t.mutate(_day=t.ts.date())
        if cache_hit_rate is None:  # the ledger's own costs, exactly as billed
            j = j.mutate(_own=j.usd_micro)
        else:  # re-price every row at its own model's price with the new token split
            own = P.price_table([(k["pk"], k["model"], k["day"]) for k in keys], user_prices)
            errors = sorted({e for e in own.column("price_error").to_pylist() if e})
            if errors:
                raise BillshapeInputError("--prices", prices_csv, "a price for every model in the ledger (the one used at ingest)", errors[0])
            own_t = store.register("_wi_own", own)
            j = j.mutate(_pk=j.provider.coalesce(""))
            j = j.left_join(own_t, [j._pk == own_t.provider_key, j.model == own_t.model, j._day == own_t.day])
            j = j.select(*[c for c in j.columns if not c.endswith("_right")])
            j = j.mutate(_own=sum(E.cost_columns(j).values()))
        total_expr = {"own": j._own.sum()}
        route_out = []
        for i, (src, share, to) in enumerate(parsed):
            prov, _, model = to.rpartition("/")
            rows = [(R.provider_key(prov) if prov else None, model, d) for d in days]
            pt = P.price_table(rows, user_prices)
            errors = {e for e in pt.column("price_error").to_pylist() if e}
            if errors:
                raise BillshapeInputError("--route", to, "a model with a price (genai-prices or --prices)", sorted(errors)[0])
            pt = pt.rename_columns([f"r{i}_{c}" for c in pt.column_names])
            rt = store.register(f"_wi_r{i}", pt)
            sub = j.filter(j.model == src)
            sub = sub.left_join(rt, sub._day == rt[f"r{i}_day"])
            rc = E.cost_columns(sub, prefix=f"r{i}_")
            sub = sub.mutate(_to=sum(rc.values()))
            agg = store.frame(sub.aggregate(own=sub._own.sum(), to=sub._to.sum(), n=sub.requests.sum())).to_pylist()[0]
            route_out.append({"from": src, "share": float(share), "to": to, "requests_moved": float(share * int(agg["n"] or 0)),
                              "from_usd": usd(agg["own"]), "to_usd_if_all": usd(agg["to"]),
                              "_own": int(agg["own"] or 0), "_to": int(agg["to"] or 0), "_share": share})
        own_total = int(store.scalar(total_expr["own"]) or 0)
    finally:
        store.close()
    total = Decimal(own_total)
    for r in route_out:
        total += r["_share"] * (r["_to"] - r["_own"])
    new_micro = int(total.to_integral_value(rounding=ROUND_HALF_UP))
    for r in route_out:
        for k in ("_own", "_to", "_share"):
            r.pop(k)
    delta = new_micro - base_micro
    return WhatIf(
        baseline_usd=usd(base_micro), whatif_usd=usd(new_micro), delta_usd=usd(delta),
        delta_pct=100.0 * delta / base_micro if base_micro else 0.0, routes=route_out, cache_hit_rate=cache_hit_rate,
        baseline_micro_usd=base_micro, whatif_micro_usd=new_micro,
        assumptions=[*(user("route", r, None, "--route") for r in routes)]
        + ([user("cache hit rate", cache_hit_rate, "fraction of input tokens", "--cache-hit-rate")] if cache_hit_rate is not None else [])
        + [Assumption(name="prices", value="genai-prices snapshot" + (f" + {prices_csv}" if prices_csv else ""), source=_genai_source(), as_of=None)],
    )
