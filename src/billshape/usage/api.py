"""Measured economics from usage logs: ingest, report, unit economics, what-if, FOCUS export.

Every function takes a ``db`` path and an ``engine`` (``duckdb`` or ``spark``) and runs the same Ibis
expressions on either. Money is integer micro-dollars in the ledger; results show USD as exact decimals
rounded to the micro-dollar (floats in JSON, with ``*_micro_usd`` integers beside them).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Result, derived, user
from billshape.usage import engine as E
from billshape.usage import prices as P
from billshape.usage import rates as rates_mod
from billshape.usage import readers as R
from billshape.usage import sources as S
from billshape.usage.schema import DUPLICATE, FILES, MAPPABLE, MICRO, QUARANTINE, REKEYED, STAGE
from billshape.usage.staging import stage_folder

FORMATS = R.FORMATS  # otel, openai, raw, csv, parquet and the connectors (connectors.py)
REPORT_BY = ("customer", "feature", "project", "user", "model", "provider", "day", "month")


def usd(micro: int | None) -> float:
    """Micro-dollars as a float USD (exact to the micro-dollar for any realistic total)."""
    return float(Decimal(int(micro or 0)) / MICRO)


def parse_map(items: Sequence[str] | None) -> dict[str, str]:
    """``COL=FIELD`` pairs into ``{COL: FIELD}``; FIELD must be one of :data:`MAPPABLE` (errors name
    ``mapping[i]``, the ingest's field)."""
    out = {}
    for i, item in enumerate(items or []):
        col, sep, fld = item.partition("=") if isinstance(item, str) else ("", "", "")
        if not sep or not col.strip() or fld.strip() not in MAPPABLE:
            raise BillshapeInputError(f"mapping[{i}]", item, "COL=FIELD with FIELD one of " + ", ".join(MAPPABLE))
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
    rows_already_present: int = 0
    rows_rekeyed: int = 0


def ingest(
    files: Sequence[Any],
    db: str,
    *,
    fmt: str | None = None,
    mapping: dict[str, str] | Sequence[str] | None = None,
    engine: str | None = None,
    prices_csv: str | None = None,
    progress: Callable[[str, int], None] | None = None,
    self_hosted: Sequence[str] | None = None,
) -> IngestResult:
    """Read, price and store usage logs, atomically and idempotently.

    ``files``: each a path, bytes, a binary file object, or a ``(name, bytes | file object)`` pair
    (:mod:`billshape.usage.sources`); in-memory inputs are capped at 20 MB and go by their name (for the format
    and the ledger's ``source_file``). ``mapping``: ``{COL: FIELD}`` or ``COL=FIELD`` strings (:func:`parse_map`).

    Each file is identified by the SHA-256 of its content: a file already in the database is skipped.
    Rows are keyed by a natural id when the log has one (OTel trace/span id, response id, a mapped
    ``request_id``, OpenAI bucket coordinates) and by their content otherwise (``row:<hash of the normalised
    fields and timestamp>:<occurrence among identical rows of the file>``, :func:`billshape.usage.engine.keyed`):
    a corrected copy of a file adds only its changed and new rows. A key already in the ledger, or a content key
    already there under the other kind of key (a re-ingest with a different ``--map``), is quarantined as a
    duplicate (``rows_already_present``, of which ``rows_rekeyed``); rows of the ledger are never rewritten. Everything lands in one transaction (DuckDB) or one manifest
    swap (Spark): an ingest stopped midway leaves the database as it was.

    Prices: ``prices_csv`` (a user price table) and ``self_hosted`` (``NAME=MODEL@GPUxN:PRECISION:USD_PER_GPU_HOUR``
    or mapping files: the serving model's $/token, one call per mapping) win over genai-prices.

    Invariant: ``rows_read == rows_priced + rows_quarantined``.
    """
    engine_used = _engine_assumption(engine)
    engine = engine or E.DEFAULT_ENGINE
    if fmt is not None and fmt not in FORMATS:
        raise BillshapeInputError("format", fmt, "one of " + ", ".join(FORMATS))
    mapping = parse_map(mapping) if mapping is not None and not isinstance(mapping, dict) else mapping or {}
    inputs = S.log_inputs(files)
    user_prices = _user_prices(prices_csv, self_hosted)
    window = P.plausible_window()
    store = E.open_store(db, engine)
    ingest_id = uuid.uuid4().hex[:16]
    with stage_folder() as tmp:  # removed however the ingest ends (SIGTERM too); stale ones first
        try:
            seen = {r["file_hash"] for r in store.frame(store.table("files").select("file_hash")).to_pylist()}
            bad_rows: list[dict] = []
            file_rows: list[dict] = []
            skipped: list[str] = []
            ignored = staged = 0
            stage_path = os.path.join(tmp, "stage" + store.stage_suffix)
            writer = store.stage_writer(stage_path, STAGE)
            now = _dt.datetime.now(_dt.timezone.utc)
            for i, item in enumerate(inputs):
                item = S.spool(item, tmp, i)  # an in-memory input: a file of its name in the staging folder
                path = item.path
                h = R.file_sha256(path)
                if h in seen:
                    skipped.append(item.given)
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
                        progress(item.given, n_file)
                file_rows.append({"file_hash": h, "source_file": os.path.basename(path), "format": fmt or R.detect_format(path),
                                  "rows_read": n_file, "ingest_id": ingest_id, "ingested_at": now})
            writer.close()
            n_read = staged + len(bad_rows)

            store.begin()
            try:
                stage = store.read_stage(stage_path)
                day_tokens = _fleet_day_tokens(store, stage, user_prices)
                prices = _rates(store, stage, user_prices, window, day_tokens, f"_prices_{ingest_id}")
                fleet_notes = _fleet_assumptions(user_prices, day_tokens)
                ledger = store.table("ledger")
                idless = tuple(bool(store.scalar(x)) for x in E.needs_content_keys(stage, ledger))
                ledger_new, quarantine_new = E.priced(stage, prices, ledger, ingest_id, cache=store.cache, engine=engine, idless=idless)
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
            store.close()
    return IngestResult(
        rows_read=n_read, rows_priced=n_priced, rows_quarantined=n_quar, quarantine_reasons=dict(sorted(reasons.items())),
        total_usd=usd(micro), total_micro_usd=micro, files_ingested=[f["source_file"] for f in file_rows],
        files_skipped=skipped, records_ignored=ignored, engine=engine, ingest_id=ingest_id if file_rows else None,
        rows_already_present=reasons.get(DUPLICATE, 0) + reasons.get(REKEYED, 0), rows_rekeyed=reasons.get(REKEYED, 0),
        assumptions=[
            user("files", len(inputs), "files", "FILES"), engine_used,
            *_price_assumptions(prices_csv, user_prices), *fleet_notes, P.window_assumption(window),
        ],
    )


def _rates(store, stage, user_prices: dict, window, day_tokens: dict | None, name: str):
    """The stage's rate table (:func:`billshape.usage.rates.rate_table`), registered in the store as ``name``: one
    price look-up per distinct ``(provider, model, UTC day)``, one row per service tier of it in the stage."""
    keys = store.frame(stage.select(pk=stage.provider, model=stage.model, day=stage.ts.date(),
                                    tier=stage.service_tier).distinct()).to_pylist()
    days = list(dict.fromkeys((k["pk"], k["model"], k["day"]) for k in keys))
    ptable = P.price_table(days, user_prices, window, day_tokens)
    return store.register(name, rates_mod.rate_table(ptable, [(k["pk"], k["model"], k["day"], k["tier"]) for k in keys]))


def _fleet_day_tokens(store, stage, user_prices: dict) -> dict | None:
    """Output tokens per ``(provider, model, day)`` of the staged rows, when a self-hosted mapping is a fleet
    (its rent is spread over them); ``None`` otherwise (no extra pass)."""
    if not any(up.fleet is not None for up in user_prices.values()):
        return None
    g = stage.group_by(pk=stage.provider, model=stage.model, day=stage.ts.date()).aggregate(out=stage.output_tokens.sum())
    return {(r["pk"] or "", r["model"], r["day"]): int(r["out"] or 0) for r in store.frame(g).to_pylist()}


def _fleet_assumptions(user_prices: dict, day_tokens: dict | None) -> list[Assumption]:
    """Per fleet mapping: its rent and the utilization measured over the days it served (tokens / capacity)."""
    out = []
    for (prov, name), up in sorted(user_prices.items()):
        if up.fleet is None or day_tokens is None:
            continue
        days = {d: n for (pk, m, d), n in day_tokens.items() if m.lower() == name and (not prov or pk.lower() == prov)}
        tokens = sum(days.values())
        cap = up.fleet["output_tokens_per_second"] * P.DAY_SECONDS * max(len(days), 1)
        out.append(Assumption(name=f"self-hosted fleet {name}", value=f"${up.fleet['usd_per_hour'] * 24:,.2f}/day rent",
                              unit="USD per day", source=up.source, as_of=None))
        out.append(Assumption(name=f"self-hosted fleet {name} utilization", value=tokens / cap if days else None,
                              unit="output tokens served / capacity",
                              source=f"computed: {tokens:,} output tokens over {len(days)} UTC day(s) / "
                                     f"({up.fleet['output_tokens_per_second']:,.0f} tokens/s x 86,400 s per day)",
                              as_of=None))
    return out


def _default(name: str, value, field: str) -> Assumption:
    """A default the user did not set (a software choice, not a catalog figure); ``field`` names the input."""
    return Assumption(name=name, value=value, unit=None, source=f"billshape default ({field} {value})", as_of=None)


def _engine_assumption(engine: str | None) -> Assumption:
    """The engine: the user's ``engine``, or the default one (labelled as such)."""
    return _default("engine", E.DEFAULT_ENGINE, "engine") if engine is None else user("engine", engine, None, "engine")


def _user_prices(prices_csv: str | None, self_hosted: Sequence[str] | None) -> dict:
    """The user price table and the serving model's self-hosted prices (a model in both is an error)."""
    table = P.read_user_prices(prices_csv)
    hosted = P.read_self_hosted(list(self_hosted or []))
    both = sorted(set(table) & set(hosted))
    if both:
        raise BillshapeInputError("self_hosted", "/".join(both[0]).lstrip("/"), "a model not also in `prices`", f"it is priced in {prices_csv}")
    return {**table, **hosted}


def _price_assumptions(prices_csv: str | None, user_prices: dict) -> list[Assumption]:
    from billshape.usage.pricedata import price_data_assumption

    out = [price_data_assumption(prices_csv)]  # dated: --snapshot, staleness warnings
    for (prov, name), up in sorted(user_prices.items()):
        if up.source.startswith("billshape serving model") and up.fleet is None:
            out.append(Assumption(name=f"self-hosted price of {name}", value=f"${up.input_mtok}/M input, ${up.output_mtok}/M output",
                                  unit="USD per million tokens", source=up.source, as_of=None))
    return out


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
    if reason.startswith("timestamp ") and " outside the plausible window " in reason:  # the date is per row
        return "timestamp outside" + reason.split(" outside", 1)[1]
    return reason


def _genai_source() -> str:
    from genai_prices import __version__

    return f"genai-prices {__version__} (pydantic/genai-prices, bundled offline snapshot)"


# ------------------------------------------------------------------------------------------ reprice

class RepriceResult(Result):
    rows_considered: int
    rows_repriced: int
    rows_still_quarantined: int
    quarantine_reasons: dict[str, int]
    repriced_usd: float
    repriced_micro_usd: int
    rows_priced_total: int
    rows_quarantined_total: int
    rows_read_total: int
    engine: str
    reprice_id: str | None


def reprice(db: str, *, engine: str | None = None, prices_csv: str | None = None,
            self_hosted: Sequence[str] | None = None) -> RepriceResult:
    """Price quarantined rows that now have a price (a new ``prices``/``self_hosted``, a newer genai-prices).

    Only rows quarantined for want of a price are considered (they keep their record); unreadable rows and
    duplicates stay. The considered rows go through the same pricing and duplicate test as an ingest
    (a row whose key has reached the ledger since is a duplicate); in one transaction (DuckDB) or manifest
    swap (Spark) they move to the ledger or back to the quarantine with their new reason.

    Invariants, checked before commit: ``rows_considered == rows_repriced + rows_still_quarantined`` and,
    over the whole database, rows priced + rows quarantined = rows read (the ``files`` table).
    """
    engine_used = _engine_assumption(engine)
    engine = engine or E.DEFAULT_ENGINE
    user_prices = _user_prices(prices_csv, self_hosted)
    if engine == "duckdb" and not os.path.exists(db) or engine == "spark" and not os.path.isdir(db):
        raise BillshapeInputError("db", db, "an existing usage database (run `billshape usage ingest` first)")
    window = P.plausible_window()
    store = E.open_store(db, engine)
    rid = "r" + uuid.uuid4().hex[:15]
    try:
        store.begin()
        try:
            q = store.table("quarantine")
            ledger = store.table("ledger")
            n_before = int(store.scalar(q.count())) + int(store.scalar(ledger.count()))
            read_total = int(store.scalar(store.table("files").rows_read.sum()) or 0)
            cand = q.filter(E.repriceable(q))
            n_cand = int(store.scalar(cand.count()))
            n_priced = micro = 0
            reasons: Counter = Counter()
            if n_cand:
                stage = E.as_stage(cand)
                prices = _rates(store, stage, user_prices, window, None, f"_prices_{rid}")
                ledger_new, quarantine_new = E.priced(stage, prices, ledger, rid, cache=store.cache, engine=engine)
                for r in store.frame(quarantine_new.group_by("reason").aggregate(n=quarantine_new.count())).to_pylist():
                    reasons[_reason_class(r["reason"])] += int(r["n"])
                # the new quarantine (evaluated now, against the ledger as it was), then the ledger rows
                store.replace("quarantine", q.filter(~E.repriceable(q)).select(*QUARANTINE.names)
                              .union(quarantine_new.select(*QUARANTINE.names)), rid)
                store.append("ledger", ledger_new)
                led = store.table("ledger") if engine == "duckdb" else _spark_partition(store, "ledger", rid)
                if led is not None and engine == "duckdb":
                    led = led.filter(led.ingest_id == rid)
                n_priced = int(store.scalar(led.count())) if led is not None else 0
                micro = int(store.scalar(led.usd_micro.sum()) or 0) if led is not None else 0
            n_quar_new = sum(reasons.values())
            n_q_after = store.pending_count("quarantine")
            n_l_after = int(store.scalar(store.table("ledger").count())) if engine == "duckdb" else \
                int(store.scalar(ledger.count())) + n_priced
            if n_priced + n_quar_new != n_cand or n_q_after + n_l_after != n_before or n_before != read_total:
                raise RuntimeError(f"internal error: reprice would break rows read = priced + quarantined "
                                   f"({n_cand} considered, {n_priced} priced, {n_quar_new} re-quarantined; "
                                   f"{n_before} rows before, {n_q_after + n_l_after} after, {read_total} read)")
            if n_cand:
                store.commit(rid)
            else:
                store.rollback(rid)
        except BaseException:
            store.rollback(rid)
            raise
    finally:
        store.close()
    return RepriceResult(
        rows_considered=n_cand, rows_repriced=n_priced, rows_still_quarantined=n_quar_new,
        quarantine_reasons=dict(sorted(reasons.items())), repriced_usd=usd(micro), repriced_micro_usd=micro,
        rows_priced_total=n_l_after, rows_quarantined_total=n_q_after, rows_read_total=read_total, engine=engine,
        reprice_id=rid if n_cand else None,
        assumptions=[engine_used, *_price_assumptions(prices_csv, user_prices), P.window_assumption(window)],
    )


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
    hints: list[str] = []
    #: The cost the sources themselves reported (LiteLLM spend, Langfuse cost, OTel cost attributes), over the rows
    #: that carry one, beside billshape's price of the same rows: ``{rows, reported_usd, reported_micro_usd, usd,
    #: micro_usd}``; None when no row carries one.
    reported_cost: dict | None = None


#: the share of spend under "(none)" from which a customer report says how to attribute it
UNATTRIBUTED_HINT_SHARE = 0.5


def attribution_hints(by: str, rows: list[dict]) -> list[str]:
    """Advice for a report whose spend is mostly unattributed (no customer on the rows).

    An OpenAI usage export has no customer field, so all its spend lands under ``(none)``; its ``project_id``
    usually is the customer, and ``--map project_id=customer`` at ingest says so.
    """
    total = sum(r["usd_micro"] for r in rows)
    none = sum(r["usd_micro"] for r in rows if r["key"] == "(none)")
    if by != "customer" or total <= 0 or none < UNATTRIBUTED_HINT_SHARE * total:
        return []
    share = "all" if none == total else f"{none / total:.0%}"
    return [f"{share} of the spend has no customer: ingest again with --map COL=customer naming the column that "
            "holds it; for an OpenAI usage export, --map project_id=customer maps OpenAI projects to customers"]


def _open(db: str, engine: str | None):
    return E.open_store(db, engine, read_only=True)


def report(db: str, by: str | None = None, engine: str | None = None) -> Report:
    """Spend attributed to customers, features, projects, users, models, providers, days or months
    (``by`` None: the default, customer)."""
    by_used = _default("by", REPORT_BY[0], "by") if by is None else user("by", by, None, "by")
    by = by or REPORT_BY[0]
    if by not in REPORT_BY:
        raise BillshapeInputError("by", by, "one of " + ", ".join(REPORT_BY))
    store = _open(db, engine)
    try:
        ledger = store.table("ledger")
        rows = store.frame(E.attribution(ledger, by)).to_pylist()
        rep = store.frame(E.reported_totals(ledger)).to_pylist()[0]
        nq = int(store.scalar(store.table("quarantine").count()))
    finally:
        store.close()
    out = [{"key": r["key"], "requests": int(r["requests"]), "input_tokens": int(r["input_tokens"]),
            "cache_read_tokens": int(r["cache_read_tokens"]), "output_tokens": int(r["output_tokens"]),
            "usd": usd(r["usd_micro"]), "usd_micro": int(r["usd_micro"]),
            "reported_usd_micro": None if r["reported_usd_micro"] is None else int(r["reported_usd_micro"])} for r in rows]
    micro = sum(r["usd_micro"] for r in out)
    reported = None
    if int(rep["rows"] or 0):
        reported = {"rows": int(rep["rows"]), "reported_usd": usd(rep["reported_usd_micro"]),
                    "reported_micro_usd": int(rep["reported_usd_micro"]), "usd": usd(rep["usd_micro"]), "micro_usd": int(rep["usd_micro"])}
    return Report(by=by, rows=out, total_usd=usd(micro), total_micro_usd=micro, rows_quarantined=nq,
                  hints=attribution_hints(by, out), reported_cost=reported, assumptions=[by_used, derived("ledger", db, None, "priced usage rows")])


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
    visible_output_tokens_per_request: float
    reasoning_multiplier: float
    routes: list[dict]


def economics(db: str, engine: str | None = None) -> Economics:
    """Cost per request, tokens per request, cost per user (per month) and the model mix, as measured."""
    store = _open(db, engine)
    try:
        ledger = store.table("ledger")
        t = store.frame(E.totals(ledger)).to_pylist()[0]
        mix = store.frame(E.attribution(ledger, "model")).to_pylist()
        by_source = store.frame(E.model_mix(ledger)).to_pylist()
    finally:
        store.close()
    n = int(t["requests"] or 0)
    if n == 0:
        raise BillshapeInputError("db", db, "a usage database with priced rows", "ingest some logs first")
    micro = int(t["usd_micro"] or 0)
    users, users_from = (int(t["users"]), "user_id") if t["users"] else (int(t["customers"]), "customer")
    users = max(users, 1) if (t["users"] or t["customers"]) else 0
    first, last = t["first_ts"], t["last_ts"]
    # a period of at least one day: a log of one afternoon is a day of usage, not 0.2 days
    days = max((last - first).total_seconds() / 86400.0, 1.0)
    months = days / (365.25 / 12)
    tokens = int(t["input_tokens"]) + int(t["output_tokens"])
    total = usd(micro)
    out_tok, reasoning = int(t["output_tokens"]), int(t["reasoning_tokens"])
    visible = out_tok - reasoning
    # billed output / visible output (the scenario's reasoning_multiplier, at most 1000); all-reasoning output
    # (no visible tokens) is kept as visible output with multiplier 1
    rho = min(out_tok / visible, 1000.0) if visible > 0 else 1.0
    visible_per_request = (visible if visible > 0 else out_tok) / n
    routes = [_route(r, n) for r in by_source]
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
        visible_output_tokens_per_request=visible_per_request, reasoning_multiplier=rho, routes=routes,
        assumptions=[
            derived("period", days, "days", "last - first request timestamp, at least 1 day"),
            derived("month", 365.25 / 12, "days", "Julian year / 12"),
            derived("users", users, "count", f"distinct {users_from} in the ledger"),
        ],
    )


