"""Invoice reconciliation: the ledger against a provider's cost export, by day x model x service tier.

Invoices read (detected from the content; :func:`read_invoice`):

* ``openai-costs``: the OpenAI Costs API JSON (``GET /v1/organization/costs``, ``group_by=line_item``): a page of
  daily buckets whose ``results`` carry ``amount {value, currency}``, ``line_item`` ("gpt-4o-2024-08-06, input",
  "..., cached input", "... batch ...") and ``project_id``;
* ``openai-costs-csv``: the same as CSV, as the usage dashboard exports it (``start_time`` or ``start_time_iso``,
  ``amount_value``, ``amount_currency``, ``line_item``, ``project_id``, ...);
* ``anthropic-cost``: the Anthropic Admin API cost report JSON (``GET /v1/organizations/cost_report``,
  ``group_by=description``): buckets with ``starting_at`` and ``results`` whose ``amount`` is in cents as a decimal
  string, with ``model``, ``service_tier``, ``cost_type``, ``token_type``, ``workspace_id``;
* ``focus``: any FOCUS file (CSV or Parquet) with ``ChargePeriodStart``, ``BilledCost`` or ``EffectiveCost``,
  ``ChargeCategory`` and ``ServiceProviderName`` or ``ProviderName`` (model from ``x_Model`` when present).
  Its usage rows count (EffectiveCost, else BilledCost; a commitment's ``Unused`` row is not usage); other charge
  categories (purchases, tax, credits) are reported apart as ``invoice_other_usd``.

Lines are keyed by (UTC day, provider, model, service tier); models match across sources by
:func:`billshape.usage.contracts.model_key` (no snapshot date, no case). An invoice without per-model lines
(``line_item`` or ``description`` not grouped) is compared per day and provider (model ``*``). The ledger is
compared at list cost, or at contracted cost with a contract table, for the invoice's providers and days. An
invoice that books web-search calls on a line of their own (model ``web_search``: Anthropic's cost report) is
compared with the ledger's web-search cost of that day and provider (``usd_micro_web_search``), which is then
taken out of the model lines the ledger keeps it under.

``likely_cause`` of each line, first rule that holds:

1. ``matched``: the residual is within :data:`TOLERANCE_MICRO_USD` (a cent);
2. ``unpriced tier``: the invoice is above the ledger and the quarantine holds rows of that day x provider x model
   x tier quarantined for their service tier (``unknown service tier ...``: a tier ``data/service_tiers.csv`` has
   no row for): a fact read from the quarantine, not a guess from the tier's name;
3. ``missing rows``: no ledger cost on the line (the ledger has no priced rows for that day and model; the
   line's ``quarantined`` lists any rows of it quarantined for other reasons, e.g. no price);
4. ``not invoiced``: ledger cost with no invoice amount;
5. ``negotiated discount``: the provider's lines that have both amounts share one invoice/ledger ratio below 1
   (each within :data:`DISCOUNT_BAND` of the provider's ratio, or within the tolerance), with at least two such
   lines off by more than the tolerance; the implied discount is listed in ``discounts_detected``;
6. ``unexplained``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Result, user
from billshape.usage import contracts as C
from billshape.usage.connectors import LONG_CONTEXT_WINDOW, long_context_tier
from billshape.usage.schema import MICRO

#: A line within a cent reconciles: invoices round each line to a cent or finer, the ledger rounds each price
#: component of each row to the micro-dollar.
TOLERANCE_MICRO_USD = 10_000
#: Two lines share a provider-wide ratio when their invoice/ledger ratios differ by at most 0.5 percentage points.
DISCOUNT_BAND = Decimal("0.005")
CAUSES = ("matched", "unpriced tier", "missing rows", "not invoiced", "negotiated discount", "unexplained")
LEDGER_TIERS = ("standard",)
#: The start of the quarantine reason of a row whose service tier has no catalog row (``engine.priced``).
UNKNOWN_TIER_REASON = "unknown service tier "
FORMATS = ("openai-costs", "openai-costs-csv", "anthropic-cost", "focus")
_PROVIDER_KEYS = {"openai": "openai", "anthropic": "anthropic", "google": "google", "microsoft": "azure",
                  "mistral ai": "mistral", "xai": "x-ai", "amazon web services": "aws"}


@dataclass(frozen=True)
class InvoiceLine:
    day: _dt.date
    provider: str
    model: str | None  # None: the invoice does not break this day down by model
    service_tier: str
    micro_usd: int
    label: str = ""


@dataclass
class Invoice:
    format: str
    name: str
    lines: list[InvoiceLine]
    days: set
    other_micro_usd: int = 0


def _micro(value: Decimal) -> int:
    return int((value * MICRO).to_integral_value(rounding=ROUND_HALF_UP))


def _dec(value, where: str, what: str = "amount") -> Decimal:
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise BillshapeInputError(f"invoice {where}", value, f"a number ({what})") from None
    if not d.is_finite() or abs(d) > Decimal(10) ** 12:
        raise BillshapeInputError(f"invoice {where}", str(value), f"a finite number below 10^12 ({what})")
    return d


def _tier(text: str) -> str:
    low = text.lower()
    for tier in ("batch", "priority", "flex", "scale"):
        if tier in low:
            return tier
    return "standard"


def _provider_key(name: str | None) -> str:
    low = str(name or "").strip().lower()
    return _PROVIDER_KEYS.get(low, low or "unknown")


def _utc_day(value, where: str) -> _dt.date:
    try:
        if isinstance(value, (int, float, Decimal)) or (isinstance(value, str) and value.strip().isdigit()):
            return _dt.datetime.fromtimestamp(int(Decimal(str(value))), tz=_dt.timezone.utc).date()
        if isinstance(value, _dt.datetime):
            return (value.astimezone(_dt.timezone.utc) if value.tzinfo else value).date()
        if isinstance(value, _dt.date):
            return value
        text = str(value).strip().replace("Z", "+00:00")
        t = _dt.datetime.fromisoformat(text)
        return (t.astimezone(_dt.timezone.utc) if t.tzinfo else t).date()
    except (ValueError, OverflowError, OSError, InvalidOperation):
        raise BillshapeInputError(f"invoice {where}", value, "a Unix time or an ISO 8601 date/time") from None


def _usd_only(currency, where: str) -> None:
    if currency is not None and str(currency).strip().lower() not in ("usd", ""):
        raise BillshapeInputError(f"invoice {where} currency", currency, "USD (the ledger is in USD)")


# ------------------------------------------------------------------------------------------ readers

def _openai_json_rows(doc, name: str):
    """The Costs API page's results as ``(where, start, day_only, value, currency, line_item)``, one per result; a
    bucket without results yields one row with no value (a day with no cost)."""
    buckets = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(buckets, list):
        raise BillshapeInputError("invoice", name, "an OpenAI Costs API page: {data: [buckets]}")
    for i, b in enumerate(buckets):
        if not isinstance(b, dict) or "start_time" not in b:
            raise BillshapeInputError(f"invoice {name} data[{i}]", type(b).__name__, "a bucket with start_time and results")
        results = b.get("results") or []
        if not results:
            yield f"{name} data[{i}]", b["start_time"], f"{name} data[{i}].start_time", None, None, None
        for j, res in enumerate(results):
            where = f"{name} data[{i}].results[{j}]"
            amount = (res or {}).get("amount") or {}
            if not isinstance(amount, dict):
                raise BillshapeInputError(f"invoice {where}.amount", amount, "{value, currency}")
            yield where, b["start_time"], f"{name} data[{i}].start_time", amount.get("value", 0), amount.get("currency"), \
                res.get("line_item")


def _openai_csv_rows(text: str, name: str):
    """The dashboard CSV's rows in the same shape as :func:`_openai_json_rows`."""
    for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        where = f"{name}:{n}"
        when = row.get("start_time_iso") or row.get("start_time")
        if not when:
            raise BillshapeInputError(f"invoice {where} start_time", None, "a Unix time or an ISO 8601 date/time")
        value = (row.get("amount_value") or "").strip()
        yield where, when, where + " start_time", value or None, row.get("amount_currency"), (row.get("line_item") or "").strip()


