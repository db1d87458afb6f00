"""``billshape plan NAME`` finds a shipped example by name from any directory (QA: from an installed,
non-editable package ``billshape plan seed000_image_startup.yaml`` failed outside the source tree)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from billshape import scenario
from billshape.errors import BillshapeInputError
from conftest import assert_one_line_error

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_example_names_are_the_shipped_files():
    assert scenario.example_names() == ["api_wrapper_price_shock", "high_volume_self_host", "seed000_image_startup"]


@pytest.mark.parametrize("name", ["seed000_image_startup", "seed000_image_startup.yaml"])
def test_plan_by_name_from_another_directory(cli, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    res = cli("plan", name, "--json")
    assert res.code == 0, res.err
    assert res.json()["summary"]["payback_month"]["p50"] == pytest.approx(2.352, abs=1e-9)


def test_a_local_file_wins_over_the_shipped_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (scenario.examples_dir() / "seed000_image_startup.yaml").read_text(encoding="utf-8")
    Path("seed000_image_startup.yaml").write_text(text.replace("users_start: 10000", "users_start: 20000"),
                                                 encoding="utf-8")
    assert scenario.resolve("seed000_image_startup.yaml") == Path("seed000_image_startup.yaml")
    assert scenario.plan("seed000_image_startup.yaml").summary["payback_month"]["p50"] < 2.352


def test_unknown_name_lists_the_shipped_examples(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("plan", "seed00_image_startup.yaml")
    assert_one_line_error(res, "FILE")
    for name in scenario.example_names():
        assert name in res.err
    assert "did you mean seed000_image_startup?" in res.err


def test_a_path_with_a_folder_is_not_redirected(tmp_path):
    with pytest.raises(BillshapeInputError, match="no such file"):
        scenario.resolve(tmp_path / "seed000_image_startup.yaml")


def test_installed_layout_subprocess(tmp_path):
    # a real process started outside the source tree, as a user of an installed package would
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-m", "billshape", "plan", "high_volume_self_host", "--samples", "200", "--json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert '"payback_month"' in out.stdout


def test_help_names_the_examples(cli):
    res = cli("plan", "--help")
    assert res.code == 0 and "seed000_image_startup" in res.out and "shipped example" in res.out
