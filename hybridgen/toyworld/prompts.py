"""Prompt following in the toy world: what a prompt asks for, and what a clip shows, from pixels only.

    parse_prompt("two blue balls falling")   -> PromptSpec(count=2, colour="blue")
    clip_contents(frames)                     -> ClipContents(count=2, colour="blue")   # via the physics checker
    follows_prompt(frames, "two blue balls falling") -> {"count": True, "colour": True}

Counting uses the checker's tracked objects per frame (merged touching balls count as two); the clip's count is
the median over frames. Colours are named by hue: each track's median interior colour, divided by its brightest
channel, goes to the nearest entry of `COLOURS` (so a dim red is still red); the clip's colour is the name that
covers the most track-frames, and a prompt's colour is followed when it covers nearly all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hybridgen.toyworld.physics import physics_report
from hybridgen.toyworld.world import COLOURS, COUNT_WORDS

# prompts the benchmarks use: every count and colour, both motions
BENCHMARK_PROMPTS = (
    "a red ball bouncing",
    "a blue ball falling",
    "two green balls bouncing",
    "two yellow balls falling",
    "three balls bouncing",
    "a white ball bouncing",
    "two magenta balls bouncing",
    "three cyan balls falling",
)
COLOUR_SHARE = 0.9  # share of track-frames the prompt's colour must cover
NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "single": 1, **{w: n for n, w in COUNT_WORDS.items() if n > 1}}


@dataclass(frozen=True)
class PromptSpec:
    """What a toy-world prompt asks for; None where it does not say."""

    count: int | None
    colour: str | None


@dataclass(frozen=True)
class ClipContents:
    """What a clip shows: `count` balls (median over frames; 0 for an empty clip) and its dominant `colour`
    (None when no ball is seen); `colours` maps each seen colour name to its share of track-frames."""

    count: int
    colour: str | None
    colours: dict[str, float]


def parse_prompt(prompt: str) -> PromptSpec:
    """Read the ball count (a/one/two/three or a digit) and colour name out of a toy-world prompt."""
    words = re.findall(r"[a-z0-9]+", prompt.lower())
    count = None
    for i, word in enumerate(words):
        if i + 1 < len(words) and words[i + 1] not in ("ball", "balls") and words[i + 1] not in COLOURS:
            continue  # "a" in "a red ball" counts, "a" elsewhere does not
        if word in NUMBER_WORDS:
            count = NUMBER_WORDS[word]
        elif word.isdigit():
            count = int(word)
        if count is not None:
            break
    colours = [word for word in words if word in COLOURS]
    return PromptSpec(count, colours[0] if colours else None)


def name_colour(rgb: np.ndarray) -> str:
    """Nearest `COLOURS` name of an RGB colour in [0, 1], compared after dividing by the brightest channel."""
    rgb = np.asarray(rgb, np.float64)
    names = list(COLOURS)
    table = np.array([COLOURS[name] for name in names], np.float64)  # (7, 3)
    table /= table.max(1, keepdims=True)
    hue = rgb / max(rgb.max(), 1e-6)
    return names[int(np.argmin(np.linalg.norm(table - hue, axis=1)))]


def clip_contents(frames: np.ndarray) -> ClipContents:
    """Count and name the balls of a clip (T, H, W, 3), uint8 or float in [0, 1]."""
    report = physics_report(frames)
    count = int(np.round(np.median(report.counts))) if len(report.counts) else 0
    shares: dict[str, float] = {}
    for track in report.colours:  # (T, 3) per track, NaN where unseen
        seen = ~np.isnan(track[:, 0])
        if seen.any():
            name = name_colour(np.median(track[seen], axis=0))
            shares[name] = shares.get(name, 0.0) + float(seen.sum())
    total = sum(shares.values())
    shares = {name: value / total for name, value in sorted(shares.items(), key=lambda kv: -kv[1])}
    return ClipContents(count, next(iter(shares), None), shares)


def follows_prompt(frames: np.ndarray, prompt: str) -> dict[str, bool | None]:
    """Whether a clip shows the count and colour its prompt asks for (None where the prompt does not say).

    The colour is followed when the named colour covers at least `COLOUR_SHARE` of the clip's track-frames: every
    ball is that colour ("three blue balls" with a red one among them is not followed), up to brief mis-tracks.
    """
    spec, contents = parse_prompt(prompt), clip_contents(frames)
    return {
        "count": None if spec.count is None else contents.count == spec.count,
        "colour": None if spec.colour is None else contents.colours.get(spec.colour, 0.0) >= COLOUR_SHARE,
    }