def read_openai_costs(source, name: str = "<invoice>") -> Invoice:
    """OpenAI costs as invoice lines: the Costs API page (a dict or a bare bucket list, format ``openai-costs``)
    or the usage dashboard's cost export (CSV text, format ``openai-costs-csv``). One reader for both: a line's
    model is its ``line_item`` before the first comma, its tier named in the line item (:func:`_tier`); a row
    without an amount is a day with no cost."""
    is_csv = isinstance(source, str)
    rows = _openai_csv_rows(source, name) if is_csv else _openai_json_rows(source, name)
    lines, days = [], set()
    for where, when, when_field, value, currency, item in rows:
        days.add(_utc_day(when, when_field))
        if value is None or value == "":
            continue
        _usd_only(currency, where)
        field = where + (" amount_value" if is_csv else ".amount.value")
        lines.append(InvoiceLine(_utc_day(when, when_field), "openai", (item or "").partition(",")[0].strip() or None,
                                 _tier(item or ""), _micro(_dec(value, field, "USD")), item or ""))
    return Invoice("openai-costs-csv" if is_csv else "openai-costs", name, lines, days)


def read_anthropic_cost_report(doc: dict, name: str = "<invoice>") -> Invoice:
    """The Anthropic Admin API cost report (amounts in cents, decimal strings) as invoice lines."""
    buckets = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(buckets, list):
        raise BillshapeInputError("invoice", name, "an Anthropic cost report: {data: [{starting_at, results}]}")
    lines, days = [], set()
    for i, b in enumerate(buckets):
        if not isinstance(b, dict) or "starting_at" not in b:
            raise BillshapeInputError(f"invoice {name} data[{i}]", type(b).__name__, "a bucket with starting_at and results")
        day = _utc_day(b["starting_at"], f"{name} data[{i}].starting_at")
        days.add(day)
        for j, res in enumerate(b.get("results") or []):
            where = f"{name} data[{i}].results[{j}]"
            if not isinstance(res, dict):
                raise BillshapeInputError(f"invoice {where}", type(res).__name__, "a cost item")
            _usd_only(res.get("currency"), where)
            cents = _dec(res.get("amount", "0"), where + ".amount", "cents")
            model = res.get("model") or (res.get("cost_type") if res.get("cost_type") not in (None, "tokens") else None)
            label = " ".join(str(res[k]) for k in ("description", "token_type") if res.get(k)) or str(res.get("cost_type") or "")
            tier = (res.get("service_tier") or "standard").lower()
            if res.get("context_window") == LONG_CONTEXT_WINDOW:  # the ledger's tier of the same rows
                tier = long_context_tier(tier)
            lines.append(InvoiceLine(day, "anthropic", model, tier, _micro(cents / 100), label))
    return Invoice("anthropic-cost", name, lines, days)


