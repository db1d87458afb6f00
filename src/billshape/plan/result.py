"""A plan's result: P10 / P50 / P90 outcomes, monthly rows, tornado, build vs buy; for the CLI and for notebooks.

:class:`PlanResult` is what :meth:`billshape.plan.model.Plan.evaluate` returns. ``to_dict()`` is the CLI's
``--json`` object (``monthly`` a list of per-month median rows). In a notebook it renders its headline first
(``_repr_html_``: payback, NPV and both margins as P10 / P50 / P90, then the probability of never paying back,
then the details and assumptions) and converts to pandas: :meth:`PlanResult.to_pandas` (outcomes x P10 / P50 /
P90), :meth:`PlanResult.monthly_frame` and :meth:`PlanResult.assumptions_frame`. :data:`LABELS` and
:func:`format_outcome` are the outcome labels and number formats the CLI table and the HTML report use too.
pandas is imported only by the methods that return frames.
"""

from __future__ import annotations

from billshape.present.format import OUTCOME_LABELS, plan_value

import html
import math
from typing import Any

from pydantic import PrivateAttr

from billshape.plan.quantiles import MONTHLY_RESERVOIR
from billshape.results import Result

LABELS = OUTCOME_LABELS  # outcome key -> (label, note): one table, in billshape.present.format
HEADLINE = ["payback_month", "npv_usd", "contribution_margin_per_user_month_usd",
            "fully_loaded_margin_per_user_month_usd"]


def outcome_unit(key: str) -> str:
    """The unit of an outcome, from its key."""
    if key == "payback_month":
        return "months"
    if key in ("training_share_of_lifetime_cost", "system_share_of_lifetime_cost"):
        return "fraction"
    if key.endswith("_per_user_month_usd"):
        return "USD per user-month"
    return "USD"


format_outcome = plan_value  # an outcome as the CLI, the report and the notebook show it


class PlanResult(Result):
    """A product plan's P10/P50/P90 outcomes, monthly P50 rows, tornado and build-vs-buy data."""

    name: str
    description: str = ""
    source: str = ""
    horizon_months: int
    samples: int
    seed: int
    uncertain_inputs: list[str]
    summary: dict[str, dict[str, float | None]]
    lifetime: dict[str, dict[str, float | None]]
    probability_never_pays_back: float
    monthly: list[dict[str, int | float]]  # month: int
    sensitivity: list[dict[str, Any]]
    build_vs_buy: dict[str, Any] | None = None
    as_of: str | None = None  # the pricing date (ISO): as_of:, serving.api_prices_as_of or the shipped default

    _bands: list[dict[str, float]] = PrivateAttr(default_factory=list)
    _payback_samples: list[float | None] = PrivateAttr(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["monthly_note"] = ("monthly rows are per-month medians over the first "
                                f"{min(self.samples, MONTHLY_RESERVOIR):,} samples (medians do not add up across columns)")
        data["assumptions"] = data.pop("assumptions")
        return data

    # -- notebooks ------------------------------------------------------------------------------------------
    def outcomes(self) -> dict[str, dict[str, float | None]]:
        """Every outcome's P10 / P50 / P90 (``summary`` then ``lifetime``), by key."""
        return {**self.summary, **self.lifetime}

    def to_pandas(self):
        """The outcomes as a DataFrame: one row per outcome (indexed by its label, as in ``billshape plan``'s
        table; the key in column ``key``), columns ``P10``, ``P50``, ``P90`` and ``unit``. A payback that never
        comes within the horizon is ``inf``; an outcome without a value (no cost at all) is ``NaN``."""
        import pandas as pd

        rows = []
        for key, q in self.outcomes().items():
            none = math.inf if key == "payback_month" else math.nan
            rows.append({"outcome": LABELS.get(key, (key, ""))[0], "key": key,
                         **{p.upper(): (none if q[p] is None else q[p]) for p in ("p10", "p50", "p90")},
                         "unit": outcome_unit(key)})
        frame = pd.DataFrame(rows, columns=["outcome", "P10", "P50", "P90", "unit", "key"]).set_index("outcome")
        frame.attrs["probability_never_pays_back"] = self.probability_never_pays_back
        frame.attrs["samples"] = self.samples
        return frame

    def monthly_frame(self):
        """The monthly rows (per-month medians over the first samples, as ``to_dict()["monthly"]``) as a
        DataFrame indexed by month."""
        import pandas as pd

        return pd.DataFrame(self.monthly).set_index("month")

    def assumptions_frame(self):
        """The assumptions as a DataFrame with columns ``name``, ``value``, ``unit``, ``source``, ``as_of``."""
        import pandas as pd

        return pd.DataFrame([a.model_dump() for a in self.assumptions],
                            columns=["name", "value", "unit", "source", "as_of"], dtype=object)  # None stays None

    def _repr_html_(self) -> str:
        esc = html.escape

        def table(keys) -> str:
            out = self.outcomes()
            rows = "".join(
                f"<tr><td style='text-align:left'>{esc(LABELS.get(k, (k, ''))[0])}</td>"
                + "".join(f"<td>{esc(format_outcome(k, out[k][p]))}</td>" for p in ("p10", "p50", "p90")) + "</tr>"
                for k in keys if k in out)
            return ("<table><thead><tr><th style='text-align:left'>outcome</th><th>P10</th><th>P50</th><th>P90</th>"
                    f"</tr></thead><tbody>{rows}</tbody></table>")

        samples = f"{self.samples:,} sample{'' if self.samples == 1 else 's'}"
        never = self.probability_never_pays_back
        never_text = (f"<p>never pays back within {self.horizon_months} months in <b>{never:.1%}</b> of samples</p>"
                      if self.samples > 1 else
                      f"<p>{'never pays back' if never else 'pays back'} within {self.horizon_months} months</p>")
        rest = [k for k in self.outcomes() if k not in HEADLINE]
        arows = "".join("<tr>" + "".join(f"<td style='text-align:left'>{esc('' if x is None else str(x))}</td>"
                                         for x in (a.name, a.value, a.unit, a.source, a.as_of)) + "</tr>"
                        for a in self.assumptions)
        extra = ""
        if self.sensitivity:
            top = ", ".join(esc(r["input"]) for r in self.sensitivity[:3])
            extra += f"<p>moves the NPV most: {top}</p>"
        if self.build_vs_buy:
            extra += f"<p>build vs buy: {esc(self.build_vs_buy['explanation'])}</p>"
        return (
            f"<b>{esc(self.name)}</b> <span>({samples}, seed {self.seed}, {self.horizon_months} months)</span>"
            f"{table(HEADLINE)}{never_text}"
            f"<details><summary>details and assumptions ({len(self.assumptions)})</summary>"
            f"{table(rest)}{extra}"
            "<table><thead><tr><th>name</th><th>value</th><th>unit</th><th>source</th><th>as_of</th></tr></thead>"
            f"<tbody>{arows}</tbody></table></details>"
        )
