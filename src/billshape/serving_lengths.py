r"""Request lengths as they are (a distribution, not a mean) and a burst of requests queued at t = 0.

:func:`length_distribution` gives the per-request input and output tokens of a shipped distribution
(``data/serving_lengths.csv``: ``sharegpt``) or of a CSV of ``input,output`` pairs, optionally rescaled to given
means. :func:`burst` models what ``vllm bench serve --request-rate inf`` measures: N requests arrive at t = 0, the
engine keeps at most C of them running (its scheduler cap, or what the KV cache holds) and admits the next one,
first come first served, when one finishes; throughput is the output tokens over the makespan.

Model of a burst
----------------
Request j starts at the step its slot frees (list scheduling over C slots) and occupies it for :math:`O_j` decode
steps, so the batch at step s is :math:`b(s) = \#\{j : s_j \le s < s_j + O_j\}`. The batch decays at the end as the
long outputs finish alone: that tail runs at small batch, where each step still reads all the weights, which is why
a heavy-tailed burst yields far fewer tokens/s than the steady state at its mean lengths. The makespan is

.. math:: T = \sum_s t_{step}(b(s)) + \frac{\sum_j I_j}{I^*} \, t_{pre}(C, I^*) / C

with :math:`t_{step}(b)` the roofline's decode step at batch b (mean context) and the prefill of all prompts at the
compute-bound rate of a batch of C prompts of the token-weighted length :math:`I^* = \sum I_j^2 / \sum I_j` (so the
quadratic attention term sums right). Chunked prefill overlaps part of it with decode steps; counting it in full is
an upper bound on its cost (Agrawal et al. 2024).

References
----------
.. [1] Kwon et al., "Efficient Memory Management for LLM Serving with PagedAttention", SOSP 2023, arXiv:2309.06180
       (continuous batching: a finished sequence's slot is refilled at the next step).
.. [2] Agrawal et al., "Sarathi-Serve", OSDI 2024, arXiv:2403.02310 (chunked prefill piggybacked on decode).
.. [3] Graham, "Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math. 17 (1969) (list scheduling).
"""

from __future__ import annotations

import csv
import dataclasses
import heapq
import io
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from billshape import _validate as v
from billshape.catalog import Row, load_keyed
from billshape.errors import BillshapeInputError
from billshape.results import Assumption

#: arrival patterns: steady state (continuous batching at full load) or a burst of N requests at t = 0
ARRIVALS = ("steady", "burst")
#: samples drawn from a shipped distribution when no request count is given
DEFAULT_SAMPLES = 1000


class LengthRow(Row):
    """A shipped request-length distribution: truncated lognormals for input and output tokens."""

    name: str
    input_mean: float
    input_log_sd: float
    input_min: float
    input_max: float
    output_mean: float
    output_log_sd: float
    output_min: float
    output_max: float
    total_max: float
    note: str = ""


@lru_cache(maxsize=None)
def length_rows() -> dict[str, LengthRow]:
    """The shipped distributions of ``data/serving_lengths.csv`` by name."""
    return load_keyed(LengthRow, "serving_lengths.csv", "name")


@dataclasses.dataclass(frozen=True)
class Lengths:
    """Per-request input and output tokens (equal-length arrays) and where they came from."""

    name: str
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    source: str
    as_of: str | None

    def assumption(self) -> Assumption:
        return Assumption(name="request lengths", value=f"{self.name}: {self.input_tokens.size} requests, mean "
                          f"{self.input_tokens.mean():,.1f} in / {self.output_tokens.mean():,.1f} out",
                          unit="tokens/request", source=self.source, as_of=self.as_of)


def _lognormal_quantiles(n: int, mean: float, log_sd: float, low: float, high: float) -> np.ndarray:
    """n deterministic quantile samples of a lognormal truncated to [low, high], rescaled to ``mean``."""
    from scipy.stats import norm

    mu = math.log(mean) - log_sd ** 2 / 2.0
    lo, hi = norm.cdf((math.log(low) - mu) / log_sd), norm.cdf((math.log(high) - mu) / log_sd)
    q = lo + (hi - lo) * (np.arange(n) + 0.5) / n
    x = np.exp(mu + log_sd * norm.ppf(q))
    return np.clip(x * mean / x.mean(), low, high)


