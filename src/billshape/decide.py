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


# --------------------------------------------------------------------------------------------- input files
# Inputs shipped in billshape/data that `ladder` / `demand` accept by name, so that the examples work from an
# installed package as well as from a repository checkout (a path to a file always works too).
SHIPPED_LADDERS = {"frugalgpt-headlines": "ladder_frugalgpt.yaml"}
SHIPPED_DEMANDS = {"example-week": "demand_week.csv"}


def read_input_text(path, field: str, shipped: dict | None = None, what: str = "a readable file") -> tuple[str, str]:
    """Text of a user input, or of a shipped input named in ``shipped`` (name -> file in billshape/data).

    ``path`` is a path, the text itself, bytes or a file object (:func:`billshape.io.read_source`). Returns
    ``(text, label)``. A file that exists wins over a shipped name. Text is UTF-8 (a byte-order mark is dropped);
    anything else is a :class:`BillshapeInputError` naming ``field``.
    """
    from billshape.io import read_source

    return read_source(path, field, shipped=shipped, what=what)


# --------------------------------------------------------------------------------------------- capacity
MAX_INTERRUPTIONS_PER_HOUR = 3600.0  # one a second: a bound, not a default

def optimal_reserved_level(demand_gpus, reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour):
    r"""Cost-minimising reserved level for an hourly demand profile (vectorised over prices).

    Reserving one more GPU costs ``r`` every hour and saves ``o`` in each hour that demand exceeds the
    level, so the cost falls while the share of hours above the level exceeds ``r / o``: the optimum is the
    lowest level (0 or a demand value) with ``share(demand > level) <= r / o``. With ``r >= o`` it is 0.

    Parameters
    ----------
    demand_gpus : array_like, shape (hours,)
        GPUs needed in each hour [GPU], >= 0.
    reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour : numeric
        Prices [USD/GPU-hour], > 0; arrays broadcast into a sweep.

    Returns
    -------
    numeric
        Reserved GPUs [GPU]; never decreases when the on-demand price rises.

    References
    ----------
    .. [1] billshape seed 003, section 37.4 (reserve the base of the demand curve, burst on on-demand).
    """
    v.positive("reserved_usd_per_gpu_hour", reserved_usd_per_gpu_hour)
    v.positive("on_demand_usd_per_gpu_hour", on_demand_usd_per_gpu_hour)
    d = np.sort(np.asarray(demand_gpus, dtype=float).ravel())
    hours = d.size
    ratio = np.asarray(reserved_usd_per_gpu_hour, dtype=float) / np.asarray(on_demand_usd_per_gpu_hour, dtype=float)
    allowed_above = np.floor(np.minimum(ratio, 1.0) * hours + 1e-9).astype(int)  # hours allowed above the level
    idx = hours - allowed_above - 1  # 0-based index of the level in the sorted profile
    level = np.where(idx >= 0, d[np.clip(idx, 0, hours - 1)], 0.0)
    return np.maximum(level, 0.0) if level.ndim else float(max(level, 0.0))


def tiered_cost_usd(demand_gpus, reserved_gpus, reserved_usd_per_gpu_hour, on_demand_usd_per_gpu_hour):
    """Cost of a reserved level plus on-demand burst: ``r R H + o sum(max(d - R, 0))`` [USD]."""
    d = np.asarray(demand_gpus, dtype=float)
    r_level = np.asarray(reserved_gpus, dtype=float)[..., None]
    burst = np.sum(np.maximum(d - r_level, 0.0), axis=-1)
    return (np.asarray(reserved_usd_per_gpu_hour, dtype=float) * np.asarray(reserved_gpus, dtype=float) * d.size
            + np.asarray(on_demand_usd_per_gpu_hour, dtype=float) * burst)


