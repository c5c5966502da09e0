"""Choose the context-window defaults for 4-step sampling with a model whose exact answer is known.

Random-weight checkpoints (all the test machines have) give frames that are nearly independent of each other, so a
seam cannot stand out from them. This benchmark instead samples from a video prior whose ideal denoiser is known in
closed form, and restricts that denoiser to 16-frame windows the way a motion module trained on 16-frame clips is:

  prior: every latent channel is a Gaussian process over frames, covariance
         K[i, j] = c + (1 - c) * exp(-(i - j)^2 / (2 l^2))    (a constant "scene" part c plus smooth motion)
  window denoiser at noise sigma (exact posterior mean given only the window's frames):
         x0 = K_w (K_w + sigma^2 I)^-1 x_w

Sampling is the pack's: Lightning's 4 trailing sigmas (sqrt_linear table), Euler, windows and blend weights from
samplers/windows.py (blended as ComfyUI's context handler does: dev/harness/reference.py), FreeNoise from
samplers/free_noise.py. Reported per setting, on the final frames:
  seam      metrics/seams.seam_ratio: mean |frame change| at window boundaries / inside windows (1.00 = no seam)
  peak      largest |frame change| over the median one, wherever it is: the worst seam, comparable between
            schedules (uniform has 4x as many boundary pairs, each crossed by fewer steps)
  vs_full   RMS distance to the sample the same denoiser gives with the whole clip as context, relative to that
            sample's RMS (the error the windows add)
  drift     RMS difference between the mean of the first and the last 16 frames, relative to the same for the
            full-context sample from plain noise (windows that wander apart in content score > 1)
  windows   UNet window evaluations per clip (cost)

    python -m dev.benchmarks.window_seams [--frames 64] [--channels 4096] [--seeds 4]
    python -m dev.benchmarks.window_seams --causal    # also each setting with core 0.30's causal window fix

--modes adds, per setting, rows for windows inside the motion module (the sampler's "motion module" mode,
motion/windows.py): the exact window denoiser A_w is split into n equal layers A_w^(1/n) (n = 21 temporal
transformers, or 42 temporal attentions), and every layer is run per window and blended before the next one, as the
module-level windows do at each of the UNet's 21 temporal layers; "whole UNet" is n = 1, today's rows.

--causal adds, per setting, a row for ComfyUI 0.30's "causal window fix" (the frame before each window is prepended
to it and its output dropped; the pack turns it off, nodes/context_handler.py): here that is an exact denoiser over
length + 1 frames, so it shows what the extra frame of context could buy at best, not the cost of running a motion
module past the 16 frames it was trained on.
"""
from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import torch


from adlightning.samplers.free_noise import free_noise
from adlightning.samplers.schedules import sigmas_for
from adlightning.metrics.seams import frame_changes, seam_ratio
from dev.harness.reference import blend, sqrt_linear_sigmas
from adlightning.samplers.windows import (FUSE_METHODS, NOISE_TYPES, WindowOptions, fuse_weights,
                              window_evaluations, windows)

STEPS = 4


