r"""Traffic over the hours of a week and the whole replicas it needs (vectorised).

Traffic is a mean rate with an hourly shape. The shape is the shipped week ``data/demand_week.csv`` (or a
``demand`` file in the same format): :math:`s_h = d_h / \bar d` has mean 1, and its peak-to-mean ratio
:math:`X_0 = \max_h s_h` is the default ``peak_to_mean``. Another ratio :math:`X` reshapes it: toward flat
(:math:`X < X_0`) by :math:`s'_h = 1 + (s_h - 1)(X - 1)/(X_0 - 1)`, and spikier (:math:`X > X_0`) by a power
:math:`s'_h \propto s_h^k` with :math:`k` solved so that :math:`\max s' / \overline{s'} = X`; both keep every hour
>= 0 and the mean at 1.

A fleet of replicas that each serve :math:`c` requests/s at the service level needs, in hour :math:`h`,

.. math::

    N_h = \max(N_{min}, \lceil \lambda_h / c \rceil), \qquad N_{peak} = \max_h N_h

replicas (whole ones: a replica is ``tp`` GPUs holding one copy of the weights).

References
----------
.. [1] Harchol-Balter, *Performance Modeling and Design of Computer Systems*, Cambridge University Press 2013,
       ch. 2 (capacity provisioning for the peak of a time-varying arrival rate).
.. [2] billshape seed 003, section 37.4 (spiky demand: reserved capacity for the peak wastes the trough).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError
from billshape.results import Assumption, derived, user

SHIPPED_PROFILE = "example-week"
#: the largest peak-to-mean ratio accepted (a profile whose peak is a tenth of the week's hours' mean... x10)
MAX_PEAK_TO_MEAN = 10.0


@lru_cache(maxsize=None)
def _shipped() -> tuple[np.ndarray, np.ndarray, str, str | None]:
    from billshape.catalog import read_rows
    from billshape.decide_capacity import read_demand

    _, gpus, intr = read_demand(SHIPPED_PROFILE)
    row = read_rows("demand_week.csv")[0]
    return gpus, intr, row.get("source", ""), row.get("as_of") or None


def profile(demand=None, field: str = "demand") -> tuple[np.ndarray, np.ndarray, Assumption]:
    """An hourly profile ``(load, interruptible share, its assumption)``: the ``demand`` file (hour,gpus
    [,interruptible_gpus], :func:`billshape.decide_capacity.read_demand`) or the shipped week."""
    from billshape.decide_capacity import read_demand

    if demand is None:
        gpus, intr, source, as_of = _shipped()
        a = Assumption(name="hourly traffic shape", value=f"{SHIPPED_PROFILE} ({gpus.size} h)", unit=None,
                       source=f"data/demand_week.csv: {source}", as_of=as_of)
    else:
        _, gpus, intr = read_demand(demand, field)
        a = user("hourly traffic shape", f"{gpus.size} h", None, field)
    if float(gpus.sum()) <= 0:
        raise BillshapeInputError(field, "all hours 0", "an hourly profile with some demand")
    # the shipped week's interruptible column is batch work, not serving traffic: it only shapes the load
    share = (np.zeros_like(gpus, dtype=float) if demand is None
             else np.where(gpus > 0, intr / np.where(gpus > 0, gpus, 1.0), 0.0))
    return np.asarray(gpus, dtype=float), share, a


def peak_to_mean_of(load) -> float:
    """Peak-to-mean ratio of an hourly load [unitless] (>= 1)."""
    d = np.asarray(load, dtype=float)
    return float(d.max() / d.mean())


def default_peak_to_mean() -> tuple[float, Assumption]:
    """The shipped week's peak-to-mean ratio and its assumption (data/demand_week.csv)."""
    gpus, _, source, as_of = _shipped()
    x = peak_to_mean_of(gpus)
    return x, Assumption(name="peak to mean", value=x, unit="x", source=f"computed: max / mean of the hourly "
                         f"GPUs of data/demand_week.csv ({source})", as_of=as_of)


