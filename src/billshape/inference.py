r"""Inference unit cost: pure, vectorised equations.

The seed equation (billshape seed 003, "The Economics of AI", section 37.2):

.. math::

    \text{cost per token} \approx \frac{\text{accelerator \$/hour}}{\text{throughput (tokens/hour)} \times
    \text{utilization}}

Throughput is an input here; the serving model (roofline) computes it from the architecture and hardware.
"""

from __future__ import annotations

import numpy as np

from billshape import _validate as v

SECONDS_PER_HOUR = 3600.0


def deployment_usd_per_hour(usd_per_gpu_hour, gpus):
    """Hourly price of a deployment: price per GPU-hour x GPUs.

    Parameters
    ----------
    usd_per_gpu_hour : numeric
        Rental price [USD/GPU-hour].
    gpus : numeric
        Accelerators in the deployment [count].

    Returns
    -------
    numeric
        Deployment price [USD/h].
    """
    v.positive("usd_per_gpu_hour", usd_per_gpu_hour)
    v.positive("gpus", gpus)
    return np.asarray(usd_per_gpu_hour, dtype=float) * np.asarray(gpus, dtype=float)


def usd_per_token(usd_per_hour, tokens_per_hour, utilization=1.0):
    r"""Cost of one token: :math:`c = \$/h \,/\, (\text{tokens/h} \times u)`.

    Parameters
    ----------
    usd_per_hour : numeric
        Price of the deployment [USD/h].
    tokens_per_hour : numeric
        Throughput of the deployment at full load [tokens/h].
    utilization : numeric
        Share of paid hours the deployment serves at that throughput, in (0, 1] [unitless].

    Returns
    -------
    numeric
        Cost [USD/token].

    References
    ----------
    .. [1] billshape seed 003, section 37.2 (inference unit cost equation).
    """
    v.positive("usd_per_hour", usd_per_hour)
    v.positive("tokens_per_hour", tokens_per_hour)
    v.fraction("utilization", utilization)
    return np.asarray(usd_per_hour, dtype=float) / (
        np.asarray(tokens_per_hour, dtype=float) * np.asarray(utilization, dtype=float)
    )


def usd_per_million_tokens(usd_per_hour, tokens_per_second, utilization=1.0):
    """Cost of a million tokens from a deployment's price and its throughput in tokens/s.

    Parameters
    ----------
    usd_per_hour : numeric
        Price of the deployment [USD/h].
    tokens_per_second : numeric
        Throughput of the whole deployment [tokens/s].
    utilization : numeric
        In (0, 1] [unitless].

    Returns
    -------
    numeric
        Cost [USD per 1e6 tokens].

    Examples
    --------
    DeepSeek's inference node: 8 H800 at $2/GPU-hour decoding 14,800 tokens/s is about $0.30 per million
    output tokens:

    >>> round(float(usd_per_million_tokens(16.0, 14_800)), 3)
    0.3
    """
    v.positive("tokens_per_second", tokens_per_second)
    return usd_per_token(usd_per_hour, np.asarray(tokens_per_second, dtype=float) * SECONDS_PER_HOUR,
                         utilization) * 1e6


# ---------------------------------------------------------------------------------------------------------------
# Serving roofline: what the serving stack extracts from an accelerator (used by ``billshape.serving``).
#
# Notation: L layers, d hidden size, N parameters, B sequences in the batch, c context length [tokens],
# t tensor-parallel degree. Memory traffic is in bytes, compute in FLOP. Every efficiency is a named parameter
# (fraction of a datasheet peak); the defaults live in ``data/serving_efficiency.csv``.
# ---------------------------------------------------------------------------------------------------------------


