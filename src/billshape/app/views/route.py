"""Route page: the cheapest model of a ladder that clears a quality bar, and the cascade of cheap models
escalating to the largest (a :class:`~billshape.chains.RouteRequest` run by its chain, with the ladder read once
by :func:`billshape.decide.read_ladder` for its quality metric).

Opens on FrugalGPT's HEADLINES ladder (``examples/ladder_frugalgpt.yaml``, shipped as
``billshape/data/ladder_frugalgpt.yaml``) at a quality bar of 0.845, as in the CLI's route example.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui

TITLE = "Route"
ICON = ":material/alt_route:"
URL = "route"

EXAMPLE_FILE = "data/ladder_frugalgpt.yaml"  # inside the billshape package (examples/ holds scenarios only)
EXAMPLE_LADDER = "frugalgpt-headlines"  # its shipped name, which every reader of a ladder source takes
EXAMPLE = {"quality_bar": 0.845}  # the CLI's route example
EXAMPLE_SOURCE = "FrugalGPT's HEADLINES ladder (Chen, Zaharia and Zou 2023) at a quality bar of 0.845"

HOW_LADDER = ("FrugalGPT ladder", "Upload YAML")


def read_example() -> dict:
    from billshape.decide import read_ladder

    return read_ladder(EXAMPLE_LADDER)


def read_upload(name: str, data: bytes) -> dict:
    """Read an uploaded ladder with the library's reader, from its bytes in a file object named as the upload (so
    that messages name the upload; no temporary file)."""
    import io
    from pathlib import Path

    from billshape.decide import read_ladder

    source = io.BytesIO(data)
    source.name = Path(name).name
    return read_ladder(source)


def _ladder() -> dict | None:
    how = st.segmented_control("Ladder", HOW_LADDER, default=HOW_LADDER[0], key="route_ladder", required=True,
                               help="Models with quality and USD per request (YAML: source, as_of, models).")
    if how == HOW_LADDER[0]:
        st.caption("HEADLINES news classification: test accuracy and cost per query of 10 APIs (FrugalGPT); "
                   "the cascade's rejection rates are illustrative, not measured.")
        return read_example()
    up = st.file_uploader("Ladder YAML", type=["yaml", "yml"], key="route_upload",
                          help="models: [{name, quality, usd_per_request, [rejection_rate], [accepted_quality]}], "
                               "qualities and rates in [0, 1], costs > 0.")
    if up is None:
        st.info("Upload a ladder YAML to route over it.")
        return None
    return _ui.attempt(read_upload, up.name, up.getvalue())


def _chart(res, metric: str = "quality"):
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(res.candidates)
    frame["status"] = ["chosen" if n == res.chosen else ("clears the bar" if c else "below the bar")
                       for n, c in zip(frame["name"], frame["clears_bar"])]
    if res.cascade:
        frame = pd.concat([frame, pd.DataFrame([{
            "name": "cascade: " + " -> ".join(res.cascade["steps"]), "quality": res.cascade["quality"],
            "usd_per_request": res.cascade["usd_per_request"], "clears_bar": res.cascade["clears_bar"],
            "status": "cascade"}])], ignore_index=True)
    kinds = ["chosen", "clears the bar", "below the bar", "cascade"]
    lo = min(float(frame["quality"].min()), res.quality_bar)
    hi = max(float(frame["quality"].max()), res.quality_bar)
    pad = max((hi - lo) * 0.1, 0.005)
    cmin, cmax = float(frame["usd_per_request"].min()), float(frame["usd_per_request"].max())
    x = alt.X("usd_per_request:Q", title="USD per request (log scale)", axis=alt.Axis(format="$.2~g"),
              scale=alt.Scale(type="log", domain=[cmin / 1.6, cmax * 1.6], nice=False))
    y = alt.Y("quality:Q", title=metric, scale=alt.Scale(domain=[lo - pad, hi + pad], nice=False))
    frame["label"] = ["cascade" if st_ == "cascade" else (n if st_ == "chosen" or n == res.largest else "")
                      for n, st_ in zip(frame["name"], frame["status"])]
    base = alt.Chart(frame, title="The cheapest model above the bar wins (hover for the others' names)")
    points = base.mark_point(filled=True, opacity=0.9).encode(
        x=x, y=y,
        color=alt.Color("status:N", title=None, legend=alt.Legend(orient="bottom"),
                        scale=alt.Scale(domain=kinds, range=["#d62728", "#4c78a8", "#bab0ac", "#f58518"])),
        shape=alt.Shape("status:N", legend=None,
                        scale=alt.Scale(domain=kinds, range=["circle", "circle", "circle", "diamond"])),
        size=alt.Size("status:N", legend=None, scale=alt.Scale(domain=kinds, range=[260, 90, 90, 200])),
        tooltip=[alt.Tooltip("name:N"), alt.Tooltip("quality:Q", format=".4g"),
                 alt.Tooltip("usd_per_request:Q", format="$.3g")],
    )
    names = base.mark_text(align="right", dx=-10, dy=-10, fontSize=12, color="#333").encode(x=x, y=y, text="label:N")
    bar = alt.Chart(pd.DataFrame({"quality": [res.quality_bar], "label": [f"bar {res.quality_bar:g}"]}))
    rule = bar.mark_rule(color="#d62728", strokeDash=[6, 4]).encode(y=y)
    label = bar.mark_text(align="right", x={"expr": "width - 4"}, dy=-7, color="#d62728", fontWeight="bold").encode(y=y, text="label:N")
    return (rule + label + points + names).properties(height=420)


def render() -> None:
    from billshape.chains import RouteRequest

    _ui.page_header("Route", "Which is the cheapest model that is good enough?", "Opens on " + EXAMPLE_SOURCE + ".")
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        ladder = _ladder()
        bar = st.slider("Quality bar", min_value=0.0, max_value=1.0, value=EXAMPLE["quality_bar"], step=0.001,
                        format="%.3f", key="route_bar", help="In [0, 1]; at most the best model's quality.")
        cascade = st.toggle("Cascade", key="route_cascade",
                            help="Try the models that give a rejection_rate cheapest first, escalating the rest "
                                 "to the largest (FrugalGPT).")
    if ladder is None:
        return
    with top:
        # cascade_only=False: with the cascade on, the page still answers with the cheapest single model
        res = _ui.run(RouteRequest, ladder=ladder, quality_bar=bar, cascade=cascade, cascade_only=False)
    if res is None:
        return
    items = [
        ("Chosen model", res.chosen, f"Cheapest with {ladder['quality_metric']} >= {res.quality_bar:g}."),
        ("USD per request", _ui.fmt(res.usd_per_request, "USD"), None),
        ("Quality", f"{res.quality:.4g}", ladder["quality_metric"]),
        ("Saving vs largest", f"{res.saving_vs_largest:.1%}", f"Against always using {res.largest}."),
    ]
    if res.cascade:
        items.append(("Cascade quality", f"{res.cascade['quality']:.4g}",
                      f"{' -> '.join(res.cascade['steps'])}: {_ui.fmt(res.cascade['usd_per_request'], 'USD')} "
                      f"per request, {res.cascade['saving_vs_largest']:.1%} cheaper than {res.largest}."))
    with top:
        _ui.metrics(items, widths=[2] + [1] * (len(items) - 1))
        st.success(res.explanation[0].upper() + res.explanation[1:])
    with right:
        _ui.altair(_chart(res, ladder["quality_metric"]))
    with right:
        import pandas as pd

        table = pd.DataFrame({"model": [c["name"] for c in res.candidates],
                              "quality": [f"{c['quality']:.4g}" for c in res.candidates],
                              "USD/request": [f"${c['usd_per_request']:.3g}" for c in res.candidates],
                              "clears": ["yes" if c["clears_bar"] else "" for c in res.candidates]})
        st.dataframe(table, hide_index=True, width="stretch")
    _ui.assumptions_table(res, expanded=False)
