"""Does surprise track physics? Violation-pair accuracy and AUROC of toy-world critics and a pixel baseline.

For each violation kind, `--pairs` IntPhys-style pairs (a plausible clip and its impossible twin, identical up to
the violation frame) are scored; accuracy = P(impossible scores higher than its twin), AUROC = P(a random impossible
clip outscores a random plausible one). Scorers:

- trained: the bundled critic (`VJEPA2Critic.from_pretrained("toyworld")`, or `--critic DIR` calibrated with
  `hybridgen calibrate-critic`) with its stored window, context and direction, and `VIOLATION_SCORING` (each
  token's error relative to the error its expected-error head predicts, averaged over the plain view and three
  translated by half a patch, a window's 25% most surprising tokens, the mean over windows starting at every frame);
- untrained: a random `VJEPA2Model` of the same architecture with an expected-error head fitted the same way
  (`--calibration-steps`), scored the same way (`--skip-untrained` leaves it out, `--skip-trained` the trained one);
- pixels: error of a constant-velocity extrapolation of the frames (x_t ~ 2 x_{t-1} - x_{t-2}), mean over frames;
- physics checker: the toy world's hand-written ground-truth checker (`physics_error`), which knows the rules: a
  ceiling showing the violations are visible in the pixels, not a learned score;
- levers (`--levers`): the trained model under other scoring options, to show what each option buys.

    python benchmarks/toyworld_critic.py --pairs 200 --json results.json
    python benchmarks/toyworld_critic.py --skip-critics --json baselines.json  # pixels and checker only
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import benchmark_parser, parse_args, write_results
from transformers import VJEPA2Model

from hybridgen import VJEPA2Critic
from hybridgen.toyworld import VIOLATION_KINDS, make_clip
from hybridgen.toyworld.evaluation import (
    QUICK_VIOLATION_SCORING,
    VIOLATION_SCORING,
    compare_scorers,
    summarize,
)
from hybridgen.toyworld.physics import physics_error
from hybridgen.training.critic import ToyWorldClips
from hybridgen.training.error_head import CALIBRATION_SEED, fit_expected_error_head

# pair seeds of this benchmark; the trainer watches 500_000.., scoring options were chosen on 2_000_000..
TEST_SEED = 1_000_000
VIOLATION = {"direction": "both", **VIOLATION_SCORING}
RAW = {"direction": "both", **QUICK_VIOLATION_SCORING}
LEVERS = {
    "raw, forward, mean (the naive score)": {
        **RAW,
        "direction": "forward",
        "top_fraction": None,
        "aggregate": "mean",
    },
    "raw, top 2% tokens, worst window (QUICK_VIOLATION_SCORING)": RAW,
    "raw, top 2% tokens, worst window, every frame, mirror (the violation scoring until 2026-12-02)": {
        **RAW,
        "stride": 1,
        "mirror": True,
    },
    "relative (violation scoring)": VIOLATION,
    "relative, but mean over all tokens": {**VIOLATION, "top_fraction": None},
    "relative, but worst window": {**VIOLATION, "aggregate": "max"},
    "relative, but windows every 2nd frame": {**VIOLATION, "stride": 2},
    "relative, but also mirrored": {**VIOLATION, "mirror": True},
    "relative, but no shifted views": {**VIOLATION, "shifts": []},
    "relative, but context 2 frames": {**VIOLATION, "context": 2},
    "relative, but context 6 frames": {**VIOLATION, "context": 6},
}


def untrained_critic(trained: VJEPA2Critic, calibration_steps: int, device: str) -> VJEPA2Critic:
    """A randomly initialised critic of `trained`'s shape and scoring, with an expected-error head fitted to it."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VJEPA2Model(trained.model.config).to(device)
    untrained = VJEPA2Critic(model, batch_size=32, options=trained.options.replace(relative=False))
    clips = ToyWorldClips(size=untrained.crop_size, seed=CALIBRATION_SEED)
    head, _ = fit_expected_error_head(untrained, clips, steps=calibration_steps, show_progress=False)
    return untrained.with_options(**VIOLATION_SCORING, expected_error_head=head)


def critic_scorer(critic: VJEPA2Critic):
    def score(clips):
        return [report.surprise for report in critic.score_batch(clips)]

    return score