def read_focus_invoice(table, name: str = "<invoice>") -> Invoice:
    """A FOCUS dataset (a pyarrow Table) as invoice lines: its usage charges; other charges summed apart."""
    cols = set(table.column_names)
    cost_col = "EffectiveCost" if "EffectiveCost" in cols else "BilledCost"
    prov_col = "ServiceProviderName" if "ServiceProviderName" in cols else "ProviderName"
    for need in ("ChargePeriodStart", cost_col, prov_col, "ChargeCategory"):
        if need not in cols:
            raise BillshapeInputError("invoice", name, "a FOCUS file with ChargePeriodStart, BilledCost or EffectiveCost, "
                                      "ChargeCategory and ServiceProviderName or ProviderName", f"no column {need}")
    lines, days, other = [], set(), 0
    for n, r in enumerate(table.to_pylist(), start=1):
        where = f"{name} row {n}"
        day = _utc_day(r["ChargePeriodStart"], where + " ChargePeriodStart")
        days.add(day)
        if r.get("BillingCurrency") not in (None, ""):
            _usd_only(r["BillingCurrency"], where)
        if r["ChargeCategory"] != "Usage" or r.get("CommitmentDiscountStatus") == "Unused":
            other += _micro(_dec(r.get("BilledCost") or 0, where + " BilledCost", "USD"))
            continue
        model = r.get("x_Model")
        lines.append(InvoiceLine(day, _provider_key(r[prov_col]), model or None, (r.get("x_ServiceTier") or "standard").lower(),
                                 _micro(_dec(r[cost_col] if r[cost_col] is not None else 0, f"{where} {cost_col}", "USD")),
                                 r.get("ChargeDescription") or ""))
    return Invoice("focus", name, lines, days, other)


