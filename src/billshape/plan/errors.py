"""Scenario errors in the file's own words: every bad input names its YAML path and its allowed range.

Pydantic's validation errors are translated into one :class:`~billshape.errors.BillshapeInputError` naming the
YAML path (``serving.routes[1].share``) and the allowed range in billshape's words (:func:`_from_validation_error`);
:func:`_check_bounds` range-checks every numeric leaf (a distribution's support or tail included, within
``TAIL_LIMIT``) and returns the values by path. :data:`FLAG_TO_PATH` is the one table that maps the field a
library function names in its error (a CLI flag such as ``--gpus`` or a Python name such as ``gpus``: both are
accepted, see :func:`scenario_key`) to the scenario key it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ValidationError

from billshape.errors import BillshapeInputError
from billshape.plan.dists import Dist, _g
from billshape.plan.schema import Bound, Scenario

TAIL_LIMIT = 0.01  # an unbounded distribution may put at most this much probability outside its field's range


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "scenario"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    model: Any = Scenario
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            inner = getattr(cand, "__args__", (cand,))
            hit = next((c for c in (cand, *inner) if isinstance(c, type) and issubclass(c, BaseModel)), None)
            if hit is not None:
                model = hit
                break
        else:
            return None
    return model


def _field_at(loc: tuple):
    """The pydantic field a validation error's location points at (list indices skipped), or None."""
    names = [part for part in loc if not isinstance(part, int)]
    if not names:
        return None
    parent = _model_at(tuple(names[:-1]))
    return parent.model_fields.get(names[-1]) if parent is not None else None


def _allowed_text(field) -> str | None:
    """A field's allowed range in billshape's words ("an integer >= 1 and <= 240", "one of a, b"), from its
    annotation and constraints; None when the field has no simple range."""
    import typing

    ann = field.annotation
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) is Literal or (args and all(isinstance(a, str) for a in args)):
        return "one of " + ", ".join(str(a) for a in typing.get_args(ann))
    base = ann if isinstance(ann, type) else next((a for a in args if isinstance(a, type)), None)
    if base is str:
        return "text"
    if base not in (int, float):
        return None
    parts = []
    for m in field.metadata:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                parts.append(f"{op} {_g(getattr(m, attr))}")
    kind = "an integer" if base is int else "a number"
    return f"{kind} {' and '.join(parts)}" if parts else kind


PYDANTIC_HINTS = {  # pydantic error types -> a short hint after billshape's "allowed: <range>"
    "int_from_float": "not a whole number",
    "int_parsing": "not an integer",
    "int_parsing_size": "out of range",
    "int_type": "not an integer",
    "float_parsing": "not a number",
    "float_type": "not a number",
    "finite_number": "not a finite number",
    "bool_type": "not a number",
    "string_type": None,
    "literal_error": None,
    "greater_than": None, "greater_than_equal": None, "less_than": None, "less_than_equal": None,
}


def _shown(value: Any) -> Any:
    """The value as an error message may show it: an integer beyond float range (thousands of digits, which
    Python refuses to print past 4,300) as its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 1024:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits"
    return value


def _from_validation_error(exc: ValidationError) -> BillshapeInputError:
    err = exc.errors(include_url=False)[0]
    loc = tuple(err.get("loc", ()))
    typ = err.get("type", "")
    value = _shown(err.get("input"))
    if typ == "extra_forbidden":
        parent = _model_at(loc[:-1])
        known = sorted(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=3, cutoff=0.5)
        return BillshapeInputError(_path(loc), value if not isinstance(value, (dict, list)) else "...",
                                   "a known key: " + ", ".join(known) if known else "no such key",
                                   f"unknown key; did you mean {', '.join(close)}?" if close else "unknown key")
    if typ == "missing":
        field = _field_at(loc)
        allowed = _allowed_text(field) if field is not None else None
        if allowed is None and "bound" in _extra(field):
            allowed = Bound(**_extra(field)["bound"]).text()
        return BillshapeInputError(_path(loc), None, f"{allowed} (required key)" if allowed else "a value (required key)")
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if isinstance(value, (dict, list)):
        value = type(value).__name__
    if typ in ("model_type", "model_attributes_type", "dict_type"):
        return BillshapeInputError(_path(loc), value, "a mapping (indented 'key: value' lines)")
    if typ == "list_type":
        return BillshapeInputError(_path(loc), value, "a list ('- ...' lines)")
    field = _field_at(loc)
    if typ == "value_error" and "bound" in _extra(field):  # a number-or-distribution key (``Number``)
        if isinstance(err.get("input"), dict):  # a distribution's own message ("p10 (300) must be <= p90 (100)")
            return BillshapeInputError(_path(loc), value, msg)
        return BillshapeInputError(_path(loc), value, Bound(**_extra(field)["bound"]).text(),
                                   msg.split(", got ")[0])
    allowed = _allowed_text(field) if field is not None else None
    if allowed is None:  # a number-or-distribution field's own message is already in billshape's words
        return BillshapeInputError(_path(loc), value, msg)
    hint = PYDANTIC_HINTS.get(typ, msg) if typ != "value_error" else msg
    return BillshapeInputError(_path(loc), value, allowed, hint)


def _extra(field) -> dict:
    extra = getattr(field, "json_schema_extra", None)
    return extra if isinstance(extra, dict) else {}


def _walk(model: BaseModel, prefix: tuple = ()):
    """Yield (loc, value, bound, field) for every numeric leaf of a parsed scenario."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        loc = prefix + (name,)
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "bound" in extra:
            if value is not None:
                yield loc, value, Bound(**extra["bound"]), (field, name in model.model_fields_set)
        elif isinstance(value, BaseModel):
            yield from _walk(value, loc)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from _walk(item, loc + (i,))


