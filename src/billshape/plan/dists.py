"""Uncertain inputs: the distributions a scenario number may be, and their vectorised draws.

Any number of a scenario may be ``{dist: lognormal|triangular|uniform|normal, ...}``. :func:`_to_number` parses a
YAML scalar or such a mapping (range checks come later, with the YAML path, in :mod:`billshape.plan.errors`);
:class:`Dist` holds one law (its quantile function, its tail outside a field's range) and :func:`_draw_batch`
draws many laws at once as one block of numpy arrays (triangular by the two-uniform method of Stein & Keblis,
2009). ``scipy.special`` is imported only where a normal or lognormal law needs it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

Z90 = 1.2815515655446004  # standard normal quantile at 0.9: P10/P90 sit at -/+ Z90 standard deviations

DIST_KEYS = {
    "lognormal": ({"p10", "p90"}, set()),
    "normal": ({"p10", "p90"}, {"mean", "sd"}),
    "triangular": ({"low", "mode", "high"}, set()),
    "uniform": ({"low", "high"}, set()),
}


@dataclasses.dataclass(frozen=True)
class Dist:
    """An uncertain input: lognormal (p10, p90), normal (mean, sd or p10, p90), triangular (low, mode, high)
    or uniform (low, high). ``lo``/``hi`` clip the draws of unbounded laws to the field's range."""

    kind: str
    params: tuple[tuple[str, float], ...]
    lo: float = -math.inf
    hi: float = math.inf

    @property
    def p(self) -> dict[str, float]:
        return dict(self.params)

    def _loc_scale(self) -> tuple[float, float]:
        p = self.p
        if self.kind == "lognormal":
            mu = (math.log(p["p10"]) + math.log(p["p90"])) / 2
            return mu, (math.log(p["p90"]) - math.log(p["p10"])) / (2 * Z90)
        if "mean" in p:
            return p["mean"], p["sd"]
        return (p["p10"] + p["p90"]) / 2, (p["p90"] - p["p10"]) / (2 * Z90)

    def ppf(self, q: float) -> float:
        """The q-quantile (clipped to the field's range)."""
        p = self.p
        if self.kind in ("lognormal", "normal"):
            from scipy.special import ndtri  # only here: a bounded law's scenario never imports scipy

            mu, sigma = self._loc_scale()
            x = mu + sigma * float(ndtri(q))
            x = math.exp(x) if self.kind == "lognormal" else x
        elif self.kind == "uniform":
            x = p["low"] + q * (p["high"] - p["low"])
        else:
            a, c, b = p["low"], p["mode"], p["high"]
            if b == a:
                x = a
            elif q < (c - a) / (b - a):
                x = a + math.sqrt(q * (b - a) * (c - a))
            else:
                x = b - math.sqrt((1 - q) * (b - a) * (b - c))
        return min(max(x, self.lo), self.hi)

    def tail_outside(self, lo: float, hi: float) -> float:
        """Probability the unclipped law puts outside [lo, hi]."""
        if self.kind not in ("lognormal", "normal"):
            return 0.0
        from scipy.special import ndtr  # only for an unbounded law (the loader's one use of scipy)

        mu, sigma = self._loc_scale()
        if self.kind == "lognormal":
            lo, hi = (math.log(lo) if lo > 0 else -math.inf), (math.log(hi) if hi > 0 else -math.inf)
        if sigma == 0:
            return 0.0 if lo <= mu <= hi else 1.0
        return float(ndtr((lo - mu) / sigma) + (1 - ndtr((hi - mu) / sigma)))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of this law, shape (n,) (see :func:`_draw_batch`)."""
        return _draw_batch([self], rng, n)[0]

    def describe(self) -> str:
        return self.kind + " " + " ".join(f"{k}={_g(v)}" for k, v in self.params)


def _draw_batch(dists: list[Dist], rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws of each of several laws, shape (len(dists), n).

    One call to the generator for all the bounded laws' uniforms and one for all the unbounded laws' standard
    normals, then each law's transform on the whole block with its parameters as columns (a few array
    operations per block, not per input: the Monte Carlo chunks run on threads, and fewer, larger operations
    hold the interpreter less). Uniform ``low + (high - low) U``; normal ``mu + sigma Z``; lognormal
    ``exp(mu + sigma Z)``; triangular by the two-uniform method of Stein & Keblis [1]_:
    ``left + (right - left) (c max(U, V) + (1 - c) min(U, V))`` with ``c = (mode - left) / (right - left)``
    (seven array passes against fifteen for the branch-free inverse CDF). Unbounded laws are clipped to the
    field's range (``lo``/``hi``). Rows of the same law next to each other are transformed in place.

    References
    ----------
    .. [1] W. E. Stein and M. F. Keblis, "A new method to simulate the triangular distribution",
       Mathematical and Computer Modelling 49 (2009) 1143-1147.
    """
    out = np.empty((len(dists), n))
    tri = [i for i, d in enumerate(dists) if d.kind == "triangular" and d.p["high"] != d.p["low"]]
    uni = [i for i, d in enumerate(dists) if d.kind == "uniform"]
    nor = [i for i, d in enumerate(dists) if d.kind in ("normal", "lognormal") and d._loc_scale()[1] > 0]
    for i in set(range(len(dists))) - set(tri) - set(uni) - set(nor):  # a point mass
        out[i] = dists[i].ppf(0.5)

    def col(idx, f):
        return np.array([[f(dists[i])] for i in idx])

    def rows(idx):  # a view where the rows are contiguous, else None
        return out[idx[0]:idx[-1] + 1] if idx == list(range(idx[0], idx[-1] + 1)) else None

    if tri or uni:
        u = rng.random((2 * len(tri) + len(uni), n))
        if tri:
            left, right = col(tri, lambda d: d.p["low"]), col(tri, lambda d: d.p["high"])
            c = (col(tri, lambda d: d.p["mode"]) - left) / (right - left)
            a, b = u[:len(tri)], u[len(tri):2 * len(tri)]
            target = rows(tri)
            hi = np.maximum(a, b, out=target)
            lo = np.minimum(a, b, out=a)
            hi *= c
            lo *= 1.0 - c
            hi += lo
            hi *= right - left
            hi += left
            if target is None:
                out[tri] = hi
        if uni:
            low = col(uni, lambda d: d.p["low"])
            out[uni] = low + (col(uni, lambda d: d.p["high"]) - low) * u[2 * len(tri):]
    if nor:
        z = rng.standard_normal((len(nor), n))
        z *= col(nor, lambda d: d._loc_scale()[1])
        z += col(nor, lambda d: d._loc_scale()[0])
        logn = [j for j, i in enumerate(nor) if dists[i].kind == "lognormal"]
        if len(logn) == len(nor):
            np.exp(z, out=z)
        elif logn:
            z[logn] = np.exp(z[logn])
        np.clip(z, col(nor, lambda d: d.lo), col(nor, lambda d: d.hi), out=z)
        out[nor] = z
    return out