def read_invoice(source) -> Invoice:
    """An invoice from a path, bytes or text (format detected from the content; Parquet is read as FOCUS)."""
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) and not str(source).lstrip().startswith(("{", "[")) else "<invoice>"
    raw: bytes | None = None
    if isinstance(source, (bytes, bytearray)):
        raw = bytes(source)
    elif name != "<invoice>":
        if not os.path.isfile(name):
            raise BillshapeInputError("invoice", name, "an invoice file (OpenAI costs JSON/CSV, Anthropic cost report JSON, "
                                      "FOCUS CSV/Parquet)", "no such file")
        from billshape.io import MAX_BYTES

        if os.path.getsize(name) > 10 * MAX_BYTES:
            raise BillshapeInputError("invoice", name, f"at most {10 * MAX_BYTES // 2**20} MB")
        with open(name, "rb") as f:
            raw = f.read()
    else:
        raw = str(source).encode("utf-8")
    if raw[:4] == b"PAR1":
        import pyarrow.parquet as pq

        try:
            return read_focus_invoice(pq.read_table(io.BytesIO(raw)), name)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a broken file
            if isinstance(exc, BillshapeInputError):
                raise
            raise BillshapeInputError("invoice", name, "a readable Parquet FOCUS file", type(exc).__name__) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BillshapeInputError("invoice", name, "UTF-8 text (JSON or CSV) or Parquet", f"byte {exc.start} is not UTF-8") from None
    if text.lstrip().startswith(("{", "[")):
        try:
            doc = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            raise BillshapeInputError("invoice", name, "valid JSON", f"{exc.msg} at line {exc.lineno}") from None
        buckets = doc.get("data") if isinstance(doc, dict) else doc
        first = next((b for b in (buckets or []) if isinstance(b, dict)), {}) if isinstance(buckets, list) else {}
        if "starting_at" in first:
            return read_anthropic_cost_report(doc, name)
        if "start_time" in first or (isinstance(doc, dict) and doc.get("object") == "page"):
            return read_openai_costs(doc, name)
        raise BillshapeInputError("invoice", name, "an OpenAI Costs API page or an Anthropic cost report (JSON)")
    header = text.splitlines()[0] if text.strip() else ""
    if "ChargePeriodStart" in header:
        import pyarrow.csv as pcsv

        try:
            table = pcsv.read_csv(io.BytesIO(text.encode("utf-8")),
                                  convert_options=pcsv.ConvertOptions(column_types={"BilledCost": "string", "EffectiveCost": "string",
                                                                                    "ChargePeriodStart": "string"}))
        except Exception as exc:  # noqa: BLE001
            raise BillshapeInputError("invoice", name, "a readable FOCUS CSV", str(exc).splitlines()[0][:120]) from None
        return read_focus_invoice(table, name)
    if "amount_value" in header and "line_item" in header:
        return read_openai_costs(text, name)
    raise BillshapeInputError("invoice", name, "an OpenAI costs JSON/CSV, an Anthropic cost report JSON or a FOCUS CSV/Parquet file")


