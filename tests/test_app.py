"""The web app's pages (Streamlit AppTest, no browser): change a widget, assert the number.

Each page is rendered headlessly by Streamlit's own test harness; figures are compared with the library's
results (the app must call the library, never re-implement it) and with the seeds' published figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from billshape.report.charts import share_text
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
    assert [m.TITLE for m in mods] == ["Train", "Serve", "Build vs buy", "Size", "Capacity", "Route", "Plan", "Usage"]
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
    assert at.error[0].value == "Days: got 0; allowed: in (0, 40000]"  # the widget's label, never a CLI flag
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
    at.selectbox(key="train_gpu").set_value("tpu-v5e").run()
    at.button_group(key="train_pricing").set_value("Amortized").run()
    # TPUs are not sold, so there is no catalogued purchase price: the library says so, and how to fix it
    assert not at.exception and at.error[0].value == (
        "Accelerator: got 'tpu-v5e'; allowed: an accelerator with a catalogued purchase price "
        '(or give "Chip price, USD")')
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
    assert len(at.error) == 1 and at.error[0].value.startswith("Provider/Tier: got 'lambda/on-demand for tpu-v5e'")


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
    assert [e.value for e in at.error] == ["Paying users: got 0; allowed: in (0, 1e+12]"]
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
    assert [e.value for e in at.error] == ["Utilization: got 0; allowed: in (0, 1]"]


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
    assert at.error[0].value.startswith("GPUs: got 1; allowed: enough memory: llama-3.1-70b at bf16")
    assert at.error[0].value.endswith('"Tensor-parallel GPUs per replica" 2 (the smallest size from 2 up that '
                                      'divides its 64 attention heads)')  # a backticked field: its label too


def test_serve_model_mode_parallelism_and_kv_equal_library():
    from billshape import serving

    at = model_mode()
    at.number_input(key="serve_m_gpus").set_value(4).run()
    at.selectbox(key="serve_m_tp_4").set_value(2)
    at.selectbox(key="serve_m_kv").set_value("fp8")
    at.number_input(key="serve_m_reasoning").set_value(2.0)
    at.slider(key="serve_m_cache").set_value(0.5).run()
    assert_clean(at)
    # `billshape serve --model llama-3.1-70b --gpu h100 --gpus 4 --tp 2 --precision fp8 --kv-precision fp8
    #  --reasoning-multiplier 2 --cache-hit-rate 0.5 --price 2.5`
    ref = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=4, tp=2, precision="fp8", kv_precision="fp8",
                        input_tokens=1000, output_tokens=1000, batch="max", price=2.5, utilization=1.0,
                        reasoning_multiplier=2.0, cache_hit_rate=0.5)
    m = metrics(at)
    assert m["Output tokens/s"] == f"{round(ref.output_tokens_per_second):,}"
    assert m["USD per million output tokens"] == fmt_usd(ref.usd_per_million_output_tokens)
    assert list(at.table[0].value["source"]) == [a.source for a in ref.assumptions]
    solo = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=4, precision="fp8", input_tokens=1000,
                         output_tokens=1000, batch="max", price=2.5, utilization=1.0)
    assert ref.output_tokens_per_second != solo.output_tokens_per_second  # the inputs reached the model
    # a new GPU count starts again at one replica of all the GPUs (the library's default), as the CLI's --gpus does
    at.number_input(key="serve_m_gpus").set_value(8).run()
    assert_clean(at)
    eight = serving.serve(model="llama-3.1-70b", gpu="h100", gpus=8, precision="fp8", kv_precision="fp8",
                          input_tokens=1000, output_tokens=1000, batch="max", price=2.5, utilization=1.0,
                          reasoning_multiplier=2.0, cache_hit_rate=0.5)
    assert metrics(at)["Output tokens/s"] == f"{round(eight.output_tokens_per_second):,}"


def test_serve_model_mode_expert_parallel_for_moe():
    from billshape import serving

    at = model_mode()
    at.selectbox(key="serve_m_model").set_value("qwen3-30b-a3b").run()
    at.selectbox(key="serve_m_ep_2").set_value(2).run()
    at.toggle(key="serve_m_dp").set_value(True).run()
    assert_clean(at)
    ref = serving.serve(model="qwen3-30b-a3b", gpu="h100", gpus=2, precision="fp8", input_tokens=1000,
                        output_tokens=1000, batch="max", price=2.5, utilization=1.0, ep=2, dp_attention=True)
    assert metrics(at)["Output tokens/s"] == f"{round(ref.output_tokens_per_second):,}"
    at.selectbox(key="serve_m_model").set_value("llama-3.1-70b").run()  # dense: no expert-parallel input
    assert_clean(at)
    assert not [w for w in at.selectbox if w.key.startswith("serve_m_ep")]


def test_serve_model_mode_engine_and_redundant_experts_equal_library():
    """The engine selector and (MoE) the redundant-experts input reach the request: SGLang with 8 redundant expert
    slots over EP 2 is the library's figure, and differs from the default engine's; the assumptions say "user
    input" for both; a dense model has no redundant-experts input, and redundant experts without EP > 1 show the
    library's one-line message in the page's words."""
    from billshape import serving

    at = model_mode()
    at.selectbox(key="serve_m_model").set_value("qwen3-30b-a3b").run()
    at.selectbox(key="serve_m_engine").set_value("sglang")
    at.selectbox(key="serve_m_ep_2").set_value(2)
    at.number_input(key="serve_m_redundant").set_value(8).run()
    assert_clean(at)
    kw = dict(model="qwen3-30b-a3b", gpu="h100", gpus=2, precision="fp8", input_tokens=1000, output_tokens=1000,
              batch="max", price=2.5, utilization=1.0, ep=2)
    ref = serving.serve(engine="sglang", redundant_experts=8, **kw)
    assert metrics(at)["Output tokens/s"] == f"{round(ref.output_tokens_per_second):,}"
    assert round(ref.output_tokens_per_second) != round(serving.serve(**kw).output_tokens_per_second)
    assert list(at.table[0].value["source"]) == [a.source for a in ref.assumptions]
    by_name = {a.name: a.source for a in ref.assumptions}
    assert by_name["serving engine"].startswith("user input")
    at.selectbox(key="serve_m_ep_2").set_value(1).run()
    assert not at.exception and len(at.error) == 1 and at.error[0].value.startswith("Redundant experts: got 8")
    at.selectbox(key="serve_m_model").set_value("llama-3.1-70b").run()
    assert_clean(at)
    assert not [w for w in at.number_input if w.key == "serve_m_redundant"]


def test_serve_model_mode_capacity_for_a_latency_target():
    from billshape import serving

    at = model_mode()
    assert "Replicas" not in metrics(at)  # off until a request rate is given
    at.number_input(key="serve_c_rps").set_value(20.0)
    at.number_input(key="serve_c_tpot").set_value(40.0).run()
    assert_clean(at)
    ref = serving.capacity(model="llama-3.1-70b", gpu="h100", precision="fp8", input_tokens=1000,
                           output_tokens=1000, price=2.5, requests_per_second=20.0, tpot_limit=0.04)
    m = metrics(at)
    assert m["Replicas"] == f"{ref.replicas:,}" and m["GPUs"] == f"{ref.gpus:,}"
    assert m["USD per month"] == fmt_usd(ref.usd_per_month)
    # the page's engine sizes the replicas too: Qwen3-235B-A22B on H100, 20 requests/s within 50 ms TPOT takes 8
    # GPUs on TensorRT-LLM's profile and 16 on vLLM's (docs/serving.md, capacity)
    at.selectbox(key="serve_m_model").set_value("qwen3-235b-a22b")
    at.number_input(key="serve_m_gpus").set_value(8)
    at.number_input(key="serve_c_tpot").set_value(50.0).run()
    kw = dict(model="qwen3-235b-a22b", gpu="h100", precision="fp8", input_tokens=1000, output_tokens=1000, price=2.5,
              requests_per_second=20.0, tpot_limit=0.05)
    for engine in ("vllm", "trtllm (default)"):
        at.selectbox(key="serve_m_engine").set_value(engine).run()
        assert_clean(at)
        want = serving.capacity(**kw, engine=None if "default" in engine else engine)
        assert metrics(at)["GPUs"] == f"{want.gpus:,}" and metrics(at)["Replicas"] == f"{want.replicas:,}"
    assert serving.capacity(**kw, engine="vllm").gpus != serving.capacity(**kw).gpus
    at.number_input(key="serve_c_tpot").set_value(0.5).run()  # no batch is that fast: the library's message
    assert not at.exception and at.error and at.error[0].value.startswith("TPOT limit: got 0.0005; allowed: >= ")


def test_serve_model_mode_feeds_build_vs_buy():
    at = model_mode()
    assert at.session_state["serve_usd_per_million_tokens"] == pytest.approx(0.2079, abs=1e-4)


# --- Serve › disaggregated prefill / decode pools ---------------------------------------------------


def chart_titles(at: AppTest) -> list[str]:
    """The titles of the page's Altair charts (their Vega-Lite specs), in page order."""
    import json

    found: list[str] = []

    def walk(node):
        for child in getattr(node, "children", {}).values():
            if child.type == "vega_lite_chart":
                spec = json.loads(child.proto.spec)
                found.extend(layer["title"] if isinstance(layer.get("title"), str) else layer["title"]["text"]
                             for layer in [spec, *spec.get("layer", [])] if layer.get("title"))
            walk(child)

    walk(at.main)
    return found


