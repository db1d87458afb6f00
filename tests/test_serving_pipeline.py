"""Pipeline parallelism and speculative decoding (issue 12 item 3): the equations, their invariants, serve's
validation, and DeepSeek's published decode figure (14.8k output tokens/s per H800 node)."""

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billshape import catalog, inference, serving
from billshape.catalog import read_rows
from billshape.errors import BillshapeInputError
from billshape.serving_catalog import architecture, efficiencies, engine_profile, arch_class, gpu_generation
from billshape.serving_pipeline import deployment_roofline, speculative_rows
from billshape.serving_roofline import hardware_inputs, roofline

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_tokens_per_step_matches_leviathan():
    assert float(inference.speculative_tokens_per_step(0.85, 1)) == pytest.approx(1.85)
    # 1 + A + A^2 + A^3 for K = 3
    assert float(inference.speculative_tokens_per_step(0.6, 3)) == pytest.approx(1 + 0.6 + 0.36 + 0.216)
    assert float(inference.speculative_tokens_per_step(0.0, 5)) == 1.0
    assert float(inference.speculative_tokens_per_step(1.0, 4)) == 5.0


@FAST
@given(a=st.floats(0, 0.999), b=st.floats(0, 0.999), k=st.integers(1, 16))
def test_tokens_per_step_within_1_and_k_plus_1_and_increasing_in_acceptance(a, b, k):
    lo, hi = sorted((a, b))
    e_lo, e_hi = (float(inference.speculative_tokens_per_step(x, k)) for x in (lo, hi))
    assert 1.0 <= e_lo <= e_hi <= k + 1 + 1e-12
    assert float(inference.speculative_tokens_per_step(hi, k + 1)) >= e_hi


def test_pp2_tp4_holds_the_weights_of_tp8_and_has_a_higher_tpot():
    kw = dict(model="llama-3.1-70b", gpu="h100", gpus=8, precision="fp8", input_tokens=1000, output_tokens=1000,
              batch=16, mode="max-load")
    tp8 = serving.serve(**kw, tp=8)
    pp2 = serving.serve(**kw, tp=4, pp=2)
    assert pp2.weight_bytes / 8 == pytest.approx(tp8.weight_bytes / 8, rel=1e-12)  # weights per GPU
    assert pp2.tensor_parallel == 4 and pp2.pipeline_parallel == 2 and pp2.replicas == 1
    assert pp2.tpot_seconds > tp8.tpot_seconds  # a token crosses two stages that each read half the weights
    # the KV cache per GPU is the same too: the same largest batch
    big = dict(kw, batch="max", mode=None)
    assert serving.serve(**big, tp=4, pp=2).max_batch == serving.serve(**big, tp=8).max_batch
    assert "pipeline_parallel" not in serving.serve(**kw, tp=8).to_dict()  # defaults keep today's keys


def _inputs(model, tp, mode, batch, i, o):
    arch, acc = architecture(model), catalog.gpu("h100")
    prof = engine_profile("trtllm", arch_class(arch), gpu_generation(acc.name))
    return dict(**hardware_inputs(arch, acc, "fp8", "fp8"), tensor_parallel=float(tp), input_tokens=float(i),
                output_tokens=float(o), batch=batch, mode=mode, kv_memory_fraction=efficiencies()["kv_memory_fraction"].value,
                max_batch_cap=2048.0, **prof.efficiency)


@FAST
@given(model=st.sampled_from(["llama-3.1-70b", "llama-3.1-8b", "qwen3-32b"]), tp=st.sampled_from([1, 2, 4]),
       pp=st.integers(2, 8), mode=st.sampled_from(["static", "max-load"]), batch=st.sampled_from([None, 1, 8, 64, 512]),
       i=st.integers(16, 8000), o=st.integers(16, 4000))
def test_pipeline_never_beats_the_tp_roofline_without_its_communication(model, tp, pp, mode, batch, i, o):
    # Stated bound: per GPU, N stages of t GPUs read the weights once per micro-batch (N times a cycle) and do the
    # same FLOPs and KV reads as tensor parallelism over N t GPUs, so PP can gain on TP at most TP's communication
    # time: its throughput never exceeds the TP-only roofline at the same GPU count with the all-reduces removed.
    # (The models here keep every KV head whole at t N <= 8, so both hold the same KV cache per GPU.)
    if tp * pp > 8 or (mode == "static" and batch is None):
        return
    kw = _inputs(model, tp, mode, None if batch is None else float(batch), i, o)
    piped = deployment_roofline(pipeline_parallel=float(pp), **kw)
    flat = roofline(**{**kw, "tensor_parallel": float(tp * pp), "allreduce_latency_seconds": 0.0,
                       "link_bytes_per_second": 1e30})
    if float(piped["max_batch"]) < max(1.0, batch or 1.0):
        return  # does not fit (serve refuses it)
    assert float(piped["output_tokens_per_second"]) <= float(flat["output_tokens_per_second"]) * (1 + 1e-9)
    assert pp == 1 or 0.0 <= float(piped["pipeline_bubble"]) < 1.0