# ------------------------------------------------------------------------------------------ the rules

def reconcile_lines(invoice: list[InvoiceLine], ledger: dict, quarantine: dict | None = None) -> tuple[list[dict], dict]:
    """Residual lines and the discounts detected, from invoice lines and ledger cost per key.

    ``ledger`` maps (day, provider, model_key or "*", tier or "*") -> integer micro-dollars; ``quarantine`` maps
    the same keys to ``{reason: rows}`` of the rows quarantined there (duplicates left out). Returns the lines
    (sorted by day, provider, model, tier; each with its ``quarantined`` facts) and ``{provider: implied discount}``."""
    inv: dict = defaultdict(int)
    labels: dict = defaultdict(set)
    coarse = {(line.day, line.provider) for line in invoice if line.model is None}
    for line in invoice:
        key = (line.day, line.provider, "*", "*") if (line.day, line.provider) in coarse else \
            (line.day, line.provider, C.model_key(line.model), line.service_tier)
        inv[key] += line.micro_usd
        labels[key].add(line.model or "(all models)")
    led: dict = defaultdict(int)
    for (day, prov, model, tier), micro in ledger.items():
        key = (day, prov, "*", "*") if (day, prov) in coarse else (day, prov, model, tier)
        led[key] += micro
    quar: dict = defaultdict(lambda: defaultdict(int))
    for (day, prov, model, tier), reasons in (quarantine or {}).items():
        key = (day, prov, "*", "*") if (day, prov) in coarse else (day, prov, model, tier)
        for reason, n in reasons.items():
            quar[key][reason] += n
    keys = sorted(set(inv) | set(led))
    rows = []
    for k in keys:
        a, b = inv.get(k, 0), led.get(k, 0)
        rows.append({"day": k[0].isoformat(), "provider": k[1], "model": k[2], "service_tier": k[3],
                     "invoice_micro_usd": a, "ledger_micro_usd": b, "residual_micro_usd": a - b,
                     "invoice_models": sorted(labels.get(k, ())), "quarantined": dict(sorted(quar.get(k, {}).items()))})
    discounts = {}
    for prov in sorted({r["provider"] for r in rows}):
        both = [r for r in rows if r["provider"] == prov and r["invoice_micro_usd"] > 0 and r["ledger_micro_usd"] > 0]
        if len(both) < 2:
            continue
        ratio = Decimal(sum(r["invoice_micro_usd"] for r in both)) / Decimal(sum(r["ledger_micro_usd"] for r in both))
        consistent = all(abs(r["invoice_micro_usd"] - ratio * r["ledger_micro_usd"]) <= TOLERANCE_MICRO_USD
                         or abs(Decimal(r["invoice_micro_usd"]) / r["ledger_micro_usd"] - ratio) <= DISCOUNT_BAND for r in both)
        off = sum(abs(r["residual_micro_usd"]) > TOLERANCE_MICRO_USD for r in both)
        if consistent and off >= 2 and 1 - ratio >= DISCOUNT_BAND:
            discounts[prov] = float((1 - ratio).quantize(Decimal("1e-6")))
    for r in rows:
        a, b, res = r["invoice_micro_usd"], r["ledger_micro_usd"], r["residual_micro_usd"]
        if abs(res) <= TOLERANCE_MICRO_USD:
            cause = "matched"
        elif res > 0 and any(reason.startswith(UNKNOWN_TIER_REASON) for reason in r["quarantined"]):
            cause = "unpriced tier"
        elif b == 0:
            cause = "missing rows"
        elif a == 0:
            cause = "not invoiced"
        elif r["provider"] in discounts and a > 0:
            cause = "negotiated discount"
        else:
            cause = "unexplained"
        r["likely_cause"] = cause
    return rows, discounts