def pools_mode(model: str | None = None, gpu: str | None = None) -> AppTest:
    at = model_mode()
    if model:
        at.selectbox(key="serve_m_model").set_value(model).run()
    if gpu:
        at.selectbox(key="serve_m_gpu").set_value(gpu).run()
    at.toggle(key="serve_m_pools").set_value(True).run()
    return at


def test_serve_pools_wide_ep_deepseek_equals_library():
    """DeepSeek-V3 on H800 in two wide-EP pools (SGLang's and DeepSeek's layout): 32 GPUs that prefill with EP 32,
    64 that decode with EP 64, attention data-parallel and two-batch overlap in both. The page shows what the
    library's serve chain computes for the same request."""
    from billshape.chains import ServeRequest, run
    from billshape.serving_disagg import DisaggregatedServeEstimate

    at = pools_mode("deepseek-v3", "h800-sxm")
    for pool, n in (("prefill", 32), ("decode", 64)):
        at.number_input(key=f"serve_p_{pool}_gpus").set_value(n).run()  # the parallelism widgets follow the count
        at.selectbox(key=f"serve_p_{pool}_tp_{n}").set_value(n)
        at.selectbox(key=f"serve_p_{pool}_ep_{n}").set_value(n)
        at.toggle(key=f"serve_p_{pool}_dp").set_value(True)
    at.toggle(key="serve_p_tbo").set_value(True).run()
    assert_clean(at)
    fields = dict(model="deepseek-v3", gpu="h800-sxm", precision="fp8", input_tokens=1000, output_tokens=1000,
                  price=2.5, utilization=1.0, prefill_gpus=32, decode_gpus=64, prefill_tp=32, prefill_ep=32,
                  prefill_dp_attention=True, decode_tp=64, decode_ep=64, decode_dp_attention=True,
                  two_batch_overlap=True)
    ref = run(ServeRequest(**fields))
    assert isinstance(ref, DisaggregatedServeEstimate)
    m = metrics(at)
    assert m["Decode pool, output tokens/s"] == f"{round(ref.decode_output_tokens_per_second):,}"
    assert m["Decode, per node"] == f"{round(ref.decode_output_tokens_per_second_per_node):,}"
    assert m["Prefill pool, input tokens/s"] == f"{round(ref.prefill_input_tokens_per_second):,}"
    assert m["Output tokens/s"] == f"{round(ref.output_tokens_per_second):,}"
    assert m["USD per million output tokens"] == fmt_usd(ref.usd_per_million_output_tokens)
    assert m["USD per million input tokens"] == fmt_usd(ref.usd_per_million_input_tokens)
    assert m["Balanced ratio"] == f"{ref.balanced_prefill_gpus_per_decode_gpu:.3g}"
    assert m["Prefill GPUs per decode GPU"] == "0.5"  # 32 / 64
    assert m["Bound by"] == f"{ref.bound_pool} pool"
    assert list(at.table[-1].value["source"]) == [a.source for a in ref.assumptions]
    sources = dict(zip(at.table[-1].value["assumption"], at.table[-1].value["source"]))
    assert sources["decode expert parallel"] == "user input (decode_ep)"
    assert sources["two-batch overlap"] == "user input (two_batch_overlap)"
    assert sources["decode batch"].startswith("computed")  # left at the library's default: the largest that fits
    # every widget reached the model: without overlap the same pools serve fewer tokens
    plain = run(ServeRequest(**{**fields, "two_batch_overlap": False}))
    assert plain.decode_output_tokens_per_second < ref.decode_output_tokens_per_second
    assert "Which pool bounds: the slower pool sets the pair's rate" in chart_titles(at)


