"""Which terms of the disaggregated model move the published reproductions (docs/serving.md, "Disaggregated
prefill and decode"): each row switches off, or idealises, one term of billshape.serving_disagg and prints the
per-node figure and its error against the published one for every row of data/serving_deployments.csv.

    python benchmarks/disagg_ablation.py
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from unittest import mock

import numpy as np

from billshape import serving_disagg as sd


@contextmanager
def constants(**values):
    rows = dict(sd.disagg_constants())
    for k, v in values.items():
        rows[k] = rows[k].model_copy(update={"value": v})
    with mock.patch.object(sd, "disagg_constants", lambda: rows):
        yield


VARIANTS = {
    "as shipped (FP8 dispatch, per-node fabric copies in prefill, two micro-batches)": ({}, None, {}),
    "no two-batch overlap": ({}, None, {"two_batch_overlap": 0}),
    "BF16 dispatch (no FP8)": ({"ep_dispatch_bytes_per_value": 2.0}, None, {}),
    "one fabric copy per destination GPU (no node dedup)": ({}, "flat", {}),
    "none of the three (the plain roofline)": ({"ep_dispatch_bytes_per_value": 2.0}, "flat", {"two_batch_overlap": 0}),
    # the pipeline at full overlap, the kernels still at two micro-batches' tokens (overlap_micro_batch_tokens)
    "full overlap (max of computation and communication)": ({}, "full", {}),
}


def _full_overlap(compute_seconds, communication_seconds, micro_batches=2.0):
    return np.maximum(compute_seconds, communication_seconds)


def main() -> None:
    deps = sd.deployments()
    print("| variant | " + " | ".join(d.id for d in deps) + " |")
    print("|---|" + "---|" * len(deps))
    for label, (consts, flat, update) in VARIANTS.items():
        cells = []
        for d in deps:
            flat_ctx = (mock.patch.object(sd, "hierarchical_internode_bandwidth", lambda bw, *a: bw)
                        if flat == "flat" else mock.patch.object(sd, "two_batch_overlap_seconds", _full_overlap)
                        if flat == "full" else nullcontext())
            with constants(**consts), flat_ctx:
                g = sd.reproduce(d.model_copy(update=update))
            cells.append(f"{g['modeled']:,.0f} ({g['error']:+.1%})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
