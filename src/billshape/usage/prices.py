"""The price table: one row per (provider, model, UTC day) present in the logs, built once, joined in the engine.

Prices come from a user price table (CSV, for self-hosted models or negotiated rates; it wins) or from
genai-prices (offline snapshot, timestamp-aware: the price in force on that UTC day; cache-read,
cache-write and tiered prices). A key with no price carries ``price_error`` and its rows are quarantined,
never priced at zero.

Units: genai-prices quotes USD per million tokens, which is numerically micro-dollars per token, so the
ledger's integer micro-dollars are ``tokens x price`` rounded once per component.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pyarrow as pa

from billshape.errors import BillshapeInputError
from billshape.usage.schema import PRICES

PRICE_FIELDS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok")
USER_COLUMNS = ("provider", "model", "input_usd_per_mtok", "output_usd_per_mtok")


@dataclass(frozen=True)
class UserPrice:
    input_mtok: Decimal
    output_mtok: Decimal
    cache_read_mtok: Decimal | None
    cache_write_mtok: Decimal | None
    source: str


def read_user_prices(path: str | None) -> dict[tuple[str, str], UserPrice]:
    """A user price table: CSV with ``provider, model, input_usd_per_mtok, output_usd_per_mtok`` and
    optional ``cache_read_usd_per_mtok``, ``cache_write_usd_per_mtok``, ``source``, ``as_of``.
    ``provider`` may be empty (matches any provider). Keys are lower-case."""
    if not path:
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise BillshapeInputError("--prices", path, "a readable CSV file", str(exc)) from None
    if not rows or any(c not in rows[0] for c in USER_COLUMNS):
        raise BillshapeInputError("--prices", path, "a CSV with columns " + ", ".join(USER_COLUMNS))
    out = {}
    for i, row in enumerate(rows, start=2):
        def dec(col, required=True):
            text = (row.get(col) or "").strip()
            if not text and not required:
                return None
            try:
                value = Decimal(text)
            except InvalidOperation:
                raise BillshapeInputError(f"--prices {path}:{i} {col}", text, "a number >= 0 (USD per million tokens)") from None
            if not value.is_finite() or value < 0:
                raise BillshapeInputError(f"--prices {path}:{i} {col}", text, "a number >= 0 (USD per million tokens)")
            return value

        key = ((row.get("provider") or "").strip().lower(), (row.get("model") or "").strip().lower())
        src = (row.get("source") or "").strip() or f"user price table {path}"
        if row.get("as_of"):
            src += f" (as of {row['as_of'].strip()})"
        out[key] = UserPrice(dec("input_usd_per_mtok"), dec("output_usd_per_mtok"), dec("cache_read_usd_per_mtok", False),
                             dec("cache_write_usd_per_mtok", False), src)
    return out


def _q(value) -> Decimal | None:
    if value is None:
        return None
    value = Decimal(value)
    if value != value.quantize(Decimal("1e-9")):
        raise ValueError(f"price {value} has more than 9 decimals")
    return value


def _genai_price(provider: str | None, model: str, day: dt.date) -> dict:
    from genai_prices import data_snapshot
    from genai_prices.types import TieredPrices

    snapshot = data_snapshot.get_snapshot()
    try:
        prov, info = snapshot.find_provider_model(model, None, provider or None, None)
    except LookupError:
        where = f" (provider {provider})" if provider else ""
        return {"price_error": f"no price for model {model}{where}"}
    when = dt.datetime.combine(day, dt.time(12), tzinfo=dt.timezone.utc)
    mp = info.get_prices(when)
    row = {"price_model": f"{prov.id}/{info.id}", "price_source": f"genai-prices {_version()}"}
    tier_start = None
    for f in PRICE_FIELDS:
        p = getattr(mp, f, None)
        if isinstance(p, TieredPrices):
            if len(p.tiers) != 1 or (tier_start is not None and tier_start != p.tiers[0].start):
                return {"price_error": f"multi-tier price for {prov.id}/{info.id} not supported"}
            tier_start = p.tiers[0].start
            row[f], row["tier_" + f] = _q(p.base), _q(p.tiers[0].price)
        else:
            row[f] = _q(p)
    if row["input_mtok"] is None or row["output_mtok"] is None:
        return {"price_error": f"no token price for {prov.id}/{info.id}"}
    row["tier_start"] = tier_start
    rk = getattr(mp, "requests_kpr", None)
    row["requests_kpr"] = _q(rk) if not isinstance(rk, TieredPrices) else None
    return row


def _version() -> str:
    from genai_prices import __version__

    return __version__


def price_for(provider: str | None, model: str, day: dt.date, user: dict[tuple[str, str], UserPrice]) -> dict:
    """One row of the price table for a key (with ``price_error`` set when there is no price)."""
    m = model.lower()
    up = user.get(((provider or "").lower(), m)) or user.get(("", m))
    if up is not None:
        row = {"price_model": f"{provider or ''}/{model}".lstrip("/"), "price_source": up.source, "input_mtok": up.input_mtok,
               "output_mtok": up.output_mtok, "cache_read_mtok": up.cache_read_mtok, "cache_write_mtok": up.cache_write_mtok}
    else:
        row = _genai_price(provider, model, day)
    return row


def price_table(keys: list[tuple[str | None, str, dt.date]], user: dict[tuple[str, str], UserPrice]) -> pa.Table:
    """The price table for the distinct ``(provider, model, day)`` keys of a log (one genai-prices look-up each)."""
    rows = []
    for provider, model, day in keys:
        row = {f.name: None for f in PRICES}
        row.update(price_for(provider, model, day, user))
        row.update(provider_key=provider or "", model=model, day=day)
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=PRICES)
