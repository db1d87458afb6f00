"""Typed results that carry the assumptions they used.

Every decision returns a :class:`Result` (a pydantic model). A result

* lists its ``assumptions``: each default or input it used, with the catalog row's ``source`` and ``as_of``;
* converts to a plain JSON-safe ``dict`` (:meth:`Result.to_dict`) that never holds NaN or inf;
* renders as an HTML table in Jupyter (``_repr_html_``) and converts to pandas (:meth:`Result.to_pandas`).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict

from billshape.errors import NonFiniteResult  # noqa: F401  (defined there so the CLI names it without pydantic)


class Assumption(BaseModel):
    """One input or default a result used, with where it came from.

    ``source`` is a URL or citation for a catalog default and ``"user input"`` for a value the user gave;
    ``as_of`` is the ISO date of the source (``None`` for user input).
    """

    model_config = ConfigDict(frozen=True)

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
    try:
        import numpy as np
    except ImportError:  # pragma: no cover
        np = None
    if isinstance(obj, BaseModel):
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


class Result(BaseModel):
    """Base class of every billshape result."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

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
