"""The plan: a validated scenario with its prices resolved, evaluated by Monte Carlo as P10 / P50 / P90.

:class:`Plan` holds the scenario and its values by YAML path (a float or a :class:`~billshape.plan.dists.Dist`),
resolved at construction (:class:`~billshape.plan.resolver.PlanResolution`). :meth:`Plan.evaluate` draws the
uncertain inputs and evaluates the whole plan at once as numpy arrays, chunk by chunk on a small thread pool
(never a Python loop per sample): the first :data:`~billshape.plan.quantiles.MONTHLY_RESERVOIR` samples through
the monthly view of the P&L (:func:`billshape.plan.cashflow.monthly_pnl`, chunks of at most :data:`CHUNK_CELLS`
cells), the rest through its closed-form summaries (:func:`billshape.plan.cashflow.summary_pnl`, chunks of
:data:`SUMMARY_CHUNK` samples); then the exact quantiles (:mod:`billshape.plan.quantiles`), the tornado
(:meth:`Plan.sensitivity`) and build vs buy (:meth:`Plan.build_vs_buy`, V > F / (p - c), seed 003 section 37.5,
:func:`billshape.decide.break_even`), into a :class:`~billshape.plan.result.PlanResult`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable

import numpy as np

from billshape import decide
from billshape.errors import BillshapeInputError
from billshape.plan import cashflow
from billshape.plan.cashflow import (BAND_KEYS, EXTRA_KEYS, FLEET_EXTRA_KEYS, FLEET_MONTHLY_KEYS, FLEET_SUMMARY_KEYS,
                                     HIDDEN_KEYS, SUMMARY_KEYS, tokens_per_user)
from billshape.plan.cashflow import MONTHLY_KEYS as _MONTHLY_KEYS
from billshape.plan.dists import Dist, _draw_batch
from billshape.plan.quantiles import (
    BRACKET_MIN_REST,
    MONTHLY_RESERVOIR,
    QUANTILES,
    _brackets,
    _check_finite,
    _finite_or_none,
    _from_brackets,
    _gather,
    _monthly_quantiles,
    _order_values,
    _quantiles,
)
from billshape.plan.resolver import PlanResolution, _RouteSpec
from billshape.plan.result import PlanResult
from billshape.plan.schema import Scenario
from billshape.results import Assumption

CHUNK_CELLS = 200_000  # samples x months evaluated at once: arrays of 1.6 MB stay in cache (5x faster than 16 MB)
SUMMARY_CHUNK = 65_536  # samples per chunk of the summaries-only hot path (vectors of 512 kB: fewer, larger
# operations per chunk keep two threads busier than L2-sized ones, which spend their time handing over the GIL)
WORKERS = max(1, min(2, os.cpu_count() or 1))  # threads for the Monte Carlo chunks (the target machine has 2 cores)


class Plan(PlanResolution):
    """A validated scenario with its prices resolved: evaluate it with :meth:`evaluate`."""

    def __init__(self, scenario: Scenario, values: dict[str, Any], source: str = "scenario",
                 given: dict[str, str | None] | None = None):
        self.scenario = scenario
        self.values = values
        self.given = given if given is not None else {k: None for k in values}
        self.source = source
        self.assumptions: list[Assumption] = []
        self.routes: list[_RouteSpec] = []
        self.model_quotes: dict[str, dict[str, float]] = {}  # model: routes' serving quotes at the medians
        self._resolve()

    # -- inputs -----------------------------------------------------------------------------------------
    def uncertain(self) -> list[str]:
        """YAML paths of the inputs given as distributions."""
        return [k for k, v in self.values.items() if isinstance(v, Dist)]

    def median(self, path: str, default: float | None = None) -> float | None:
        v = self.values.get(path)
        if v is None:
            return default
        return v.ppf(0.5) if isinstance(v, Dist) else v

    # -- parameters ---------------------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator | None, n: int) -> dict[str, Any]:
        """One draw per sample of each uncertain input, shape (n, 1); certain inputs as floats."""
        out: dict[str, Any] = {}
        # the laws grouped by kind, so that each kind's rows are one block (see _draw_batch); the order is fixed
        # by the scenario, so a seed gives the same draws every time
        dists = sorted(((path, v) for path, v in self.values.items() if isinstance(v, Dist)),
                       key=lambda pv: ("triangular", "uniform", "normal", "lognormal").index(pv[1].kind))
        block = _draw_batch([v for _, v in dists], rng, n) if dists else None
        for path, v in self.values.items():
            out[path] = v
        for i, (path, _) in enumerate(dists):
            out[path] = block[i][:, None]
        return out

    def _medians(self) -> dict[str, Any]:
        return {p: (v.ppf(0.5) if isinstance(v, Dist) else v) for p, v in self.values.items()}

    # -- the model: the P&L terms of billshape.plan.cashflow, aggregated monthly or in closed form ----------
    def _route_costs(self, P: dict[str, Any]):
        """USD per user-month of API traffic and of self-hosted traffic, before the market paths."""
        return cashflow.route_costs(self, P)

    def _fixed_costs(self, P: dict[str, Any]):
        """Fixed monthly costs, set-up, the training bill and the retraining fraction per sample."""
        return cashflow.fixed_costs(self, P)

    def _simulate(self, P: dict[str, Any], monthly: bool = True) -> dict[str, np.ndarray]:
        """Evaluate the plan for a batch of parameter draws (arrays of shape (n, 1) or scalars), month by month
        (:func:`billshape.plan.cashflow.monthly_pnl` of :func:`~billshape.plan.cashflow.pnl_terms`)."""
        return cashflow.monthly_pnl(cashflow.pnl_terms(self, P), monthly)

    def _summaries(self, P: dict[str, Any]) -> dict[str, np.ndarray]:
        """The per-sample summaries of :meth:`_simulate` in closed form, the Monte Carlo hot path
        (:func:`billshape.plan.cashflow.summary_pnl` of the same :func:`~billshape.plan.cashflow.pnl_terms`)."""
        return cashflow.summary_pnl(cashflow.pnl_terms(self, P))

    def _training_patterns(self, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-month shares of the first bill: amortisation of the first run, of retrainings, retraining cash
        (computed once per plan and horizon; read-only)."""
        cache = self.__dict__.setdefault("_patterns", {})
        if H not in cache:
            cache[H] = tuple(a for a in cashflow.training_patterns(self.scenario.training, H))
            for a in cache[H]:
                a.flags.writeable = False
        return cache[H]

    # -- public -------------------------------------------------------------------------------------------
    def evaluate(self, samples: int = 20_000, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> "PlanResult":
        """Monte Carlo over the uncertain inputs; every output as P10 / P50 / P90.

        With no uncertain input a single deterministic evaluation is done (P10 = P50 = P90).
        """
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or not 1 <= samples <= 10_000_000:
            raise BillshapeInputError("samples", samples, "an integer in [1, 10,000,000]")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise BillshapeInputError("seed", seed, "an integer >= 0")
        H = self.scenario.horizon_months
        uncertain = self.uncertain()
        n_total = int(samples) if uncertain else 1
        # the first MONTHLY_RESERVOIR samples (the reservoir: the full monthly model, in chunks of at most
        # CHUNK_CELLS cells, a multiple of WORKERS of them), the rest in chunks of SUMMARY_CHUNK samples
        # (summaries only: no samples x months arrays)
        head = min(n_total, MONTHLY_RESERVOIR)
        n_res = -(-head * H // CHUNK_CELLS)
        n_res = min(head, -(-n_res // WORKERS) * WORKERS)
        sizes = [head // n_res + (1 if i < head % n_res else 0) for i in range(n_res)]
        sizes += [min(SUMMARY_CHUNK, n_total - start) for start in range(head, n_total, SUMMARY_CHUNK)]

        def draw(i: int, size: int) -> dict[str, Any]:
            # chunk i draws from its own stream: reproducible for a seed whatever the thread count
            return self._draw(np.random.default_rng([int(seed), i]), size)

        fleet = any(r.fleet is not None for r in self.routes)
        summary_keys = SUMMARY_KEYS + (FLEET_SUMMARY_KEYS if fleet else [])
        extra_keys = EXTRA_KEYS + (FLEET_EXTRA_KEYS if fleet else [])
        MONTHLY_KEYS = _MONTHLY_KEYS + (FLEET_MONTHLY_KEYS if fleet else [])  # noqa: N806
        scalar_keys = summary_keys + extra_keys + HIDDEN_KEYS
        keys = summary_keys + extra_keys  # the reported ones
        flat = {k: np.empty(n_total) for k in scalar_keys}  # each chunk writes its slice (no concatenation)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        kept: dict[str, list[np.ndarray]] = {k: [] for k in MONTHLY_KEYS}  # reservoir chunks, months x samples
        brackets: dict[str, list[tuple[float, float]]] = {}  # set from the reservoir before the other chunks run
        gathered: dict[str, list] = {k: [] for k in keys}

        def work(j: int):
            P = draw(j, sizes[j]) if uncertain else self._draw(None, 1)
            with np.errstate(all="ignore"):  # anything non-finite is caught just below
                out = self._summaries(P) if j >= n_res else self._simulate(P)
            _check_finite(out)
            for k in scalar_keys:
                flat[k][offsets[j]:offsets[j + 1]] = out[k]
            if j >= n_res:  # the candidates for each quantile, while the chunk is in cache
                if not brackets:
                    return None
                return {k: _gather(_order_values(k, out[k]), brackets[k]) for k in brackets}
            return {k: np.ascontiguousarray(out[k].T) for k in MONTHLY_KEYS}

        def monthly_band(k: str) -> np.ndarray:
            # monthly rows: months x samples, contiguous per month; the medians only where no band is drawn
            return _monthly_quantiles(np.concatenate(kept[k], axis=1), QUANTILES if k in BAND_KEYS else (0.5,))

        def quantiles(k: str):
            x = flat[k]
            got = None
            if k in brackets:
                got = _from_brackets(k, x, head, gathered[k], brackets[k])
            elif k in constant and np.all(x == x[0]):
                got = [float(x[0])] * len(QUANTILES)
            if got is None:  # no brackets (a small run), or a quantile outside its bracket: select over all samples
                return _quantiles(x, H if k == "payback_month" else None)
            if k == "payback_month":
                return {f"p{int(p * 100)}": (float(v) if v <= H else None) for p, v in zip(QUANTILES, got)}
            if not got:
                return {"p10": None, "p50": None, "p90": None}
            return {f"p{int(p * 100)}": float(v) for p, v in zip(QUANTILES, got)}

        # draws and the model, chunk by chunk on a small thread pool (numpy releases the GIL), collected in order:
        # first the reservoir (full monthly model), whose samples set each quantile's bracket; then the rest
        # (summaries only) with the monthly percentiles, which need only the reservoir, alongside; then the
        # quantiles of each outcome
        from concurrent.futures import ThreadPoolExecutor

        done = 0
        constant: set[str] = set()
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            pending = []

            def collect():
                nonlocal done
                j, fut = pending.pop(0)
                part = fut.result()
                done += sizes[j]
                if progress is not None:
                    progress(done, n_total)
                if j < n_res:
                    for k in MONTHLY_KEYS:
                        kept[k].append(part[k])
                elif part:
                    for k, v in part.items():
                        gathered[k].append(v)

            def run(js):
                for j in js:
                    pending.append((j, pool.submit(work, j)))
                    while len(pending) > 4 * WORKERS or (pending and pending[0][1].done()):
                        collect()
                while pending:
                    collect()

            run(range(n_res))
            if n_total - head >= BRACKET_MIN_REST:
                for k in keys:
                    sample = flat[k][:head]
                    if np.all(sample == sample[0]):  # the same in every sample so far: checked over all at the end
                        constant.add(k)
                    else:
                        brackets[k] = _brackets(_order_values(k, sample))
            band_jobs = {k: pool.submit(monthly_band, k) for k in MONTHLY_KEYS}
            run(range(n_res, len(sizes)))
            found_jobs = {k: pool.submit(quantiles, k) for k in keys}
            bands = {k: f.result() for k, f in band_jobs.items()}
            summary = {k: f.result() for k, f in found_jobs.items()}
        pb = flat["payback_month"]
        never = float(np.mean(~np.isfinite(pb)))
        pb_sample = pb[: min(pb.size, 5000)].copy()
        # month 0 of the cumulative cash band (minus the up-front spend): the reservoir's samples, as the other months
        q0 = _quantiles(-flat["upfront_usd"][:head], None, overwrite=True)
        start = [q0["p10"], q0["p50"], q0["p90"]]
        monthly = []
        for m in range(H):
            row: dict[str, Any] = {"month": m + 1}
            for k in MONTHLY_KEYS:
                row[k] = float(bands[k][1, m])
            monthly.append(row)
        band_rows = [{"month": 0, **{f"{k}_p{int(q * 100)}": (float(start[j])
                                                             if k == "cumulative_cash_usd" else None)
                                    for k in BAND_KEYS for j, q in enumerate(QUANTILES)}}]
        band_rows += [{"month": m + 1, **{f"{k}_p{int(q * 100)}": float(bands[k][j, m])
                                        for k in BAND_KEYS for j, q in enumerate(QUANTILES)}} for m in range(H)]
        sens = self.sensitivity()
        bvb = self.build_vs_buy()
        res = PlanResult(
            name=self.scenario.name, description=self.scenario.description, source=self.source,
            horizon_months=H, samples=n_total, seed=int(seed), uncertain_inputs=uncertain,
            summary={k: summary[k] for k in summary_keys},
            lifetime={k: summary[k] for k in extra_keys},
            probability_never_pays_back=never,
            monthly=monthly, sensitivity=sens, build_vs_buy=bvb,
            assumptions=list(self.assumptions), **self._dating(),
        )
        res._bands = band_rows
        res._payback_samples = [None if not math.isfinite(x) else float(x) for x in pb_sample]
        return res

    def _dating(self) -> dict[str, Any]:
        """The plan result's pricing date, staleness warnings (from that date) and catalog snapshot."""
        from billshape import snapshots, staleness

        day = self.pricing_day()
        return {"as_of": day.isoformat(), "warnings": staleness.warnings_for(self.assumptions, day),
                "snapshot": snapshots.active_id()}

    def sensitivity(self, metric: str = "npv_usd") -> list[dict[str, Any]]:
        """Tornado: the outcome at the medians of all inputs, moving one uncertain input to its P10 and P90.

        Sorted by swing (largest first). All rows are evaluated in one vectorised batch.
        """
        paths = self.uncertain()
        if not paths:
            return []
        med = self._medians()
        k = len(paths)
        P: dict[str, Any] = {}
        for p, v in med.items():
            P[p] = np.full((2 * k + 1, 1), v) if p in paths else v
        lows, highs = {}, {}
        for i, p in enumerate(paths):
            lows[p], highs[p] = self.values[p].ppf(0.1), self.values[p].ppf(0.9)
            P[p][2 * i + 1, 0] = lows[p]
            P[p][2 * i + 2, 0] = highs[p]
        with np.errstate(all="ignore"):
            out = self._simulate(P)
        _check_finite(out)
        y = out[metric]
        pb = out["payback_month"]
        base = float(y[0])
        rows = []
        for i, p in enumerate(paths):
            lo, hi = float(y[2 * i + 1]), float(y[2 * i + 2])
            rows.append({
                "input": p, "distribution": self.values[p].describe(),
                "input_p10": lows[p], "input_p50": float(med[p]), "input_p90": highs[p],
                "metric": metric, "base": base, "at_input_p10": lo, "at_input_p90": hi, "swing": abs(hi - lo),
                "payback_month_at_input_p10": _finite_or_none(pb[2 * i + 1]),
                "payback_month_at_input_p90": _finite_or_none(pb[2 * i + 2]),
            })
        rows.sort(key=lambda r: r["swing"], reverse=True)
        return rows

    def build_vs_buy(self) -> dict[str, Any] | None:
        """Build (self-host) vs buy (API) over lifetime token volume, at the inputs' medians.

        Present when the scenario has both an API route and a self-hosted route. Uses the product's token mix
        to blend each route's input/output prices into USD per million tokens, and
        :func:`billshape.decide.break_even` with F = the self-hosted set-up plus its standing cost over the
        horizon.
        """
        api = [r for r in self.routes if r.kind == "api"]
        own = [r for r in self.routes if r.kind != "api"]
        if not api or not own:
            return None
        med = self._medians()
        H = self.scenario.horizon_months

        def blended(route: _RouteSpec) -> float:
            single = dataclasses.replace(route, share=1.0)
            saved = self.routes
            self.routes = [single]
            try:
                a, o = self._route_costs(med)
            finally:
                self.routes = saved
            per_user = float(np.asarray(a + o).ravel()[0])
            tokens = tokens_per_user(med)
            return per_user / tokens * 1e6 if tokens > 0 else 0.0

        tokens_user = tokens_per_user(med)
        if tokens_user <= 0:
            return None
        p = blended(api[0])
        with np.errstate(all="ignore"):
            sim = self._simulate(med)
        lifetime_tokens = float(sim["users"].sum()) * tokens_user
        if own[0].fleet is not None:
            # a fleet's rent per token at the scenario's own volume (the rent steps with whole replicas: an
            # average, stated in the explanation)
            route_tokens = lifetime_tokens * own[0].share
            c = float(sim["lifetime_self_hosted_usd"][0]) / route_tokens * 1e6 if route_tokens > 0 else 0.0
        else:
            c = blended(own[0])
        F = float(med.get(own[0].prefix + ".setup_usd", 0.0) + med.get(own[0].prefix + ".fixed_monthly_usd", 0.0) * H)
        if p <= 0:
            return None
        be = decide.break_even(p, c, F)
        top = max(lifetime_tokens, be.break_even_tokens or 0.0) * 2.0 or 1.0
        volumes = np.linspace(0.0, top, 41)
        return {
            "api_route": api[0].name, "self_hosted_route": own[0].name,
            "api_usd_per_million_tokens": p, "own_usd_per_million_tokens": c, "fixed_usd": F,
            "break_even_tokens": be.break_even_tokens, "exists": be.exists,
            "explanation": be.explanation + (f" (the fleet's rent averaged over the {own[0].name} route's tokens at the "
                                             "scenario's volume: the rent steps with whole replicas)"
                                             if own[0].fleet is not None else ""),
            "scenario_lifetime_tokens": lifetime_tokens,
            "curve": [{"tokens": float(v), "buy_usd": float(b), "build_usd": float(bd)} for v, b, bd in zip(
                volumes, decide.buy_cost_usd(volumes, p / 1e6), decide.build_cost_usd(volumes, F, c / 1e6))],
        }