def _read_pairs(path: str) -> tuple[np.ndarray, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise BillshapeInputError("lengths", path, "a shipped distribution (" + ", ".join(sorted(length_rows()))
                                  + ") or an existing CSV file of input,output pairs")
    try:
        rows = list(csv.reader(io.StringIO(p.read_text())))
    except (OSError, UnicodeDecodeError) as exc:
        raise BillshapeInputError("lengths", path, f"a readable CSV of input,output pairs ({exc})") from None
    if rows and rows[0] and not rows[0][0].strip().replace(".", "", 1).isdigit():
        rows = rows[1:]  # a header
    pairs = []
    for k, r in enumerate(rows, start=1):
        if not r or not "".join(r).strip():
            continue
        try:
            a, b = float(r[0]), float(r[1])
        except (IndexError, ValueError):
            raise BillshapeInputError("lengths", path, f"rows of two numbers input,output (row {k}: {r!r})") from None
        if not (math.isfinite(a) and math.isfinite(b) and 1 <= a <= v.MAX_TOKENS and 1 <= b <= v.MAX_TOKENS):
            raise BillshapeInputError("lengths", path, f"token counts in [1, {v.MAX_TOKENS:g}] (row {k}: {r!r})")
        pairs.append((a, b))
    if not pairs:
        raise BillshapeInputError("lengths", path, "at least one input,output pair")
    arr = np.array(pairs, dtype=float)
    return arr[:, 0], arr[:, 1]


def length_distribution(spec: str, input_tokens: float | None = None, output_tokens: float | None = None,
                        requests: int | None = None) -> Lengths:
    """Per-request lengths from a shipped distribution name (``sharegpt``) or a CSV path of ``input,output`` pairs.

    ``requests`` N: N requests (quantile samples of a shipped distribution, or the file's rows cycled or cut to
    N); default all the file's rows or ``DEFAULT_SAMPLES``. ``input_tokens``/``output_tokens`` [tokens], when
    given, rescale that side so its mean is the given value (the shape stays).
    """
    key = str(spec).strip()
    n = None if requests is None else int(requests)
    if key.lower() in length_rows():
        row = length_rows()[key.lower()]
        m = DEFAULT_SAMPLES if n is None else n
        i = _lognormal_quantiles(m, row.input_mean, row.input_log_sd, row.input_min, row.input_max)
        o = _lognormal_quantiles(m, row.output_mean, row.output_log_sd, row.output_min, row.output_max)
        o = o[np.random.default_rng(0).permutation(m)]  # a fixed pairing, independent sides
        o = np.maximum(np.minimum(o, row.total_max - i), row.output_min)
        name, source, as_of = row.name, f"{row.source}; {row.note}", row.as_of
    else:
        i, o = _read_pairs(key)
        if n is not None:
            idx = np.arange(n) % i.size
            i, o = i[idx], o[idx]
        name, source, as_of = Path(key).name, f"user file {key}", None
    if input_tokens is not None:
        v.positive("input_tokens", input_tokens, v.MAX_TOKENS)
        i = i * float(input_tokens) / i.mean()
    if output_tokens is not None:
        v.positive("output_tokens", output_tokens, v.MAX_TOKENS)
        o = o * float(output_tokens) / o.mean()
    return Lengths(name=name, input_tokens=np.maximum(i, 1.0), output_tokens=np.maximum(o, 1.0), source=source,
                   as_of=as_of)


def batch_profile(output_steps: np.ndarray, slots: int) -> np.ndarray:
    """Running sequences at each decode step when the requests (in order) are admitted first come first served
    into ``slots`` concurrent slots, each holding its request for ``output_steps`` steps: ``b[s]``."""
    o = np.maximum(np.ceil(np.asarray(output_steps, dtype=float)), 1.0).astype(np.int64)
    c = max(int(slots), 1)
    if o.size <= c:
        start = np.zeros(o.size, dtype=np.int64)
    else:
        start = np.zeros(o.size, dtype=np.int64)
        free = [(int(x), k) for k, x in enumerate(o[:c])]
        heapq.heapify(free)
        for j in range(c, o.size):
            t, k = heapq.heappop(free)
            start[j] = t
            heapq.heappush(free, (t + int(o[j]), k))
    end = start + o
    diff = np.zeros(int(end.max()) + 1, dtype=np.int64)
    np.add.at(diff, start, 1)
    np.add.at(diff, end, -1)
    return np.cumsum(diff)[:-1]


def burst(roofline_fn, common: dict[str, Any], input_tokens: np.ndarray, output_tokens: np.ndarray,
          max_batch_cap: float, token_budget: float | None = None, mixed_prefill: bool = True) -> dict[str, float]:
    """One replica serving a burst of requests queued at t = 0 (see the module docstring).

    ``roofline_fn`` is :func:`billshape.serving_roofline.roofline`, ``common`` its keyword arguments without the
    lengths, batch and mode. Returns ``output_tokens_per_second``, ``input_tokens_per_second`` (prefill rate),
    ``decode_tokens_per_second`` (decode rate), ``makespan_seconds``, ``ttft_seconds`` (the first wave's
    prefill), ``tpot_seconds`` (token-weighted mean step), ``batch`` (concurrency), ``max_batch``,
    ``memory_bound``, ``weight_bytes``, ``expert_load_imbalance``, ``attention_dp_imbalance`` [tokens/s, s, count].

    ``token_budget`` (the engine's tokens per step: vLLM ``max_num_batched_tokens``, SGLang
    ``chunked_prefill_size``, TensorRT-LLM ``max_num_tokens``): the prompts are prefilled in chunks scheduled step
    by step (:func:`chunked_prefill_schedule`); with ``mixed_prefill`` the chunks ride in the decode steps (one
    forward pass, the weights read once: :func:`mixed_burst`), without it they run as prefill-only steps between
    decode steps. None: the prefill counted in full beside the decode steps (the model before chunked prefill).
    """
    if token_budget is not None:
        return mixed_burst(roofline_fn, common, input_tokens, output_tokens, max_batch_cap, token_budget,
                           mixed_prefill)
    i = np.asarray(input_tokens, dtype=float)
    o = np.asarray(output_tokens, dtype=float)
    i_mean, o_mean = float(i.mean()), float(o.mean())
    fit = roofline_fn(**common, input_tokens=i_mean, output_tokens=o_mean, batch=None, mode="static")
    fits = float(fit["max_batch"])
    conc = int(max(min(fits, max_batch_cap, i.size), 1.0))
    b = batch_profile(o, conc)
    sizes, counts = np.unique(b, return_counts=True)
    dec = roofline_fn(**common, input_tokens=i_mean, output_tokens=o_mean, batch=sizes.astype(float), mode="static")
    step = np.broadcast_to(np.asarray(dec["step_seconds"], dtype=float), sizes.shape)
    decode_s = float(np.sum(step * counts))
    i_star = float(np.sum(i * i) / np.sum(i))
    pre = roofline_fn(**common, input_tokens=i_star, output_tokens=o_mean, batch=float(conc), mode="static")
    per_token = float(pre["prefill_seconds"]) / (conc * i_star)
    prefill_s = per_token * float(i.sum())
    total = decode_s + prefill_s
    mem = np.broadcast_to(np.asarray(dec["memory_bound"]), sizes.shape)
    return {
        "output_tokens_per_second": float(o.sum()) / total, "input_tokens_per_second": float(i.sum()) / prefill_s,
        "decode_tokens_per_second": float(o.sum()) / decode_s, "makespan_seconds": total,
        "ttft_seconds": per_token * float(i[:conc].sum()), "tpot_seconds": decode_s / float(b.size),
        "batch": float(conc), "max_batch": fits, "memory_bound": bool(mem[np.argmax(counts * sizes)]),
        "weight_bytes": float(fit["weight_bytes"]),
        "expert_load_imbalance": float(np.asarray(pre["expert_load_imbalance"]).ravel()[0]),
        "attention_dp_imbalance": float(np.asarray(dec["attention_dp_imbalance"]).ravel()[-1]),
    }


def chunked_prefill_schedule(input_tokens, output_tokens, slots: int, token_budget: float,
                             mixed: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    r"""The steps of a burst under a chunked-prefill scheduler: runs of (decode sequences, prefill tokens, steps).

    Requests queued at t = 0 are admitted first come first served into ``slots`` concurrent slots. Each step has a
    budget of K = ``token_budget`` tokens: the running decodes take one each, then the partial prefills in arrival
    order, then new requests while a slot is free, the last one chunked (vLLM V1's scheduler: decodes first, then
    chunked prefills of waiting requests; Agrawal et al. 2024). A request's last prefill chunk also samples its
    first output token; it then decodes :math:`O_j - 1` steps and frees its slot. ``mixed`` False (SGLang's
    default, ``enable_mixed_chunk`` off): a step is prefill only (up to K prompt tokens) while prefill work can be
    scheduled, else a decode step of every running request.

    Parameters
    ----------
    input_tokens, output_tokens : array
        Per-request prompt and output lengths, in arrival order [tokens].
    slots : int
        Concurrent sequences C (scheduler cap or KV fit) [count].
    token_budget : float
        Tokens per step K (raised to C in mixed mode, so that every decode fits) [tokens].
    mixed : bool
        Chunks ride in decode steps (True) or run as prefill-only steps (False).

    Returns
    -------
    tuple
        ``decode`` sequences, ``prefill`` tokens and ``steps`` of each run of identical steps [count, tokens,
        count], and the index of the run in which the first C prompts (the first wave) finish their prefill.

    References
    ----------
    .. [1] Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with Sarathi-Serve", OSDI 2024,
           arXiv:2403.02310 (chunked prefills piggybacked on decode batches under a token budget).
    .. [2] vLLM V1 scheduler (vllm/v1/core/sched/scheduler.py: running requests first, then waiting ones, within
           ``max_num_batched_tokens``); SGLang server_args ``chunked_prefill_size``, ``enable_mixed_chunk``.
    """
    i_req = np.maximum(np.round(np.asarray(input_tokens, dtype=float)), 1.0).astype(np.int64)
    o_req = np.maximum(np.ceil(np.asarray(output_tokens, dtype=float)), 1.0).astype(np.int64)
    n, c = i_req.size, max(int(slots), 1)
    k_budget = max(int(token_budget), c) if mixed else max(int(token_budget), 1)
    clock = 0  # decode steps run so far (prefill-only steps do not advance it)
    nxt, active, decoding, done, first_wave, prefilled = 0, 0, 0, 0, -1, 0
    partial: list[list[int]] = []  # [request, prompt tokens left] in arrival order
    joins: dict[int, int] = {}  # clock -> requests that start decoding
    leaves: list[tuple[int, int]] = []  # heap of (clock, decoding delta) at which a slot frees
    runs_d, runs_p, runs_k = [], [], []

    def add(d, p, k):
        if runs_d and runs_d[-1] == d and runs_p[-1] == p:
            runs_k[-1] += k
        else:
            runs_d.append(d), runs_p.append(p), runs_k.append(k)

    while done < n:
        decoding += joins.pop(clock, 0)
        while leaves and leaves[0][0] <= clock:
            _, was_decoding = heapq.heappop(leaves)
            active, decoding, done = active - 1, decoding - was_decoding, done + 1
        if done >= n:
            break
        if not (partial or (nxt < n and active < c)):
            # no prefill to schedule: decode-only steps at a constant batch until the next event
            upcoming = [x for x in (leaves[0][0] if leaves else None, min(joins) if joins else None) if x is not None]
            k = max(min(upcoming) - clock, 1) if upcoming else 1
            if decoding > 0:
                add(decoding, 0, k)
            clock += k
            continue
        budget = k_budget - (decoding if mixed else 0)
        p, finished = 0, []
        while partial and p < budget:
            take = min(partial[0][1], budget - p)
            p += take
            partial[0][1] -= take
            if partial[0][1] == 0:
                finished.append(partial.pop(0)[0])
        while nxt < n and active < c and p < budget:
            take = min(int(i_req[nxt]), budget - p)
            p += take
            active += 1
            if take == int(i_req[nxt]):
                finished.append(nxt)
            else:
                partial.append([nxt, int(i_req[nxt]) - take])
            nxt += 1
        add(decoding if mixed else 0, p, 1)
        # a finished prompt has its first token; it decodes from the next decode step for O - 1 steps
        start = clock + 1 if mixed else clock
        for j in finished:
            o_j = int(o_req[j])
            if o_j > 1:
                joins[start] = joins.get(start, 0) + 1
            heapq.heappush(leaves, (start + o_j - 1, 1 if o_j > 1 else 0))
            prefilled += 1
            if prefilled == min(c, n) and first_wave < 0:
                first_wave = len(runs_d) - 1
        if mixed:
            clock += 1
    return (np.array(runs_d, dtype=float), np.array(runs_p, dtype=float), np.array(runs_k, dtype=float),
            max(first_wave, 0))


def mixed_burst(roofline_fn, common: dict[str, Any], input_tokens: np.ndarray, output_tokens: np.ndarray,
                max_batch_cap: float, token_budget: float, mixed_prefill: bool = True) -> dict[str, float]:
    r"""A burst under chunked prefill (:func:`chunked_prefill_schedule`), each step on the roofline.

    A step of d decodes and p prompt tokens is one forward pass: the roofline's step at batch d with p prefill
    tokens of the token-weighted prompt length :math:`I^* = \sum I_j^2 / \sum I_j` (``prefill_tokens_per_step``;
    weights and KV read once, the GEMM FLOPs of d + p tokens, the chunk's share of its prompts' causal
    attention), so :math:`T = \sum_{steps} t_{step}(d, p)`. The prefill's share of the time (for the input
    tokens/s) is each step's excess over the same step without its chunk, :math:`t(d, p) - t(d, 0)` (all of a
    prefill-only step). Returns what :func:`burst` returns.
    """
    i = np.asarray(input_tokens, dtype=float)
    o = np.asarray(output_tokens, dtype=float)
    i_mean, o_mean = float(i.mean()), float(o.mean())
    fit = roofline_fn(**common, input_tokens=i_mean, output_tokens=o_mean, batch=None, mode="static")
    fits = float(fit["max_batch"])
    conc = int(max(min(fits, max_batch_cap, i.size), 1.0))
    d, p, k, wave = chunked_prefill_schedule(i, o, conc, token_budget, mixed_prefill)
    i_star = float(np.sum(i * i) / np.sum(i))
    both = np.concatenate([d, d])
    chunk = np.concatenate([p, np.zeros_like(p)])
    r = roofline_fn(**common, input_tokens=i_mean, output_tokens=o_mean, batch=np.maximum(both, 1.0), mode="static",
                    prefill_tokens_per_step=chunk, prefill_input_tokens=i_star)
    step = np.broadcast_to(np.asarray(r["step_seconds"], dtype=float), both.shape)
    with_chunk, without = step[: d.size], step[d.size:]
    t_run = with_chunk * k
    total = float(t_run.sum())
    pre_run = np.where(p > 0, with_chunk - np.where(d > 0, without, 0.0), 0.0) * k
    prefill_s = max(float(pre_run.sum()), 1e-30)
    decode_s = max(total - prefill_s, 1e-30)
    dec_steps = float(np.sum(k[d > 0])) or 1.0
    mem = np.broadcast_to(np.asarray(r["memory_bound"]), both.shape)[: d.size]
    lam = np.broadcast_to(np.asarray(r["expert_load_imbalance"], dtype=float), both.shape)[: d.size]
    heavy = int(np.argmax(k * (d + p)))
    return {
        "output_tokens_per_second": float(o.sum()) / total, "input_tokens_per_second": float(i.sum()) / prefill_s,
        "decode_tokens_per_second": float(o.sum()) / decode_s, "makespan_seconds": total,
        "ttft_seconds": float(t_run[: wave + 1].sum()), "tpot_seconds": decode_s / dec_steps,
        "batch": float(conc), "max_batch": fits, "memory_bound": bool(mem[int(np.argmax(k * d))]),
        "weight_bytes": float(fit["weight_bytes"]), "expert_load_imbalance": float(lam[heavy]),
        "attention_dp_imbalance": float(np.asarray(fit["attention_dp_imbalance"]).ravel()[-1]),
    }
