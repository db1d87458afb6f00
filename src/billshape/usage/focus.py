"""FOCUS export: the ledger as a FinOps Open Cost and Usage Specification dataset, version 1.3 or 1.2.

One row per (UTC day, provider, model, customer, feature, project, token kind): ``ConsumedQuantity`` is
the tokens (``ConsumedUnit`` "Tokens"; "Requests" for per-request fees), ``PricingQuantity`` is millions
of tokens (``PricingUnit`` "1M Tokens"). billshape prices at list prices, so without a contract ``ListCost``,
``ContractedCost``, ``EffectiveCost`` and ``BilledCost`` are equal; with a contract table (FOCUS 1.3 only,
:mod:`billshape.usage.contracts`) they differ as FOCUS defines. billshape's dimensions are ``x_`` columns.

Mandatory column sets and types: FOCUS 1.2 (FinOps Foundation, FOCUS_Spec tag v1.2,
specification/columns/*.md "Feature level: Mandatory"); FOCUS 1.3 (FOCUS_Spec 1.3, the Cost and Usage dataset,
specification/datasets/cost_and_usage/columns/*.md: ServiceProviderName and HostProviderName introduced in 1.3,
ProviderName and PublisherName deprecated in 1.3 but still mandatory and not null).
"""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal

import pyarrow as pa

from billshape.errors import BillshapeInputError
from billshape.usage import engine as E
from billshape.usage import contracts as C
from billshape.usage.schema import MICRO

#: FOCUS 1.2 mandatory columns and their FOCUS data types (FOCUS_Spec v1.2, specification/columns/).
MANDATORY = {
    "BilledCost": "Decimal", "BillingAccountId": "String", "BillingAccountName": "String", "BillingCurrency": "String",
    "BillingPeriodEnd": "Date/Time", "BillingPeriodStart": "Date/Time", "ChargeCategory": "String",
    "ChargeClass": "String", "ChargeDescription": "String", "ChargePeriodEnd": "Date/Time",
    "ChargePeriodStart": "Date/Time", "ContractedCost": "Decimal", "EffectiveCost": "Decimal",
    "InvoiceIssuerName": "String", "ListCost": "Decimal", "PricingQuantity": "Decimal", "PricingUnit": "String",
    "ProviderName": "String", "PublisherName": "String", "ServiceCategory": "String", "ServiceName": "String",
}
#: Mandatory columns that must not be null (the others may be, e.g. ChargeClass is null unless a correction).
NOT_NULL = ("BilledCost", "BillingAccountId", "BillingCurrency", "BillingPeriodEnd", "BillingPeriodStart",
            "ChargeCategory", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost", "EffectiveCost",
            "InvoiceIssuerName", "ListCost", "ProviderName", "PublisherName", "ServiceCategory", "ServiceName")

#: FOCUS 1.3 mandatory columns of the Cost and Usage dataset (FOCUS_Spec 1.3,
#: specification/datasets/cost_and_usage/columns/*.md "Feature level: Mandatory"): the 1.2 set plus the two
#: participating-entity columns introduced in 1.3.
MANDATORY_13 = {**MANDATORY, "HostProviderName": "String", "ServiceProviderName": "String"}
#: Mandatory in 1.3 but deprecated (replaced by ServiceProviderName; kept, equal to it, until FOCUS removes them).
DEPRECATED_13 = ("ProviderName", "PublisherName")
NOT_NULL_13 = (*NOT_NULL, "HostProviderName", "ServiceProviderName")
#: The conditional FOCUS 1.3 columns billshape writes, with their FOCUS data types.
CONDITIONAL_13 = {
    "ChargeFrequency": "String", "CommitmentDiscountCategory": "String", "CommitmentDiscountId": "String",
    "CommitmentDiscountName": "String", "CommitmentDiscountQuantity": "Decimal", "CommitmentDiscountStatus": "String",
    "CommitmentDiscountType": "String", "CommitmentDiscountUnit": "String", "ConsumedQuantity": "Decimal",
    "ConsumedUnit": "String", "ContractedUnitPrice": "Decimal", "ListUnitPrice": "Decimal", "PricingCategory": "String",
    "ServiceSubcategory": "String", "SkuId": "String", "Tags": "Key-Value Format",
}
FOCUS_VERSIONS = ("1.3", "1.2")

