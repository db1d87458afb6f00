"""Decisions built on the equations: build vs buy.

References
----------
.. [1] billshape seed 003, section 37.5: buying costs p V, building F + c V; building wins once
       V > F / (p - c), which exists only when c < p.
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v
from billshape.results import Result, user


def buy_cost_usd(volume_tokens, api_usd_per_token):
    """Cost of buying a volume through an API: ``p x V`` [USD]."""
    return np.asarray(api_usd_per_token, dtype=float) * np.asarray(volume_tokens, dtype=float)


def build_cost_usd(volume_tokens, fixed_usd, own_usd_per_token):
    """Cost of building: ``F + c x V`` [USD]."""
    return np.asarray(fixed_usd, dtype=float) + np.asarray(own_usd_per_token, dtype=float) * np.asarray(
        volume_tokens, dtype=float
    )


def break_even_tokens(fixed_usd, api_usd_per_token, own_usd_per_token):
    r"""Break-even volume of build vs buy: :math:`V^* = F / (p - c)`.

    Parameters
    ----------
    fixed_usd : numeric
        Fixed cost of building (standing up and reserving own capacity, training) [USD], >= 0.
    api_usd_per_token : numeric
        API price p [USD/token], > 0.
    own_usd_per_token : numeric
        Own marginal cost c [USD/token], >= 0.

    Returns
    -------
    numeric
        Break-even volume [tokens]; ``inf`` where ``c >= p`` (building never wins on price).

    References
    ----------
    .. [1] billshape seed 003, section 37.5.
    """
    v.non_negative("fixed_usd", fixed_usd)
    v.positive("api_usd_per_token", api_usd_per_token)
    v.non_negative("own_usd_per_token", own_usd_per_token)
    f = np.asarray(fixed_usd, dtype=float)
    margin = np.asarray(api_usd_per_token, dtype=float) - np.asarray(own_usd_per_token, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(margin > 0, f / np.where(margin > 0, margin, 1.0), np.inf)
    return out


class BreakEven(Result):
    """Build vs buy at constant prices."""

    exists: bool
    break_even_tokens: float | None
    break_even_million_tokens: float | None
    api_usd_per_million_tokens: float
    own_usd_per_million_tokens: float
    fixed_usd: float
    margin_usd_per_million_tokens: float
    explanation: str


def break_even(api_usd_per_million_tokens: float, own_usd_per_million_tokens: float, fixed_usd: float) -> BreakEven:
    """Break-even volume of building vs buying, with its assumptions.

    When the own marginal cost is at or above the API price there is no break-even: that is an answer
    (``exists=False``), not an error.
    """
    v.positive("api_usd_per_million_tokens", api_usd_per_million_tokens, v.MAX_USD_RATE)
    v.non_negative("own_usd_per_million_tokens", own_usd_per_million_tokens, v.MAX_USD_RATE)
    v.non_negative("fixed_usd", fixed_usd, v.MAX_USD)
    p = float(api_usd_per_million_tokens)
    c = float(own_usd_per_million_tokens)
    # V* = F / (p - c) with p, c per token, computed in per-million units (F x 1e6 / (p - c)): the same value,
    # exact for round inputs (1e11 rather than 99999999999.99998)
    vstar = float(fixed_usd) * 1e6 / (p - c) if p > c else float("inf")
    exists = bool(np.isfinite(vstar))
    if exists:
        text = (f"building wins above {vstar:,.0f} tokens ({vstar / 1e9:,.3g} billion): each million tokens "
                f"saves ${p - c:,.4g} against ${fixed_usd:,.0f} fixed")
    else:
        text = (f"no break-even: own cost ${c:,.4g}/M tokens is not below the API price ${p:,.4g}/M, so buying "
                "is cheaper at every volume")
    return BreakEven(
        exists=exists,
        break_even_tokens=vstar if exists else None,
        break_even_million_tokens=vstar / 1e6 if exists else None,
        api_usd_per_million_tokens=p,
        own_usd_per_million_tokens=c,
        fixed_usd=float(fixed_usd),
        margin_usd_per_million_tokens=p - c,
        explanation=text,
        assumptions=[
            user("api price p", p, "USD per million tokens", "api_usd_per_million_tokens"),
            user("own marginal cost c", c, "USD per million tokens", "own_usd_per_million_tokens"),
            user("fixed cost F", float(fixed_usd), "USD", "fixed_usd"),
        ],
    )


# =========================================================================================================
# Decisions over time (issue 4): inference-aware sizing, build vs buy over a horizon, capacity tiers,
# model ladders. References: Sardana et al. 2024 (arXiv:2401.00448); billshape seed 003 sections 37.4-37.5.
# =========================================================================================================

from billshape.errors import BillshapeInputError, unknown_name  # noqa: E402
from billshape.results import derived  # noqa: E402


# --------------------------------------------------------------------------------------------- sizing
MAX_LOSS = 100.0  # nats per token: a bound on `target_loss` (a uniform guess over e^100 tokens), not a default

class SizingPlan(Result):
    """Inference-aware model size (Sardana et al. 2024) against the Chinchilla plan for the same loss."""

    constants: str
    objective: str
    loss: float
    params: float
    tokens: float
    tokens_per_param: float
    training_flops: float
    inference_flops: float
    total_flops: float
    chinchilla_params: float
    chinchilla_tokens: float
    chinchilla_training_flops: float
    chinchilla_total_flops: float
    saving_fraction: float
    inference_tokens: float
    training_usd: float | None = None
    inference_usd: float | None = None
    total_usd: float | None = None
    chinchilla_total_usd: float | None = None
    usd_saving_fraction: float | None = None
    explanation: str


def size_model(inference_tokens: float, reference_params: float | None = None, reference_tokens: float | None = None,
               target_loss: float | None = None, constants: str = "sardana-2024",
               usd_per_gpu_hour: float | None = None, peak_flops_per_second: float | None = None,
               mfu_training: float | None = None, mfu_prefill: float | None = None,
               mfu_decode: float | None = None, decode_share: float | None = None,
               peak_source=None) -> SizingPlan:
    """Size a model for its lifetime: the fewest FLOPs (or dollars) that reach a loss and serve its tokens.

    The loss is ``target_loss``, or that of a reference model (``reference_params`` trained on
    ``reference_tokens``, or on its compute-optimal token count when not given). The Chinchilla plan is
    the compute-optimal model for the same loss, paying the same inference. Give all of
    ``usd_per_gpu_hour, peak_flops_per_second, mfu_training, mfu_prefill, mfu_decode, decode_share`` to
    minimise dollars instead of FLOPs (Sardana et al. 2024, Section 3).
    """
    from billshape import scaling as sc

    cs = sc.constant_set(constants)
    k = cs.as_kwargs()
    v.non_negative("inference_tokens", inference_tokens, v.MAX_TOKENS)
    assumptions = [cs.assumption(f"{cs.name} constants (E, A, B, alpha, beta)",
                                 f"{cs.E}, {cs.A}, {cs.B}, {cs.alpha}, {cs.beta}")]
    if (reference_params is None) == (target_loss is None):
        raise BillshapeInputError("reference_params/target_loss", None, "exactly one of the two")
    if target_loss is not None:
        if reference_tokens is not None:
            raise BillshapeInputError("reference_tokens", reference_tokens, "only with `reference_params`")
        sc._check_target(target_loss, cs.E)
        if not float(target_loss) <= MAX_LOSS:
            raise BillshapeInputError("target_loss", target_loss, f"in ({cs.E:g}, {MAX_LOSS:g}] nats per token")
        loss_value = float(target_loss)
        assumptions.append(user("target loss", loss_value, "nats per token", "target_loss"))
    else:
        v.positive("reference_params", reference_params, v.MAX_TOKENS)
        assumptions.append(user("reference parameters", float(reference_params), "parameters", "reference_params"))
        if reference_tokens is None:
            reference_tokens = float(sc.compute_optimal_tokens(reference_params, **k))
            assumptions.append(derived("reference tokens", reference_tokens, "tokens",
                                       f"compute-optimal for the reference size with {cs.name}"))
        else:
            v.positive("reference_tokens", reference_tokens, v.MAX_TOKENS)
            assumptions.append(user("reference tokens", float(reference_tokens), "tokens", "reference_tokens"))
        loss_value = float(sc.loss(reference_params, reference_tokens, **k))
        assumptions.append(derived("loss to reach", loss_value, "nats per token", "L(reference params, tokens)"))
    d_inf = float(inference_tokens)
    assumptions.append(user("lifetime inference tokens", d_inf, "tokens", "inference_tokens"))
    dollar_inputs = (usd_per_gpu_hour, peak_flops_per_second, mfu_training, mfu_prefill, mfu_decode, decode_share)
    dollars = any(x is not None for x in dollar_inputs)
    if dollars:
        names = ("usd_per_gpu_hour", "peak_flops_per_second", "mfu_training", "mfu_prefill", "mfu_decode", "decode_share")
        for name, val in zip(names, dollar_inputs):
            if val is None:
                raise BillshapeInputError(name, None, "given with the other dollar flags (" + ", ".join(f"`{n}`" for n in names) + ")")
        v.positive("usd_per_gpu_hour", usd_per_gpu_hour, v.MAX_USD_RATE)
        v.positive("peak_flops_per_second", peak_flops_per_second, v.MAX_FLOPS)
        for name, val in zip(names[2:5], dollar_inputs[2:5]):
            v.fraction(name, val)
        v.unit_interval("decode_share", decode_share)
        kt = float(sc.usd_per_flop(usd_per_gpu_hour, peak_flops_per_second, mfu_training))
        kp = float(sc.usd_per_flop(usd_per_gpu_hour, peak_flops_per_second, mfu_prefill))
        kd = float(sc.usd_per_flop(usd_per_gpu_hour, peak_flops_per_second, mfu_decode))
        prefill, decode = d_inf * (1 - decode_share), d_inf * decode_share
        n, d = sc.inference_aware_optimum_usd(loss_value, prefill, decode, kt, kp, kd, **k)
        assumptions += [
            user("accelerator price", float(usd_per_gpu_hour), "USD per GPU-hour", "usd_per_gpu_hour"),
            peak_source if peak_source is not None else user("peak FLOP/s", float(peak_flops_per_second), "FLOP/s"),
            user("training MFU", float(mfu_training), None, "mfu_training"),
            user("prefill MFU", float(mfu_prefill), None, "mfu_prefill"),
            user("decode MFU", float(mfu_decode), None, "mfu_decode"),
            user("decode share of inference tokens", float(decode_share), None, "decode_share"),
        ]
    else:
        n, d = sc.inference_aware_optimum(loss_value, d_inf, **k)
    n, d = float(n), float(d)
    nc, dc = (float(x) for x in sc.chinchilla_for_loss(loss_value, **k))
    train, infer = 6 * n * d, 2 * n * d_inf
    c_train, c_total = 6 * nc * dc, 6 * nc * dc + 2 * nc * d_inf
    out = dict(
        constants=cs.name, objective="usd" if dollars else "flops", loss=loss_value, params=n, tokens=d,
        tokens_per_param=d / n, training_flops=train, inference_flops=infer, total_flops=train + infer,
        chinchilla_params=nc, chinchilla_tokens=dc, chinchilla_training_flops=c_train, chinchilla_total_flops=c_total,
        saving_fraction=1 - (train + infer) / c_total, inference_tokens=d_inf,
    )
    if dollars:
        inf_usd_per_flop = (1 - decode_share) * kp + decode_share * kd
        usd_train, usd_inf = train * kt, infer * inf_usd_per_flop
        c_usd = c_train * kt + 2 * nc * d_inf * inf_usd_per_flop
        out.update(training_usd=usd_train, inference_usd=usd_inf, total_usd=usd_train + usd_inf,
                   chinchilla_total_usd=c_usd, usd_saving_fraction=1 - (usd_train + usd_inf) / c_usd)
    bad = [k for k, x in out.items() if isinstance(x, float) and not np.isfinite(x)]
    if bad or not n > 0 or not nc > 0:
        field, value = (("target_loss", target_loss) if target_loss is not None
                        else ("reference_params", reference_params))
        raise BillshapeInputError(field, value, "a loss the scaling law can reach with a finite plan",
                                  f"{(bad or ['params'])[0]} is not a finite positive number: the loss is too close "
                                  f"to E = {cs.E:g} or beyond any model's")
    what = "dollars" if dollars else "FLOPs"
    saving = out["usd_saving_fraction"] if dollars else out["saving_fraction"]
    text = (f"with {cs.name} constants, loss {loss_value:.4f} and {d_inf:.3g} inference tokens: train "
            f"{n / 1e9:,.3g}B parameters on {d / 1e12:,.4g}T tokens instead of the Chinchilla {nc / 1e9:,.3g}B on "
            f"{dc / 1e12:,.4g}T; saves {saving:.1%} of lifetime {what}")
    return SizingPlan(**out, explanation=text, assumptions=assumptions)


# --------------------------------------------------------------------------------------------- horizon
# Bounds on horizon inputs (not defaults, so not catalog rows): volume may at most double each month, and
# a discount rate of 1000% a year is beyond any cost of capital. Months and price trends: billshape.market.
MAX_GROWTH_PER_MONTH = 1.0
MAX_DISCOUNT_RATE = 10.0

def horizon_cashflows(fixed_usd, api_usd_per_token, own_usd_per_token, volume_tokens_per_month, months: int,
                      volume_growth_per_month=0.0, api_price_annual_factor=1.0, own_cost_annual_factor=1.0,
                      discount_rate_annual=0.0, api_price_steps=None, shift_months: int = 0):
    r"""Month-by-month build vs buy: buy = p(m) V(m); build = F (month 1) + c(m) V(m). Vectorised.

    Parameters
    ----------
    fixed_usd : numeric
        Fixed cost of building, paid in month 1 [USD], >= 0.
    api_usd_per_token, own_usd_per_token : numeric
        API price p and own marginal cost c in month 1 [USD/token].
    volume_tokens_per_month : numeric
        Volume in month 1 [tokens/month], >= 0.
    months : int
        Horizon [months], >= 1.
    volume_growth_per_month : numeric
        Compound growth of volume [fraction per month], > -1.
    api_price_annual_factor, own_cost_annual_factor : numeric
        Price trends [x per year] (0.1: ten times cheaper per year).
    discount_rate_annual : numeric
        Discount rate for NPV [fraction per year], >= 0; month m is discounted by (1+r)^-((m-1)/12).
    api_price_steps : list, optional
        One-off API price changes ``'MONTH:FACTOR'`` (see :func:`billshape.market.price_path`).
    shift_months : int
        Start the price paths this many months later (12 gives next year's prices).

    Returns
    -------
    dict of numpy.ndarray
        ``api_usd, own_usd, cumulative_api_usd, cumulative_own_usd, api_usd_per_token, own_usd_per_token``
        with shape ``(..., months)``; ``npv_saving_usd`` (discounted buy minus build, > 0 favours
        building) and ``crossover_month`` (first month, 1-based, where the cumulative build cost is at or
        below the cumulative buy cost after being above it or from month 1; 0 where never) with shape ``(...)``.

    References
    ----------
    .. [1] billshape seed 003, section 37.5 (V > F/(p - c); re-check against next year's API price).
    """
    from billshape import market

    v.non_negative("fixed_usd", fixed_usd, v.MAX_USD)
    v.positive("api_usd_per_token", api_usd_per_token)
    v.non_negative("own_usd_per_token", own_usd_per_token)
    v.non_negative("volume_tokens_per_month", volume_tokens_per_month, v.MAX_TOKENS)
    v.non_negative("discount_rate_annual", discount_rate_annual, MAX_DISCOUNT_RATE)
    g = np.asarray(volume_growth_per_month, dtype=float)
    if not np.all(np.isfinite(g)) or not np.all((g > -1) & (g <= MAX_GROWTH_PER_MONTH)):
        raise BillshapeInputError("volume_growth_per_month", volume_growth_per_month,
                                  f"in (-1, {MAX_GROWTH_PER_MONTH:g}] (a fraction per month; 0.05 = 5%)")
    months = market.check_months("months", months)
    market.check_annual_factor("api_price_annual_factor", api_price_annual_factor)
    market.check_annual_factor("own_cost_annual_factor", own_cost_annual_factor)
    total = months + int(shift_months)
    p = market.price_path(api_usd_per_token, total, api_price_annual_factor, api_price_steps)[..., shift_months:]
    own = np.asarray(own_usd_per_token, dtype=float)
    c = market.price_path(np.where(own > 0, own, 1.0), total, own_cost_annual_factor)[..., shift_months:]
    c = np.where(own[..., None] > 0, c, 0.0)
    m = np.arange(1, months + 1, dtype=float)
    vol = np.asarray(volume_tokens_per_month, dtype=float)[..., None] * (1.0 + g[..., None]) ** (m - 1.0)
    fixed = np.asarray(fixed_usd, dtype=float)[..., None] * (m == 1)
    api_usd = p * vol
    own_usd = fixed + c * vol
    api_usd, own_usd = np.broadcast_arrays(api_usd, own_usd)
    cum_api, cum_own = np.cumsum(api_usd, axis=-1), np.cumsum(own_usd, axis=-1)
    disc = (1.0 + np.asarray(discount_rate_annual, dtype=float)[..., None]) ** (-(m - 1.0) / 12.0)
    npv = np.sum((api_usd - own_usd) * disc, axis=-1)
    below = cum_own <= cum_api
    prev = np.concatenate([np.zeros_like(below[..., :1]), below[..., :-1]], axis=-1)
    cross = below & ~prev
    crossover = np.where(np.any(cross, axis=-1), np.argmax(cross, axis=-1) + 1, 0)
    m_idx = np.arange(months)
    back = prev & ~below & (m_idx >= crossover[..., None])  # build falls behind again after the crossover
    crossback = np.where(np.any(back, axis=-1) & (crossover > 0), np.argmax(back, axis=-1) + 1, 0)
    if not all(np.all(np.isfinite(x)) for x in (cum_api, cum_own, npv, p, c)):
        raise BillshapeInputError("months", months, "a horizon over which every cost stays finite",
                                  "volume growth and price trends compound past any float: shorten `months` or "
                                  "lower `volume_growth_per_month` / the annual factors")
    return {"api_usd": api_usd, "own_usd": own_usd, "cumulative_api_usd": cum_api, "cumulative_own_usd": cum_own,
            "api_usd_per_token": np.broadcast_to(p, api_usd.shape), "own_usd_per_token": np.broadcast_to(c, own_usd.shape),
            "npv_saving_usd": npv, "crossover_month": crossover, "crossback_month": crossback}


class BuildBuyHorizon(BreakEven):
    """Build vs buy month by month over a horizon, with NPV, crossover and a re-check a year on."""

    months: int
    volume_tokens_per_month: float
    monthly: list
    crossover_month: int | None
    crossback_month: int | None
    decision: str
    npv_saving_usd: float
    total_api_usd: float
    total_own_usd: float
    recheck: dict
    horizon_explanation: str


def build_vs_buy_horizon(api_usd_per_million_tokens: float, own_usd_per_million_tokens: float, fixed_usd: float,
                         volume_tokens_per_month: float, months: int, volume_growth_per_month: float = 0.0,
                         api_price_annual_factor: float = 1.0, api_price_steps=None,
                         own_cost_annual_factor: float = 1.0, discount_rate_annual: float = 0.0) -> BuildBuyHorizon:
    """Build vs buy over ``months``: monthly costs, NPV saving of building, crossover month, and ``recheck``:
    the same decision with the price paths started 12 months later (next year's API price).

    ``c >= p`` is an answer (buy; no crossover unless prices move), not an error.
    """
    from billshape import market

    base = break_even(api_usd_per_million_tokens, own_usd_per_million_tokens, fixed_usd)
    steps = market.parse_steps(api_price_steps)
    args = dict(volume_growth_per_month=volume_growth_per_month, api_price_annual_factor=api_price_annual_factor,
                own_cost_annual_factor=own_cost_annual_factor, discount_rate_annual=discount_rate_annual,
                api_price_steps=steps)
    # prices per million tokens and volumes in millions of tokens: the same costs as per token, with exact
    # arithmetic for round inputs (break-even 6.25e10, not 62499999999.99999)
    v.non_negative("volume_tokens_per_month", volume_tokens_per_month, v.MAX_TOKENS)
    months = market.check_months("months", months)
    p, c, vol_m = float(api_usd_per_million_tokens), float(own_usd_per_million_tokens), volume_tokens_per_month / 1e6
    now = horizon_cashflows(fixed_usd, p, c, vol_m, months, **args)
    later = horizon_cashflows(fixed_usd, p, c, vol_m, months, shift_months=12, **args)
    rows = [
        {"month": i + 1, "api_usd": float(now["api_usd"][i]), "own_usd": float(now["own_usd"][i]),
         "cumulative_api_usd": float(now["cumulative_api_usd"][i]),
         "cumulative_own_usd": float(now["cumulative_own_usd"][i]),
         "api_usd_per_million_tokens": float(now["api_usd_per_token"][i]),
         "own_usd_per_million_tokens": float(now["own_usd_per_token"][i])}
        for i in range(months)
    ]
    npv = float(now["npv_saving_usd"])
    cross = int(now["crossover_month"]) or None
    back = int(now["crossback_month"]) or None
    decision = "build" if npv > 0 else "buy"
    p12, c12 = float(later["api_usd_per_token"][0]), float(later["own_usd_per_token"][0])  # per million tokens
    be12 = float(fixed_usd) * 1e6 / (p12 - c12) if p12 > c12 else float("inf")
    npv12 = float(later["npv_saving_usd"])
    recheck = {"decision": "build" if npv12 > 0 else "buy",
               "break_even_tokens": be12 if np.isfinite(be12) else None,
               "api_usd_per_million_tokens": p12, "own_usd_per_million_tokens": c12,
               "npv_saving_usd": npv12, "crossover_month": int(later["crossover_month"]) or None}
    text = (f"over {months} months building {'saves' if npv > 0 else 'costs'} ${abs(npv):,.0f} in present value "
            f"({'crossover in month ' + str(cross) if cross else 'no crossover'}"
            f"{', build falls behind again in month ' + str(back) if back else ''}): {decision}; at the API price "
            f"12 months on (${p12:,.4g}/M) the answer is {recheck['decision']}")
    if recheck["decision"] != decision:
        text += " -- the decision flips: re-check before committing capital"
    data = base.model_dump()
    data["assumptions"] = list(base.assumptions) + [
        user("volume in month 1", float(volume_tokens_per_month), "tokens per month", "volume_tokens_per_month"),
        user("horizon", int(months), "months", "months"),
        user("volume growth", float(volume_growth_per_month), "fraction per month", "volume_growth_per_month"),
        user("API price trend", float(api_price_annual_factor), "x per year", "api_price_annual_factor"),
        user("API price steps", [f"{m}:{f:g}" for m, f in steps], "MONTH:FACTOR", "api_price_steps"),
        user("own cost trend", float(own_cost_annual_factor), "x per year", "own_cost_annual_factor"),
        user("discount rate", float(discount_rate_annual), "fraction per year", "discount_rate_annual"),
    ]
    return BuildBuyHorizon(
        **data, months=int(months), volume_tokens_per_month=float(volume_tokens_per_month), monthly=rows,
        crossover_month=cross, crossback_month=back, decision=decision, npv_saving_usd=npv,
        total_api_usd=float(now["cumulative_api_usd"][-1]), total_own_usd=float(now["cumulative_own_usd"][-1]),
        recheck=recheck, horizon_explanation=text,
    )


# --------------------------------------------------------------------------------------------- re-exports
# Input readers (billshape.io), capacity tiers (billshape.decide_capacity) and model routing
# (billshape.decide_routing) live in their own modules; their public names stay importable from here.
from billshape.io import SHIPPED_DEMANDS, SHIPPED_LADDERS, read_input_text  # noqa: E402
from billshape.decide_capacity import (  # noqa: E402
    MAX_INTERRUPTIONS_PER_HOUR, CapacityPlan, capacity_plan, optimal_reserved_level, read_demand,
    spot_overhead_factor, tiered_cost_usd)
from billshape.decide_routing import (  # noqa: E402
    LadderChoice, cascade_cost_quality, read_ladder, route, usd_text)