def _route(r: dict, n: int) -> dict:
    """A measured serving route: its share of requests and how it is priced (genai-prices name, or measured $/M)."""
    src = r["price_source"] or ""
    out = {"model": r["model"], "share": int(r["requests"]) / n, "requests": int(r["requests"]), "price_source": src,
           "usd": usd(sum(int(r[c] or 0) for c in E.COST_FIELDS))}
    if src.startswith("genai-prices"):
        out["api"] = {"model": r["model"], "provider": (r["price_model"] or "").split("/")[0] or None}
    else:  # a user price table or the serving model: the $/M the ledger charged
        inp, cr, cw, o = (int(r[k]) for k in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens"))
        hosted = {}
        if inp - cr > 0:
            hosted["usd_per_million_input_tokens"] = (int(r["usd_micro_input"]) + int(r["usd_micro_cache_write"])) / (inp - cr)
        if cr > 0:
            hosted["usd_per_million_cached_input_tokens"] = int(r["usd_micro_cache_read"]) / cr
        if o > 0:
            hosted["usd_per_million_output_tokens"] = int(r["usd_micro_output"]) / o
        hosted.setdefault("usd_per_million_input_tokens", hosted.get("usd_per_million_cached_input_tokens", 0.0))
        hosted.setdefault("usd_per_million_output_tokens", 0.0)
        out["self_hosted"] = hosted
    return out


def _rounded_shares(shares: list[float], digits: int = 6) -> list[float]:
    """Shares rounded to ``digits`` that sum to exactly 1 (the largest absorbs the rounding)."""
    r = [round(x, digits) for x in shares]
    if r:
        i = max(range(len(r)), key=lambda k: r[k])
        r[i] = round(1.0 - sum(x for k, x in enumerate(r) if k != i), digits)
    return r


def scenario_fragment(econ: Economics) -> dict:
    """The measured unit economics as a scenario fragment (the scenario schema's exact keys).

    ``product``: requests_per_user_month, input_tokens_per_request, output_tokens_per_request (visible),
    reasoning_multiplier, cache_hit_rate; ``serving.routes``: one route per model (and price source) with its
    share of requests: ``api: {model, provider}`` when genai-prices priced it, else ``self_hosted:`` with the
    $/M input, cached-input and output tokens the ledger charged. Merge it into a scenario with
    :func:`merge_scenario` (or by hand).
    """
    def r9(x: float) -> float:
        return float(f"{x:.9g}")

    shares = _rounded_shares([r["share"] for r in econ.routes])
    names = Counter(r["model"] for r in econ.routes)
    routes = []
    for r, share in zip(econ.routes, shares):
        name = r["model"] if names[r["model"]] == 1 else f"{r['model']} ({r['price_source']})"
        route = {"name": name, "share": share}
        if "api" in r:
            route["api"] = {k: v for k, v in r["api"].items() if v is not None}
        else:
            route["self_hosted"] = {k: r9(v) for k, v in r["self_hosted"].items()}
        routes.append(route)
    return {
        "product": {
            "requests_per_user_month": r9(econ.requests_per_user_per_month),
            "input_tokens_per_request": r9(econ.input_tokens_per_request),
            "output_tokens_per_request": r9(econ.visible_output_tokens_per_request),
            "reasoning_multiplier": r9(econ.reasoning_multiplier),
            "cache_hit_rate": r9(econ.cache_hit_rate),
        },
        "serving": {"routes": routes},
    }


def merge_scenario(base: dict, fragment: dict) -> dict:
    """A scenario with a measured fragment merged in: the fragment's ``product`` keys override the base's,
    its ``serving.routes`` replace the base's routes (other keys of the base are kept)."""
    import copy

    out = copy.deepcopy(base)
    out.setdefault("product", {}).update(copy.deepcopy(fragment.get("product", {})))
    if "serving" in fragment:
        out.setdefault("serving", {})["routes"] = copy.deepcopy(fragment["serving"]["routes"])
    return out


def dropped_route_costs(base: dict, fragment: dict) -> list[dict]:
    """The base scenario's routes that :func:`merge_scenario` replaces and that carried deployment costs
    (``self_hosted.setup_usd``, ``self_hosted.fixed_monthly_usd``): ``[{"route", "setup_usd", "fixed_monthly_usd"}]``
    (only the keys present). The merged plan no longer has those costs; say so rather than lose them silently."""
    if "serving" not in fragment:
        return []
    out = []
    routes = ((base.get("serving") or {}).get("routes") or []) if isinstance(base.get("serving"), dict) else []
    for i, r in enumerate(routes):
        hosted = r.get("self_hosted") if isinstance(r, dict) else None
        if not isinstance(hosted, dict):
            continue
        costs = {k: hosted[k] for k in ("setup_usd", "fixed_monthly_usd") if k in hosted}
        if costs:
            out.append({"route": r.get("name") or f"serving.routes[{i}]", **costs})
    return out


def dropped_costs_text(dropped: list[dict]) -> str:
    """One sentence naming the replaced routes' deployment costs (:func:`dropped_route_costs`), which the merged
    plan no longer has."""
    import json

    def value(x) -> str:  # a number, or a distribution as the scenario wrote it
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return f"{x:,.10g}"
        return json.dumps(x, separators=(", ", ": ")) if isinstance(x, (dict, list)) else str(x)

    parts = [f"'{d['route']}' (" + ", ".join(f"{k} {value(d[k])}" for k in ("setup_usd", "fixed_monthly_usd") if k in d)
             + ")" for d in dropped]
    return ("the measured routes replace the scenario's; these deployment costs are not in the merged plan: "
            + "; ".join(parts) + ". Add them under a measured self-hosted route if they still apply.")


def fragment_yaml(fragment: dict, econ: Economics, db: str) -> str:
    """The fragment as YAML, with a comment saying what it was measured from."""
    import yaml

    head = (f"# Measured by `billshape usage economics --db {os.path.basename(db)}`: {econ.requests:,} requests, "
            f"{econ.users} users (distinct {econ.users_from}),\n# {econ.period_days:.2f} days from {econ.first_ts} to "
            f"{econ.last_ts}; ${econ.total_usd:,.6f} in all.\n# Merge into a scenario: product keys override, "
            "serving.routes replace (billshape.usage.merge_scenario).\n")
    return head + yaml.safe_dump(fragment, sort_keys=False, default_flow_style=None, width=120)


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


def parse_route(text: str, field: str = "routes") -> tuple[str, Decimal, str]:
    """``'FROM:SHARE->TO'`` (SHARE in [0, 1] or a percentage like ``40%``); errors name ``field``."""
    allowed = "'FROM:SHARE->TO', e.g. 'gpt-4o:0.4->gpt-4o-mini'"
    if not isinstance(text, str):
        raise BillshapeInputError(field, text, allowed)
    left, arrow, to = text.partition("->")
    src, colon, share = left.rpartition(":")
    if not arrow or not colon or not src.strip() or not to.strip():
        raise BillshapeInputError(field, text, allowed)
    try:
        s = Decimal(share.strip().rstrip("%")) / (100 if share.strip().endswith("%") else 1)
    except ArithmeticError:
        raise BillshapeInputError(field, text, allowed) from None
    if not s.is_finite() or not 0 <= s <= 1:
        raise BillshapeInputError(field, text, "SHARE in [0, 1] (or 0%-100%)")
    return src.strip(), s, to.strip()


#: the finest cache hit rate the what-if resolves (its rate is a decimal(18, 9)); a rate in (0, 1e-9) is refused
RATE_STEP = Decimal("1e-9")
RATE_ALLOWED = "0, or a fraction in [1e-9, 1] (rates are resolved to 9 decimals)"


def check_cache_hit_rate(value, field: str = "cache_hit_rate") -> tuple[float, Decimal]:
    """``cache_hit_rate`` checked: a finite number that is 0 or in [1e-9, 1] (NaN, infinities, negatives, values
    above 1 and subnormal-small ones like 1e-320 are errors naming ``field``); returns it as a float (-0.0 as 0.0)
    and the Decimal rate used, rounded half-even to 9 decimals (1/3 is used as 0.333333333)."""
    try:
        x = float(value) if not isinstance(value, (bool, bytes)) else math.nan
    except (TypeError, ValueError, OverflowError):
        x = math.nan
    if not math.isfinite(x) or not (x == 0 or float(RATE_STEP) <= x <= 1):
        raise BillshapeInputError(field, value, RATE_ALLOWED)
    x += 0.0  # -0.0 is 0
    return x, Decimal(repr(x)).quantize(RATE_STEP, rounding=ROUND_HALF_EVEN)


def whatif(db: str, routes: Sequence[str] = (), cache_hit_rate: float | None = None, engine: str | None = None,
           prices_csv: str | None = None) -> WhatIf:
    """Re-price the measured usage: move a share of one model's requests to another, and/or set the
    cache hit rate (cache-read share of input tokens) of every request.

    Per request: cost = (1 - s) x cost(model, tokens') + s x cost(TO, tokens'), where s is the routed share
    of that request's model (0 if none) and tokens' are its tokens with ``cache_read = floor(R x input)``
    and cache writes (their 1-hour part with them) capped to what is left, when a cache hit rate R is given. Same token counts on the
    new model (a simplification: tokenisers differ).
    """
    import ibis

    parsed = [parse_route(r, f"routes[{i}]") for i, r in enumerate(routes)]
    if len({p[0] for p in parsed}) != len(parsed):
        raise BillshapeInputError("routes", list(routes), "each FROM model at most once")
    rate_used = None
    if cache_hit_rate is not None:
        cache_hit_rate, rate_used = check_cache_hit_rate(cache_hit_rate)
    if not parsed and cache_hit_rate is None:
        raise BillshapeInputError("routes", None, "at least one `routes` or a `cache_hit_rate`")
    user_prices = P.read_user_prices(prices_csv)
    store = _open(db, engine)
    try:
        ledger = store.table("ledger")
        models = {r["model"] for r in store.frame(ledger.select("model").distinct()).to_pylist()}
        for i, (src, _, _) in enumerate(parsed):
            if src not in models:
                from billshape.errors import unknown_name

                raise unknown_name(f"routes[{i}]", src, models)
        base_micro = int(store.scalar(ledger.usd_micro.sum()) or 0)
        t = ledger
        if cache_hit_rate is not None:
            rate = ibis.literal(rate_used, type="decimal(18,9)")
            cr = (t.input_tokens.cast(E.DEC_TOKENS) * rate).floor().cast("int64")
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
                raise BillshapeInputError("prices", prices_csv, "a price for every model in the ledger (the one used at ingest)", errors[0])
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
                raise BillshapeInputError(f"routes[{i}]", to, "a model with a price (genai-prices or `prices`)", sorted(errors)[0])
            pt = pt.rename_columns([f"r{i}_{c}" for c in pt.column_names])
            rt = store.register(f"_wi_r{i}", pt)
            sub = j.filter(j.model == src)
            sub = sub.left_join(rt, sub._day == rt[f"r{i}_day"])
            tiers = store.frame(sub.filter(~E.known_tier(sub, f"r{i}_")).select("service_tier").distinct()).to_pylist()
            if tiers:  # a tier of the moved rows with no catalog row for TO: not priced at TO's standard price
                raise BillshapeInputError(f"routes[{i}]", to, "a model with a data/service_tiers.csv row for each service tier "
                                          "of the moved rows", f"no {tiers[0]['service_tier']} row for {to}")
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
        assumptions=[*(user("route", r, None, "routes") for r in routes)]
        + ([user("cache hit rate", cache_hit_rate, "fraction of input tokens", "cache_hit_rate")] if cache_hit_rate is not None else [])
        + ([derived("cache hit rate used", float(rate_used), "fraction of input tokens", "`cache_hit_rate` rounded to 9 "
                    "decimals (the ledger's rate resolution)")] if rate_used is not None and rate_used != Decimal(repr(cache_hit_rate)) else [])
        + [__import__("billshape.usage.pricedata", fromlist=["x"]).price_data_assumption(prices_csv, "prices")],
    )
