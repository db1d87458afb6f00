"""Errors raised for bad input, non-finite results and missing optional extras.

Every error a user can cause is a :class:`BillshapeInputError` that names the field, the value given and
the allowed range, so that shells (CLI, app) can print it as one line without a traceback. This module imports
nothing heavy (no numpy, no pydantic at import time), so the CLI can name these classes on every call.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BillshapeInputError(ValueError):
    """Bad input: names the field, the value and what is allowed.

    Parameters
    ----------
    field : str
        The Python field or field path that was wrong (e.g. ``"price"``, ``"routes[1].gpus"`` or
        ``"product.users"``), never a CLI flag: shells translate it (:func:`billshape.cli._flags.cli_flag`).
        Other fields named in ``allowed`` or ``hint`` are written in backticks (``"only with `params`"``)
        so that a shell can translate them too.
    value : object
        The value that was given.
    allowed : str
        A human description of the allowed range (e.g. ``"> 0"`` or ``"in (0, 1]"``).
    hint : str, optional
        Extra advice such as the closest valid names.
    """

    def __init__(self, field: str, value: object, allowed: str, hint: str | None = None):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        if self.value is None:
            text = f"{self.field}: missing; required: {self.allowed}"
        else:
            text = f"{self.field}: got {_show(self.value)}; allowed: {self.allowed}"
        if self.hint:
            text += f" ({self.hint})"
        return text


def _show(value: object) -> str:
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            flat = value.ravel()
            if flat.size == 1:
                value = flat[0].item()
            else:
                return repr(flat[:3].tolist()) + ("..." if flat.size > 3 else "")
        if isinstance(value, np.generic):
            value = value.item()
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        pass
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 128:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1} digits"  # repr fails past 4,300
    if isinstance(value, str) and len(value) > 200:  # one readable line, not a pasted file
        return repr(value[:60] + "...") + f" ({len(value):,} characters)"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(int(value))  # "gpus: got 0", not "got 0.0"
    return repr(value)


def unknown_name(field: str, value: str, known: Iterable[str]) -> BillshapeInputError:
    """An error for an unknown catalog name that suggests the closest known names."""
    known = sorted(set(known))
    close = difflib.get_close_matches(value.lower(), known, n=3, cutoff=0.4)
    hint = f"did you mean {', '.join(close)}?" if close else None
    return BillshapeInputError(field, value, "one of " + ", ".join(known), hint)


class NonFiniteResult(ValueError):
    """A result holds NaN or inf (inputs so extreme that the arithmetic overflowed); ``path`` names the key."""

    def __init__(self, path: str, value: float):
        self.path = path or "result"
        self.value = value
        super().__init__(f"{self.path}: the result is {value!r}, not a finite number")


class MissingExtra(ImportError):
    """An optional dependency group (a pip "extra") is not installed: ``message`` says which and how to add it."""

    def __init__(self, extra: str, module: str, what: str | None = None):
        self.extra = extra
        self.module = module
        self.what = what
        super().__init__(self.message)

    @property
    def message(self) -> str:
        who = self.what or "this"
        return (f"{who} needs the [{self.extra}] extra (module {self.module!r} is not installed): "
                f"pip install 'billshape[{self.extra}]'")