def _g(x: float) -> str:
    return f"{x:,.6g}" if abs(x) < 1e6 else f"{x:,.0f}"


def _to_number(value: Any) -> Any:
    """Parse a YAML scalar or a distribution mapping (range checks come later, with the YAML path)."""
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    if isinstance(value, (int, float)):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range (thousands of digits): a typo, not a plan
            raise ValueError(f"a number, got an integer of about {int(value.bit_length() * 0.30103) + 1:,} digits") from None
    if isinstance(value, str):
        try:
            return float(value.replace("_", "").replace(",", ""))
        except ValueError:
            raise ValueError(f"a number or {{dist: ...}}, got {value!r}") from None
    if isinstance(value, dict):
        kind = value.get("dist")
        if not isinstance(kind, str) or kind not in DIST_KEYS:
            raise ValueError(f"dist: one of {', '.join(DIST_KEYS)} (got {kind!r})")
        keys = set(value) - {"dist"}
        options = DIST_KEYS[kind]
        if keys not in [o for o in options if o]:
            need = " or ".join("{" + ", ".join(sorted(o)) + "}" for o in options if o)
            raise ValueError(f"{kind} takes {need} (got {{{', '.join(sorted(map(str, keys)))}}})")
        params = []
        for k in sorted(keys):
            x = _to_number(value[k]) if not isinstance(value[k], dict) else None
            if x is None or not math.isfinite(x):
                raise ValueError(f"{k}: a finite number (got {value[k]!r})")
            params.append((k, x))
        p = dict(params)
        if "p10" in p and p["p10"] > p["p90"]:
            raise ValueError(f"p10 ({_g(p['p10'])}) must be <= p90 ({_g(p['p90'])})")
        if kind == "lognormal" and p["p10"] <= 0:
            raise ValueError(f"lognormal p10 must be > 0 (got {_g(p['p10'])})")
        if kind == "normal" and "sd" in p and p["sd"] < 0:
            raise ValueError(f"sd must be >= 0 (got {_g(p['sd'])})")
        if kind in ("uniform", "triangular") and p["low"] > p["high"]:
            raise ValueError(f"low ({_g(p['low'])}) must be <= high ({_g(p['high'])})")
        if kind == "triangular" and not p["low"] <= p["mode"] <= p["high"]:
            raise ValueError("triangular needs low <= mode <= high")
        return Dist(kind, tuple(params))
    raise ValueError(f"a number or {{dist: ...}}, got {type(value).__name__}")