DEC = pa.decimal128(38, 9)
TS = pa.timestamp("s", tz="UTC")
PROVIDER_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "aws": "AWS", "azure": "Microsoft",
                  "mistral": "Mistral AI", "x-ai": "xAI", "deepseek": "DeepSeek", "groq": "Groq", "cohere": "Cohere"}
KINDS = (("input", "input_tokens_uncached", "usd_micro_input", "Tokens"),
         ("cache_read", "cache_read_tokens", "usd_micro_cache_read", "Tokens"),
         ("cache_write", "cache_write_tokens", "usd_micro_cache_write", "Tokens"),
         ("output", "output_tokens", "usd_micro_output", "Tokens"),
         ("requests", "requests", "usd_micro_requests", "Requests"),
         # the multimodal and per-unit terms (a row appears only where the ledger has them: older exports unchanged)
         ("image", "image_tokens", "usd_micro_image", "Tokens"),
         ("audio", "audio_tokens", "usd_micro_audio", "Tokens"),
         ("images", "images_generated", "usd_micro_images", "Images"),
         ("seconds", "seconds_generated", "usd_micro_seconds", "Seconds"),
         ("web_search", "web_search_calls", "usd_micro_web_search", "Searches"))
#: FOCUS PricingUnit of each ConsumedUnit (tokens are priced per million)
PRICING_UNITS = {"Tokens": "1M Tokens", "Requests": "Requests", "Images": "Images", "Seconds": "Seconds",
                 "Searches": "Searches"}


def _with_units(t):
    """The ledger with its multimodal/per-unit columns (zero in a database from before them, read-only)."""
    import ibis

    from billshape.usage.schema import COUNT_FIELDS, MODALITY_TOKEN_FIELDS, UNIT_COST_FIELDS

    missing = {c: ibis.literal(0, "int64") for c in (*MODALITY_TOKEN_FIELDS, *COUNT_FIELDS, *UNIT_COST_FIELDS)
               if c not in t.columns}
    return t.mutate(**missing) if missing else t


def _month(d: _dt.date) -> tuple[_dt.datetime, _dt.datetime]:
    start = _dt.datetime(d.year, d.month, 1, tzinfo=_dt.timezone.utc)
    end = _dt.datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=_dt.timezone.utc)
    return start, end


def _ledger_groups(db: str, engine: str | None) -> list[dict]:
    """The ledger summed per (day, provider, model, price, customer, feature, project), in the engine; sorted."""
    store = E.open_store(db, engine, read_only=True)
    try:
        t = _with_units(store.table("ledger"))
        z = lambda c: t[c].coalesce(0)  # noqa: E731
        img, aud = z("input_image_tokens") + z("output_image_tokens"), z("input_audio_tokens") + z("output_audio_tokens")
        g = t.mutate(day=t.ts.date(), provider=t.provider.coalesce("unknown")).group_by(
            ["day", "provider", "model", "price_model", "customer", "feature", "project"]
        ).aggregate(
            # text tokens: image and audio tokens are uncached parts of input/output tokens, priced on their own rows
            input_tokens_uncached=(t.input_tokens - t.cache_read_tokens - t.cache_write_tokens
                                   - z("input_image_tokens") - z("input_audio_tokens")).sum(),
            cache_read_tokens=t.cache_read_tokens.sum(), cache_write_tokens=t.cache_write_tokens.sum(),
            output_tokens=(t.output_tokens - z("output_image_tokens") - z("output_audio_tokens")).sum(),
            requests=t.requests.sum(),
            image_tokens=img.sum(), audio_tokens=aud.sum(), images_generated=z("images_generated").sum(),
            seconds_generated=z("seconds_generated").sum(), web_search_calls=z("web_search_calls").sum(),
            **{c: t[c].sum() for c in E.COST_FIELDS},
            **{c: z(c).sum() for c in ("usd_micro_image", "usd_micro_audio", "usd_micro_images", "usd_micro_seconds",
                                       "usd_micro_web_search")},
        )
        rows = store.frame(g).to_pylist()
    finally:
        store.close()
    # the engines return groups in no set order: sort them, so that an export is the same file every time
    keys = ("day", "provider", "model", "price_model", "customer", "feature", "project")
    rows.sort(key=lambda r: tuple((r[k] is None, r[k] if r[k] is not None else "") for k in keys))
    return rows


