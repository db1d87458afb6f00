"""The fast path of ``billshape train ... --json``: the same bill and the same JSON as Typer's path, without
importing Typer, pydantic or numpy (a few tens of milliseconds instead of half a second).

:func:`train_json` parses the arguments with the standard library against :data:`TRAIN_OPTIONS`, a static copy
of ``billshape train``'s options (``tests/test_startup_fast.py`` checks it against the Click command Typer builds
from ``cmd_train``: names, kinds, defaults, choices), calls :func:`billshape.estimates.training_bill` (what the
train chain calls) with the fields :class:`~billshape.chains.requests.TrainRequest` would hold, and returns the
text :func:`print_json` prints. It returns ``None`` for anything it does not fully understand (another verb, no
``--json``, ``--help``, an unknown or repeated flag, a value that is not a plain decimal number, a choice not in
its set, a positional argument) and for any error while computing (a :class:`~billshape.errors.BillshapeInputError`,
a non-finite result, anything else): :func:`billshape.cli.run` then runs Typer's path, which prints the usual
message and exit code. So error text has one source, and the fast path can only ever print a correct answer.

Standard library only at import time (``tests/test_layers.py``: no CLI flag names below the shells; this module
is a shell).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

_TIERS = ("on-demand", "reserved-1y", "reserved-3y", "spot")  # cli._common.Tier
_TRAIN_PRECISIONS = ("bf16", "fp16", "fp8", "fp4")  # cli._common.TrainPrecision
_METHODS = ("rental", "amortized")

#: ``billshape train``'s options: flag -> (field, kind, default, choices). kind: "str", "float", "choice" (case does
#: not matter; the value is the choice as listed) or "flag" (takes no value). Kept equal to cmd_train's options by
#: tests/test_startup_fast.py.
TRAIN_OPTIONS: dict[str, tuple[str, str, Any, tuple[str, ...] | None]] = {
    "--run": ("run", "str", None, None),
    "--gpu": ("gpu", "str", None, None),
    "--gpu-hours": ("gpu_hours", "float", None, None),
    "--gpus": ("gpus", "float", None, None),
    "--days": ("days", "float", None, None),
    "--hours": ("hours", "float", None, None),
    "--params": ("params", "float", None, None),
    "--active-params": ("active_params", "float", None, None),
    "--tokens": ("tokens", "float", None, None),
    "--flops": ("flops", "float", None, None),
    "--mfu": ("mfu", "float", None, None),
    "--precision": ("precision", "choice", "bf16", _TRAIN_PRECISIONS),
    "--price": ("price", "float", None, None),
    "--provider": ("provider", "str", None, None),
    "--tier": ("tier", "choice", None, _TIERS),
    "--method": ("method", "choice", "rental", _METHODS),
    "--hardware-usd": ("hardware_usd", "float", None, None),
    "--usd-per-kwh": ("usd_per_kwh", "float", None, None),
    "--pue": ("pue", "float", None, None),
    "--experiments-multiplier": ("experiments_multiplier", "float", None, None),
    "--staff-usd": ("staff_usd", "float", 0.0, None),
    "--data-usd": ("data_usd", "float", 0.0, None),
    "--usd-year": ("usd_year", "float", None, None),
    "--generation": ("generation", "flag", False, None),
    "--snapshot": ("snapshot", "str", None, None),
    "--max-age-days": ("max_age_days", "float", None, None),
    "--json": ("json_out", "flag", False, None),
}
#: options of the command, not fields of its request (cli._common.catalog_options applies the catalog ones)
_NOT_REQUEST = ("json_out", "snapshot", "max_age_days")

#: a plain decimal number (what every float parser reads alike): no inf/nan, no underscores, no spaces, no hex
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def json_text(payload: Any, fields: bool = True) -> str:
    """The text of one JSON object as ``--json`` prints it (NaN/inf are rejected, never printed); provenance in CLI
    flags (``user input (--gpus)``). ``fields=False`` for a payload whose ``user input (...)`` names a file or a
    YAML path, never a library field (a plan: ``user input (budget)`` stays as is); backticked fields still read
    as flags."""
    from billshape.cli._flags import cli_payload
    from billshape.results import json_safe

    return json.dumps(cli_payload(json_safe(payload), fields=fields), allow_nan=False, indent=2) + "\n"


def print_json(payload: Any, fields: bool = True) -> None:
    """Print :func:`json_text` of ``payload`` on stdout (what every verb's ``--json`` does)."""
    sys.stdout.write(json_text(payload, fields=fields))


def catalog_options(snapshot: str | None, max_age_days: float | None) -> None:
    """Switch the catalog's price tables to ``--snapshot`` and set the staleness threshold ``--max-age-days``
    for this command (errors name the flag: one line, exit 2). Every verb that reads catalog rows calls it
    first (``cli._common`` re-exports it)."""
    from billshape import snapshots, staleness
    from billshape.errors import BillshapeInputError

    if max_age_days is not None:
        if not (0 <= max_age_days <= 36_500) or max_age_days != int(max_age_days):
            raise BillshapeInputError("--max-age-days", max_age_days, "a whole number of days in [0, 36500]")
        max_age_days = int(max_age_days)
    staleness.set_max_age_days(max_age_days)
    try:
        snapshots.use(snapshot)
    except BillshapeInputError as exc:
        raise BillshapeInputError("--snapshot", exc.value, exc.allowed, exc.hint) from None


def parse_train(args: list[str]) -> dict[str, Any] | None:
    """The option values of ``train ARGS`` (field -> value, every option, defaults filled in), or None when the
    arguments are not ones this parser fully understands (Typer's path then reads them)."""
    if not args or args[0] != "train":
        return None
    values: dict[str, Any] = {}
    rest = args[1:]
    i = 0
    while i < len(rest):
        token = rest[i]
        i += 1
        if not token.startswith("--"):  # a positional argument, a short option, "-h": Typer's
            return None
        flag, eq, inline = token.partition("=")
        spec = TRAIN_OPTIONS.get(flag)
        if spec is None:  # --help, an unknown flag, "--"
            return None
        field, kind, _default, choices = spec
        if field in values:  # repeated: Typer's
            return None
        if kind == "flag":
            if eq:
                return None
            values[field] = True
            continue
        if eq:
            raw = inline
        else:
            if i >= len(rest):
                return None
            raw = rest[i]
            i += 1
            if raw.startswith("-"):  # an option where a value should be, or a negative number: Typer's
                return None
        if kind == "float":
            if _DECIMAL.fullmatch(raw) is None:
                return None
            values[field] = float(raw)
        elif kind == "choice":
            match = [c for c in choices if c.lower() == raw.lower()]
            if len(match) != 1:
                return None
            values[field] = match[0]
        else:
            values[field] = raw
    for field, _kind, default, _choices in TRAIN_OPTIONS.values():
        values.setdefault(field, default)
    return values


def train_request_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The fields of the ``TrainRequest`` cmd_train builds from these option values (``json_out`` and the catalog
    options are the CLI's)."""
    return {k: v for k, v in values.items() if k not in _NOT_REQUEST}


def train_json(args: list[str]) -> str | None:
    """The ``--json`` text of ``billshape ARGS`` when ARGS is a ``train ... --json`` this path understands and the
    bill computes; else None (then Typer's path runs and reports any error)."""
    values = parse_train(args)
    if values is None or not values["json_out"]:
        return None
    try:
        from billshape.estimates import training_bill
        from billshape.staleness import attach

        catalog_options(values["snapshot"], values["max_age_days"])
        bill = attach(training_bill(**train_request_fields(values)))
        return json_text(bill.to_dict())
    except Exception:  # every error is reported by Typer's path, in its words
        return None
