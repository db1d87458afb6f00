r"""The fleet's vectorised search: every deployment of one model, evaluated with the serving roofline at once.

A *configuration* is one way to build a replica: accelerator x tensor-parallel size (``tp`` GPUs per replica)
x expert parallelism (``ep``: 1, or ``tp`` for an MoE model) x weight precision (the KV cache at the same
precision, as :func:`billshape.serving.serve` defaults) x serving engine (its fitted efficiencies). For each
configuration the search finds the largest continuous batch :math:`B^*` whose time per output token and time
to first token stay within the service level:

.. math::

    B^* = \max \{ B \in \{1, \dots, \min(B_{fit}, B_{cap})\} : t_{step}(B) \le \mathrm{TPOT}_{lim},\;
          t_{pre} + t_{step}(B) \le \mathrm{TTFT}_{lim} \}

by a bisection over whole batches that evaluates :func:`billshape.serving_roofline.roofline` on every
configuration at once (one array per step, about eleven steps; the step time grows with the batch). At
:math:`B^*` a replica serves :math:`B^* / t_{step}` output tokens per second, which is exactly what
``serve(model, gpu, gpus=tp, tp=tp, ep=ep, precision=p, batch=B*, mode="max-load")`` reports (a test checks it
option by option).

Configurations that cannot serve are kept with their reason: the weights and one sequence's KV cache do not
fit in the replica's memory (as ``serve`` refuses them), the chip lacks the precision's matrix units, or even
batch 1 misses the service level.

References
----------
.. [1] Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102 (the roofline).
.. [2] Agrawal et al., "Vidur: A Large-Scale Simulation Framework for LLM Inference", MLSys 2024,
       arXiv:2405.05465 (Vidur-Search: the configuration search over parallelism and batch under an SLO that
       this module vectorises).
.. [3] Kwon et al., "Efficient Memory Management for LLM Serving with PagedAttention", SOSP 2023,
       arXiv:2309.06180 (continuous batching: the batch is the concurrent sequences).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from billshape import catalog
from billshape.errors import BillshapeInputError
from billshape.serving_catalog import (COMPUTE_PRECISION, EFFICIENCY_NAMES, WEIGHT_PRECISIONS, Architecture,
                                       efficiencies)
from billshape.serving_roofline import attention_inputs, hardware_inputs, kv_replication, roofline

#: tensor-parallel sizes searched (powers of two, as engines deploy them; the same list as ``serving.capacity``)
TP_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)
#: precisions searched when none is given: 16-bit weights as published, and FP8 (quality-neutral on the
#: catalogued models in their publishers' FP8 checkpoints); 4-bit formats only when asked for
DEFAULT_PRECISIONS = ("bf16", "fp8")


def engines() -> tuple[str, ...]:
    """The serving engines with fitted efficiencies: ``serving_catalog.engines()`` where it exists, else the
    engine the default efficiencies were fitted on (TensorRT-LLM)."""
    from billshape import serving_catalog

    fn = getattr(serving_catalog, "engines", None)
    return tuple(fn()) if callable(fn) else ("trtllm",)


def engine_efficiency(engine: str, arch: Architecture | None = None, gpu: str | None = None) -> dict[str, float]:
    """The efficiency parameters of ``engine`` on ``arch``'s class and ``gpu``'s generation (the profile
    :func:`billshape.serving.serve` uses, ``serving_catalog.engine_profile``), plus its ``max_batch_cap``."""
    from billshape.serving_catalog import arch_class, engine_profile, gpu_generation

    prof = engine_profile(engine, arch_class(arch) if arch is not None else None,
                          gpu_generation(gpu) if gpu is not None else None)
    return {**prof.efficiency, "max_batch_cap": prof.params["max_batch_cap"]}


@dataclasses.dataclass
class Configs:
    """The configuration grid as parallel arrays (one entry per configuration) plus the reason each is out."""

    gpu: np.ndarray  # accelerator names
    tp: np.ndarray
    ep: np.ndarray
    precision: np.ndarray
    engine: np.ndarray
    reason: np.ndarray  # "" when it can serve
    batch: np.ndarray  # B* (0 when out)
    max_batch: np.ndarray
    tpot_seconds: np.ndarray
    ttft_seconds: np.ndarray
    output_tokens_per_second: np.ndarray  # per replica at B*
    requests_per_second: np.ndarray  # per replica at B*
    roofline_evaluations: int = 0
    configurations: int = 0

    def __len__(self) -> int:
        return int(self.gpu.size)


def _stack(dicts: list[dict]) -> dict[str, np.ndarray]:
    """Stack the dicts' values per key; a key some dicts lack (a profile row others have, e.g.
    ``moe_weight_read_efficiency``) is NaN there: the roofline's default for those rows (see ``evaluate``)."""
    keys = list(dict.fromkeys(k for d in dicts for k in d))
    return {k: np.array([d.get(k, np.nan) for d in dicts], dtype=float) for k in keys}


