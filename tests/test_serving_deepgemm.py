"""DeepGEMM's published grouped-GEMM figures for DeepSeek-V3's experts (H800) and the sglang x mla ablation
(docs/serving.md, "DeepGEMM's grouped GEMMs (sglang x mla): ablation, not adopted")."""

import importlib.util
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from billshape import serving_catalog

ROOT = Path(__file__).resolve().parents[1]

# deepseek-ai/DeepGEMM README.md@327ec92f6977e7fee022cb76a8f273b75483c3d8, "Grouped GEMMs for MoE models":
# (groups, m per group, TFLOPS of the 4096 x 7168 GEMM, TFLOPS of the 7168 x 2048 GEMM), typed from the tables
CONTIGUOUS = [(4, 8192, 1346, 1214), (8, 4096, 1346, 1214)]
MASKED_4x256 = (4, 256, 932, 815)
#: published GB/s of every row, to check the reading of tests/test_core.py's formula
GBS = {(4, 8192, 4096): 434, (4, 8192, 7168): 752, (8, 4096, 4096): 516, (8, 4096, 7168): 826,
       (1, 1024, 4096): 924, (1, 1024, 7168): 968, (2, 512, 4096): 1288, (2, 512, 7168): 1405,
       (4, 256, 4096): 2064, (4, 256, 7168): 2047}
#: NVIDIA H100/H800 SXM datasheet: FP8 3,957.8 TFLOPS with sparsity (dense = half; printed "3,958"), HBM3 3.35 TB/s
FP8_PEAK = Decimal("3957.8e12") / 2
HBM = Decimal("3.35e12")
SHAPES = ((4096, 7168), (7168, 2048))  # (n, k): fused gate/up, down


def _load(name):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def fit():
    return _load("fit_serving_efficiency")


def _layer(groups, m, tflops_up, tflops_down):
    """(FLOPs, seconds, FP8 weight bytes) of one MoE layer: the two GEMMs' times add."""
    flops = secs = wbytes = Decimal(0)
    for (n, k), tf in zip(SHAPES, (tflops_up, tflops_down)):
        f = 2 * Decimal(groups * m * n * k)
        flops, secs, wbytes = flops + f, secs + f / (Decimal(tf) * Decimal("1e12")), wbytes + groups * n * k
    return flops, secs, wbytes


def test_published_gbs_is_the_test_scripts_formula(fit):
    # tests/test_core.py: GB/s = G (m k + k n + 2 m n) / t with t = 2 G m n k / TFLOPS: the table is read right
    for g, m, n, k, tflops, gbs in (*fit.DEEPGEMM_CONTIGUOUS, *fit.DEEPGEMM_MASKED):
        t = Decimal(2 * g * m * n * k) / (Decimal(tflops) * Decimal("1e12"))
        assert float(Decimal(g * (m * k + k * n + 2 * m * n)) / t / Decimal("1e9")) == pytest.approx(gbs, rel=0.01)
        assert GBS[(g, m, n)] == gbs


def test_derivation_equals_the_cited_numbers(fit):
    prof = serving_catalog.engine_profile("sglang", "mla", "hopper")
    eta_c = Decimal(str(prof.params["compute_efficiency"]))
    eta_bw = Decimal(str(prof.params["hbm_bandwidth_efficiency"]))
    fracs = []
    for row in CONTIGUOUS:
        flops, secs, _ = _layer(*row)
        fracs.append(flops / secs / FP8_PEAK)
    compute = sum(fracs) / len(fracs)
    _, secs, wbytes = _layer(*MASKED_4x256)
    read = wbytes / secs / HBM
    assert float(compute) == pytest.approx(0.6564, abs=1e-4) and float(read) == pytest.approx(0.5186, abs=1e-4)
    got = fit.deepgemm_profile_values(float(eta_c), float(eta_bw))
    # the values the ablation swaps into the sglang x mla rows (benchmarks/deepgemm_ablation.py, variant B)
    assert got["moe_gemm_efficiency"] == pytest.approx(float(compute / eta_c), abs=5e-5)
    assert got["moe_weight_read_efficiency"] == pytest.approx(float(read / eta_bw), abs=5e-4)
    k = fit.deepgemm_expert_efficiency()
    assert k["compute_peak_fraction"] == pytest.approx(float(compute), rel=1e-9)
    assert k["read_hbm_fraction"] == pytest.approx(float(read), rel=1e-9)
    # the masked rows fall with m per group (the shape dependence the one-number derivation leaves out)
    masked = sorted(k["masked"], key=lambda d: d["m_per_group"])
    assert [d["peak_fraction"] for d in masked] == sorted(d["peak_fraction"] for d in masked)
    assert masked[-1]["peak_fraction"] < k["compute_peak_fraction"]


def test_not_adopted_the_shipped_rows_keep_the_tied_fit(fit):
    assert fit.DEEPGEMM_PROFILES == ()
    vllm_mla = serving_catalog.engine_profile("vllm", "mla", "hopper").params
    for gen in ("hopper", "ampere"):
        p = serving_catalog.engine_profile("sglang", "mla", gen)
        assert p.params["moe_gemm_efficiency"] == vllm_mla["moe_gemm_efficiency"] < 1.0
        assert "moe_weight_read_efficiency" not in p.params
        assert "DeepGEMM" not in p.rows["moe_gemm_efficiency"].source


@pytest.fixture(scope="module")
def ablation():
    mod = _load("deepgemm_ablation")
    return mod, mod.results()


def test_ablation_supports_the_decision_and_docs_are_current(ablation):
    mod, res = ablation
    shipped, dg = (res[k] for k in list(res)[:2])
    # the reason it is not adopted: LM2 leaves its 25 % bound and the peak MAPE does not improve
    assert abs(dg["cases"]["LM2"]) > 25.0 >= abs(shipped["cases"]["LM2"])
    assert dg["summary"]["peak_mape"] >= shipped["summary"]["peak_mape"]
    assert abs(dg["cases"]["DS2"]) < abs(shipped["cases"]["DS2"])  # what it would have fixed
    assert dg["cases"]["D01"] == shipped["cases"]["D01"]  # the control (TensorRT-LLM profile) does not move
    text = (ROOT / "docs" / "serving.md").read_text(encoding="utf-8")
    assert mod.table(res) in text


def test_ablation_kernel_terms_do_not_pass_together(ablation):
    _, res = ablation
    by = {k.split(":")[0]: v for k, v in res.items()}
    # (a) + (b) with DeepGEMM (J, K): DS2 leaves 25 % again, so nothing is adopted; (a) is what moves DS2 back
    for lab in ("J", "K"):
        assert abs(by[lab]["cases"]["DS2"]) > 25.0 and abs(by[lab]["cases"]["LM1"]) < abs(by["B"]["cases"]["LM1"])
    assert abs(by["F"]["cases"]["DS2"]) > abs(by["B"]["cases"]["DS2"])
    # with g flat, (b) leaves the prefill pools alone (no weight term in prefill) and moves LM2 by the re-reads only
    assert by["G"]["cases"]["LM1"] == by["B"]["cases"]["LM1"] and by["G"]["cases"]["DS2"] == by["B"]["cases"]["DS2"]
    assert by["G"]["cases"]["LM2"] < by["B"]["cases"]["LM2"]
    assert all(r["cases"]["D01"] == by["A"]["cases"]["D01"] for r in res.values())  # the control