def spot_overhead_factor(interruptions_per_hour, checkpoint_minutes):
    r"""GPU-hours on spot per GPU-hour of work: :math:`1 / (1 - \lambda M / 60)`.

    Each interruption loses ``M`` minutes (restore from the last checkpoint and redo the work since it).

    Parameters
    ----------
    interruptions_per_hour : numeric
        Preemption rate lambda [1/hour], >= 0.
    checkpoint_minutes : numeric
        Minutes lost per interruption M [minutes], >= 0.

    Returns
    -------
    numeric
        Overhead factor [unitless] >= 1; ``inf`` where ``lambda M >= 60`` (the job never finishes).
    """
    v.non_negative("interruptions_per_hour", interruptions_per_hour)
    v.non_negative("checkpoint_minutes", checkpoint_minutes)
    lost = np.asarray(interruptions_per_hour, dtype=float) * np.asarray(checkpoint_minutes, dtype=float) / 60.0
    with np.errstate(divide="ignore"):
        return np.where(lost < 1, 1.0 / np.where(lost < 1, 1.0 - lost, 1.0), np.inf)


def read_demand(path, field: str = "demand"):
    """Read an hourly demand CSV ``hour,gpus[,interruptible_gpus]`` (``#`` lines are comments).

    ``path``: a path, the CSV text, bytes, a file object or a shipped name (:func:`billshape.io.read_source`).

    Hours must be consecutive integers; GPUs finite and >= 0; ``interruptible_gpus <= gpus``.
    Returns ``(hours, gpus, interruptible)`` as numpy arrays (``interruptible`` zeros when absent).
    """
    import csv as _csv

    text, path = read_input_text(path, field, SHIPPED_DEMANDS,
                                 "a readable CSV file with columns hour,gpus[,interruptible_gpus]")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = _csv.DictReader(lines)
    cols = [c.strip() for c in (reader.fieldnames or [])]
    if "hour" not in cols or "gpus" not in cols:
        raise BillshapeInputError(field, f"{path} columns {cols}", "columns hour,gpus[,interruptible_gpus]")
    has_int = "interruptible_gpus" in cols
    hours, gpus, intr = [], [], []
    for i, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (val or "").strip() for k, val in row.items()}
        try:
            h = float(row["hour"])
            g = float(row["gpus"])
            x = float(row["interruptible_gpus"]) if has_int and row.get("interruptible_gpus") else 0.0
        except ValueError:
            raise BillshapeInputError(field, f"{path} line {i}: {row}", "numbers in every column") from None
        if not (np.isfinite(h) and np.isfinite(g) and np.isfinite(x)) or h != int(h):
            raise BillshapeInputError(field, f"{path} line {i}: {row}", "an integer hour and finite GPU counts")
        if g < 0 or x < 0 or g > v.MAX_COUNT:
            raise BillshapeInputError(field, f"{path} line {i}: {row}", f"GPU counts in [0, {v.MAX_COUNT:g}]")
        if x > g:
            raise BillshapeInputError(field, f"{path} line {i}: {row}", "interruptible_gpus <= gpus")
        hours.append(int(h))
        gpus.append(g)
        intr.append(x)
    if not hours:
        raise BillshapeInputError(field, str(path), "at least one hour of demand")
    hrs = np.array(hours)
    order = np.argsort(hrs, kind="stable")
    hrs = hrs[order]
    dup = np.where(np.diff(hrs) == 0)[0]
    if dup.size:
        raise BillshapeInputError(field, f"{path}: hour {hrs[dup[0]]} appears twice", "one row per hour")
    gap = np.where(np.diff(hrs) != 1)[0]
    if gap.size:
        raise BillshapeInputError(field, f"{path}: hours jump from {hrs[gap[0]]} to {hrs[gap[0] + 1]}",
                                  "consecutive hours with no gaps")
    return hrs, np.array(gpus)[order], np.array(intr)[order]


