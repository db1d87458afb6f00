"""Fit the serving model's efficiency parameters on the calibration cases (``data/serving_calibration.csv``).

Run: ``PYTHONPATH=src python benchmarks/fit_serving_efficiency.py``. Least squares on log(predicted/measured) over the
calibration cases only, with physical bounds; prints the fitted values and each case's error on the calibration and
the held-out validation set (``data/serving_validation.csv``), and the P10/P90 of measured/modeled throughput on the
validation set (the uncertainty band). Paste the values into ``data/serving_efficiency.csv``.
"""

from __future__ import annotations

import json

import numpy as np
from scipy.optimize import least_squares

from billshape import serving

NAMES = serving.EFFICIENCY_NAMES
#                       eta_bw, eta_c, t0 [s], all-reduce latency [s]
LOWER = np.array([0.3, 0.2, 0.0, 1e-6])
UPPER = np.array([1.0, 1.0, 0.02, 1e-4])
SCALE = np.array([1.0, 1.0, 1e-3, 1e-5])


#: compute efficiency is a prior, not fitted: the calibration cases are mostly memory bound and do not identify it
COMPUTE_EFFICIENCY_PRIOR = serving.efficiencies()["compute_efficiency"].value


def full(x):
    return np.array([x[0], COMPUTE_EFFICIENCY_PRIOR, x[1], x[2]])


def errors(x, cases):
    eff = dict(zip(NAMES, full(x) * SCALE))
    return np.array([np.log(serving.predict_case(c, eff)["predicted_per_gpu"] / c.measured_output_tokens_per_second_per_gpu)
                     for c in cases])


def table(cases, eff):
    rows = []
    for c in cases:
        p = serving.predict_case(c, eff)["predicted_per_gpu"]
        rows.append({"id": c.id, "model": c.model, "gpu": c.gpu, "measured": c.measured_output_tokens_per_second_per_gpu,
                     "predicted": round(p, 1), "error_pct": round(100 * (p / c.measured_output_tokens_per_second_per_gpu - 1), 1)})
    return rows


def main() -> None:
    cal = serving.cases("serving_calibration.csv")
    val = serving.cases("serving_validation.csv")
    keep = [0, 2, 3]
    x0 = (np.array([0.6, 0.5, 2e-3, 1e-5]) / SCALE)[keep]
    fit = least_squares(errors, x0, bounds=((LOWER / SCALE)[keep], (UPPER / SCALE)[keep]), args=(cal,))
    eff = dict(zip(NAMES, full(fit.x) * SCALE))
    out = {"fitted": {k: float(f"{v:.4g}") for k, v in eff.items()}}
    for name, cs in (("calibration", cal), ("validation", val)):
        rows = table(cs, eff)
        errs = np.abs([r["error_pct"] for r in rows])
        out[name] = {"mape_pct": round(float(errs.mean()), 1), "max_abs_pct": round(float(errs.max()), 1), "cases": rows}
    # uncertainty band: P10/P90 of measured/modeled throughput on the held-out validation set (not fitted on it)
    ratios = np.array([1.0 / (1.0 + r["error_pct"] / 100.0) for r in out["validation"]["cases"]])
    out["throughput_ratio_p10"] = round(float(np.percentile(ratios, 10)), 3)
    out["throughput_ratio_p90"] = round(float(np.percentile(ratios, 90)), 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
