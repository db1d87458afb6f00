"""Composed estimates: catalog defaults + the pure equations -> typed results with assumptions.

These are what the CLI's ``train`` and ``serve`` verbs and the library's ``bs.training_bill`` /
``bs.serving_cost`` call. Every catalog default they use is listed in the result's ``assumptions``.
"""

from __future__ import annotations

from typing import Literal


from billshape import _validate as v
from billshape import catalog, training  # inference (numpy) is imported by serving_cost, not by the training bill
from billshape.errors import BillshapeInputError
from billshape.results import Assumption, Record, Result, derived, user


class Development(Result):
    """The development iceberg, shown beside the final run (never folded into it)."""

    final_run_usd: float
    experiments_multiplier: float
    experiments_usd: float
    staff_usd: float
    data_usd: float
    total_usd: float


class TrainingBill(Result):
    """The bill of one training run."""

    method: Literal["rental", "amortized"]
    gpu: str | None
    precision: str
    gpu_hours: float
    wall_clock_hours: float | None
    training_flops: float | None
    mfu: float | None
    usd_per_gpu_hour: float
    compute_usd: float
    energy_kwh: float | None
    energy_usd: float
    total_usd: float
    development: Development


def rental_price(gpu_name: str | None, price: float | None, provider: str | None, tier: str | None,
           field_gpu: str = "gpu") -> tuple[float, Assumption]:
    """A rental price in USD per GPU-hour and its assumption: ``price`` as given, or the catalog quote for
    ``gpu_name`` at ``provider``/``tier`` (default on-demand). Exactly one of ``price``/``provider``."""
    if price is not None and provider is not None:
        raise BillshapeInputError("price/provider", f"{price}/{provider}", "one of `price` or `provider`, not both")
    if price is not None:
        v.positive("price", price, v.MAX_USD_RATE)
        return float(price), user("rental price", float(price), "USD/GPU-hour", "price")
    if provider is None:
        raise BillshapeInputError("price", None, "a price: give `price` USD_PER_GPU_HOUR or `provider` P [`tier` T]")
    if gpu_name is None:
        raise BillshapeInputError(field_gpu, None, "an accelerator name when pricing by `provider`")
    quote = catalog.price(gpu_name, provider, tier or "on-demand")
    label = f"{quote.provider} {quote.gpu} {quote.tier} price" + (f" ({quote.instance_type})" if quote.instance_type else "")
    return quote.usd_per_gpu_hour, quote.assumption(label, quote.usd_per_gpu_hour, "USD/GPU-hour")


