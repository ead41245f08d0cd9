"""ScoringOptions: how a critic turns a clip into one surprise number, described once.

The critic reads them, `critic_config.json` stores them (`to_dict` / `from_dict`), `with_options` replaces some,
every `CriticReport` carries the ones it was scored with, and the CLI's scoring flags take their help from the
`help` of each field below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np

from hybridgen.video import check_fps

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
AGGREGATES = ("mean", "max")
DIRECTIONS = {"forward": ("forward",), "backward": ("backward",), "both": ("forward", "backward")}


def _option(default, help: str, **kwargs):
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass(frozen=True)
class ScoringOptions:
    """How a `VJEPA2Critic` scores: windows, token and window reduction, views, units, preprocessing.

    `None` in `window`, `context`, `stride` and `resize_to` means "from the model" (see `for_model`); a critic's
    `options` always has them filled in.
    """

    window: int | None = _option(
        None, "frames per sliding window (default: min(16, the model's frames per clip))"
    )
    context: int | None = _option(
        None, "frames of each window the predictor sees (default: half the window, rounded to tubelets)"
    )
    stride: int | None = _option(
        None, "frames between window starts (default: window - context, so targets tile the clip)"
    )
    aggregate: str = _option("mean", "reduce the windows' scores to the clip's by their mean or their max")
    top_fraction: float | None = _option(
        None,
        "score each window by the mean of its F most surprising tokens instead of all of them, e.g. 0.02 "
        "(a local violation is not drowned in easy background tokens)",
    )
    direction: str = _option(
        "forward",
        "forward predicts each window's end from its start; backward its start from its end (a vanishing object "
        "is an unpredictable appearance backwards); both scores the union of the two",
    )
    mirror: bool = _option(
        False,
        "also score each clip mirrored left-right and average the two views' token errors (twice the cost)",
    )
    shifts: tuple[tuple[int, int], ...] = _option(
        (),
        "extra views translated by (DY, DX) pixels of the crop (down, right), whose token errors are averaged "
        "with the plain view's at the same tokens; half a patch (e.g. 0,4 4,0 4,4 at patch size 8) steadies errors "
        "that hinge on where an object sits within its patch; each costs one more scoring pass",
    )
    relative: bool = _option(
        False,
        "divide each token's error by the error the critic's expected-error head predicts there, so surprise is in "
        "units of usual error (needs a calibrated critic: `hybridgen calibrate-critic`)",
    )
    fps: float | None = _option(
        None, "frame rate the critic wants; clips with a known frame rate are resampled"
    )
    resize_to: int | None = _option(
        None, "shorter-side size before the centre crop (default: the crop size, i.e. the whole frame)"
    )
    image_mean: tuple[float, float, float] = _option(IMAGENET_MEAN, "per-channel mean of the normalisation")
    image_std: tuple[float, float, float] = _option(IMAGENET_STD, "per-channel standard deviation")

    def __post_init__(self):
        # what can be checked without the model; `for_model` checks the rest
        for name in ("window", "context", "stride", "resize_to"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, Integral) or value < 1
            ):
                raise ValueError(f"{name}={value!r} must be a whole number >= 1.")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate={self.aggregate!r} is not one of {AGGREGATES}.")
        if self.top_fraction is not None and not (
            isinstance(self.top_fraction, Real) and 0 < self.top_fraction <= 1
        ):
            raise ValueError(f"top_fraction={self.top_fraction!r} must be in (0, 1].")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction={self.direction!r} is not one of {tuple(DIRECTIONS)}.")
        for name in ("mirror", "relative"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False.")
        if self.fps is not None:
            check_fps(self.fps, "fps")
        object.__setattr__(self, "shifts", _check_shifts(self.shifts))
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
                raise ValueError(f"{name}={value!r} must be three numbers, one per RGB channel.")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if not all(std > 0 for std in self.image_std):
            raise ValueError(f"image_std={self.image_std} must be > 0 in every channel.")

    @property
    def directions(self) -> tuple[str, ...]:
        """The directions scored, in order: ("forward",), ("backward",) or ("forward", "backward")."""
        return DIRECTIONS[self.direction]

    @property
    def token_reduce(self) -> str:
        """How token errors become a window's score: "mean" or "topk:<fraction>"."""
        return "mean" if self.top_fraction is None else f"topk:{self.top_fraction:g}"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def help(cls, name: str) -> str:
        """The description of option `name` (used by the CLI's flags)."""
        return next(f.metadata["help"] for f in dataclasses.fields(cls) if f.name == name)

    def replace(self, **changes) -> ScoringOptions:
        """These options with some changed; an unknown name is a TypeError listing the known ones."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise TypeError(f"unknown scoring options {unknown}; known: {', '.join(self.names())}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready: what `critic_config.json` holds."""
        options = dataclasses.asdict(self)
        options["shifts"] = [list(shift) for shift in self.shifts]
        options["image_mean"], options["image_std"] = list(self.image_mean), list(self.image_std)
        return options

    @classmethod
    def from_dict(cls, options: dict, source: str = "scoring options") -> ScoringOptions:
        """The inverse of `to_dict`; unknown keys are a ValueError naming `source` (e.g. the file)."""
        unknown = sorted(set(options) - set(cls.names()))
        if unknown:
            raise ValueError(
                f"{source} has unknown critic settings {unknown}; known: {', '.join(cls.names())}."
            )
        return cls(**options)

    def for_model(
        self, tubelet: int, patch_size: int, crop_size: int, frames_per_clip: int
    ) -> ScoringOptions:
        """These options on a model with the given tubelet, patch and crop sizes: the defaults filled in and
        everything that depends on the model checked."""
        window = min(16, frames_per_clip) if self.window is None else self.window
        context = (window // 2) // tubelet * tubelet if self.context is None else self.context
        stride = window - context if self.stride is None else self.stride
        resize_to = crop_size if self.resize_to is None else self.resize_to
        for name, value in (("window", window), ("context", context)):
            if value % tubelet:
                raise ValueError(f"{name}={value} must be a multiple of the tubelet size {tubelet}.")
        if not 0 < context < window:
            raise ValueError(f"context={context} must be at least one tubelet and less than window={window}.")
        if resize_to < crop_size:
            raise ValueError(f"resize_to={resize_to} must be >= the crop size {crop_size}.")
        for dy, dx in self.shifts:
            if max(abs(dy), abs(dx)) >= patch_size:
                raise ValueError(
                    f"shifts: ({dy}, {dx}) must move the frame by 1 to {patch_size - 1} pixels, less than a patch "
                    "(the views' errors are averaged at the same token; the plain view is always scored, list "
                    "only the extra views)."
                )
        return dataclasses.replace(self, window=window, context=context, stride=stride, resize_to=resize_to)


def _check_shifts(shifts) -> tuple[tuple[int, int], ...]:
    """`shifts` as a tuple of distinct, non-zero `(dy, dx)` int pairs, or one error naming what is wrong."""
    if isinstance(shifts, (str, bytes)) or not isinstance(shifts, Sequence):
        raise ValueError(
            f"shifts={shifts!r} must be a list of (dy, dx) pixel offsets, e.g. [(0, 4), (4, 0)]."
        )
    checked = []
    for shift in shifts:
        if (
            isinstance(shift, (str, bytes))
            or not isinstance(shift, Sequence)
            or len(shift) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shift)
        ):
            raise ValueError(f"shifts: {shift!r} is not a (dy, dx) pair of whole pixels.")
        dy, dx = int(shift[0]), int(shift[1])
        if (dy, dx) == (0, 0):
            raise ValueError(
                "shifts: (0, 0) adds nothing: the plain view is always scored; list only the extra views."
            )
        checked.append((dy, dx))
    if len(set(checked)) != len(checked):
        raise ValueError(f"shifts={shifts!r} lists a view twice.")
    return tuple(checked)