def kv_bytes_per_token_gqa(layers, kv_heads, head_dim, bytes_per_value):
    r"""KV-cache bytes per token for multi-head, grouped-query or multi-query attention.

    :math:`2 \, L \, h_{kv} \, d_h \, b` (a key and a value vector per KV head per layer). MHA has
    :math:`h_{kv} = h`, MQA :math:`h_{kv} = 1`.

    Parameters
    ----------
    layers : numeric
        Transformer layers [count].
    kv_heads : numeric
        Key/value heads per layer [count].
    head_dim : numeric
        Dimension of one head [elements].
    bytes_per_value : numeric
        Bytes per cached element (2 for bf16/fp16, 1 for fp8) [bytes].

    Returns
    -------
    numeric
        KV cache per token [bytes].

    References
    ----------
    .. [1] Pope et al., "Efficiently Scaling Transformer Inference", MLSys 2023, arXiv:2211.05102, section 2.
    .. [2] Ainslie et al., "GQA", 2023, arXiv:2305.13245.

    Examples
    --------
    Llama-2-70B (80 layers, 8 KV heads of 128) in fp16 caches 320 KiB per token:

    >>> int(kv_bytes_per_token_gqa(80, 8, 128, 2))
    327680
    """
    return (2.0 * np.asarray(layers, dtype=float) * np.asarray(kv_heads, dtype=float)
            * np.asarray(head_dim, dtype=float) * np.asarray(bytes_per_value, dtype=float))


def kv_bytes_per_token_mla(layers, kv_latent_dim, rope_head_dim, bytes_per_value):
    r"""KV-cache bytes per token for multi-head latent attention (DeepSeek-V2/V3).

    MLA caches one compressed latent vector and one decoupled RoPE key per layer, shared by all heads:
    :math:`L \, (d_c + d_h^R) \, b`.

    Parameters
    ----------
    layers : numeric
        Layers [count].
    kv_latent_dim : numeric
        KV compression (latent) dimension :math:`d_c` (``kv_lora_rank``) [elements].
    rope_head_dim : numeric
        Decoupled RoPE key dimension :math:`d_h^R` (``qk_rope_head_dim``) [elements].
    bytes_per_value : numeric
        Bytes per cached element [bytes].

    Returns
    -------
    numeric
        KV cache per token [bytes].

    References
    ----------
    .. [1] DeepSeek-AI, "DeepSeek-V2", 2024, arXiv:2405.04434, section 2.1 (KV cache per token
           :math:`(d_c + d_h^R) l` elements).

    Examples
    --------
    >>> int(kv_bytes_per_token_mla(61, 512, 64, 2))  # DeepSeek-V3 in bf16
    70272
    """
    return (np.asarray(layers, dtype=float) * (np.asarray(kv_latent_dim, dtype=float)
            + np.asarray(rope_head_dim, dtype=float)) * np.asarray(bytes_per_value, dtype=float))


def weight_bytes(params, bytes_per_param):
    """Bytes of model weights: parameters x bytes per parameter [bytes].

    Parameters
    ----------
    params : numeric
        Parameters [count].
    bytes_per_param : numeric
        Storage bytes per parameter, including quantisation scales [bytes].
    """
    return np.asarray(params, dtype=float) * np.asarray(bytes_per_param, dtype=float)