def test_uneven_stages_and_bad_pp_are_one_line_errors():
    e = serving.serve(model="deepseek-v3", gpu="h200", gpus=16, tp=8, pp=2, precision="fp8")  # 61 layers: 31 + 30
    assert e.pipeline_parallel == 2 and any("busiest stage 31 of 61" in str(a.value) for a in e.assumptions)
    for kw, field in ((dict(pp=0), "pp"), (dict(pp=1.5), "pp"), (dict(pp=200), "pp"), (dict(pp=3), "pp"),
                      (dict(pp=2, tp=8), "tp"), (dict(pp=2, dp_attention=True, ep=4, tp=4), "pp")):
        with pytest.raises(BillshapeInputError) as exc:
            serving.serve(model="deepseek-v3", gpu="h200", gpus=8, precision="fp8", **kw)
        assert exc.value.field == field, (kw, exc.value.message)


SPEC_SETUPS = [("llama-3.1-70b", "h100", 8, "eagle", None), ("deepseek-v3", "h200", 8, "mtp", None),
               ("llama-3.1-70b", "h100", 8, "draft", "llama-3.1-8b"), ("qwen3-235b-a22b", "h200", 8, "mtp", None)]


@FAST
@given(setup=st.sampled_from(SPEC_SETUPS), k=st.integers(1, 6), batch=st.sampled_from([None, 1, 16, 256]),
       i=st.integers(16, 8000), o=st.integers(16, 2000), a=st.floats(0.05, 0.95))
def test_speculation_never_helps_at_zero_acceptance_and_grows_with_it(setup, k, batch, i, o, a):
    model, gpu, gpus, method, draft = setup
    kw = dict(model=model, gpu=gpu, gpus=gpus, precision="fp8", input_tokens=i, output_tokens=o,
              speculative=method, draft_tokens=k, draft_model=draft,
              batch="max" if batch is None else batch, mode=None if batch is None else "max-load")
    try:
        zero = serving.serve(**kw, acceptance=0.0)
    except BillshapeInputError as exc:  # a fixed batch whose KV cache does not fit is refused (tested elsewhere)
        assume(exc.field != "batch")
        raise
    assert zero.tokens_per_step == 1.0 and zero.speculative_speedup <= 1.0 + 1e-12
    some, more = (serving.serve(**kw, acceptance=x) for x in (a, min(a + 0.04, 0.99)))
    assert 1.0 <= some.tokens_per_step <= more.tokens_per_step <= k + 1
    assert more.decode_tokens_per_second >= some.decode_tokens_per_second * (1 - 1e-12)


def test_speculative_keys_defaults_and_errors():
    e = serving.serve(model="deepseek-v3", gpu="h200", gpus=8, precision="fp8", speculative="mtp")
    d = e.to_dict()
    row = speculative_rows()["mtp_acceptance"]
    assert (d["speculative"], d["draft_tokens"], d["acceptance"]) == ("mtp", 1, row.value)
    assert d["tokens_per_step"] == pytest.approx(1 + row.value) and d["speculative_speedup"] > 1
    assert any(a.source == row.source for a in e.assumptions)  # where A came from
    for kw, field in ((dict(acceptance=0.5), "acceptance"), (dict(draft_tokens=2), "draft_tokens"),
                      (dict(speculative="eagle"), "draft_tokens"), (dict(speculative="medusa"), "speculative"),
                      (dict(speculative="mtp", acceptance=1.0), "acceptance"),
                      (dict(speculative="mtp", draft_tokens=17), "draft_tokens"),
                      (dict(speculative="draft", draft_tokens=2, acceptance=0.7), "draft_model"),
                      (dict(speculative="draft", draft_tokens=2, acceptance=0.7, draft_model="llama-3.1-405b"), "draft_model"),
                      (dict(speculative="mtp", pp=2, gpus=16), "pp")):
        with pytest.raises(BillshapeInputError) as exc:
            serving.serve(**{**dict(model="deepseek-v3", gpu="h200", gpus=8, precision="fp8"), **kw})
        assert exc.value.field == field, (kw, exc.value.message)


