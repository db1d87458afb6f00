"""Write docs/api.md from the docstrings of the public API (``import billshape as bs``).

Run ``python scripts/gen_api_docs.py`` after changing a public docstring; ``tests/test_api.py`` fails when
docs/api.md is out of date.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "api.md"

# (heading, dotted names) in reading order: the verbs first, then what their results hold, then the modules.
SECTIONS = [
    ("Verbs", ["billshape.train", "billshape.serve", "billshape.breakeven", "billshape.payback", "billshape.size",
               "billshape.capacity", "billshape.route", "billshape.plan.run"]),
    ("Plan results", ["billshape.plan.PlanResult.to_pandas", "billshape.plan.PlanResult.monthly_frame",
                      "billshape.plan.PlanResult.assumptions_frame", "billshape.plan.PlanResult.to_dict",
                      "billshape.plan.load"]),
    ("Every result", ["billshape.results.Result", "billshape.results.Result.to_dict",
                      "billshape.results.Result.to_pandas", "billshape.results.Assumption"]),
    ("Usage ledger", ["billshape.usage.ingest", "billshape.usage.report", "billshape.usage.economics",
                      "billshape.usage.whatif", "billshape.usage.reprice", "billshape.usage.export_focus",
                      "billshape.usage.reconcile"]),
    ("Typed requests", ["billshape.chains.run", "billshape.chains.TrainRequest", "billshape.chains.ServeRequest",
                        "billshape.chains.IngestRequest", "billshape.chains.WhatIfRequest"]),
    ("Errors", ["billshape.errors.BillshapeInputError"]),
]
MODULES = ["billshape.training", "billshape.inference", "billshape.scaling", "billshape.market", "billshape.decide",
           "billshape.business", "billshape.serving", "billshape.catalog", "billshape.chains", "billshape.plan",
           "billshape.usage"]


def find(dotted: str):
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def request_fields(obj) -> list[str]:
    """The fields of a chains verb's typed request (its keyword arguments), as a table."""
    import billshape.chains as chains

    if getattr(obj, "__module__", "") != "billshape.chains":
        return []
    request = getattr(chains, obj.__name__.title().replace("_", "") + "Request", None)
    if request is None:
        return []
    rows = ["| keyword | type | default |", "| --- | --- | --- |"]
    for name, field in request.model_fields.items():
        ann = field.annotation
        kind = ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "").replace("billshape.chains.requests.", "")
        default = "required" if field.is_required() else repr(field.default)
        rows.append(f"| `{name}` | {kind.replace('|', chr(92) + '|')} | {default} |")
    return [f"Keywords: the fields of `bs.chains.{request.__name__}` (validated once; an error names the field).", "",
            *rows, ""]


def render() -> str:
    lines = ["# Python API reference", "",
             "Generated from the docstrings by `python scripts/gen_api_docs.py` (do not edit by hand). Start with",
             "`import billshape as bs`; the layers behind these names: [architecture.md](architecture.md).", ""]
    for heading, names in SECTIONS:
        lines += [f"## {heading}", ""]
        for name in names:
            try:
                obj = find(name)
            except (ImportError, AttributeError):
                continue
            shown = name.replace("billshape.", "bs.", 1)
            kind = "class " if inspect.isclass(obj) else ""
            lines += [f"### `{kind}{shown}{signature(obj) if callable(obj) and not inspect.isclass(obj) else ''}`", ""]
            doc = inspect.getdoc(obj) or "(no docstring)"
            lines += [doc, ""]
            lines += request_fields(obj)
    lines += ["## Modules", "", "| module | what it holds |", "| --- | --- |"]
    for name in MODULES:
        try:
            mod = find(name)
        except ImportError:
            continue
        first = (inspect.getdoc(mod) or "").split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        lines.append(f"| `{name}` | {first} |")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    OUT.write_text(render())
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
