"""How well does choosing by surprise choose physics? Best-of-N statistics against ground-truth physics error.

Inputs are per-group arrays: for each prompt x seed group, the surprise and the physics error of its candidates, in
generation order. A group of C candidates is cut into disjoint blocks of N (C // N blocks), each one best-of-N draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PICKS = ("best", "average", "random", "oracle")


def best_of_n_table(
    surprise: Sequence[Sequence[float]],
    error: Sequence[Sequence[float]],
    sizes: Sequence[int],
    seed: int = 0,
    draws: int = 10_000,
) -> list[dict]:
    """Mean physics error over all blocks of N candidates of the pick that is

    - best: the block's least surprising candidate (what best-of-N by the critic returns);
    - average: the block's mean candidate (the expected error of an unranked pick);
    - random: one candidate drawn at random (numpy generator seeded with `seed`);
    - oracle: the block's lowest physics error (the ceiling any critic could reach).

    `p_random` is how often picking one candidate per block at random does at least as well as the critic's picks
    (mean error <= best's), over `draws` Monte Carlo draws: a one-sided p-value for "the critic's choice beats
    chance" (1.0 at N = 1, where every pick is the same).

    Returns one row per N: {"n", "blocks", "best", "average", "random", "oracle", "best_over_average", "p_random"}.
    """
    if len(surprise) != len(error) or any(len(s) != len(e) for s, e in zip(surprise, error)):
        raise ValueError("surprise and error must have the same groups and candidates.")
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        picks: dict[str, list[float]] = {name: [] for name in PICKS}
        error_blocks: list[np.ndarray] = []  # each (n,)
        for group_surprise, group_error in zip(surprise, error):
            s, e = np.asarray(group_surprise, float), np.asarray(group_error, float)
            for start in range(0, len(e) - n + 1, n):
                block_s, block_e = s[start : start + n], e[start : start + n]
                error_blocks.append(block_e)
                picks["best"].append(block_e[np.argmin(block_s)])
                picks["average"].append(block_e.mean())
                picks["random"].append(block_e[rng.integers(n)])
                picks["oracle"].append(block_e.min())
        if not picks["best"]:
            raise ValueError(f"no group has {n} candidates.")
        row = {"n": int(n), "blocks": len(picks["best"])}
        row.update({name: float(np.mean(values)) for name, values in picks.items()})
        row["best_over_average"] = row["best"] / row["average"] if row["average"] > 0 else float("nan")
        row["p_random"] = chance_of_random_picks(np.stack(error_blocks), row["best"], seed, draws)
        rows.append(row)
    return rows


def chance_of_random_picks(blocks: np.ndarray, best: float, seed: int, draws: int) -> float:
    """Fraction of `draws` random pickings (one uniform candidate per row of the `(blocks, n)` errors) whose mean
    error is <= `best`."""
    n = blocks.shape[1]
    rng = np.random.default_rng([seed, n])
    picks = rng.integers(n, size=(draws, len(blocks)))  # (draws, blocks)
    means = blocks[np.arange(len(blocks)), picks].mean(axis=1)  # (draws,)
    return float((means <= best + 1e-12 * max(1.0, abs(best))).mean())


def rank_correlation(surprise: Sequence[Sequence[float]], error: Sequence[Sequence[float]]) -> float:
    """Mean within-group Spearman correlation of surprise and physics error, ties given their average rank; groups
    in which either is constant are left out (NaN if none is left). NaN values are an error."""
    values = []
    for index, (group_surprise, group_error) in enumerate(zip(surprise, error)):
        s, e = np.asarray(group_surprise, float), np.asarray(group_error, float)
        if np.isnan(s).any() or np.isnan(e).any():
            raise ValueError(f"group {index} holds NaN values; rank correlation needs numbers.")
        if np.ptp(s) > 0 and np.ptp(e) > 0:
            values.append(float(np.corrcoef(average_ranks(s), average_ranks(e))[0, 1]))
    return float(np.mean(values)) if values else float("nan")


def average_ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks of `values`; tied values share the mean of their ranks (e.g. [5, 1, 5] -> [1.5, 0, 1.5])."""
    _, tie_group, tie_counts = np.unique(values, return_inverse=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return (np.bincount(tie_group, weights=ranks) / tie_counts)[tie_group]
