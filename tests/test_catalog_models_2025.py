"""The 2025-26 models and GPUs of issue 12 item 5: each architecture reproduces its published parameter counts
from its config.json, and each GPU row carries dense (not sparse) datasheet peaks."""

import csv
import math
from importlib import resources

import pytest

from billshape import catalog, serving

# name -> (published total, published active, what the published active count leaves out)
# The model cards count active parameters in three ways; parameter_counts always includes the input embedding and
# the output head, so each comparison removes what the card leaves out (never a fudge factor):
#   "none":  embeddings and output head both counted (Meta, Qwen, Moonshot, DeepSeek)
#   "input": the output head counted, the input embedding not (OpenAI's gpt-oss card, Table 1)
#   "both":  neither counted (Zhipu's GLM-4.5 report: "32B activated" is non-embedding)
PUBLISHED = {
    "llama-4-scout": (109e9, 17e9, "none"),
    "llama-4-maverick": (400e9, 17e9, "none"),
    "gpt-oss-120b": (116.83e9, 5.13e9, "input"),
    "gpt-oss-20b": (20.91e9, 3.61e9, "input"),
    "qwen3-8b": (8.2e9, 8.2e9, "none"),
    "qwen3-14b": (14.8e9, 14.8e9, "none"),
    "qwen3-32b": (32.8e9, 32.8e9, "none"),
    "glm-4.5": (355e9, 32e9, "both"),
    "glm-4.5-air": (106e9, 12e9, "both"),
    "kimi-k2": (1.04e12, 32.6e9, "none"),
    "deepseek-v3.2": (671e9, 37e9, "none"),
}
#: published counts are rounded to 2-3 significant figures (109B, 17B, 1.04T) and some include parts the text
#: config does not describe (Llama 4's vision encoder, GLM's MTP layer): 2 % covers both, as for the older rows
TOLERANCE = 0.02

# Qwen3 model cards also publish the non-embedding count: a second, independent check of the dense formula
NON_EMBEDDING = {"qwen3-8b": 6.95e9, "qwen3-14b": 13.2e9, "qwen3-32b": 31.2e9}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_catalogued_with_source_and_published_counts(name):
    a = serving.architecture(name)
    total, active, _ = PUBLISHED[name]
    assert a.source and a.as_of >= "2025-01-01"
    assert "config.json" in a.source
    assert a.published_params_total == total and a.published_params_active == active


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_reproduce_published(name):
    a = serving.architecture(name)
    total, active, convention = PUBLISHED[name]
    c = serving.parameter_counts(a)
    one_matrix = a.vocab_size * a.hidden_size
    left_out = {"none": 0.0, "input": one_matrix, "both": c["embedding"]}[convention]
    assert c["total"] == pytest.approx(total, rel=TOLERANCE)
    assert c["active"] - left_out == pytest.approx(active, rel=TOLERANCE)


def test_active_count_conventions_matter():
    # without the convention the gpt-oss and GLM actives would be 11-16 % high: the convention is not a no-op
    for name in ("gpt-oss-20b", "gpt-oss-120b", "glm-4.5-air"):
        a = serving.architecture(name)
        assert a.params_active / a.published_params_active - 1 > 0.1


@pytest.mark.parametrize("name", sorted(NON_EMBEDDING))
def test_qwen3_dense_non_embedding_counts(name):
    a = serving.architecture(name)
    c = serving.parameter_counts(a)
    assert c["total"] - c["embedding"] == pytest.approx(NON_EMBEDDING[name], rel=0.01)


def test_config_shapes_that_the_counts_rest_on():
    # a few config.json facts that a wrong row would break even if the totals were tuned
    assert serving.architecture("kimi-k2").experts_routed == 384
    assert serving.architecture("deepseek-v3.2").kv_bytes_per_token(1) == 61 * (512 + 64)  # MLA latent + rope key
    mav, scout = serving.architecture("llama-4-maverick"), serving.architecture("llama-4-scout")
    assert mav.moe_layers == 24 and mav.dense_layers == 24 and scout.moe_layers == 48
    assert serving.architecture("gpt-oss-120b").kv_bytes_per_token(2) == 2 * 36 * 8 * 64 * 2
    assert serving.architecture("qwen3-32b").heads * serving.architecture("qwen3-32b").head_dim == 8192


@pytest.mark.parametrize("name", ["llama-4-scout", "llama-4-maverick", "gpt-oss-20b", "gpt-oss-120b", "deepseek-v3.2"])
def test_inexpressible_attention_is_said_in_the_note(name):
    # sliding-window / chunked / sparse attention has no column yet: the row says what it approximates
    note = serving.architecture(name).note.lower()
    assert "not expressible" in note or "nearest expressible" in note