def _quarantine_groups(store) -> list[dict]:
    """Quarantined rows (duplicates left out: they are priced in the ledger already) by UTC day, provider, model,
    service tier and reason."""
    from billshape.usage.schema import DUPLICATE, REKEYED

    q = store.table("quarantine")
    q = q.filter(q.ts.notnull() & q.model.notnull() & ~q.reason.isin([DUPLICATE, REKEYED]))
    tier = q.service_tier.coalesce("standard") if "service_tier" in q.columns else None
    q = q.mutate(day=q.ts.date(), provider=q.provider.coalesce("unknown"), tier=tier if tier is not None else "standard")
    return store.frame(q.group_by(["day", "provider", "model", "tier", "reason"]).aggregate(n=q.count())).to_pylist()


def _usd(micro: int) -> float:
    return float(Decimal(int(micro)) / MICRO)


def _pct(residual: int, base: int) -> float | None:
    return None if base == 0 else float((Decimal(100) * residual / base).quantize(Decimal("1e-6")))


class Reconciliation(Result):
    """Residual (invoice - ledger) by day x model x service tier, with a likely cause per line."""

    invoice: str
    invoice_format: str
    providers: list[str]
    period_start: str | None
    period_end: str | None
    ledger_basis: str
    total_invoice_usd: float
    total_ledger_usd: float
    residual_usd: float
    residual_pct: float | None
    total_invoice_micro_usd: int
    total_ledger_micro_usd: int
    residual_micro_usd: int
    lines: list[dict]
    causes: dict[str, dict]
    discounts_detected: dict[str, float]
    invoice_other_usd: float
    ledger_outside_invoice_usd: float
    contract: str | None


#: The model key of an invoice's web-search line (Anthropic's cost report: ``cost_type`` ``web_search``).
WEB_SEARCH_KEY = "web_search"


