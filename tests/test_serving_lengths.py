"""serving_lengths: request-length distributions and bursts of requests at t=0 (issue 12 item 4)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import catalog, serving
from billshape.errors import BillshapeInputError
from billshape.serving_catalog import _eff, arch_class, engine_profile, gpu_generation
from billshape.serving_lengths import batch_profile, burst, length_distribution, length_rows
from billshape.serving_roofline import cases, hardware_inputs, predict_case, roofline


def test_sharegpt_distribution_keeps_the_catalog_means_and_the_benchmark_filter():
    row = length_rows()["sharegpt"]
    assert row.source and row.as_of
    d = length_distribution("sharegpt")
    assert d.input_tokens.size == 1000
    assert d.input_tokens.mean() == pytest.approx(row.input_mean, rel=0.01)
    assert d.output_tokens.mean() == pytest.approx(row.output_mean, rel=0.01)
    assert d.input_tokens.max() <= row.input_max and d.input_tokens.min() >= row.input_min
    assert (d.input_tokens + d.output_tokens).max() <= row.total_max + 1e-9
    # heavy tail: the median output well under the mean, the longest several times the mean
    assert np.median(d.output_tokens) < 0.75 * d.output_tokens.mean() < d.output_tokens.max() / 4
    assert d.assumption().source == f"{row.source}; {row.note}"


def test_given_means_rescale_the_distribution():
    d = length_distribution("sharegpt", input_tokens=2000, output_tokens=300, requests=500)
    assert d.input_tokens.size == 500
    assert d.input_tokens.mean() == pytest.approx(2000) and d.output_tokens.mean() == pytest.approx(300)


def test_csv_of_pairs_and_its_errors(tmp_path):
    f = tmp_path / "lens.csv"
    f.write_text("input,output\n100,10\n300,30\n")
    d = length_distribution(str(f), requests=5)
    assert d.input_tokens.tolist() == [100, 300, 100, 300, 100] and d.output_tokens.tolist() == [10, 30, 10, 30, 10]
    bad = tmp_path / "bad.csv"
    bad.write_text("100,x\n")
    with pytest.raises(BillshapeInputError, match="^lengths"):
        length_distribution(str(bad))
    with pytest.raises(BillshapeInputError, match="^lengths"):
        length_distribution("no-such-distribution")


def _simulate(o, c):
    # brute force: step by step, FCFS admission into c slots
    queue, running, out = list(o), [], []
    while queue or running:
        while queue and len(running) < c:
            running.append(queue.pop(0))
        out.append(len(running))
        running = [r - 1 for r in running if r > 1]
    return out


@settings(max_examples=60, deadline=None)
@given(o=st.lists(st.integers(1, 40), min_size=1, max_size=30), c=st.integers(1, 12))
def test_batch_profile_is_fcfs_continuous_batching(o, c):
    assert batch_profile(np.array(o, dtype=float), c).tolist() == _simulate(o, c)


def _common(case):
    arch = serving.architecture(case.model)
    prof = engine_profile(case.engine_key, arch_class(arch), gpu_generation(case.gpu))
    hw = hardware_inputs(arch, catalog.gpu(case.gpu), case.precision, case.kv_precision)
    return prof, dict(**hw, tensor_parallel=case.tensor_parallel, kv_memory_fraction=_eff("kv_memory_fraction").value,
                      max_batch_cap=prof.params["max_batch_cap"], expert_parallel=case.expert_parallel,
                      expert_load_cv=_eff("expert_load_cv").value, **prof.efficiency)


def test_a_fixed_length_burst_is_the_equal_waves_model():
    case = next(c for c in cases("serving_engines_calibration.csv") if c.id == "X07")
    prof, common = _common(case)
    n = 4 * 50
    r = burst(roofline, common, np.full(n, 2000.0), np.full(n, 200.0), 50.0)
    wave = roofline(**common, input_tokens=2000.0, output_tokens=200.0, batch=50.0, mode="static")
    assert r["batch"] == 50
    assert r["makespan_seconds"] == pytest.approx(4 * (float(wave["prefill_seconds"]) + 200 * float(wave["step_seconds"])))


def test_a_heavy_tail_burst_is_slower_than_its_mean_lengths():
    case = next(c for c in cases("serving_engines_calibration.csv") if c.id == "X04")
    prof, common = _common(case)
    d = length_distribution("sharegpt", requests=984)
    tail = burst(roofline, common, d.input_tokens, d.output_tokens, 1024.0)
    flat = burst(roofline, common, np.full(984, d.input_tokens.mean()), np.full(984, d.output_tokens.mean()), 1024.0)
    assert tail["output_tokens_per_second"] < 0.5 * flat["output_tokens_per_second"]


def test_sharegpt_bursts_within_35_percent_not_fitted_on():
    burst_cases = [c for c in cases("serving_engines_calibration.csv") if c.use == "burst-lengths"]
    assert len(burst_cases) == 6 and all(c.lengths == "sharegpt" for c in burst_cases)
    for c in burst_cases:
        err = predict_case(c)["predicted_per_gpu"] / c.measured_output_tokens_per_second_per_gpu - 1
        assert abs(err) < 0.35, (c.id, err)


# ---- chunked prefill mixed into decode steps (vLLM V1, TensorRT-LLM in-flight batching; SGLang: prefill apart) ----

from billshape.serving_catalog import burst_scheduler  # noqa: E402
from billshape.serving_lengths import chunked_prefill_schedule, mixed_burst  # noqa: E402


@settings(max_examples=80, deadline=None)
@given(io=st.lists(st.tuples(st.integers(1, 300), st.integers(1, 40)), min_size=1, max_size=25),
       c=st.integers(1, 8), k=st.integers(1, 400), mixed=st.booleans())
def test_chunked_schedule_conserves_tokens_and_respects_the_budget(io, c, k, mixed):
    i = np.array([x[0] for x in io], dtype=float)
    o = np.array([x[1] for x in io], dtype=float)
    d, p, steps, wave = chunked_prefill_schedule(i, o, c, k, mixed)
    assert np.all(steps >= 1) and 0 <= wave < d.size
    assert float(np.sum(p * steps)) == i.sum()  # every prompt token prefilled once
    assert float(np.sum(d * steps)) == float(np.sum(o - 1))  # the first token comes with the last prefill chunk
    assert np.all(d <= c) and np.all(p <= (max(k, c) if mixed else k))
    if mixed:
        assert np.all(d + p <= max(k, c))
    else:
        assert np.all((p == 0) | (d == 0))  # prefill-only steps between decode steps


def test_equal_lengths_with_a_large_budget_are_waves_of_one_prefill_step_and_o_minus_1_decodes():
    case = next(c for c in cases("serving_engines_calibration.csv") if c.id == "X07")
    prof, common = _common(case)
    r = burst(roofline, common, np.full(200, 2000.0), np.full(200, 200.0), 50.0, 1e6, True)
    pre = roofline(**common, input_tokens=2000.0, output_tokens=200.0, batch=1.0, mode="static",
                   prefill_tokens_per_step=50 * 2000.0, prefill_input_tokens=2000.0)
    dec = roofline(**common, input_tokens=2000.0, output_tokens=200.0, batch=50.0, mode="static")
    assert r["makespan_seconds"] == pytest.approx(4 * (float(pre["step_seconds"]) + 199 * float(dec["step_seconds"])),
                                                  rel=1e-12)


def test_mixing_chunks_into_decode_steps_is_faster_than_prefill_apart():
    # X07 (4K prompts): chunks that ride in decode steps read the weights once for both
    case = next(c for c in cases("serving_engines_calibration.csv") if c.id == "X07")
    prof, common = _common(case)
    budget, mixed = burst_scheduler(prof)
    assert (budget, mixed) == (8192.0, True)
    i, o = np.full(500, 3996.0), np.full(500, 184.0)
    mix = mixed_burst(roofline, common, i, o, 1024.0, budget, True)
    apart = mixed_burst(roofline, common, i, o, 1024.0, budget, False)
    full = burst(roofline, common, i, o, 1024.0)  # prefill counted in full, no overlap
    assert mix["output_tokens_per_second"] > apart["output_tokens_per_second"]
    assert mix["output_tokens_per_second"] > full["output_tokens_per_second"]
    assert 0 < mix["ttft_seconds"] < mix["makespan_seconds"]
    # SGLang's profile runs prefill apart (enable_mixed_chunk off by default); vLLM on A100 has a 2,048 budget
    assert burst_scheduler(engine_profile("sglang", "moe", "hopper")) == (8192.0, False)
    assert burst_scheduler(engine_profile("vllm", "moe", "ampere")) == (2048.0, True)
