"""Shared fixtures: run the CLI in-process and capture its streams."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# benchmarks/ holds reference code the tests compare against (plan_loop_baseline.loop_summaries)
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


@pytest.fixture
def cli(capsys):
    """Run ``billshape ARGS...`` in-process; returns exit code, stdout and stderr."""
    from billshape.cli import run

    def _run(*args: str) -> CliResult:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


def assert_one_line_error(res: CliResult, field: str) -> None:
    """Bad input: exit 2, one line on stderr naming the field, nothing on stdout, no traceback."""
    assert res.code == 2, (res.code, res.out, res.err)
    lines = [line for line in res.err.splitlines() if line.strip()]
    assert len(lines) == 1, res.err
    assert field in lines[0], (field, lines[0])
    assert "Traceback" not in res.err
    assert res.out == ""


def pytest_collection_modifyitems(config, items):
    """Every Spark test runs on one xdist worker (``--dist loadgroup`` in pyproject's addopts): one JVM per test
    run instead of one per worker, and Spark's local[2] threads do not compete with a second JVM."""
    for item in items:
        if item.get_closest_marker("spark") is not None:
            item.add_marker(pytest.mark.xdist_group("spark"))
