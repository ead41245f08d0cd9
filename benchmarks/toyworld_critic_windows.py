"""Where a toy-world critic's violation signal is: per direction of time, and at the windows that see the violation.

A clip's surprise averages many windows in two directions, so a miss can come from the aggregation (the violation
is caught where it happens but drowned by the rest of the clip) or from the world model (even the windows that see
the violation do not rank the pair right). This script scores violation pairs with the critic under
`VIOLATION_SCORING` and recomputes, from the same per-token errors, the pair accuracy of:

- forward / backward: the clip score from one direction's tokens alone; both: the critic's surprise;
- at the violation, forward: only forward windows whose context ends before the violation frame `t_v` and whose
  target contains it (`t_v - W < s <= t_v - C` for window start `s`, window `W`, context `C`);
- at the violation, backward: only backward windows whose context starts at or after `t_v` and whose target holds
  a frame before it (`t_v - W + C <= s < t_v`);
- at the violation, better direction: the larger of the two for each kind, a ceiling for any aggregation over
  windows and directions that does not know `t_v`.

A window's score is the mean of its `top_fraction` most surprising tokens of that direction, as in the critic.
Speed changes are also split into the pairs where the ball slows down and those where it speeds up (rows not in the
mean).

    python benchmarks/toyworld_critic_windows.py --pairs 40 --json results.json
"""

from __future__ import annotations

import time

import numpy as np
import torch
from common import benchmark_parser, parse_args, write_results

from hybridgen import VJEPA2Critic
from hybridgen.critics.report import CriticReport
from hybridgen.critics.vjepa2 import top_token_mean
from hybridgen.toyworld import VIOLATION_KINDS, ViolationPair
from hybridgen.toyworld.evaluation import VIOLATION_SCORING, KindResult, violation_pairs

# the pairs the violation scoring was chosen on (docs/lab-notes/); the benchmark's test pairs start at 1_000_000
VALIDATION_SEED = 2_000_000
SCORES = (
    "forward",
    "backward",
    "both",
    "at the violation, forward",
    "at the violation, backward",
)


def direction_scores(report: CriticReport, t_violation: int, top_fraction: float | None) -> dict[str, float]:
    """The scores of `SCORES` for one clip scored with direction "both"."""
    # (n_windows, T_target, G, G) -> (n_windows, direction, tokens): the forward tubelets come first
    errors = torch.from_numpy(report.token_errors.reshape(report.token_errors.shape[0], 2, -1))
    per_window = top_token_mean(errors, top_fraction).numpy()  # (n_windows, 2)
    starts, window, context = report.window_starts, report.window, report.context
    at_violation = (  # forward, backward windows that see the violation
        (starts > t_violation - window) & (starts <= t_violation - context),
        (starts >= t_violation - window + context) & (starts < t_violation),
    )
    scores = {
        "forward": per_window[:, 0].mean(),
        "backward": per_window[:, 1].mean(),
        "both": report.surprise,  # the critic's own: top tokens of both directions together, mean over windows
    }
    for d, name in enumerate(("forward", "backward")):
        mask = at_violation[d]
        scores[f"at the violation, {name}"] = per_window[mask, d].mean() if mask.any() else np.nan
    return {name: float(value) for name, value in scores.items()}


def speed_change_subset(pair: ViolationPair) -> str:
    """The subset of a speed-change pair, "slow-downs" or "speed-ups", by its ball's step into frame `t_v` (px)."""
    t, ball = pair.t_violation, pair.ball
    plausible, impossible = (
        np.linalg.norm(trajectories[t, ball] - trajectories[t - 1, ball])
        for trajectories in (pair.plausible_trajectories, pair.impossible_trajectories)
    )
    return "slow-downs" if impossible < plausible else "speed-ups"


def pair_accuracies(scores: dict[str, np.ndarray], kind: str) -> dict[str, float]:
    """`SCORES` -> pair accuracy, from `(2 n,)` scores (plausible, impossible, plausible, ...), and the ceiling."""
    accuracy = {
        name: KindResult(kind, values[0::2], values[1::2]).accuracy for name, values in scores.items()
    }
    accuracy["at the violation, better direction"] = max(
        accuracy["at the violation, forward"], accuracy["at the violation, backward"]
    )
    return accuracy


def main() -> None:
    parser = benchmark_parser(__doc__, threads=1)
    parser.add_argument(
        "--critic", default="toyworld", help="'toyworld' or a directory with an expected-error head"
    )
    parser.add_argument("--pairs", type=int, default=40, help="pairs per violation kind")
    parser.add_argument("--seed", type=int, default=VALIDATION_SEED, help="first pair seed")
    parser.add_argument("--kinds", nargs="*", default=list(VIOLATION_KINDS), help="violation kinds")
    args = parse_args(parser)

    critic = VJEPA2Critic.from_pretrained(args.critic, batch_size=32).with_options(
        **VIOLATION_SCORING, direction="both"
    )
    started = time.perf_counter()
    results: dict[str, dict[str, float]] = {}
    subsets: dict[str, dict[str, float]] = {}  # finer rows, not in the mean
    for kind in args.kinds:
        pairs = violation_pairs(kind, args.pairs, args.seed)
        reports = critic.score_batch([clip for pair in pairs for clip in (pair.plausible, pair.impossible)])
        rows = [  # plausible, impossible, plausible, ...
            direction_scores(report, pairs[i // 2].t_violation, critic.options.top_fraction)
            for i, report in enumerate(reports)
        ]
        scores = {name: np.array([row[name] for row in rows]) for name in SCORES}
        results[kind] = pair_accuracies(scores, kind)
        if kind == "speed_change":
            labels = np.repeat([speed_change_subset(pair) for pair in pairs], 2)
            for label in sorted(set(labels)):
                chosen = {name: values[labels == label] for name, values in scores.items()}
                count = int((labels == label).sum()) // 2
                subsets[f"{kind}, {label} ({count} pairs)"] = pair_accuracies(chosen, kind)
    names = list(next(iter(results.values())))
    results["mean"] = {name: float(np.mean([row[name] for row in results.values()])) for name in names}
    results.update(subsets)
    print("| kind | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for kind, row in results.items():
        print(f"| {kind} | " + " | ".join(f"{row[name]:.3f}" for name in names) + " |")
    print(f"({time.perf_counter() - started:.0f} s, {args.pairs} pairs per kind, seeds {args.seed}+)")
    if args.json:
        report = {"critic": args.critic, "scoring": critic.options.to_dict(), "pairs": args.pairs}
        write_results({**report, "seed": args.seed, "accuracy": results}, args.json)


if __name__ == "__main__":
    main()
