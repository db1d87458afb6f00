"""One self-contained, offline HTML report of a plan (and PNGs of its charts)."""

from __future__ import annotations

import html
import json
from functools import lru_cache
from pathlib import Path

from billshape.report.charts import charts
from billshape.present.format import OUTCOME_LABELS, plan_value, samples_text, share_text, system_share_text  # noqa: F401

LABELS = OUTCOME_LABELS

CSS = """
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2327;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #dde1e6;padding-bottom:4px}
p.lead{color:#50575e;margin:4px 0 16px;max-width:900px}
.meta{color:#646970;font-size:13px}
table{border-collapse:collapse;font-size:14px;background:#fff}
th,td{padding:5px 10px;border-bottom:1px solid #e6e8eb;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
thead th{background:#eef0f3;font-weight:600}
td.note{color:#646970;text-align:left;font-size:13px}
.views{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin:8px 0 16px}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px 16px}
.card h3{margin:0 0 6px;font-size:16px}.card .big{font-size:24px;font-weight:600}
.card .q{color:#50575e;font-size:14px;margin-top:4px}
.chart{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px;margin:12px 0;overflow-x:auto}
details{margin:8px 0}summary{cursor:pointer;color:#2271b1}
.assump td,.assump th{font-size:12.5px}.assump td:nth-child(4){text-align:left;max-width:520px;overflow-wrap:anywhere}
footer{color:#646970;font-size:12px;margin-top:32px}
"""


