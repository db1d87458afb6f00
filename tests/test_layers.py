"""The package's shape (docs/architecture.md): layers that import only downwards, no import cycle, the shells
(CLI, app) on top and never importing each other, no module over 800 lines, no CLI flag below the shells."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "billshape"
MAX_LINES = 800

# Layer of each module, by dotted-name prefix (longest prefix wins); a module imports only its own layer or lower.
LAYERS = {
    "billshape.errors": 0, "billshape._validate": 0, "billshape.results": 0, "billshape.io": 0,
    "billshape._extras": 0, "billshape.present.format": 0,
    "billshape.catalog": 1, "billshape.data": 1, "billshape.api_prices": 1,
    "billshape.price_index": 1,
    "billshape.staleness": 1, "billshape.snapshots": 1,
    "billshape.training": 2, "billshape.inference": 2, "billshape.scaling": 2, "billshape.market": 2,
    "billshape.business": 2, "billshape.decide": 2, "billshape.serving": 2, "billshape.estimates": 2,
    "billshape.decide_capacity": 2, "billshape.decide_routing": 2, "billshape.serving_catalog": 2,
    "billshape.serving_roofline": 2, "billshape.serving_measured": 2, "billshape.serving_readers": 2,
    "billshape.serving_sweep": 2, "billshape.fleet": 2, "billshape.serving_lengths": 2,
    "billshape.serving_disagg": 2,
    "billshape.serving_pipeline": 2,
    "billshape.chains": 3, "billshape.plan": 3, "billshape.scenario": 3, "billshape.usage": 3,
    "billshape.present": 4, "billshape.report": 4,
    "billshape.cli": 5, "billshape.app": 5,
    "billshape": 6, "billshape.__main__": 6,
}
SHELLS = ("billshape.cli", "billshape.app")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    best = max((p for p in LAYERS if name == p or name.startswith(p + ".")), key=len)
    return LAYERS[best]


def imports(path: Path) -> set[str]:
    """Every billshape module a file imports, at module level or inside a function."""
    tree = ast.parse(path.read_text())
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("billshape")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.startswith("billshape"):
                for a in node.names:  # `from billshape import training` names a module
                    sub = f"{base}.{a.name}"
                    out.add(sub if (SRC.parent / (sub.replace(".", "/") + ".py")).exists()
                            or (SRC.parent / sub.replace(".", "/")).is_dir() else base)
    return out - {module_name(path), "billshape"}  # the package itself (``billshape.__version__``) is always loaded


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def test_every_import_points_down_or_sideways():
    upward = sorted(f"{m} (layer {layer(m)}) imports {d} (layer {layer(d)})"
                    for m, deps in GRAPH.items() for d in deps if layer(d) > layer(m))
    assert upward == []


def test_the_shells_never_import_each_other():
    crossing = sorted(f"{m} imports {d}" for m, deps in GRAPH.items() for d in deps
                      for a, b in (SHELLS, SHELLS[::-1]) if m.startswith(a) and d.startswith(b))
    assert crossing == []


def test_no_import_cycle_between_modules_of_different_packages():
    """A cycle (A imports B imports ... A) outside one package's own files is a tangle to cut."""
    import graphlib

    def package(m: str) -> str:
        return m if MODULES[m].name == "__init__.py" else m.rsplit(".", 1)[0]

    edges = {m: {d for d in deps if d in MODULES and package(d) != package(m) and d != "billshape"}
             for m, deps in GRAPH.items() if m != "billshape"}
    graphlib.TopologicalSorter(edges).static_order()  # raises CycleError naming the cycle


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_800_lines(name):
    assert len(MODULES[name].read_text().splitlines()) <= MAX_LINES


FLAG = re.compile(r"""["']--[a-z][a-z0-9-]+""")
FLAG_IN_TEXT = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")

# (module, flag) pairs outside the shells that name a flag today, in files other helpers own this session: each is
# to become a backticked field (`` `db` ``, which the CLI prints as ``--db``) or a shell's words, then leave this list.
# Nothing may join it.
KNOWN_FLAGS_BELOW_THE_SHELLS = {
    ("billshape.serving_readers", "--report"),  # trtllm-bench's own --report_json, not a billshape flag
    ("billshape.usage.api", "--db"), ("billshape.usage.api", "--map"),
    ("billshape.usage.engine", "--engine"), ("billshape.usage.forecast", "--db"),
    ("billshape.usage.prices", "--help"), ("billshape.usage.prices", "--json"),
    ("billshape.usage.prom", "--metrics"), ("billshape.usage.readers", "--format"),
    ("billshape.usage.readers", "--map"),
}


def _code_strings(path: Path) -> list[str]:
    """Every string literal of a module (f-string parts included) except docstrings."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_cli_flag_below_the_shells():
    """Library modules name fields (``gpus``); only the shells speak in flags (``--gpus``): the CLI's field -> flag
    table is ``cli/_flags.py``, the app has its widget labels. No string of a module outside ``cli/`` and ``app/``
    starts with a flag, and none holds one anywhere (an error's hint, an assumption's source) but the known few."""
    found = sorted(f"{m}: {FLAG.search(p.read_text()).group(0)}" for m, p in MODULES.items()
                   if not m.startswith(SHELLS) and FLAG.search(p.read_text()))
    assert found == []
    inside = sorted({(m, flag) for m, p in MODULES.items() if not m.startswith(SHELLS)
                     for text in _code_strings(p) for flag in FLAG_IN_TEXT.findall(text)})
    assert [pair for pair in inside if pair not in KNOWN_FLAGS_BELOW_THE_SHELLS] == []


def test_the_flag_check_sees_a_flag_inside_a_string(tmp_path):
    """The check above can fail: a flag in the middle of an f-string part is found, a docstring's is not."""
    path = tmp_path / "m.py"
    path.write_text('"""Use --gpus."""\ndef f(x):\n    return f"run billshape serve --batch {x} again"\n')
    assert [flag for s in _code_strings(path) for flag in FLAG_IN_TEXT.findall(s)] == ["--batch"]
