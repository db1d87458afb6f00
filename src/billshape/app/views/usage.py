"""Usage page: measured economics from usage logs (:mod:`billshape.usage`: ``ingest``, ``report``,
``economics``, ``whatif``; Watch: ``forecast``, ``check``, ``anomalies``), the same calls as ``billshape usage
ingest|report|economics|whatif|forecast|check|anomalies``.

Each browser session ingests into its own temporary DuckDB file (deleted when the session ends); the uploaded
logs go to the library as bytes (:class:`billshape.chains.IngestRequest`), not through files. Opens on
billshape's sample logs (the repository's ``examples/usage/``, shipped as ``billshape/data/usage_samples.yaml``)
ingested as in ``docs/usage.md``: ``--map tenant=customer --prices selfhosted_prices.csv``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from billshape.app import _ui

TITLE = "Usage"
ICON = ":material/receipt_long:"
URL = "usage"

SAMPLES_FILE = "usage_samples.yaml"  # in billshape.data
FORMATS = ("auto", "otel", "openai", "raw", "csv", "parquet", "anthropic-usage", "litellm", "langfuse")  # usage.api.FORMATS (less anthropic-cost: not ledger rows) plus "auto"; test_app checks
REPORT_BY = ("customer", "feature", "project", "user", "model", "provider", "day", "month")  # usage.api.REPORT_BY
LOG_TYPES = ["json", "jsonl", "ndjson", "csv", "parquet"]


def sample_bundle() -> dict:
    """The shipped sample logs: ``files`` (name -> text), the ``mapping`` and ``prices`` file to ingest them with."""
    from importlib import resources

    import yaml

    return yaml.safe_load(resources.files("billshape.data").joinpath(SAMPLES_FILE).read_text(encoding="utf-8"))


def _workdir() -> Path:
    """This session's folder (a TemporaryDirectory kept in the session state: removed with the session)."""
    import tempfile

    if "usage_tmp" not in st.session_state:
        st.session_state["usage_tmp"] = tempfile.TemporaryDirectory(prefix="billshape-usage-")
    return Path(st.session_state["usage_tmp"].name)


def _strip(x, root: str):
    """Temporary paths out of a message or value: the user sees the names of the files they gave."""
    if isinstance(x, str):
        return x.replace(root + "/", "").replace(root, "")
    if isinstance(x, list):
        return [_strip(v, root) for v in x]
    return x


def _run(request_type, **fields):
    """Build a request and run it (:func:`billshape.chains.run`): the page's one way into the library."""
    from billshape.chains import run

    return run(request_type(**fields))


def ingest_files(files: dict[str, bytes] | list, workdir: Path, fmt: str | None = None,
                 mapping: dict | list | None = None, prices: tuple[str, bytes] | None = None) -> dict:
    """Ingest ``files`` (name -> bytes, or ``(name, bytes)`` pairs) into a fresh DuckDB ledger under ``workdir``
    (:class:`billshape.chains.IngestRequest`: the bytes go in as they are); return the session's usage state (db
    path, prices path, ingest result). ``mapping``: ``{COL: FIELD}`` or ``COL=FIELD`` strings."""
    import shutil
    import uuid

    from billshape.chains import IngestRequest
    from billshape.errors import BillshapeInputError

    run = workdir / uuid.uuid4().hex[:8]
    run.mkdir(parents=True)
    logs = list(files.items()) if isinstance(files, dict) else list(files)
    prices_path = None  # the price table is read from a file (billshape.usage.prices takes a path)
    if prices is not None:
        prices_path = str(run / Path(prices[0]).name)
        Path(prices_path).write_bytes(prices[1])
    db = str(run / "usage.duckdb")
    root = str(run)
    try:
        res = _run(IngestRequest, files=logs, db=db, format=fmt, mapping=mapping or {}, prices=prices_path)
    except BillshapeInputError as exc:
        shutil.rmtree(run, ignore_errors=True)
        raise BillshapeInputError(_strip(exc.field, root), _strip(exc.value, root), exc.allowed,
                                  _strip(exc.hint, root)) from None
    res = res.model_copy(update={"assumptions": [a.model_copy(update={"value": _strip(a.value, root)})
                                                 for a in res.assumptions]})
    return {"db": db, "prices": prices_path, "ingest": res, "files": [name for name, _ in logs], "root": root}