def focus_table(db: str, engine: str | None = None, account: str = "billshape") -> pa.Table:
    """The ledger aggregated to FOCUS 1.2 rows (aggregation in the engine, unpivot of the small result here)."""
    rows = _ledger_groups(db, engine)
    out = []
    for r in rows:
        bp_start, bp_end = _month(r["day"])
        cp_start = _dt.datetime.combine(r["day"], _dt.time(), tzinfo=_dt.timezone.utc)
        pname = PROVIDER_NAMES.get(r["provider"], r["provider"])
        for kind, qty_col, cost_col, unit in KINDS:
            qty, micro = int(r[qty_col] or 0), int(r[cost_col] or 0)
            if qty == 0 and micro == 0:
                continue
            cost = Decimal(micro) / MICRO
            per = Decimal(1_000_000) if unit == "Tokens" else Decimal(1)
            pricing_qty = Decimal(qty) / per
            out.append({
                "BilledCost": cost, "BillingAccountId": account, "BillingAccountName": account, "BillingCurrency": "USD",
                "BillingPeriodStart": bp_start, "BillingPeriodEnd": bp_end, "ChargeCategory": "Usage", "ChargeClass": None,
                "ChargeDescription": f"{r['model']} {kind.replace('_', ' ')} {unit.lower()}",
                "ChargeFrequency": "Usage-Based", "ChargePeriodStart": cp_start, "ChargePeriodEnd": cp_start + _dt.timedelta(days=1),
                "ConsumedQuantity": Decimal(qty), "ConsumedUnit": unit, "ContractedCost": cost, "EffectiveCost": cost,
                "InvoiceIssuerName": pname, "ListCost": cost,
                "ListUnitPrice": (cost / pricing_qty).quantize(Decimal("1e-9")) if pricing_qty else None,
                "PricingCategory": "Standard", "PricingQuantity": pricing_qty,
                "PricingUnit": PRICING_UNITS[unit],
                "ProviderName": pname, "PublisherName": pname, "ServiceCategory": "AI and Machine Learning",
                "ServiceName": f"{pname} API", "ServiceSubcategory": "Generative AI",
                "SkuId": f"{r['price_model']}:{kind}",
                "Tags": json.dumps({k: r[k] for k in ("customer", "feature", "project") if r[k] is not None}, sort_keys=True),
                "x_Customer": r["customer"], "x_Feature": r["feature"], "x_Project": r["project"], "x_Model": r["model"],
                "x_TokenType": kind, "x_BilledCostMicroUsd": micro,
            })
    schema = pa.schema([
        *((c, DEC) for c in ("BilledCost",)), ("BillingAccountId", pa.string()), ("BillingAccountName", pa.string()),
        ("BillingCurrency", pa.string()), ("BillingPeriodStart", TS), ("BillingPeriodEnd", TS), ("ChargeCategory", pa.string()),
        ("ChargeClass", pa.string()), ("ChargeDescription", pa.string()), ("ChargeFrequency", pa.string()),
        ("ChargePeriodStart", TS), ("ChargePeriodEnd", TS), ("ConsumedQuantity", DEC), ("ConsumedUnit", pa.string()),
        ("ContractedCost", DEC), ("EffectiveCost", DEC), ("InvoiceIssuerName", pa.string()), ("ListCost", DEC),
        ("ListUnitPrice", DEC), ("PricingCategory", pa.string()), ("PricingQuantity", DEC), ("PricingUnit", pa.string()),
        ("ProviderName", pa.string()), ("PublisherName", pa.string()), ("ServiceCategory", pa.string()),
        ("ServiceName", pa.string()), ("ServiceSubcategory", pa.string()), ("SkuId", pa.string()), ("Tags", pa.string()),
        ("x_Customer", pa.string()), ("x_Feature", pa.string()), ("x_Project", pa.string()), ("x_Model", pa.string()),
        ("x_TokenType", pa.string()), ("x_BilledCostMicroUsd", pa.int64()),
    ])
    return pa.Table.from_pylist(out, schema=schema)


