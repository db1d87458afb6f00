"""Light installs: a verb whose optional extra is missing names the extra in one line and exits 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import assert_one_line_error

from billshape import _extras
from billshape.errors import MissingExtra


def _hide(monkeypatch, *modules: str) -> None:
    """Make ``modules`` unimportable, as in an install without their extra."""
    for name in list(sys.modules):
        if name in modules or any(name.startswith(m + ".") for m in modules):
            monkeypatch.delitem(sys.modules, name)
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


@pytest.mark.parametrize("args, hidden, extra", [
    (["app", "--port", "8600"], "streamlit", "app"),
    (["usage", "report", "--db", "x.duckdb"], "duckdb", "usage"),
    (["demo", "--samples", "10"], "altair", "report"),
    (["plan", "seed000_image_startup", "--report", "r.html"], "altair", "report"),
    (["plan", "seed000_image_startup", "--png", "charts"], "vl_convert", "report"),
])
def test_missing_extra_is_one_line_exit_2(cli, monkeypatch, tmp_path, args, hidden, extra):
    monkeypatch.chdir(tmp_path)
    _hide(monkeypatch, hidden)
    res = cli(*args)
    assert_one_line_error(res, f"[{extra}]")
    assert f"pip install 'billshape[{extra}]'" in res.err and f"billshape {args[0]}" in res.err
    assert not (tmp_path / "r.html").exists()


def test_core_verbs_and_help_work_without_extras(cli, monkeypatch):
    _hide(monkeypatch, "streamlit", "altair", "vl_convert", "duckdb", "ibis", "pyarrow", "pandas")
    assert cli("train", "--gpu", "a100", "--gpus", "280", "--days", "14", "--price", "2.5", "--json").json()["total_usd"] == 235200
    assert cli("plan", "seed000_image_startup", "--json").json()["summary"]["payback_month"]["p50"] == 2.352
    assert cli("plan", "seed000_image_startup").code == 0  # the summary table formats without the report extra
    assert cli("app", "--help").code == 0 and cli("usage", "--help").code == 0


def test_require_and_to_pandas(monkeypatch):
    _hide(monkeypatch, "pandas")
    with pytest.raises(MissingExtra) as err:
        _extras.require("pandas", "pandas", "Result.to_pandas()")
    assert "[pandas]" in str(err.value) and "Result.to_pandas()" in str(err.value)
    from billshape.estimates import training_bill

    with pytest.raises(MissingExtra):
        training_bill(gpu="a100", gpus=280, days=14, price=2.5).to_pandas()
    assert _extras.require("report", "json") is sys.modules["json"]


def test_core_modules_import_no_optional_dependency():
    # the core (catalog, equations, chains, plan, CLI) must not pull in an extra's modules
    code = ("import sys, billshape.estimates, billshape.decide, billshape.business, billshape.scaling, billshape.market, "
            "billshape.scenario, billshape.present.format, billshape.cli; "
            "print(','.join(m for m in ('streamlit', 'altair', 'vl_convert', 'duckdb', 'ibis', 'pyarrow', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported by the core: {out}"


def test_app_does_not_import_the_cli():
    from pathlib import Path

    import billshape.app

    for path in Path(billshape.app.__file__).parent.rglob("*.py"):
        assert "billshape.cli" not in path.read_text(encoding="utf-8"), path


def test_js_bundle_cached_on_disk(monkeypatch, tmp_path):
    from billshape.report import html

    calls = []
    import vl_convert

    monkeypatch.setattr(vl_convert, "javascript_bundle", lambda: calls.append(1) or "/* vega */")
    monkeypatch.setenv("BILLSHAPE_CACHE_DIR", str(tmp_path / "cache"))
    html._js_bundle.cache_clear()
    try:
        assert html._js_bundle() == "/* vega */"
        html._js_bundle.cache_clear()
        assert html._js_bundle() == "/* vega */" and calls == [1]  # the second process reads the file
        files = list((tmp_path / "cache").iterdir())
        assert [f.name for f in files] == [f"vega-bundle-vl-convert-{vl_convert.__version__}.js"]
        monkeypatch.setenv("BILLSHAPE_CACHE_DIR", "/proc/billshape-not-writable")
        html._js_bundle.cache_clear()
        assert html._js_bundle() == "/* vega */" and calls == [1, 1]  # no cache: built again, no error
    finally:
        html._js_bundle.cache_clear()
