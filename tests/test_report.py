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


def _subtitle(chart) -> list[str]:
    sub = chart.to_dict()["title"]["subtitle"]
    return [sub] if isinstance(sub, str) else list(sub)


def _data_rows(spec) -> list[dict]:
    """Every inline data row of a Vega-Lite spec (altair may move them into top-level datasets)."""
    rows: list[dict] = []
    for values in (spec.get("datasets") or {}).values():
        rows += values
    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("data"), dict) and "values" in node["data"]:
                rows.extend(node["data"]["values"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk({k: v for k, v in spec.items() if k != "datasets"})
    return rows


def test_payback_chart_states_the_real_sample_count_and_never_share(high_volume):
    # QA: the chart said "share of 5,000 samples ... never within 60 months: 0%" for a 20,000-sample run whose
    # summary said 0.4%. It must state the run's sample count and the summary's never-pays-back share.
    res = scenario.load(examples_dir() / "high_volume_self_host.yaml").evaluate(samples=20_000)
    assert 0.001 <= res.probability_never_pays_back < 0.01  # the case QA found: rounds to 0 % at .0%
    text = " ".join(_subtitle(report.charts(res)["payback"]))
    assert "20,000 samples" in text and "first 5,000" in text
    assert f"{res.probability_never_pays_back:.1%}" in text and ": 0%" not in text
    rows = _data_rows(report.charts(res)["payback"].to_dict())
    never_bar = next(r for r in rows if "what" in r)
    assert never_bar["share"] == pytest.approx(res.probability_never_pays_back)
    bars = [r for r in rows if "start" in r]
    assert sum(b["share"] for b in bars) + never_bar["share"] == pytest.approx(1.0)


def test_share_text_never_rounds_a_nonzero_share_to_zero():
    from billshape.report.charts import share_text

    assert share_text(0.0) == "0%" and share_text(1.0) == "100%"
    assert share_text(0.004) == "0.4%" and share_text(0.00004) == "< 0.1%" and share_text(0.99996) == "> 99.9%"


def test_deterministic_payback_label_sits_inside_the_plot():
    # QA: the label was placed at y = HEIGHT / 2 in a plot HEIGHT / 2 high, i.e. on the bottom edge (the axis)
    res = scenario.plan(examples_dir() / "seed000_image_startup.yaml")
    spec = report.charts(res)["payback"].to_dict()
    text_layer = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    y = text_layer["encoding"]["y"]["value"]
    assert 0.25 * spec["height"] <= y <= 0.75 * spec["height"]
    assert text_layer["mark"]["baseline"] == "middle"


def test_one_sample_is_singular(cli, tmp_path):
    res = cli("plan", str(examples_dir() / "seed000_image_startup.yaml"))
    assert res.code == 0, res.err
    assert "1 sample " in res.out and "1 samples" not in res.out
    html_text = report.to_html(scenario.plan(examples_dir() / "seed000_image_startup.yaml"))
    assert "1 sample (seed" in html_text and "1 samples" not in html_text