def ingest_samples(workdir: Path) -> dict:
    """The sample logs, ingested as docs/usage.md does (``--map tenant=customer --prices selfhosted_prices.csv``)."""
    b = sample_bundle()
    logs = {n: t.encode("utf-8") for n, t in b["files"].items() if n != b["prices"]}
    return ingest_files(logs, workdir, mapping=b["mapping"], prices=(b["prices"], b["files"][b["prices"]].encode()))


def _load(state: dict | None) -> None:
    if state is not None:
        old = st.session_state.get("usage_state")
        if old is not None:
            import shutil

            shutil.rmtree(old["root"], ignore_errors=True)
        st.session_state["usage_state"] = state


def _inputs() -> None:
    """Sample button and the upload form; a successful ingest replaces the session's ledger."""
    if st.button("Use the sample logs", key="usage_sample", icon=":material/science:", width="stretch",
                 help="examples/usage/: OTel GenAI spans, an OpenAI usage export and a CSV, 12 rows, 2 of them bad."):
        with st.spinner("Ingesting the sample logs..."):
            _load(_ui.attempt(ingest_samples, _workdir()))
    with st.form("usage_form", border=True):
        ups = st.file_uploader("Usage logs", type=LOG_TYPES, accept_multiple_files=True, key="usage_files",
                               help="OTLP JSON spans (OTel GenAI), OpenAI usage JSON, raw responses JSONL, "
                                    "CSV or Parquet. Each file is identified by its content: a repeat adds nothing.")
        c1, c2 = st.columns([1, 1])
        fmt = c1.selectbox("Format", FORMATS, key="usage_format",
                           help="otel|openai|raw|csv|parquet; auto: from the extension and content.")
        mapping = c2.text_input("Column mapping (COL=FIELD, ...)", key="usage_map", placeholder="tenant=customer",
                                help="Read column/attribute COL as FIELD (customer, feature, project, user_id, ts, "
                                     "model, provider, request_id, requests, *_tokens); as --map.")
        prices = st.file_uploader("Price table CSV (optional)", type=["csv"], key="usage_prices",
                                  help="provider,model,input_usd_per_mtok,output_usd_per_mtok,...,source,as_of: "
                                       "self-hosted models; wins over genai-prices (as --prices).")
        go = st.form_submit_button("Ingest the uploads", icon=":material/upload:", width="stretch")
    if go:
        if not ups:
            st.warning("Choose one or more log files first.")
            return
        items = [m.strip() for m in mapping.split(",") if m.strip()]
        kw = {"fmt": None if fmt == "auto" else fmt}
        with st.spinner(f"Ingesting {len(ups)} file(s)..."):
            _load(_ui.attempt(ingest_files, [(u.name, u.getvalue()) for u in ups], _workdir(), mapping=items,
                              prices=(prices.name, prices.getvalue()) if prices is not None else None, **kw))


def usd_exact(x: float) -> str:
    """A ledger total to the micro-dollar while it is small (``$2.304973``), else as the other pages show money."""
    return f"${x:,.6f}" if abs(x) < 100 else _ui.fmt(x, "USD")


def _ingest_summary(res) -> None:
    _ui.metrics([
        ("Rows read", f"{res.rows_read:,}", "Rows (spans, buckets, lines) read from the files."),
        ("Rows priced", f"{res.rows_priced:,}", "In the ledger, priced at list (genai-prices or your table)."),
        ("Rows quarantined", f"{res.rows_quarantined:,}", "Kept aside with a reason; not in any total."),
        ("Total", usd_exact(res.total_usd), f"Exact to the micro-dollar: {res.total_micro_usd:,} micro-USD."),
    ])
    if res.rows_already_present:
        st.caption(f"{res.rows_already_present:,} rows already present (quarantined as duplicates), of which "
                   f"{res.rows_rekeyed:,} re-keyed (the same rows under another key).")


