"""Reading a scenario: a file, a shipped example's name, YAML text or bytes, or a file object -> a :class:`Plan`.

:func:`load` (and :func:`read`, the same) takes a path, a shipped example's name (:func:`resolve`), YAML text,
bytes or a binary or text file object, so no shell writes temporary files; :func:`parse` takes the mapping as
read from YAML (or any of those). The YAML is read bounded: at most :data:`MAX_BYTES` per file, at most
:data:`MAX_DEPTH` levels of nesting and :data:`MAX_NODES` nodes, no mapping key given twice, no number of more
than :data:`MAX_NUMBER_CHARS` characters; each is a :class:`~billshape.errors.BillshapeInputError` naming the file or the YAML path (never a
RecursionError, an OverflowError or a silent "last key wins"). Validation errors name the YAML path
(:mod:`billshape.plan.errors`).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from billshape.errors import BillshapeInputError
from billshape.plan.errors import _check_bounds, _from_validation_error, _path
from billshape.plan.schema import Scenario

if TYPE_CHECKING:
    from billshape.plan.model import Plan

MAX_BYTES = 2 * 1024 * 1024  # a scenario is a page of YAML; 100 MB took 150 s and 1 GB of memory before failing
MAX_DEPTH = 64  # nesting levels of mappings and lists (a scenario needs 5)
MAX_NUMBER_CHARS = 100  # characters of a plain YAML number (a float's 17 digits, exponent and separators fit)
MAX_NODES = 50_000  # YAML events (keys, values, items, collections): the shipped examples have ~200, a plan with
# 240 price steps and 50 routes ~2,500; 2 MB of flow mappings is ~400,000 and took 50 s to read


def parse(data: Any, source: str = "scenario", as_of: Any = None) -> "Plan":
    """Validate a scenario given as a mapping (as read from YAML) and resolve its prices.

    ``data`` may also be YAML text, bytes or a file object (read as :func:`read` does). ``as_of`` (an ISO date,
    a date or ``today``) replaces the scenario's ``as_of:`` key: the plan's pricing date. Raises
    :class:`BillshapeInputError` naming the YAML path (e.g. ``serving.routes[1].share``).
    """
    from billshape.plan.model import Plan

    if isinstance(data, (str, bytes, bytearray, memoryview)) or hasattr(data, "read"):
        data = _yaml_data(_read_bytes(data, source), source)
    if not isinstance(data, dict):
        raise BillshapeInputError(source, type(data).__name__, "a YAML mapping with product:, horizon_months:, ...")
    if as_of is not None:
        data = {**data, "as_of": as_of}
    try:
        scn = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _from_validation_error(exc) from None
    given: dict[str, str | None] = {}
    values = _check_bounds(scn, given)
    return Plan(scn, values, source, given)


def parse_bytes(data: bytes | str, name: str = "scenario.yaml") -> "Plan":
    """Validate a scenario given as YAML bytes (or text); errors name ``name`` (the upload's file name)."""
    return parse(_yaml_data(_read_bytes(data, name), name), name)


def examples_dir() -> Path:
    """The shipped example scenarios (package data)."""
    from importlib import resources

    return Path(str(resources.files("billshape").joinpath("examples")))


def example_names() -> list[str]:
    """The shipped example scenarios' names (file names without ``.yaml``)."""
    return sorted(f.name[:-5] for f in examples_dir().iterdir() if f.name.endswith(".yaml"))


def resolve(path: str | Path) -> Path:
    """The scenario file ``path`` names: the file itself when it exists; else, for a bare name (no folder), the
    shipped example of that name, with or without ``.yaml`` (``billshape plan seed000_image_startup`` works from
    any directory and from an installed package).

    Raises :class:`BillshapeInputError` (field ``FILE``) listing the shipped names, the closest first, when
    neither exists.
    """
    p = Path(path)
    if p.exists():
        return p
    names = example_names()
    text = str(path)
    bare = p.name == text and text not in ("", ".", "..")
    stem = text[:-5] if text.endswith(".yaml") else text[:-4] if text.endswith(".yml") else text
    if bare and stem in names:
        return examples_dir() / f"{stem}.yaml"
    close = difflib.get_close_matches(Path(stem).name, names, n=3, cutoff=0.5)
    hint = "no such file" + (f"; did you mean {', '.join(close)}?" if close else "")
    raise BillshapeInputError("FILE", text, "a scenario YAML file, or the name of a shipped example: " + ", ".join(names),
                              hint)


def load(source: Any, name: str | None = None, as_of: Any = None) -> "Plan":
    """Read and validate a scenario: a YAML file, a shipped example by name (see :func:`resolve`), YAML text (a
    string with a line break or starting with ``{``), bytes, or a binary or text file object.

    ``name`` names the input in errors (default: the file's name; ``scenario.yaml`` for text and bytes);
    ``as_of`` replaces the scenario's ``as_of:`` (its pricing date, see :func:`parse`).
    """
    if isinstance(source, dict):
        return parse(source, name or "scenario", as_of)
    if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read") or (
            isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{"))):
        label = name or Path(str(getattr(source, "name", "") or "scenario.yaml")).name
        return parse(_yaml_data(_read_bytes(source, label), label), label, as_of)
    p = resolve(source)
    label = name or p.name
    try:
        size = os.stat(p).st_size
        if size > MAX_BYTES:
            raise _too_big(label, size)
        with open(p, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
        text = raw.decode("utf-8") if len(raw) <= MAX_BYTES else None
    except (OSError, UnicodeDecodeError) as exc:
        raise BillshapeInputError("FILE", str(source), "a readable UTF-8 YAML file", type(exc).__name__) from None
    if text is None:
        raise _too_big(label, None)
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as a text-mode read (universal newlines)
    return parse(_yaml_data(text, label), label, as_of)


read = load  # the io-layer name: readers take a path, text, bytes or a file object


def _too_big(name: str, size: int | None) -> BillshapeInputError:
    got = f"{size:,} bytes" if size is not None else f"more than {MAX_BYTES:,} bytes"
    return BillshapeInputError(name, got, f"a scenario file of at most {MAX_BYTES:,} bytes ({MAX_BYTES // 2**20} MB)",
                               "a scenario is a page of YAML; is this the right file?")


def _read_bytes(source: Any, name: str) -> str:
    """The YAML text of bytes, text or a file object, at most :data:`MAX_BYTES` bytes, decoded as UTF-8."""
    if hasattr(source, "read"):
        source = source.read(MAX_BYTES + 1)
    if isinstance(source, str):
        if len(source) > MAX_BYTES:  # characters >= bytes / 4: only a bound check on the encoded size below
            raw = source.encode("utf-8", "surrogatepass")
            if len(raw) > MAX_BYTES:
                raise _too_big(name, len(raw))
        return source
    raw = bytes(source)
    if len(raw) > MAX_BYTES:
        raise _too_big(name, len(raw) if len(raw) != MAX_BYTES + 1 else None)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BillshapeInputError(name, f"byte {exc.start}", "UTF-8 text", "UnicodeDecodeError") from None


def _yaml_data(text: str, name: str) -> Any:
    """``yaml.safe_load(text)`` after a bounded pass over its events (:func:`_check_events`).

    The check reads libyaml's events where PyYAML has it (fast; it stops at the first limit); where libyaml
    refuses the text, the pure-Python parser's events are checked instead, so what is valid YAML is decided
    by the same parser as the values, ``yaml.safe_load``'s.
    """
    import yaml

    try:
        fast = getattr(yaml, "CSafeLoader", None)
        try:
            _check_events(yaml.parse(text, Loader=fast or yaml.SafeLoader), name)
        except yaml.YAMLError:
            if fast is None:
                raise
            _check_events(yaml.parse(text, Loader=yaml.SafeLoader), name)
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name} line {mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise BillshapeInputError(where, problem, "valid YAML") from None
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:  # a last line: no internal error
        if isinstance(exc, BillshapeInputError):
            raise
        raise BillshapeInputError(name, type(exc).__name__, "valid YAML of a scenario's size") from None


def _check_events(events, name: str) -> None:
    """One pass over the YAML events (iterative: no recursion however deep the text nests), before anything is
    built: nesting at most :data:`MAX_DEPTH`, no key twice in one mapping (named by its YAML path), no plain
    number longer than :data:`MAX_NUMBER_CHARS` (Python refuses ints of over 4,300 digits; a float overflows), at
    most :data:`MAX_NODES` events."""
    import yaml

    resolver = yaml.resolver.Resolver()
    # a stack of open collections: [kind, loc, keys seen, expecting a key, the pending key]
    stack: list[list] = []

    def here() -> tuple:
        if not stack:
            return ()
        top = stack[-1]
        if top[0] == "seq":
            return top[1] + (top[2],)
        return top[1] + (top[4],)

    def advance(is_key_scalar: bool, value: Any = None) -> None:
        """After a node in the current collection: a mapping alternates key, value; a list counts items."""
        if not stack:
            return
        top = stack[-1]
        if top[0] == "seq":
            top[2] += 1
        elif top[3]:
            top[4] = value if is_key_scalar else "?"
            top[3] = False
        else:
            top[3] = True

    for count, ev in enumerate(events):
        if count > MAX_NODES:
            raise BillshapeInputError(name, f"more than {MAX_NODES:,} YAML nodes",
                                      f"a scenario of at most {MAX_NODES:,} keys, values and list items",
                                      "a scenario is a page of YAML; is this the right file?")
        if isinstance(ev, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise BillshapeInputError(name, f"more than {MAX_DEPTH} levels of nesting",
                                          f"a scenario nested at most {MAX_DEPTH} levels deep")
            loc = here()
            if stack and stack[-1][0] == "map" and stack[-1][3]:  # a collection as a key
                loc = stack[-1][1] + ("?",)
            if isinstance(ev, yaml.MappingStartEvent):
                stack.append(["map", loc, set(), True, None])
            else:
                stack.append(["seq", loc, 0, None, None])
        elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
            advance(False)
        elif isinstance(ev, yaml.ScalarEvent):
            top = stack[-1] if stack else None
            if top is not None and top[0] == "map" and top[3]:  # a key
                key = ev.value
                if key in top[2] and key != "<<":
                    line = ev.start_mark.line + 1 if ev.start_mark is not None else None
                    raise BillshapeInputError(_path(top[1] + (key,)), "a key given twice" + (f" (again on line {line})"
                                              if line else ""), "each key once per mapping",
                                              f"{name}: remove one of them; YAML would keep the last silently")
                top[2].add(key)
                advance(True, key)
                continue
            if ev.implicit[0] and len(ev.value) > MAX_NUMBER_CHARS:
                tag = resolver.resolve(yaml.ScalarNode, ev.value, ev.implicit)
                if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
                    raise BillshapeInputError(_path(here()) if stack else name, f"a {len(ev.value):,}-character number",
                                              f"a number of at most {MAX_NUMBER_CHARS} characters (every plan "
                                              "amount is below 1e12)")
            advance(False)
        elif isinstance(ev, yaml.AliasEvent):
            advance(False)