def test_serve_pools_default_is_the_worked_example_and_skips_the_batch_chart():
    """Turning the pools on opens on docs/serving.md's example (Llama 3.1 70B fp8 on H100: 2 prefill GPUs, 4 decode
    GPUs, each pool at its default parallelism); the single-pool GPUs stay on the page but are not sent."""
    from billshape.chains import ServeRequest, run

    at = model_mode()
    assert "Bigger batches: cheaper tokens, each one slower" in chart_titles(at)
    at.toggle(key="serve_m_pools").set_value(True).run()
    assert_clean(at)
    ref = run(ServeRequest(model="llama-3.1-70b", gpu="h100", precision="fp8", input_tokens=1000,
                           output_tokens=1000, price=2.5, utilization=1.0, prefill_gpus=2, decode_gpus=4))
    m = metrics(at)
    assert m["Decode pool, output tokens/s"] == f"{round(ref.decode_output_tokens_per_second):,}"
    assert m["TPOT"] == f"{ref.tpot_seconds * 1e3:,.1f} ms" and m["TTFT"] == f"{ref.ttft_seconds * 1e3:,.0f} ms"
    assert m["KV transfer"] == f"{ref.kv_transfer_seconds * 1e3:,.2f} ms"
    sources = dict(zip(at.table[-1].value["assumption"], at.table[-1].value["source"]))
    assert sources["prefill tensor parallel"].startswith("computed")
    assert sources["decode tensor parallel"].startswith("computed")
    assert sources["prefill GPUs"] == "user input (prefill_gpus)"  # the counts are always sent
    left_alone = {f"user input ({f})" for f in ("prefill_tp", "decode_tp", "decode_batch", "two_batch_overlap", "tp")}
    assert not left_alone & set(sources.values())  # what the user left alone is the library's default
    assert at.number_input(key="serve_m_gpus").disabled and at.toggle(key="serve_m_batch_max").disabled
    titles = chart_titles(at)
    assert "Bigger batches: cheaper tokens, each one slower" not in titles  # the single-pool sweep does not run
    assert "Which pool bounds: the slower pool sets the pair's rate" in titles
    assert any("batch-size chart is for one pool" in c.value for c in at.caption)
    # a static single-pool batch left on from before is not sent (the library refuses a batch with the pools)
    at.toggle(key="serve_m_pools").set_value(False).run()
    at.toggle(key="serve_m_batch_max").set_value(False).run()
    at.toggle(key="serve_m_pools").set_value(True).run()
    assert_clean(at)
    assert metrics(at)["Decode pool, output tokens/s"] == f"{round(ref.decode_output_tokens_per_second):,}"
    # and off again: the single-pool estimate, as before
    at.toggle(key="serve_m_pools").set_value(False).run()
    at.toggle(key="serve_m_batch_max").set_value(True).run()
    assert_clean(at)
    assert "Decode pool, output tokens/s" not in metrics(at)
    assert metrics(at)["Output tokens/s"] == f"{round(run(ServeRequest(**MODEL_FIELDS)).output_tokens_per_second):,}"