def reshape(load, peak_to_mean: float, field: str = "peak_to_mean") -> np.ndarray:
    """The hourly shape of ``load`` (mean 1) with peak-to-mean ratio ``peak_to_mean`` (see the module docstring)."""
    v.positive(field, peak_to_mean, MAX_PEAK_TO_MEAN)
    x = float(peak_to_mean)
    s = np.asarray(load, dtype=float) / float(np.mean(load))
    x0 = float(s.max())
    ceiling = s.size / int(np.sum(s >= x0 * (1 - 1e-12)))  # all the week's load in its peak hours
    if x < 1:
        raise BillshapeInputError(field, peak_to_mean, f">= 1 and <= {min(MAX_PEAK_TO_MEAN, ceiling):.4g} (peak / mean)")
    if abs(x0 - 1) < 1e-12 or abs(x - x0) < 1e-12:
        return s if abs(x - x0) < 1e-12 else np.ones_like(s)
    if x < x0:
        return 1.0 + (s - 1.0) * (x - 1.0) / (x0 - 1.0)
    if x >= ceiling:
        raise BillshapeInputError(field, peak_to_mean, f"< {ceiling:.4g}: the shape's peak hours would carry the whole week")
    lo, hi = 1.0, 2.0
    while peak_to_mean_of(s ** hi) < x:
        lo, hi = hi, hi * 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if peak_to_mean_of(s ** mid) < x else (lo, mid)
    out = s ** (0.5 * (lo + hi))
    return out / out.mean()


def replicas_needed(requests_per_second_by_hour, replica_requests_per_second, min_replicas: float = 1.0):
    """Whole replicas per hour :math:`\\max(N_{min}, \\lceil \\lambda_h / c \\rceil)` (vectorised).

    Parameters
    ----------
    requests_per_second_by_hour : array_like, shape (hours,)
        Arrival rate in each hour [requests/s].
    replica_requests_per_second : array_like, shape (options,)
        What one replica serves at the service level [requests/s], > 0.
    min_replicas : float
        Replicas kept in every hour [count].

    Returns
    -------
    numpy.ndarray, shape (options, hours)
        Replicas [count].
    """
    lam = np.asarray(requests_per_second_by_hour, dtype=float)[None, :]
    c = np.asarray(replica_requests_per_second, dtype=float)[:, None]
    # a hair of tolerance: 10 requests/s on replicas of exactly 1 request/s is 10 replicas, not 11
    need = np.ceil(lam / c * (1.0 - 1e-12))
    return np.maximum(need, float(min_replicas))


def traffic(*, requests_per_second=None, tokens_per_month=None, peak_to_mean=None, demand=None,
            input_tokens: float, output_tokens: float, hours_per_month: float):
    """Hourly requests/s, interruptible share and assumptions from the traffic fields.

    ``requests_per_second`` (mean) or ``tokens_per_month`` (input + output tokens; mean requests/s =
    T / ((I + O) x hours per month x 3600)) fixes the mean; the shape is ``demand`` or the shipped week,
    reshaped to ``peak_to_mean`` when given. A ``demand`` file alone gives requests/s hour by hour.
    """
    assumptions: list[Assumption] = []
    if requests_per_second is not None and tokens_per_month is not None:
        raise BillshapeInputError("requests_per_second/tokens_per_month", f"{requests_per_second}/{tokens_per_month}",
                                  "one of `requests_per_second` or `tokens_per_month`, not both")
    load, share, shape_a = profile(demand)
    assumptions.append(shape_a)
    if requests_per_second is None and tokens_per_month is None:
        if demand is None:
            raise BillshapeInputError("requests_per_second", None, "a traffic: `requests_per_second` R or "
                                      "`tokens_per_month` T (with `peak_to_mean`), or an hourly `demand` file")
        if peak_to_mean is not None:
            raise BillshapeInputError("peak_to_mean", peak_to_mean, "with `requests_per_second` or `tokens_per_month` "
                                      "(a `demand` file alone has its own peak)")
        assumptions.append(user("requests per second by hour", "the demand file's gpus column", "requests/s", "demand"))
        return load, share, assumptions
    if requests_per_second is not None:
        v.positive("requests_per_second", requests_per_second, v.MAX_COUNT)
        mean = float(requests_per_second)
        assumptions.append(user("mean request rate", mean, "requests/s", "requests_per_second"))
    else:
        v.positive("tokens_per_month", tokens_per_month, v.MAX_TOKENS)
        mean = float(tokens_per_month) / ((input_tokens + output_tokens) * hours_per_month * 3600.0)
        assumptions += [user("tokens per month", float(tokens_per_month), "tokens (input + output)", "tokens_per_month"),
                        derived("mean request rate", mean, "requests/s",
                                "tokens per month / ((input + output tokens) x hours per month x 3600)")]
    if peak_to_mean is None:
        if demand is None:
            x, a = default_peak_to_mean()
            assumptions.append(a)
            shape = load / load.mean()
        else:
            shape = load / load.mean()
            assumptions.append(derived("peak to mean", peak_to_mean_of(load), "x", "max / mean of the demand file"))
    else:
        shape = reshape(load, peak_to_mean)
        assumptions.append(user("peak to mean", float(peak_to_mean), "x", "peak_to_mean"))
    return mean * shape, share, assumptions