def _final_run_bill(
    *,
    run: str | None = None,
    gpu: str | None = None,
    gpu_hours: float | None = None,
    gpus: float | None = None,
    hours: float | None = None,
    days: float | None = None,
    params: float | None = None,
    active_params: float | None = None,
    tokens: float | None = None,
    flops: float | None = None,
    mfu: float | None = None,
    precision: str = "bf16",
    price: float | None = None,
    provider: str | None = None,
    tier: str | None = None,
    method: str = "rental",
    hardware_usd: float | None = None,
    usd_per_kwh: float | None = None,
    pue: float | None = None,
    experiments_multiplier: float | None = None,
    staff_usd: float = 0.0,
    data_usd: float = 0.0,
) -> TrainingBill:
    """The bill of the final run alone: the inputs and their rules are :func:`training_bill`'s (which adds
    constant dollars and the generation on top)."""
    assumptions: list[Assumption] = []
    if run is not None:
        ref = catalog.training_run(run)
        if ref.gpu_hours is None or not ref.accelerator:
            raise BillshapeInputError("run", run, "a catalogued run with published GPU-hours and accelerator")
        if gpus is not None or days is not None or hours is not None:
            raise BillshapeInputError("run", run, "not combined with `gpus`/`days`/`hours` (the run gives its GPU-hours)")
        gpu = gpu or ref.accelerator
        if gpu_hours is None:
            gpu_hours = ref.gpu_hours
            assumptions.append(ref.assumption(f"{ref.name} GPU-hours", ref.gpu_hours, "GPU-hours"))
    method = (method or "rental").lower()
    if method not in ("rental", "amortized", "amortised"):
        raise BillshapeInputError("method", method, "rental or amortized")
    method = "amortized" if method.startswith("amorti") else "rental"
    precision = (precision or "bf16").lower()
    if precision not in ("bf16", "fp16", "fp8", "fp4"):
        raise BillshapeInputError("precision", precision, "one of bf16, fp16, fp8, fp4")
    acc = catalog.gpu(gpu) if gpu is not None else None
    if acc is not None:
        assumptions.append(acc.assumption("accelerator", acc.name))

    # --- compute -------------------------------------------------------------------------------
    if flops is not None and (params is not None or tokens is not None):
        raise BillshapeInputError("flops", flops, "either `flops` or `params`/`tokens`, not both")
    if active_params is not None and params is None:
        raise BillshapeInputError("active_params", active_params, "only together with `params`")
    if (params is None) != (tokens is None):
        missing = "tokens" if tokens is None else "params"
        raise BillshapeInputError(missing, None, "required together with " + ("params" if tokens is None else "tokens"))
    training_flops = None
    if flops is not None:
        v.positive("flops", flops, v.MAX_FLOPS)
        training_flops = float(flops)
        assumptions.append(user("training compute", training_flops, "FLOP", "flops"))
    elif params is not None:
        v.positive("params", params, v.MAX_TOKENS)
        v.positive("tokens", tokens, v.MAX_TOKENS)
        n_active = params if active_params is None else active_params
        v.positive("active_params", n_active)
        if n_active > params:
            raise BillshapeInputError("active_params", active_params, f"<= `params` ({params:g})")
        training_flops = float(training.training_flops(n_active, tokens))
        assumptions += [
            user("parameters (total)", float(params), "parameters", "params"),
            user("parameters (active per token)", float(n_active), "parameters", "active_params" if active_params else "params"),
            user("training tokens", float(tokens), "tokens", "tokens"),
            Assumption(name="training FLOPs rule", value="6 x N_active x D", source="Kaplan et al. 2020, arXiv:2001.08361", as_of="2020-01-23"),
        ]

    # --- GPU-hours -----------------------------------------------------------------------------
    if days is not None and hours is not None:
        raise BillshapeInputError("days/hours", f"{days}/{hours}", "one of `days` or `hours`, not both")
    wall = None
    if days is not None:
        v.positive("days", days, v.MAX_DAYS)
        wall = float(days) * 24.0
    elif hours is not None:
        v.positive("hours", hours, v.MAX_HOURS)
        wall = float(hours)
    if gpus is not None:
        v.positive("gpus", gpus, v.MAX_COUNT)
    if wall is not None and gpus is None:
        raise BillshapeInputError("gpus", None, "required with `days` or `hours`")
    if gpus is not None and wall is None and gpu_hours is None:
        raise BillshapeInputError("days", None, "required with `gpus` (or give `hours`)")
    sources = [gpu_hours is not None, wall is not None]
    if sum(sources) > 1:
        raise BillshapeInputError("gpu_hours", gpu_hours, "either `gpu_hours` or `gpus` with `days`/`hours`, not both")
    peak = None
    if acc is not None:
        peak = acc.peak_flops_per_second(precision)
    if mfu is not None:
        v.fraction("mfu", mfu)

    if gpu_hours is not None:
        v.positive("gpu_hours", gpu_hours, v.MAX_GPU_HOURS)
        hours_total = float(gpu_hours)
        if not any(a.name.endswith(" GPU-hours") for a in assumptions):
            assumptions.append(user("GPU-hours", hours_total, "GPU-hours", "gpu_hours"))
    elif wall is not None:
        v.positive("gpus", gpus, v.MAX_COUNT)
        hours_total = float(training.gpu_hours_from_cluster(gpus, wall))
        assumptions += [user("GPUs", float(gpus), "GPUs", "gpus"),
                        user("wall-clock", wall, "hours", "days" if days is not None else "hours")]
    elif training_flops is not None:
        if mfu is None:
            raise BillshapeInputError("mfu", None, "in (0, 1], required to turn FLOPs into GPU-hours")
        if acc is None:
            raise BillshapeInputError("gpu", None, "an accelerator name, required to turn FLOPs into GPU-hours")
        hours_total = float(training.gpu_hours_from_flops(training_flops, peak, mfu))
        assumptions += [
            acc.assumption(f"{acc.name} dense {precision} peak", peak, "FLOP/s"),
            user("MFU", float(mfu), None, "mfu"),
        ]
    else:
        raise BillshapeInputError(
            "gpu_hours", None, "one of: `gpu_hours` H | `gpus` N `days` D | `params` N `tokens` D `mfu` M")

    implied = None
    if training_flops is not None and (gpu_hours is not None or wall is not None):
        if mfu is not None:
            raise BillshapeInputError("mfu", mfu, "omitted when GPU-hours are given (the MFU is then implied)")
        if peak is not None:
            implied = float(training.implied_mfu(training_flops, hours_total, peak))
            if implied > 1:
                raise BillshapeInputError(
                    "gpu_hours", hours_total,
                    f"enough hours for the compute: these FLOPs imply MFU {implied:.3g} > 1 at the {precision} peak")
            assumptions.append(acc.assumption(f"{acc.name} dense {precision} peak", peak, "FLOP/s"))
            assumptions.append(derived("implied MFU", implied, None, "FLOPs / (GPU-hours x 3600 x peak)"))
    reported_mfu = implied if implied is not None else (float(mfu) if mfu is not None else None)

    # --- dollars -------------------------------------------------------------------------------
    c = catalog.constants()
    energy_kwh = None
    energy_usd = 0.0
    if method == "rental":
        for name, val in (("hardware_usd", hardware_usd), ("usd_per_kwh", usd_per_kwh), ("pue", pue)):
            if val is not None:
                raise BillshapeInputError(name, val, "only with `method` amortized (a rental price includes them)")
        rate, a = rental_price(acc.name if acc else None, price, provider, tier)
        assumptions.append(a)
        compute = float(training.rental_cost_usd(hours_total, rate))
        assumptions.append(Assumption(name="energy", value=0.0, unit="USD", source="included in the rental price", as_of=None))
    else:
        if price is not None or provider is not None:
            raise BillshapeInputError("price/provider", price or provider, "only with `method` rental")
        if acc is None:
            raise BillshapeInputError("gpu", None, "an accelerator name, required by `method` amortized")
        if hardware_usd is not None:
            v.positive("hardware_usd", hardware_usd, v.MAX_USD)
            hw = float(hardware_usd)
            assumptions.append(user("hardware price per chip", hw, "USD", "hardware_usd"))
        else:
            a = acc.purchase_assumption()
            hw = float(a.value)
            assumptions.append(a)
        names = ("epoch_value_decay_oom_per_year", "hours_per_year", "epoch_server_cost_overhead",
                 "epoch_interconnect_fraction")
        for n in names:
            assumptions.append(c[n].as_assumption())
        rate = float(training.amortized_usd_per_chip_hour(
            hw, c["epoch_value_decay_oom_per_year"].value, c["hours_per_year"].value,
            c["epoch_server_cost_overhead"].value, c["epoch_interconnect_fraction"].value))
        compute = rate * hours_total
        if acc.tdp_watts is None:
            raise BillshapeInputError("gpu", acc.name, "an accelerator with a catalogued TDP (for the energy bill)")
        kwh_price = float(usd_per_kwh) if usd_per_kwh is not None else c["electricity_usd_per_kwh"].value
        pue_value = float(pue) if pue is not None else c["datacenter_pue"].value
        v.non_negative("usd_per_kwh", kwh_price)
        v.positive("pue", pue_value)
        energy_kwh = float(training.energy_kwh(
            acc.tdp_watts, hours_total, c["epoch_chip_to_server_power"].value,
            c["epoch_average_power_fraction"].value, pue_value))
        energy_usd = float(training.energy_cost_usd(energy_kwh, kwh_price))
        assumptions += [
            acc.assumption(f"{acc.name} TDP", acc.tdp_watts, "W"),
            c["epoch_chip_to_server_power"].as_assumption(),
            c["epoch_average_power_fraction"].as_assumption(),
            user("PUE", pue_value, None, "pue") if pue is not None else c["datacenter_pue"].as_assumption(),
            user("electricity price", kwh_price, "USD/kWh", "usd_per_kwh") if usd_per_kwh is not None
            else c["electricity_usd_per_kwh"].as_assumption(),
        ]
    total = compute + energy_usd

    # --- iceberg (beside, not inside) ----------------------------------------------------------
    if experiments_multiplier is None:
        mult_row = c["rnd_compute_multiplier"]
        mult = mult_row.value
        assumptions.append(mult_row.as_assumption())
    else:
        mult = float(experiments_multiplier)
        assumptions.append(user("experiments multiplier", mult, None, "experiments_multiplier"))
    dev = training.development_cost_usd(total, mult, staff_usd, data_usd)
    development = Development(
        final_run_usd=total, experiments_multiplier=mult, experiments_usd=float(dev["experiments_usd"]),
        staff_usd=float(staff_usd), data_usd=float(data_usd), total_usd=float(dev["total_usd"]),
    )
    return TrainingBill(
        method=method, gpu=acc.name if acc else None, precision=precision, gpu_hours=hours_total,
        wall_clock_hours=wall, training_flops=training_flops, mfu=reported_mfu, usd_per_gpu_hour=rate,
        compute_usd=compute, energy_kwh=energy_kwh, energy_usd=energy_usd, total_usd=total,
        development=development, assumptions=assumptions,
    )