MODEL_FIELDS = dict(model="llama-3.1-70b", gpu="h100", gpus=2, precision="fp8", input_tokens=1000,
                    output_tokens=1000, price=2.5, utilization=1.0)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefill=st.sampled_from([2, 4, 8, 16]), decode=st.sampled_from([2, 4, 8, 16]),
       decode_batch=st.one_of(st.none(), st.integers(1, 64)))
def test_serve_pools_page_equals_library_and_bound_follows_the_ratio(prefill, decode, decode_batch):
    """For any pool sizes the page shows the library's decode figure, and the pool it says bounds is the one its
    two ratios point at: fewer prefill GPUs per decode GPU than the balanced ratio and the prefill pool bounds."""
    from billshape.chains import ServeRequest, run

    at = pools_mode()
    at.number_input(key="serve_p_prefill_gpus").set_value(prefill)
    at.number_input(key="serve_p_decode_gpus").set_value(decode).run()
    if decode_batch is not None:
        at.toggle(key="serve_p_batch_max").set_value(False).run()
        at.number_input(key="serve_p_batch").set_value(decode_batch).run()
    fields = {k: v for k, v in MODEL_FIELDS.items() if k != "gpus"}
    ref = run(ServeRequest(**fields, prefill_gpus=prefill, decode_gpus=decode, decode_batch=decode_batch))
    assert_clean(at)
    m = metrics(at)
    assert m["Decode pool, output tokens/s"] == f"{round(ref.decode_output_tokens_per_second):,}"
    assert m["Prefill pool, input tokens/s"] == f"{round(ref.prefill_input_tokens_per_second):,}"
    if ref.bound_pool != "kv-transfer":
        ratio, balanced = prefill / decode, ref.balanced_prefill_gpus_per_decode_gpu
        if abs(ratio / balanced - 1) > 1e-9:
            assert m["Bound by"] == ("prefill pool" if ratio < balanced else "decode pool")


def test_serve_pools_invalid_combinations_are_one_line_library_messages():
    """DeepSeek-V3's weights do not fit the default 2-GPU prefill pool; a decode batch larger than fits is refused:
    each is one message in the widgets' words, never a flag, never a traceback."""
    at = pools_mode("deepseek-v3")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert errors[0].startswith("Prefill GPUs: got 2; allowed: enough memory: deepseek-v3 at fp8"), errors
    assert errors[0].endswith('"Prefill tensor-parallel GPUs per instance" 16 (the smallest size from 10 up that '
                              'divides its 128 attention heads)')
    at = pools_mode()
    at.toggle(key="serve_p_batch_max").set_value(False).run()
    at.number_input(key="serve_p_batch").set_value(100_000).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Decode batch per instance: got 100000; allowed: <= "), errors
    assert "--" not in errors[0]


@given(n=st.integers(1, 5000))
def test_pool_parallelism_choices_are_the_divisors(n):
    from billshape.app.views.serve import _divisors

    got = _divisors(n)
    assert got == [d for d in range(1, n + 1) if n % d == 0]


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
    assert [e.value for e in at.error] == ["API price p, USD per million tokens: got 0; allowed: in (0, 1e+06]"]


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
    assert [e.value for e in at.error] == ["API price factor per year: got 0; allowed: > 0 (finite)"]
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
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Target loss, nats per token: got 1.5; allowed: > E = 1.69")


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
    assert [e.value for e in at.error] == ["Reserved, USD/GPU-hour: got 0; allowed: > 0 (finite)"]


def test_capacity_upload_reader_names_the_upload(tmp_path):
    from billshape.app.views.capacity import read_upload
    from billshape.errors import BillshapeInputError

    hours, gpus, intr = read_upload("mine.csv", b"hour,gpus\n0,3\n1,5\n")
    assert list(gpus) == [3, 5] and list(intr) == [0, 0]
    with pytest.raises(BillshapeInputError) as err:
        read_upload("gappy.csv", b"hour,gpus\n0,3\n2,5\n")
    assert err.value.message.startswith("demand: got 'gappy.csv: hours jump from 0 to 2'")


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
    assert at.error[0].value == ("Quality bar: got 0.9; allowed: <= 0.8558 (the best model in the ladder, gpt-4-turbo) "
                                 '(no single model clears the bar; a cascade ("Cascade") may)')


