"""Typed results that carry the assumptions they used.

Every decision returns a :class:`Result` (a :class:`Record`: a typed record with pydantic's reading API). A result

* lists its ``assumptions``: each default or input it used, with the catalog row's ``source`` and ``as_of``;
* converts to a plain JSON-safe ``dict`` (:meth:`Result.to_dict`) that never holds NaN or inf;
* renders as an HTML table in Jupyter (``_repr_html_``) and converts to pandas (:meth:`Result.to_pandas`).

Results and catalog rows are built by the library from values it has already checked, so they need no validator:
:class:`Record` is a small standard-library class (fields from the class annotations, defaults, ``frozen``) with
the part of pydantic's model API the project reads (``model_fields``, ``model_dump``, ``model_copy``,
``model_validate``, equality, ``repr``). It converts numbers the way pydantic's lax mode does (an ``int`` or numpy
scalar given for a ``float`` field is stored as a Python ``float``; ``tests/test_startup_fast.py`` compares the two),
so that importing a result costs no pydantic: ``billshape train ... --json`` starts in a few tens of milliseconds.
User input is still validated by pydantic, in the requests of :mod:`billshape.chains.requests`.
"""

from __future__ import annotations

import html
import json
import math
import sys
import types
import typing
from typing import Any

from billshape.errors import NonFiniteResult  # noqa: F401  (defined there so the CLI names it without pydantic)

_MISSING = object()
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


class FieldInfo:
    """A record field: its name, its annotation (evaluated on first use) and its default."""

    __slots__ = ("name", "_annotation", "_module", "default")

    def __init__(self, name: str, annotation: Any, module: str, default: Any = _MISSING):
        self.name, self._annotation, self._module, self.default = name, annotation, module, default

    @property
    def annotation(self) -> Any:
        """The field's type (the annotation's text evaluated in its module; the text if that fails)."""
        if isinstance(self._annotation, str):
            try:
                self._annotation = eval(self._annotation, dict(vars(sys.modules[self._module])))  # noqa: S307
            except Exception:  # a name local to a function: keep the text (the value is stored as given)
                pass
        return self._annotation

    def is_required(self) -> bool:
        return self.default is _MISSING

    def __repr__(self) -> str:
        return f"FieldInfo(name={self.name!r}, annotation={self.annotation!r}, required={self.is_required()})"


class _RecordMeta(type):
    def __new__(mcls, name, bases, ns, **kwargs):
        cls = super().__new__(mcls, name, bases, ns, **kwargs)
        fields: dict[str, FieldInfo] = {}
        private: dict[str, Any] = {}
        for base in reversed(cls.__mro__[1:]):
            fields.update(getattr(base, "__record_fields__", {}))
            private.update(getattr(base, "__record_private__", {}))
        own = ns.get("__annotations__")
        if own is None and "__annotate__" in ns:  # pragma: no cover - Python 3.14 lazy annotations
            own = cls.__annotations__
        for fname, ann in (own or {}).items():
            text = ann if isinstance(ann, str) else repr(ann)
            if "ClassVar" in text:
                continue
            default = ns.get(fname, _MISSING)
            if fname.startswith("_"):
                if default is not _MISSING:
                    private[fname] = default
                    delattr(cls, fname)
                continue
            if default is not _MISSING and not isinstance(default, (property, types.FunctionType)):
                delattr(cls, fname)  # as pydantic: the default lives in the field, not on the class
            else:
                default = _MISSING
            fields[fname] = FieldInfo(fname, ann, cls.__module__, default)
        config = dict(getattr(cls, "model_config", {}) or {})
        cls.__record_fields__ = fields
        cls.__record_private__ = private
        cls.__record_frozen__ = bool(config.get("frozen", False))
        cls.__record_coercers__ = None  # built on first instance (annotations may name later classes)
        cls.__hash__ = _record_hash if cls.__record_frozen__ else None  # as pydantic: only frozen records hash
        return cls

    @property
    def model_fields(cls) -> dict[str, FieldInfo]:
        """The fields, in order (a base class's fields first), as pydantic's ``model_fields``."""
        return cls.__record_fields__


def _record_hash(self) -> int:
    return hash((type(self),) + tuple(self.__dict__.get(n) for n in type(self).__record_fields__))


def _private_default(value: Any) -> Any:
    get = getattr(value, "get_default", None)  # a pydantic PrivateAttr
    if get is not None:
        try:
            return get(call_default_factory=True)
        except TypeError:  # pragma: no cover - older pydantic
            return get()
    return _copy_default(value)


def _copy_default(value: Any) -> Any:
    return type(value)(value) if type(value) in (list, dict, set) else value


def _dump(v: Any) -> Any:
    if isinstance(v, Record):
        return v.model_dump()
    if isinstance(v, list):
        return [_dump(x) for x in v]
    if isinstance(v, tuple):
        return tuple(_dump(x) for x in v)
    if isinstance(v, dict):
        return {k: _dump(x) for k, x in v.items()}
    return v


class Record(metaclass=_RecordMeta):
    """A typed record: fields from the class annotations, keyword construction, numbers converted as pydantic's lax
    mode converts them, ``model_config = {"frozen": True}`` for immutable (and hashable) records. Unknown keywords
    are ignored and a missing required field is a ``TypeError``."""

    model_config: typing.ClassVar[dict[str, Any]] = {}

    def __init__(self, **data: Any):
        cls = type(self)
        coercers = cls.__record_coercers__
        if coercers is None:
            coercers = cls.__record_coercers__ = {n: _coercer(f.annotation) for n, f in cls.__record_fields__.items()}
        values: dict[str, Any] = {}
        for name, f in cls.__record_fields__.items():
            if name in data:
                value = data[name]
                c = coercers[name]
                values[name] = value if c is None else c(value)
            elif f.default is not _MISSING:
                values[name] = _copy_default(f.default)
            else:
                raise TypeError(f"{cls.__name__}: missing required field {name!r}")
        for name, default in cls.__record_private__.items():
            values[name] = _private_default(default)
        object.__setattr__(self, "__dict__", values)

    def __setattr__(self, name: str, value: Any) -> None:
        if type(self).__record_frozen__ and not name.startswith("_"):
            raise TypeError(f"{type(self).__name__} is frozen: field {name!r} cannot be set")
        object.__setattr__(self, name, value)

    def __eq__(self, other: Any) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __iter__(self):
        for name in type(self).__record_fields__:
            yield name, self.__dict__[name]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={self.__dict__[n]!r}" for n in type(self).__record_fields__)
        return f"{type(self).__name__}({inner})"

    @classmethod
    def model_validate(cls, obj: Any):
        """``obj`` if it is one already, else ``cls(**obj)``."""
        return obj if isinstance(obj, cls) else cls(**obj)

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        """The fields as a dict (nested records as dicts); ``mode="json"``: JSON-safe (see :func:`json_safe`)."""
        data = {n: _dump(self.__dict__[n]) for n in type(self).__record_fields__}
        return json_safe(data) if mode == "json" else data

    def model_copy(self, update: dict[str, Any] | None = None, deep: bool = False):
        """A copy with ``update``'s fields replaced (not converted, as in pydantic)."""
        import copy

        new = object.__new__(type(self))
        values = copy.deepcopy(self.__dict__) if deep else dict(self.__dict__)
        values.update(update or {})
        object.__setattr__(new, "__dict__", values)
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
    ``"user input (--gpus)"``, see :mod:`billshape.present.labels`).
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
    """Base class of every billshape result."""

    assumptions: list[Assumption] = []

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (numbers as Python floats/ints; never NaN or inf)."""
        data = json_safe(self.model_dump(mode="python"))
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


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)
