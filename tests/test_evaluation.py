"""Violation-pair evaluation: accuracy and AUROC, on the ground-truth checker and on a pixel baseline."""

import numpy as np
import pytest

from hybridgen.toyworld import physics_error
from hybridgen.toyworld.evaluation import KindResult, auroc, evaluate_violations, summarize
from hybridgen.toyworld.violations import KIND_CATEGORY


def test_auroc_and_accuracy():
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 1.0
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 0.0
    assert auroc(np.array([1.0]), np.array([1.0])) == 0.5
    result = KindResult("teleport", np.array([0.0, 1.0, 2.0]), np.array([1.0, 0.5, 2.0]))
    assert result.accuracy == pytest.approx((1 + 0 + 0.5) / 3)


def test_ground_truth_checker_separates_the_looks_kinds():
    """The checker sees every looks kind; of the dynamics kinds it misses the bounces (tests/test_toyworld.py)."""
    results = evaluate_violations(lambda clips: [physics_error(c) for c in clips], num_pairs=4, seed=7)
    table = summarize(results)
    assert set(table) == {*results, "mean", "mean looks", "mean dynamics"}
    assert table["mean looks"]["accuracy"] >= 0.9
    looks = [kind for kind in results if KIND_CATEGORY[kind] == "looks"]
    assert table["mean looks"]["accuracy"] == pytest.approx(np.mean([table[k]["accuracy"] for k in looks]))


def test_constant_score_is_chance():
    results = evaluate_violations(lambda clips: [0.0] * len(clips), kinds=["vanish"], num_pairs=3)
    assert results["vanish"].accuracy == 0.5 and results["vanish"].auroc == 0.5


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown violation kinds"):
        evaluate_violations(lambda clips: [0.0] * len(clips), kinds=["levitate"], num_pairs=1)
