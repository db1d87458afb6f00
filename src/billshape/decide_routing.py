"""Model ladders and routing: the cheapest model that clears a quality bar, and cascades across a ladder.

Re-exported by :mod:`billshape.decide`.
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError, unknown_name
from billshape.results import Result, derived, user
from billshape.io import SHIPPED_LADDERS, read_input_text

# --------------------------------------------------------------------------------------------- ladders
class LadderChoice(Result):
    """The cheapest model that clears a quality bar, and optionally a cascade, against the largest model."""

    quality_bar: float
    chosen: str | None  # None when no single model clears the bar but the cascade (`cascade`) does
    usd_per_request: float | None
    quality: float | None
    largest: str
    largest_usd_per_request: float
    largest_quality: float
    saving_vs_largest: float | None
    recommendation: str  # "model" (chosen) or "cascade" (no single model clears the bar; the cascade does)
    candidates: list
    cascade: dict | None = None
    explanation: str


def read_ladder(path, field: str = "ladder") -> dict:
    """Read a model ladder YAML: ``source``, ``as_of`` and ``models: [{name, quality, usd_per_request,
    [rejection_rate], [accepted_quality]}]``.

    ``path``: a path, the YAML text, bytes, a file object or a shipped name (:func:`billshape.io.read_source`).
    """
    import yaml

    text, label = read_input_text(path, field, SHIPPED_LADDERS, "a readable YAML file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BillshapeInputError(field, label, "valid YAML", str(exc).splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or not data["models"]:
        raise BillshapeInputError(f"{field} models", label, "a non-empty list under 'models'")
    models = []
    for i, m in enumerate(data["models"]):
        where = f"models[{i}]"
        if not isinstance(m, dict) or "name" not in m:
            raise BillshapeInputError(where, m, "a mapping with name, quality, usd_per_request")
        entry = {"name": str(m["name"])}
        for key, check in (("quality", v.unit_interval), ("usd_per_request", v.positive),
                           ("rejection_rate", v.unit_interval), ("accepted_quality", v.unit_interval)):
            if key not in m:
                if key in ("quality", "usd_per_request"):
                    raise BillshapeInputError(f"{where}.{key}", None, "a number")
                continue
            try:
                val = float(m[key])
            except (TypeError, ValueError):
                raise BillshapeInputError(f"{where}.{key}", m[key], "a number") from None
            check(f"{where}.{key}", val)
            entry[key] = val
        models.append(entry)
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):
        raise BillshapeInputError(f"{field} models", names, "distinct model names")
    return {"source": str(data.get("source", f"user ladder {label}")), "as_of": data.get("as_of"), "models": models,
            "quality_metric": str(data.get("quality_metric", "quality"))}


def cascade_cost_quality(usd_per_request, quality, rejection_rate, accepted_quality=None):
    r"""Expected cost and quality per request of a cascade tried cheapest first (vectorised over the last axis).

    Request reaches step ``i`` with probability :math:`P_i = \prod_{j<i} r_j`; it pays each step it
    reaches. Step ``i`` accepts a share ``1 - r_i`` of what reaches it with accuracy ``a_i``; the last
    step answers everything at its own quality.

    Parameters
    ----------
    usd_per_request, quality, rejection_rate : array_like, shape (..., steps)
        Per-step cost [USD/request], quality [fraction] and rejection (escalation) rate [fraction].
    accepted_quality : array_like, optional
        Quality of the answers a step accepts [fraction] (default: its overall quality).

    Returns
    -------
    tuple of numeric
        ``(usd_per_request, quality)`` of the cascade.

    References
    ----------
    .. [1] Chen, Zaharia and Zou, "FrugalGPT", arXiv:2305.05176, 2023 (LLM cascade).
    """
    c = np.asarray(usd_per_request, dtype=float)
    q = np.asarray(quality, dtype=float)
    r = np.asarray(rejection_rate, dtype=float).copy()
    a = q if accepted_quality is None else np.asarray(accepted_quality, dtype=float)
    r[..., -1] = 0.0  # the last step answers everything
    reach = np.concatenate([np.ones_like(r[..., :1]), np.cumprod(r[..., :-1], axis=-1)], axis=-1)
    a = np.concatenate([a[..., :-1], q[..., -1:]], axis=-1)
    return np.sum(reach * c, axis=-1), np.sum(reach * (1 - r) * a, axis=-1)


def usd_text(usd: float) -> str:
    """A small dollar amount without exponent: ``$0.0000173``, ``$0.000218``, ``$1.50``."""
    if usd >= 0.01 or usd == 0:
        return f"${usd:,.2f}" if usd >= 1 or usd == 0 else f"${usd:.4g}"
    return "$" + np.format_float_positional(usd, precision=3, unique=False, fractional=False, trim="-")


def route(ladder: dict, quality_bar: float, cascade: bool = False, cascade_only: bool = False) -> LadderChoice:
    """Cheapest model of a ladder that clears ``quality_bar``; with ``cascade``, also the cascade of the
    models that give a ``rejection_rate`` (cheapest first) ending on the most expensive model.

    When no single model clears the bar it is an error (naming the best model's quality), except with
    ``cascade`` and ``cascade_only`` (what ``billshape route --cascade`` does): then the answer is the cascade
    if it clears the bar (``chosen=None``, ``recommendation="cascade"``), else an error."""
    v.unit_interval("quality_bar", quality_bar)
    models = sorted(ladder["models"], key=lambda m: m["usd_per_request"])
    largest = models[-1]
    clear = [m for m in models if m["quality"] >= quality_bar]
    best = max(models, key=lambda m: m["quality"])
    if not clear and not (cascade and cascade_only):
        raise BillshapeInputError("quality_bar", quality_bar,
                                  f"<= {best['quality']:g} (the best model in the ladder, {best['name']})",
                                  "no single model clears the bar; a cascade (`cascade`) may")
    chosen = clear[0] if clear else None
    row = {"source": ladder["source"], "as_of": ladder.get("as_of")}
    from billshape.results import Assumption

    assumptions = [user("quality bar", float(quality_bar), ladder["quality_metric"], "quality_bar")] + [
        Assumption(name=f"{m['name']} quality / USD per request", value=f"{m['quality']:g} / {usd_text(m['usd_per_request'])}",
                   unit=None, source=row["source"], as_of=str(row["as_of"]) if row["as_of"] else None)
        for m in models
    ]
    out_cascade = None
    if cascade:
        steps = [m for m in models if "rejection_rate" in m and m is not largest] + [largest]
        if len(steps) < 2:
            raise BillshapeInputError("cascade", ladder["source"],
                                      "a ladder where at least one model cheaper than the largest gives rejection_rate")
        cost, qual = cascade_cost_quality([m["usd_per_request"] for m in steps], [m["quality"] for m in steps],
                                          [m.get("rejection_rate", 0.0) for m in steps],
                                          [m.get("accepted_quality", m["quality"]) for m in steps])
        cost, qual = float(cost), float(qual)
        reach = np.concatenate([[1.0], np.cumprod([m.get("rejection_rate", 0.0) for m in steps[:-1]])])
        out_cascade = {"steps": [m["name"] for m in steps], "usd_per_request": cost, "quality": qual,
                       "clears_bar": bool(qual >= quality_bar), "saving_vs_largest": 1 - cost / largest["usd_per_request"],
                       "share_reaching_step": [float(x) for x in reach]}
    if chosen is None and not out_cascade["clears_bar"]:
        raise BillshapeInputError("quality_bar", quality_bar,
                                  f"<= {max(best['quality'], out_cascade['quality']):.4g} (the best of the ladder's "
                                  f"models, {best['name']}, and of the cascade)", "neither a model nor the cascade "
                                  "clears the bar")
    cascade_text = ""
    if out_cascade:
        cascade_text = (f"the cascade {' -> '.join(out_cascade['steps'])} costs "
                        f"{usd_text(out_cascade['usd_per_request'])}/request at {out_cascade['quality']:.4g} "
                        f"({'clears' if out_cascade['clears_bar'] else 'misses'} the bar)")
    if chosen is not None:
        saving = 1 - chosen["usd_per_request"] / largest["usd_per_request"]
        text = (f"{chosen['name']} is the cheapest model with {ladder['quality_metric']} >= {quality_bar:g} "
                f"({chosen['quality']:g} at {usd_text(chosen['usd_per_request'])}/request): {saving:.1%} cheaper "
                f"than always using {largest['name']}" + (f"; {cascade_text}" if cascade_text else ""))
    else:
        saving = None
        text = (f"no single model clears {ladder['quality_metric']} >= {quality_bar:g} (the best, {best['name']}, "
                f"reaches {best['quality']:g}), but {cascade_text}: use the cascade, "
                f"{out_cascade['saving_vs_largest']:.1%} cheaper than always using {largest['name']}")
    return LadderChoice(
        quality_bar=float(quality_bar), chosen=chosen["name"] if chosen else None,
        usd_per_request=chosen["usd_per_request"] if chosen else None,
        quality=chosen["quality"] if chosen else None, largest=largest["name"],
        largest_usd_per_request=largest["usd_per_request"], largest_quality=largest["quality"],
        saving_vs_largest=saving, recommendation="model" if chosen else "cascade",
        candidates=[{"name": m["name"], "quality": m["quality"], "usd_per_request": m["usd_per_request"],
                     "clears_bar": m["quality"] >= quality_bar} for m in models],
        cascade=out_cascade, explanation=text, assumptions=assumptions,
    )
