"""Typed results that carry the assumptions they used.

Every decision returns a :class:`Result` (a :class:`Record`: a typed record with pydantic's reading API). A result

* lists its ``assumptions``: each default or input it used, with the catalog row's ``source`` and ``as_of``;
* converts to a plain JSON-safe ``dict`` (:meth:`Result.to_dict`) that never holds NaN or inf;
* renders as an HTML table in Jupyter (``_repr_html_``) and converts to pandas (:meth:`Result.to_pandas`).

Results and catalog rows are built by the library from values it has already checked, so they need no validator:
:class:`Record` makes each subclass a standard-library :func:`dataclasses.dataclass` (keyword-only fields,
``frozen`` from ``model_config``) and adds the part of pydantic's model API the project reads (``model_fields``,
``model_dump``, ``model_copy``, ``model_validate``). Its ``__post_init__`` converts numbers the way pydantic's lax
mode does (an ``int`` or numpy scalar given for a ``float`` field is stored as a Python ``float``;
``tests/test_startup_fast.py`` compares the two), so that importing a result costs no pydantic:
``billshape train ... --json`` starts in a few tens of milliseconds. User input is still validated by pydantic,
in the requests of :mod:`billshape.chains.requests`.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import inspect
import json
import math
import sys
import types
import typing
from typing import Any

from billshape.errors import NonFiniteResult  # noqa: F401  (defined there so the CLI names it without pydantic)

_NoneType = type(None)


def _numpy_scalar_kind(v: Any) -> str | None:
    """``"b"``, ``"i"``, ``"u"`` or ``"f"`` for a numpy scalar or 0-d array of that kind, else None."""
    if "numpy" not in sys.modules or getattr(v, "ndim", None) != 0:
        return None
    kind = getattr(getattr(v, "dtype", None), "kind", None)
    return kind if kind in ("b", "i", "u", "f") else None


def _to_float(v: Any) -> Any:
    t = type(v)
    if t is float:
        return v
    if t is int or t is bool or isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):  # pydantic reads numeric text
        try:
            return float(v)
        except ValueError:
            return v
    return float(v) if _numpy_scalar_kind(v) else v


def _to_int(v: Any) -> Any:
    t = type(v)
    if t is int:
        return v
    if t is bool or isinstance(v, int):
        return int(v)
    if isinstance(v, str):
        return int(v) if v.strip().lstrip("+-").isdigit() else v
    if isinstance(v, float) or _numpy_scalar_kind(v) == "f":
        return int(v) if math.isfinite(v) and float(v).is_integer() else v
    return int(v) if _numpy_scalar_kind(v) else v


def _to_bool(v: Any) -> Any:
    if type(v) is bool:
        return v
    if _numpy_scalar_kind(v) == "b" or (isinstance(v, (int, float)) and v in (0, 1)):
        return bool(v)
    return v


def _union(members: tuple) -> Any:
    coercers = [(m, _coercer(m)) for m in members if m is not _NoneType]
    scalars = {m for m in members if m in (bool, int, float, str)}

    def coerce(v: Any) -> Any:
        if v is None:
            return v
        t = type(v)
        if t in scalars:
            return v
        if isinstance(v, str):
            for m in (int, float):
                if m in scalars:
                    c = _to_int if m is int else _to_float
                    out = c(v)
                    if out is not v:
                        return out
            return v
        if isinstance(v, bool) or _numpy_scalar_kind(v) == "b":
            for m in ((bool, int, float) if isinstance(v, bool) else (bool, float, int)):
                if m in scalars:
                    return m(v)
        if isinstance(v, int) or _numpy_scalar_kind(v) in ("i", "u"):
            if float in scalars and not isinstance(v, int):  # pydantic's smart union: numpy ints become floats
                return float(v)
            if int in scalars:
                return int(v)
            if float in scalars:
                return float(v)
        if isinstance(v, float) or _numpy_scalar_kind(v) == "f":
            if float in scalars:
                return float(v)
            if int in scalars:
                return _to_int(v)
        for m, c in coercers:
            origin = typing.get_origin(m) or m
            if c is not None and isinstance(origin, type) and m not in scalars and isinstance(v, origin):
                return c(v)
        return v

    return coerce


def _coercer(tp: Any):
    """A function converting a value for a field annotated ``tp`` as pydantic's lax mode would (None: as is).
    Values pydantic would reject are kept as they are: records are built from checked values."""
    if tp is float:
        return _to_float
    if tp is int:
        return _to_int
    if tp is bool:
        return _to_bool
    if tp is list or tp is tuple:
        return lambda v: tp(v) if isinstance(v, (list, tuple)) else v
    if tp is dict:
        return lambda v: dict(v) if isinstance(v, dict) else v
    if isinstance(tp, type) and issubclass(tp, Record):
        return lambda v: tp(**v) if isinstance(v, dict) else v
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        return _union(args)
    if origin is list or (origin is tuple and len(args) == 2 and args[1] is Ellipsis):
        item = _coercer(args[0]) if args else None
        if item is None:
            return lambda v: origin(v) if isinstance(v, (list, tuple)) else v
        return lambda v: origin(item(x) for x in v) if isinstance(v, (list, tuple)) else v
    if origin is dict and len(args) == 2:
        kc, vc = _coercer(args[0]), _coercer(args[1])
        return lambda v: {(kc(k) if kc else k): (vc(x) if vc else x) for k, x in v.items()} if isinstance(v, dict) else v
    return None  # str, Any, Literal[...], arbitrary types: as given


def _copy_default(value: Any) -> Any:
    return type(value)(value) if type(value) in (list, dict, set) else value


def _private_default(value: Any) -> Any:
    get = getattr(value, "get_default", None)  # a pydantic PrivateAttr
    if get is not None:
        try:
            return get(call_default_factory=True)
        except TypeError:  # pragma: no cover - older pydantic
            return get()
    return _copy_default(value)


def field_types(cls: type[Record]) -> dict[str, Any]:
    """Each field's type: the class's annotations resolved by :func:`typing.get_type_hints`, once per class.

    Empty for a class whose annotations name something its module cannot resolve (a class defined inside a
    function with local names): its values are then stored as given."""
    hints = cls.__dict__.get("__record_types__")
    if hints is None:
        try:
            resolved = typing.get_type_hints(cls)
        except Exception:  # a name local to a function
            resolved = {}
        names = cls.model_fields
        hints = {n: resolved[n] for n in names if n in resolved}
        cls.__record_types__ = hints
    return hints


def _coercers(cls: type[Record]) -> tuple:
    found = cls.__dict__.get("__record_coercers__")
    if found is None:
        found = tuple((n, c) for n, tp in field_types(cls).items() if (c := _coercer(tp)) is not None)
        cls.__record_coercers__ = found
    return found


def _dump(v: Any) -> Any:
    if isinstance(v, Record):
        data = v.model_dump()
        if isinstance(v, Result) and not _declares_warnings(type(v)):  # a nested result lists them only when set
            for key in ("snapshot", "warnings"):
                if not data.get(key):
                    data.pop(key, None)
        return data
    if isinstance(v, list):
        return [_dump(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_dump(x) for x in v)
    if isinstance(v, dict):
        return {k: _dump(x) for k, x in v.items()}
    return v


class Record:
    """A typed record: each subclass is a :func:`dataclasses.dataclass` (keyword-only, ``eq``, ``repr``;
    ``model_config = {"frozen": True}`` for immutable, hashable records), with the part of pydantic's model API
    the project reads.

    * Fields and defaults are the dataclass's; a mutable default (``x: list = []``) is given to each instance as
      a copy (a ``default_factory``). Unknown keywords and missing required fields are a ``TypeError``.
    * ``__post_init__`` converts each value (a default too) as pydantic's lax mode does (an ``int`` or numpy
      scalar for a ``float`` field is stored as a Python ``float``; see :func:`_coercer` and :func:`field_types`).
    * A ``_name`` annotation is a private attribute: a dataclass field that ``__init__``, ``repr``, equality
      and :attr:`model_fields` leave out, set from its default (or a pydantic ``PrivateAttr``'s factory).
    """

    model_config: typing.ClassVar[dict[str, Any]] = {}
    model_fields: typing.ClassVar[dict[str, dataclasses.Field]] = {}

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        for name, ann in inspect.get_annotations(cls).items():  # this class's own (dataclasses imports inspect)
            if "ClassVar" in (ann if isinstance(ann, str) else repr(ann)):
                continue
            default = cls.__dict__.get(name, dataclasses.MISSING)
            if isinstance(default, dataclasses.Field):
                continue
            if name.startswith("_"):
                kw: dict[str, Any] = {}
                if default is not dataclasses.MISSING:
                    kw["default_factory"] = functools.partial(_private_default, default)
                setattr(cls, name, dataclasses.field(init=False, repr=False, compare=False, **kw))
            elif default is not dataclasses.MISSING and type(default).__hash__ is None:  # [] or {}: one per record
                setattr(cls, name, dataclasses.field(default_factory=functools.partial(_copy_default, default)))
        frozen = bool(cls.model_config.get("frozen", False))
        dataclasses.dataclass(cls, kw_only=True, frozen=frozen, eq=True, repr=True)
        cls.model_fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        cls.__record_types__ = None  # resolved on first instance (annotations may name later classes)
        cls.__record_coercers__ = None

    def __post_init__(self) -> None:
        d = self.__dict__  # written directly, so that frozen records convert too
        for name, coerce in _coercers(type(self)):
            d[name] = coerce(d[name])

    def __iter__(self):
        for name in self.model_fields:
            yield name, getattr(self, name)

    @classmethod
    def model_validate(cls, obj: Any):
        """``obj`` if it is one already, else ``cls(**obj)``."""
        return obj if isinstance(obj, cls) else cls(**obj)

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        """The fields as a dict (nested records as dicts); ``mode="json"``: JSON-safe (see :func:`json_safe`)."""
        data = {n: _dump(getattr(self, n)) for n in self.model_fields}
        return json_safe(data) if mode == "json" else data

    def model_copy(self, update: dict[str, Any] | None = None, deep: bool = False):
        """A copy with ``update``'s fields replaced, as :func:`dataclasses.replace` but not converted (as in
        pydantic) and keeping private attributes."""
        import copy

        new = copy.deepcopy(self) if deep else copy.copy(self)
        unknown = set(update or ()) - set(self.__dataclass_fields__)
        if unknown:
            raise TypeError(f"{type(self).__name__}.model_copy: unknown field(s) {sorted(unknown)}")
        new.__dict__.update(update or {})
        return new


class Assumption(Record):
    """One input or default a result used, with where it came from.

    ``source`` is a URL or citation for a catalog default and ``"user input"`` for a value the user gave;
    ``as_of`` is the ISO date of the source (``None`` for user input).
    """

    model_config = {"frozen": True}

    name: str
    value: Any
    unit: str | None = None
    source: str
    as_of: str | None = None


def user(name: str, value: Any, unit: str | None = None, field: str | None = None) -> Assumption:
    """An assumption the user supplied directly; ``field`` names the Python field it came from (``"gpus"``).

    The source reads ``"user input (gpus)"``; shells translate the field to their own words (the CLI prints
    ``"user input (--gpus)"``, see :mod:`billshape.cli._flags`).
    """
    src = "user input" + (f" ({field})" if field else "")
    return Assumption(name=name, value=value, unit=unit, source=src, as_of=None)


def derived(name: str, value: Any, unit: str | None = None, how: str = "") -> Assumption:
    """A value billshape computed from other assumptions (``how`` says from what)."""
    return Assumption(name=name, value=value, unit=unit, source=f"computed: {how}" if how else "computed", as_of=None)


def json_safe(obj: Any, _path: str = "") -> Any:
    """Convert numpy scalars/arrays to Python types; raise :class:`NonFiniteResult` rather than let a NaN or
    inf leak into output."""
    np = sys.modules.get("numpy")  # no numpy loaded: no numpy value can be here
    if isinstance(obj, Record):
        return json_safe(obj.model_dump(mode="python"), _path)
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, pydantic.BaseModel):
        return json_safe(obj.model_dump(mode="python"), _path)
    if isinstance(obj, dict):
        return {str(k): json_safe(v, f"{_path}.{k}" if _path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, f"{_path}[{i}]") for i, v in enumerate(obj)]
    if np is not None:
        if isinstance(obj, np.ndarray):
            return json_safe(obj.tolist(), _path)
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            obj = float(obj)
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise NonFiniteResult(_path, obj)
        return obj
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


class Result(Record):
    """Base class of every billshape result.

    ``warnings``: one line per used catalog figure older than its kind's threshold on the pricing date (see
    :mod:`billshape.staleness`); ``snapshot``: the id of the refreshed catalog snapshot the prices came from
    (:mod:`billshape.snapshots`; None: the shipped catalog). ``to_dict`` lists each only when it is set, just
    before the assumptions (a result whose own type declares ``warnings`` always lists it).
    """

    assumptions: list[Assumption] = []
    warnings: list[str] = []
    snapshot: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (numbers as Python floats/ints; never NaN or inf)."""
        data = json_safe(self.model_dump(mode="python"))
        own_warnings = _declares_warnings(type(self))
        for key in ("snapshot", "warnings"):
            value = data.pop(key, None)
            if value or (key == "warnings" and own_warnings):
                data[key] = value if value is not None else []
        data["assumptions"] = data.pop("assumptions")  # listed last, after the figures
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def scalars(self) -> dict[str, Any]:
        """The result's scalar fields (no lists, dicts or assumptions)."""
        return {
            k: v
            for k, v in self.to_dict().items()
            if k != "assumptions" and not isinstance(v, (list, dict))
        }

    def to_pandas(self):
        """A one-row DataFrame of the scalar fields (assumptions in ``.attrs['assumptions']``)."""
        from billshape._extras import require

        pd = require("pandas", "pandas", "Result.to_pandas()")
        frame = pd.DataFrame([self.scalars()])
        frame.attrs["assumptions"] = [a.model_dump() for a in self.assumptions]
        return frame

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.scalars().items()
        )
        arows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(x))}</td>" for x in (a.name, a.value, a.unit or "", a.source, a.as_of or "")) + "</tr>"
            for a in self.assumptions
        )
        return (
            f"<b>{type(self).__name__}</b><table>{rows}</table>"
            f"<details><summary>assumptions ({len(self.assumptions)})</summary><table>"
            "<tr><th>name</th><th>value</th><th>unit</th><th>source</th><th>as_of</th></tr>"
            f"{arows}</table></details>"
        )


def _declares_warnings(cls: type) -> bool:
    """Whether a Result subclass declares its own ``warnings`` field (then listed even when empty)."""
    return any("warnings" in inspect.get_annotations(c) for c in cls.__mro__ if c is not Result
               and issubclass(c, Result))


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)
