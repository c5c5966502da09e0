"""Noise schedules for few-step AnimateDiff-Lightning sampling, as pure functions of a sigma table.

AnimateDiff (and so Lightning) was trained with diffusers' beta_schedule="linear": betas evenly spaced from 0.00085
to 0.012. ComfyUI calls that schedule "sqrt_linear"; its SD1.5 default ("linear") spaces sqrt(beta) instead, which
gives sigma_max 14.6 rather than 25.1 and visibly wrong Lightning output.
"""
from __future__ import annotations

import torch

SCHEDULERS = ("trailing", "sgm_uniform")


def trailing(sigma_table: torch.Tensor, steps: int) -> torch.Tensor:
    """diffusers timestep_spacing="trailing": t_i = round(T - i*T/steps) - 1, then a final 0.

    This is what Lightning was distilled on. For steps dividing T it equals ComfyUI's "simple" scheduler.
    """
    _check_steps(steps)
    count = len(sigma_table)
    ts = torch.round(torch.arange(count, 0, -count / steps, dtype=torch.float64)).long() - 1
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


def sigmas_for(scheduler: str, sigma_table: torch.Tensor, steps: int, denoise: float = 1.0) -> torch.Tensor:
    """Sigmas for `steps` sampler steps; denoise < 1 keeps the last `steps` of a longer schedule (video-to-video)."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"unknown scheduler '{scheduler}'; choose one of {', '.join(SCHEDULERS)}")
    if not 0.0 < denoise <= 1.0:
        raise ValueError(f"denoise must be in (0, 1], got {denoise}")
    total = steps if denoise >= 1.0 else int(steps / denoise)
    fn = trailing if scheduler == "trailing" else sgm_uniform
    return fn(sigma_table, total)[-(steps + 1):]


def _check_steps(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
