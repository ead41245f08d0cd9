"""Command-line argument types that refuse nonsense at parse time, with one line that names the option.

`--threads -1`, `--lr nan` or `--fps inf` would otherwise reach torch or a trainer and fail late (a traceback),
or not at all (a NaN learning rate trains nothing, silently).
"""

from __future__ import annotations

import argparse
import math


class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line (`hybridgen generate: error: ... (see --help)`), without
    the usage block; sub-command parsers made by `add_subparsers` are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def count(text: str) -> int:
    """An integer >= 1 (candidates, steps, frames, threads, ...)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 1")
    return value


def natural(text: str) -> int:
    """An integer >= 0 (e.g. background workers, where 0 means none)."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 0")
    return value


def finite(text: str) -> float:
    """A finite real number (NaN and infinities are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def positive(text: str) -> float:
    """A finite real number > 0 (learning rates, frame rates)."""
    value = finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number > 0")
    return value


def default_device() -> str:
    """Where a command runs when --device is not given: "cuda" if torch sees a GPU, else "cpu" (torch is
    imported here, when a command runs, so that parsing the command line stays instant)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
