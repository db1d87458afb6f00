"""Exact P10 / P50 / P90 of the Monte Carlo outcomes, fast: order statistics by selection, not sorting.

Every quantile equals ``np.quantile`` to the bit (``linear``; ``inverted_cdf`` for payback, with never paying
back as +inf). :func:`_quantiles` selects with one in-place partition (:func:`_select`, :func:`_linear_quantiles`);
on large runs the first :data:`MONTHLY_RESERVOIR` samples give each quantile a bracket (:func:`_brackets`), each
later chunk keeps only its candidates inside it (:func:`_gather`) and :func:`_from_brackets` selects among those
(sample-select), falling back to a full selection if a quantile falls outside its bracket.
:func:`_monthly_quantiles` gives the monthly percentile rows of a months x samples array. :func:`_check_finite`
refuses a chunk whose totals overflowed (an input too large) as an input error.
"""

from __future__ import annotations

import math

import numpy as np

from billshape.errors import BillshapeInputError

QUANTILES = (0.1, 0.5, 0.9)
MONTHLY_RESERVOIR = 20_000  # samples kept (the first ones drawn) for the monthly percentile rows and charts
BRACKET_MIN_REST = 4 * MONTHLY_RESERVOIR  # samples beyond the reservoir from which quantiles go by brackets
BRACKET_SIGMAS = 6.0  # a bracket's half-width in standard errors of the reservoir's quantile (miss: ~1e-9)


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


#: outcomes that are shares of a lifetime cost: NaN (no cost at all) is left out of their quantiles
SHARE_KEYS = ("training_share_of_lifetime_cost", "system_share_of_lifetime_cost")


def _quantiles(x: np.ndarray, horizon: int | None, overwrite: bool = False) -> dict[str, float | None]:
    """P10/P50/P90; for payback (``horizon`` given) never-paying samples count as +inf and show as ``None``.

    Exactly ``np.quantile`` (``linear`` method; ``inverted_cdf`` for payback) through one ``np.partition`` at
    the needed order statistics (``np.quantile`` partitions a copy per call: about 2x slower on 10^6 samples).
    ``overwrite`` lets it partition ``x`` in place.
    """
    x = np.asarray(x, dtype=float)
    if horizon is not None:
        big = np.where(np.isfinite(x), x, 1e300)
        q = _order_quantiles(big, "inverted_cdf")
        return {f"p{int(p * 100)}": (float(v) if v <= horizon else None) for p, v in zip(QUANTILES, q)}
    ok = np.isfinite(x)
    if not ok.all():
        x, overwrite = x[ok], True
    if x.size == 0:
        return {"p10": None, "p50": None, "p90": None}
    q = _order_quantiles(x if overwrite else x.copy(), "linear")
    return {f"p{int(p * 100)}": float(v) for p, v in zip(QUANTILES, q)}


def _order_quantiles(x: np.ndarray, method: str) -> list[float]:
    """``np.quantile(x, QUANTILES, method=method)`` for 1-d ``x`` by one in-place partition (``x`` is reordered)."""
    n = x.size
    if n == 1:
        return [float(x[0])] * len(QUANTILES)
    if method == "inverted_cdf":
        idx = [min(max(int(math.ceil(n * q)) - 1, 0), n - 1) for q in QUANTILES]
        _select(x, sorted(set(idx)))
        return [float(x[i]) for i in idx]
    return [float(v) for v in _linear_quantiles(x[None, :], QUANTILES)[:, 0]]


def _select(t: np.ndarray, kth: list[int]) -> None:
    """Partition ``t`` in place along its last axis at the sorted positions ``kth`` (as ``t.partition(kth)``),
    one position at a time on nested slices: numpy's partition at several positions at once is 5-10x slower."""
    if not kth:
        return
    mid = len(kth) // 2
    k = kth[mid]
    t.partition(k, axis=-1)
    _select(t[..., :k], kth[:mid])
    _select(t[..., k + 1:], [x - k - 1 for x in kth[mid + 1:]])


def _linear_quantiles(t: np.ndarray, qs) -> np.ndarray:
    """``np.quantile(t, qs, axis=1)`` (method ``linear``) of a 2-d ``t``, partitioned in place: shape (len(qs), rows).

    One ``partition`` at the lower order statistic of each quantile; the next one up is the minimum of the
    slice between it and the next (a pass far cheaper than a second selection). Interpolation as numpy's
    ``_lerp``, so the result is numpy's to the bit.
    """
    n = t.shape[1]
    pos = [q * (n - 1) for q in qs]
    lo = [int(math.floor(p)) for p in pos]
    kth = sorted(set(lo))
    _select(t, kth)
    nxt = {}
    for j, k in enumerate(kth):
        if k + 1 < n:
            end = kth[j + 1] + 1 if j + 1 < len(kth) else n
            nxt[k] = t[:, k + 1:end].min(axis=1)
    out = np.empty((len(qs), t.shape[0]))
    for j, (p, i) in enumerate(zip(pos, lo)):
        a = t[:, i]
        g = p - i
        if g == 0 or i + 1 >= n:
            out[j] = a
            continue
        b = nxt[i]
        diff = b - a
        out[j] = b - diff * (1.0 - g) if g >= 0.5 else a + diff * g
    return out


