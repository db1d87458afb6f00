"""``billshape demo``: the main job on the shipped example scenarios (moved here from test_cli.py)."""

from __future__ import annotations

from pathlib import Path

from billshape.cli.cmd_demo import EXAMPLES


def test_demo_runs_and_prints_seed_figures(cli, tmp_path):
    # Seed 000: 280 A100 x 14 days x $2.5 = $235,200, paid back by 10,000 users x $10/month in 2.352 months.
    out = tmp_path / "demo"
    res = cli("demo", "--out", str(out), "--samples", "2000")
    assert res.code == 0, res.err
    assert "235,200" in res.out and "2.352" in res.out
    assert str(out.resolve()) in res.out.replace("\n", "")  # says where the reports went
    for name in EXAMPLES:
        report = out / f"{name}.html"
        assert report.exists() and report.stat().st_size > 100_000, name
        assert "vegaEmbed" in report.read_text(encoding="utf-8")
    assert "never pays back" in res.out  # the seed 004 price shock leaves some samples underwater
    assert "build vs buy: building wins above" in res.out  # seed 003's break-even


def test_demo_json(cli, tmp_path):
    data = cli("demo", "--out", str(tmp_path), "--samples", "500", "--json").json()
    assert data["seed000"]["training_bill_usd"] == 235_200
    assert data["seed000"]["payback_month"] == 2.352
    assert [e["name"] for e in data["examples"]] == list(EXAMPLES)
    seed000 = data["examples"][0]["result"]
    assert seed000["summary"]["payback_month"] == {"p10": 2.352, "p50": 2.352, "p90": 2.352}
    shock = data["examples"][1]["result"]
    assert shock["samples"] == 500 and "market.api_price_steps[0].factor" in shock["uncertain_inputs"]
    assert data["examples"][2]["result"]["build_vs_buy"]["exists"] is True
    for e in data["examples"]:
        assert Path(e["report"]).exists()


def test_demo_bad_out_dir(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    from conftest import assert_one_line_error

    assert_one_line_error(cli("demo", "--out", str(blocker / "sub")), "--out")
