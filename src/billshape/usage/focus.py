"""FOCUS 1.2 export: the ledger as a FinOps Open Cost and Usage Specification dataset.

One row per (UTC day, provider, model, customer, feature, project, token kind): ``ConsumedQuantity`` is
the tokens (``ConsumedUnit`` "Tokens"; "Requests" for per-request fees), ``PricingQuantity`` is millions
of tokens (``PricingUnit`` "1M Tokens"). billshape prices at list prices, so ``ListCost``,
``ContractedCost``, ``EffectiveCost`` and ``BilledCost`` are equal. billshape's dimensions are ``x_``
columns. Mandatory column set and types: FOCUS 1.2 (FinOps Foundation, FOCUS_Spec tag v1.2,
specification/columns/*.md "Feature level: Mandatory").
"""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal

import pyarrow as pa

from billshape.errors import BillshapeInputError
from billshape.usage import engine as E
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

DEC = pa.decimal128(38, 9)
TS = pa.timestamp("s", tz="UTC")
PROVIDER_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "google": "Google", "aws": "AWS", "azure": "Microsoft",
                  "mistral": "Mistral AI", "x-ai": "xAI", "deepseek": "DeepSeek", "groq": "Groq", "cohere": "Cohere"}
KINDS = (("input", "input_tokens_uncached", "usd_micro_input", "Tokens"),
         ("cache_read", "cache_read_tokens", "usd_micro_cache_read", "Tokens"),
         ("cache_write", "cache_write_tokens", "usd_micro_cache_write", "Tokens"),
         ("output", "output_tokens", "usd_micro_output", "Tokens"),
         ("requests", "requests", "usd_micro_requests", "Requests"))


def _month(d: _dt.date) -> tuple[_dt.datetime, _dt.datetime]:
    start = _dt.datetime(d.year, d.month, 1, tzinfo=_dt.timezone.utc)
    end = _dt.datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=_dt.timezone.utc)
    return start, end


def focus_table(db: str, engine: str | None = None, account: str = "billshape") -> pa.Table:
    """The ledger aggregated to FOCUS 1.2 rows (aggregation in the engine, unpivot of the small result here)."""
    store = E.open_store(db, engine, read_only=True)
    try:
        t = store.table("ledger")
        g = t.mutate(day=t.ts.date(), provider=t.provider.coalesce("unknown")).group_by(
            ["day", "provider", "model", "price_model", "customer", "feature", "project"]
        ).aggregate(
            input_tokens_uncached=(t.input_tokens - t.cache_read_tokens - t.cache_write_tokens).sum(),
            cache_read_tokens=t.cache_read_tokens.sum(), cache_write_tokens=t.cache_write_tokens.sum(),
            output_tokens=t.output_tokens.sum(), requests=t.requests.sum(),
            **{c: t[c].sum() for c in E.COST_FIELDS},
        )
        rows = store.frame(g).to_pylist()
    finally:
        store.close()
    # the engines return groups in no set order: sort them, so that an export is the same file every time
    keys = ("day", "provider", "model", "price_model", "customer", "feature", "project")
    rows.sort(key=lambda r: tuple((r[k] is None, r[k] if r[k] is not None else "") for k in keys))
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
                "PricingUnit": "1M Tokens" if unit == "Tokens" else "Requests",
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


def export_focus(db: str, path: str, engine: str | None = None) -> dict:
    """Write the FOCUS 1.2 dataset to ``path`` (``.parquet`` or ``.csv``); returns a summary."""
    table = focus_table(db, engine)
    if path.lower().endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    elif path.lower().endswith(".csv"):
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        raise BillshapeInputError("-o", path, "a path ending in .csv or .parquet")
    micro = sum(table.column("x_BilledCostMicroUsd").to_pylist())
    return {"path": path, "format": "focus", "focus_version": "1.2", "rows": table.num_rows,
            "billed_cost_usd": float(Decimal(micro) / MICRO), "billed_cost_micro_usd": micro,
            "columns": table.column_names}