# --- constant dollars and the frontier generation -------------------------------------------------------------
class Range(Record):
    """A low / central / high triple (a bounding range: every low input together, every high input together)."""

    low: float
    central: float
    high: float


class DollarConversion(Record):
    """One figure converted from dollars of its year to constant dollars."""

    figure: str
    nominal_usd: float
    cost_year: int
    index_year_used: int
    factor: float
    constant_usd: float
    note: str = ""


class ConstantDollars(Record):
    """Figures of a result restated in dollars of ``usd_year`` with a price index."""

    usd_year: int
    price_index: str
    conversions: list[DollarConversion]


class TrainingBillInUsdYear(TrainingBill):
    """A training bill with its figures also in dollars of one year (``train --usd-year``)."""

    constant_dollars: ConstantDollars


class FrontierGeneration(Result):
    """A frontier model generation's cost: final run + experiments + staff + data, low / central / high."""

    run: str | None
    basis: str
    final_run_usd: float
    cost_year: int | None
    generation_months: Range
    experiments_multiplier: Range
    staff_share: Range
    experiments_usd: Range
    staff_usd: Range
    data_usd: Range
    total_usd: Range
    bill: TrainingBill | None = None
    constant_dollars: ConstantDollars | None = None


GENERATION_KEYS = ("experiments_multiplier", "staff_share", "data_usd_per_year", "generation_months")