def _take(arrays: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: (a[idx] if np.ndim(a) else a) for k, a in arrays.items()}


def grid(arch: Architecture, gpus: tuple[str, ...], precisions: tuple[str, ...], engine_names: tuple[str, ...],
         tps: tuple[int, ...] = TP_CANDIDATES) -> tuple[list[tuple], list[tuple]]:
    """The configurations to evaluate ``(gpu, tp, ep, precision, engine)`` and those out before evaluation
    ``(gpu, tp, ep, precision, engine, reason)`` (a chip without the precision's matrix units or without
    catalogued memory)."""
    todo, out = [], []
    valid_tp = [t for t in tps if arch.valid_tensor_parallel(t)]
    for g in gpus:
        acc = catalog.gpu(g)
        for p in precisions:
            reason = ""
            if acc.memory_bytes is None or acc.memory_bytes_per_second is None:
                reason = "no memory figures"
            else:
                try:
                    acc.peak_flops_per_second(COMPUTE_PRECISION[p])
                except BillshapeInputError:
                    reason = "precision not supported"
            for t in valid_tp:
                for e in ((1, t) if arch.is_moe and t > 1 else (1,)):
                    for eng in engine_names:
                        (out.append((acc.name, t, e, p, eng, reason)) if reason
                         else todo.append((acc.name, t, e, p, eng)))
    return todo, out