def test_aliases():
    assert serving.architecture("Llama4-Scout").name == "llama-4-scout"
    assert serving.architecture("openai/gpt-oss-120b").name == "gpt-oss-120b"
    assert serving.architecture("deepseek-v3.2-exp").name == "deepseek-v3.2"


# ---- GPUs ----------------------------------------------------------------------------------------------------

NEW_GPUS = ["gb200", "b300", "mi325x", "mi355x", "rtx-pro-6000"]


def _rows():
    text = resources.files("billshape.data").joinpath("accelerators.csv").read_text(encoding="utf-8")
    return {r["name"]: r for r in csv.DictReader(text.splitlines())}


@pytest.mark.parametrize("name", NEW_GPUS)
def test_new_gpus_catalogued(name):
    acc = catalog.gpu(name)
    assert acc.source and acc.as_of >= "2024-01-01" and "datasheet" in acc.source.lower()
    assert acc.memory_gb and acc.memory_bytes_per_second and acc.tdp_watts
    assert acc.peak_flops_per_second("bf16") > 1e14
    # every catalogued precision halves as it widens (dense tensor-core ratios), FP8 = INT8 where both exist
    assert acc.peak_flops_per_second("fp8") == pytest.approx(2 * acc.peak_flops_per_second("bf16"), rel=0.01)
    if acc.fp4_dense_flops_per_second is not None:
        assert acc.peak_flops_per_second("fp4") >= 2 * acc.peak_flops_per_second("fp8") * 0.99


@pytest.mark.parametrize("name,sparse_total,gpus", [
    ("gb200", {"bf16": 360e15, "fp8": 720e15, "fp4": 1440e15, "int8": 720e15}, 72),   # GB200 NVL72 datasheet
    ("b300", {"bf16": 36e15, "fp8": 72e15, "int8": 2e15}, 8),                        # HGX B300 datasheet
])
def test_nvidia_dense_is_half_the_sparse_system_totals(name, sparse_total, gpus):
    acc = catalog.gpu(name)
    for precision, total in sparse_total.items():
        assert acc.peak_flops_per_second(precision) == pytest.approx(total / gpus / 2, rel=1e-6), precision


def test_b300_dense_fp4_as_published_and_int8_cut():
    b300, b200 = catalog.gpu("b300"), catalog.gpu("b200")
    assert b300.peak_flops_per_second("fp4") == pytest.approx(108e15 / 8)  # the datasheet's own dense FP4
    assert b300.peak_flops_per_second("int8") < b200.peak_flops_per_second("int8") / 10
    assert b300.memory_gb == 288 and b300.memory_gb > b200.memory_gb


def test_amd_rows():
    assert catalog.gpu("mi325x").memory_gb == 256 and catalog.gpu("mi325x").fp4_dense_flops_per_second is None
    # MI325X keeps MI300X's CDNA 3 compute
    assert catalog.gpu("mi325x").peak_flops_per_second("bf16") == catalog.gpu("mi300x").peak_flops_per_second("bf16")
    mi355 = catalog.gpu("mi355x")
    assert mi355.peak_flops_per_second("fp4") == pytest.approx(4 * mi355.peak_flops_per_second("bf16"), rel=1e-4)


def test_rtx_pro_6000_has_no_nvlink():
    acc = catalog.gpu("rtx-pro-6000-server")
    assert acc.interconnect_bytes_per_second is None and acc.memory_gb == 96
    # tensor parallelism over PCIe still works (the serving model falls back to the PCIe row)
    est = serving.serve(model="qwen3-32b", gpu="rtx-pro-6000", gpus=2, precision="fp8", input_tokens=1000,
                        output_tokens=500)
    assert math.isfinite(est.output_tokens_per_second) and est.output_tokens_per_second > 0


@pytest.mark.parametrize("name", NEW_GPUS)
def test_no_purchase_price_without_a_source(name):
    row = _rows()[name]
    assert row["purchase_usd"] == "" and row["purchase_source"].startswith("No published")


@pytest.mark.parametrize("model,gpu,gpus,precision", [
    ("llama-4-maverick", "h200", 8, "fp8"), ("gpt-oss-120b", "b300", 1, "fp4"), ("glm-4.5-air", "mi355x", 2, "fp8"),
    ("kimi-k2", "gb200", 8, "fp8"), ("deepseek-v3.2", "h200", 8, "fp8"), ("qwen3-8b", "mi325x", 1, "bf16"),
])
def test_new_models_serve_on_new_gpus(model, gpu, gpus, precision):
    est = serving.serve(model=model, gpu=gpu, gpus=gpus, precision=precision, input_tokens=2000, output_tokens=500)
    assert est.output_tokens_per_second > 0 and est.ttft_seconds > 0
    assert est.weight_bytes < gpus * catalog.gpu(gpu).memory_bytes