def generation_parameters() -> dict:
    """The frontier-generation multipliers (``data/frontier_generation.csv``), by name: each a dict with low,
    central, high, unit, source, as_of."""
    rows = {r["name"]: r for r in catalog.read_rows("frontier_generation.csv")}
    return {k: {**rows[k], **{b: float(rows[k][b]) for b in ("low", "central", "high")}} for k in GENERATION_KEYS}


def _year(as_of: str | None) -> int | None:
    return int(as_of[:4]) if as_of else None


def _bill_cost_year(bill: TrainingBill, ref, index_last_year: int) -> tuple[int, str]:
    """The year whose dollars a bill is in: its price row's as_of year (the rental quote, or the chip's purchase
    price), else the run's year, else the index's last year; with a note saying which."""
    for a in bill.assumptions:
        if a.unit == "USD/GPU-hour" or a.name.endswith("purchase price") or a.name == "hardware price per chip":
            if a.as_of:
                return int(a.as_of[:4]), f"dollars of the price row's year ({a.as_of})"
            break
    if ref is not None and ref.year:
        return int(ref.year), f"a user price, read as dollars of the run's year ({int(ref.year)})"
    return index_last_year, f"a user price with no year, read as dollars of {index_last_year} (the index's last year)"


def _convert(figures: list[tuple[str, float, int, str]], usd_year) -> tuple[ConstantDollars, list[Assumption]]:
    from billshape import price_index

    conversions, assumptions, seen = [], [], set()
    year = price_index.check_usd_year(usd_year)
    for figure, usd, cost_year, why in figures:
        conv, rows = price_index.conversion(cost_year, year)
        note = "; ".join(x for x in (why, conv.note) if x)
        conversions.append(DollarConversion(
            figure=figure, nominal_usd=usd, cost_year=cost_year, index_year_used=conv.index_year_used,
            factor=conv.factor, constant_usd=price_index.constant_usd(usd, 1.0, conv.factor), note=note))
        for a in rows:
            if a.name not in seen:
                seen.add(a.name)
                assumptions.append(a)
    return ConstantDollars(usd_year=year, price_index=price_index.DEFAULT_INDEX, conversions=conversions), assumptions