def _deepseek_decode():
    (row,) = read_rows("serving_deployments_decode.csv")
    f = {k: row[k] for k in row}
    kw = dict(model=f["model"], gpu=f["gpu"], gpus=int(f["gpus"]), tp=int(f["gpus"]), ep=int(f["expert_parallel"]),
              dp_attention=bool(int(f["attention_dp"])), redundant_experts=int(f["redundant_experts"]),
              precision=f["precision"], kv_precision=f["kv_precision"], input_tokens=float(f["input_tokens"]),
              output_tokens=float(f["output_tokens"]), cache_hit_rate=float(f["cache_hit_rate"]),
              speculative=f["speculative"], draft_tokens=int(f["draft_tokens"]), mode="static")
    fits = serving.serve(**kw, batch=1).max_batch  # decode nodes: the largest static batch that fits
    return f, kw, serving.serve(**kw, batch=fits)


def test_deepseek_decode_figure_within_25_percent():
    # DeepSeek's decode nodes only decode (prefill is disaggregated): decode_tokens_per_second, the decode steps
    # alone, of 144 H800 (EP144, attention DP144, 32 redundant experts, MTP with the catalog's 85 % acceptance) at
    # the largest batch whose KV cache fits, per node of 8
    f, kw, e = _deepseek_decode()
    per_node = e.decode_tokens_per_second / int(f["nodes"])
    published = float(f["measured_output_tokens_per_second_per_node"])
    assert abs(per_node / published - 1) < 0.25, per_node
    # the published per-user speed is 20-22 tokens/s; the model's batch is the memory limit, larger than DeepSeek
    # ran, so its per-user speed is lower, within a factor 1.6
    assert 20 / 1.6 < 1 / e.tpot_seconds < 22 * 1.6


def test_deepseek_decode_at_the_batch_its_two_figures_imply():
    """The published per-node throughput over the published per-user speed is DeepSeek's decode batch per node
    (14,800 / 21 = 705 sequences); at that batch the model meets both figures (docs/serving.md, D01)."""
    f, kw, _ = _deepseek_decode()
    per_user = float(f["output_tokens_per_second_per_user"])
    published = float(f["measured_output_tokens_per_second_per_node"])
    batch = round(published / per_user * int(f["nodes"]))
    e = serving.serve(**kw, batch=batch)
    per_node = e.decode_tokens_per_second / int(f["nodes"])
    assert abs(per_node / published - 1) < 0.25, per_node
    assert 20 <= e.decode_tokens_per_second / batch <= 22  # the published 20-22 tokens/s per user
    plain = serving.serve(**{k: v for k, v in kw.items() if k not in ("speculative", "draft_tokens")}, batch=batch)
    assert 1.0 < e.decode_tokens_per_second / plain.decode_tokens_per_second < 1.2  # MTP's gain, compute bound


def test_cli_pp_and_speculative_json_screen_and_errors(cli):
    from conftest import assert_one_line_error

    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "16", "--tp", "4", "--pp", "2",
              "--precision", "fp8", "--price", "2.5", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["pipeline_parallel"] == 2 and d["replicas"] == 2 and 0 <= d["pipeline_bubble"] < 1
    res = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "8", "--precision", "fp8",
              "--speculative", "draft", "--draft-model", "llama-3.1-8b", "--draft-tokens", "4", "--acceptance", "0.7",
              "--batch", "8", "--mode", "max-load", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["speculative"] == "draft" and d["draft_model"] == "llama-3.1-8b" and d["draft_tokens"] == 4
    assert d["tokens_per_step"] == pytest.approx((1 - 0.7**5) / 0.3) and d["speculative_speedup"] > 1
    assert all(math.isfinite(x) for x in (d["tokens_per_step"], d["speculative_speedup"]))
    screen = cli("serve", "--model", "deepseek-v3", "--gpu", "h200", "--gpus", "8", "--precision", "fp8",
                 "--speculative", "mtp")
    assert screen.code == 0 and "tokens per step" in screen.out and "speculative" in screen.out
    for args, flag in ((("--pp", "0"), "--pp"), (("--pp", "3"), "--pp"), (("--speculative", "x"), "--speculative"),
                       (("--acceptance", "0.5"), "--acceptance"), (("--speculative", "mtp", "--acceptance", "1.5"),
                                                                   "--acceptance"),
                       (("--speculative", "eagle"), "--draft-tokens"),
                       (("--speculative", "draft", "--draft-tokens", "2", "--acceptance", "0.5"), "--draft-model")):
        bad = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--gpus", "8", "--precision", "fp8", *args)
        assert_one_line_error(bad, flag)
    bad = cli("serve", "--model", "llama-3.1-70b", "--gpu", "h100", "--precision", "fp8", "--requests-per-second",
              "5", "--tpot-limit", "0.05", "--pp", "2")
    assert_one_line_error(bad, "--pp")
