"""Plan page: a product plan (scenario YAML) evaluated by the Monte Carlo of :mod:`billshape.plan`, shown
with the charts of :mod:`billshape.report` (the same as ``billshape plan --report``).

Opens on a shipped example scenario (``billshape/examples/*.yaml``, the files ``billshape demo`` runs); the YAML
is editable in place or replaced by an upload. The page only reads the YAML, calls ``billshape.plan.load(...)``
and ``Plan.evaluate(samples, seed, progress)`` and draws the result: no arithmetic of its own.
"""

from __future__ import annotations

import streamlit as st

from billshape.app import _ui
from billshape.present.format import share_text

TITLE = "Plan"
ICON = ":material/query_stats:"
URL = "plan"

# The shipped examples, in the order `billshape demo` runs them; the page opens on DEFAULT (uncertain inputs,
# a tornado and a build-vs-buy curve: every chart of the report).
EXAMPLES = {
    "seed000_image_startup.yaml": "Image start-up: a $235,200 run paid back (bria.ai)",
    "api_wrapper_price_shock.yaml": "API wrapper: API prices rise 3-5x in month 7",
    "high_volume_self_host.yaml": "High volume: part of the traffic self-hosted",
}
DEFAULT = "high_volume_self_host.yaml"
UPLOAD = "Upload a YAML file"
# Monte Carlo bounds are the library's (Plan.evaluate: samples in [1, 10,000,000], seed >= 0); the default is
# the CLI's (`billshape plan --samples 20000 --seed 0`). The page caps samples lower so a shared server stays
# responsive; the CLI takes up to the library's 10 million.
SAMPLES = {"default": 20_000, "min": 1, "max": 1_000_000}
SEED = {"default": 0, "min": 0}


def example_text(name: str) -> str:
    from billshape.plan import examples_dir

    return (examples_dir() / name).read_text(encoding="utf-8")


def load_text(text: str, name: str):
    """Validate a scenario given as YAML text with the library's loader (``billshape.plan.parse_bytes``: no
    temporary file); its errors name the YAML path (``product.users``) or the line, and the file by ``name``."""
    from pathlib import Path

    from billshape import plan

    return plan.parse_bytes(text.encode("utf-8"), Path(name).name or "scenario.yaml")


def run(text: str, name: str, samples: int, seed: int, progress=None):
    """Load and evaluate a scenario (what ``billshape plan FILE --samples N --seed S`` does)."""
    plan = load_text(text, name)
    return plan.evaluate(samples=samples, seed=seed, progress=progress)


def html_report(res) -> bytes:
    """The report of ``billshape plan --report``, written by :func:`billshape.report.write_html`."""
    import tempfile
    from pathlib import Path

    from billshape.report import write_html

    with tempfile.TemporaryDirectory() as tmp:
        return write_html(res, Path(tmp) / "plan.html").read_bytes()


def _pick_example() -> None:
    choice = st.session_state["plan_example"]
    if choice in EXAMPLES:
        st.session_state["plan_yaml"] = example_text(choice)
        st.session_state["plan_name"] = choice


def _source() -> tuple[str, str] | None:
    """The scenario's YAML text and file name, from an example, an upload, or the editor."""
    if "plan_yaml" not in st.session_state:
        st.session_state["plan_yaml"] = example_text(DEFAULT)
        st.session_state["plan_name"] = DEFAULT
    st.selectbox("Scenario", [*EXAMPLES, UPLOAD], index=list(EXAMPLES).index(DEFAULT), key="plan_example",
                 format_func=lambda n: EXAMPLES.get(n, n), on_change=_pick_example,
                 help="A shipped example (billshape/examples/), or your own scenario YAML (schema: docs/plan.md).")
    if st.session_state["plan_example"] == UPLOAD:
        up = st.file_uploader("Scenario YAML", type=["yaml", "yml"], key="plan_upload")
        if up is None:
            st.info("Upload a scenario YAML (or pick an example and edit it below).")
            return None
        if st.session_state.get("plan_upload_id") != up.file_id:  # a new upload replaces the editor's text once
            st.session_state["plan_upload_id"] = up.file_id
            try:
                st.session_state["plan_yaml"] = up.getvalue().decode("utf-8")
            except UnicodeDecodeError:
                st.error(f"FILE: got '{up.name}'; allowed: a readable UTF-8 YAML file")
                return None
            st.session_state["plan_name"] = up.name
    text = st.text_area("Scenario YAML (edit and press Ctrl+Enter)", key="plan_yaml", height=360,
                        help="Each number may be a distribution: {dist: lognormal, p10: ..., p90: ...}, "
                             "{dist: triangular, min, mode, max}, ... (docs/plan.md).")
    return text, st.session_state.get("plan_name", "scenario.yaml")