def _generation(bill: TrainingBill | None, ref, experiments_multiplier, staff_usd: float, data_usd: float,
                usd_year, index_last_year: int) -> FrontierGeneration:
    v.non_negative("staff_usd", staff_usd, v.MAX_USD)
    v.non_negative("data_usd", data_usd, v.MAX_USD)
    params = generation_parameters()
    assumptions: list[Assumption] = []
    if bill is not None:
        final, basis = bill.total_usd, "the bill's final run"
        cost_year, why = _bill_cost_year(bill, ref, index_last_year)
        assumptions += bill.assumptions
    else:
        final, basis = float(ref.reported_cost_usd), f"reported cost of {ref.name}"
        cost_year, why = (int(ref.year) if ref.year else None), "the run's year"
        assumptions.append(ref.assumption(f"{ref.name} final-run cost", final, "USD"))

    def triple(name: str, unit: str | None = None) -> Range:
        p = params[name]
        assumptions.append(Assumption(name=f"generation {name} (low / central / high)",
                                      value=f"{p['low']:g} / {p['central']:g} / {p['high']:g}",
                                      unit=unit or p["unit"], source=p["source"], as_of=p["as_of"]))
        return Range(low=p["low"], central=p["central"], high=p["high"])

    if experiments_multiplier is not None:
        m = float(experiments_multiplier)
        mult = Range(low=m, central=m, high=m)
        assumptions.append(user("experiments multiplier", m, None, "experiments_multiplier"))
    else:
        mult = triple("experiments_multiplier")
    months = triple("generation_months")
    share = triple("staff_share")
    if data_usd:
        data = Range(low=float(data_usd), central=float(data_usd), high=float(data_usd))
        assumptions.append(user("data cost of the generation", float(data_usd), "USD", "data_usd"))
    else:
        per_year = triple("data_usd_per_year", "USD per year")
        data = Range(**{b: getattr(per_year, b) * getattr(months, b) / 12.0 for b in ("low", "central", "high")})
    out: dict[str, dict[str, float]] = {"experiments_usd": {}, "staff_usd": {}, "total_usd": {}}
    for b in ("low", "central", "high"):
        g = training.generation_cost_usd(final, getattr(mult, b), 0.0 if staff_usd else getattr(share, b),
                                         getattr(data, b))
        staff = float(staff_usd) if staff_usd else g["staff_usd"]
        out["experiments_usd"][b] = g["experiments_usd"]
        out["staff_usd"][b] = staff
        out["total_usd"][b] = g["total_usd"] + (float(staff_usd) if staff_usd else 0.0)
    if staff_usd:
        assumptions.append(user("staff cost of the generation", float(staff_usd), "USD", "staff_usd"))
    assumptions.append(Assumption(
        name="generation total", value="final x multiplier x (1 + share / (1 - share)) + data",
        source="Cottier et al. 2024, arXiv:2405.21015 (R&D compute multiple; staff share of development cost); "
               "billshape seed 004 (final run + experiments + staff + data per generation)", as_of="2024-05-31"))
    constant = None
    if usd_year is not None:
        if cost_year is None:
            raise BillshapeInputError("usd_year", usd_year, f"a run with a year (the cost year of {ref.name} is not catalogued)")
        figures = [(f"total_usd.{b}", out["total_usd"][b], cost_year, why) for b in ("low", "central", "high")]
        figures.insert(0, ("final_run_usd", final, cost_year, why))
        constant, rows = _convert(figures, usd_year)
        assumptions += rows
    return FrontierGeneration(
        run=ref.name if ref is not None else None, basis=basis, final_run_usd=final, cost_year=cost_year,
        generation_months=months, experiments_multiplier=mult, staff_share=share,
        experiments_usd=Range(**out["experiments_usd"]),
        staff_usd=Range(**out["staff_usd"]) if not staff_usd else Range(low=staff_usd, central=staff_usd, high=staff_usd),
        data_usd=data, total_usd=Range(**out["total_usd"]), bill=bill, constant_dollars=constant,
        assumptions=assumptions,
    )