def _day_start(d: _dt.date) -> _dt.datetime:
    return _dt.datetime.combine(d, _dt.time(), tzinfo=_dt.timezone.utc)


def _usd(micro: int) -> Decimal:
    return Decimal(int(micro)) / MICRO


def _unit_price(cost: Decimal, qty: Decimal) -> Decimal | None:
    return (cost / qty).quantize(Decimal("1e-9")) if qty else None


#: FOCUS 1.3 columns in the order billshape writes them (FOCUS columns alphabetical, then billshape's ``x_``).
SCHEMA_13 = pa.schema([
    ("BilledCost", DEC), ("BillingAccountId", pa.string()), ("BillingAccountName", pa.string()),
    ("BillingCurrency", pa.string()), ("BillingPeriodEnd", TS), ("BillingPeriodStart", TS), ("ChargeCategory", pa.string()),
    ("ChargeClass", pa.string()), ("ChargeDescription", pa.string()), ("ChargeFrequency", pa.string()),
    ("ChargePeriodEnd", TS), ("ChargePeriodStart", TS), ("CommitmentDiscountCategory", pa.string()),
    ("CommitmentDiscountId", pa.string()), ("CommitmentDiscountName", pa.string()), ("CommitmentDiscountQuantity", DEC),
    ("CommitmentDiscountStatus", pa.string()), ("CommitmentDiscountType", pa.string()), ("CommitmentDiscountUnit", pa.string()),
    ("ConsumedQuantity", DEC), ("ConsumedUnit", pa.string()), ("ContractedCost", DEC), ("ContractedUnitPrice", DEC),
    ("EffectiveCost", DEC), ("HostProviderName", pa.string()), ("InvoiceIssuerName", pa.string()), ("ListCost", DEC),
    ("ListUnitPrice", DEC), ("PricingCategory", pa.string()), ("PricingQuantity", DEC), ("PricingUnit", pa.string()),
    ("ProviderName", pa.string()), ("PublisherName", pa.string()), ("ServiceCategory", pa.string()),
    ("ServiceName", pa.string()), ("ServiceProviderName", pa.string()), ("ServiceSubcategory", pa.string()),
    ("SkuId", pa.string()), ("Tags", pa.string()),
    ("x_Customer", pa.string()), ("x_Feature", pa.string()), ("x_Project", pa.string()), ("x_Model", pa.string()),
    ("x_TokenType", pa.string()), ("x_ServiceTier", pa.string()), ("x_Discount", DEC),
    ("x_ListCostMicroUsd", pa.int64()), ("x_ContractedCostMicroUsd", pa.int64()), ("x_EffectiveCostMicroUsd", pa.int64()),
    ("x_BilledCostMicroUsd", pa.int64()),
])
COMMITMENT_TYPE = "Prepaid spend commitment"


def _entity(pname: str) -> dict:
    """The participating-entity columns: an API provider serves, hosts and invoices its own models."""
    return {"HostProviderName": pname, "InvoiceIssuerName": pname, "ProviderName": pname, "PublisherName": pname,
            "ServiceProviderName": pname, "ServiceName": f"{pname} API", "ServiceCategory": "AI and Machine Learning",
            "ServiceSubcategory": "Generative AI"}


