"""Size page: how big a model to train for its lifetime (a :class:`~billshape.chains.SizeRequest` run by its
chain): the inference-aware optimum (Sardana et al. 2024) against the Chinchilla plan for the same loss, drawn as
lifetime FLOPs (:func:`billshape.scaling.lifetime_flops`) along the iso-loss curve
(:func:`billshape.scaling.iso_loss_curve`).

Opens on Sardana et al.'s Fig. 1: a 13B Chinchilla-optimal reference and 2 trillion inference tokens give
a ~7B model trained longer, saving ~17 % of lifetime FLOPs.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui

TITLE = "Size"
ICON = ":material/straighten:"
URL = "size"

# Example inputs: Sardana et al. 2024 (arXiv:2401.00448) Fig. 1: a 13B model's loss, 2e12 inference tokens.
EXAMPLE = {"reference_params_b": 13.0, "inference_tokens_t": 2.0, "target_loss": 2.05, "constants": "sardana-2024"}
EXAMPLE_SOURCE = ("Sardana et al. 2024, Fig. 1 (the loss of a Chinchilla-optimal 13B model, "
                  "2 trillion lifetime inference tokens)")

HOW_LOSS = ("Reference model", "Target loss")


def _inputs() -> dict:
    from billshape import scaling

    sets = scaling.constant_sets()
    names = list(sets)
    kw: dict = {}
    kw["constants"] = st.selectbox(
        "Scaling-law constants", names, index=names.index(EXAMPLE["constants"]), key="size_constants",
        help="L(N, D) = E + A/N^alpha + B/D^beta; the answer depends strongly on this fit.")
    cs = sets[kw["constants"]]
    st.caption(f"E = {cs.E:g}, A = {cs.A:g}, B = {cs.B:g}, alpha = {cs.alpha:g}, beta = {cs.beta:g} "
               f"({cs.source.split(',')[0]}, {cs.as_of})")
    how = st.segmented_control("Loss to reach", HOW_LOSS, default=HOW_LOSS[0], key="size_how", required=True,
                               help="The loss of a reference model, or a loss in nats per token.")
    if how == HOW_LOSS[0]:
        c1, c2 = st.columns(2)
        ref_b = c1.number_input("Reference parameters (billions)", min_value=0.0,
                                value=EXAMPLE["reference_params_b"], step=1.0, key="size_ref_params", help="> 0.")
        tok_b = c2.number_input("Reference tokens (billions)", min_value=0.0, value=None, step=100.0,
                                placeholder="compute-optimal", key="size_ref_tokens",
                                help="> 0; empty: the compute-optimal count for the reference size.")
        kw["reference_params"] = ref_b * 1e9
        kw["reference_tokens"] = None if tok_b is None else tok_b * 1e9
    else:
        kw["target_loss"] = st.number_input("Target loss, nats per token", min_value=0.0,
                                            value=EXAMPLE["target_loss"], step=0.01, format="%.4f",
                                            key="size_loss", help=f"> E = {cs.E:g} of the constant set.")
    inf_t = st.number_input("Lifetime inference tokens (trillions)", min_value=0.0,
                            value=EXAMPLE["inference_tokens_t"], step=0.5, key="size_inference",
                            help=">= 0: prompt plus generated tokens served over the model's life.")
    kw["inference_tokens"] = inf_t * 1e12
    return kw


def _chart(res):
    import altair as alt
    import numpy as np
    import pandas as pd

    from billshape import scaling as sc

    k = sc.constant_set(res.constants).as_kwargs()
    lo, hi = min(res.params, res.chinchilla_params) * 0.45, max(res.params, res.chinchilla_params) * 2.2
    n, d = sc.iso_loss_curve(np.geomspace(lo, hi, 120), res.loss, **k)  # (N, D) on the iso-loss curve
    train = sc.lifetime_flops(n, d, 0.0)
    total = sc.lifetime_flops(n, d, res.inference_tokens)
    frame = pd.concat([
        pd.DataFrame({"params_b": n / 1e9, "flops": total, "line": "lifetime (train + inference)"}),
        pd.DataFrame({"params_b": n / 1e9, "flops": train, "line": "training only"}),
    ])
    plans = pd.DataFrame({"params_b": [res.params / 1e9, res.chinchilla_params / 1e9],
                          "flops": [res.total_flops, res.chinchilla_total_flops],
                          "plan": ["inference-aware", "Chinchilla"]})
    lines = alt.Chart(frame, title="Every point reaches the same loss; the smaller model trained longer costs "
                                   "less over its life").mark_line().encode(
        x=alt.X("params_b:Q", title="parameters, billions (log scale)",
                scale=alt.Scale(type="log", domain=[float(n[0]) / 1e9, float(n[-1]) / 1e9], nice=False)),
        y=alt.Y("flops:Q", title="FLOPs", axis=alt.Axis(format=".2~e"), scale=alt.Scale(zero=False)),
        color=alt.Color("line:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=["lifetime (train + inference)", "training only"],
                                        range=["#4c78a8", "#bab0ac"])),
        strokeDash=alt.StrokeDash("line:N", legend=None, scale=alt.Scale(
            domain=["lifetime (train + inference)", "training only"], range=[[1, 0], [6, 4]])),
        tooltip=[alt.Tooltip("line:N"), alt.Tooltip("params_b:Q", format=",.3g", title="params, B"),
                 alt.Tooltip("flops:Q", format=".3~e")],
    )
    points = alt.Chart(plans).mark_point(size=160, filled=True).encode(
        x="params_b:Q", y="flops:Q",
        shape=alt.Shape("plan:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=["inference-aware", "Chinchilla"], range=["circle", "diamond"])),
        color=alt.value("#d62728"),
        tooltip=[alt.Tooltip("plan:N"), alt.Tooltip("params_b:Q", format=",.3g", title="params, B"),
                 alt.Tooltip("flops:Q", format=".3~e", title="lifetime FLOPs")])
    labels = points.mark_text(dy=-14, fontWeight="bold").encode(text="plan:N", color=alt.value("#333"))
    return (lines + points + labels).resolve_scale(color="independent").properties(height=360)


def render() -> None:
    from billshape.chains import SizeRequest

    _ui.page_header("Size", "How big a model should you train, counting the tokens it will serve?",
                    "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        kw = _inputs()
        st.caption("Minimises lifetime compute 6·N·D_train + 2·N·D_inference at a fixed loss (Sardana et al. "
                   "2024); the Chinchilla plan minimises training compute alone.")
    with top:
        res = _ui.run(SizeRequest, **kw)
    if res is None:
        return
    with top:
        _ui.metrics([
            ("Parameters", f"{res.params / 1e9:,.3g}B", "The inference-aware optimum."),
            ("Training tokens", f"{res.tokens / 1e12:,.4g}T", f"{res.tokens_per_param:,.0f} tokens per parameter."),
            ("Chinchilla parameters", f"{res.chinchilla_params / 1e9:,.3g}B",
             f"The training-compute-optimal model for the same loss, on {res.chinchilla_tokens / 1e12:,.4g}T tokens."),
            ("Lifetime FLOPs saved", f"{res.saving_fraction:.1%}", "1 - total FLOPs / Chinchilla total FLOPs."),
        ])
        st.success(res.explanation[0].upper() + res.explanation[1:])
    with right:
        st.markdown(f"Loss **{res.loss:.4f}** nats/token · lifetime **{res.total_flops:.3g} FLOP** "
                    f"(training {res.training_flops:.3g} + inference {res.inference_flops:.3g}) vs the Chinchilla "
                    f"{res.chinchilla_params / 1e9:,.3g}B on {res.chinchilla_tokens / 1e12:,.4g}T tokens: "
                    f"**{res.chinchilla_total_flops:.3g} FLOP**")
        _ui.altair(_chart(res))
    _ui.assumptions_table(res)