def _order_values(key: str, x: np.ndarray) -> np.ndarray:
    """The values whose order statistics give ``key``'s quantiles: never paying back as 1e300 (payback), the
    up-front spend negated (the cumulative cash at month 0), NaN (no cost at all: excluded) left as it is."""
    if key == "payback_month":
        return np.where(np.isfinite(x), x, 1e300)
    if key == "upfront_usd":
        return -np.asarray(x)
    return np.asarray(x)


def _brackets(values: np.ndarray) -> list[tuple[float, float]]:
    """For each of QUANTILES, bounds ``[lo, hi]`` that hold that quantile of the whole run with near certainty,
    from a sample of it (the reservoir): the sample's order statistics at ``q -/+ BRACKET_SIGMAS`` standard
    errors ``sqrt(q (1 - q) / R)`` (plus two ranks). Only a speed-up: :func:`_from_brackets` checks them."""
    v = np.sort(values[~np.isnan(values)])
    R = v.size
    out = []
    for q in QUANTILES:
        half = BRACKET_SIGMAS * math.sqrt(q * (1.0 - q) / max(R, 1)) + 2.0 / max(R, 1)
        i, j = math.floor((q - half) * R), math.ceil((q + half) * R)
        out.append((float(v[i]) if 0 <= i < R else -math.inf, float(v[j]) if 0 <= j < R else math.inf))
    return out


def _gather(x: np.ndarray, brackets: list[tuple[float, float]]) -> list[tuple[int, np.ndarray]]:
    """Per bracket: how many values lie below it, and the values inside it (NaN is neither)."""
    return [(int(np.count_nonzero(x < lo)), x[(x >= lo) & (x <= hi)]) for lo, hi in brackets]


def _from_brackets(key: str, x: np.ndarray, res_n: int, parts: list, brackets) -> list[float] | None:
    """``key``'s quantiles over all of ``x``, exactly as ``np.quantile`` (``inverted_cdf`` for payback with
    never = 1e300, ``linear`` over the non-NaN values otherwise), from the chunks' bracket candidates.

    Sample-select: every chunk counted the values below each quantile's bracket and kept those inside it (a few
    percent of the run). Where the count below is at most the wanted rank and the count below plus the
    candidates exceed it, the rank-th value of the run is the (rank - below)-th candidate: a selection over
    thousands of values instead of a partition of the million. The chunks of the reservoir (which set the
    brackets) are gathered here. ``None`` where a quantile falls outside its bracket (the caller then selects
    over all values).
    """
    parts = [_gather(_order_values(key, x[:res_n]), brackets)] + parts
    n = x.size if key not in SHARE_KEYS else int(np.count_nonzero(~np.isnan(x)))
    if n == 0:
        return []
    out = []
    for j, q in enumerate(QUANTILES):
        below = sum(p[j][0] for p in parts)
        cand = np.concatenate([p[j][1] for p in parts])
        if key == "payback_month":
            ranks = [min(max(int(math.ceil(n * q)) - 1, 0), n - 1)]
        else:
            pos = q * (n - 1)
            i = int(math.floor(pos))
            ranks = [i] + ([i + 1] if i + 1 < n and pos > i else [])
        if not (below <= ranks[0] and ranks[-1] < below + cand.size):
            return None
        local = [r - below for r in ranks]
        _select(cand, local)
        if len(ranks) == 1:
            out.append(float(cand[local[0]]))
            continue
        a, b = float(cand[local[0]]), float(cand[local[1]])
        g = pos - ranks[0]
        diff = b - a  # numpy's _lerp, to the bit
        out.append(b - diff * (1.0 - g) if g >= 0.5 else a + diff * g)
    return out


def _monthly_quantiles(t: np.ndarray, qs) -> np.ndarray:
    """``np.quantile(t, qs, axis=1)`` of a months x samples array (reordered in place), shape (3, months): rows
    of QUANTILES, or with ``qs == (0.5,)`` the median in the middle row and zeros around it.

    A month whose row equals an earlier month's (a fixed cost, an amortisation share, a month without
    retraining) is not selected again.
    """
    H = t.shape[0]
    rep = np.arange(H)
    seen: dict[bytes, list[int]] = {}
    for m in range(H):
        fp = t[m, :8].tobytes()
        for c in seen.get(fp, ()):
            if np.array_equal(t[c], t[m]):
                rep[m] = c
                break
        else:
            seen.setdefault(fp, []).append(m)
    uniq = np.unique(rep)
    if uniq.size == H:
        got = _linear_quantiles(t, qs)
    else:
        got = _linear_quantiles(t[uniq], qs)[:, np.searchsorted(uniq, rep)]
    if len(qs) == len(QUANTILES):
        return got
    band = np.zeros((len(QUANTILES), H))
    band[1] = got[0]
    return band


def _check_finite(out: dict[str, np.ndarray]) -> None:
    for k, v in out.items():
        if k == "payback_month" or k in SHARE_KEYS:
            continue  # inf (never pays back) and nan (no cost at all) are handled as None
        if not np.all(np.isfinite(v)):
            raise BillshapeInputError("scenario", k, "inputs whose totals stay finite (an input is too large)")
