"""Plausible toy-world clips as a generator's VAE renders them: a critic fine-tuning set in the generator's look.

A critic trained on crisp renders finds a generator's blur and colour bleeding surprising in itself, which drowns the
physics it should rank. Passing plausible clips through the generator's own VAE (encode, then decode the mean
latent) keeps their physics and gives them the generator's look; `hybridgen train-critic --data DIR --init CRITIC`
then fine-tunes on them.

    python scripts/vae_reconstructions.py runs/vae-clips --generator toyworld --clips 2000
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm.auto import tqdm

from hybridgen.models import load_call_defaults, load_video_pipeline
from hybridgen.training.generator import reconstruct, render_clips
from hybridgen.video import write_video

# seeds of the rendered clips; the generator trained on 0.., the critic on 0.., its evaluations on 500_000..
RECONSTRUCTION_SEED = 4_000_000


def write_reconstructions(
    output_dir: str | Path,
    *,
    generator: str = "toyworld",
    num_clips: int = 2000,
    batch_size: int = 16,
    seed: int = RECONSTRUCTION_SEED,
    show_progress: bool = True,
) -> int:
    """Render `num_clips` plausible clips at the generator's size and frame count, reconstruct them with its VAE
    and write `clip_<i>.mp4` files. Returns the number written."""
    pipeline = load_video_pipeline(generator)
    call, fps = load_call_defaults(generator)
    fps = fps or 8.0  # the toy world's frame rate when the checkpoint names none
    size, num_frames = int(call.get("height", 32)), int(call.get("num_frames", 17))
    output_dir = Path(output_dir)
    for first in tqdm(range(0, num_clips, batch_size), desc="reconstructions", disable=not show_progress):
        count = min(batch_size, num_clips - first)
        frames, _ = render_clips(count, seed + first, size=size, num_frames=num_frames, fps=fps)
        for k, clip in enumerate(reconstruct(pipeline.vae, frames)):
            write_video(clip, output_dir / f"clip_{first + k:05d}.mp4", fps=fps)
    return num_clips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("output", type=Path, help="folder for the MP4s")
    parser.add_argument("--generator", default="toyworld", help="generator whose VAE renders the clips")
    parser.add_argument("--clips", type=int, default=2000, help="how many clips (default 2000)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"wrote {write_reconstructions(args.output, generator=args.generator, num_clips=args.clips)} clips")


if __name__ == "__main__":
    main()
