"""Training compute and training bills: pure, vectorised equations.

Every function takes scalars or numpy arrays (broadcast together) and returns the same: plain Python numbers in,
a Python ``float`` out (computed without numpy, with the same IEEE operations in the same order, so bit for bit
the value numpy gives); anything else (arrays, numpy scalars, lists) in, numpy out. Units are in the
parameter names. Defaults for the constants live in ``data/constants.csv``; these functions take them as
arguments, so that they stay pure (the composed :func:`billshape.estimates.training_bill` reads the catalog).

References
----------
.. [1] Kaplan et al., "Scaling Laws for Neural Language Models", arXiv:2001.08361, 2020 (C ~ 6 N D).
.. [2] Hoffmann et al., "Training Compute-Optimal Large Language Models", arXiv:2203.15556, 2022.
.. [3] Cottier et al., "The rising costs of training frontier AI models", arXiv:2405.21015, 2024, and
       github.com/epoch-research/training-cost-trends (amortised hardware and energy method).
.. [4] DeepSeek-AI, "DeepSeek-V3 Technical Report", arXiv:2412.19437, 2024 (GPU-hour accounting).
"""

from __future__ import annotations

import math

from billshape import _validate as v

SECONDS_PER_HOUR = 3600.0
_LN10 = math.log(10.0)  # equal to numpy.log(10.0) to the last bit (tests/test_startup_fast.py)


def _floats(*values):
    """The values as Python floats when every one is a plain number, else as numpy float arrays (numpy is
    imported only then)."""
    if all(type(x) in v.SCALARS for x in values):
        return tuple(float(x) for x in values)
    import numpy as np

    return tuple(np.asarray(x, dtype=float) for x in values)


def training_flops(params_active, tokens):
    r"""Training compute of a transformer: :math:`C \approx 6 N D`.

    Parameters
    ----------
    params_active : numeric
        Parameters touched per token [count]. For a mixture-of-experts model, the *active* parameters.
    tokens : numeric
        Training tokens [count].

    Returns
    -------
    numeric
        Training compute [FLOP].

    References
    ----------
    .. [1] Kaplan et al. 2020, arXiv:2001.08361, Table 1 (forward 2N, backward 4N FLOP per token).
    """
    v.positive("params_active", params_active)
    v.positive("tokens", tokens)
    n, d = _floats(params_active, tokens)
    return 6.0 * n * d


def gpu_hours_from_flops(training_flops, peak_flops_per_second, mfu):
    r"""Accelerator-hours needed for a compute budget: :math:`H = C / (P \cdot \mathrm{MFU} \cdot 3600)`.

    Parameters
    ----------
    training_flops : numeric
        Compute [FLOP].
    peak_flops_per_second : numeric
        Dense peak of one accelerator at the training precision [FLOP/s].
    mfu : numeric
        Model FLOPs utilization, in (0, 1] [unitless].

    Returns
    -------
    numeric
        Accelerator-hours [GPU-hour].
    """
    v.positive("training_flops", training_flops)
    v.positive("peak_flops_per_second", peak_flops_per_second)
    v.fraction("mfu", mfu)
    c, p, u = _floats(training_flops, peak_flops_per_second, mfu)
    return c / (p * u * SECONDS_PER_HOUR)


def gpu_hours_from_cluster(gpus, hours):
    """Accelerator-hours of a cluster run: GPUs x wall-clock hours.

    Parameters
    ----------
    gpus : numeric
        Accelerators in the cluster [count].
    hours : numeric
        Wall-clock duration [h].

    Returns
    -------
    numeric
        Accelerator-hours [GPU-hour].
    """
    v.positive("gpus", gpus)
    v.positive("hours", hours)
    n, h = _floats(gpus, hours)
    return n * h


def implied_mfu(training_flops, gpu_hours, peak_flops_per_second):
    r"""Model FLOPs utilization implied by a compute budget and the hours it took.

    :math:`\mathrm{MFU} = C / (H \cdot 3600 \cdot P)`. May exceed 1 when the peak or the hours are wrong;
    callers decide whether that is an error.

    Parameters
    ----------
    training_flops : numeric
        Compute [FLOP].
    gpu_hours : numeric
        Accelerator-hours [GPU-hour].
    peak_flops_per_second : numeric
        Dense peak of one accelerator [FLOP/s].

    Returns
    -------
    numeric
        MFU [unitless].

    References
    ----------
    .. [4] DeepSeek-V3 pre-training: 6 x 37e9 x 14.8e12 FLOP over 2.664e6 H800-hours is MFU 0.346 of the
       BF16 dense peak (989 TFLOP/s) and 0.173 of the FP8 peak.
    """
    v.positive("training_flops", training_flops)
    v.positive("gpu_hours", gpu_hours)
    v.positive("peak_flops_per_second", peak_flops_per_second)
    c, h, p = _floats(training_flops, gpu_hours, peak_flops_per_second)
    return c / (h * SECONDS_PER_HOUR * p)


