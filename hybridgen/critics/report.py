"""CriticReport: what a world-model critic says about one clip."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybridgen.critics.options import ScoringOptions


@dataclass(frozen=True)
class CriticReport:
    """The surprise of one clip, with the per-window curve and the per-token map behind it.

    Attributes:
        surprise: the clip's score; higher means the world model predicted the clip's future worse,
            i.e. the motion is less physically plausible. Unit: mean L1 distance in the critic's
            layer-normed feature space, or with `relative` that distance divided by the distance the critic
            expects at each token (1 = as predictable as plausible clips usually are).
        window_surprise: `(n_windows,)` surprise of each sliding window.
        window_starts: `(n_windows,)` index of each window's first frame, in the frames the critic saw
            (after any temporal resampling; see `frame_indices`).
        token_errors: `(n_windows, T_target, G, G)` L1 error of every predicted token: `T_target` target
            tubelets per window on a `G x G` spatial grid. Where in space and time the surprise is.
        window: frames per window; `context`: of those, frames the predictor sees (a clip shorter than the
            critic's window is scored in one shorter window); `tubelet`: frames per token.
        target_offsets: `(T_target,)` first frame, within its window, of each predicted tubelet.
        frame_indices: `(T_critic,)` index into the input clip of each frame the critic saw.
        options: the critic's `ScoringOptions` (how tokens and windows were reduced, which way in time it
            predicted, which views were averaged, whether errors are relative).
    """

    surprise: float
    window_surprise: np.ndarray
    window_starts: np.ndarray
    token_errors: np.ndarray
    window: int
    context: int
    tubelet: int
    target_offsets: np.ndarray
    frame_indices: np.ndarray
    options: ScoringOptions

    @property
    def num_windows(self) -> int:
        return int(self.window_surprise.shape[0])

    def frame_surprise(self) -> np.ndarray:
        """`(T_critic,)` mean token error attributed to each critic frame; NaN where no window predicts it.

        Each target tubelet's spatial mean is spread over the `tubelet` frames it covers and averaged over
        the windows that predict that frame.
        """
        num_frames = int(self.frame_indices.shape[0])
        total = np.zeros(num_frames, dtype=np.float64)
        count = np.zeros(num_frames, dtype=np.float64)
        per_tubelet = self.token_errors.mean(axis=(2, 3))  # (n_windows, T_target)
        for start, errors in zip(self.window_starts, per_tubelet):
            for offset, value in zip(self.target_offsets, errors):
                first = int(start) + int(offset)
                total[first : first + self.tubelet] += value
                count[first : first + self.tubelet] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    def to_dict(self) -> dict:
        """JSON-ready summary (the token map is left out; it can be large)."""
        return {
            "surprise": float(self.surprise),
            "window_surprise": [float(v) for v in self.window_surprise],
            "window_starts": [int(v) for v in self.window_starts],
            **self.options.to_dict(),
            "window": self.window,
            "context": self.context,
            "tubelet": self.tubelet,
            "num_frames_scored": int(self.frame_indices.shape[0]),
            "token_reduce": self.options.token_reduce,
        }