def moe_experts_touched(experts, experts_per_token, tokens):
    r"""Expected distinct routed experts a step touches when ``tokens`` tokens each pick ``k`` of ``E``.

    Under uniform routing each expert is missed by one token with probability :math:`1 - k/E`, so
    :math:`E_{touched} = E \, (1 - (1 - k/E)^{T})`. One token touches exactly ``k``; a large batch touches
    all ``E``, so the decode step reads every expert's weights.

    Parameters
    ----------
    experts : numeric
        Routed experts per MoE layer E [count].
    experts_per_token : numeric
        Routed experts each token activates k [count].
    tokens : numeric
        Tokens in the step (decode batch plus prefill tokens) [count].

    Returns
    -------
    numeric
        Expected experts touched per MoE layer [count], between k and E.

    References
    ----------
    .. [1] Fedus, Zoph, Shazeer, "Switch Transformers", JMLR 2022 (token routing); the occupancy formula is the
           classical balls-in-bins expectation.
    """
    e = np.asarray(experts, dtype=float)
    k = np.asarray(experts_per_token, dtype=float)
    t = np.maximum(np.asarray(tokens, dtype=float), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        touched = e * (1.0 - np.power(1.0 - np.where(e > 0, k / np.where(e > 0, e, 1.0), 0.0), t))
    return np.where(e > 0, np.clip(touched, np.minimum(k, e), e), 0.0)


def forward_flops(params_active, tokens, layers, attention_dim, context_tokens):
    r"""FLOPs of a forward pass over ``tokens`` new tokens that attend to ``context_tokens`` each on average.

    :math:`2 N_{active} T + 4 L \, d_{attn} \, c \, T`: two FLOPs per weight per token (multiply and add),
    plus the attention scores :math:`QK^T` and the weighted values :math:`AV`, each :math:`2 d_{attn} c` per
    token per layer.

    Parameters
    ----------
    params_active : numeric
        Parameters active per token (embedding lookups are not FLOPs, but the output head is) [count].
    tokens : numeric
        New tokens processed [count].
    layers : numeric
        Layers [count].
    attention_dim : numeric
        Query heads x head dimension :math:`d_{attn}` [elements].
    context_tokens : numeric
        Mean context each new token attends to [tokens]; for a causal prefill of length I use I/2.

    Returns
    -------
    numeric
        [FLOP].

    References
    ----------
    .. [1] Kaplan et al., "Scaling Laws for Neural Language Models", 2020, arXiv:2001.08361, Table 1.
    """
    t = np.asarray(tokens, dtype=float)
    return (2.0 * np.asarray(params_active, dtype=float) * t
            + 4.0 * np.asarray(layers, dtype=float) * np.asarray(attention_dim, dtype=float)
            * np.asarray(context_tokens, dtype=float) * t)


def prefill_flops(params_active, input_tokens, layers, attention_dim, batch=1):
    r"""FLOPs to prefill ``batch`` prompts of ``input_tokens`` each (causal attention is quadratic).

    :math:`B \, (2 N_{active} I + 2 L \, d_{attn} I^2)`.

    Parameters
    ----------
    params_active : numeric
        [count].
    input_tokens : numeric
        Prompt length I [tokens].
    layers : numeric
        [count].
    attention_dim : numeric
        Query heads x head dimension [elements].
    batch : numeric
        Prompts B [count].

    Returns
    -------
    numeric
        [FLOP].

    References
    ----------
    .. [1] Kaplan et al. 2020, arXiv:2001.08361, Table 1; causal masking halves the context term.
    """
    i = np.asarray(input_tokens, dtype=float)
    return np.asarray(batch, dtype=float) * forward_flops(params_active, i, layers, attention_dim, i / 2.0)


def allreduce_seconds(message_bytes, tensor_parallel, link_bytes_per_second, latency_seconds, count=1):
    r"""Time of ``count`` ring all-reduces of ``message_bytes`` across ``tensor_parallel`` GPUs.

    :math:`n \, (\alpha + 2 \frac{t-1}{t} \frac{m}{\beta})`, zero when :math:`t = 1`.

    Parameters
    ----------
    message_bytes : numeric
        Bytes reduced per all-reduce (tokens x hidden size x activation bytes) [bytes].
    tensor_parallel : numeric
        GPUs in the tensor-parallel group t [count].
    link_bytes_per_second : numeric
        Per-GPU one-direction interconnect bandwidth :math:`\beta` [bytes/s].
    latency_seconds : numeric
        Fixed cost of one all-reduce :math:`\alpha` (launch and synchronisation) [s].
    count : numeric
        All-reduces (Megatron tensor parallelism: 2 per layer per forward pass) [count].

    Returns
    -------
    numeric
        [s].

    References
    ----------
    .. [1] Shoeybi et al., "Megatron-LM", 2019, arXiv:1909.08053 (two all-reduces per layer).
    .. [2] Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication Operations in MPICH", 2005
           (ring all-reduce cost).
    """
    tp = np.asarray(tensor_parallel, dtype=float)
    per = np.asarray(latency_seconds, dtype=float) + 2.0 * (tp - 1.0) / tp * np.asarray(
        message_bytes, dtype=float) / np.asarray(link_bytes_per_second, dtype=float)
    return np.where(tp > 1, np.asarray(count, dtype=float) * per, 0.0)


def alltoall_seconds(tokens_per_gpu, hidden_size, experts_per_token, expert_parallel, link_bytes_per_second,
                     latency_seconds, count=1, activation_bytes=2.0):
    r"""Time of ``count`` expert-parallel all-to-all exchanges (MoE dispatch or combine) per GPU.

    Each of a GPU's :math:`T` tokens goes to the GPUs holding its :math:`k` routed experts; with experts spread
    evenly over :math:`e` GPUs a token reaches :math:`g = e (1 - (1 - 1/e)^k)` distinct GPUs (one copy each, as
    DeepEP and TensorRT-LLM's wide-EP kernels send), of which a share :math:`(e-1)/e` is remote:

    .. math::

        n \left(\alpha + \frac{T \, g \, d \, b \, (e-1)/e}{\beta}\right), \quad 0 \text{ when } e = 1

    Parameters
    ----------
    tokens_per_gpu : numeric
        Tokens each GPU sends in one exchange T [count].
    hidden_size : numeric
        Hidden size d [elements].
    experts_per_token : numeric
        Routed experts each token activates k [count].
    expert_parallel : numeric
        GPUs the experts are spread over e [count].
    link_bytes_per_second : numeric
        Per-GPU one-direction interconnect bandwidth :math:`\beta` [bytes/s].
    latency_seconds : numeric
        Fixed cost of one exchange :math:`\alpha` [s].
    count : numeric
        Exchanges (dispatch + combine per MoE layer: 2 per MoE layer per forward pass) [count].
    activation_bytes : numeric
        Bytes per activation value b [bytes].

    Returns
    -------
    numeric
        [s].

    References
    ----------
    .. [1] Lepikhin et al., "GShard", 2020, arXiv:2006.16668 (expert parallelism, all-to-all dispatch/combine).
    .. [2] DeepSeek-AI, "DeepSeek-V3 Technical Report", 2024, arXiv:2412.19437, section 3.4 (node-limited
           dispatch, one copy per destination).
    """
    e = np.asarray(expert_parallel, dtype=float)
    k = np.asarray(experts_per_token, dtype=float)
    dest = np.where(e > 1, e * (1.0 - np.power(1.0 - 1.0 / np.maximum(e, 1.0), k)), 0.0)
    remote = np.where(e > 1, (e - 1.0) / np.maximum(e, 1.0), 0.0)
    msg = (np.asarray(tokens_per_gpu, dtype=float) * dest * np.asarray(hidden_size, dtype=float)
           * np.asarray(activation_bytes, dtype=float) * remote)
    per = np.asarray(latency_seconds, dtype=float) + msg / np.asarray(link_bytes_per_second, dtype=float)
    return np.where(e > 1, np.asarray(count, dtype=float) * per, 0.0)


# Standard-normal grid for expected maxima (order statistics by quadrature; numpy only, no scipy import cost)
_Z = np.linspace(-9.0, 9.0, 1801)
_PHI_PDF = np.exp(-0.5 * _Z**2) / np.sqrt(2.0 * np.pi)
_PHI_CDF = np.concatenate(([0.0], np.cumsum(0.5 * (_PHI_PDF[1:] + _PHI_PDF[:-1]) * np.diff(_Z))))
_PHI_CDF = np.clip(_PHI_CDF / _PHI_CDF[-1], 0.0, 1.0)


def expected_max_over_mean_gamma(n, shape):
    r"""Expected maximum of ``n`` independent Gamma loads, as a multiple of their mean.

    A load :math:`X \sim \mathrm{Gamma}(s)` with mean 1 has coefficient of variation :math:`1/\sqrt{s}`. By the
    Wilson-Hilferty transform :math:`X \approx (1 - \frac{1}{9s} + \frac{z}{3\sqrt{s}})^3` with
    :math:`z \sim N(0, 1)`, and the maximum of ``n`` draws is the same monotone map of the normal maximum, so

    .. math::

        E[\max_n X] = \int \left(1 - \tfrac{1}{9s} + \tfrac{z}{3\sqrt{s}}\right)_+^3 \, n \, \varphi(z) \,
        \Phi(z)^{n-1} \, dz

    Parameters
    ----------
    n : numeric
        Loads compared (ranks) [count], >= 1.
    shape : numeric
        Gamma shape s = 1 / CV^2 of one load [unitless], > 0.

    Returns
    -------
    numeric
        :math:`E[\max] / E[X]` [unitless], 1 when ``n`` = 1 (up to quadrature error < 1e-4), growing with ``n``
        and with the CV.

    References
    ----------
    .. [1] Wilson, Hilferty, "The distribution of chi-square", PNAS 17 (1931) 684-688.
    .. [2] David, Nagaraja, "Order Statistics", 3rd ed., Wiley 2003, section 3.1 (moments of the maximum).
    """
    n_ = np.asarray(n, dtype=float)[..., None]
    s = np.maximum(np.asarray(shape, dtype=float), 1e-6)[..., None]
    x = np.maximum(1.0 - 1.0 / (9.0 * s) + _Z / (3.0 * np.sqrt(s)), 0.0) ** 3
    dens = n_ * _PHI_PDF * np.power(_PHI_CDF, np.maximum(n_ - 1.0, 0.0))
    mean_x = np.trapezoid(x * _PHI_PDF, _Z, axis=-1)  # normalise: the transform's mean is 1 only approximately
    out = np.trapezoid(x * dens, _Z, axis=-1) / mean_x
    return np.where(np.asarray(n, dtype=float) <= 1, 1.0, np.maximum(out, 1.0))


def moe_rank_imbalance(experts, experts_per_token, expert_parallel, tokens, expert_load_cv):
    r"""Expert-parallel load imbalance: tokens on the busiest EP rank over the mean (max / mean).

    ``tokens`` tokens each pick ``k`` of ``E`` experts, spread as :math:`E/e` whole experts on each of ``e``
    ranks, so a rank receives :math:`\mu = T k / e` assignments on average. Two sources spread the ranks: the
    routing skew (some experts are more popular: coefficient of variation ``expert_load_cv`` of the tokens per
    expert, measured), which averages over the :math:`E/e` experts a rank holds, and the multinomial sampling of
    a finite step (Poisson, :math:`1/\mu`). The rank load is taken as Gamma with

    .. math::

        CV_{rank}^2 = \frac{CV_{expert}^2}{E/e} + \frac{1}{\mu}, \qquad
        \lambda = E[\max_e X] / E[X] \quad (\text{:func:`expected_max_over_mean_gamma`})

    The busiest rank's grouped-GEMM FLOPs and all-to-all receive traffic scale with :math:`\lambda`; every rank
    waits for it at the next collective.

    Parameters
    ----------
    experts : numeric
        Routed experts E [count].
    experts_per_token : numeric
        k [count].
    expert_parallel : numeric
        EP ranks e [count]; 1 gives 1.
    tokens : numeric
        Tokens in the step (all ranks together) T [count].
    expert_load_cv : numeric
        Coefficient of variation of tokens per expert from routing skew (sampling noise removed) [unitless].

    Returns
    -------
    numeric
        max / mean tokens per EP rank [unitless], >= 1.

    References
    ----------
    .. [1] NVIDIA TensorRT-LLM tech blog 4, "Scaling Expert Parallelism in TensorRT-LLM (Part 1)", 2025, Table 1
           (DeepSeek-R1, EP32: per-expert mean 128 / std 164.1 tokens; per-rank imbalance ratio 1.564).
    .. [2] DeepSeek-AI, "DeepSeek-V3 Technical Report", 2024, arXiv:2412.19437, section 3.4 (redundant experts to
           balance EP ranks); deepseek-ai/EPLB.
    """
    e = np.maximum(np.asarray(expert_parallel, dtype=float), 1.0)
    n_exp = np.maximum(np.asarray(experts, dtype=float), 1.0)
    mu = np.maximum(np.asarray(tokens, dtype=float) * np.asarray(experts_per_token, dtype=float) / e, 1e-9)
    cv2 = np.asarray(expert_load_cv, dtype=float) ** 2 / np.maximum(n_exp / e, 1.0) + 1.0 / mu
    lam = expected_max_over_mean_gamma(e, 1.0 / np.maximum(cv2, 1e-12))
    return np.where(e > 1, lam, 1.0)


def expected_max_poisson(n, mean):
    r"""Expected maximum of ``n`` independent Poisson counts of mean ``mean``.

    :math:`E[\max] = \sum_{j \ge 0} (1 - F(j)^n)` with :math:`F` the Poisson CDF. Used for attention data
    parallelism: each rank prefills the prompts that arrive at it, and a step waits for the rank that drew the
    most (mean prompts per rank per step :math:`B / (t\,O)` at steady state).

    Parameters
    ----------
    n : numeric
        Ranks [count].
    mean : numeric
        Mean count per rank [count], >= 0.

    Returns
    -------
    numeric
        [count], between ``mean`` and ``n * mean``.

    References
    ----------
    .. [1] David, Nagaraja, "Order Statistics", 3rd ed., Wiley 2003 (maxima of discrete variables).
    """
    lam = np.maximum(np.asarray(mean, dtype=float), 0.0)
    n_ = np.asarray(n, dtype=float)
    jmax = int(np.ceil(float(np.max(lam)) + 12.0 * np.sqrt(float(np.max(lam))) + 30.0))
    j = np.arange(jmax + 1, dtype=float)
    log_fact = np.concatenate(([0.0], np.cumsum(np.log(np.arange(1, jmax + 1, dtype=float)))))
    lam_ = lam[..., None]
    with np.errstate(divide="ignore"):
        log_pmf = np.where(lam_ > 0, -lam_ + j * np.log(np.where(lam_ > 0, lam_, 1.0)) - log_fact,
                           np.where(j == 0, 0.0, -np.inf))
    cdf = np.clip(np.cumsum(np.exp(log_pmf), axis=-1), 0.0, 1.0)
    out = np.sum(1.0 - np.power(cdf, n_[..., None]), axis=-1)
    return np.clip(out, lam, np.maximum(n_, 1.0) * lam)


def prefill_seconds(flops_per_gpu, peak_flops_per_second, compute_efficiency, allreduce_s=0.0):
    r"""Prefill time: compute bound, :math:`F / (\eta_c P) + t_{AR}`.

    Parameters
    ----------
    flops_per_gpu : numeric
        Prefill FLOPs each GPU performs [FLOP].
    peak_flops_per_second : numeric
        Dense peak at the compute precision [FLOP/s].
    compute_efficiency : numeric
        Achieved fraction of that peak :math:`\eta_c` [unitless].
    allreduce_s : numeric
        Tensor-parallel communication time [s].

    Returns
    -------
    numeric
        [s].
    """
    return (np.asarray(flops_per_gpu, dtype=float)
            / (np.asarray(peak_flops_per_second, dtype=float) * np.asarray(compute_efficiency, dtype=float))
            + np.asarray(allreduce_s, dtype=float))


def decode_step_seconds(weight_bytes_per_gpu, kv_bytes_per_gpu, hbm_bytes_per_second, bandwidth_efficiency,
                        gemm_flops_per_gpu, attention_flops_per_gpu, peak_flops_per_second, compute_efficiency,
                        allreduce_s=0.0, overhead_s=0.0):
    r"""Time of one decode step: a roofline for the weight GEMMs plus one for attention, plus communication.

    The weight matrix multiplies and the attention over the KV cache run as separate kernels one after the
    other, so each is bound by its own roofline and their times add:

    .. math::

        t = \max\left(\frac{W}{\eta_{bw} BW}, \frac{F_{gemm}}{\eta_c P}\right)
          + \max\left(\frac{K}{\eta_{bw} BW}, \frac{F_{attn}}{\eta_c P}\right) + t_{AR} + t_0

    At small batch both terms are memory bound (the step reads weights and cache once); at large batch the
    GEMMs turn compute bound while attention stays memory bound.

    Parameters
    ----------
    weight_bytes_per_gpu : numeric
        Weight bytes each GPU reads in the step W (MoE: only the experts touched) [bytes].
    kv_bytes_per_gpu : numeric
        KV-cache bytes each GPU reads in the step K [bytes].
    hbm_bytes_per_second : numeric
        Datasheet memory bandwidth BW [bytes/s].
    bandwidth_efficiency : numeric
        Achieved fraction of it :math:`\eta_{bw}` [unitless].
    gemm_flops_per_gpu : numeric
        Weight matrix-multiply FLOPs per GPU in the step [FLOP].
    attention_flops_per_gpu : numeric
        Attention (scores and values) FLOPs per GPU in the step [FLOP].
    peak_flops_per_second : numeric
        Dense peak at the compute precision P [FLOP/s].
    compute_efficiency : numeric
        :math:`\eta_c` [unitless].
    allreduce_s : numeric
        Tensor-parallel communication per step [s].
    overhead_s : numeric
        Fixed per-step cost (scheduling, sampling, kernel launches) :math:`t_0` [s].

    Returns
    -------
    numeric
        [s].

    References
    ----------
    .. [1] Williams, Waterman, Patterson, "Roofline", CACM 2009.
    .. [2] Pope et al. 2023, arXiv:2211.05102 (decode is memory-bandwidth bound at small batch).
    """
    bw = np.asarray(hbm_bytes_per_second, dtype=float) * np.asarray(bandwidth_efficiency, dtype=float)
    pk = np.asarray(peak_flops_per_second, dtype=float) * np.asarray(compute_efficiency, dtype=float)
    gemm = np.maximum(np.asarray(weight_bytes_per_gpu, dtype=float) / bw, np.asarray(gemm_flops_per_gpu, dtype=float) / pk)
    attn = np.maximum(np.asarray(kv_bytes_per_gpu, dtype=float) / bw, np.asarray(attention_flops_per_gpu, dtype=float) / pk)
    return gemm + attn + np.asarray(allreduce_s, dtype=float) + np.asarray(overhead_s, dtype=float)


def max_batch(memory_bytes, weight_bytes_total, kv_bytes_per_token, context_tokens, memory_fraction=1.0):
    r"""Sequences whose KV cache fits beside the weights: :math:`\lfloor (f M - W) / (k \, c) \rfloor`.

    Parameters
    ----------
    memory_bytes : numeric
        Accelerator memory of the model replica (all its GPUs) M [bytes].
    weight_bytes_total : numeric
        Weights of the replica W [bytes].
    kv_bytes_per_token : numeric
        k [bytes/token].
    context_tokens : numeric
        Tokens each sequence holds c [tokens].
    memory_fraction : numeric
        Usable share of memory f (the rest holds activations, workspace, CUDA graphs) [unitless].

    Returns
    -------
    numeric
        Batch that fits [count]; 0 or less when the weights alone do not fit.
    """
    free = np.asarray(memory_fraction, dtype=float) * np.asarray(memory_bytes, dtype=float) - np.asarray(
        weight_bytes_total, dtype=float)
    return np.floor(free / (np.asarray(kv_bytes_per_token, dtype=float) * np.asarray(context_tokens, dtype=float)))


# ---------------------------------------------------------------------------------------------------------------
# Deployments: pipeline parallelism and speculative decoding (composed in ``billshape.serving_pipeline``)
# ---------------------------------------------------------------------------------------------------------------


def speculative_tokens_per_step(acceptance, draft_tokens):
    r"""Expected tokens a speculative-decoding step emits: :math:`E = (1 - A^{K+1}) / (1 - A)`.

    ``K`` draft tokens are verified in one target pass; the first rejected draft is replaced by the target's own
    token and the rest are dropped, so a step emits between 1 and K+1 tokens. With a per-position acceptance
    rate A, independent and identical across positions (the i.i.d. assumption of Leviathan et al.), the number
    accepted before the first rejection is a truncated geometric variable and

    .. math::

        E = \sum_{j=0}^{K} A^j = \frac{1 - A^{K+1}}{1 - A} \quad (E = K + 1 \text{ at } A = 1)

    Parameters
    ----------
    acceptance : numeric
        Per-position acceptance rate A in [0, 1] [unitless].
    draft_tokens : numeric
        Draft tokens verified per step K [count], >= 0.

    Returns
    -------
    numeric
        Tokens per verification step [tokens], in [1, K+1], increasing in A and in K.

    References
    ----------
    .. [1] Leviathan, Kalman, Matias, "Fast Inference from Transformers via Speculative Decoding", ICML 2023,
           arXiv:2211.17192, equation (1) (expected tokens per step with acceptance rate alpha, i.i.d.).

    Examples
    --------
    DeepSeek-V3's MTP (one draft token, 85 % acceptance of the second token) emits 1.85 tokens per step:

    >>> round(float(speculative_tokens_per_step(0.85, 1)), 4)
    1.85
    """
    a = np.clip(np.asarray(acceptance, dtype=float), 0.0, 1.0)
    k = np.asarray(draft_tokens, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = (1.0 - np.power(a, k + 1.0)) / (1.0 - a)
    return np.where(a >= 1.0, k + 1.0, e)


# ---------------------------------------------------------------------------------------------------------------
# Sliding-window and chunked local attention (hybrid models: gpt-oss, Llama 4)
# ---------------------------------------------------------------------------------------------------------------


def windowed_context_tokens(context_tokens, window_tokens):
    r"""Tokens a windowed layer attends to (and holds in its KV cache) at context c: :math:`\min(c, W)`.

    Sliding-window attention (Beltagy et al. 2020; Mistral 7B) attends to the last W tokens; chunked local
    attention (Llama 4's iRoPE layers) to the tokens of the current W-token chunk, at most W. ``window_tokens``
    0 means no window (full attention: c).

    Parameters
    ----------
    context_tokens : numeric
        Context of the sequence c [tokens].
    window_tokens : numeric
        Window or chunk W [tokens]; 0 for full attention.

    Returns
    -------
    numeric
        Attended (and cached) tokens [tokens].

    References
    ----------
    .. [1] Beltagy, Peters, Cohan, "Longformer", 2020, arXiv:2004.05150 (sliding-window attention).
    .. [2] Jiang et al., "Mistral 7B", 2023, arXiv:2310.06825 (rolling-buffer KV cache of W tokens).
    """
    c = np.asarray(context_tokens, dtype=float)
    w = np.asarray(window_tokens, dtype=float)
    return np.where(w > 0, np.minimum(c, np.where(w > 0, w, 1.0)), c)


def windowed_kv_fraction(context_tokens, layers, window_tokens, window_layers):
    r"""Share of a full-attention model's KV cache (and decode attention work) that a hybrid model needs.

    With :math:`L_w` of the L layers windowed to W tokens:
    :math:`\frac{(L - L_w)\,c + L_w \min(c, W)}{L\,c}`; 1 when no layer is windowed. gpt-oss-120b (18 of 36
    layers at W = 128) at c = 65,536 needs (65,536 + 128) / (2 x 65,536) = 0.50098 of the full cache.

    Parameters
    ----------
    context_tokens : numeric
        Context per sequence c [tokens].
    layers : numeric
        Layers L [count].
    window_tokens : numeric
        Window W [tokens] (0: none).
    window_layers : numeric
        Windowed layers :math:`L_w` [count].

    Returns
    -------
    numeric
        Fraction in (0, 1] [unitless].

    References
    ----------
    .. [1] Jiang et al. 2023, arXiv:2310.06825 (a W-token rolling KV buffer per windowed layer).
    .. [2] Kwon et al., "PagedAttention", SOSP 2023, arXiv:2309.06180; vLLM's hybrid KV-cache manager frees the
           blocks outside a windowed layer's window.

    Examples
    --------
    >>> round(float(windowed_kv_fraction(65536, 36, 128, 18)), 5)
    0.50098
    """
    c = np.maximum(np.asarray(context_tokens, dtype=float), 1e-30)
    L = np.asarray(layers, dtype=float)
    lw = np.asarray(window_layers, dtype=float)
    held = (L - lw) * c + lw * windowed_context_tokens(c, window_tokens)
    return held / (L * c)


def windowed_prefill_context_tokens(input_tokens, window_tokens, chunked=False):
    r"""Mean context a prompt token attends to in a windowed layer during a causal prefill of I tokens.

    Full causal attention: I/2. Sliding window W: :math:`\frac{1}{I}\sum_{p=1}^{I} \min(p, W)`, i.e. I/2 for
    I <= W and :math:`W - W^2 / (2I)` beyond. Chunked local attention (chunks of W, I = qW + r):
    :math:`(q W^2 + r^2) / (2I)`.

    Parameters
    ----------
    input_tokens : numeric
        Prompt length I [tokens].
    window_tokens : numeric
        Window or chunk W [tokens] (0: full attention).
    chunked : bool
        Chunked local attention (Llama 4) instead of a sliding window (gpt-oss, Mistral).

    Returns
    -------
    numeric
        Mean attended context per prompt token [tokens].

    References
    ----------
    .. [1] Beltagy et al. 2020, arXiv:2004.05150; Meta, Llama 4 config.json ``attention_chunk_size`` (iRoPE
           chunked attention).
    """
    i = np.maximum(np.asarray(input_tokens, dtype=float), 1e-30)
    w = np.asarray(window_tokens, dtype=float)
    ws = np.where(w > 0, w, 1.0)
    if chunked:
        q = np.floor(i / ws)
        r = i - q * ws
        local = (q * ws * ws + r * r) / (2.0 * i)
    else:
        local = np.where(i <= ws, i / 2.0, ws - ws * ws / (2.0 * i))
    return np.where(w > 0, local, i / 2.0)
