"""Prompt following in the toy world: reading prompts, and counting and naming balls from pixels."""

import numpy as np
import pytest

from hybridgen.toyworld import COLOURS, make_clip
from hybridgen.toyworld.prompts import PromptSpec, clip_contents, follows_prompt, name_colour, parse_prompt


@pytest.mark.parametrize(
    "prompt, spec",
    [
        ("a red ball bouncing", PromptSpec(1, "red")),
        ("two blue balls falling", PromptSpec(2, "blue")),
        ("Three balls bouncing", PromptSpec(3, None)),
        ("3 yellow balls", PromptSpec(3, "yellow")),
        ("balls in a box", PromptSpec(None, None)),  # "a" not before "ball(s)" or a colour is no count
    ],
)
def test_parse_prompt(prompt, spec):
    assert parse_prompt(prompt) == spec


def test_colours_are_named_by_hue_not_brightness():
    for name, rgb in COLOURS.items():
        assert name_colour(np.array(rgb) / 255) == name
        assert name_colour(0.6 * np.array(rgb) / 255) == name  # a dim ball keeps its name


@pytest.mark.parametrize("size", [32, 64])
def test_rendered_clips_follow_their_own_captions(size):
    for seed in range(40):
        frames, info = make_clip(seed, size=size, num_frames=17)
        result = follows_prompt(frames, info.caption)
        assert result["count"] is True, (seed, info.caption, clip_contents(frames))
        assert result["colour"] in (True, None)


def test_wrong_prompts_are_caught():
    frames, info = make_clip(0, num_balls=2, colours=["green", "green"])
    assert info.caption.startswith("two green balls")
    assert follows_prompt(frames, "a green ball bouncing") == {"count": False, "colour": True}
    assert follows_prompt(frames, "two red balls bouncing") == {"count": True, "colour": False}
    assert follows_prompt(frames, "balls") == {"count": None, "colour": None}
    mixed, info = make_clip(5, num_balls=3, colours=["blue", "blue", "red"])
    assert info.caption.startswith("three balls")  # the world names no colour for a mix
    assert follows_prompt(mixed, "three blue balls bouncing") == {"count": True, "colour": False}


def test_an_empty_clip_shows_nothing():
    contents = clip_contents(np.zeros((8, 32, 32, 3), np.uint8))
    assert (contents.count, contents.colour, contents.colours) == (0, None, {})


def test_best_of_n_table_picks_by_surprise():
    from hybridgen.toyworld.selection import best_of_n_table, rank_correlation

    surprise = [[0.3, 0.1, 0.2, 0.4], [0.5, 0.6, 0.7, 0.8]]
    error = [
        [3.0, 1.0, 2.0, 4.0],
        [8.0, 6.0, 7.0, 5.0],
    ]  # group 0: surprise ranks errors; group 1: mostly reversed
    rows = {row["n"]: row for row in best_of_n_table(surprise, error, [1, 2, 4])}
    assert rows[1]["blocks"] == 8 and rows[1]["best"] == rows[1]["average"] == rows[1]["oracle"] == 4.5
    assert rows[2]["best"] == np.mean([1.0, 2.0, 8.0, 7.0]) and rows[2]["oracle"] == np.mean(
        [1.0, 2.0, 6.0, 5.0]
    )
    assert rows[4]["best"] == np.mean([1.0, 8.0]) and rows[4]["average"] == np.mean([2.5, 6.5])
    assert rank_correlation(surprise, error) == pytest.approx((1.0 - 0.8) / 2)  # Spearman +1 and -0.8
    # ties share their average rank, whatever the order; a group with a constant side is left out
    tied = [[0.1, 0.2, 0.3, 0.4]], [[0.0, 0.0, 0.0, 1.0]]
    assert rank_correlation(*tied) == pytest.approx(0.7746, abs=1e-4)
    assert rank_correlation([[0.4, 0.3, 0.2, 0.1]], [[1.0, 0.0, 0.0, 0.0]]) == rank_correlation(*tied)
    assert rank_correlation([*tied[0], [1, 2, 3, 4]], [*tied[1], [2, 2, 2, 2]]) == rank_correlation(*tied)
    assert np.isnan(rank_correlation([[1, 2, 3]], [[0, 0, 0]]))
    with pytest.raises(ValueError, match="group 0 holds NaN"):
        rank_correlation([[0.1, float("nan"), 0.3]], [[1, 2, 3]])
    with pytest.raises(ValueError, match="no group has 8 candidates"):
        best_of_n_table(surprise, error, [8])


def test_best_of_n_p_value_separates_a_ranking_critic_from_chance():
    from hybridgen.toyworld.selection import best_of_n_table

    rng = np.random.default_rng(0)
    error = rng.random((16, 16)).tolist()
    ranking = best_of_n_table(error, error, [1, 8])  # surprise = error: the oracle
    anti = best_of_n_table((-np.asarray(error)).tolist(), error, [8])  # picks the worst
    blind = best_of_n_table(rng.random((16, 16)).tolist(), error, [8])  # unrelated to error
    assert ranking[0]["p_random"] == 1.0  # N = 1: every pick is the same candidate
    assert ranking[1]["p_random"] < 0.001 and anti[0]["p_random"] > 0.999
    assert 0.01 < blind[0]["p_random"] < 0.99
    again = best_of_n_table(error, error, [8])
    assert again[0]["p_random"] == ranking[1]["p_random"]  # seeded
