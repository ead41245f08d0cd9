"""`hybridgen train-generator`: train the toy-world text-to-video WanPipeline.

hybridgen train-generator out/generator --vae-steps 2000 --steps 2400 --threads 1
hybridgen train-generator out/generator --device cuda --mixed-precision bf16
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hybridgen.arguments import count, default_device, natural, positive

# hybridgen.training.core.MIXED_PRECISIONS, spelled out so that the CLI starts without importing transformers
MIXED_PRECISIONS = ("no", "bf16")


def add_train_generator_parser(commands) -> argparse.ArgumentParser:
    """Add the `train-generator` sub-command to `commands` (the object `add_subparsers()` returns)."""
    train = commands.add_parser(
        "train-generator",
        help="train a tiny text-to-video WanPipeline on the toy world (VAE, then transformer)",
    )
    train.add_argument(
        "output", type=Path, help="directory for the pipeline, its checkpoint and training log"
    )
    train.add_argument(
        "--num-clips", type=count, default=3000, help="toy-world training clips (default 3000)"
    )
    train.add_argument("--vae-steps", type=natural, default=2000, help="stage 1: VAE steps (default 2000)")
    train.add_argument(
        "--steps", type=natural, default=2400, help="stage 2: transformer steps (default 2400)"
    )
    train.add_argument("--batch-size", type=count, default=16, help="stage 2: clips per step (default 16)")
    train.add_argument("--lr", type=positive, default=5e-4, help="stage 2: peak learning rate (default 5e-4)")
    train.add_argument("--checkpoint-every", type=count, default=250, help="steps between checkpoints")
    train.add_argument("--seed", type=int, default=0, help="seed of weights, data and noise (default 0)")
    train.add_argument(
        "--device",
        help="where the models train (default: cuda if available, else cpu)",
    )
    train.add_argument(
        "--mixed-precision",
        choices=MIXED_PRECISIONS,
        default="no",
        help="bf16: forward passes under bf16 autocast, CUDA only (default: no, float32)",
    )
    train.add_argument("--threads", type=count, help="torch CPU threads (default: torch's choice)")
    train.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in OUTPUT")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    return train


def run_train_generator(args: argparse.Namespace) -> int:
    import torch

    from hybridgen.training.generator import train_generator

    if args.threads:
        torch.set_num_threads(args.threads)
    summary = train_generator(
        args.output,
        num_clips=args.num_clips,
        vae_steps=args.vae_steps,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        device=args.device or default_device(),
        mixed_precision=args.mixed_precision,
        resume=not args.no_resume,
        show_progress=not args.quiet,
    )
    print(json.dumps(summary, indent=2))
    return 0