def evaluate(arch: Architecture, configs: list[tuple], *, input_tokens: float, output_tokens: float,
             tpot_limit_seconds: float | None = None, ttft_limit_seconds: float | None = None,
             out: list[tuple] = (), batch_points: int = 8) -> Configs:
    r"""Evaluate ``configs`` ``(gpu, tp, ep, precision, engine)`` at once: fit, the largest batch within the
    service level, and each replica's throughput and latency there (see the module docstring).

    Parameters
    ----------
    arch : Architecture
        The model (:func:`billshape.serving.architecture`).
    configs : list of tuple
        ``(gpu, tp, ep, precision, engine)`` per configuration (from :func:`grid`).
    input_tokens, output_tokens : float
        Request shape [tokens/request].
    tpot_limit_seconds, ttft_limit_seconds : float, optional
        Service level [s]; ``None``: no limit (the largest batch that fits, as ``serve --batch max``).
    out : list of tuple
        Configurations already out ``(..., reason)``, carried into the result.
    batch_points : int
        Operating points per configuration: :math:`B^*` and :math:`\lfloor B^*/2^k \rfloor` for
        :math:`k < ` ``batch_points`` (distinct, >= 1).

    Returns
    -------
    Configs
        One entry per configuration at :math:`B^*` (in the order of ``configs``), then the lower operating
        points, then ``out``.
    """
    from billshape.serving_catalog import arch_class, engine_profile, gpu_generation

    rows = efficiencies()
    kv_frac = rows["kv_memory_fraction"].value
    n = len(configs)
    hw_cache: dict[tuple, dict] = {}
    hw_rows, eff_rows = [], []
    # the profile's attention switch as serve reads it (attention_inputs: the KV cache here is at the weights'
    # precision); NaN: attention at the weights' peak. overlap_micro_batch_tokens needs two-batch overlap, which a
    # colocated replica does not run: no effect here
    att_peak = np.full(len(configs), np.nan)
    for i, (g, t, e, p, eng) in enumerate(configs):
        key = (g, p)
        if key not in hw_cache:
            hw_cache[key] = hardware_inputs(arch, catalog.gpu(g), p, p)
        hw_rows.append(hw_cache[key])
        eff_rows.append({**engine_efficiency(eng, arch, catalog.gpu(g).name),
                         "kv_replication": kv_replication(arch, t, False)})
        acc_g = catalog.gpu(g)
        att = attention_inputs(engine_profile(eng, arch_class(arch), gpu_generation(acc_g.name)), acc_g, p, p,
                               float(input_tokens))
        att_peak[i] = att.get("attention_peak_flops_per_second", np.nan)
    res = {k: np.zeros(n) for k in ("batch", "max_batch", "tpot", "ttft", "tps", "rps")}
    reason = np.array([""] * n, dtype=object)
    evals = 0
    extra: list[tuple] = []
    if n:
        hw = _stack(hw_rows)
        eff = _stack(eff_rows)
        cap = eff.pop("max_batch_cap")
        tp = np.array([c[1] for c in configs], dtype=float)
        ep = np.array([c[2] for c in configs], dtype=float)
        mem = hw["memory_bytes_per_gpu"]
        # roofline switches expert parallelism, the attention kernels' peak and the profile rows present (a
        # missing row: the roofline's default) on for the whole call: evaluate the groups apart
        has_att = ~np.isnan(att_peak)
        present = np.stack([~np.isnan(a) for a in eff.values()] + [ep > 1, has_att], axis=1)
        for sig in np.unique(present, axis=0):
            idx = np.nonzero((present == sig).all(axis=1))[0]
            eff_g = {k: a for k, a in _take(eff, idx).items() if not np.isnan(a).any()}
            kw = dict(_take(hw, idx), **eff_g, tensor_parallel=tp[idx], expert_parallel=ep[idx],
                      input_tokens=float(input_tokens), output_tokens=float(output_tokens), mode="max-load",
                      kv_memory_fraction=kv_frac, max_batch_cap=cap[idx], expert_load_cv=rows["expert_load_cv"].value,
                      **({"attention_peak_flops_per_second": att_peak[idx]} if has_att[idx[0]] else {}))

            def at(batch):
                return roofline(**kw, batch=batch)

            r = at(None)
            evals += idx.size
            fits = np.asarray(r["max_batch"], dtype=float)
            w_total = np.asarray(r["weight_bytes"], dtype=float) + 0 * fits
            no_fit = (w_total >= tp[idx] * mem[idx] * kv_frac) | (fits < 1)
            hi = np.maximum(np.minimum(fits, cap[idx]), 1.0)

            def ok(batch):
                rr = at(batch)
                good = np.ones(batch.shape, dtype=bool)
                if tpot_limit_seconds is not None:
                    good &= rr["step_seconds"] <= tpot_limit_seconds
                if ttft_limit_seconds is not None:
                    good &= rr["ttft_seconds"] <= ttft_limit_seconds
                return good

            lo = np.ones(idx.size)
            first = ok(lo)
            evals += idx.size
            if tpot_limit_seconds is not None or ttft_limit_seconds is not None:
                top = ok(hi)
                evals += idx.size
                lo = np.where(top, hi, lo)
                hi_b = hi.copy()  # bisection invariant: ok(lo), and not ok(hi_b) unless lo == hi_b
                while True:
                    active = hi_b - lo > 1
                    if not active.any():
                        break
                    mid = np.floor((lo + hi_b) / 2.0)
                    good = ok(mid)
                    evals += int(active.sum())
                    lo = np.where(active & good, mid, lo)
                    hi_b = np.where(active & ~good, mid, hi_b)
                best = lo
            else:
                best = hi
            slo_miss = ~first & ~no_fit
            r = at(best)
            evals += idx.size
            reason[idx] = np.where(no_fit, "does not fit", np.where(slo_miss, "misses the SLO", ""))
            live = reason[idx] == ""
            res["batch"][idx] = np.where(live, best, 0.0)
            res["max_batch"][idx] = np.where(no_fit, 0.0, fits)
            res["tpot"][idx] = r["step_seconds"]
            res["ttft"][idx] = r["ttft_seconds"]
            res["tps"][idx] = np.where(live, r["output_tokens_per_second"], 0.0)
            res["rps"][idx] = np.where(live, r["requests_per_second"], 0.0)
            # lower operating points of each live configuration (B*/2, B*/4, ... down to 1): less throughput per
            # GPU, shorter TPOT; they fill the frontier of cost against TPOT
            pos, bs = [], []
            prev = best.copy()
            for k in range(1, batch_points):
                b_k = np.floor(best / 2.0 ** k)
                new = live & (b_k >= 1) & (b_k < prev)
                pos.append(np.nonzero(new)[0])
                bs.append(b_k[new])
                prev = np.where(new, b_k, prev)
            pos_a = np.concatenate(pos) if pos else np.zeros(0, dtype=int)
            if pos_a.size:
                b_a = np.concatenate(bs)
                sub = {k: (val[pos_a] if np.ndim(val) else val) for k, val in kw.items()}
                rr = roofline(**sub, batch=b_a)
                evals += pos_a.size
                extra.append((idx[pos_a], b_a, rr["step_seconds"], rr["ttft_seconds"], rr["output_tokens_per_second"],
                              rr["requests_per_second"], fits[pos_a]))
    if extra:
        ext = [np.concatenate([e[j] for e in extra]) for j in range(7)]
    else:
        ext = [np.zeros(0, dtype=int)] + [np.zeros(0)] * 6
    ext_cfg = [configs[int(i)] for i in ext[0]]
    all_cfg = list(configs) + ext_cfg + [c[:5] for c in out]
    m = len(out)
    z = np.zeros(m)
    return Configs(
        gpu=np.array([c[0] for c in all_cfg], dtype=object), tp=np.array([c[1] for c in all_cfg], dtype=int),
        ep=np.array([c[2] for c in all_cfg], dtype=int), precision=np.array([c[3] for c in all_cfg], dtype=object),
        engine=np.array([c[4] for c in all_cfg], dtype=object),
        reason=np.concatenate([reason, np.array([""] * len(ext_cfg), dtype=object),
                               np.array([c[5] for c in out], dtype=object)]),
        batch=np.concatenate([res["batch"], ext[1], z]), max_batch=np.concatenate([res["max_batch"], ext[6], z]),
        tpot_seconds=np.concatenate([res["tpot"], ext[2], z]), ttft_seconds=np.concatenate([res["ttft"], ext[3], z]),
        output_tokens_per_second=np.concatenate([res["tps"], ext[4], z]),
        requests_per_second=np.concatenate([res["rps"], ext[5], z]), roofline_evaluations=evals,
        configurations=n + m)


def check_precisions(precisions) -> tuple[str, ...]:
    """Lower-case, known weight precisions (``precision`` field)."""
    from billshape.errors import unknown_name

    outp = []
    for p in precisions:
        key = str(p).strip().lower()
        if key not in WEIGHT_PRECISIONS:
            raise unknown_name("precision", p, WEIGHT_PRECISIONS)
        if key not in outp:
            outp.append(key)
    return tuple(outp)


__all__ = ["TP_CANDIDATES", "DEFAULT_PRECISIONS", "EFFICIENCY_NAMES", "engines", "engine_efficiency", "Configs",
           "grid", "evaluate", "check_precisions"]
