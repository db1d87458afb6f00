"""Scaling laws and inference-aware sizing (Sardana et al. 2024)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billshape import scaling as sc
from billshape.errors import BillshapeInputError
from conftest import assert_one_line_error

SARDANA = sc.constant_set("sardana-2024").as_kwargs()


def test_constant_sets_match_the_papers():
    # Hoffmann et al. 2022 arXiv:2203.15556 eq. (10); Besiroglu et al. 2024 arXiv:2404.10102 Table 1;
    # Sardana et al. 2024 arXiv:2401.00448 (Chinchilla E, A, B with alpha=0.336, beta=0.283).
    assert sc.constant_set("hoffmann-2022").as_kwargs() == dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    assert sc.constant_set("besiroglu-2024").as_kwargs() == dict(E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658)
    assert SARDANA == dict(E=1.69, A=406.4, B=410.7, alpha=0.336, beta=0.283)
    for cs in sc.constant_sets().values():
        assert "arXiv:" in cs.source and cs.as_of


def test_unknown_constants_suggests():
    with pytest.raises(BillshapeInputError, match="sardana-2024"):
        sc.constant_set("sardana")


def test_compute_optimal_reference_13b():
    # shared cases sizing.csv S1: "13B at its compute-optimal token count (0.576T; loss 2.0453)"
    d = sc.compute_optimal_tokens(13e9, **SARDANA)
    assert d == pytest.approx(0.576e12, rel=2e-3)
    assert sc.loss(13e9, d, **SARDANA) == pytest.approx(2.0453, abs=1e-4)
    # at the compute-optimal point, moving compute between N and D does not lower the loss
    c = 6 * 13e9 * d
    n_opt, d_opt = sc.compute_optimal_allocation(c, **SARDANA)
    assert n_opt == pytest.approx(13e9, rel=1e-9) and d_opt == pytest.approx(d, rel=1e-9)


def test_besiroglu_compute_optimal_ratio_about_20():
    # Besiroglu et al. 2024: their fit implies ~20 tokens per parameter, like Chinchilla's Approaches 1-2.
    n, d = sc.compute_optimal_allocation(1e24, **sc.constant_set("besiroglu-2024").as_kwargs())
    assert 15 < d / n < 30


# Sardana et al. 2024 Fig. 1 and cases solved with the same objective (billshape shared cases sizing.csv);
# tolerance 2 %.
CASES = [
    # reference N, reference D (None = compute-optimal), inference tokens, chinchilla (N, D), optimum (N, D), total FLOPs, saving
    ("S1", 13e9, None, 2e12, (13e9, 0.576e12), (6.97e9, 1.248e12), (9.697e22, 8.005e22), 0.174),
    ("S2", 70e9, 1.4e12, 1e12, (40.62e9, 2.230e12), (33.84e9, 2.706e12), (6.246e23, 6.170e23), 0.012),
    ("S5", 7e9, 140e9, 1e12, (5.06e9, 0.188e12), (2.42e9, 0.490e12), (1.583e22, 1.194e22), 0.246),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sardana_figures(case):
    from billshape.decide import size_model

    _, n_ref, d_ref, d_inf, chin, opt, flops, saving = case
    res = size_model(d_inf, reference_params=n_ref, reference_tokens=d_ref, constants="sardana-2024")
    assert res.constants == "sardana-2024"
    assert res.chinchilla_params == pytest.approx(chin[0], rel=0.02)
    assert res.chinchilla_tokens == pytest.approx(chin[1], rel=0.02)
    assert res.params == pytest.approx(opt[0], rel=0.02)
    assert res.tokens == pytest.approx(opt[1], rel=0.02)
    assert res.chinchilla_total_flops == pytest.approx(flops[0], rel=0.02)
    assert res.total_flops == pytest.approx(flops[1], rel=0.02)
    assert res.saving_fraction == pytest.approx(saving, abs=0.02 * max(saving, 0.05))


def test_fig1_saving_in_flops():
    # Sardana et al. Fig. 1: "saves 1.7e22 FLOPs" (9.697e22 -> 8.005e22)
    from billshape.decide import size_model

    res = size_model(2e12, reference_params=13e9)
    assert res.chinchilla_total_flops - res.total_flops == pytest.approx(1.69e22, rel=0.02)


def test_zero_inference_is_chinchilla():
    n, d = sc.inference_aware_optimum(2.0453, 0.0, **SARDANA)
    nc, dc = sc.chinchilla_for_loss(2.0453, **SARDANA)
    assert n == pytest.approx(nc, rel=1e-12) and d == pytest.approx(dc, rel=1e-12)


def test_optimum_is_a_minimum_along_the_iso_loss_curve():
    lt, dinf = 2.0, 5e12
    n, d = sc.inference_aware_optimum(lt, dinf, **SARDANA)
    best = sc.lifetime_flops(n, d, dinf)
    gap = lt - SARDANA["E"]
    for factor in (0.9, 0.99, 1.01, 1.1):
        n2 = n * factor
        d2 = (SARDANA["B"] / (gap - SARDANA["A"] / n2 ** SARDANA["alpha"])) ** (1 / SARDANA["beta"])
        assert sc.lifetime_flops(n2, d2, dinf) > best


def test_vectorised_matches_scalar():
    losses = np.array([1.9, 2.0, 2.2, 2.5])
    dinf = np.array([0.0, 1e11, 1e13, 1e15])
    n, d = sc.inference_aware_optimum(losses, dinf, **SARDANA)
    for i in range(4):
        ni, di = sc.inference_aware_optimum(losses[i], dinf[i], **SARDANA)
        assert n[i] == pytest.approx(ni, rel=1e-12) and d[i] == pytest.approx(di, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.floats(1.70, 4.0), st.floats(0, 1e16), st.sampled_from(["hoffmann-2022", "besiroglu-2024", "sardana-2024"]))
def test_sized_model_meets_the_loss(target_excess, dinf, name):
    k = sc.constant_set(name).as_kwargs()
    target = k["E"] + (target_excess - 1.69)  # always above E
    if target - k["E"] < 1e-3:
        return
    n, d = sc.inference_aware_optimum(target, dinf, **k)
    assert abs(sc.loss(n, d, **k) - target) <= 1e-9
    nc, dc = sc.chinchilla_for_loss(target, **k)
    assert n <= nc * (1 + 1e-12)  # inference never makes the optimal model bigger
    assert sc.lifetime_flops(n, d, dinf) <= sc.lifetime_flops(nc, dc, dinf) * (1 + 1e-12)


def test_dollar_optimum_weights_inference_tokens():
    # equal cost per FLOP in every phase: the dollar optimum is the FLOP optimum
    k = 1e-18
    a = sc.inference_aware_optimum_usd(2.0, 1e12, 1e12, k, k, k, **SARDANA)
    b = sc.inference_aware_optimum(2.0, 2e12, **SARDANA)
    assert a[0] == pytest.approx(b[0], rel=1e-12)
    # decode at 10x the cost per FLOP (low MFU): a smaller model than the FLOP optimum
    c = sc.inference_aware_optimum_usd(2.0, 1e12, 1e12, k, k, 10 * k, **SARDANA)
    assert c[0] < b[0]


def test_target_loss_at_or_below_e_is_an_error():
    with pytest.raises(BillshapeInputError, match="^target_loss"):
        sc.inference_aware_optimum(1.69, 1e12, **SARDANA)


def test_cli_size_json_keys(cli):
    res = cli("size", "--reference-params", "13e9", "--inference-tokens", "2e12", "--json")
    assert res.code == 0, res.err
    data = res.json()
    for key in ("params", "tokens", "loss", "training_flops", "inference_flops", "total_flops", "chinchilla_params",
                "chinchilla_tokens", "chinchilla_total_flops", "saving_fraction", "constants", "assumptions"):
        assert key in data
    assert data["constants"] == "sardana-2024"
    assert data["params"] == pytest.approx(6.97e9, rel=0.02)
    assert data["saving_fraction"] == pytest.approx(0.174, abs=0.0035)


def test_cli_size_target_loss_and_constants(cli):
    a = cli("size", "--target-loss", "2.0", "--inference-tokens", "1e12", "--constants", "besiroglu-2024", "--json").json()
    b = cli("size", "--target-loss", "2.0", "--inference-tokens", "1e12", "--constants", "hoffmann-2022", "--json").json()
    assert a["constants"] == "besiroglu-2024" and b["constants"] == "hoffmann-2022"
    assert a["params"] != pytest.approx(b["params"], rel=0.05)  # the constants matter
    assert a["loss"] == b["loss"] == 2.0


def test_cli_size_dollars(cli):
    data = cli("size", "--reference-params", "13e9", "--inference-tokens", "2e12", "--gpu", "h100",
               "--usd-per-gpu-hour", "2", "--mfu-training", "0.4", "--mfu-prefill", "0.5", "--mfu-decode", "0.05",
               "--decode-share", "0.3", "--json").json()
    assert data["objective"] == "usd"
    assert data["total_usd"] < data["chinchilla_total_usd"]
    assert any("dense peak" in a["name"] and a["as_of"] for a in data["assumptions"])


@pytest.mark.parametrize("args,field", [
    (("--target-loss", "1.6", "--inference-tokens", "1e12"), "--target-loss"),
    (("--target-loss", "1.69", "--inference-tokens", "1e12"), "--target-loss"),
    (("--reference-params", "13e9", "--inference-tokens", "-1"), "--inference-tokens"),
    (("--reference-params", "13e9", "--inference-tokens", "1e12", "--constants", "chinchila"), "--constants"),
    (("--inference-tokens", "1e12"), "--reference-params/--target-loss"),
    (("--reference-params", "13e9", "--inference-tokens", "1e12", "--usd-per-gpu-hour", "2"), "--gpu"),
])
def test_cli_size_bad_input(cli, args, field):
    assert_one_line_error(cli("size", *args, "--json"), field)


def test_iso_loss_point_is_on_the_curve():
    import numpy as np

    from billshape import scaling

    k = dict(E=1.69, A=406.4, B=410.7, alpha=0.336, beta=0.283)
    u = np.linspace(0.05, 0.95, 19)
    n, d = scaling.iso_loss_point(u, 2.0453, **k)
    loss = k["E"] + k["A"] / n ** k["alpha"] + k["B"] / d ** k["beta"]
    assert np.allclose(loss, 2.0453, rtol=0, atol=1e-12)
    assert np.all(np.diff(n) < 0) and np.all(np.diff(d) > 0)  # more loss share in N means a smaller model


# ------------------------------------------------------------------ QA regressions (size verb)
@pytest.mark.parametrize("args, field", [
    (("--reference-params", "1e308", "--inference-tokens", "2e12"), "--reference-params"),
    (("--reference-params", "13e9", "--inference-tokens", "1e308"), "--inference-tokens"),
    (("--reference-params", "13e9", "--reference-tokens", "1e308", "--inference-tokens", "2e12"), "--reference-tokens"),
    (("--target-loss", "1e300", "--inference-tokens", "2e12"), "--target-loss"),
    (("--reference-params", "13e9", "--inference-tokens", "2e12", "--gpu", "h100", "--usd-per-gpu-hour", "1e308",
      "--mfu-training", "0.4", "--mfu-prefill", "0.4", "--mfu-decode", "0.1", "--decode-share", "0.5"),
     "--usd-per-gpu-hour"),
    (("--reference-params", "13e9", "--inference-tokens", "2e12", "--gpu", "h100", "--usd-per-gpu-hour", "2",
      "--mfu-training", "1.5", "--mfu-prefill", "0.4", "--mfu-decode", "0.1", "--decode-share", "0.5"),
     "--mfu-training"),
])
def test_size_extreme_inputs_are_one_line_errors(cli, args, field):
    assert_one_line_error(cli("size", *args, "--json"), field)


def test_size_decode_share_zero_is_an_answer(cli):
    d = cli("size", "--reference-params", "13e9", "--inference-tokens", "2e12", "--gpu", "h100",
            "--usd-per-gpu-hour", "2", "--mfu-training", "0.4", "--mfu-prefill", "0.4", "--mfu-decode", "0.1",
            "--decode-share", "0", "--json").json()
    assert d["objective"] == "usd" and 0 < d["total_usd"] < d["chinchilla_total_usd"]


@pytest.mark.parametrize("typo, suggestion", [("chinchila", "hoffmann-2022"), ("hofman", "hoffmann-2022"),
                                              ("epoch", "besiroglu-2024")])
def test_constants_typo_suggests(cli, typo, suggestion):
    res = cli("size", "--reference-params", "13e9", "--inference-tokens", "2e12", "--constants", typo)
    assert_one_line_error(res, "--constants")
    assert "did you mean" in res.err and suggestion in res.err


def test_iso_loss_curve_reaches_the_loss_and_drops_sizes_too_small():
    """The Size page's chart: every kept (N, D) has L(N, D) = the target; sizes whose parameter term alone takes
    >= max_share of the reducible loss are left out (they would need near-infinite tokens)."""
    target = float(sc.loss(13e9, sc.compute_optimal_tokens(13e9, **SARDANA), **SARDANA))
    n_all = np.geomspace(1e8, 1e12, 200)
    n, d = sc.iso_loss_curve(n_all, target, **SARDANA)
    assert 0 < n.size < n_all.size and np.all(np.diff(n) > 0)
    np.testing.assert_allclose(sc.loss(n, d, **SARDANA), target, rtol=1e-12)
    share = SARDANA["A"] * n_all ** -SARDANA["alpha"] / (target - SARDANA["E"])
    np.testing.assert_allclose(n, n_all[share < 0.995], rtol=1e-12)
    # the Chinchilla plan lies on it; a looser share keeps more of the small sizes
    cn, cd = sc.chinchilla_for_loss(target, **SARDANA)
    np.testing.assert_allclose(np.interp(np.log(cn), np.log(n), np.log(d)), np.log(cd), rtol=1e-3)
    assert sc.iso_loss_curve(n_all, target, **SARDANA, max_share=0.9999)[0].size > n.size
    with pytest.raises(BillshapeInputError, match="target_loss"):
        sc.iso_loss_curve(n_all, 1.5, **SARDANA)
