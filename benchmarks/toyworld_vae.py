"""How much physics does the toy-world generator's VAE destroy on its own? Round trips of clean clips, judged by ground
truth.

A generated clip can be no cleaner than the VAE can draw it. This script renders plausible toy-world clips (17
frames at 32x32, seeds 2000+, never trained on), passes each through a VAE (encode to the mean latent, decode) and
reports the toy world's physics error of the reconstructions (0 for the clean clips themselves) with its terms,
PSNR and the error on ball pixels. It measures

- each `--generator` given (its `vae`), e.g. the bundled `toyworld`; and
- for each temporal compression in `--train-temporal` (4 = Wan's own, 2 = time halved only once), a VAE trained
  from scratch by `GeneratorTrainer`'s stage 1 for `--steps` steps with everything else at the defaults.

    python benchmarks/toyworld_vae.py --generator toyworld --train-temporal 4 2 --steps 2000 --threads 1
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import benchmark_parser, machine, parse_args, write_results

from hybridgen.models import load_video_pipeline
from hybridgen.toyworld import TERMS, physics_report
from hybridgen.training.generator import (
    GeneratorTrainer,
    GeneratorTrainingConfig,
    default_vae_config,
    reconstruct,
    reconstruction_metrics,
    render_clips,
    to_model_space,
)

CLIP_SEED = 2000  # held out: the generator trains on seeds 0.., its reconstruction metrics use 900,000..
# one flag per downsampling level of the default three-level VAE, for each temporal compression
TEMPORAL_DOWNSAMPLE = {2: [False, True], 4: [True, True]}


def round_trip(vae, frames: np.ndarray) -> dict:
    """Physics error and its terms, with the trainer's reconstruction metrics (PSNR, mae, ball_mae), of `vae`'s
    reconstructions of uint8 `frames` (N, T, H, W, 3)."""
    start = time.perf_counter()
    reconstructions = reconstruct(vae.eval(), frames)  # (N, T, H, W, 3) in [0, 1]
    seconds = time.perf_counter() - start
    reports = [physics_report(clip) for clip in reconstructions]
    in_model_space = torch.from_numpy(reconstructions).permute(0, 4, 1, 2, 3) * 2 - 1  # (N, 3, T, H, W)
    return {
        "physics_error": float(np.mean([r.total for r in reports])),
        "physics_error_median": float(np.median([r.total for r in reports])),
        "terms": {term: float(np.mean([r.terms[term] for r in reports])) for term in TERMS},
        **reconstruction_metrics(to_model_space(frames), in_model_space),
        "seconds_per_clip": seconds / len(frames),
    }


def train_vae(temporal: int, steps: int, seed: int, num_clips: int) -> tuple[torch.nn.Module, float]:
    """Stage 1 of `GeneratorTrainer` alone, with `temporal`x time compression. Returns the VAE and seconds taken."""
    vae = {
        **default_vae_config(),
        "temperal_downsample": TEMPORAL_DOWNSAMPLE[temporal],
        "scale_factor_temporal": temporal,
    }
    trainer = GeneratorTrainer(
        GeneratorTrainingConfig(vae=vae, vae_steps=steps, steps=0, seed=seed, num_clips=num_clips)
    )
    _ = trainer.frames  # render the training clips before the clock starts
    start = time.perf_counter()
    for _ in range(steps):
        trainer.vae_train_step()
    return trainer.vae, time.perf_counter() - start


def main() -> None:
    parser = benchmark_parser(__doc__)
    parser.add_argument("--generator", nargs="*", default=[], help="pipeline ids whose VAE to measure")
    parser.add_argument(
        "--train-temporal",
        type=int,
        nargs="*",
        default=[],
        choices=sorted(TEMPORAL_DOWNSAMPLE),
        help="temporal compressions to train a VAE for and measure",
    )
    parser.add_argument("--steps", type=int, default=2000, help="VAE training steps (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    parser.add_argument("--train-clips", type=int, default=3000, help="training clips (default 3000)")
    parser.add_argument("--clips", type=int, default=48, help="held-out clips (default 48)")
    args = parse_args(parser)
    if not args.generator and not args.train_temporal:
        parser.error("nothing to measure: give --generator and/or --train-temporal")
    if min(args.steps, args.clips, args.train_clips) < 1:
        parser.error("--steps, --clips and --train-clips must be >= 1")

    clip = GeneratorTrainingConfig()  # the clip size, length and frame rate the generator trains on
    frames, _ = render_clips(args.clips, CLIP_SEED, size=clip.size, num_frames=clip.num_frames, fps=clip.fps)
    rows = []
    for generator in args.generator:
        rows.append({"vae": generator, **round_trip(load_video_pipeline(generator).vae, frames)})
    for temporal in args.train_temporal:
        vae, seconds = train_vae(temporal, args.steps, args.seed, args.train_clips)
        name = f"trained here: {temporal}x time, {args.steps} steps"
        rows.append({"vae": name, "train_seconds": seconds, **round_trip(vae, frames)})

    print(
        f"{args.clips} clean held-out clips (seeds {CLIP_SEED}+), {clip.num_frames} frames at {clip.size}x"
        f"{clip.size}, through each VAE and back"
    )
    print(
        "| VAE | physics error (mean / median) | " + " | ".join(TERMS) + " | PSNR (dB) | ball-pixel error |"
    )
    print("|---|---:|" + "---:|" * len(TERMS) + "---:|---:|")
    for row in rows:
        terms = " | ".join(f"{row['terms'][t]:.3f}" for t in TERMS)
        print(
            f"| {row['vae']} | {row['physics_error']:.3f} / {row['physics_error_median']:.3f} | {terms} | "
            f"{row['psnr']:.2f} | {row['ball_mae']:.3f} |"
        )
    if args.json:
        system = machine()
        environment = {key: system[key] for key in ("machine", "threads", "torch")}
        report = {"clips": args.clips, "steps": args.steps, "rows": rows, "environment": environment}
        write_results({**report, "machine": system}, args.json)


if __name__ == "__main__":
    main()
