"""docs/plan.md's worked examples are real output: every ``$ billshape plan ...`` console block is re-run and
compared (QA: the high-volume example's figures had drifted from the output after the example changed)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "plan.md"


def _blocks() -> list[tuple[str, list[str]]]:
    """(command, expected lines) of each console block whose first line runs one concrete ``billshape plan``."""
    out = []
    for body in re.findall(r"```console\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S):
        lines = body.rstrip("\n").split("\n")
        cmds = [line for line in lines if line.startswith("$ ")]
        if len(cmds) != 1 or not lines[0].startswith("$ billshape plan ") or "[" in lines[0]:
            continue  # synopsis blocks with several commands or [optional] flags
        out.append((lines[0][2:], lines[1:]))
    return out


BLOCKS = _blocks()


def test_the_doc_has_checked_blocks():
    assert len(BLOCKS) >= 2
    assert any("--json" in cmd for cmd, _ in BLOCKS) and any("--json" not in cmd for cmd, _ in BLOCKS)


def _numbers_by_key(node, found: dict[str, list[float]]) -> dict[str, list[float]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                found.setdefault(k, []).append(float(v))
            _numbers_by_key(v, found)
    elif isinstance(node, list):
        for v in node:
            _numbers_by_key(v, found)
    return found


@pytest.mark.parametrize("command,expected", BLOCKS, ids=[c for c, _ in BLOCKS])
def test_doc_block_is_real_output(cli, tmp_path, monkeypatch, command, expected):
    monkeypatch.chdir(tmp_path)  # the shipped examples are named without a folder; --report files land here
    args = shlex.split(command)[1:]
    res = cli(*args)
    assert res.code == 0, res.err
    if "--json" in args:
        # an abridged excerpt: every "key": number in it must be in the real JSON under that key (to its digits)
        actual = _numbers_by_key(res.json(), {})
        pairs = re.findall(r'"(\w+)": (-?\d[\d.]*)', "\n".join(expected))
        assert len(pairs) >= 10
        for key, text in pairs:
            shown = float(text)
            digits = len(text.split(".")[1]) if "." in text else 0
            assert any(abs(x - shown) <= 0.51 * 10 ** -digits for x in actual.get(key, [])), (key, text)
    else:
        got = [line.rstrip() for line in res.out.splitlines()]
        for line in expected:
            if line.strip() and not line.startswith("("):
                assert line.rstrip() in got, f"doc line not in the output: {line!r}"
