"""Does a score track physics? Pairwise accuracy and AUROC on IntPhys-style violation pairs.

Each pair is a plausible clip and an impossible twin identical up to the violation frame; a good score ranks
the impossible clip higher. `score_fn` maps a list of uint8 `(T, H, W, 3)` clips to one float each (higher =
less plausible): a critic's surprise, a pixel baseline, or the ground-truth checker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hybridgen.toyworld.violations import KIND_CATEGORY, VIOLATION_KINDS, make_violation_pair

ScoreFn = Callable[[list[np.ndarray]], Sequence[float]]

# VJEPA2Critic options under which critics are judged on violation pairs: each token's error is divided by the error
# the critic's expected-error head predicts there (`relative`; the critic needs a head: `hybridgen calibrate-critic`),
# so honest uncertainty (a bounce) no longer outweighs an impossible event in easy free flight; each token's error is
# averaged over the plain view and three views translated by half a patch (the bundled critic's 8 px patches), so
# where a ball sits within its patch matters less; a window scores its 25% most surprising tokens, the clip the mean
# over windows starting at every frame (chosen on validation pairs, seeds 2,000,000+; docs/lab-notes/). A critic's
# default (e.g. the bundled one's raw mean over all tokens and windows) may differ: apply with
# `critic.with_options(**...)`.
VIOLATION_SCORING = {
    "relative": True,
    "top_fraction": 0.25,
    "aggregate": "mean",
    "stride": 1,
    "mirror": False,
    "shifts": [[0, 4], [4, 0], [4, 4]],
}
# The trainer's watch, on critics that have no head yet: raw errors, a window's 2% most surprising tokens, the clip's
# worst window (every 2nd frame)
QUICK_VIOLATION_SCORING = {
    "relative": False,
    "top_fraction": 0.02,
    "aggregate": "max",
    "stride": 2,
    "mirror": False,
    "shifts": [],
}


@dataclass(frozen=True)
class KindResult:
    """Scores of `n` pairs of one violation kind: `plausible` and `impossible` are `(n,)` arrays."""

    kind: str
    plausible: np.ndarray
    impossible: np.ndarray

    @property
    def accuracy(self) -> float:
        """Fraction of pairs where the impossible clip scores higher than its twin (ties count half)."""
        wins = (self.impossible > self.plausible).mean() + 0.5 * (self.impossible == self.plausible).mean()
        return float(wins)

    @property
    def auroc(self) -> float:
        """Probability that a random impossible clip outscores a random plausible one (ties count half)."""
        return auroc(self.plausible, self.impossible)


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of `positives` vs `negatives`, by the Mann-Whitney statistic."""
    negatives, positives = np.asarray(negatives, float), np.asarray(positives, float)
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    return float(greater + 0.5 * ties)


def violation_pairs(kind: str, num_pairs: int, seed: int, num_frames: int = 16, size: int = 64):
    """The pairs used for `kind`: seeds `seed, seed + 1, ...` (disjoint ranges give disjoint pair sets)."""
    return [make_violation_pair(kind, seed + i, num_frames=num_frames, size=size) for i in range(num_pairs)]


def evaluate_violations(
    score_fn: ScoreFn,
    *,
    kinds: Sequence[str] | None = None,
    num_pairs: int = 200,
    seed: int = 1_000_000,
    num_frames: int = 16,
    size: int = 64,
) -> dict[str, KindResult]:
    """Score `num_pairs` violation pairs of each kind with `score_fn`.

    Args:
        kinds: violation kinds (default: all of `VIOLATION_KINDS`).
        seed: first pair seed; training never renders violations, but keep evaluation seeds away from any
            seeds used to tune scoring options.
    """
    scorers = {"score": score_fn}
    return compare_scorers(
        scorers, kinds=kinds, num_pairs=num_pairs, seed=seed, num_frames=num_frames, size=size
    )["score"]


def compare_scorers(
    score_fns: dict[str, ScoreFn],
    *,
    kinds: Sequence[str] | None = None,
    num_pairs: int = 200,
    seed: int = 1_000_000,
    num_frames: int = 16,
    size: int = 64,
) -> dict[str, dict[str, KindResult]]:
    """Like `evaluate_violations` for several scorers on the same pairs (rendered once): `{scorer: {kind: ..}}`."""
    kinds = list(VIOLATION_KINDS) if kinds is None else list(kinds)
    unknown = [kind for kind in kinds if kind not in VIOLATION_KINDS]
    if unknown:
        raise ValueError(f"unknown violation kinds {unknown}; known: {', '.join(VIOLATION_KINDS)}.")
    results: dict[str, dict[str, KindResult]] = {name: {} for name in score_fns}
    for kind in kinds:
        pairs = violation_pairs(kind, num_pairs, seed, num_frames, size)
        clips = [clip for pair in pairs for clip in (pair.plausible, pair.impossible)]
        for name, score_fn in score_fns.items():
            scores = np.asarray(score_fn(clips), dtype=float)
            results[name][kind] = KindResult(kind, scores[0::2], scores[1::2])
    return results


def summarize(results: dict[str, KindResult]) -> dict[str, dict[str, float]]:
    """`{kind: {"accuracy": .., "auroc": ..}}` plus a "mean" row over all kinds and, when `results` holds kinds
    of both families (`KIND_CATEGORY`), a "mean looks" and a "mean dynamics" row."""
    table = {kind: {"accuracy": r.accuracy, "auroc": r.auroc} for kind, r in results.items()}
    groups = {"mean": list(results)}
    families = sorted({KIND_CATEGORY[kind] for kind in results})
    if len(families) > 1:
        groups.update(
            {f"mean {family}": [k for k in results if KIND_CATEGORY[k] == family] for family in families}
        )
    for name, kinds in groups.items():
        table[name] = {
            metric: float(np.mean([table[k][metric] for k in kinds])) for metric in ("accuracy", "auroc")
        }
    return table