def test_route_upload_reader_names_the_upload():
    from billshape.app.views.route import read_upload
    from billshape.errors import BillshapeInputError

    got = read_upload("mine.yaml", b"source: me\nmodels:\n  - {name: a, quality: 0.9, usd_per_request: 0.01}\n")
    assert got["models"] == [{"name": "a", "quality": 0.9, "usd_per_request": 0.01}]
    with pytest.raises(BillshapeInputError) as err:
        read_upload("bad.yaml", b"models:\n  - {name: a, quality: 1.5, usd_per_request: 0.01}\n")
    assert err.value.message.startswith("models[0].quality: got 1.5")


# --- Plan -------------------------------------------------------------------------------------------


def plan_ref(name: str, samples: int = 20_000, seed: int = 0):
    from billshape import scenario

    return scenario.load(scenario.examples_dir() / name).evaluate(samples=samples, seed=seed)


def test_plan_opens_on_an_example_equal_to_library():
    from billshape.report.html import _fmt

    at = page("plan")
    assert_clean(at)
    ref = plan_ref("high_volume_self_host.yaml")  # the page's default example, at the CLI's 20,000 samples, seed 0
    m = metrics(at)
    assert m["Payback, P50 (months)"] == _fmt("payback_month", ref.summary["payback_month"]["p50"])
    assert m["NPV, P50"] == _fmt("npv_usd", ref.summary["npv_usd"]["p50"])
    assert m["Never pays back"] == share_text(ref.probability_never_pays_back)
    # both views of unit economics, side by side, each saying which question it answers
    for key, label in (("contribution_margin_per_user_month_usd", "Contribution margin, P50"),
                       ("fully_loaded_margin_per_user_month_usd", "Fully loaded margin, P50")):
        assert m[label] == _fmt(key, ref.summary[key]["p50"])
    text = " ".join(md.value for md in at.markdown)
    assert "do I make or lose money on one more user?" in text and "pay for the whole business" in text
    # the summary table is the CLI's (cmd_plan.summary_rows), and every assumption's source is listed
    from billshape.cli.cmd_plan import summary_rows

    assert at.table[0].value["P50"].tolist() == [r[2] for r in summary_rows(ref)]
    assert set(at.table[1].value["source"]) == {a.source for a in ref.assumptions}
    from billshape.report import charts

    assert len(at.get("vega_lite_chart")) == len(charts(ref)) == 6  # the report's charts, every one


def test_plan_seed_000_pays_back_in_2_352_months():
    """Seed 000: $235,200 / (10,000 users x $10/month) = 2.352 months (examples/README.md)."""
    at = page("plan")
    at.selectbox(key="plan_example").set_value("seed000_image_startup.yaml").run()
    assert_clean(at)
    m = metrics(at)
    assert m["Payback, P50 (months)"] == "2.352"
    ref = plan_ref("seed000_image_startup.yaml")
    assert ref.summary["payback_month"]["p50"] == 2.352
    assert m["Cumulative profit, P50"] == f"${ref.summary['cumulative_profit_usd']['p50']:,.0f}"


def test_plan_samples_and_seed_equal_library():
    from billshape.report.html import _fmt

    at = page("plan")
    at.selectbox(key="plan_example").set_value("api_wrapper_price_shock.yaml")
    at.number_input(key="plan_samples").set_value(2000)
    at.number_input(key="plan_seed").set_value(7).run()
    assert_clean(at)
    ref = plan_ref("api_wrapper_price_shock.yaml", 2000, 7)
    m = metrics(at)
    assert m["NPV, P50"] == _fmt("npv_usd", ref.summary["npv_usd"]["p50"])
    assert m["Never pays back"] == share_text(ref.probability_never_pays_back)
    assert any("2,000 samples (seed 7)" in c.value for c in at.caption)


def test_plan_edited_yaml_shows_the_library_message(tmp_path):
    from billshape import scenario
    from billshape.app.views.plan import example_text
    from billshape.errors import BillshapeInputError

    at = page("plan")
    at.selectbox(key="plan_example").set_value("seed000_image_startup.yaml").run()
    bad = example_text("seed000_image_startup.yaml").replace("users_start: 10000", "users_start: -5")
    at.text_area(key="plan_yaml").set_value(bad).run()
    assert not at.exception and len(at.error) == 1
    (tmp_path / "seed000_image_startup.yaml").write_text(bad)
    with pytest.raises(BillshapeInputError) as err:
        scenario.load(tmp_path / "seed000_image_startup.yaml")
    assert at.error[0].value == err.value.message and err.value.message.startswith("product.users_start")
    # broken YAML: the line, named by the file, never a temporary path
    at.text_area(key="plan_yaml").set_value("name: x\nproduct: [\n").run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value.startswith("seed000_image_startup.yaml line 3:") and "/tmp" not in at.error[0].value