def cache_dir():
    """Where built artefacts are cached: ``$BILLSHAPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/billshape``, else
    ``~/.cache/billshape`` (None when no home directory is known)."""
    import os

    if os.environ.get("BILLSHAPE_CACHE_DIR"):
        return Path(os.environ["BILLSHAPE_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "billshape"
    try:
        return Path.home() / ".cache" / "billshape"
    except (RuntimeError, KeyError):  # pragma: no cover - no home directory
        return None


@lru_cache(maxsize=1)
def _js_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed bundled into one script (no network).

    Building it takes seconds, so it is cached on disk per vl-convert version (see :func:`cache_dir`); an
    unwritable or unreadable cache only means it is built again.
    """
    import os

    from billshape._extras import require

    vlc = require("report", "vl_convert", "the HTML report")
    version = getattr(vlc, "__version__", None)
    folder = cache_dir()
    path = folder / f"vega-bundle-vl-convert-{version}.js" if folder is not None and version else None
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    bundle = vlc.javascript_bundle()
    if path is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(bundle, encoding="utf-8")
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the whole new one
        except OSError:
            pass
    return bundle


_fmt = plan_value  # the plan outcome formatter, shared with the CLI and the app


def _summary_table(res) -> str:
    rows = []
    for key, q in list(res.summary.items()) + list(res.lifetime.items()):
        label, note = LABELS.get(key, (key, ""))
        rows.append(f"<tr><td>{html.escape(label)}</td>" + "".join(
            f"<td>{html.escape(_fmt(key, q[p]))}</td>" for p in ("p10", "p50", "p90"))
            + f"<td class='note'>{html.escape(note)}</td></tr>")
    return ("<table><thead><tr><th>outcome</th><th>P10</th><th>P50</th><th>P90</th><th></th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _views(res) -> str:
    c = res.summary["contribution_margin_per_user_month_usd"]
    f = res.summary["fully_loaded_margin_per_user_month_usd"]
    k1, k2 = "contribution_margin_per_user_month_usd", "fully_loaded_margin_per_user_month_usd"
    return f"""<div class="views">
<div class="card"><h3>Contribution margin per user-month (marginal view)</h3>
<div class="big">{_fmt(k1, c['p50'])}</div><div>P10 {_fmt(k1, c['p10'])} &middot; P90 {_fmt(k1, c['p90'])}</div>
<div class="q"><b>Answers:</b> do I make or lose money on one more user? Revenue minus what that user adds:
inference and other variable costs. Training is a fixed cost and is left out, as unit economics does.</div></div>
<div class="card"><h3>Fully loaded margin per user-month</h3>
<div class="big">{_fmt(k2, f['p50'])}</div><div>P10 {_fmt(k2, f['p10'])} &middot; P90 {_fmt(k2, f['p90'])}</div>
<div class="q"><b>Answers:</b> do the users pay for the whole business, model included? Also charges fixed
costs (staff, monitoring, on-call, ...) and the amortised training and self-hosting set-up to the users.</div></div>
</div>"""


def _assumptions(res) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            a.name, _short(a.value), a.unit or "", a.source, a.as_of or "")) + "</tr>" for a in res.assumptions)
    return ("<table class='assump'><thead><tr><th>name</th><th>value</th><th>unit</th><th>source</th><th>as_of</th>"
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _short(v) -> str:
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def _monthly(res) -> str:
    cols = ["month", "users", "revenue_usd", "inference_usd", "fixed_usd", "training_amortization_usd",
            "contribution_usd", "fully_loaded_profit_usd", "cash_flow_usd", "cumulative_cash_usd"]
    head = "".join(f"<th>{c.replace('_usd', '').replace('_', ' ')}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{int(r[c]) if c == 'month' else f'{r[c]:,.0f}'}</td>" for c in cols) + "</tr>" for r in res.monthly)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(res) -> str:
    """The report as one HTML string (charts and their JavaScript inline; opens offline)."""
    specs = {name: chart.to_dict() for name, chart in charts(res).items()}
    captions = {
        "cost_stack": "Cost stack over time",
        "margin_per_user": "Margin per user: both views side by side",
        "cumulative_cash": "Cumulative cash",
        "payback": "Payback distribution",
        "tornado": "Sensitivity (tornado)",
        "build_vs_buy": "Build vs buy",
    }
    divs = "".join(f"<h2>{captions.get(n, n)}</h2><div class='chart' id='chart-{n}'></div>" for n in specs)
    unc = ", ".join(res.uncertain_inputs) or "none (a deterministic plan: P10 = P50 = P90)"
    never = res.probability_never_pays_back
    system = system_share_text(res.summary.get("system_share_of_lifetime_cost"))
    system_p = f"<p class='lead'>The model against the system: {html.escape(system)}.</p>" if system else ""
    bvb = ""
    if res.build_vs_buy:
        bvb = f"<p class='lead'>{html.escape(res.build_vs_buy['explanation'])}.</p>"
    payload = json.dumps(specs, allow_nan=False).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(res.name)} - billshape plan</title><style>{CSS}</style>
<script>{_js_bundle()}</script></head>
<body><main>
<div class="meta">billshape plan &middot; {html.escape(res.source)} &middot; {samples_text(res.samples)} (seed {res.seed})
&middot; {res.horizon_months} months</div>
<h1>{html.escape(res.name)}</h1>
<p class="lead">{html.escape(res.description)}</p>
<h2>Summary</h2>
{_views(res)}
{_summary_table(res)}
{system_p}
<p class="meta">Never pays back within the horizon in {share_text(never)} of {samples_text(res.samples)}. Uncertain inputs: {html.escape(unc)}.</p>
{bvb}
{divs}
<h2>Assumptions and sources</h2>
{_assumptions(res)}
<details><summary>Monthly P50 rows (per-month medians; they do not add up across columns)</summary>{_monthly(res)}</details>
<footer>Generated by billshape. Charts: Vega-Lite, embedded inline (no network needed).</footer>
</main>
<script>
const specs = {payload};
for (const [name, spec] of Object.entries(specs)) {{
  vegaEmbed('#chart-' + name, spec, {{actions: false, renderer: 'svg'}}).catch(err => {{
    document.getElementById('chart-' + name).textContent = 'chart failed to render: ' + err;
  }});
}}
</script>
</body></html>
"""


def write_html(res, path: str | Path) -> Path:
    """Write the report to ``path`` and return it."""
    from billshape.errors import BillshapeInputError

    p = Path(path)
    try:
        if p.parent and not p.parent.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(to_html(res), encoding="utf-8")
    except OSError as exc:
        raise BillshapeInputError("report", str(path), "a writable file path", type(exc).__name__) from None
    return p


def write_pngs(res, directory: str | Path, scale: float = 2.0) -> list[Path]:
    """Write each chart as ``<directory>/<chart>.png`` through vl-convert; return the paths."""
    from billshape._extras import require
    from billshape.errors import BillshapeInputError

    vlc = require("report", "vl_convert", "billshape plan's PNG charts")
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BillshapeInputError("png", str(directory), "a writable directory", type(exc).__name__) from None
    out = []
    for name, chart in charts(res).items():
        png = vlc.vegalite_to_png(chart.to_dict(), scale=scale)
        path = d / f"{name}.png"
        path.write_bytes(png)
        out.append(path)
    return out
