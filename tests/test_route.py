"""Model ladders: cheapest model clearing a quality bar, cascades, savings vs the largest model."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape.decide import cascade_cost_quality, read_ladder, route
from billshape.errors import BillshapeInputError
from conftest import assert_one_line_error

LADDER = "examples/ladder_frugalgpt.yaml"

# FrugalGPT HEADLINES summary (stanford-futuredata/FrugalGPT summary/summary_HEADLINES_e*_full_2024.csv,
# via billshape shared cases frugalgpt_headlines.csv): accuracy and USD per query.
FRUGALGPT = {
    "gpt-4-turbo": (0.8558, 0.003331), "gpt-4o-2024-05-13": (0.8332, 0.001100),
    "claude-3-5-sonnet-20240620": (0.8422, 0.000807), "jamba-1.5-large": (0.8142, 0.000519),
    "gemini-1.5-pro": (0.8250, 0.000290), "llama-3-70b (Together)": (0.8264, 0.000201),
    "gemma-2-9b (Together)": (0.8320, 0.0000704), "gpt-4o-mini": (0.8478, 0.0000331),
    "gemini-1.5-flash": (0.8480, 0.0000173), "gemini-1.5-flash-8b": (0.8422, 0.0000087),
}


def test_example_ladder_is_the_frugalgpt_table():
    ladder = read_ladder(LADDER)
    assert {m["name"]: (m["quality"], m["usd_per_request"]) for m in ladder["models"]} == FRUGALGPT
    assert "FrugalGPT" in ladder["source"]


@pytest.mark.parametrize("bar,chosen", [
    (0.80, "gemini-1.5-flash-8b"),   # the cheapest already clears it
    (0.845, "gemini-1.5-flash"),     # 0.8480 at $1.73e-5
    (0.8479, "gemini-1.5-flash"),
    (0.849, "gpt-4-turbo"),          # only the largest reaches 0.8558
])
def test_cheapest_model_clearing_the_bar(bar, chosen):
    res = route(read_ladder(LADDER), bar)
    assert res.chosen == chosen
    assert res.quality >= bar
    assert res.largest == "gpt-4-turbo"
    assert res.saving_vs_largest == pytest.approx(1 - FRUGALGPT[chosen][1] / 0.003331)


def test_headline_saving():
    # gemini-1.5-flash matches gpt-4-turbo within 0.8 points at 0.5 % of the cost per query
    res = route(read_ladder(LADDER), 0.845)
    assert res.saving_vs_largest == pytest.approx(0.9948, abs=1e-4)


def test_cascade_expected_cost_and_quality():
    res = route(read_ladder(LADDER), 0.845, cascade=True)
    c = res.cascade
    assert c["steps"] == ["gemini-1.5-flash-8b", "gpt-4o-mini", "gpt-4-turbo"]
    # every request pays step 1, 30 % reach step 2, 30 % x 20 % = 6 % reach gpt-4-turbo
    assert c["usd_per_request"] == pytest.approx(0.0000087 + 0.3 * 0.0000331 + 0.06 * 0.003331)
    assert c["quality"] == pytest.approx(0.7 * 0.87 + 0.3 * 0.8 * 0.88 + 0.06 * 0.8558)
    assert c["share_reaching_step"] == pytest.approx([1.0, 0.3, 0.06])


def test_cascade_degenerate_cases():
    # rejection 0: only the first step is paid; rejection 1: every step is paid and the last answers
    cost, qual = cascade_cost_quality([1.0, 10.0], [0.7, 0.9], [0.0, 0.0])
    assert cost == 1.0 and qual == pytest.approx(0.7)
    cost, qual = cascade_cost_quality([1.0, 10.0], [0.7, 0.9], [1.0, 0.0])
    assert cost == 11.0 and qual == pytest.approx(0.9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(1e-6, 1)), min_size=1, max_size=12), st.floats(0, 1))
def test_choice_clears_the_bar_and_is_cheapest(models, bar):
    ladder = {"source": "test", "quality_metric": "q",
              "models": [{"name": f"m{i}", "quality": q, "usd_per_request": c} for i, (q, c) in enumerate(models)]}
    if max(q for q, _ in models) < bar:
        with pytest.raises(BillshapeInputError):
            route(ladder, bar)
        return
    res = route(ladder, bar)
    assert res.quality >= bar
    assert res.usd_per_request == min(c for q, c in models if q >= bar)
    assert 0 <= res.saving_vs_largest < 1 or res.usd_per_request == max(c for _, c in models)


def test_cli_route_json(cli):
    res = cli("route", "--ladder", LADDER, "--quality-bar", "0.845", "--cascade", "--json")
    assert res.code == 0, res.err
    data = res.json()
    for key in ("chosen", "usd_per_request", "quality", "saving_vs_largest", "cascade", "assumptions"):
        assert key in data
    assert data["chosen"] == "gemini-1.5-flash"
    assert {"usd_per_request", "quality"} <= set(data["cascade"])
    no_cascade = cli("route", "--ladder", LADDER, "--quality-bar", "0.845", "--json").json()
    assert no_cascade["cascade"] is None


def test_cli_route_no_model_clears(cli):
    res = cli("route", "--ladder", LADDER, "--quality-bar", "0.9", "--json")
    assert_one_line_error(res, "--quality-bar")
    assert "0.8558" in res.err


@pytest.mark.parametrize("content,field", [
    ("models: []\n", "models"),
    ("models:\n  - {name: a, quality: 1.5, usd_per_request: 1}\n", "models[0].quality"),
    ("models:\n  - {name: a, quality: 0.5}\n", "models[0].usd_per_request"),
    ("models:\n  - {name: a, quality: x, usd_per_request: 1}\n", "models[0].quality"),
    ("models: [\n", "--ladder"),
])
def test_cli_route_bad_ladder(cli, tmp_path, content, field):
    f = tmp_path / "l.yaml"
    f.write_text(content)
    assert_one_line_error(cli("route", "--ladder", str(f), "--quality-bar", "0.5", "--json"), field)


def test_cli_route_cascade_needs_rejection_rates(cli, tmp_path):
    f = tmp_path / "l.yaml"
    f.write_text("models:\n  - {name: a, quality: 0.5, usd_per_request: 1}\n  - {name: b, quality: 0.9, usd_per_request: 2}\n")
    assert_one_line_error(cli("route", "--ladder", str(f), "--quality-bar", "0.5", "--cascade", "--json"), "--cascade")


# ------------------------------------------------------------------ QA regressions
def test_shipped_ladder_by_name_matches_example_file(cli):
    by_name = cli("route", "--ladder", "frugalgpt-headlines", "--quality-bar", "0.845", "--json").json()
    by_path = cli("route", "--ladder", "examples/ladder_frugalgpt.yaml", "--quality-bar", "0.845", "--json").json()
    assert by_name["chosen"] == by_path["chosen"] == "gemini-1.5-flash"
    assert by_name["recommendation"] == "model"


def test_unknown_ladder_name_suggests_closest(cli):
    res = cli("route", "--ladder", "frugal", "--quality-bar", "0.8")
    assert_one_line_error(res, "--ladder")
    assert "frugalgpt-headlines" in res.err


def test_ladder_not_utf8_names_flag(cli, tmp_path):
    f = tmp_path / "l.yaml"
    f.write_bytes(b"models:\n - name: \xff\n")
    res = cli("route", "--ladder", str(f), "--quality-bar", "0.8")
    assert_one_line_error(res, "--ladder")
    assert "not UTF-8" in res.err


def test_cascade_answers_when_no_single_model_clears(cli):
    # gpt-4-turbo reaches 0.8558; the cascade reaches 0.8715 (examples/ladder_frugalgpt.yaml)
    d = cli("route", "--ladder", "frugalgpt-headlines", "--quality-bar", "0.86", "--cascade", "--json").json()
    assert d["chosen"] is None and d["recommendation"] == "cascade"
    assert d["cascade"]["clears_bar"] and d["cascade"]["quality"] == pytest.approx(0.8715, abs=1e-4)
    human = cli("route", "--ladder", "frugalgpt-headlines", "--quality-bar", "0.86", "--cascade")
    assert human.code == 0 and "no single model clears" in human.out
    # without --cascade: still an error; above the cascade too: an error naming both
    assert_one_line_error(cli("route", "--ladder", "frugalgpt-headlines", "--quality-bar", "0.86"), "--quality-bar")
    res = cli("route", "--ladder", "frugalgpt-headlines", "--quality-bar", "0.9", "--cascade")
    assert_one_line_error(res, "--quality-bar")
    assert "cascade" in res.err


def test_library_route_keeps_error_without_cascade_only():
    ladder = read_ladder("frugalgpt-headlines")
    with pytest.raises(BillshapeInputError):
        route(ladder, 0.86, cascade=True)


def test_route_human_usd_readable(cli):
    res = cli("route", "--ladder", "frugalgpt-headlines", "--quality-bar", "0.845", "--cascade")
    assert "$0.0000173" in res.out and "e-05" not in res.out