def test_plan_html_report_is_the_report_writer():
    from billshape.app.views.plan import html_report
    from billshape.report import to_html

    ref = plan_ref("seed000_image_startup.yaml")
    got = html_report(ref).decode("utf-8")
    assert got == to_html(ref) and ref.name in got


# --- Usage ------------------------------------------------------------------------------------------

SAMPLE_LOGS = ("spans.otlp.json", "openai_usage.json", "requests.csv")


@pytest.fixture(scope="module")
def usage_ref(tmp_path_factory):
    """The sample logs ingested by the library, as docs/usage.md does (the CLI's figures)."""
    from billshape import usage

    db = str(tmp_path_factory.mktemp("usage") / "usage.duckdb")
    logs = ROOT / "examples" / "usage"
    prices = str(logs / "selfhosted_prices.csv")
    res = usage.ingest([str(logs / n) for n in SAMPLE_LOGS], db, mapping={"tenant": "customer"}, prices_csv=prices)
    return db, prices, res


def test_usage_shipped_samples_are_the_example_files():
    from billshape.app.views.usage import sample_bundle

    b = sample_bundle()
    files = {p.name: p.read_text(encoding="utf-8") for p in (ROOT / "examples" / "usage").iterdir() if p.is_file()}  # connectors/: not bundled
    for name, text in b["files"].items():  # every bundled file is the example file, byte for byte
        assert files[name] == text, name
    logs = {n for n in files if n.endswith((".json", ".csv"))}
    assert logs <= set(b["files"])  # every example log and price table is bundled
    assert b["prices"] in files and b["mapping"] == {"tenant": "customer"}


def test_usage_opens_on_sample_logs_equal_to_library(usage_ref):
    from billshape import usage
    from billshape.app.views.usage import usd_exact

    db, prices, ref = usage_ref
    assert (ref.rows_read, ref.rows_priced, ref.rows_quarantined, ref.total_usd) == (12, 10, 2, 2.304973)  # docs/usage.md
    at = page("usage")
    assert_clean(at)
    m = metrics(at)
    assert (m["Rows read"], m["Rows priced"], m["Rows quarantined"]) == ("12", "10", "2")
    assert m["Total"] == usd_exact(ref.total_usd) == "$2.304973"
    assert dict(zip(at.table[0].value["reason"], at.table[0].value["rows"])) == ref.quarantine_reasons
    e = usage.economics(db)
    assert m["Cost per user-month"] == fmt_usd(e.usd_per_user_per_month) and m["Requests"] == f"{e.requests:,}"
    assert m["Cache hit rate"] == f"{e.cache_hit_rate:.1%}"
    # default what-if: docs/usage.md's (40 % of gpt-4o to gpt-4o-mini, cache hit rate 0.6): $2.30 -> $1.51, -34.5 %
    w = usage.whatif(db, ["gpt-4o-2024-08-06:0.4->gpt-4o-mini"], 0.6, prices_csv=prices)
    assert m["What if"] == usd_exact(w.whatif_usd) and m["Change, %"] == f"{w.delta_pct:+.1f}%" == "-34.5%"


def test_usage_downloads_are_the_library_exports(usage_ref, tmp_path):
    # the page's two downloads: the FOCUS 1.2 CSV (`usage export --focus`) and the scenario fragment
    # (`usage economics --scenario-out`), byte for byte what the library writes
    import csv
    import io

    from billshape import usage
    from billshape.app.views.usage import focus_csv, fragment_text

    db, _, ref = usage_ref
    out = tmp_path / "focus.csv"
    usage.export_focus(db, str(out))
    got = focus_csv(db)
    assert got == out.read_bytes()  # the rows come sorted: an export is the same file every time
    assert all(focus_csv(db) == got for _ in range(5))
    rows = list(csv.DictReader(io.StringIO(got.decode("utf-8"))))
    assert rows and "BilledCost" in rows[0]
    assert sum(float(r["BilledCost"]) for r in rows) == pytest.approx(ref.total_usd, abs=1e-9)
    e = usage.economics(db)
    text = fragment_text(db, e)
    assert text == usage.fragment_yaml(usage.scenario_fragment(e), e, db)
    merged = usage.merge_scenario(yaml.safe_load((ROOT / "src" / "billshape" / "examples" /
                                                  "high_volume_self_host.yaml").read_text()), yaml.safe_load(text))
    from billshape import scenario

    scenario.parse(merged, "merged")  # the fragment merges into a valid plan
    at = page("usage")
    assert_clean(at)  # the page renders with both buttons


def test_usage_attribution_by_model_and_whatif_change(usage_ref):
    from billshape import usage
    from billshape.app.views.usage import usd_exact

    db, prices, _ = usage_ref
    at = page("usage")
    at.segmented_control(key="usage_by").set_value("model").run()
    assert_clean(at)
    rep = usage.report(db, "model")
    table = at.dataframe[0].value
    assert table["model"].tolist() == [r["key"] for r in rep.rows]
    assert table["USD"].tolist() == [r["usd"] for r in rep.rows]
    at.toggle(key="usage_cache_on").set_value(False)
    at.slider(key="usage_share").set_value(1.0).run()
    assert_clean(at)
    w = usage.whatif(db, ["gpt-4o-2024-08-06:1->gpt-4o-mini"], None, prices_csv=prices)
    assert metrics(at)["What if"] == usd_exact(w.whatif_usd)


