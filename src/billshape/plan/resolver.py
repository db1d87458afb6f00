"""Resolving a scenario's prices once, before any draw: routes, API and GPU prices, trends, the training bill.

:class:`PlanResolution` (mixed into :class:`billshape.plan.model.Plan`) checks each serving route (exactly one
of ``api:`` or ``self_hosted:``; a self-hosted route priced by measured $/M tokens, a measured deployment, or
``model:`` + ``gpu:`` through the roofline serving model, evaluated once at the medians), prices API routes (:func:`billshape.plan.prices.api_price`, at ``serving.api_prices_as_of`` or the
shipped default date, stated in the assumptions) and GPUs (:func:`billshape.catalog.price`),
reads named market trends (:func:`billshape.market.trend`) and computes the training bill at the inputs' medians.
The roofline and the training bill run through :func:`billshape.chains.run` on the typed requests the CLI builds
(a :class:`~billshape.chains.requests.ServeRequest` at ``batch="max"``, as
:func:`billshape.serving.self_hosted_price`; a :class:`~billshape.chains.requests.TrainRequest`), so the plan
and ``billshape serve``/``train`` share one path. Each default it uses is appended to the plan's assumptions. A
library error is re-raised under the scenario key it came from (:data:`billshape.plan.errors.FLAG_TO_PATH`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from typing import Any

from billshape import market
from billshape.errors import BillshapeInputError
from billshape.plan.dists import Dist
from billshape.plan.errors import scenario_key
from billshape.plan.prices import ApiPrice, api_price
from billshape.plan.schema import TREND_KINDS, SelfHosted
from billshape.results import Assumption, derived, user

@dataclasses.dataclass
class _RouteSpec:
    index: int
    name: str
    kind: str  # "api" | "measured" | "deployment" | "model"
    share: float
    prefix: str  # yaml path of the route's api/self_hosted block
    api: ApiPrice | None = None
    fleet: dict | None = None  # a rented fleet (no utilization): replica size and capacity, see _resolve_fleet

class PlanResolution:
    """Resolution steps of a :class:`~billshape.plan.model.Plan` (run once by its constructor).

    Expects ``scenario``, ``values`` (YAML path -> float | Dist), ``given``, ``source``, ``assumptions``,
    ``routes``, ``model_quotes`` and :meth:`median` on the instance; sets ``routes``, ``model_quotes``,
    ``training_usd_p50`` and ``training_scale_paths`` and fills in the catalog prices it looks up.
    """

    scenario: Any
    values: dict[str, Any]


    def _resolve(self) -> None:
        """Resolve the scenario's prices; with an ``as_of:`` (or ``load(..., as_of=)``), catalog look-ups take the
        quotes in force on that date (:func:`billshape.staleness.set_pricing_day`)."""
        from billshape import staleness

        token = staleness.set_pricing_day(self._explicit_day())
        try:
            self._resolve_all()
        finally:
            staleness.reset_pricing_day(token)

    def _explicit_day(self) -> "_dt.date | None":
        """The scenario's ``as_of:`` as a date (``today``: :func:`billshape.staleness.today`), else None."""
        from billshape import staleness

        given = getattr(self.scenario, "as_of", None)
        return staleness.today() if given == "today" else given

    def pricing_day(self) -> "_dt.date":
        """The plan's pricing date: ``as_of:``, else ``serving.api_prices_as_of``, else the shipped default date
        (:func:`billshape.api_prices.default_day`); staleness is measured from it."""
        from billshape import api_prices, staleness

        day = self._explicit_day()
        if day is not None:
            return day
        given = self.scenario.serving.api_prices_as_of
        if given is not None:
            return staleness.today() if given == "today" else given
        return api_prices.default_day()

    def _resolve_all(self) -> None:
        s = self.scenario
        if self._explicit_day() is not None:
            day0 = self._explicit_day()
            self.assumptions.append(Assumption(name="as_of", value=day0.isoformat(), unit="date (UTC)",
                                               source=f"user input ({self.source}): the plan's pricing date",
                                               as_of=day0.isoformat()))
        flag = self.source
        for path, unit in self.given.items():
            v = self.values[path]
            shown = v.describe() if isinstance(v, Dist) else v
            self.assumptions.append(user(path, shown, unit, flag))
        routes = s.serving.routes
        if routes:
            total = sum(r.share for r in routes)
            if abs(total - 1.0) > 1e-6:
                raise BillshapeInputError(f"serving.routes[{len(routes) - 1}].share", routes[-1].share,
                                          "shares that sum to 1", f"the shares sum to {total:g}")
        day = None  # the pricing date of the API routes, fixed once for all of them
        for i, r in enumerate(routes):
            base = f"serving.routes[{i}]"
            if (r.api is None) == (r.self_hosted is None):
                raise BillshapeInputError(base, r.name or i, "exactly one of api: or self_hosted:")
            if r.api is not None:
                prefix = base + ".api"
                given = [k for k in ("usd_per_million_input_tokens", "usd_per_million_output_tokens")
                         if f"{prefix}.{k}" in self.values]
                price = None
                if len(given) < 2:
                    if day is None:
                        day = self._resolve_prices_day()
                    price = api_price(r.api.model, r.api.provider, prefix + ".model", day)
                    self.assumptions.extend(price.assumptions)
                self.routes.append(_RouteSpec(i, r.name or r.api.model, "api", r.share, prefix, price))
            else:
                prefix = base + ".self_hosted"
                h = r.self_hosted
                measured = h.usd_per_million_output_tokens is not None
                deployment = h.tokens_per_second is not None
                modelled = h.model is not None
                if measured + deployment + modelled != 1:
                    many = measured + deployment + modelled > 1
                    key = (".model" if modelled else ".tokens_per_second") if many else ""
                    raise BillshapeInputError(prefix + key, getattr(h, key[1:]) if many else "...", "exactly one of: usd_per_million_input_tokens + "
                                              "usd_per_million_output_tokens; tokens_per_second + gpus + "
                                              "usd_per_gpu_hour (or gpu + provider [+ tier]); model + gpu (+ gpus, "
                                              "precision, price or provider)")
                for k in ("precision", "kv_precision", "tp"):
                    if not modelled and getattr(h, k) is not None:
                        raise BillshapeInputError(f"{prefix}.{k}", getattr(h, k), "only with model:")
                if measured:
                    if h.usd_per_million_input_tokens is None:
                        raise BillshapeInputError(prefix + ".usd_per_million_input_tokens", None, "a price >= 0")
                    for k in ("gpus", "usd_per_gpu_hour", "utilization", "input_tokens_per_second", "gpu", "provider", "tier"):
                        if getattr(h, k) is not None:
                            raise BillshapeInputError(f"{prefix}.{k}", getattr(h, k), "only with tokens_per_second")
                    kind = "measured"
                elif deployment:
                    if h.gpus is None:
                        raise BillshapeInputError(prefix + ".gpus", None, "a GPU count > 0 (with tokens_per_second)")
                    if h.usd_per_million_input_tokens is not None or h.usd_per_million_cached_input_tokens is not None:
                        raise BillshapeInputError(prefix + ".usd_per_million_input_tokens", "...",
                                                  "only with a measured usd_per_million_output_tokens")
                    self._resolve_gpu_price(prefix, h)
                    kind = "deployment"
                else:
                    for k in ("usd_per_million_input_tokens", "usd_per_million_cached_input_tokens", "input_tokens_per_second"):
                        if getattr(h, k) is not None:
                            raise BillshapeInputError(f"{prefix}.{k}", "...", "omitted with model: (the serving model gives it)")
                    self._resolve_gpu_price(prefix, h)
                    self._resolve_model_route(prefix, h)
                    kind = "model"
                fleet_keys = [k for k in ("replicas", "min_replicas", "peak_to_mean", "tpot_limit", "ttft_limit")
                              if getattr(h, k) is not None]
                fleet = None
                if kind == "measured" or h.utilization is not None:
                    if fleet_keys:
                        raise BillshapeInputError(f"{prefix}.{fleet_keys[0]}", getattr(h, fleet_keys[0]),
                                                  "only for a fleet: a model: or tokens_per_second route without "
                                                  "utilization (billed per provisioned GPU-hour)")
                    if kind != "measured":
                        self.assumptions.append(derived(
                            f"{prefix}: billing", "billed per served token, not per provisioned hour", None,
                            f"{prefix}.utilization is given: cost per token = $/hour / (tokens/hour x utilization); "
                            "drop utilization to bill the fleet's every GPU-hour"))
                else:
                    fleet = self._resolve_fleet(prefix, h, kind)
                self.routes.append(_RouteSpec(i, r.name or f"self-hosted #{i}", kind, r.share, prefix, fleet=fleet))
        if routes:
            p = s.product
            if p.requests_per_user_month == 0 and "product.requests_per_user_month" not in self.uncertain():
                self.assumptions.append(derived("requests per user-month", 0.0, "requests",
                                                "product.requests_per_user_month not given: no inference cost"))
        else:
            self.assumptions.append(Assumption(name="serving cost", value=0.0, unit="USD",
                                               source="no serving.routes given: inference cost excluded (as in seed 000)",
                                               as_of=None))
        self._resolve_trends()
        self._resolve_training()

    def _resolve_prices_day(self) -> "_dt.date":
        """The UTC date the API routes are priced at: ``serving.api_prices_as_of`` (a date, or ``today``) or the
        shipped default (:func:`billshape.api_prices.default_day`), stated as an assumption."""
        from billshape import api_prices, staleness

        explicit = self._explicit_day()
        if explicit is not None:  # as_of: prices the whole plan, API routes included (stated once, as "as_of")
            return explicit
        key = "serving.api_prices_as_of"
        given = self.scenario.serving.api_prices_as_of
        if given is None:
            self.assumptions.append(api_prices.default_day_assumption(key))
            return api_prices.default_day()
        if given == "today":
            day = staleness.today()
            self.assumptions.append(Assumption(name=key, value=day.isoformat(), unit="date (UTC)",
                                               source=f"user input ({self.source}): today", as_of=day.isoformat()))
            return day
        self.assumptions.append(Assumption(name=key, value=given.isoformat(), unit="date (UTC)",
                                           source=f"user input ({self.source})", as_of=given.isoformat()))
        return given

    def _resolve_trends(self) -> None:
        """``market.api_price_trend: NAME`` (and ``gpu_price_trend``): the annual factor of a named trend of
        ``data/price_trends.csv`` (:func:`billshape.market.trend`), with its source in the assumptions."""
        m = self.scenario.market
        for key, kinds in TREND_KINDS.items():
            name = getattr(m, key)
            if name is None:
                continue
            field = f"market.{key}"
            number = f"market.{key}_annual"
            if number in self.given:
                raise BillshapeInputError(field, name, f"either {key} (a name) or {key}_annual (a number), not both")
            allowed = {n: t for n, t in market.trends().items() if t.applies_to in kinds}
            if str(name).strip().lower() not in allowed:
                from billshape.errors import unknown_name

                raise unknown_name(field, name, allowed)
            row = market.trend(name, field)
            self.values[number] = float(row.annual_factor)
            self.assumptions.append(row.assumption(f"{field}: {row.name} ({row.applies_to})", row.annual_factor,
                                                   "x per year"))

    def _resolve_model_route(self, prefix: str, h: SelfHosted) -> None:
        """$/M input and output tokens of a ``model:`` route from the serve chain at max load (the figures of
        :func:`billshape.serving.self_hosted_price`).

        The roofline is evaluated ONCE, at the medians of the product's request shape (input tokens; output
        tokens x reasoning multiplier) and of the route's $/GPU-hour and utilization. Throughput does not
        depend on the price or the utilization, and the cost is linear in price / utilization, so a Monte Carlo
        sample's cost is the median cost x (price / its median) x (utilization median / utilization): vectorised,
        no roofline call per sample. ``gpus`` and ``tp`` (which change the throughput) must be plain numbers.
        """
        from billshape import chains

        for k in ("gpus", "tp"):
            if isinstance(self.values.get(f"{prefix}.{k}"), Dist):
                raise BillshapeInputError(f"{prefix}.{k}", self.values[f"{prefix}.{k}"].describe(),
                                          "a plain number with model: (the roofline is evaluated once)")
        if h.gpu is None:
            raise BillshapeInputError(prefix + ".gpu", None, "an accelerator name (with model:), e.g. h100")
        t_in = self.median("product.input_tokens_per_request", 0.0)
        t_out = self.median("product.output_tokens_per_request", 0.0) * self.median("product.reasoning_multiplier", 1.0)
        price = self.median(prefix + ".usd_per_gpu_hour")
        util = self.median(prefix + ".utilization", 1.0)
        if t_in <= 0 or t_out <= 0:
            raise BillshapeInputError("product.input_tokens_per_request" if t_in <= 0 else "product.output_tokens_per_request",
                                      t_in if t_in <= 0 else t_out, "> 0 with a self_hosted model: route (the roofline "
                                      "sizes the batch on the request shape)")
        try:  # the request `billshape serve --model ... --batch max` builds: the same chain as the CLI's
            est = chains.run(chains.ServeRequest(
                model=h.model, gpu=h.gpu, gpus=self.values.get(prefix + ".gpus"), tp=self.values.get(prefix + ".tp"),
                precision=h.precision or "fp8", kv_precision=h.kv_precision, input_tokens=t_in, output_tokens=t_out,
                batch="max", price=price, utilization=util))
        except BillshapeInputError as exc:
            key = scenario_key("self_hosted_model", exc.field)
            raise BillshapeInputError(f"{prefix}.{key}", exc.value, exc.allowed, exc.hint) from None
        quote = {k: getattr(est, k) for k in ("usd_per_million_input_tokens", "usd_per_million_output_tokens",
                                              "output_tokens_per_second", "usd_per_hour", "replicas",
                                              "tensor_parallel", "gpus")}
        self.model_quotes[prefix] = {**quote, "usd_per_gpu_hour": price, "utilization": util}
        label = f"{h.model} on {h.gpu} ({h.precision or 'fp8'})"
        src = (f"billshape.serving.self_hosted_price: {label}, "
               f"{t_in:g} in + {t_out:g} out tokens per request, at the medians of price and utilization")
        self.assumptions += [
            derived(f"{label} output throughput", quote["output_tokens_per_second"], "tokens/s", src),
            derived(f"{label} input price", quote["usd_per_million_input_tokens"], "USD per million tokens", src),
            derived(f"{label} output price", quote["usd_per_million_output_tokens"], "USD per million tokens", src),
            derived(f"{label} cached input price", 0.0, "USD per million tokens",
                    "a cached prefix skips prefill (as billshape.serving.serve)"),
        ]

    def _resolve_fleet(self, prefix: str, h: SelfHosted, kind: str) -> dict:
        r"""A fleet route's replica: its GPUs, the requests/s one replica serves (at the service level, from the
        serving model; or a measured deployment's ``tokens_per_second`` / output tokens per request, per sample),
        ``replicas`` (fixed) or auto with ``min_replicas``, and ``peak_to_mean``.

        Each month it provisions :math:`N_m = \max(N_{min}, \lceil \bar\lambda_m X / c \rceil)` replicas
        (auto) and pays :math:`N_m \, g \, H_m \, p` (:func:`billshape.plan.cashflow.fleet_rows`)."""
        from billshape import catalog, chains
        from billshape.fleet import sizing

        t_out = self.median("product.output_tokens_per_request", 0.0) * self.median("product.reasoning_multiplier", 1.0)
        if kind == "model":
            q = self.model_quotes[prefix]
            g_rep = int(q["tensor_parallel"])
            if h.tpot_limit is not None or h.ttft_limit is not None:
                try:
                    cap = chains.run(chains.ServeRequest(
                        model=h.model, gpu=h.gpu, tp=g_rep, precision=h.precision or "fp8", kv_precision=h.kv_precision,
                        input_tokens=self.median("product.input_tokens_per_request"), output_tokens=t_out,
                        requests_per_second=1.0, tpot_limit=self.median(prefix + ".tpot_limit"),
                        ttft_limit=self.median(prefix + ".ttft_limit")))
                except BillshapeInputError as exc:
                    key = scenario_key("self_hosted_model", exc.field)
                    raise BillshapeInputError(f"{prefix}.{key}", exc.value, exc.allowed, exc.hint) from None
                c = cap.replica_requests_per_second
                how = f"the largest batch within {prefix}'s tpot_limit/ttft_limit (billshape serve `requests_per_second`)"
            else:
                c = q["output_tokens_per_second"] / q["replicas"] / t_out
                how = "the serving model at the largest batch that fits (batch max), / output tokens per request"
            min_default = max(1.0, float(q["gpus"]) / g_rep)
            capacity_path = None
            self.assumptions.append(derived(f"{prefix}: replica", f"{g_rep} x {h.gpu} ({c:,.4g} requests/s)",
                                            "GPUs", how))
        else:
            for k in ("gpus",):
                if isinstance(self.values.get(f"{prefix}.{k}"), Dist):
                    raise BillshapeInputError(f"{prefix}.{k}", self.values[f"{prefix}.{k}"].describe(),
                                              "a plain number for a fleet (a replica is a whole deployment)")
            if h.tpot_limit is not None or h.ttft_limit is not None:
                raise BillshapeInputError(prefix + ".tpot_limit", h.tpot_limit or h.ttft_limit,
                                          "only with model: (a measured throughput has its own latency)")
            g_rep = float(self.values[prefix + ".gpus"])
            c = None  # per sample: tokens_per_second / output tokens per request
            capacity_path = prefix + ".tokens_per_second"
            min_default = 1.0
        fixed = h.replicas if isinstance(h.replicas, int) else None
        if fixed is not None and h.min_replicas is not None:
            raise BillshapeInputError(prefix + ".min_replicas", h.min_replicas, "only with replicas: auto")
        if h.peak_to_mean is None:
            x, a = sizing.default_peak_to_mean()
            self.values[prefix + ".peak_to_mean"] = x
            self.assumptions.append(a.model_copy(update={"name": f"{prefix}.peak_to_mean"}))
        if h.min_replicas is None and fixed is None:
            self.values[prefix + ".min_replicas"] = min_default
            self.assumptions.append(derived(f"{prefix}.min_replicas", min_default, "replicas",
                                            "gpus / tp (the deployment as written), at least 1"))
        hours = catalog.constant("hours_per_year")
        self.assumptions += [
            derived(f"{prefix}: billing", "every provisioned GPU-hour", None,
                    "a fleet (no utilization): whole replicas rented all month, "
                    + (f"{fixed} replicas" if fixed else "sized each month for that month's peak (mean requests/s "
                       "x peak_to_mean)")),
            hours.assumption("hours per year", hours.value, "h"),
        ]
        return {"gpus_per_replica": float(g_rep), "replica_requests_per_second": c, "capacity_path": capacity_path,
                "replicas": fixed, "hours_per_month": hours.value / 12.0}

    def _resolve_gpu_price(self, prefix: str, h: SelfHosted) -> None:
        from billshape import catalog

        if h.usd_per_gpu_hour is not None:
            if h.provider is not None:
                raise BillshapeInputError(prefix + ".provider", h.provider, "omitted when usd_per_gpu_hour is given")
            return
        if h.provider is None or h.gpu is None:
            raise BillshapeInputError(prefix + ".usd_per_gpu_hour", None,
                                      "a price, or gpu: and provider: [tier:] to price from the catalog")
        try:
            quote = catalog.price(h.gpu, h.provider, h.tier or "on-demand")
        except BillshapeInputError as exc:
            key = scenario_key("self_hosted_gpu_price", exc.field)
            raise BillshapeInputError(f"{prefix}.{key}", exc.value, exc.allowed, exc.hint) from None
        self.values[prefix + ".usd_per_gpu_hour"] = quote.usd_per_gpu_hour
        self.assumptions.append(quote.assumption(f"{quote.provider} {quote.gpu} {quote.tier} price",
                                                 quote.usd_per_gpu_hour, "USD/GPU-hour"))

    def _resolve_training(self) -> None:
        from billshape import chains

        t = self.scenario.training
        self.training_usd_p50 = 0.0
        self.training_scale_paths: list[str] = []
        if t is None:
            return
        given = {k for k in ("gpus", "days", "hours", "gpu_hours", "usd_per_gpu_hour") if getattr(t, k) is not None}
        if t.total_usd is not None:
            if given or t.gpu or t.provider:
                raise BillshapeInputError("training.total_usd", "...", "either total_usd or the run (gpus, days, ...), not both")
            self.training_usd_p50 = self.median("training.total_usd")
            self.training_scale_paths = ["training.total_usd"]
            return
        try:  # the request `billshape train` builds: the same chain as the CLI's
            bill = chains.run(chains.TrainRequest(
                gpu=t.gpu, gpus=self.median("training.gpus"), days=self.median("training.days"),
                hours=self.median("training.hours"), gpu_hours=self.median("training.gpu_hours"),
                price=self.median("training.usd_per_gpu_hour"), provider=t.provider, tier=t.tier, method=t.method))
        except BillshapeInputError as exc:
            key = scenario_key("training", exc.field)
            raise BillshapeInputError(f"training.{key}", exc.value, exc.allowed, exc.hint) from None
        self.training_usd_p50 = bill.total_usd
        # The bill is linear in each of these inputs (GPU-hours x price; amortised: rate x hours + energy ~ hours):
        # a sample's bill is the median bill scaled by each input's ratio to its median.
        self.training_scale_paths = [f"training.{k}" for k in sorted(given)]
        for a in bill.assumptions:
            if a.source.startswith("user input") or a.name == "rnd_compute_multiplier":
                continue  # the scenario's own inputs are listed already
            self.assumptions.append(a.model_copy(update={"name": "training: " + a.name}))
        self.assumptions.append(derived("training bill (at the inputs' medians)", bill.total_usd, "USD",
                                        "billshape.estimates.training_bill"))