def _quarantine(res) -> None:
    if res.quarantine_reasons:
        import pandas as pd

        with st.expander(f"Quarantined rows by reason ({res.rows_quarantined})", expanded=True):
            st.table(pd.DataFrame({"reason": list(res.quarantine_reasons),
                                   "rows": list(res.quarantine_reasons.values())}), hide_index=True)


def _attribution(db: str) -> None:
    import altair as alt
    import pandas as pd

    from billshape.chains import ReportRequest

    by = st.segmented_control("Attribute spend by", REPORT_BY, default="customer", key="usage_by", required=True)
    rep = _ui.attempt(_run, ReportRequest, db=db, by=by)
    if rep is None:
        return
    frame = pd.DataFrame(rep.rows)
    if frame.empty:
        st.info("No priced rows.")
        return
    keys = list(frame["key"])  # the library's order: largest spend first (by day or month: in time)
    frame["label"] = frame["usd"].map(lambda x: f"${x:,.6f}".rstrip("0").rstrip(".") if x < 100 else f"${x:,.0f}")
    y = alt.Y("key:N", title=None, sort=keys, axis=alt.Axis(labelLimit=260))
    base = alt.Chart(frame, title=f"Spend by {by} (total {usd_exact(rep.total_usd)})")
    bars = base.mark_bar(color="#4c78a8").encode(
        y=y, x=alt.X("usd:Q", title="USD", axis=alt.Axis(format="$,.4~g"),
                     scale=alt.Scale(domain=[0, float(frame["usd"].max()) * 1.25 or 1.0])),
        tooltip=[alt.Tooltip("key:N", title=by), alt.Tooltip("requests:Q", format=","),
                 alt.Tooltip("usd:Q", format="$,.6f")])
    text = base.mark_text(align="left", dx=4, color="#333").encode(y=y, x="usd:Q", text="label:N")
    # fit the width only: Streamlit's default "fit" would squeeze the bars' height into the title and axes
    _ui.altair((bars + text).properties(height=max(26 * len(frame), 110),
                                        autosize={"type": "fit-x", "contains": "padding"}))
    st.dataframe(pd.DataFrame({by: frame["key"], "requests": frame["requests"],
                               "input tokens": frame["input_tokens"], "cache-read tokens": frame["cache_read_tokens"],
                               "output tokens": frame["output_tokens"], "USD": frame["usd"]}),
                 hide_index=True, width="stretch",
                 column_config={"USD": st.column_config.NumberColumn(format="$%.6f")})


def _economics(db: str):
    from billshape.chains import EconomicsRequest

    e = _ui.attempt(_run, EconomicsRequest, db=db)
    if e is None:
        return None
    _ui.metrics([
        ("Requests", f"{e.requests:,}", f"From {e.first_ts} to {e.last_ts}."),
        ("Cost per request", _ui.fmt(e.usd_per_request, "USD"), None),
        ("Cost per user-month", _ui.fmt(e.usd_per_user_per_month, "USD"),
         f"{e.users:,} users (distinct {e.users_from}) over {e.period_days:.3g} days; a month is 365.25/12 days."),
    ])
    _ui.metrics([
        ("Tokens per request, in / out", f"{e.input_tokens_per_request:,.0f} / {e.output_tokens_per_request:,.0f}",
         None),
        ("Cache hit rate", f"{e.cache_hit_rate:.1%}", "Cache-read share of input tokens."),
        ("Blended USD per million tokens", _ui.fmt(e.usd_per_million_tokens, "USD"), "Input and output tokens."),
    ])
    return e


def focus_csv(db: str) -> bytes:
    """The ledger as FOCUS 1.2 cost and usage rows, CSV (`billshape usage export --format focus -o FILE.csv`)."""
    import io

    import pyarrow.csv as pcsv

    from billshape.chains import FocusTableRequest

    buf = io.BytesIO()
    pcsv.write_csv(_run(FocusTableRequest, db=db), buf)
    return buf.getvalue()


