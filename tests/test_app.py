"""The web app's pages (Streamlit AppTest, no browser): change a widget, assert the number.

Each page is rendered headlessly by Streamlit's own test harness; figures are compared with the library's
results (the app must call the library, never re-implement it) and with the seeds' published figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_one_line_error

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

MAIN = Path(__file__).resolve().parents[1] / "src" / "billshape" / "app" / "main.py"
TIMEOUT = 60  # seconds per script run: generous, the CI machine may be busy


def page(name: str) -> AppTest:
    return AppTest.from_string(f"from billshape.app.views import {name}\n{name}.render()", default_timeout=TIMEOUT).run()


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def fmt_usd(x: float) -> str:
    from billshape.app._ui import fmt

    return fmt(x, "USD")


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# --- the app and its pages --------------------------------------------------------------------------


def test_main_opens_on_train_with_seed_000_figures():
    """Done when: a new user opens the app and sees seed 000's figures without typing anything.

    Seed 000: 280 A100 x 24 h x 14 days = 94,080 GPU-hours; at $2.5/GPU-hour, $235,200; 10,000 users at
    $10/month pay it back in 235,200 / 100,000 = 2.352 months.
    """
    at = AppTest.from_file(str(MAIN), default_timeout=TIMEOUT).run()
    assert_clean(at)
    m = metrics(at)
    assert m["GPU-hours"] == "94,080"
    assert m["Final run"] == "$235,200"
    assert m["Payback"] == "2.352 months"


def test_pages_are_registered_once_and_complete():
    from billshape.app import main

    mods = main.pages()
    assert [m.TITLE for m in mods] == ["Train", "Serve", "Build vs buy", "Size", "Capacity", "Route"]
    assert len({m.URL for m in mods}) == len(mods)
    for m in mods:
        assert callable(m.render) and m.ICON.startswith(":material/")


# --- Train ------------------------------------------------------------------------------------------


def test_train_gpus_change_moves_the_bill():
    at = page("train")
    at.number_input(key="train_gpus").set_value(560).run()
    assert_clean(at)
    m = metrics(at)
    assert m["GPU-hours"] == "188,160" and m["Final run"] == "$470,400"
    # payback follows the bill: 470,400 / 100,000 = 4.704 months
    assert m["Payback"] == "4.704 months"


def test_train_matches_library_and_lists_every_source():
    from billshape.estimates import training_bill

    at = page("train")
    bill = training_bill(gpu="a100", gpus=280, days=14, price=2.5)
    table = at.table[0].value
    assert list(table["assumption"]) == [a.name for a in bill.assumptions]
    assert list(table["source"]) == [a.source for a in bill.assumptions]
    assert metrics(at)["Development total"] == f"${bill.development.total_usd:,.0f}"


def test_train_bad_input_shows_library_message_not_traceback():
    at = page("train")
    at.number_input(key="train_days").set_value(0.0).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value == "--days: got 0.0; allowed: > 0 (finite)"
    assert "GPU-hours" not in metrics(at)


def test_train_gpu_hours_mode_deepseek():
    # seed 003: DeepSeek-V3's 2.788M H800-hours at $2/GPU-hour = $5.576M
    at = page("train")
    at.button_group(key="train_how").set_value("GPU-hours").run()
    at.selectbox(key="train_gpu").set_value("h800-sxm")
    at.number_input(key="train_price").set_value(2.0).run()
    assert_clean(at)
    m = metrics(at)
    assert m["GPU-hours"] == "2,788,000" and m["Final run"] == "$5,576,000"


def test_train_flops_mode_reports_mfu_and_compute():
    from billshape.estimates import training_bill

    at = page("train")
    at.button_group(key="train_how").set_value("6·N·D").run()
    assert_clean(at)
    bill = training_bill(gpu="a100", params=7e9, tokens=2000e9, mfu=0.4, price=2.5)
    assert metrics(at)["GPU-hours"] == f"{bill.gpu_hours:,.0f}"
    text = " ".join(md.value for md in at.markdown)
    assert "MFU **0.4**" in text and f"{bill.training_flops:.3g} FLOP" in text


def test_train_amortized_mode_shows_epoch_defaults_with_sources():
    from billshape import catalog

    at = page("train")
    at.button_group(key="train_pricing").set_value("Amortized").run()
    # the A100 80GB has no catalogued purchase price: the library says so, and how to fix it
    assert not at.exception and "--hardware-usd" in at.error[0].value
    at.selectbox(key="train_gpu").set_value("h100-sxm").run()
    assert_clean(at)
    table = at.table[0].value
    pue = catalog.constant("datacenter_pue")
    row = table[table["assumption"] == "datacenter_pue"].iloc[0]
    assert row["source"] == pue.source and row["as of"] == pue.as_of
    text = " ".join(md.value for md in at.markdown)
    assert "kWh" in text


def test_train_catalog_price_is_the_catalog_quote():
    from billshape import catalog

    at = page("train")
    at.button_group(key="train_pricing").set_value("Catalog").run()
    at.selectbox(key="train_provider").set_value("lambda")
    at.selectbox(key="train_tier").set_value("on-demand").run()
    assert_clean(at)
    quote = catalog.price("a100", "lambda", "on-demand")
    assert metrics(at)["USD per GPU-hour"] == f"${quote.usd_per_gpu_hour:,.2f}"


def test_train_unknown_catalog_combination_is_an_error_message():
    at = page("train")
    at.button_group(key="train_pricing").set_value("Catalog").run()
    at.selectbox(key="train_gpu").set_value("tpu-v5e")
    at.selectbox(key="train_provider").set_value("lambda").run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("--provider/--tier:")


def test_payback_never_is_an_answer():
    at = page("train")
    at.number_input(key="payback_cost").set_value(12.0).run()
    assert_clean(at)
    assert metrics(at)["Payback"] == "never"
    assert at.warning and "never pays back" in at.warning[0].value


def test_payback_users_zero_is_the_library_message():
    at = page("train")
    at.number_input(key="payback_users").set_value(0).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["--users: got 0; allowed: > 0 (finite)"]
    assert metrics(at)["GPU-hours"] == "94,080"  # the training bill above still shows


# --- Serve ------------------------------------------------------------------------------------------


def test_serve_defaults_are_seed_003_node():
    # seed 003, section 37.2: 8 GPUs x $2 = $16/h over 14,800 tokens/s x 3600 s = $0.3003 per million
    at = page("serve")
    assert_clean(at)
    m = metrics(at)
    assert m["USD per million output tokens"] == "$0.3003" and m["Deployment per hour"] == "$16.00"


def test_serve_halving_utilization_doubles_cost():
    at = page("serve")
    at.slider(key="serve_util").set_value(0.5).run()
    assert_clean(at)
    assert metrics(at)["USD per million output tokens"] == "$0.6006"


def test_serve_zero_utilization_is_the_library_message():
    at = page("serve")
    at.slider(key="serve_util").set_value(0.0).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["--utilization: got 0.0; allowed: in (0, 1]"]


def test_serve_input_tokens_and_catalog_price():
    from billshape.estimates import serving_cost

    at = page("serve")
    at.toggle(key="serve_input_toggle").set_value(True).run()
    at.button_group(key="serve_pricing").set_value("Catalog").run()
    at.selectbox(key="serve_provider").set_value("aws")
    at.selectbox(key="serve_tier").set_value("spot").run()
    assert_clean(at)
    ref = serving_cost(tokens_per_second=14_800, gpus=8, gpu="h100", provider="aws", tier="spot",
                       utilization=1.0, input_tokens_per_second=100_000)
    m = metrics(at)
    assert m["USD per million input tokens"] == f"${ref.usd_per_million_input_tokens:.4g}"
    assert list(at.table[0].value["source"]) == [a.source for a in ref.assumptions]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(util=st.integers(1, 100), gpus=st.integers(1, 64))
def test_serve_page_equals_library(util, gpus):
    from billshape.app._ui import fmt
    from billshape.estimates import serving_cost

    at = page("serve")
    at.slider(key="serve_util").set_value(util / 100)
    at.number_input(key="serve_gpus").set_value(gpus).run()
    assert_clean(at)
    ref = serving_cost(tokens_per_second=14_800, gpus=gpus, price=2.0, utilization=util / 100)
    assert metrics(at)["USD per million output tokens"] == fmt(ref.usd_per_million_output_tokens, "USD")


def model_mode() -> AppTest:
    at = page("serve")
    at.button_group(key="serve_how").set_value("Model the throughput").run()
    return at


def test_serve_model_mode_equals_library():
    from billshape import serving

    at = model_mode()
    assert_clean(at)
    # `billshape serve --model llama-3.1-70b --gpu h100 --gpus 2 --precision fp8 ... --batch max --price 2.5`
    ref = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=1000,
                        output_tokens=1000, batch="max", price=2.5, utilization=1.0)
    m = metrics(at)
    assert m["Output tokens/s"] == f"{round(ref.output_tokens_per_second):,}"
    assert m["TPOT"] == f"{ref.tpot_seconds * 1e3:,.1f} ms" and m["TTFT"] == f"{ref.ttft_seconds * 1e3:,.0f} ms"
    assert m["Bound"] == ref.bound
    assert m["USD per million output tokens"] == f"${ref.usd_per_million_output_tokens:.4g}"
    assert list(at.table[0].value["source"]) == [a.source for a in ref.assumptions]


def test_serve_model_mode_static_batch_and_catalog_price():
    from billshape import serving

    at = model_mode()
    at.toggle(key="serve_m_batch_max").set_value(False).run()
    at.number_input(key="serve_m_batch").set_value(16)
    at.number_input(key="serve_m_out").set_value(500)
    at.button_group(key="serve_m_pricing").set_value("Catalog").run()
    at.selectbox(key="serve_m_provider").set_value("aws").run()
    assert_clean(at)
    ref = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=1000,
                        output_tokens=500, batch=16, provider="aws", tier="on-demand", utilization=1.0)
    m = metrics(at)
    assert ref.bound == "memory-bandwidth" and m["Bound"] == ref.bound
    assert m["TPOT"] == f"{ref.tpot_seconds * 1e3:,.1f} ms"
    assert m["USD per million input tokens"] == fmt_usd(ref.usd_per_million_input_tokens)


def test_serve_model_mode_too_few_gpus_is_the_library_message():
    at = model_mode()
    at.selectbox(key="serve_m_precision").set_value("bf16")
    at.number_input(key="serve_m_gpus").set_value(1).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("--gpus: got 1; allowed: enough memory: llama-3.1-70b at bf16")


def test_serve_model_mode_feeds_build_vs_buy():
    at = model_mode()
    assert at.session_state["serve_usd_per_million_tokens"] == pytest.approx(0.2079, abs=1e-4)


# --- Build vs buy -----------------------------------------------------------------------------------


def test_breakeven_defaults_and_change():
    at = page("breakeven")
    assert_clean(at)
    # seed 003 example: 100,000 / ((1.10 - 0.30) / 1e6) = 125 billion tokens
    assert metrics(at)["Break-even volume"] == "125 billion tokens"
    at.number_input(key="be_api").set_value(10.0)
    at.number_input(key="be_own").set_value(2.0)
    at.number_input(key="be_fixed").set_value(800_000.0).run()
    assert metrics(at)["Break-even volume"] == "100 billion tokens"  # 800,000 / 8e-6


def test_breakeven_none_when_own_cost_not_below_price():
    at = page("breakeven")
    at.number_input(key="be_own").set_value(2.0).run()
    assert_clean(at)
    assert metrics(at)["Break-even volume"] == "none"
    assert "no break-even" in at.warning[0].value


def test_breakeven_zero_api_price_is_the_library_message():
    at = page("breakeven")
    at.number_input(key="be_api").set_value(0.0).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["--api-price: got 0.0; allowed: > 0 (finite)"]


def test_breakeven_can_take_own_cost_from_serve_page():
    at = page("breakeven")
    at.session_state["serve_usd_per_million_tokens"] = 0.6
    at.run()
    at.checkbox(key="be_use_serve").check().run()
    assert_clean(at)
    assert metrics(at)["Break-even volume"] == "200 billion tokens"  # 100,000 / 0.5e-6


def test_horizon_defaults_cross_in_month_13():
    from billshape.decide import build_vs_buy_horizon

    # 10 billion tokens/month saving (1.10 - 0.30) $/M = $8,000/month against $100,000: month 13
    at = page("breakeven")
    assert_clean(at)
    ref = build_vs_buy_horizon(1.10, 0.30, 100_000, 10e9, 24)
    m = metrics(at)
    assert m["Crossover"] == "month 13" and ref.crossover_month == 13
    assert m["NPV of building"] == fmt_usd(ref.npv_saving_usd) and m["Decision"] == "build"


def test_horizon_llmflation_trend_flips_next_year_with_its_source():
    from billshape import market
    from billshape.decide import build_vs_buy_horizon

    at = page("breakeven")
    at.selectbox(key="hz_trend").set_value("a16z-llmflation")
    at.number_input(key="hz_discount").set_value(10.0)
    at.number_input(key="hz_growth").set_value(5.0).run()
    assert_clean(at)
    trend = market.trend("a16z-llmflation")
    ref = build_vs_buy_horizon(1.10, 0.30, 100_000, 10e9, 24, 0.05, trend.annual_factor, None, 1.0, 0.10)
    m = metrics(at)
    assert m["Decision"] == ref.decision and m["Next year's decision"] == ref.recheck["decision"] == "buy"
    assert m["NPV of building"] == fmt_usd(ref.npv_saving_usd)
    table = at.table[-1].value
    assert trend.source in list(table["source"])


def test_horizon_step_change_equals_library():
    from billshape.decide import build_vs_buy_horizon

    at = page("breakeven")
    at.toggle(key="hz_step_toggle").set_value(True).run()
    at.number_input(key="hz_step_factor").set_value(0.2).run()
    assert_clean(at)
    ref = build_vs_buy_horizon(1.10, 0.30, 100_000, 10e9, 24, api_price_steps=["13:0.2"])
    m = metrics(at)
    assert m["NPV of building"] == fmt_usd(ref.npv_saving_usd)
    assert m["Crossover"] == (f"month {ref.crossover_month}" if ref.crossover_month else "none")


def test_horizon_zero_price_factor_is_the_library_message():
    at = page("breakeven")
    at.selectbox(key="hz_trend").set_value("my factor").run()
    at.number_input(key="hz_factor").set_value(0.0).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["--api-price-annual-factor: got 0.0; allowed: > 0 (finite)"]
    assert metrics(at)["Break-even volume"] == "125 billion tokens"  # the static answer above still shows


# --- Size -------------------------------------------------------------------------------------------


def test_size_opens_on_sardana_fig1():
    # Sardana et al. 2024 (arXiv:2401.00448) Fig. 1: a 13B model's loss at 2e12 inference tokens -> ~7B params
    at = page("size")
    assert_clean(at)
    m = metrics(at)
    assert m["Parameters"] == "6.97B" and m["Chinchilla parameters"] == "13B"
    assert m["Lifetime FLOPs saved"] == "17.4%"
    # the constant set is shown with its values and source
    assert any("alpha = 0.336" in c.value for c in at.caption)
    assert at.table[0].value["source"].iloc[0].startswith("Sardana et al. 2024")


@pytest.mark.parametrize("constants", ["hoffmann-2022", "besiroglu-2024"])
def test_size_constant_set_and_tokens_equal_library(constants):
    from billshape.decide import size_model

    at = page("size")
    at.selectbox(key="size_constants").set_value(constants)
    at.number_input(key="size_inference").set_value(10.0).run()
    assert_clean(at)
    ref = size_model(10e12, reference_params=13e9, constants=constants)
    m = metrics(at)
    assert m["Parameters"] == f"{ref.params / 1e9:,.3g}B"
    assert m["Training tokens"] == f"{ref.tokens / 1e12:,.4g}T"
    assert m["Lifetime FLOPs saved"] == f"{ref.saving_fraction:.1%}"
    assert at.table[0].value["assumption"].iloc[0].startswith(constants)


def test_size_zero_inference_is_chinchilla():
    at = page("size")
    at.number_input(key="size_inference").set_value(0.0).run()
    assert_clean(at)
    m = metrics(at)
    assert m["Parameters"] == "13B" and m["Lifetime FLOPs saved"] == "0.0%"


def test_size_target_loss_below_e_is_the_library_message():
    at = page("size")
    at.button_group(key="size_how").set_value("Target loss").run()
    assert_clean(at)
    at.number_input(key="size_loss").set_value(1.5).run()
    assert not at.exception
    assert len(at.error) == 1 and at.error[0].value.startswith("--target-loss: got 1.5; allowed: > E = 1.69")


# --- Capacity ---------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_capacity_shipped_week_is_the_example_file():
    from billshape.app.views.capacity import read_example
    from billshape.decide import read_demand

    for got, want in zip(read_example(), read_demand(ROOT / "examples" / "demand_week.csv")):
        assert list(got) == list(want)


def test_capacity_opens_on_example_week_equal_to_library():
    from billshape.app.views.capacity import read_example
    from billshape.decide import capacity_plan

    at = page("capacity")
    assert_clean(at)
    _, gpus, intr = read_example()
    ref = capacity_plan(gpus, 1.9, 3.9, intr)
    m = metrics(at)
    assert m["Reserved GPUs"] == "14" and ref.reserved_gpus == 14
    assert m["Total cost"] == f"${ref.total_usd:,.0f}" and m["Saved"] == f"{ref.saving_fraction:.1%}"
    assert "example demand profile" in list(at.table[0].value["assumption"])


def test_capacity_spot_and_prices_equal_library():
    from billshape.app.views.capacity import read_example
    from billshape.decide import capacity_plan

    at = page("capacity")
    at.toggle(key="cap_spot_toggle").set_value(True).run()
    at.number_input(key="cap_on_demand").set_value(2.5).run()
    assert_clean(at)
    _, gpus, intr = read_example()
    ref = capacity_plan(gpus, 1.9, 2.5, intr, 1.2, 0.2, 10.0)
    assert ref.uses_spot
    m = metrics(at)
    assert m["Total cost"] == f"${ref.total_usd:,.0f}" and m["Reserved GPUs"] == f"{ref.reserved_gpus:g}"
    assert "interruptible work on spot" in at.success[0].value


def test_capacity_catalog_prices_carry_their_sources():
    from billshape import catalog

    at = page("capacity")
    at.button_group(key="cap_pricing").set_value("Catalog").run()
    at.selectbox(key="cap_provider").set_value("aws").run()
    assert_clean(at)
    table = at.table[0].value
    quote = catalog.price("h100", "aws", "reserved-1y")
    row = table[table["assumption"] == "h100-sxm aws reserved-1y price"].iloc[0]
    assert row["source"] == quote.source and row["as of"] == quote.as_of


def test_capacity_zero_reserved_price_is_the_library_message():
    at = page("capacity")
    at.number_input(key="cap_reserved").set_value(0.0).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["--reserved-price: got 0.0; allowed: > 0 (finite)"]


def test_capacity_upload_reader_names_the_upload(tmp_path):
    from billshape.app.views.capacity import read_upload
    from billshape.errors import BillshapeInputError

    hours, gpus, intr = read_upload("mine.csv", b"hour,gpus\n0,3\n1,5\n")
    assert list(gpus) == [3, 5] and list(intr) == [0, 0]
    with pytest.raises(BillshapeInputError) as err:
        read_upload("gappy.csv", b"hour,gpus\n0,3\n2,5\n")
    assert err.value.message.startswith("--demand: got 'gappy.csv: hours jump from 0 to 2'")


# --- Route ------------------------------------------------------------------------------------------


def test_route_shipped_ladder_is_the_example_file():
    from billshape.app.views.route import read_example
    from billshape.decide import read_ladder

    assert read_example() == read_ladder(ROOT / "examples" / "ladder_frugalgpt.yaml")


def test_route_opens_on_frugalgpt_and_bar_moves_the_choice():
    from billshape.app.views.route import read_example
    from billshape.decide import route

    at = page("route")
    assert_clean(at)
    m = metrics(at)
    assert m["Chosen model"] == "gemini-1.5-flash" and m["Saving vs largest"] == "99.5%"
    at.slider(key="route_bar").set_value(0.85).run()
    assert_clean(at)
    ref = route(read_example(), 0.85)
    assert ref.chosen == "gpt-4-turbo" and metrics(at)["Chosen model"] == ref.chosen
    assert metrics(at)["Saving vs largest"] == "0.0%"


def test_route_cascade_equals_library():
    from billshape.app.views.route import read_example
    from billshape.decide import route

    at = page("route")
    at.toggle(key="route_cascade").set_value(True).run()
    assert_clean(at)
    ref = route(read_example(), 0.845, cascade=True)
    assert metrics(at)["Cascade quality"] == f"{ref.cascade['quality']:.4g}"
    sources = set(at.table[0].value["source"])
    assert any("FrugalGPT" in s for s in sources)


def test_route_bar_above_best_is_the_library_message():
    at = page("route")
    at.slider(key="route_bar").set_value(0.9).run()
    assert not at.exception
    assert len(at.error) == 1
    assert at.error[0].value.startswith("--quality-bar: got 0.9; allowed: <= 0.8558 (the best model in the ladder")


def test_route_upload_reader_names_the_upload():
    from billshape.app.views.route import read_upload
    from billshape.errors import BillshapeInputError

    got = read_upload("mine.yaml", b"source: me\nmodels:\n  - {name: a, quality: 0.9, usd_per_request: 0.01}\n")
    assert got["models"] == [{"name": "a", "quality": 0.9, "usd_per_request": 0.01}]
    with pytest.raises(BillshapeInputError) as err:
        read_upload("bad.yaml", b"models:\n  - {name: a, quality: 1.5, usd_per_request: 0.01}\n")
    assert err.value.message.startswith("models[0].quality: got 1.5")


# --- `billshape app` --------------------------------------------------------------------------------


def test_app_dry_run_json(cli):
    res = cli("app", "--port", "8600", "--dry-run", "--json")
    assert res.code == 0, res.err
    data = res.json()
    assert data["url"] == "http://127.0.0.1:8600" and data["port"] == 8600
    cmd = data["command"]
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("main.py") and Path(cmd[4]).is_file()
    assert cmd[cmd.index("--browser.gatherUsageStats") + 1] == "false"
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"


def test_app_environment_turns_usage_stats_off():
    from billshape.cli.cmd_app import environment

    env = environment()
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"
    assert (Path(env["PYTHONPATH"].split(":")[0]) / "billshape" / "app" / "main.py").is_file()


@pytest.mark.parametrize("port", ["0", "70000"])
def test_app_bad_port(cli, port):
    assert_one_line_error(cli("app", "--port", port, "--dry-run"), "--port")
