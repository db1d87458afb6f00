"""Typed loading and look-up of billshape's shipped catalogs (``billshape/data/*.csv``).

Every row of every catalog carries ``source`` (URL or citation) and ``as_of`` (ISO date: the date the figure was
in force at its source; for a copy of a catalog such as SkyPilot's, the date of the copied version, see
``docs/sources.md``); loading fails loudly if one does not. Price rows also carry ``retrieved``, the date
billshape read them. Names are case-insensitive and accelerators have aliases (``a100`` is ``a100-80gb-sxm``).
Unknown names raise :class:`billshape.errors.BillshapeInputError` with the closest known names as a hint.

The rental price table can be switched to a refreshed, dated snapshot (:mod:`billshape.snapshots`,
``--snapshot ID``); a plan priced at a date (:func:`billshape.staleness.set_pricing_day`) takes the quote in
force on that date (:func:`price`).

Catalogs
--------
accelerators.csv
    Peak dense FLOP/s per precision, memory, bandwidth, TDP and typical purchase price per chip.
gpu_prices.csv
    Rental $/GPU-hour by provider and tier (``on-demand``, ``reserved-1y``, ``reserved-3y``, ``spot``).
training_runs.csv
    Published training runs (GPU-hours, tokens, parameters, reported cost or energy).
constants.csv
    Default parameters of the cost equations (Epoch AI's amortisation constants, PUE, $/kWh, staleness
    thresholds, ...).
architectures.csv
    Published model architectures (layers, heads, KV heads, MoE experts) for the serving model.
api_price_history.csv
    Dated API list prices per model series (launches and price cuts), for ``market backtest``.
api_prices_as_of.csv
    The date API prices are read at when a scenario gives none, and the earliest day the usage ledger prices.
service_tiers.csv
    Price multipliers of API service tiers (batch, flex, priority) by provider.
price_trends.csv
    Named annual price trends (API price for equal capability, price per FLOP).
scaling_constants.csv
    Fitted scaling-law constants (Chinchilla and its replications).
serving_calibration.csv, serving_validation.csv, serving_efficiency.csv
    Measured serving throughputs the roofline model is fitted on and checked against, and the fitted efficiencies.
demand_week.csv
    The illustrative demand week of ``billshape capacity --demand example-week``.
"""

from __future__ import annotations

import csv
import io
import os
from functools import lru_cache
from typing import Any

from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Assumption, Record, field_types

TIERS = ("on-demand", "reserved-1y", "reserved-3y", "spot")
PRECISIONS = ("bf16", "fp16", "fp8", "fp4", "int8", "int4")


class CatalogError(RuntimeError):
    """A shipped catalog is malformed (a packaging bug, not a user error)."""