def _commitment_rows(m: C.Commitment, account: str) -> list[dict]:
    """A commitment's Purchase row and, when some of it was not drawn down, its Unused row."""
    t = m.term
    pname = PROVIDER_NAMES.get(t.provider, t.provider)
    start, end = _day_start(t.period_start), _day_start(t.period_end)
    bp_start, bp_end = _month(t.period_start)
    amount = _usd(m.amount_micro_usd)
    common = {
        "BillingAccountId": account, "BillingAccountName": account, "BillingCurrency": "USD",
        "BillingPeriodStart": bp_start, "BillingPeriodEnd": bp_end, "ChargeClass": None,
        "ChargePeriodStart": start, "ChargePeriodEnd": end, "CommitmentDiscountCategory": "Spend",
        "CommitmentDiscountId": t.commitment_id, "CommitmentDiscountName": t.commitment_id,
        "CommitmentDiscountType": COMMITMENT_TYPE, "CommitmentDiscountUnit": "USD", "ConsumedQuantity": None,
        "ConsumedUnit": None, **_entity(pname), "SkuId": f"commitment:{t.commitment_id}", "Tags": "{}",
        "x_Customer": None, "x_Feature": None, "x_Project": None, "x_Model": None if t.model == "*" else t.model,
        "x_TokenType": None, "x_ServiceTier": None if t.service_tier == "*" else t.service_tier, "x_Discount": t.discount or None,
    }
    out = [{**common, "BilledCost": amount, "ChargeCategory": "Purchase", "ChargeFrequency": "One-Time",
            "ChargeDescription": f"{t.commitment_id}: prepaid spend commitment ${amount:,} for {t.period_start} to {t.period_end}",
            "CommitmentDiscountQuantity": amount, "CommitmentDiscountStatus": None, "ContractedCost": amount,
            "ContractedUnitPrice": amount, "EffectiveCost": Decimal(0), "ListCost": amount, "ListUnitPrice": amount,
            "PricingCategory": "Standard", "PricingQuantity": Decimal(1), "PricingUnit": "Commitment",
            "x_ListCostMicroUsd": m.amount_micro_usd, "x_ContractedCostMicroUsd": m.amount_micro_usd,
            "x_EffectiveCostMicroUsd": 0, "x_BilledCostMicroUsd": m.amount_micro_usd}]
    if m.unused_micro_usd:
        unused = _usd(m.unused_micro_usd)
        out.append({**common, "BilledCost": Decimal(0), "ChargeCategory": "Usage", "ChargeFrequency": "Usage-Based",
                    "ChargeDescription": f"{t.commitment_id}: unused commitment ${unused:,}",
                    "CommitmentDiscountQuantity": unused, "CommitmentDiscountStatus": "Unused", "ContractedCost": Decimal(0),
                    "ContractedUnitPrice": Decimal(0), "EffectiveCost": unused, "ListCost": Decimal(0), "ListUnitPrice": Decimal(0),
                    "PricingCategory": "Committed", "PricingQuantity": unused, "PricingUnit": "USD",
                    "x_ListCostMicroUsd": 0, "x_ContractedCostMicroUsd": 0, "x_EffectiveCostMicroUsd": m.unused_micro_usd,
                    "x_BilledCostMicroUsd": 0})
    return out


