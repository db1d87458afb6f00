"""The plan report: self-contained offline HTML and PNGs through vl-convert."""

from __future__ import annotations

import re

import pytest

from billshape import report, scenario
from billshape.scenario import examples_dir


@pytest.fixture(scope="module")
def high_volume():
    return scenario.load(examples_dir() / "high_volume_self_host.yaml").evaluate(samples=2000)


def test_html_is_self_contained(high_volume, tmp_path):
    path = report.write_html(high_volume, tmp_path / "sub" / "r.html")
    text = path.read_text(encoding="utf-8")
    assert "<script src" not in text and "<link" not in text  # nothing fetched: JS and specs are inline
    assert not re.search(r"""(src|href)\s*=\s*["']https?://""", text)
    assert "vegaEmbed" in text and "vega-lite" in text.lower()
    for name in ("cost_stack", "margin_per_user", "cumulative_cash", "payback", "tornado", "build_vs_buy"):
        assert f"chart-{name}" in text
    # both views of unit economics, each saying which question it answers (seed 001)
    assert "Do I make money on one more user?" in text or "do I make or lose money on one more user?" in text
    assert "do the users pay for the whole business" in text.lower()
    # assumptions with their sources
    assert "genai-prices" in text and "Assumptions and sources" in text
    assert 300_000 < path.stat().st_size < 5_000_000


def test_charts_are_valid_vega_lite(high_volume):
    charts = report.charts(high_volume)
    assert set(charts) == {"cost_stack", "margin_per_user", "cumulative_cash", "payback", "tornado", "build_vs_buy"}
    for chart in charts.values():
        spec = chart.to_dict()  # altair validates against the Vega-Lite schema
        assert spec["$schema"].endswith(".json")


def test_seed000_report_has_no_tornado_or_build_vs_buy(tmp_path):
    res = scenario.plan(examples_dir() / "seed000_image_startup.yaml")
    assert set(report.charts(res)) == {"cost_stack", "margin_per_user", "cumulative_cash", "payback"}
    text = report.to_html(res)
    assert "2.352" in text and "$235,200" in text


def test_pngs(cli, tmp_path):
    res = cli("plan", str(examples_dir() / "api_wrapper_price_shock.yaml"), "--samples", "500",
              "--png", str(tmp_path / "png"), "--report", str(tmp_path / "r.html"), "--json")
    assert res.code == 0, res.err
    data = res.json()
    assert len(data["png"]) == 5 and data["report"].endswith("r.html")
    for p in data["png"]:
        with open(p, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"


def test_report_to_unwritable_path_is_one_line(cli, tmp_path):
    from conftest import assert_one_line_error

    blocker = tmp_path / "f"
    blocker.write_text("x")
    assert_one_line_error(cli("plan", str(examples_dir() / "seed000_image_startup.yaml"), "--report",
                              str(blocker / "r.html")), "--report")