def fragment_text(db: str, e) -> str:
    """The measured inputs as a scenario fragment, YAML (`billshape usage economics --scenario-out FILE.yaml`)."""
    from billshape.chains import ScenarioFragmentRequest

    return _run(ScenarioFragmentRequest, db=db, economics=e).text


def _exports(db: str, e) -> None:
    d1, d2 = st.columns(2)
    d1.download_button("Download FOCUS 1.2 (CSV)", lambda: focus_csv(db), file_name="billshape-focus.csv",
                       mime="text/csv", key="usage_dl_focus", on_click="ignore", width="stretch",
                       help="Cost and usage rows in the FinOps Open Cost and Usage Specification 1.2, one per day, "
                            "provider, model, customer, feature, project and charge (input, cached input, output).")
    d2.download_button("Download the scenario fragment (YAML)", fragment_text(db, e).encode("utf-8"),
                       file_name="measured.yaml", mime="application/x-yaml", key="usage_dl_fragment",
                       on_click="ignore", width="stretch",
                       help="The measured requests, tokens, cache hit rate and model mix as scenario keys: merge "
                            "them into a plan (product keys override, serving.routes replace).")


def _whatif(db: str, prices: str | None, models: list[str]) -> None:
    from billshape.chains import WhatIfRequest

    c1, c2, c3 = st.columns([2, 1, 2])
    src = c1.selectbox("Route requests of", models, key="usage_from",
                       help="A model in the ledger (the largest spend first).")
    share = c2.slider("Share", min_value=0.0, max_value=1.0, value=0.4, step=0.05, key="usage_share",
                      help="In [0, 1]: the share of its requests moved.")
    to = c3.text_input("to model", value="gpt-4o-mini", key="usage_to",
                       help="A model with a price (genai-prices or the price table); may be provider/model.")
    c4, c5 = st.columns([1, 2])
    use_cache = c4.toggle("Set the cache hit rate", key="usage_cache_on", value=True)
    rate = c5.slider("Cache hit rate", min_value=0.0, max_value=1.0, value=0.6, step=0.05, key="usage_cache",
                     disabled=not use_cache, help="In [0, 1]: cache-read share of every request's input tokens.")
    routes = [f"{src}:{share:g}->{to.strip()}"] if src and share > 0 else []
    if not routes and not use_cache:
        st.info("Move a share of a model's requests, or set the cache hit rate.")
        return
    w = _ui.attempt(_run, WhatIfRequest, db=db, routes=routes, cache_hit_rate=rate if use_cache else None, prices=prices)
    if w is None:
        return
    _ui.metrics([
        ("Measured", usd_exact(w.baseline_usd), "The ledger's billed cost."),
        ("What if", usd_exact(w.whatif_usd), "; ".join(routes) or None),
        ("Change", usd_exact(w.delta_usd) if w.delta_usd >= 0 else "-" + usd_exact(-w.delta_usd), None),
        ("Change, %", f"{w.delta_pct:+.1f}%", None),
    ])
    st.caption("Per request: cost = (1 - s) x cost(model, tokens') + s x cost(TO, tokens'), s the routed share; "
               "tokens' with cache_read = floor(R x input) when a cache hit rate R is set. Same token counts on the "
               "new model (tokenisers differ: a simplification).")


