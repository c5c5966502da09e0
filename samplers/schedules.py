"""Noise schedules for few-step AnimateDiff-Lightning sampling, as pure functions of a sigma table.

AnimateDiff (and so Lightning) was trained with diffusers' beta_schedule="linear": betas evenly spaced from 0.00085
to 0.012. ComfyUI calls that schedule "sqrt_linear"; its SD1.5 default ("linear") spaces sqrt(beta) instead, which
gives sigma_max 14.6 rather than 25.1 and visibly wrong Lightning output.
"""
from __future__ import annotations

import math

import torch

SCHEDULERS = ("trailing", "sgm_uniform")


def trailing(sigma_table: torch.Tensor, steps: int) -> torch.Tensor:
    """diffusers timestep_spacing="trailing": t_i = round(T - i*T/steps) - 1 for i = 0..steps-1, then a final 0.

    This is what Lightning was distilled on. For steps dividing T it equals ComfyUI's "simple" scheduler. The t are the
    first `steps` points of diffusers' float `arange(T, 0, -T/steps)`: that range can hold one point too many (61
    steps: a last point near 0, whose t = -1 wrapped to sigma_max just before the final 0). The range itself is kept
    because its rounding decides ties (48 steps: t = 937.5) and the schedules of every other step count stay as
    they were, bit for bit.
    """
    _check_steps(steps)
    count = len(sigma_table)
    ts = torch.round(torch.arange(count, 0, -count / steps, dtype=torch.float64)[:steps]).long() - 1
    return torch.cat([sigma_table[ts].float(), torch.zeros(1)])


def sgm_uniform(sigma_table: torch.Tensor, steps: int) -> torch.Tensor:
    """Timesteps evenly spaced from T-1 towards 0 (steps+1 points, last dropped), sigma by log-linear interpolation
    of the table, then a final 0: ComfyUI's sgm_uniform, within 0.4% of trailing for Lightning's step counts."""
    _check_steps(steps)
    count = len(sigma_table)
    ts = torch.linspace(count - 1, 0, steps + 1, dtype=torch.float64)[:-1]
    log_sigmas = sigma_table.double().log()
    low = ts.floor().long()
    high = ts.ceil().long()
    frac = ts - low
    sigmas = ((1 - frac) * log_sigmas[low] + frac * log_sigmas[high]).exp()
    return torch.cat([sigmas.float(), torch.zeros(1)])


def denoise_steps(steps: int, denoise: float) -> int:
    """How many of a `steps`-step schedule's steps denoise runs: floor(steps * denoise), at least 1.

    diffusers' img2img `strength` rule (int(steps * strength)); the 1e-9 keeps 0.29 * 100 = 28.999999999999996
    from flooring to 28.
    """
    return max(1, min(steps, math.floor(steps * denoise + 1e-9)))


def sigmas_for(scheduler: str, sigma_table: torch.Tensor, steps: int, denoise: float = 1.0) -> torch.Tensor:
    """Sigmas of the `steps`-step schedule; denoise < 1 keeps only its last denoise_steps(steps, denoise) steps.

    So denoise stays on the grid Lightning was distilled on (4 steps, denoise 0.5: timesteps 499, 249, as diffusers'
    strength 0.5), rather than stretching the schedule to steps/denoise points as ComfyUI's KSampler does (499, 374,
    249, 124: timesteps the model never saw). ComfyUI's rule stays one node away: core's BasicScheduler ("simple")
    on the same MODEL.
    """
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler '{scheduler}'; choose one of {', '.join(SCHEDULERS)}")
    if not 0.0 < denoise <= 1.0:
        raise ValueError(f"denoise must be in (0, 1], got {denoise}")
    fn = trailing if scheduler == "trailing" else sgm_uniform
    return fn(sigma_table, steps)[-(denoise_steps(steps, denoise) + 1):]


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