def test_usage_unpriced_target_is_the_library_message():
    at = page("usage")
    at.text_input(key="usage_to").set_value("no-such-model").run()
    assert not at.exception and len(at.error) == 1
    assert at.error[0].value == ("to model: got 'no-such-model'; allowed: a model with a price (genai-prices or "
                                 '"Price table CSV (optional)") (no price for model no-such-model)')


def test_usage_upload_ingest_names_the_upload(tmp_path, usage_ref):
    from billshape.app.views.usage import ingest_files
    from billshape.errors import BillshapeInputError

    data = (ROOT / "examples" / "usage" / "requests.csv").read_bytes()
    got = ingest_files({"mine.csv": data}, tmp_path, mapping={"tenant": "customer"})
    assert got["ingest"].files_ingested == ["mine.csv"] and got["ingest"].rows_read == 5
    with pytest.raises(BillshapeInputError) as err:
        ingest_files({"mine.csv": data}, tmp_path, prices=("my_prices.csv", b"a,b\n1,2\n"))
    assert err.value.message.startswith("prices: got 'my_prices.csv'; allowed: a CSV with columns provider, model")


# --- Errors in the app's words ----------------------------------------------------------------------

# (page, widget changes in order (kind, key, value), the start of the one error shown): a bad value on every page
# is named by the label of its widget (or, on Plan, by the scenario's YAML path), never by a CLI flag
BAD_INPUTS = [
    ("train", [("number_input", "train_gpus", 0)], "GPUs: got 0; allowed: "),
    ("train", [("button_group", "train_how", "6·N·D"), ("number_input", "train_mfu", 0.0)], "MFU: got 0; allowed: "),
    ("train", [("number_input", "payback_users", 0)], "Paying users: got 0; allowed: "),
    ("serve", [("number_input", "serve_tps", 0.0)], "Output tokens/s: got 0; allowed: "),
    ("serve", [("button_group", "serve_how", "Model the throughput"), ("number_input", "serve_m_in", 0)],
     "Input tokens per request: got 0; allowed: "),
    ("serve", [("button_group", "serve_how", "Model the throughput"), ("toggle", "serve_m_pools", True),
               ("toggle", "serve_p_batch_max", False), ("number_input", "serve_p_batch", 0)],
     "Decode batch per instance: got 0; allowed: "),
    ("breakeven", [("number_input", "be_api", 2e6)], "API price p, USD per million tokens: got 2000000; allowed: "),
    ("breakeven", [("selectbox", "hz_trend", "my factor"), ("number_input", "hz_factor", 0.0)],
     "API price factor per year: got 0; allowed: "),
    ("size", [("number_input", "size_ref_params", 0.0)], "Reference parameters: got 0; allowed: "),
    ("capacity", [("number_input", "cap_on_demand", 0.0)], "On-demand, USD/GPU-hour: got 0; allowed: "),
    ("capacity", [("toggle", "cap_spot_toggle", True), ("number_input", "cap_spot", 0.0)],
     "Spot, USD/GPU-hour: got 0; allowed: "),
    ("route", [("slider", "route_bar", 0.9)], "Quality bar: got 0.9; allowed: "),
    ("plan", [("text_area", "plan_yaml", "name: x\n")], ""),
    ("usage", [("text_input", "usage_to", "no-such-model")], "to model: got 'no-such-model'; allowed: "),
]


@pytest.mark.parametrize("name, changes, start", BAD_INPUTS, ids=[f"{c[0]}-{c[1][-1][1]}" for c in BAD_INPUTS])
def test_every_page_names_its_widget_in_errors(name, changes, start):
    at = page(name)
    for kind, key, value in changes:
        getattr(at, kind)(key=key).set_value(value)
        if kind in ("button_group", "selectbox", "toggle"):  # the widgets behind it appear on this run
            at.run()
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(start), errors
    assert "--" not in errors[0]  # an app user never typed a flag


def test_label_tables_name_the_requests_fields():
    """Every labelled field is a field of the request its page builds (or the library field it feeds), and every
    field a page's request takes from a widget has a label, so no message falls back to a bare name by mistake."""
    from billshape import chains
    from billshape.app import labels

    fed = {"CapacityRequest": {"interruptions_per_hour"}}  # library argument names behind a request field
    for name, table in labels.BY_REQUEST.items():
        fields = set(getattr(chains, name).model_fields)
        assert set(table) - fields - fed.get(name, set()) == set(), name
        assert not set(table) & set(labels.COMMON) - {"cache_hit_rate", "precision"}, name
    no_widget = {"TrainRequest": {"run", "hours", "flops", "generation"}, "ServeRequest": {"mode", "measured"},
                 "PaybackRequest": set(), "BreakevenRequest": set(),
                 "SizeRequest": {"precision", "usd_per_gpu_hour", "mfu_training", "mfu_prefill",
                                 "mfu_decode", "decode_share"},
                 "CapacityRequest": set(), "RouteRequest": {"cascade_only"}}
    for name, missing in no_widget.items():
        fields = set(getattr(chains, name).model_fields)
        assert fields - set(labels.table(name)) == missing, name


