"""Scaling laws: Chinchilla loss, compute-optimal allocation and the inference-aware optimum.

The parametric loss of Hoffmann et al. (2022) is

.. math:: L(N, D) = E + A / N^{\\alpha} + B / D^{\\beta}

for a model of ``N`` parameters trained on ``D`` tokens. The answer to every sizing question depends
strongly on the constants (E, A, B, alpha, beta); they are named rows of ``data/scaling_constants.csv``
(``hoffmann-2022``, ``besiroglu-2024``, ``sardana-2024``), and every result names the set it used.

Inference-aware sizing (Sardana et al. 2024) minimises lifetime compute
``6 N D_train + 2 N D_inference`` subject to ``L(N, D_train) = target``. Along the iso-loss curve write
``u = A N^-alpha / (L - E)`` (the parameter term's share of the reducible loss), so that
``D = (B / ((1 - u)(L - E)))^(1/beta)``; the first-order condition is

.. math:: 3 D(u) \\left(\\frac{\\alpha}{\\beta} \\frac{u}{1-u} - 1\\right) = D_{inference},

whose left side rises strictly from 0 (at the Chinchilla point ``u = beta / (alpha + beta)``) to infinity
as ``u -> 1``. In ``t = ln(alpha/beta * u/(1-u) - 1)`` it reads ``h(t) = 0`` with ``h`` increasing and convex
and ``1 <= h'(t) <= 1 + 1/beta``, so Newton's method converges from any start: every case of a sweep is
solved at once with numpy, without a per-case root finder. The dollar optimum is the same problem with
the inference tokens weighted by their cost per FLOP relative to training.

All functions take scalars or numpy arrays (broadcast together) and return the same. No I/O here except
:func:`constant_set`, which reads the shipped catalog.

References
----------
.. [1] Hoffmann et al., "Training Compute-Optimal Large Language Models", arXiv:2203.15556, 2022.
.. [2] Besiroglu et al., "Chinchilla Scaling: A replication attempt", arXiv:2404.10102, 2024.
.. [3] Sardana et al., "Beyond Chinchilla-Optimal: Accounting for Inference in Language Model Scaling
       Laws", arXiv:2401.00448, 2024.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from billshape import _validate as v
from billshape.errors import BillshapeInputError, unknown_name

SECONDS_PER_HOUR = 3600.0
_NEWTON_STEPS = 60


# --------------------------------------------------------------------------------------------- constants
@lru_cache(maxsize=None)
def constant_sets() -> dict:
    """The shipped named constant sets (``data/scaling_constants.csv``), by name."""
    from billshape.catalog import Row, read_rows

    class ScalingConstants(Row):
        """One named fit of L(N, D) = E + A/N^alpha + B/D^beta."""

        name: str
        E: float
        A: float
        B: float
        alpha: float
        beta: float
        note: str = ""
        aliases: tuple = ()  # other names of the fit (paper, model): used only to suggest the set's name

        def as_kwargs(self) -> dict:
            return {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta}

        def assumptions(self) -> list:
            return [self.assumption(f"{self.name} {k}", val) for k, val in self.as_kwargs().items()]

    out = {}
    for row in read_rows("scaling_constants.csv"):
        out[row["name"]] = ScalingConstants(
            name=row["name"], E=float(row["E"]), A=float(row["A"]), B=float(row["B"]),
            alpha=float(row["alpha"]), beta=float(row["beta"]), source=row["source"], as_of=row["as_of"],
            note=row.get("note", ""),
            aliases=tuple(a.strip() for a in (row.get("aliases") or "").split(";") if a.strip()),
        )
    return out


def constant_set(name: str, field: str = "constants"):
    """Look up a named constant set (``hoffmann-2022``, ``besiroglu-2024``, ``sardana-2024``)."""
    sets = constant_sets()
    key = str(name).strip().lower()
    if key not in sets:
        err = unknown_name(field, name, sets)
        if err.hint is None:  # no close set name: try the papers' names (e.g. "chinchila" -> hoffmann-2022)
            import difflib

            alias = {a: s.name for s in sets.values() for a in s.aliases}
            close = difflib.get_close_matches(key, list(alias), n=3, cutoff=0.6)
            names = list(dict.fromkeys(alias[a] for a in close))
            if names:
                err = BillshapeInputError(err.field, err.value, err.allowed,
                                          "did you mean " + ", ".join(f"{n} ({next(a for a in close if alias[a] == n)})"
                                                                      for n in names) + "?")
        raise err
    return sets[key]


# --------------------------------------------------------------------------------------------- equations
def _f(x):
    return np.asarray(x, dtype=float)


def loss(params, tokens, E, A, B, alpha, beta):
    r"""Chinchilla parametric loss :math:`L(N, D) = E + A/N^\alpha + B/D^\beta`.

    Parameters
    ----------
    params : numeric
        Model parameters N [count], > 0.
    tokens : numeric
        Training tokens D [count], > 0.
    E, A, B, alpha, beta : numeric
        Fitted constants [nats per token for E; A, B, alpha, beta unitless].

    Returns
    -------
    numeric
        Predicted pre-training loss [nats per token].

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, eq. (2) and (10).
    """
    v.positive("params", params)
    v.positive("tokens", tokens)
    return _f(E) + _f(A) / _f(params) ** _f(alpha) + _f(B) / _f(tokens) ** _f(beta)


def compute_optimal_tokens(params, E, A, B, alpha, beta):
    r"""Training tokens that make ``params`` compute-optimal: :math:`\alpha A N^{-\alpha} = \beta B D^{-\beta}`.

    At this D no reallocation of the same compute ``6 N D`` between N and D lowers the loss.

    Parameters
    ----------
    params : numeric
        Model parameters N [count], > 0.
    E, A, B, alpha, beta : numeric
        Fitted constants (E is unused; accepted so a constant set can be splatted).

    Returns
    -------
    numeric
        Compute-optimal training tokens [count].

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, Appendix D.2 (eq. 4 with the parametric loss).
    """
    v.positive("params", params)
    n = _f(params)
    return (_f(beta) * _f(B) * n ** _f(alpha) / (_f(alpha) * _f(A))) ** (1.0 / _f(beta))


def compute_optimal_allocation(training_flops, E, A, B, alpha, beta):
    r"""Compute-optimal parameters and tokens for a training budget ``C = 6 N D``.

    :math:`N_{opt} = G (C/6)^{\beta/(\alpha+\beta)}`, :math:`D_{opt} = (C/6) / N_{opt}`,
    :math:`G = (\alpha A / (\beta B))^{1/(\alpha+\beta)}`.

    Parameters
    ----------
    training_flops : numeric
        Training compute C [FLOP], > 0.
    E, A, B, alpha, beta : numeric
        Fitted constants.

    Returns
    -------
    tuple of numeric
        ``(params, tokens)`` [count, count].

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, Appendix D.2, eq. (4).
    """
    v.positive("training_flops", training_flops)
    a, b = _f(alpha), _f(beta)
    g = (a * _f(A) / (b * _f(B))) ** (1.0 / (a + b))
    half = _f(training_flops) / 6.0
    n = g * half ** (b / (a + b))
    return n, half / n


def _check_target(target_loss, E, field="target_loss"):
    t = _f(target_loss)
    if not np.all(np.isfinite(t)) or not np.all(t > _f(E)):
        raise BillshapeInputError(
            field, target_loss, f"> E = {np.min(_f(E)):g} (the irreducible loss of the constant set; "
            "a loss at or below E is unreachable at any size)"
        )
    return t


def _plan_from_share(u, target_loss, E, A, B, alpha, beta):
    """(N, D) on the iso-loss curve where the parameter term is a share ``u`` of the reducible loss."""
    gap = _f(target_loss) - _f(E)
    n = (_f(A) / (u * gap)) ** (1.0 / _f(alpha))
    d = (_f(B) / ((1.0 - u) * gap)) ** (1.0 / _f(beta))
    return n, d


def iso_loss_point(share, target_loss, E, A, B, alpha, beta):
    r"""A point (N, D) on the iso-loss curve :math:`L(N, D) = L`.

    Parametrised by the share :math:`u \in (0, 1)` of the reducible loss :math:`L - E` that the parameter
    term :math:`A / N^\alpha` takes: :math:`N = (A / (u (L - E)))^{1/\alpha}`,
    :math:`D = (B / ((1 - u)(L - E)))^{1/\beta}`. Sweep ``share`` to trace the curve.

    Parameters
    ----------
    share : numeric
        Share of the reducible loss in the parameter term, in (0, 1) [unitless].
    target_loss : numeric
        Loss on the curve [nats per token], > E.
    E, A, B, alpha, beta : numeric
        Fitted constants.

    Returns
    -------
    tuple of numeric
        ``(params, tokens)`` [count, count].

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, Eq. 2.
    """
    return _plan_from_share(share, target_loss, E, A, B, alpha, beta)


def iso_loss_curve(params, target_loss, E, A, B, alpha, beta, max_share=0.995):
    r"""The iso-loss curve :math:`L(N, D) = L` over model sizes ``params``: the training tokens each size needs.

    For each :math:`N` the parameter term takes a share :math:`u = A N^{-\alpha} / (L - E)` of the reducible loss;
    a size with :math:`u \geq` ``max_share`` is too small to reach the loss on any sensible number of tokens and
    is left out. The kept points are :func:`iso_loss_point` at those shares.

    Parameters
    ----------
    params : array_like
        Model sizes to try [count], > 0 (1-D).
    target_loss : float
        Loss on the curve [nats per token], > E.
    E, A, B, alpha, beta : float
        Fitted constants.
    max_share : float
        Largest share of the reducible loss the parameter term may take, in (0, 1) [unitless].

    Returns
    -------
    tuple of numpy.ndarray
        ``(params, tokens)`` [count, count] of the kept sizes, in the order given.

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556, Eq. 2.
    .. [2] Sardana et al. 2024, arXiv:2401.00448, Fig. 1 (lifetime FLOPs along this curve).
    """
    _check_target(target_loss, E)
    n = np.asarray(params, dtype=float)
    u = _f(A) * n ** -_f(alpha) / (_f(target_loss) - _f(E))
    keep = u < max_share
    return _plan_from_share(u[keep], target_loss, E, A, B, alpha, beta)


def chinchilla_for_loss(target_loss, E, A, B, alpha, beta):
    r"""The compute-optimal model that reaches ``target_loss`` (the Chinchilla plan).

    On the iso-loss curve the training-compute minimum has the parameter term at a share
    :math:`u_0 = \beta / (\alpha + \beta)` of the reducible loss ``L - E``.

    Parameters
    ----------
    target_loss : numeric
        Loss to reach [nats per token], > E.
    E, A, B, alpha, beta : numeric
        Fitted constants.

    Returns
    -------
    tuple of numeric
        ``(params, tokens)`` [count, count].

    References
    ----------
    .. [1] Hoffmann et al. 2022, arXiv:2203.15556.
    .. [2] Sardana et al. 2024, arXiv:2401.00448, Section 2 (the Chinchilla-optimal baseline).
    """
    _check_target(target_loss, E)
    u0 = _f(beta) / (_f(alpha) + _f(beta))
    return _plan_from_share(u0, target_loss, E, A, B, alpha, beta)


def inference_aware_optimum(target_loss, inference_tokens, E, A, B, alpha, beta):
    r"""Parameters and training tokens that minimise lifetime FLOPs at a given loss.

    Minimises :math:`6 N D_{train} + 2 N D_{inference}` subject to :math:`L(N, D_{train}) = L^*`
    (Sardana et al. 2024), vectorised: every element of the broadcast inputs is solved at once by a
    globally convergent Newton iteration (see the module docstring).

    Parameters
    ----------
    target_loss : numeric
        Loss to reach [nats per token], > E.
    inference_tokens : numeric
        Lifetime inference tokens (prompt plus generated) [count], >= 0. With 0 the answer is the
        Chinchilla plan.
    E, A, B, alpha, beta : numeric
        Fitted constants.

    Returns
    -------
    tuple of numeric
        ``(params, tokens)`` [count, count]; the pair meets ``target_loss`` to rounding.

    References
    ----------
    .. [1] Sardana et al. 2024, arXiv:2401.00448, eq. (2) and Fig. 1.
    """
    _check_target(target_loss, E)
    v.non_negative("inference_tokens", inference_tokens)
    lt, e, a_, b_, alpha_, beta_, dinf = np.broadcast_arrays(
        _f(target_loss), _f(E), _f(A), _f(B), _f(alpha), _f(beta), _f(inference_tokens))
    k = alpha_ / beta_
    gap = lt - e
    positive = dinf > 0
    with np.errstate(divide="ignore"):
        c0 = np.log(3.0) + np.log(b_ / gap) / beta_ - np.log(np.where(positive, dinf, 1.0))
    # start where the D-term is flat (t with (1 + (1+e^t)/k) ~ 1): t0 = -c0 is within a few steps
    t = -c0
    for _ in range(_NEWTON_STEPS):
        et = np.exp(np.minimum(t, 700.0))
        h = c0 + np.log1p((1.0 + et) / k) / beta_ + t
        hp = 1.0 + et / (k + 1.0 + et) / beta_
        step = h / hp
        t = t - step
        if np.all(np.abs(step) < 1e-14 * np.maximum(1.0, np.abs(t))):
            break
    w = (1.0 + np.exp(t)) / k  # w = u / (1 - u)
    u = np.where(positive, w / (1.0 + w), beta_ / (alpha_ + beta_))
    n, d = _plan_from_share(u, lt, e, a_, b_, alpha_, beta_)
    if n.ndim == 0:
        return float(n), float(d)
    return n, d


def lifetime_flops(params, training_tokens, inference_tokens):
    """Lifetime compute ``6 N D_train + 2 N D_inference`` [FLOP]."""
    n = _f(params)
    return 6.0 * n * _f(training_tokens) + 2.0 * n * _f(inference_tokens)


def usd_per_flop(usd_per_gpu_hour, peak_flops_per_second, mfu):
    r"""Cost of one useful FLOP: :math:`\$/h / (P \cdot \mathrm{MFU} \cdot 3600)` [USD/FLOP].

    Parameters
    ----------
    usd_per_gpu_hour : numeric
        Accelerator price [USD/GPU-hour], > 0.
    peak_flops_per_second : numeric
        Dense peak of one accelerator [FLOP/s], > 0.
    mfu : numeric
        Model FLOPs utilization in the phase (training, prefill or decode), in (0, 1].

    References
    ----------
    .. [1] Sardana et al. 2024, arXiv:2401.00448, Section 3 (cost with separate MFU for training,
           input and output tokens).
    """
    v.positive("usd_per_gpu_hour", usd_per_gpu_hour)
    v.positive("peak_flops_per_second", peak_flops_per_second)
    v.fraction("mfu", mfu)
    return _f(usd_per_gpu_hour) / (_f(peak_flops_per_second) * _f(mfu) * SECONDS_PER_HOUR)


def inference_aware_optimum_usd(target_loss, prefill_tokens, decode_tokens, training_usd_per_flop,
                                prefill_usd_per_flop, decode_usd_per_flop, E, A, B, alpha, beta):
    r"""Parameters and training tokens that minimise lifetime dollars at a given loss.

    Minimises :math:`6 N D_{train} k_{train} + 2 N (D_{prefill} k_{prefill} + D_{decode} k_{decode})`
    subject to :math:`L(N, D_{train}) = L^*`, where ``k`` is the cost of a FLOP in each phase. Dividing by
    ``k_train`` makes it the FLOP problem with the inference tokens weighted by their relative cost, so
    :func:`inference_aware_optimum` solves it.

    Parameters
    ----------
    target_loss : numeric
        Loss to reach [nats per token], > E.
    prefill_tokens, decode_tokens : numeric
        Lifetime prompt (input) and generated (output) tokens [count], >= 0.
    training_usd_per_flop, prefill_usd_per_flop, decode_usd_per_flop : numeric
        Cost of a useful FLOP in each phase [USD/FLOP], > 0 (see :func:`usd_per_flop`).
    E, A, B, alpha, beta : numeric
        Fitted constants.

    Returns
    -------
    tuple of numeric
        ``(params, tokens)`` [count, count].

    References
    ----------
    .. [1] Sardana et al. 2024, arXiv:2401.00448, Section 3.
    """
    v.non_negative("prefill_tokens", prefill_tokens)
    v.non_negative("decode_tokens", decode_tokens)
    for name, val in (("training_usd_per_flop", training_usd_per_flop),
                      ("prefill_usd_per_flop", prefill_usd_per_flop), ("decode_usd_per_flop", decode_usd_per_flop)):
        v.positive(name, val)
    weighted = (_f(prefill_tokens) * _f(prefill_usd_per_flop) + _f(decode_tokens) * _f(decode_usd_per_flop)) / _f(
        training_usd_per_flop)
    return inference_aware_optimum(target_loss, weighted, E, A, B, alpha, beta)