def rental_cost_usd(gpu_hours, usd_per_gpu_hour):
    """Rented compute bill: GPU-hours x price.

    Parameters
    ----------
    gpu_hours : numeric
        Accelerator-hours [GPU-hour].
    usd_per_gpu_hour : numeric
        Rental price [USD/GPU-hour].

    Returns
    -------
    numeric
        Cost [USD].
    """
    v.positive("gpu_hours", gpu_hours)
    v.positive("usd_per_gpu_hour", usd_per_gpu_hour)
    h, r = _floats(gpu_hours, usd_per_gpu_hour)
    return h * r


def depreciation_rate_per_year(value_decay_oom_per_year):
    r"""Continuous depreciation rate from a decay in orders of magnitude per year.

    A value that falls :math:`k` orders of magnitude a year loses :math:`k \ln 10` of its value per year
    (0.14 OOM/yr is 32.2 %/yr).

    Parameters
    ----------
    value_decay_oom_per_year : numeric
        Orders of magnitude of value lost per year [OOM/yr].

    Returns
    -------
    numeric
        Depreciation rate [1/yr].

    References
    ----------
    .. [3] Cottier et al. 2024: hardware value declines by 0.14 OOM per year.
    """
    v.positive("value_decay_oom_per_year", value_decay_oom_per_year)
    (k,) = _floats(value_decay_oom_per_year)
    return k * _LN10


def amortized_usd_per_chip_hour(hardware_usd, value_decay_oom_per_year=0.14, hours_per_year=8766.0,
                                server_overhead=1.0, interconnect_fraction=0.0):
    r"""Epoch AI's amortised hardware cost of one accelerator-hour.

    .. math::

        c = \frac{P_\text{chip} \cdot s \cdot k \ln 10}{h_\text{yr}} \cdot \frac{1}{1 - f_\text{ic}}

    where :math:`s` is the chip-to-server cost overhead and :math:`f_\text{ic}` the interconnect's share of
    total cluster cost (so the cluster costs :math:`1/(1-f_\text{ic})` times its servers).

    Parameters
    ----------
    hardware_usd : numeric
        Purchase price of one accelerator [USD].
    value_decay_oom_per_year : numeric
        Decay of hardware value [OOM/yr]. Epoch AI: 0.14.
    hours_per_year : numeric
        Hours in a year [h]. 8766 (365.25 days).
    server_overhead : numeric
        Server cost per chip / chip price [unitless], >= 1. 1 for the chip alone.
    interconnect_fraction : numeric
        Interconnect share of total cluster cost, in [0, 1) [unitless]. Epoch AI: 0.19.

    Returns
    -------
    numeric
        Amortised cost [USD/chip-hour].

    References
    ----------
    .. [3] Cottier et al. 2024, arXiv:2405.21015; $40,000 of hardware gives $1.471/chip-hour, and
       $1.816 with interconnect at 19 % of cluster cost.
    """
    v.positive("hardware_usd", hardware_usd)
    v.positive("hours_per_year", hours_per_year)
    v.positive("server_overhead", server_overhead)
    v.below_one("interconnect_fraction", interconnect_fraction)
    rate = depreciation_rate_per_year(value_decay_oom_per_year)
    hw, s, h, f = _floats(hardware_usd, server_overhead, hours_per_year, interconnect_fraction)
    per_hour = hw * s * rate / h
    return per_hour / (1.0 - f)


def energy_kwh(tdp_watts, gpu_hours, chip_to_server_power=1.0, average_power_fraction=1.0, pue=1.0):
    r"""Facility energy of a training run.

    :math:`E = \mathrm{TDP} \cdot r_\text{server} \cdot u \cdot \mathrm{PUE} \cdot H / 1000`

    Parameters
    ----------
    tdp_watts : numeric
        Accelerator thermal design power [W].
    gpu_hours : numeric
        Accelerator-hours [GPU-hour].
    chip_to_server_power : numeric
        Server power per accelerator / accelerator TDP [unitless] (CPUs, memory, networking, fans).
    average_power_fraction : numeric
        Average draw during training as a fraction of peak server power, in (0, 1] [unitless].
    pue : numeric
        Data-centre power usage effectiveness, >= 1 [unitless].

    Returns
    -------
    numeric
        Energy [kWh].

    References
    ----------
    .. [3] Cottier et al. 2024 (energy = TDP x server overhead x average utilisation x PUE x time).
    .. [5] Llama 2 model card: 1,720,320 A100-hours at 400 W is 688.1 MWh (chip only, no PUE).
    """
    v.positive("tdp_watts", tdp_watts)
    v.positive("gpu_hours", gpu_hours)
    v.positive("chip_to_server_power", chip_to_server_power)
    v.fraction("average_power_fraction", average_power_fraction)
    v.positive("pue", pue)
    w, r, u, e, h = _floats(tdp_watts, chip_to_server_power, average_power_fraction, pue, gpu_hours)
    return w / 1000.0 * r * u * e * h