def test_app_message_rules():
    from billshape.app.labels import COMMON, app_label, app_message, app_text, table
    from billshape.errors import BillshapeInputError

    words = table("ServeRequest")
    assert app_label("gpus", words) == "GPUs" and app_label("tpot_limit", words) == "TPOT limit"
    assert app_label("provider/tier", COMMON) == "Provider/Tier"
    assert app_label("batch/mode", words) == "Batch/mode"  # no widget for mode: its name
    assert app_label("measured output_throughput", words) == "measured output_throughput"
    assert app_label("models[0].quality", COMMON) == "models[0].quality"  # a path inside an upload stays
    assert app_label("serving.routes[1].self_hosted.gpus", COMMON) == "serving.routes[1].self_hosted.gpus"
    assert app_text("only with `model`; not `mode`", words) == 'only with "Model"; not `mode`'
    err = BillshapeInputError("tp", 3, "divides `gpus`", "see `ep`")
    assert app_message(err, words) == ('Tensor-parallel GPUs per replica: got 3; allowed: divides "GPUs" '
                                       '(see "Expert-parallel GPUs per replica")')
    assert app_message(err, None) == err.message  # the Plan page: YAML paths as they are
    assert table("ServeRequest")["cache_hit_rate"] == "Prompt-cache hit rate" != COMMON["cache_hit_rate"]


def test_no_app_error_names_a_cli_flag():
    """Every field the CLI has a flag for, and every request field, in every page's table: never a flag."""
    from billshape import chains
    from billshape.app.labels import BY_REQUEST, app_message, table
    from billshape.errors import BillshapeInputError
    from billshape.cli._flags import CLI_FLAGS

    fields = set(CLI_FLAGS) | {f for name in BY_REQUEST for f in getattr(chains, name).model_fields}
    for name in [None, *BY_REQUEST]:
        for field in sorted(fields):
            msg = app_message(BillshapeInputError(field, 0, f"> 0 (with `{field}`)", "or `gpus`"), table(name))
            assert "--" not in msg, msg


def test_views_run_chains_not_the_library_verbs():
    """The pages build a request and run its chain: none calls a verb's library function itself, and only the
    serve chain picks the serving estimate (``chains.serving.mode``)."""
    views = Path(__file__).resolve().parents[1] / "src" / "billshape" / "app" / "views"
    verbs = ("training_bill", "serving_cost", "serving.serve(", "serving.capacity(", "serve_measured", "break_even(",
             "build_vs_buy_horizon", "size_model", "capacity_plan", "decide import route", "payback(", "mode(")
    for name in ("train", "serve", "breakeven", "size", "capacity", "route"):
        text = (views / f"{name}.py").read_text()
        assert [v for v in verbs if v in text] == [], name
        assert "_ui.run(" in text and "_ui.attempt(training" not in text


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


def test_usage_page_formats_are_the_librarys():
    """The Usage page offers every format the ingest reads (less ``anthropic-cost``: money lines kept for
    ``usage reconcile``, not ledger rows), plus automatic detection."""
    from billshape.app.views import usage as page
    from billshape.usage.api import FORMATS

    assert page.FORMATS[0] == "auto"
    assert set(page.FORMATS[1:]) == set(FORMATS) - {"anthropic-cost"}


def test_usage_watch_forecast_and_budget_are_the_library_figures(usage_ref):
    # the Watch section: `usage forecast` (1,000 paths) and `usage check --budget-usd` on the sample logs
    from billshape.app.views.usage import usd_exact
    from billshape.usage import check, forecast

    db, _, _ = usage_ref
    fc = forecast.forecast(db, samples=1000)
    at = page("usage")
    assert_clean(at)
    m = metrics(at)
    assert m["Month-end, P50"] == usd_exact(fc.total["p50"]) and m["Spend to date"] == usd_exact(fc.total["actual_to_date_usd"])
    at.number_input(key="usage_budget").set_value(0.5).run()  # below the spend to date: a breach
    c = check.check(db, budget_usd=0.5)
    assert not c.ok and any(c.breaches[0]["since"] in e.value for e in at.error)


def test_train_usd_year_states_the_bill_in_constant_dollars():
    from billshape import chains

    at = page("train")
    at.number_input(key="train_usd_year").set_value(2024).run()
    assert_clean(at)
    bill = chains.run(chains.TrainRequest(gpu="a100", gpus=280, days=14, price=2.5, usd_year=2024))
    c = bill.constant_dollars.conversions[0]
    text = " ".join(md.value for md in at.markdown)
    assert f"In **2024** dollars (CPI-U): {c.figure}" in text and f"**${c.constant_usd:,.0f}**" in text
    at.number_input(key="train_usd_year").set_value(1900).run()  # before the shipped index: one message, no trace
    assert not at.exception and at.error and "Dollars of year" in at.error[0].value