def training_bill(*, usd_year: float | None = None, generation: bool = False, **fields):
    """Estimate the bill of a training run.

    Give the GPU-hours one way: ``gpu_hours``; or ``gpus`` with ``days`` or ``hours``; or the compute
    (``params`` [+ ``active_params``] and ``tokens``, or ``flops``) with ``mfu`` and ``gpu``. When both the
    compute and the GPU-hours are known, the MFU they imply is reported.

    ``method="rental"`` prices GPU-hours at a rental price (``price`` or ``provider``/``tier``; energy is
    inside the rental price). ``method="amortized"`` follows Epoch AI: hardware value amortised over the
    run plus energy, with defaults from ``data/constants.csv``.

    ``run`` names a published run in ``data/training_runs.csv`` (``billshape catalog runs``): its
    accelerator and GPU-hours are used unless given.

    ``usd_year`` also states the bill (and a run's reported cost) in dollars of that year with the shipped CPI-U
    series (``data/price_index.csv``): a :class:`TrainingBillInUsdYear`.

    ``generation=True`` returns a :class:`FrontierGeneration` instead: the final run (the bill, or, when no price
    is given, the run's reported cost) plus experiments, staff and data over one frontier generation, low /
    central / high, from ``data/frontier_generation.csv`` (Epoch AI's multipliers, published data deals, seed
    004's 12-18 months); ``experiments_multiplier``, ``staff_usd`` and ``data_usd`` replace their ranges when
    given (non-zero).

    Other keyword arguments: those of the bill (``run``, ``gpu``, ``gpu_hours``, ``gpus``, ``days``, ``hours``,
    ``params``, ``active_params``, ``tokens``, ``flops``, ``mfu``, ``precision``, ``price``, ``provider``,
    ``tier``, ``method``, ``hardware_usd``, ``usd_per_kwh``, ``pue``, ``experiments_multiplier``, ``staff_usd``,
    ``data_usd``).
    """
    if not generation and usd_year is None:
        return _final_run_bill(**fields)  # the plain bill: no price index read (train's fast path)
    from billshape import price_index

    if usd_year is not None:
        usd_year = price_index.check_usd_year(usd_year)
    last_year = max(price_index.series())
    if not generation:
        bill = _final_run_bill(**fields)
        ref = catalog.training_run(fields["run"]) if fields.get("run") else None
        cost_year, why = _bill_cost_year(bill, ref, last_year)
        figures = [("total_usd", bill.total_usd, cost_year, why),
                   ("development.total_usd", bill.development.total_usd, cost_year, why)]
        if ref is not None and ref.reported_cost_usd is not None and ref.year:
            figures.append(("reported_cost_usd", ref.reported_cost_usd, int(ref.year),
                            f"{ref.name}'s reported cost, dollars of its year"))
        constant, rows = _convert(figures, usd_year)
        data = {k: getattr(bill, k) for k in TrainingBill.model_fields}
        data["assumptions"] = [*bill.assumptions, *rows]
        return TrainingBillInUsdYear(**data, constant_dollars=constant)
    run = fields.get("run")
    ref = catalog.training_run(run) if run is not None else None
    priced = any(fields.get(k) is not None for k in ("price", "provider", "hardware_usd")) or \
        str(fields.get("method") or "rental").lower().startswith("amorti")
    if ref is not None and not priced:
        if ref.reported_cost_usd is None:
            raise BillshapeInputError("run", run, "a run with a reported cost for `generation` (or price its "
                                      "GPU-hours with `price` or `provider`)")
        bill = None
    else:
        bill = _final_run_bill(**fields)
    return _generation(bill, ref, fields.get("experiments_multiplier"), float(fields.get("staff_usd") or 0.0),
                       float(fields.get("data_usd") or 0.0), usd_year, last_year)


