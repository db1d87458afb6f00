r"""Inference unit cost: pure, vectorised equations.

The seed equation (billshape seed 003, "The Economics of AI", section 37.2):

.. math::

    \text{cost per token} \approx \frac{\text{accelerator \$/hour}}{\text{throughput (tokens/hour)} \times
    \text{utilization}}

Throughput is an input here; the serving model (roofline) computes it from the architecture and hardware.
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v

SECONDS_PER_HOUR = 3600.0


def deployment_usd_per_hour(usd_per_gpu_hour, gpus):
    """Hourly price of a deployment: price per GPU-hour x GPUs.

    Parameters
    ----------
    usd_per_gpu_hour : numeric
        Rental price [USD/GPU-hour].
    gpus : numeric
        Accelerators in the deployment [count].

    Returns
    -------
    numeric
        Deployment price [USD/h].
    """
    v.positive("usd_per_gpu_hour", usd_per_gpu_hour)
    v.positive("gpus", gpus)
    return np.asarray(usd_per_gpu_hour, dtype=float) * np.asarray(gpus, dtype=float)


def usd_per_token(usd_per_hour, tokens_per_hour, utilization=1.0):
    r"""Cost of one token: :math:`c = \$/h \,/\, (\text{tokens/h} \times u)`.

    Parameters
    ----------
    usd_per_hour : numeric
        Price of the deployment [USD/h].
    tokens_per_hour : numeric
        Throughput of the deployment at full load [tokens/h].
    utilization : numeric
        Share of paid hours the deployment serves at that throughput, in (0, 1] [unitless].

    Returns
    -------
    numeric
        Cost [USD/token].

    References
    ----------
    .. [1] billshape seed 003, section 37.2 (inference unit cost equation).
    """
    v.positive("usd_per_hour", usd_per_hour)
    v.positive("tokens_per_hour", tokens_per_hour)
    v.fraction("utilization", utilization)
    return np.asarray(usd_per_hour, dtype=float) / (
        np.asarray(tokens_per_hour, dtype=float) * np.asarray(utilization, dtype=float)
    )


def usd_per_million_tokens(usd_per_hour, tokens_per_second, utilization=1.0):
    """Cost of a million tokens from a deployment's price and its throughput in tokens/s.

    Parameters
    ----------
    usd_per_hour : numeric
        Price of the deployment [USD/h].
    tokens_per_second : numeric
        Throughput of the whole deployment [tokens/s].
    utilization : numeric
        In (0, 1] [unitless].

    Returns
    -------
    numeric
        Cost [USD per 1e6 tokens].

    Examples
    --------
    DeepSeek's inference node: 8 H800 at $2/GPU-hour decoding 14,800 tokens/s is about $0.30 per million
    output tokens:

    >>> round(float(usd_per_million_tokens(16.0, 14_800)), 3)
    0.3
    """
    v.positive("tokens_per_second", tokens_per_second)
    return usd_per_token(usd_per_hour, np.asarray(tokens_per_second, dtype=float) * SECONDS_PER_HOUR,
                         utilization) * 1e6
