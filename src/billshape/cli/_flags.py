"""One table from a library field path to the CLI's words.

Below the shells, errors (:class:`billshape.errors.BillshapeInputError`) and provenance
(``"user input (gpus)"``) name Python fields and field paths: ``gpus``, ``tokens_per_second``,
``routes[1].gpus``, compound ``price/provider`` (one of two), or a field followed by a location
(``measured output_throughput``, ``prices my.csv:3 input``). Other fields named inside an error's
``allowed`` or ``hint`` text, or inside a provenance string, are written in backticks (```params```).

The CLI translates all of them here, so its output reads as before (``--gpus``, ``--api-price``).
The default rule is ``"--" + field.replace("_", "-")``; :data:`CLI_FLAGS` holds the exceptions, where a
library keyword argument differs from the flag that feeds it.

The table lives in the CLI (flags are the CLI's words; no module outside ``cli/`` and ``app/`` holds one, which
``tests/test_layers.py`` checks). The app has its own table of widget labels (:mod:`billshape.app.labels`).

Import cost: the standard library only (the CLI imports this on an error path).
"""

from __future__ import annotations

import re

#: field -> CLI flag, where the default rule (``--`` + dashes for underscores) does not give the flag.
CLI_FLAGS: dict[str, str] = {
    # breakeven (billshape.decide.break_even / build_vs_buy_horizon / horizon_cashflows)
    "api_usd_per_million_tokens": "--api-price",
    "own_usd_per_million_tokens": "--own-cost",
    "api_usd_per_token": "--api-price",
    "own_usd_per_token": "--own-cost",
    "fixed_usd": "--fixed",
    "volume_tokens_per_month": "--volume-per-month",
    "api_price_steps": "--api-price-step",
    # payback (billshape.business.payback)
    "revenue_per_user_month_usd": "--revenue-per-user-month",
    "cost_per_user_month_usd": "--cost-per-user-month",
    # capacity (billshape.decide.capacity_plan)
    "demand_gpus": "--demand",
    "reserved_usd_per_gpu_hour": "--reserved-price",
    "on_demand_usd_per_gpu_hour": "--on-demand-price",
    "spot_usd_per_gpu_hour": "--spot-price",
    "interruptions_per_hour": "--spot-interruptions-per-hour",
    # size (billshape.decide.size_model): the accelerator's peak FLOP/s comes from --gpu
    "peak_flops_per_second": "--gpu",
    # market (billshape.chains.market)
    "steps": "--step",
    # usage (billshape.chains.usage): repeatable options
    "mapping": "--map",
    "routes": "--route",
}

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_ITEM = re.compile(r"([a-z][a-z0-9_]*)\[\d+\]")  # an item of a list field (routes[1]): the repeatable flag
_REF = re.compile(r"`([a-z][a-z0-9_]*)`")
_USER = re.compile(r"^user input \(([^()]*)\)$")
_DEFAULT = re.compile(r"^billshape default \(([a-z][a-z0-9_]*) ")


def cli_flag(field: str) -> str:
    """The CLI's name for a field path.

    Parameters
    ----------
    field : str
        A field (``"gpus"``), an item of a list field (``"routes[1]"`` -> ``"--route"``), a compound of alternatives (``"batch/mode"`` -> ``"--batch/--mode"``), or a field
        followed by a location after a space (``"measured output_throughput"`` -> ``"--measured output_throughput"``).
        A name already spelled as a flag (``"--gpus"``) or a dotted YAML path (``"product.users"``) is returned as is.

    Returns
    -------
    str
        The flag text the CLI prints.
    """
    if not field or field.startswith("-"):
        return field
    head, sep, tail = field.partition(" ")
    parts = head.split("/")
    if len(parts) > 1 and all(_NAME.fullmatch(part) for part in parts):
        return "/".join(cli_flag(part) for part in parts) + sep + tail
    item = _ITEM.fullmatch(head)
    if item:  # routes[1] -> --route: the CLI repeats the flag, and the message shows the item's value
        head = item.group(1)
    if not _NAME.fullmatch(head):  # a YAML path, a file position: not a flag
        return field
    flag = CLI_FLAGS.get(head, "--" + head.replace("_", "-"))
    return flag + sep + tail


def cli_text(text: str | None) -> str | None:
    """Translate the backticked field names in an error's ``allowed``/``hint`` text to CLI flags."""
    if not text:
        return text
    return _REF.sub(lambda m: cli_flag(m.group(1)), text)


def cli_source(source: str, fields: bool = True) -> str:
    """Translate a provenance string: ``"user input (gpus)"`` -> ``"user input (--gpus)"``, backticked fields too.

    ``user input (NAME)`` names a library field only where :func:`billshape.results.user` wrote it; a plan's
    provenance puts its file there (``user input (budget)``), so its shell passes ``fields=False`` and only the
    backticked names are translated.
    """
    m = _USER.match(source) if fields else None
    if m:
        return f"user input ({cli_flag(m.group(1))})"
    m = _DEFAULT.match(source)
    if m:
        source = f"billshape default ({cli_flag(m.group(1))} " + source[m.end():]
    return cli_text(source)


def cli_message(exc, field: bool = True) -> str:
    """The one-line CLI message of a :class:`~billshape.errors.BillshapeInputError`, in flags.

    ``field=False`` keeps ``exc.field`` as it is (a scenario's YAML path) and translates only the text.
    """
    from billshape.errors import BillshapeInputError

    name = cli_flag(exc.field) if field else exc.field
    return BillshapeInputError(name, exc.value, cli_text(exc.allowed), cli_text(exc.hint)).message


def cli_payload(obj, fields: bool = True):
    """A JSON payload with every assumption's ``source`` translated by :func:`cli_source` (in place; returned)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key == "assumptions" and isinstance(value, list):
                for a in value:
                    if isinstance(a, dict) and isinstance(a.get("source"), str):
                        a["source"] = cli_source(a["source"], fields)
            else:
                cli_payload(value, fields)
    elif isinstance(obj, list):
        for value in obj:
            cli_payload(value, fields)
    return obj