def pixel_scorer(clips):
    """Constant-velocity extrapolation error, mean over predicted frames: `(T, H, W, 3)` uint8 -> float."""
    scores = []
    for clip in clips:
        x = clip.astype(np.float32) / 255  # (T, H, W, 3)
        predicted = 2 * x[1:-1] - x[:-2]  # (T-2, H, W, 3) guesses of x[2:]
        scores.append(float(np.abs(x[2:] - predicted).mean()))
    return scores


def checker_scorer(clips):
    """The ground-truth checker's physics error of each clip (0 = clean)."""
    return [physics_error(clip) for clip in clips]


def throughput(critic: VJEPA2Critic, num_clips: int = 32) -> float:
    """Clips per second scoring 16-frame 64x64 plausible clips with score_batch."""
    clips = [make_clip(seed)[0] for seed in range(num_clips)]
    critic.score_batch(clips[:2])  # warm-up
    started = time.perf_counter()
    critic.score_batch(clips)
    return num_clips / (time.perf_counter() - started)


def table(name: str, results: dict) -> str:
    rows = summarize(results)
    lines = [f"### {name}", "", "| kind | accuracy | AUROC |", "|---|---:|---:|"]
    lines += [f"| {kind} | {row['accuracy']:.3f} | {row['auroc']:.3f} |" for kind, row in rows.items()]
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, threads=1, device="cpu")
    parser.add_argument("--critic", default="toyworld", help="trained critic: 'toyworld' or a directory")
    parser.add_argument("--pairs", type=int, default=200, help="pairs per violation kind")
    parser.add_argument("--seed", type=int, default=TEST_SEED, help="first pair seed")
    parser.add_argument("--kinds", nargs="*", default=list(VIOLATION_KINDS), help="violation kinds")
    parser.add_argument(
        "--levers", action="store_true", help="also score the trained model under other options"
    )
    parser.add_argument("--lever-pairs", type=int, default=50, help="pairs per kind for the levers")
    parser.add_argument(
        "--skip-critics", action="store_true", help="score with the pixel baseline and the checker only"
    )
    parser.add_argument(
        "--skip-untrained",
        action="store_true",
        help="leave out the untrained critic (its head fit and scoring are half the run)",
    )
    parser.add_argument(
        "--skip-trained",
        action="store_true",
        help="leave out the trained critic's column (its scoring options and throughput are still reported)",
    )
    parser.add_argument(
        "--calibration-steps",
        type=int,
        default=600,
        help="steps fitting the untrained critic's expected-error head (calibrate-critic's default)",
    )
    args = parse_args(parser)

    scorers: dict = {}
    report = {"critic": None, "scoring": None, "pairs": args.pairs, "seed": args.seed, "results": {}}
    if not args.skip_critics:
        trained = VJEPA2Critic.from_pretrained(args.critic, batch_size=32, device=args.device)
        trained = trained.with_options(**VIOLATION_SCORING)
        if not args.skip_trained:
            scorers["trained critic"] = critic_scorer(trained)
        if not args.skip_untrained:
            untrained = untrained_critic(trained, args.calibration_steps, args.device)
            scorers["untrained critic (same shape and scoring)"] = critic_scorer(untrained)
        report["critic"], report["scoring"] = args.critic, trained.options.to_dict()
    scorers["pixels: constant-velocity extrapolation error"] = pixel_scorer
    scorers["physics checker (hand-written rules)"] = checker_scorer
    options = {"kinds": args.kinds, "num_pairs": args.pairs, "seed": args.seed}
    started = time.perf_counter()
    for name, results in compare_scorers(scorers, **options).items():
        report["results"][name] = summarize(results)
        print(table(name, results), "\n", flush=True)
    print(f"({time.perf_counter() - started:.0f} s)", flush=True)
    if args.levers and not args.skip_critics:
        levers = {name: critic_scorer(trained.with_options(**lever)) for name, lever in LEVERS.items()}
        lever_results = compare_scorers(levers, **dict(options, num_pairs=args.lever_pairs))
        report["levers"] = {name: summarize(results) for name, results in lever_results.items()}
        for name, results in lever_results.items():
            print(table(f"lever: {name} ({args.lever_pairs} pairs per kind)", results), "\n", flush=True)
    report["threads"], report["device"] = args.threads, args.device
    if not args.skip_critics:
        report["clips_per_second"] = throughput(trained)
        print(
            f"scoring throughput: {report['clips_per_second']:.1f} clips/s "
            f"(16 frames, 64x64, {args.device}, {args.threads} thread)"
        )
    if args.json:
        write_results(report, args.json, device=args.device)


if __name__ == "__main__":
    main()
