"""One prompt, one seed, four ways to spend the critic: plain sampling, best-of-N, search and gradient guidance.

Runs offline on a CPU with the bundled toy-world generator and critic. Writes into --output-dir one MP4 per strategy
and side_by_side.mp4 (the four clips next to each other, left to right in the order printed), and prints each
clip's ground-truth physics error (the toy world's checker), the critic's surprise and the denoising steps spent.

    python examples/strategies.py --prompt "two green balls bouncing" --seed 3
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from hybridgen import HybridPipeline
from hybridgen.pipelines.guidance import GuidanceOptions
from hybridgen.pipelines.search import SearchOptions
from hybridgen.toyworld import physics_error
from hybridgen.video import write_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt", default="a red ball bouncing", help="what the video should show")
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidates' seeds")
    parser.add_argument("--candidates", type=int, default=8, help="N of best-of-N and of the search")
    parser.add_argument(
        "--guidance-scale", type=float, default=GuidanceOptions.scale, help="RMS of each guidance push"
    )
    parser.add_argument(
        "--generator", default="toyworld", help="generator id (default: the bundled toy world)"
    )
    parser.add_argument("--critic", help="critic id (default: the generator's bundled critic)")
    parser.add_argument("--output-dir", type=Path, default=Path("out/strategies"))
    args = parser.parse_args()

    # 1. Load the generator and the critic (bundled: no network)
    pipe = HybridPipeline.from_pretrained(args.generator, critic=args.critic)

    # 2. The same prompt and seed under each strategy
    runs = {
        "plain": {"num_candidates": 1},
        f"best_of_{args.candidates}": {"num_candidates": args.candidates},
        "search": {"num_candidates": args.candidates, "strategy": "search", "search": SearchOptions()},
        "guidance": {
            "num_candidates": 1,
            "strategy": "guidance",
            "guidance": GuidanceOptions(scale=args.guidance_scale),
        },
    }
    clips = []
    print(f"{'strategy':<12} {'physics error':>13} {'surprise':>9} {'steps':>6} {'seconds':>8}")
    for name, options in runs.items():
        started = time.perf_counter()
        out = pipe(
            args.prompt, generator=torch.Generator().manual_seed(args.seed), show_progress=False, **options
        )
        seconds = time.perf_counter() - started
        out.save(args.output_dir / f"{name}.mp4")
        clips.append(out.video)
        surprise = out.surprises[out.best_index]
        print(
            f"{name:<12} {physics_error(out.video):>13.4f} {surprise:>9.4f} {out.denoising_steps:>6} {seconds:>8.1f}"
        )

    # 3. Side by side, left to right in the order above
    side_by_side = np.concatenate(clips, axis=2)  # (T, H, 4 W, 3)
    write_video(side_by_side, args.output_dir / "side_by_side.mp4", fps=pipe.fps or 16)
    print(f"wrote {args.output_dir}/{{{','.join(runs)},side_by_side}}.mp4")


if __name__ == "__main__":
    main()