def energy_cost_usd(energy_kwh, usd_per_kwh):
    """Cost of energy.

    Parameters
    ----------
    energy_kwh : numeric
        Energy [kWh].
    usd_per_kwh : numeric
        Electricity price [USD/kWh].

    Returns
    -------
    numeric
        Cost [USD].
    """
    v.non_negative("energy_kwh", energy_kwh)
    v.non_negative("usd_per_kwh", usd_per_kwh)
    e, p = _floats(energy_kwh, usd_per_kwh)
    return e * p


def development_cost_usd(final_run_usd, experiments_multiplier=1.0, staff_usd=0.0, data_usd=0.0):
    r"""The development iceberg: the final run plus what found the recipe.

    The experiments and ablations are ``(experiments_multiplier - 1) x final_run_usd``; staff and data are
    added as given. The final run stays its own line: callers show this beside it, never folded in.

    Parameters
    ----------
    final_run_usd : numeric
        Cost of the final training run [USD].
    experiments_multiplier : numeric
        Total development compute / final-run compute, >= 1 [unitless].
    staff_usd : numeric
        Research and engineering staff cost attributable to the model [USD].
    data_usd : numeric
        Data acquisition and labelling cost [USD].

    Returns
    -------
    dict of numeric
        ``experiments_usd`` and ``total_usd`` (final run + experiments + staff + data) [USD].

    References
    ----------
    .. [3] Cottier et al. 2024: total R&D compute is a multiple of the final run; R&D staff is a share of
       amortised cost comparable to hardware.
    """
    v.non_negative("final_run_usd", final_run_usd)
    v.non_negative("staff_usd", staff_usd)
    v.non_negative("data_usd", data_usd)
    if not v._check(experiments_multiplier, lambda x: x >= 1):
        from billshape.errors import BillshapeInputError

        raise BillshapeInputError("experiments_multiplier", experiments_multiplier, ">= 1")
    mult, final, staff, data = _floats(experiments_multiplier, final_run_usd, staff_usd, data_usd)
    experiments = (mult - 1.0) * final
    return {
        "experiments_usd": experiments,
        "total_usd": final + experiments + staff + data,
    }


def generation_cost_usd(final_run_usd, experiments_multiplier=1.0, staff_share=0.0, data_usd=0.0):
    r"""A frontier generation's cost: the final run, the experiments that found it, the staff and the data.

    .. math::

        C_{compute} = m \, C_{final}, \qquad
        C_{staff} = \frac{s}{1 - s} \, C_{compute}, \qquad
        C_{generation} = C_{compute} + C_{staff} + C_{data}

    with ``m`` the total-development-compute multiple of the final run and ``s`` the staff share of total
    (hardware + energy + staff) development cost, as Cottier et al. estimate them.

    Parameters
    ----------
    final_run_usd : numeric
        Cost of the final training run [USD], >= 0.
    experiments_multiplier : numeric
        Total development compute / final-run compute [unitless], >= 1.
    staff_share : numeric
        Staff share of total development cost [fraction], in [0, 1).
    data_usd : numeric
        Data acquisition and licensing over the generation [USD], >= 0.

    Returns
    -------
    dict of numeric
        ``experiments_usd`` ((m - 1) x final), ``compute_usd`` (m x final), ``staff_usd`` and ``total_usd`` [USD].

    References
    ----------
    .. [3] Cottier et al. 2024: R&D compute is 1.2-4x the final run (median 2.2); R&D staff is 29-49 % of the
       total amortised development cost of GPT-4, GPT-3, OPT-175B and Gemini Ultra.
    """
    from billshape.errors import BillshapeInputError

    v.non_negative("final_run_usd", final_run_usd)
    v.non_negative("data_usd", data_usd)
    if not v._check(experiments_multiplier, lambda x: x >= 1):
        raise BillshapeInputError("experiments_multiplier", experiments_multiplier, ">= 1")
    if not v._check(staff_share, lambda x: (x >= 0) & (x < 1)):
        raise BillshapeInputError("staff_share", staff_share, "in [0, 1)")
    final, mult, share, data = _floats(final_run_usd, experiments_multiplier, staff_share, data_usd)
    compute = mult * final
    staff = share / (1.0 - share) * compute
    return {
        "experiments_usd": compute - final,
        "compute_usd": compute,
        "staff_usd": staff,
        "total_usd": compute + staff + data,
    }