def reconcile(db: str, invoice, contract=None, engine: str | None = None) -> Reconciliation:
    """Reconcile the ledger in ``db`` against an invoice (path, bytes or text; :func:`read_invoice`), optionally
    under a contract table (the ledger side at contracted cost). See the module docstring for the rules."""
    from billshape.usage import engine as E

    inv = invoice if isinstance(invoice, Invoice) else read_invoice(invoice)
    terms = C.read_contract(contract) if contract is not None else None
    providers = sorted({line.provider for line in inv.lines})
    first, last = (min(inv.days), max(inv.days)) if inv.days else (None, None)
    store = E.open_store(db, engine, read_only=True)
    try:
        t = store.table("ledger")
        tier = t.service_tier.coalesce("standard") if "service_tier" in t.columns else None
        g = t.mutate(day=t.ts.date(), provider=t.provider.coalesce("unknown"), **({"tier": tier} if tier is not None else {}))
        web = {"web": g.usd_micro_web_search.sum()} if "usd_micro_web_search" in t.columns else {}
        g = g.group_by(["day", "provider", "model", *(["tier"] if tier is not None else [])]).aggregate(usd_micro=g.usd_micro.sum(), **web)
        groups = store.frame(g).to_pylist()
        qgroups = _quarantine_groups(store)
    finally:
        store.close()
    # an invoice that books web-search calls on their own line (Anthropic's cost report: cost_type web_search, no
    # model) is matched with the ledger's web-search cost of that day, which the ledger keeps under the model
    web_lines = {(line.day, line.provider): line.service_tier for line in inv.lines
                 if line.model is not None and C.model_key(line.model) == WEB_SEARCH_KEY}
    ledger, outside = defaultdict(int), 0
    for r in groups:
        tier_name = r.get("tier") or "standard"
        web_micro = int(r.get("web") or 0) if (r["day"], r["provider"]) in web_lines else 0
        model_micro = int(r["usd_micro"] or 0) - web_micro  # what stays on the model's line
        if terms is not None:
            term = terms.term_for(r["provider"], r["model"], tier_name, r["day"])
            if term:  # each line at contracted cost
                model_micro = C.contracted_micro_usd(model_micro, term.discount)
                web_micro = C.contracted_micro_usd(web_micro, term.discount)
        if r["provider"] not in providers:
            continue
        if first is None or not first <= r["day"] <= last:
            outside += model_micro + web_micro
            continue
        ledger[(r["day"], r["provider"], C.model_key(r["model"]), tier_name)] += model_micro
        if web_micro:
            ledger[(r["day"], r["provider"], WEB_SEARCH_KEY, web_lines[(r["day"], r["provider"])])] += web_micro
    quarantine: dict = defaultdict(dict)
    for r in qgroups:
        if r["provider"] in providers and first is not None and first <= r["day"] <= last:
            key = (r["day"], r["provider"], C.model_key(r["model"]), r["tier"] or "standard")
            quarantine[key][r["reason"]] = quarantine[key].get(r["reason"], 0) + int(r["n"])
    rows, discounts = reconcile_lines(inv.lines, ledger, quarantine)
    rows = [{**{k: r[k] for k in ("day", "provider", "model", "service_tier")},
             "invoice_usd": _usd(r["invoice_micro_usd"]), "ledger_usd": _usd(r["ledger_micro_usd"]),
             "residual_usd": _usd(r["residual_micro_usd"]), "residual_pct": _pct(r["residual_micro_usd"], r["ledger_micro_usd"]),
             "likely_cause": r["likely_cause"], "invoice_models": r["invoice_models"], "quarantined": r["quarantined"],
             **{k: r[k] for k in ("invoice_micro_usd", "ledger_micro_usd", "residual_micro_usd")}} for r in rows]
    total_inv = sum(r["invoice_micro_usd"] for r in rows)
    total_led = sum(r["ledger_micro_usd"] for r in rows)
    causes = {}
    for cause in CAUSES:
        these = [r for r in rows if r["likely_cause"] == cause]
        if these:
            micro = sum(r["residual_micro_usd"] for r in these)
            causes[cause] = {"lines": len(these), "residual_usd": _usd(micro), "residual_micro_usd": micro}
    name = inv.name
    return Reconciliation(
        invoice=name, invoice_format=inv.format, providers=providers,
        period_start=first.isoformat() if first else None, period_end=last.isoformat() if last else None,
        ledger_basis="contracted" if terms is not None else "list",
        total_invoice_usd=_usd(total_inv), total_ledger_usd=_usd(total_led), residual_usd=_usd(total_inv - total_led),
        residual_pct=_pct(total_inv - total_led, total_led), total_invoice_micro_usd=total_inv,
        total_ledger_micro_usd=total_led, residual_micro_usd=total_inv - total_led, lines=rows, causes=causes,
        discounts_detected=discounts, invoice_other_usd=_usd(inv.other_micro_usd), ledger_outside_invoice_usd=_usd(outside),
        contract=None if contract is None else (terms.source if terms is not None else None),
        assumptions=[
            user("invoice", name, None, "invoice"),
            *([user("contract", terms.source, None, "contract")] if terms is not None else []),
            Assumption(name="match tolerance", value=_usd(TOLERANCE_MICRO_USD), unit="USD per line",
                       source=f"billshape default (reconcile.TOLERANCE_MICRO_USD {TOLERANCE_MICRO_USD}: a cent)", as_of=None),
            Assumption(name="discount band", value=float(DISCOUNT_BAND), unit="fraction",
                       source=f"billshape default (reconcile.DISCOUNT_BAND {DISCOUNT_BAND})", as_of=None),
            Assumption(name="unpriced tier", value=UNKNOWN_TIER_REASON.strip(), unit=None,
                       source="billshape ledger: a line above the ledger whose day x model x tier has rows quarantined "
                              "with this reason reads as an unpriced tier (the quarantine's facts, per line in `quarantined`)",
                       as_of=None),
        ],
    )