class CapacityPlan(Result):
    """Reserved base, on-demand burst and spot for interruptible work, against all on-demand."""

    hours: int
    reserved_gpus: int | float  # an int when whole (a level is a demand value: GPU counts are usually whole)
    total_usd: float
    on_demand_only_usd: float
    saving_fraction: float
    uses_spot: bool
    breakdown: dict
    explanation: str


def capacity_plan(demand_gpus, reserved_usd_per_gpu_hour: float, on_demand_usd_per_gpu_hour: float,
                  interruptible_gpus=None, spot_usd_per_gpu_hour: float | None = None,
                  spot_interruptions_per_hour: float = 0.0, checkpoint_minutes: float = 0.0,
                  demand_label: str = "demand profile") -> CapacityPlan:
    """Cheapest mix of reserved, on-demand and (for interruptible work) spot capacity for an hourly profile.

    Without spot: reserve the optimal level (:func:`optimal_reserved_level`) and burst on on-demand. With a
    spot price: the interruptible part may instead run on spot, inflated by :func:`spot_overhead_factor`,
    with the remaining (firm) demand reserved and burst; the cheaper of the two plans is chosen.
    """
    d = np.asarray(demand_gpus, dtype=float)
    v.non_negative("demand_gpus", d, v.MAX_COUNT)
    for flag, price in (("reserved_usd_per_gpu_hour", reserved_usd_per_gpu_hour), ("on_demand_usd_per_gpu_hour", on_demand_usd_per_gpu_hour)):
        v.positive(flag, price)  # "> 0" first (the message the app shows), then the upper bound
        v.positive(flag, price, v.MAX_USD_RATE)
    r, o = float(reserved_usd_per_gpu_hour), float(on_demand_usd_per_gpu_hour)
    hours = d.size
    od_only = o * float(d.sum())
    level = float(optimal_reserved_level(d, r, o))
    cost = float(tiered_cost_usd(d, level, r, o))
    plan = {"reserved_gpus": level, "firm": d, "spot_work": 0.0, "overhead": 1.0, "spot_usd": 0.0}
    notes = []
    assumptions = [
        user("demand", demand_label, None, "demand"),
        user("reserved price", r, "USD per GPU-hour", "reserved_usd_per_gpu_hour"),
        user("on-demand price", o, "USD per GPU-hour", "on_demand_usd_per_gpu_hour"),
    ]
    if spot_usd_per_gpu_hour is not None:
        v.positive("spot_usd_per_gpu_hour", spot_usd_per_gpu_hour, v.MAX_USD_RATE)
        v.non_negative("spot_interruptions_per_hour", spot_interruptions_per_hour, MAX_INTERRUPTIONS_PER_HOUR)
        v.non_negative("checkpoint_minutes", checkpoint_minutes, v.MAX_HOURS * 60)
        s = float(spot_usd_per_gpu_hour)
        x = np.zeros_like(d) if interruptible_gpus is None else np.asarray(interruptible_gpus, dtype=float)
        overhead = float(spot_overhead_factor(spot_interruptions_per_hour, checkpoint_minutes))
        assumptions += [user("spot price", s, "USD per GPU-hour", "spot_usd_per_gpu_hour"),
                        user("spot interruptions", float(spot_interruptions_per_hour), "per hour",
                             "spot_interruptions_per_hour"),
                        user("minutes lost per interruption", float(checkpoint_minutes), "minutes", "checkpoint_minutes"),
                        derived("spot overhead factor", overhead if np.isfinite(overhead) else None, "x",
                                "1 / (1 - interruptions x minutes / 60)")]
        if float(x.sum()) == 0:
            notes.append("no interruptible demand: spot unused")
        elif not np.isfinite(overhead):
            notes.append("interruptions x minutes lost >= 60 per hour: work on spot never finishes; spot unused")
        else:
            firm = d - x
            lvl2 = float(optimal_reserved_level(firm, r, o))
            spot_usd = s * overhead * float(x.sum())
            cost2 = float(tiered_cost_usd(firm, lvl2, r, o)) + spot_usd
            if cost2 < cost:
                level, cost = lvl2, cost2
                plan = {"reserved_gpus": lvl2, "firm": firm, "spot_work": float(x.sum()), "overhead": overhead,
                        "spot_usd": spot_usd}
            else:
                notes.append("spot (with its overhead) is not cheaper than reserving/bursting the interruptible work")
    firm = plan["firm"]
    burst = np.maximum(firm - level, 0.0)
    used_reserved = np.minimum(firm, level)
    breakdown = {
        "reserved_gpu_hours": level * hours, "reserved_used_gpu_hours": float(used_reserved.sum()),
        "reserved_utilization": float(used_reserved.sum() / (level * hours)) if level > 0 else None,
        "reserved_usd": r * level * hours,
        "on_demand_gpu_hours": float(burst.sum()), "on_demand_usd": o * float(burst.sum()),
        "spot_work_gpu_hours": plan["spot_work"], "spot_gpu_hours": plan["spot_work"] * plan["overhead"],
        "spot_overhead_factor": plan["overhead"], "spot_usd": plan["spot_usd"],
        "share_of_hours_above_reserved": float(np.mean(firm > level)), "price_ratio_reserved_to_on_demand": r / o,
    }
    saving = 1 - cost / od_only if od_only > 0 else 0.0
    text = (f"reserve {level:,.4g} GPUs (demand is above that in {breakdown['share_of_hours_above_reserved']:.1%} of hours; "
            f"the break point is r/o = {r / o:.1%}), burst the rest on on-demand"
            + (f", interruptible work on spot ({plan['overhead']:.3g}x GPU-hours)" if plan["spot_work"] else "")
            + f": ${cost:,.0f} vs ${od_only:,.0f} all on-demand ({saving:.1%} saved)")
    if notes:
        text += "; " + "; ".join(notes)
    return CapacityPlan(hours=hours, reserved_gpus=int(level) if float(level).is_integer() else level, total_usd=cost, on_demand_only_usd=od_only,
                        saving_fraction=saving, uses_spot=bool(plan["spot_work"] > 0), breakdown=breakdown,
                        explanation=text, assumptions=assumptions)