def _watch(db: str) -> None:
    """Watch the bill: the month-end forecast band, a budget check and the anomalous days (``billshape usage
    forecast|check|anomalies``)."""
    import math

    import pandas as pd

    from billshape.chains import AnomaliesRequest, CheckRequest, ForecastRequest
    from billshape.report.charts import forecast_band

    fc = _ui.attempt(_run, ForecastRequest, db=db, samples=1000)
    if fc is None:
        return
    t = fc.total
    _ui.metrics([
        ("Spend to date", usd_exact(t["actual_to_date_usd"]), f"{fc.period_start} to {fc.as_of} (the ledger's last day)."),
        ("Month-end, P50", usd_exact(t["p50"]), f"P10 {usd_exact(t['p10'])}, P90 {usd_exact(t['p90'])}; "
                                               f"{fc.days_to_come} days to come."),
        ("Growth a month", f"{fc.growth_monthly:+.1%}", "The next 30 days' P50 against the last 30 days."),
    ])
    with st.container(key="usage_forecast"):
        _ui.altair(forecast_band(fc).properties(width="container"))
    st.caption("ETS (additive trend, weekly season; statsmodels) from 21 days of history, else the last 7 days' mean "
               "with bootstrapped residuals; the band from 1,000 simulated paths. `billshape usage forecast`.")
    budget = st.number_input("Monthly budget (USD)", min_value=0.01, value=float(math.ceil(t["p50"] * 100) / 100 or 1.0),
                             key="usage_budget", help="> 0. Checked against the spend to date: 80 % and 90 % warn, "
                                                      "100 % is a breach (`billshape usage check --budget-usd`).")
    chk = _ui.attempt(_run, CheckRequest, db=db, budget_usd=budget, period="month")
    if chk is not None:
        for b in chk.breaches:
            st.error(f"Budget breached: {usd_exact(b['amount'])} against {usd_exact(b['limit'])} since {b['since']}.")
        for w in chk.warnings:
            st.warning(f"{w['threshold']:.0%} of the budget reached on {w['since']}"
                       + (f"; projected to reach it on {w['projected_breach_date']}." if w["projected_breach_date"] else "."))
        s = chk.statuses[0] if chk.statuses else None
        if chk.ok and not chk.warnings and s is not None:
            st.success(f"{s['share']:.0%} of the budget spent" + (f"; projected to reach it on {s['projected_breach_date']}."
                                                                   if s["projected_breach_date"] else "; not projected to reach it this month."))
    an = _ui.attempt(_run, AnomaliesRequest, db=db, by="customer")
    if an is None:
        return
    if not an.anomalies:
        st.info(f"No anomalous day over {an.group_periods:,} customer-days (rolling median / MAD, |z| > {an.threshold:g}; "
                "a customer needs 7 days of history, 6 weeks for its cost).")
        return
    st.dataframe(pd.DataFrame([{"day": a["period"], "customer": a["key"], "metric": a["metric"], "value": a["value"],
                                "usual": a["median"], "z": a["z"],
                                "rows": "; ".join(f"{r['source_file']}:{r['row_index']}" for r in a["rows"])}
                               for a in an.anomalies]), hide_index=True, width="stretch")


def render() -> None:
    _ui.page_header("Usage", "What did your AI usage cost, and who and what did it cost for?",
                    "Opens on billshape's sample logs (examples/usage/): ingest, price, attribute, re-price. The "
                    "same calls as `billshape usage ingest|report|economics|whatif`.")
    if "usage_state" not in st.session_state:
        with st.spinner("Ingesting the sample logs..."):
            _load(_ui.attempt(ingest_samples, _workdir()))
    top = st.container()
    left, right = st.columns([1, 2], gap="large")
    with left:
        _inputs()
    state = st.session_state.get("usage_state")
    if state is None:
        return
    res = state["ingest"]
    with top:
        st.markdown("##### Ingested: " + ", ".join(f"`{f}`" for f in state["files"]))
        _ingest_summary(res)
    if not res.rows_priced:
        with right:
            _quarantine(res)
            st.warning("No row was priced: nothing to attribute.")
        return
    with right:
        _quarantine(res)
        st.subheader("Attribution")
        _attribution(state["db"])
    st.subheader("Measured unit economics")
    e = _economics(state["db"])
    if e is None:
        return
    _exports(state["db"], e)
    st.subheader("What if")
    from billshape.chains import ReportRequest

    by_model = _ui.attempt(_run, ReportRequest, db=state["db"], by="model")  # sorted by spend, largest first
    _whatif(state["db"], state["prices"], [r["key"] for r in by_model.rows] if by_model else list(e.model_shares))
    st.subheader("Watch")
    _watch(state["db"])
    _ui.assumptions_table(res.model_copy(update={"assumptions": list(res.assumptions) + list(e.assumptions)}),
                          expanded=False)