def _evaluate(text: str, name: str, samples: int, seed: int):
    """The plan's result, computed once per (YAML, samples, seed) in this session, with a progress bar."""
    import hashlib

    key = (hashlib.sha256(text.encode()).hexdigest(), name, samples, seed)
    cached = st.session_state.get("plan_result")
    if cached is not None and cached[0] == key:
        return cached[1]
    bar = st.progress(0.0, text=f"Monte Carlo: 0 / {samples:,} samples")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0), text=f"Monte Carlo: {done:,} / {total:,} samples")

    res = _ui.attempt(run, text, name, samples, seed, progress)
    bar.empty()
    if res is not None:
        st.session_state["plan_result"] = (key, res)
    return res


def _views(res) -> None:
    """Both unit-economics views side by side, each saying which question it answers."""
    from billshape.present.format import plan_value as _fmt

    views = [
        ("contribution_margin_per_user_month_usd", "Contribution margin", "per user-month · marginal view",
         "**Answers:** do I make or lose money on one more user? Revenue minus what that user adds: inference "
         "and other variable costs. Training is a fixed cost and is left out."),
        ("fully_loaded_margin_per_user_month_usd", "Fully loaded margin", "per user-month · whole business",
         "**Answers:** do the users pay for the whole business, model included? Also charges fixed costs "
         "(staff, monitoring, ...) and the amortised training and self-hosting set-up to the users."),
    ]
    for col, (key, label, what, question) in zip(st.columns(2), views):
        q = res.summary[key]
        with col.container(border=True):
            st.metric(f"{label}, P50", _fmt(key, q["p50"]), help=what[0].upper() + what[1:] + ".")
            st.caption(f"{what} · P10 {_fmt(key, q['p10'])} · P90 {_fmt(key, q['p90'])}")
            st.markdown(question)


def _summary_table(res) -> None:
    import pandas as pd

    from billshape.present.format import OUTCOME_LABELS as LABELS
    from billshape.present.format import summary_rows

    keys = list(res.summary) + list(res.lifetime)
    rows = summary_rows(res)
    st.table(pd.DataFrame({"outcome": [r[0] for r in rows], "P10": [r[1] for r in rows], "P50": [r[2] for r in rows],
                           "P90": [r[3] for r in rows], "what it is": [LABELS.get(k, ("", ""))[1] for k in keys]}),
             hide_index=True)


def _fleet(res) -> None:
    """A fleet route: its replicas and utilization (P50, first and last month); a per-token route: says so."""
    from billshape.present.format import plan_value as _fmt

    if res.monthly and "self_hosted_replicas" in res.monthly[0]:
        first, last = res.monthly[0], res.monthly[-1]
        u = res.summary["lifetime_self_hosted_utilization"]
        st.info(f"Self-hosted fleet (billed for every provisioned GPU-hour): {first['self_hosted_replicas']:,.0f} "
                f"replicas ({first['self_hosted_gpu_hours']:,.0f} GPU-hours, "
                f"{_fmt('self_hosted_usd', first['self_hosted_usd'])}) at "
                f"{_fmt('u_utilization', first['self_hosted_utilization'])} utilization in month 1; "
                f"{last['self_hosted_replicas']:,.0f} replicas at {_fmt('u_utilization', last['self_hosted_utilization'])} "
                f"in month {last['month']}. Utilization over the horizon: P10 {_fmt('u_utilization', u['p10'])}, "
                f"P50 {_fmt('u_utilization', u['p50'])}, P90 {_fmt('u_utilization', u['p90'])}.")
    for a in res.assumptions:
        if a.value == "billed per served token, not per provisioned hour":
            st.caption(f"`{a.name.split(':')[0]}`: billed per served token, not per provisioned hour "
                       "(its `utilization` is given; drop it to bill the fleet's every GPU-hour).")


