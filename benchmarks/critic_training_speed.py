"""Seconds per training step of the toy-world critic: float32 against bfloat16 autocast and torch.compile.

Reproducing the bundled critic takes about 130 minutes of training at 2 threads on a 2-core CPU, where the issue
budgets 45. This script measures what the cheap levers buy on the same `CriticTrainer` step (the bundled recipe's
model from random weights, batch 16, 8-frame windows): plain float32; the step under
`torch.autocast(dtype=torch.bfloat16)`; and the encoder, EMA target encoder and predictor wrapped in `torch.compile`.
Variants are timed in rounds (each round runs every variant for `--steps` steps after its warm-up), so a busy
machine slows them alike; the median over rounds is reported with its ratio to float32, and each variant's loss
after its last step as a sanity check (all start from the same weights, data and masks).

    python benchmarks/critic_training_speed.py --threads 2 --rounds 3 --steps 10 --json results.json
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
from common import benchmark_parser, machine, parse_args, write_results
from transformers import VJEPA2Model

from hybridgen.training.critic import (
    CriticTrainer,
    CriticTrainingConfig,
    ToyWorldClips,
    toyworld_critic_config,
)

VARIANTS = ("float32", "bfloat16", "compile")


def make_trainer(variant: str, clips: ToyWorldClips, device: str, seed: int) -> CriticTrainer:
    """A trainer of the bundled recipe from random weights (`seed`), compiled for the "compile" variant."""
    torch.manual_seed(seed)
    model = VJEPA2Model(toyworld_critic_config())
    config = CriticTrainingConfig(seed=seed, eval_every=10**9, checkpoint_every=10**9)
    trainer = CriticTrainer(model, clips, config, device=device)
    if variant == "compile":
        trainer.model.encoder = torch.compile(trainer.model.encoder)
        trainer.model.predictor = torch.compile(trainer.model.predictor)
        trainer.target_encoder = torch.compile(trainer.target_encoder)
    return trainer


def precision(variant: str, device: str) -> contextlib.AbstractContextManager:
    device_type = torch.device(device).type
    if variant == "bfloat16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2, device="cpu")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (the median is reported)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant and round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first (compilation)")
    parser.add_argument("--seed", type=int, default=0)
    args = parse_args(parser)
    if min(args.rounds, args.steps) < 1 or args.warmup < 0:
        parser.error("--rounds and --steps must be >= 1 and --warmup >= 0.")

    clips = ToyWorldClips(pool_size=256, seed=args.seed)
    trainers = {variant: make_trainer(variant, clips, args.device, args.seed) for variant in args.variants}
    seconds = {variant: [] for variant in args.variants}  # per round, seconds per step
    losses = {}
    for variant, trainer in trainers.items():
        with precision(variant, args.device):
            for _ in range(args.warmup):
                trainer.train_step()
    for _ in range(args.rounds):
        for variant, trainer in trainers.items():
            with precision(variant, args.device):
                started = time.perf_counter()
                for _ in range(args.steps):
                    losses[variant] = trainer.train_step()["loss"]
                seconds[variant].append((time.perf_counter() - started) / args.steps)

    baseline = float(np.median(seconds["float32"])) if "float32" in seconds else None
    results = {}
    print("| variant | s / step (median of rounds) | speed-up over float32 | loss after the last step |")
    print("|---|---:|---:|---:|")
    for variant in args.variants:
        median = float(np.median(seconds[variant]))
        speedup = baseline / median if baseline else None
        results[variant] = {
            "seconds_per_step": median,
            "rounds": seconds[variant],
            "speedup": speedup,
            "loss": losses[variant],
        }
        ratio = f"{speedup:.2f}x" if speedup else "-"
        print(f"| {variant} | {median:.3f} | {ratio} | {losses[variant]:.4f} |")
    if args.json:
        system = machine(args.device)
        environment = {key: system[key] for key in ("device", "threads", "cpu", "torch")}
        report = {"steps": args.steps, "rounds": args.rounds, "warmup": args.warmup, "results": results}
        write_results({**report, "environment": environment, "machine": system}, args.json)


if __name__ == "__main__":
    main()