def focus13_table(db: str, engine: str | None = None, account: str = "billshape", contract=None) -> pa.Table:
    """The ledger as FOCUS 1.3 Cost and Usage rows, priced under ``contract`` (a path, text, bytes or a parsed
    :class:`~billshape.usage.contracts.Contract`; ``None``: list price, so the four costs are equal).

    Usage rows carry ``ListCost`` (the ledger), ``ContractedCost`` (after the negotiated discount),
    ``EffectiveCost`` and ``BilledCost`` (after commitments); each commitment adds a Purchase row and, when not
    fully drawn down, an Unused row (:func:`billshape.usage.contracts.apply_contract`)."""
    terms = C.read_contract(contract) if contract is not None else None
    rows = _ledger_groups(db, engine)
    records, charges = [], []
    for r in rows:
        for kind, qty_col, cost_col, unit in KINDS:
            qty, micro = int(r[qty_col] or 0), int(r[cost_col] or 0)
            if qty == 0 and micro == 0:
                continue
            records.append((r, kind, qty, unit))
            charges.append(C.Charge(day=r["day"], provider=r["provider"], model=r["model"], list_micro_usd=micro))
    commitments = C.apply_contract(charges, terms)
    out = []
    for (r, kind, qty, unit), ch in zip(records, charges):
        bp_start, bp_end = _month(r["day"])
        cp_start = _day_start(r["day"])
        pname = PROVIDER_NAMES.get(r["provider"], r["provider"])
        pricing_qty = Decimal(qty) / (Decimal(1_000_000) if unit == "Tokens" else Decimal(1))
        listed, contracted = _usd(ch.list_micro_usd), _usd(ch.contracted_micro_usd)
        committed = ch.commitment_id is not None
        out.append({
            "BilledCost": _usd(ch.billed_micro_usd), "BillingAccountId": account, "BillingAccountName": account,
            "BillingCurrency": "USD", "BillingPeriodStart": bp_start, "BillingPeriodEnd": bp_end, "ChargeCategory": "Usage",
            "ChargeClass": None, "ChargeDescription": f"{r['model']} {kind.replace('_', ' ')} {unit.lower()}",
            "ChargeFrequency": "Usage-Based", "ChargePeriodStart": cp_start, "ChargePeriodEnd": cp_start + _dt.timedelta(days=1),
            "CommitmentDiscountCategory": "Spend" if committed else None, "CommitmentDiscountId": ch.commitment_id,
            "CommitmentDiscountName": ch.commitment_id,
            "CommitmentDiscountQuantity": _usd(ch.commitment_drawn_micro_usd) if committed else None,
            "CommitmentDiscountStatus": "Used" if committed else None,
            "CommitmentDiscountType": COMMITMENT_TYPE if committed else None, "CommitmentDiscountUnit": "USD" if committed else None,
            "ConsumedQuantity": Decimal(qty), "ConsumedUnit": unit, "ContractedCost": contracted,
            "ContractedUnitPrice": _unit_price(contracted, pricing_qty), "EffectiveCost": _usd(ch.effective_micro_usd),
            "ListCost": listed, "ListUnitPrice": _unit_price(listed, pricing_qty),
            "PricingCategory": "Committed" if committed else "Standard", "PricingQuantity": pricing_qty,
            "PricingUnit": PRICING_UNITS[unit], **_entity(pname),
            "SkuId": f"{r['price_model']}:{kind}",
            "Tags": json.dumps({k: r[k] for k in ("customer", "feature", "project") if r[k] is not None}, sort_keys=True),
            "x_Customer": r["customer"], "x_Feature": r["feature"], "x_Project": r["project"], "x_Model": r["model"],
            "x_TokenType": kind, "x_ServiceTier": ch.service_tier, "x_Discount": ch.discount or None,
            "x_ListCostMicroUsd": ch.list_micro_usd, "x_ContractedCostMicroUsd": ch.contracted_micro_usd,
            "x_EffectiveCostMicroUsd": ch.effective_micro_usd, "x_BilledCostMicroUsd": ch.billed_micro_usd,
        })
    for m in sorted(commitments, key=lambda m: (m.term.period_start, m.term.commitment_id)):
        out.extend(_commitment_rows(m, account))
    return pa.Table.from_pylist(out, schema=SCHEMA_13)


def export_focus(db: str, path: str, engine: str | None = None, focus_version: str = "1.2", contract=None) -> dict:
    """Write the FOCUS dataset to ``path`` (``.parquet`` or ``.csv``); returns a summary.

    ``focus_version`` "1.2" (the library default, unchanged) or "1.3" (the CLI's default); ``contract`` (a contract
    table, :mod:`billshape.usage.contracts`) only with 1.3."""
    if focus_version not in FOCUS_VERSIONS:
        raise BillshapeInputError("focus_version", focus_version, " or ".join(FOCUS_VERSIONS))
    if contract is not None and focus_version != "1.3":
        raise BillshapeInputError("contract", str(contract), "only with `focus_version` 1.3 (1.2 exports list prices)")
    table = focus_table(db, engine) if focus_version == "1.2" else focus13_table(db, engine, contract=contract)
    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif path.lower().endswith(".csv"):
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        raise BillshapeInputError("output", path, "a path ending in .csv or .parquet")
    micro = sum(table.column("x_BilledCostMicroUsd").to_pylist())
    out = {"path": path, "format": "focus", "focus_version": focus_version, "rows": table.num_rows,
           "billed_cost_usd": float(Decimal(micro) / MICRO), "billed_cost_micro_usd": micro,
           "columns": table.column_names}
    if focus_version == "1.3":
        for name, col in (("list", "x_ListCostMicroUsd"), ("contracted", "x_ContractedCostMicroUsd"),
                          ("effective", "x_EffectiveCostMicroUsd")):
            total = sum(table.column(col).to_pylist())
            out[f"{name}_cost_usd"], out[f"{name}_cost_micro_usd"] = float(Decimal(total) / MICRO), total
        out["contract"] = None if contract is None else (contract.source if isinstance(contract, C.Contract) else str(contract))
        cats = table.column("ChargeCategory").to_pylist()
        ids = table.column("CommitmentDiscountId").to_pylist()
        out["commitments"] = sorted({i for i, c in zip(ids, cats) if i and c == "Purchase"})
    return out