# --------------------------------------------------------------------------------------------- ladders
class LadderChoice(Result):
    """The cheapest model that clears a quality bar, and optionally a cascade, against the largest model."""

    quality_bar: float
    chosen: str | None  # None when no single model clears the bar but the cascade (`cascade`) does
    usd_per_request: float | None
    quality: float | None
    largest: str
    largest_usd_per_request: float
    largest_quality: float
    saving_vs_largest: float | None
    recommendation: str  # "model" (chosen) or "cascade" (no single model clears the bar; the cascade does)
    candidates: list
    cascade: dict | None = None
    explanation: str


def read_ladder(path, field: str = "ladder") -> dict:
    """Read a model ladder YAML: ``source``, ``as_of`` and ``models: [{name, quality, usd_per_request,
    [rejection_rate], [accepted_quality]}]``.

    ``path``: a path, the YAML text, bytes, a file object or a shipped name (:func:`billshape.io.read_source`).
    """
    import yaml

    text, label = read_input_text(path, field, SHIPPED_LADDERS, "a readable YAML file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BillshapeInputError(field, label, "valid YAML", str(exc).splitlines()[0]) from None
    if not isinstance(data, dict) or not isinstance(data.get("models"), list) or not data["models"]:
        raise BillshapeInputError(f"{field} models", label, "a non-empty list under 'models'")
    models = []
    for i, m in enumerate(data["models"]):
        where = f"models[{i}]"
        if not isinstance(m, dict) or "name" not in m:
            raise BillshapeInputError(where, m, "a mapping with name, quality, usd_per_request")
        entry = {"name": str(m["name"])}
        for key, check in (("quality", v.unit_interval), ("usd_per_request", v.positive),
                           ("rejection_rate", v.unit_interval), ("accepted_quality", v.unit_interval)):
            if key not in m:
                if key in ("quality", "usd_per_request"):
                    raise BillshapeInputError(f"{where}.{key}", None, "a number")
                continue
            try:
                val = float(m[key])
            except (TypeError, ValueError):
                raise BillshapeInputError(f"{where}.{key}", m[key], "a number") from None
            check(f"{where}.{key}", val)
            entry[key] = val
        models.append(entry)
    names = [m["name"] for m in models]
    if len(set(names)) != len(names):
        raise BillshapeInputError(f"{field} models", names, "distinct model names")
    return {"source": str(data.get("source", f"user ladder {label}")), "as_of": data.get("as_of"), "models": models,
            "quality_metric": str(data.get("quality_metric", "quality"))}


def cascade_cost_quality(usd_per_request, quality, rejection_rate, accepted_quality=None):
    r"""Expected cost and quality per request of a cascade tried cheapest first (vectorised over the last axis).

    Request reaches step ``i`` with probability :math:`P_i = \prod_{j<i} r_j`; it pays each step it
    reaches. Step ``i`` accepts a share ``1 - r_i`` of what reaches it with accuracy ``a_i``; the last
    step answers everything at its own quality.

    Parameters
    ----------
    usd_per_request, quality, rejection_rate : array_like, shape (..., steps)
        Per-step cost [USD/request], quality [fraction] and rejection (escalation) rate [fraction].
    accepted_quality : array_like, optional
        Quality of the answers a step accepts [fraction] (default: its overall quality).

    Returns
    -------
    tuple of numeric
        ``(usd_per_request, quality)`` of the cascade.

    References
    ----------
    .. [1] Chen, Zaharia and Zou, "FrugalGPT", arXiv:2305.05176, 2023 (LLM cascade).
    """
    c = np.asarray(usd_per_request, dtype=float)
    q = np.asarray(quality, dtype=float)
    r = np.asarray(rejection_rate, dtype=float).copy()
    a = q if accepted_quality is None else np.asarray(accepted_quality, dtype=float)
    r[..., -1] = 0.0  # the last step answers everything
    reach = np.concatenate([np.ones_like(r[..., :1]), np.cumprod(r[..., :-1], axis=-1)], axis=-1)
    a = np.concatenate([a[..., :-1], q[..., -1:]], axis=-1)
    return np.sum(reach * c, axis=-1), np.sum(reach * (1 - r) * a, axis=-1)


def usd_text(usd: float) -> str:
    """A small dollar amount without exponent: ``$0.0000173``, ``$0.000218``, ``$1.50``."""
    if usd >= 0.01 or usd == 0:
        return f"${usd:,.2f}" if usd >= 1 or usd == 0 else f"${usd:.4g}"
    return "$" + np.format_float_positional(usd, precision=3, unique=False, fractional=False, trim="-")


def route(ladder: dict, quality_bar: float, cascade: bool = False, cascade_only: bool = False) -> LadderChoice:
    """Cheapest model of a ladder that clears ``quality_bar``; with ``cascade``, also the cascade of the
    models that give a ``rejection_rate`` (cheapest first) ending on the most expensive model.

    When no single model clears the bar it is an error (naming the best model's quality), except with
    ``cascade`` and ``cascade_only`` (what ``billshape route --cascade`` does): then the answer is the cascade
    if it clears the bar (``chosen=None``, ``recommendation="cascade"``), else an error."""
    v.unit_interval("quality_bar", quality_bar)
    models = sorted(ladder["models"], key=lambda m: m["usd_per_request"])
    largest = models[-1]
    clear = [m for m in models if m["quality"] >= quality_bar]
    best = max(models, key=lambda m: m["quality"])
    if not clear and not (cascade and cascade_only):
        raise BillshapeInputError("quality_bar", quality_bar,
                                  f"<= {best['quality']:g} (the best model in the ladder, {best['name']})",
                                  "no single model clears the bar; a cascade (`cascade`) may")
    chosen = clear[0] if clear else None
    row = {"source": ladder["source"], "as_of": ladder.get("as_of")}
    from billshape.results import Assumption

    assumptions = [user("quality bar", float(quality_bar), ladder["quality_metric"], "quality_bar")] + [
        Assumption(name=f"{m['name']} quality / USD per request", value=f"{m['quality']:g} / {usd_text(m['usd_per_request'])}",
                   unit=None, source=row["source"], as_of=str(row["as_of"]) if row["as_of"] else None)
        for m in models
    ]
    out_cascade = None
    if cascade:
        steps = [m for m in models if "rejection_rate" in m and m is not largest] + [largest]
        if len(steps) < 2:
            raise BillshapeInputError("cascade", ladder["source"],
                                      "a ladder where at least one model cheaper than the largest gives rejection_rate")
        cost, qual = cascade_cost_quality([m["usd_per_request"] for m in steps], [m["quality"] for m in steps],
                                          [m.get("rejection_rate", 0.0) for m in steps],
                                          [m.get("accepted_quality", m["quality"]) for m in steps])
        cost, qual = float(cost), float(qual)
        reach = np.concatenate([[1.0], np.cumprod([m.get("rejection_rate", 0.0) for m in steps[:-1]])])
        out_cascade = {"steps": [m["name"] for m in steps], "usd_per_request": cost, "quality": qual,
                       "clears_bar": bool(qual >= quality_bar), "saving_vs_largest": 1 - cost / largest["usd_per_request"],
                       "share_reaching_step": [float(x) for x in reach]}
    if chosen is None and not out_cascade["clears_bar"]:
        raise BillshapeInputError("quality_bar", quality_bar,
                                  f"<= {max(best['quality'], out_cascade['quality']):.4g} (the best of the ladder's "
                                  f"models, {best['name']}, and of the cascade)", "neither a model nor the cascade "
                                  "clears the bar")
    cascade_text = ""
    if out_cascade:
        cascade_text = (f"the cascade {' -> '.join(out_cascade['steps'])} costs "
                        f"{usd_text(out_cascade['usd_per_request'])}/request at {out_cascade['quality']:.4g} "
                        f"({'clears' if out_cascade['clears_bar'] else 'misses'} the bar)")
    if chosen is not None:
        saving = 1 - chosen["usd_per_request"] / largest["usd_per_request"]
        text = (f"{chosen['name']} is the cheapest model with {ladder['quality_metric']} >= {quality_bar:g} "
                f"({chosen['quality']:g} at {usd_text(chosen['usd_per_request'])}/request): {saving:.1%} cheaper "
                f"than always using {largest['name']}" + (f"; {cascade_text}" if cascade_text else ""))
    else:
        saving = None
        text = (f"no single model clears {ladder['quality_metric']} >= {quality_bar:g} (the best, {best['name']}, "
                f"reaches {best['quality']:g}), but {cascade_text}: use the cascade, "
                f"{out_cascade['saving_vs_largest']:.1%} cheaper than always using {largest['name']}")
    return LadderChoice(
        quality_bar=float(quality_bar), chosen=chosen["name"] if chosen else None,
        usd_per_request=chosen["usd_per_request"] if chosen else None,
        quality=chosen["quality"] if chosen else None, largest=largest["name"],
        largest_usd_per_request=largest["usd_per_request"], largest_quality=largest["quality"],
        saving_vs_largest=saving, recommendation="model" if chosen else "cascade",
        candidates=[{"name": m["name"], "quality": m["quality"], "usd_per_request": m["usd_per_request"],
                     "clears_bar": m["quality"] >= quality_bar} for m in models],
        cascade=out_cascade, explanation=text, assumptions=assumptions,
    )