def _unit(field) -> str | None:
    desc = field.description or ""
    return desc[desc.index("[") + 1:desc.index("]")] if "[" in desc and "]" in desc else None


def _check_bounds(scn: Scenario, given: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Range-check every numeric field; return {yaml path: float | Dist (clipped to its range)}.

    ``given`` (if passed) collects the paths the file set explicitly, with their units.
    """
    values: dict[str, Any] = {}
    for loc, value, bound, (field, is_set) in _walk(scn):
        if given is not None and is_set:
            given[_path(loc)] = _unit(field)
        path = _path(loc)
        if isinstance(value, Dist):
            p = value.p
            lo_hi = [p[k] for k in ("low", "high", "mode") if k in p]
            if value.kind in ("uniform", "triangular"):
                bad = [x for x in lo_hi if not bound.ok(x)]
                if bad:
                    raise BillshapeInputError(path, value.describe(), f"a distribution inside {bound.text()}")
            else:
                for q in ("p10", "p90", "mean"):
                    if q in p and not bound.ok(p[q]):
                        raise BillshapeInputError(f"{path}.{q}", p[q], bound.text())
                tail = value.tail_outside(max(bound.lo, bound.floor), bound.hi)
                if tail > TAIL_LIMIT:
                    raise BillshapeInputError(
                        path, value.describe(), f"a distribution inside {bound.text()}",
                        f"this {value.kind} puts {tail:.1%} outside; use triangular or uniform for a bounded input")
            lo = float(np.nextafter(bound.lo, math.inf)) if bound.lo_open else bound.lo
            lo = max(lo, bound.floor)
            hi = float(np.nextafter(bound.hi, -math.inf)) if bound.hi_open else bound.hi
            values[path] = dataclasses.replace(value, lo=lo, hi=hi)
        else:
            if not bound.ok(value):
                raise BillshapeInputError(path, value, bound.text())
            values[path] = float(value)
    return values


# The field a library function names in its error -> the scenario key (under the block that called it) it came
# from. Keyed by the snake_case name: the library raises CLI flags today (``--gpus``, ``--kv-precision``,
# ``--price/--provider``) and may raise Python field names (``gpus``, ``kv_precision``); :func:`library_field`
# reads both the same way. One table per calling block (see billshape.plan.resolver).
FLAG_TO_PATH: dict[str, dict[str, str]] = {
    # serving.routes[i].self_hosted with model: -> billshape.serving.self_hosted_price
    "self_hosted_model": {"model": "model", "gpu": "gpu", "gpus": "gpus", "tp": "tp", "precision": "precision",
                          "kv_precision": "kv_precision", "price": "usd_per_gpu_hour",
                          "usd_per_gpu_hour": "usd_per_gpu_hour", "utilization": "utilization",
                          "provider": "provider", "tier": "tier"},
    # serving.routes[i].self_hosted gpu: + provider: [tier:] -> billshape.catalog.price
    "self_hosted_gpu_price": {"gpu": "gpu", "gpu_name": "gpu", "provider": "provider", "tier": "tier"},
    # training: -> billshape.estimates.training_bill
    "training": {"gpu": "gpu", "gpus": "gpus", "days": "days", "hours": "hours", "gpu_hours": "gpu_hours",
                 "price": "usd_per_gpu_hour", "usd_per_gpu_hour": "usd_per_gpu_hour", "provider": "provider",
                 "tier": "tier", "method": "method", "price/provider": "usd_per_gpu_hour",
                 "usd_per_gpu_hour/provider": "usd_per_gpu_hour", "days/hours": "days"},
}
FLAG_DEFAULT = {"self_hosted_model": "model", "self_hosted_gpu_price": "provider", "training": None}


def library_field(field: str) -> str:
    """A library error's field as a snake_case name: ``--kv-precision``, ``kv-precision`` and ``kv_precision``
    all read ``kv_precision``; ``--price/--provider`` reads ``price/provider``."""
    return "/".join(part.strip().lstrip("-").replace("-", "_") for part in str(field).split("/"))


def scenario_key(block: str, field: str) -> str:
    """The scenario key (inside ``block``'s YAML mapping) a library error's ``field`` stands for, by
    :data:`FLAG_TO_PATH`; unknown fields fall back to the block's default key (or to the name itself)."""
    name = library_field(field)
    default = FLAG_DEFAULT[block]
    return FLAG_TO_PATH[block].get(name, name if default is None else default)