class ServingCost(Result):
    """Cost per token of a deployment at a given throughput."""

    gpus: float
    usd_per_gpu_hour: float
    usd_per_hour: float
    utilization: float
    output_tokens_per_second: float
    usd_per_million_tokens: float
    usd_per_million_output_tokens: float
    input_tokens_per_second: float | None = None
    usd_per_million_input_tokens: float | None = None


def serving_cost(
    *,
    tokens_per_second: float,
    gpus: float,
    price: float | None = None,
    provider: str | None = None,
    tier: str | None = None,
    gpu: str | None = None,
    utilization: float | None = None,
    input_tokens_per_second: float | None = None,
) -> ServingCost:
    """$/million tokens of a deployment from its throughput (seed 003's equation), input and output apart.

    ``tokens_per_second`` is the output (decode) throughput of the whole deployment; give
    ``input_tokens_per_second`` (prefill throughput) to price input tokens too.
    """
    from billshape import inference

    v.positive("tokens_per_second", tokens_per_second, v.MAX_TOKENS)
    v.positive("gpus", gpus, v.MAX_COUNT)
    assumptions: list[Assumption] = [
        user("deployment output throughput", float(tokens_per_second), "tokens/s", "tokens_per_second"),
        user("GPUs", float(gpus), "GPUs", "gpus"),
    ]
    rate, a = rental_price(gpu, price, provider, tier)
    assumptions.append(a)
    if utilization is None:
        u = 1.0
        assumptions.append(Assumption(name="utilization", value=1.0, source="billshape default: every paid hour busy at this throughput (an upper bound on efficiency)", as_of=None))
    else:
        v.fraction("utilization", utilization)
        u = float(utilization)
        assumptions.append(user("utilization", u, None, "utilization"))
    per_hour = float(inference.deployment_usd_per_hour(rate, gpus))
    out = float(inference.usd_per_million_tokens(per_hour, tokens_per_second, u))
    inp = None
    if input_tokens_per_second is not None:
        v.positive("input_tokens_per_second", input_tokens_per_second, v.MAX_TOKENS)
        inp = float(inference.usd_per_million_tokens(per_hour, input_tokens_per_second, u))
        assumptions.append(user("deployment input throughput", float(input_tokens_per_second), "tokens/s", "input_tokens_per_second"))
    assumptions.append(Assumption(name="cost per token equation", value="$/h / (tokens/h x utilization)",
                                  source="billshape seed 003, 'The Economics of AI', section 37.2 (project source text "
                                         "seeds/003_716bce749124bd94.txt)", as_of=None))
    return ServingCost(
        gpus=float(gpus), usd_per_gpu_hour=rate, usd_per_hour=per_hour, utilization=u,
        output_tokens_per_second=float(tokens_per_second), usd_per_million_tokens=out,
        usd_per_million_output_tokens=out, input_tokens_per_second=None if inp is None else float(input_tokens_per_second),
        usd_per_million_input_tokens=inp, assumptions=assumptions,
    )


__all__ = ["training_bill", "TrainingBill", "serving_cost", "ServingCost", "Development", "FrontierGeneration",
           "TrainingBillInUsdYear", "ConstantDollars", "DollarConversion", "Range", "generation_parameters"]
