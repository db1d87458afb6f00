"""Reports of a product plan: Altair charts, one self-contained offline HTML file, PNGs through vl-convert.

A shell: it renders a :class:`billshape.plan.PlanResult` and does no arithmetic on the plan (binning the
payback samples into a histogram and sorting rows are presentation). The HTML file embeds the Vega,
Vega-Lite and Vega-Embed JavaScript (from ``vl_convert.javascript_bundle``) and the chart specs inline: it opens
offline and loads nothing from the network.
"""

from __future__ import annotations

from billshape._extras import check

check("report", "the HTML report")  # Altair and vl-convert: one line naming the [report] extra, not a traceback

from billshape.report.charts import charts  # noqa: E402
from billshape.report.html import to_html, write_html, write_pngs  # noqa: E402

__all__ = ["charts", "to_html", "write_html", "write_pngs"]