def _charts(res) -> None:
    from billshape.report import charts

    drawn = charts(res)
    for name in ("cost_stack", "cumulative_cash", "margin_per_user", "payback", "tornado", "build_vs_buy"):
        if name in drawn:
            with st.container(border=True):
                # as in the HTML report: its own look (theme=None) and natural size (autosize "pad"); Streamlit's
                # default "fit" squeezes the plot of a fixed-size chart into its title, legend and axes
                st.altair_chart(drawn[name].properties(autosize={"type": "pad"}), theme=None, width="content")


def render() -> None:
    from billshape.present.format import plan_value as _fmt

    _ui.page_header("Plan", "Does the product make money, and how sure can you be?",
                    "Opens on a shipped example scenario; edit its YAML or upload your own. The same model as "
                    "`billshape plan FILE --report plan.html`.")
    top = st.container()
    left, right = st.columns([2, 3], gap="large")
    with left:
        src = _source()
        c1, c2 = st.columns(2)
        samples = c1.number_input("Samples", min_value=SAMPLES["min"], max_value=SAMPLES["max"],
                                  value=SAMPLES["default"], step=5_000, key="plan_samples",
                                  help=f"Monte Carlo samples, an integer in [{SAMPLES['min']:,}, {SAMPLES['max']:,}] "
                                       "here (the library takes up to 10,000,000); 1 when nothing is uncertain.")
        seed = c2.number_input("Seed", min_value=SEED["min"], value=SEED["default"], step=1, key="plan_seed",
                               help="Random seed, an integer >= 0: the same seed gives the same figures.")
    if src is None:
        return
    text, name = src
    with top:
        res = _evaluate(text, name, int(samples), int(seed))
    if res is None:
        return
    s = res.summary
    never = res.probability_never_pays_back
    with top:
        st.markdown(f"#### {res.name}")
        if res.description:
            st.caption(res.description)
        _ui.metrics([
            ("Payback, P50 (months)", _fmt("payback_month", s["payback_month"]["p50"]),
             f"P10 {_fmt('payback_month', s['payback_month']['p10'])}, "
             f"P90 {_fmt('payback_month', s['payback_month']['p90'])} (months)."),
            ("NPV, P50", _fmt("npv_usd", s["npv_usd"]["p50"]),
             f"P10 {_fmt('npv_usd', s['npv_usd']['p10'])}, P90 {_fmt('npv_usd', s['npv_usd']['p90'])}."),
            ("Cumulative profit, P50", _fmt("cumulative_profit_usd", s["cumulative_profit_usd"]["p50"]),
             "Cash over the horizon, training and set-up included."),
            ("Never pays back", share_text(never), f"Share of samples not paid back within {res.horizon_months} months."),
        ])
        st.caption(f"{res.samples:,} sample{'s' if res.samples != 1 else ''} (seed {res.seed}) over {res.horizon_months} months; uncertain inputs: "
                   + (", ".join(f"`{u}`" for u in res.uncertain_inputs) or "none (a deterministic plan)") + ".")
    with right:
        _views(res)
        _summary_table(res)
        _fleet(res)
        if res.build_vs_buy:
            st.info("Build vs buy: " + res.build_vs_buy["explanation"])
        d1, d2 = st.columns(2)
        d1.download_button("Download the YAML", text.encode("utf-8"), file_name=name, mime="application/x-yaml",
                           key="plan_dl_yaml", on_click="ignore", width="stretch")
        d2.download_button("Download the HTML report", lambda: html_report(res),
                           file_name=name.rsplit(".", 1)[0] + ".html", mime="text/html", key="plan_dl_html",
                           on_click="ignore", width="stretch",
                           help="Self-contained and offline: the charts' JavaScript is embedded.")
    st.subheader("Charts")
    _charts(res)
    _ui.assumptions_table(res, expanded=False)