def read_rows(filename: str) -> list[dict[str, str]]:
    """Rows of a shipped CSV as dicts of strings, with ``source`` and ``as_of`` checked."""
    reader = csv.DictReader(io.StringIO(_data_text(filename)))
    rows = []
    for i, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise CatalogError(f"{filename}:{i}: wrong number of columns")
        row = {k.strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("source"):
            raise CatalogError(f"{filename}:{i}: empty source")
        try:
            _iso_date(row.get("as_of", ""))
        except ValueError as exc:
            raise CatalogError(f"{filename}:{i}: as_of {row.get('as_of')!r} is not an ISO date") from exc
        rows.append(row)
    return rows


def _data_text(filename: str) -> str:
    """A shipped data file's text: read from the package directory (importlib.resources, which costs tens of
    milliseconds to import, only when the package is not a plain directory, e.g. inside a zip)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", filename)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:  # pragma: no cover - a zipped install
        from importlib import resources

        return resources.files("billshape.data").joinpath(filename).read_text(encoding="utf-8")


def _iso_date(text: str) -> None:
    """Raise ValueError unless ``text`` is an ISO date (YYYY-MM-DD), as ``datetime.date.fromisoformat`` would."""
    import datetime

    datetime.date.fromisoformat(text)


def _num(value: str) -> float | None:
    value = value.replace(",", "").strip()
    return float(value) if value else None


class Row(Record):
    model_config = {"frozen": True}

    source: str
    as_of: str

    def assumption(self, name: str, value: Any, unit: str | None = None) -> Assumption:
        """An :class:`Assumption` for ``value`` taken from this row."""
        return Assumption(name=name, value=value, unit=unit, source=self.source, as_of=self.as_of)


class Accelerator(Row):
    """One accelerator model. FLOP/s figures are dense (not sparse) peaks."""

    name: str
    aliases: tuple[str, ...] = ()
    vendor: str = ""
    memory_gb: float | None = None
    memory_bytes_per_second: float | None = None
    bf16_dense_flops_per_second: float | None = None
    fp8_dense_flops_per_second: float | None = None
    fp4_dense_flops_per_second: float | None = None
    int8_dense_ops_per_second: float | None = None
    int4_dense_ops_per_second: float | None = None
    tdp_watts: float | None = None
    interconnect_bytes_per_second: float | None = None
    purchase_usd: float | None = None
    purchase_source: str = ""
    purchase_as_of: str = ""  # the price's own date (as_of dates the datasheet); empty: as_of
    note: str = ""

    @property
    def memory_bytes(self) -> float | None:
        return None if self.memory_gb is None else self.memory_gb * 1e9

    def peak_flops_per_second(self, precision: str = "bf16") -> float:
        """Dense peak FLOP/s (or OP/s for integer formats) at ``precision``.

        ``fp16`` reads the BF16 column (the two are equal on every catalogued chip). Raises
        :class:`BillshapeInputError` when the chip has no such precision.
        """
        precision = precision.lower()
        column = {
            "bf16": "bf16_dense_flops_per_second",
            "fp16": "bf16_dense_flops_per_second",
            "fp8": "fp8_dense_flops_per_second",
            "fp4": "fp4_dense_flops_per_second",
            "int8": "int8_dense_ops_per_second",
            "int4": "int4_dense_ops_per_second",
        }.get(precision)
        if column is None:
            raise BillshapeInputError("precision", precision, "one of " + ", ".join(PRECISIONS))
        value = getattr(self, column)
        if value is None:
            have = [p for p in PRECISIONS if p != "fp16" and getattr(self, {
                "bf16": "bf16_dense_flops_per_second", "fp8": "fp8_dense_flops_per_second",
                "fp4": "fp4_dense_flops_per_second", "int8": "int8_dense_ops_per_second",
                "int4": "int4_dense_ops_per_second"}[p]) is not None]
            raise BillshapeInputError("precision", precision, f"a precision {self.name} supports: {', '.join(have)}")
        return value

    def purchase_assumption(self) -> Assumption:
        if self.purchase_usd is None:
            raise BillshapeInputError(
                "gpu", self.name, "an accelerator with a catalogued purchase price (or give `hardware_usd`)"
            )
        return Assumption(
            name=f"{self.name} purchase price", value=self.purchase_usd, unit="USD",
            source=self.purchase_source or self.source, as_of=self.purchase_as_of or self.as_of,
        )


class GpuPrice(Row):
    """A rental quote: USD per GPU-hour for one provider, accelerator and tier."""

    provider: str
    gpu: str
    tier: str
    usd_per_gpu_hour: float
    region: str = ""
    instance_type: str = ""
    retrieved: str = ""  # the date billshape read the quote (as_of: the date it was in force at its source)
    note: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tier not in TIERS:
            raise ValueError(f"tier {self.tier!r} not in {TIERS}")


class TrainingRun(Row):
    """A published training run."""

    name: str
    organization: str = ""
    year: float | None = None
    params_total: float | None = None
    params_active: float | None = None
    tokens: float | None = None
    accelerator: str = ""
    gpu_hours: float | None = None
    gpus: float | None = None
    reported_cost_usd: float | None = None
    reported_energy_mwh: float | None = None
    reported_tco2eq: float | None = None
    note: str = ""


class Constant(Row):
    """A named default parameter of a cost equation."""

    name: str
    value: float
    unit: str = ""
    note: str = ""

    def as_assumption(self) -> Assumption:
        return self.assumption(self.name, self.value, self.unit or None)


def typed_row(model: type[Record], row: dict[str, str], numeric: set[str]) -> Any:
    data: dict[str, Any] = {}
    for key, value in row.items():
        if key not in model.model_fields:
            continue
        if key in numeric:
            data[key] = _num(value)
        elif key == "aliases":
            data[key] = tuple(a.strip().lower() for a in value.split(";") if a.strip())
        else:
            data[key] = value
    return model(**data)


def numeric_fields(model: type[Record]) -> set[str]:
    return {name for name, tp in field_types(model).items() if tp in (float, float | None, int | None)}


def load_typed(model: type[Record], filename: str, extra_numeric: set[str] | frozenset[str] = frozenset()) -> tuple:
    """Rows of a shipped CSV as ``model`` instances: float and optional-float fields (plus ``extra_numeric``)
    are parsed as numbers, ``aliases`` as a ``;``-separated tuple, the rest as strings; ``source`` and
    ``as_of`` are checked by :func:`read_rows`."""
    num = numeric_fields(model) | set(extra_numeric)
    return tuple(typed_row(model, r, num) for r in read_rows(filename))


def load_keyed(model: type[Record], filename: str, key: str | tuple[str, ...]) -> dict:
    """Rows of a shipped CSV as ``model`` instances (:func:`load_typed`) by ``key``: one field's value, or a tuple
    of values for a tuple of fields. A key that two rows share is a :class:`CatalogError` naming both lines."""
    out: dict = {}
    lines: dict = {}
    for line, row in enumerate(load_typed(model, filename), start=2):
        k = getattr(row, key) if isinstance(key, str) else tuple(getattr(row, f) for f in key)
        if k in out:
            raise CatalogError(f"{filename}:{line}: {key} {k!r} also on line {lines[k]}")
        out[k], lines[k] = row, line
    return out


@lru_cache(maxsize=None)
def accelerators() -> tuple[Accelerator, ...]:
    """Every catalogued accelerator."""
    return load_typed(Accelerator, "accelerators.csv")


@lru_cache(maxsize=None)
def _accelerator_index() -> dict[str, Accelerator]:
    index: dict[str, Accelerator] = {}
    for acc in accelerators():
        for key in (acc.name.lower(), *acc.aliases):
            if key in index and index[key] is not acc:
                raise CatalogError(f"accelerators.csv: name or alias {key!r} used twice")
            index[key] = acc
    return index


def gpu(name: str, field: str = "gpu") -> Accelerator:
    """Look up an accelerator by name or alias (case-insensitive)."""
    index = _accelerator_index()
    key = str(name).strip().lower()
    if key not in index:
        raise unknown_name(field, name, index)
    return index[key]


def prices() -> tuple[GpuPrice, ...]:
    """Every catalogued rental quote: the shipped table, or the active snapshot's
    (:func:`billshape.snapshots.use`) with the shipped rows it does not price."""
    from billshape import snapshots

    return _prices(snapshots.active_id())


@lru_cache(maxsize=None)
def _prices(snapshot_id: str | None) -> tuple[GpuPrice, ...]:
    rows = load_typed(GpuPrice, "gpu_prices.csv")
    names = {a.name for a in accelerators()}
    for r in rows:
        if r.gpu not in names:
            raise CatalogError(f"gpu_prices.csv: unknown gpu {r.gpu!r}")
    if snapshot_id is None:
        return rows
    from billshape import snapshots

    fresh = tuple(GpuPrice(**r) for r in snapshots._gpu_rows(snapshot_id) if r["gpu"] in names)
    priced = {(r.provider, r.gpu, r.tier) for r in fresh}
    return fresh + tuple(r for r in rows if (r.provider, r.gpu, r.tier) not in priced)


prices.cache_clear = _prices.cache_clear  # type: ignore[attr-defined]


def providers() -> list[str]:
    return sorted({p.provider for p in prices()})


def price(gpu_name: str, provider: str, tier: str = "on-demand") -> GpuPrice:
    """The rental quote for an accelerator at a provider and tier.

    Where a provider lists several quotes for one accelerator and tier (regions, instance types), the
    lowest is returned.
    """
    acc = gpu(gpu_name)
    provider_key = str(provider).strip().lower()
    if provider_key not in providers():
        raise unknown_name("provider", provider, providers())
    tier_key = str(tier).strip().lower()
    if tier_key not in TIERS:
        raise unknown_name("tier", tier, TIERS)
    matches = [p for p in prices() if p.provider == provider_key and p.gpu == acc.name and p.tier == tier_key]
    if not matches:
        offered = sorted({p.tier for p in prices() if p.provider == provider_key and p.gpu == acc.name})
        where = sorted({p.provider for p in prices() if p.gpu == acc.name and p.tier == tier_key})
        hint = (
            f"{provider_key} offers {acc.name} as: {', '.join(offered)}" if offered
            else f"{acc.name} {tier_key} is catalogued at: {', '.join(where) or 'no provider'}"
        )
        raise BillshapeInputError("provider/tier", f"{provider_key}/{tier_key} for {acc.name}",
                                  "a catalogued combination", hint)
    return _in_force(matches)


def _in_force(matches: list[GpuPrice]) -> GpuPrice:
    """The quote to use: the lowest; on a pricing date (:func:`billshape.staleness.pricing_day`), the lowest of
    the latest quotes dated on or before it (the earliest quotes when all are later: a staleness warning says so)."""
    from billshape.staleness import pricing_day

    day = pricing_day()
    if day is not None:
        iso = day.isoformat()
        before = [p for p in matches if p.as_of <= iso]
        latest = max(p.as_of for p in before) if before else min(p.as_of for p in matches)
        matches = [p for p in matches if p.as_of == latest]
    return min(matches, key=lambda p: p.usd_per_gpu_hour)


@lru_cache(maxsize=None)
def training_runs() -> tuple[TrainingRun, ...]:
    """Every catalogued published training run."""
    return load_typed(TrainingRun, "training_runs.csv")


def training_run(name: str) -> TrainingRun:
    runs = {r.name.lower(): r for r in training_runs()}
    key = str(name).strip().lower()
    if key not in runs:
        raise unknown_name("run", name, runs)
    return runs[key]


@lru_cache(maxsize=None)
def constants() -> dict[str, Constant]:
    """The default parameters of the cost equations, by name."""
    return {c.name: c for c in load_typed(Constant, "constants.csv")}


def constant(name: str) -> Constant:
    table = constants()
    if name not in table:
        raise CatalogError(f"constants.csv has no row {name!r}")
    return table[name]
