"""The train chain: :class:`~billshape.chains.requests.TrainRequest` -> :class:`~billshape.estimates.TrainingBill`."""

from __future__ import annotations

from billshape.chains.requests import TrainRequest


def run(req: TrainRequest):
    """The training bill of the run the request describes (rental or amortised), with its development iceberg."""
    from billshape.estimates import training_bill

    return training_bill(**req.model_dump())