def prior_cov(frames: int, scene: float, motion_frames: float, looped: bool = False) -> torch.Tensor:
    """Covariance over frames; looped = the motion part is periodic over the clip (a clip that loops), made by
    summing the kernel over shifts of one clip length, which keeps it positive definite."""
    t = torch.arange(frames, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    shifts = (-1, 0, 1) if looped else (0,)
    rbf = sum(torch.exp(-(lag + k * frames) ** 2 / (2 * motion_frames ** 2)) for k in shifts)
    return scene + (1 - scene) * rbf + 1e-6 * torch.eye(frames, dtype=torch.float64)


def denoiser(cov: torch.Tensor, sigma: float) -> torch.Tensor:
    eye = torch.eye(cov.shape[0], dtype=cov.dtype)
    return torch.linalg.solve(cov + sigma ** 2 * eye, cov).T   # K (K + s^2 I)^-1 (K symmetric)


# Layers per UNet pass that are blended separately in the "motion module" mode, by window granularity.
MODULE_LAYERS = {"transformer": 21, "attention": 42}


def matrix_power(a: torch.Tensor, p: float) -> torch.Tensor:
    """a**p of a symmetric positive semi-definite matrix (the window denoiser K (K + s^2 I)^-1 is one)."""
    e, v = torch.linalg.eigh((a + a.T) / 2)
    return v @ torch.diag(e.clamp(min=1e-12) ** p) @ v.T


def sample(noise: torch.Tensor, sigmas: torch.Tensor, cov: torch.Tensor, options: WindowOptions | None,
           causal: bool = False, layers: int = 1):
    """Euler over `sigmas`; options None = one window holding the whole clip; causal = core 0.30's window fix (each
    window starting after frame 0 also sees the frame before it, whose output is dropped)."""
    frames = noise.shape[0]
    x = noise * sigmas[0]
    for step in range(len(sigmas) - 1):
        sigma, following = float(sigmas[step]), float(sigmas[step + 1])
        if options is None:
            x0 = denoiser(cov, sigma) @ x
        else:
            layout = windows(frames, options, step)
            length = len(layout[0])
            a = denoiser(cov[:length, :length], sigma)   # stationary prior: every window has the same matrix
            weights = fuse_weights(options.fuse, layout)
            if causal:
                a1 = denoiser(cov[:length + 1, :length + 1], sigma)
                x0 = blend(frames, layout, weights,
                           [(a1 @ x[[w[0] - 1] + list(w)])[1:] if w[0] > 0 else a @ x[w] for w in layout])
            else:   # every layer blended before the next; the whole UNet (layers 1) is one such layer
                m = matrix_power(a, 1.0 / layers) if layers > 1 else a
                x0 = x
                for _ in range(layers):
                    x0 = blend(frames, layout, weights, [m @ x0[w] for w in layout])
        x = x0 + (x - x0) / sigma * following if following > 0 else x0
    return x


def evaluate(options: WindowOptions | None, noises, full, cov, sigmas, looped: bool, causal: bool = False,
             granularity: str | None = None) -> dict:
    layers = MODULE_LAYERS[granularity] if granularity else 1
    frames = noises[0].shape[0]
    first, last = slice(0, 16), slice(frames - 16, frames)

    def drift(x):
        return (x[first].mean(0) - x[last].mean(0)).pow(2).mean().sqrt()

    full_drift = sum(drift(x) for x in full) / len(full)
    layouts = [windows(frames, options or WindowOptions(schedule="looped" if looped else "static"), step)
               for step in range(STEPS)]
    totals = {"seam": 0.0, "peak": 0.0, "vs_full": 0.0, "drift": 0.0}
    for seed, noise in enumerate(noises):
        if options is None:
            out = reference = full[seed]
        else:
            start = free_noise(noise, options.length, options.overlap, seed) if options.noise == "freenoise" \
                else noise
            out = sample(start, sigmas, cov, options, causal, layers)
            reference = sample(start, sigmas, cov, None)
        changes = frame_changes(out, looped)
        totals["seam"] += seam_ratio(out, layouts, looped)
        totals["peak"] += float(changes.max() / changes.median())
        totals["vs_full"] += float((out - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt())
        totals["drift"] += float(drift(out) / full_drift)
    row = {k: v / len(noises) for k, v in totals.items()}
    row["setting"] = "whole clip as one window" if options is None else \
        f"{options.schedule} {options.fuse} overlap {options.overlap} {options.noise}" + (" causal" if causal else "") \
        + (f" module/{granularity}" if granularity else "")
    row["windows"] = sum(window_evaluations(frames, options, STEPS)) if options else STEPS
    row["frames_in"] = sum(len(w) + (causal and w[0] > 0) for layout in layouts for w in layout) if options \
        else STEPS * frames
    return row


def measure(args, looped: bool, settings: list) -> list[dict]:
    cov = prior_cov(args.frames, args.scene, args.motion, looped)
    sigmas = sigmas_for("trailing", sqrt_linear_sigmas(), STEPS).double()
    gen = torch.Generator().manual_seed(0)
    noises = [torch.randn(args.frames, args.channels, generator=gen, dtype=torch.float64) for _ in range(args.seeds)]
    full = [sample(n, sigmas, cov, None) for n in noises]
    rows = [evaluate(options, noises, full, cov, sigmas, looped) for options in [None] + settings]
    if args.causal:
        rows += [evaluate(options, noises, full, cov, sigmas, looped, causal=True) for options in settings]
    if getattr(args, "modes", False):
        rows += [evaluate(options, noises, full, cov, sigmas, looped, granularity=g)
                 for options in settings for g in MODULE_LAYERS]
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"| {'setting':62s} | seam | peak | vs_full | drift | windows | frames in |")
    print(f"|{'-' * 64}|------|------|---------|-------|---------|-----------|")
    for r in rows:
        print(f"| {r['setting']:62s} | {r['seam']:.2f} | {r['peak']:.2f} | {r['vs_full']:7.3f} | {r['drift']:5.2f} "
              f"| {r['windows']:7d} | {r['frames_in']:9d} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--channels", type=int, default=4096, help="independent latent channels per sample")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 2, 4, 6, 8])
    parser.add_argument("--scene", type=float, default=0.5, help="share of variance that is constant over the clip")
    parser.add_argument("--motion", type=float, default=4.0, help="correlation length of the motion part, frames")
    parser.add_argument("--fuse", nargs="+", default=list(FUSE_METHODS), choices=FUSE_METHODS)
    parser.add_argument("--noise", nargs="+", default=list(NOISE_TYPES), choices=NOISE_TYPES)
    parser.add_argument("--no-loop", dest="loop", action="store_false", help="skip the looping-clip table")
    parser.add_argument("--modes", action="store_true",
                        help="also each setting with windows inside the motion module (both granularities)")
    parser.add_argument("--causal", action="store_true", help="also rows with core 0.30's causal window fix")
    args = parser.parse_args()
    print(f"{args.frames} frames, {args.channels} channels x {args.seeds} seeds, scene {args.scene}, "
          f"motion {args.motion} frames, {STEPS} Euler steps (Lightning trailing sigmas), context length 16")
    grid = [WindowOptions(overlap=o, schedule=sch, fuse=f, noise=n)
            for sch, f, o, n in itertools.product(("static", "uniform"), args.fuse, args.overlaps, args.noise)]
    print_table("Clip that does not loop", measure(args, False, grid))
    if args.loop:
        ring = [WindowOptions(schedule=sch, fuse=f, noise=n)
                for sch, f, n in itertools.product(("static", "looped"), args.fuse, args.noise)]
        print_table("Clip that loops (periodic prior; the last-to-first frame pair counts as a pair)",
                    measure(args, True, ring))

if __name__ == "__main__":
    main()
