import pytest

from billshape import serving
from billshape.errors import BillshapeInputError

REQUIRED = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
            "llama-3.3-70b", "mixtral-8x7b", "mixtral-8x22b", "qwen2.5-72b", "deepseek-v3", "qwen3-235b-a22b"]


@pytest.mark.parametrize("name", REQUIRED)
def test_required_architectures_catalogued_with_source(name):
    a = serving.architecture(name)
    assert a.source and a.as_of
    assert a.published_params_total and a.published_params_active


# models whose cards leave the embeddings out of the active count: tests/test_catalog_models_2025.py checks them
# at the same 2 % with each card's convention
ACTIVE_WITHOUT_EMBEDDINGS = {"gpt-oss-120b", "gpt-oss-20b", "glm-4.5", "glm-4.5-air"}


@pytest.mark.parametrize("arch", serving.architectures(), ids=lambda a: a.name)
def test_parameter_counts_match_published_within_2pct(arch):
    # published totals/actives: the models' cards and papers (source column of data/architectures.csv)
    if arch.name in ACTIVE_WITHOUT_EMBEDDINGS:
        assert arch.params_total == pytest.approx(arch.published_params_total, rel=0.02)
        return
    assert arch.params_total == pytest.approx(arch.published_params_total, rel=0.02)
    assert arch.params_active == pytest.approx(arch.published_params_active, rel=0.02)


def test_llama2_70b_swiglu_has_three_matrices():
    # llm-analysis counts two MLP matrices and gets ~20 % fewer weights; SwiGLU has three.
    a = serving.architecture("llama-2-70b")
    two_matrix = a.params_total - a.layers * a.hidden_size * a.ffn_size
    assert two_matrix / a.params_total == pytest.approx(0.73, abs=0.03)
    assert a.params_total == pytest.approx(68.98e9, rel=0.005)


def test_kv_bytes_per_attention_kind():
    assert serving.architecture("llama-2-7b").kv_bytes_per_token(2) == 2 * 32 * 32 * 128 * 2  # MHA: 512 KiB
    assert serving.architecture("llama-2-70b").kv_bytes_per_token(1) == 2 * 80 * 8 * 128  # GQA fp8
    # MLA caches (512 + 64) per layer: DeepSeek-V2 paper, section 2.1
    assert serving.architecture("deepseek-v3").kv_bytes_per_token(2) == 61 * 576 * 2


def test_moe_active_below_total():
    for a in serving.architectures():
        assert (a.params_active < a.params_total) == a.is_moe


def test_unknown_model_suggests_closest():
    with pytest.raises(BillshapeInputError, match="did you mean.*llama-3.1-70b"):
        serving.architecture("llama3.1-70")


def test_alias_case_insensitive():
    assert serving.architecture("Mixtral").name == "mixtral-8x7b"
