"""Training clips streamed from a folder of videos: random windows, decoded by DataLoader workers.

`VideoFolderClips(folder, resize_to=..., crop_size=...)` is what `train-critic --data FOLDER` and
`calibrate-critic --data FOLDER` sample from. Nothing but the frame counts is held in memory: each batch is a list
of `(video, first frame)` windows drawn in the main process, and a torch `DataLoader`'s worker processes decode them
(`read_window`), each frame resized and centre-cropped as it is decoded, exactly as the critic's scoring does
(`hybridgen.critics.vjepa2.uint8_crops`), and kept as uint8.

Batch `i` of a run is drawn from `(seed, i)` alone, not from the trainer's generator: workers decode batches ahead of
the trainer, and a resumed run (`load_state_dict`) draws the batches an uninterrupted one would. Split across
processes (`part`), every process draws the same whole batch and decodes only its own rows, so a batch is the same
whatever the number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from hybridgen.critics.vjepa2 import uint8_crops
from hybridgen.video import find_videos, open_video


def count_frames(path: Path) -> tuple[int, float]:
    """`(frames, fps)` of a video file: the container's frame count, or a decode when it has none."""
    with open_video(path) as video:
        fps = video.fps
        counted = video.frame_count
        if counted is None:
            counted = sum(1 for _ in video.frames())
    return counted, fps


def source_frames(first: int, window: int, source_fps: float, fps: float | None) -> np.ndarray:
    """Indices in the file of frames `first .. first + window - 1` of the clip resampled to `fps` (None: as
    stored), by `hybridgen.video.resample_frames`' nearest-frame rule."""
    positions = np.arange(first, first + window)
    if fps is None or math.isclose(fps, source_fps):
        return positions
    return np.floor(positions * (source_fps / fps) + 0.5).astype(np.int64)


def read_window(path: Path, indices: np.ndarray, resize_to: int, crop_size: int) -> torch.Tensor:
    """uint8 `(W, S, S, 3)` crops of the frames of `path` at `indices` (ascending, repeats allowed), decoding
    only up to the last one. A file that ends early (its header promised more frames) repeats its last frame."""
    wanted = {int(index) for index in indices}
    crops: dict[int, torch.Tensor] = {}
    last = None
    with open_video(path) as video:
        for position, frame in enumerate(video.frames()):  # uint8 (H, W, 3)
            if position in wanted:
                crops[position] = last = torch.from_numpy(uint8_crops([frame], resize_to, crop_size)[0])
            if position >= indices[-1]:
                break
    if last is None:
        raise ValueError(f"{path}: no frame decoded at {int(indices[0])} or after")
    return torch.stack([crops.get(int(index), last) for index in indices])  # (W, S, S, 3)


class _Windows(torch.utils.data.Dataset):
    """Map-style dataset whose items are windows `(video index, first frame)`: what a worker decodes."""

    def __init__(self, paths, source_fps, window, fps, resize_to, crop_size):
        self.paths, self.source_fps = paths, source_fps
        self.window, self.fps, self.resize_to, self.crop_size = window, fps, resize_to, crop_size

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        video, first = key
        indices = source_frames(first, self.window, self.source_fps[video], self.fps)
        return read_window(self.paths[video], indices, self.resize_to, self.crop_size)


class _BatchDraws(torch.utils.data.Sampler):
    """The windows of batch `first_batch`, `first_batch + 1`, ... (forever), each batch drawn from `(seed, i)`:
    a video uniformly among those long enough, then a first frame uniformly; this process's rows only."""

    def __init__(self, lengths, batch_size, window, seed, first_batch, part):
        self.usable = np.flatnonzero(np.asarray(lengths) >= window)
        self.lengths, self.batch_size, self.window = lengths, batch_size, window
        self.seed, self.first_batch, self.part = seed, first_batch, part

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        batch = self.first_batch
        while True:
            draws = np.random.default_rng([self.seed, batch])
            videos = self.usable[draws.integers(len(self.usable), size=self.batch_size)]
            firsts = [int(draws.integers(self.lengths[v] - self.window + 1)) for v in videos]
            keys = list(zip(videos.tolist(), firsts))
            yield keys[self.part[0] :: self.part[1]]
            batch += 1


class VideoFolderClips:
    """Random windows of the videos under `folder` (searched recursively), streamed from disk.

    Args:
        folder: a folder of videos (any format ffmpeg reads; `hybridgen.video.find_videos`).
        resize_to, crop_size: the critic's preprocessing (shorter side resized, centre square), applied to each
            frame as it is decoded; batches come out as crops (`cropped = True`: only normalisation is left).
        fps: resample each video to this frame rate first (the critic's `fps` option; None: as stored).
        seed: batch `i` is drawn from `(seed, i)`.
        workers: DataLoader worker processes decoding batches ahead of training (0: in this process).

    Call it as the trainers do, `clips(generator, batch_size, window, part=(index, count))` -> float `(b, W, 3, S,
    S)` in [0, 1]: the rows `index::count` of the next batch (`generator` is not used; see the module doc).
    `state_dict` / `load_state_dict` carry the number of batches drawn across a resume; `close` stops the
    workers.
    """

    cropped = True

    def __init__(
        self,
        folder: str | Path,
        *,
        resize_to: int,
        crop_size: int,
        fps: float | None = None,
        seed: int = 0,
        workers: int = 2,
    ):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"training data folder not found: {folder}")
        if workers < 0:
            raise ValueError(f"workers={workers} must be >= 0 (0 decodes in this process).")
        self.paths = [path for path, _ in find_videos([folder])]
        counts = [count_frames(path) for path in self.paths]
        self.source_fps = [rate for _, rate in counts]
        # each video's length in frames at `fps` (resample_frames' rule)
        self.lengths = [n if fps is None else max(1, math.floor(n * fps / rate + 0.5)) for n, rate in counts]
        self.resize_to, self.crop_size, self.fps = resize_to, crop_size, fps
        self.seed, self.workers = seed, workers
        self.batches = 0  # batches handed to the trainer so far
        self._loader_settings = None
        self._batches_iterator = None

    def check_window(self, window: int) -> None:
        """Refuse a `window` that no video is long enough for (videos shorter than it are never drawn)."""
        if max(self.lengths) < window:
            rate = "" if self.fps is None else f" at {self.fps:g} fps"
            raise ValueError(
                f"no video in the folder has {window} frames{rate} (the longest has {max(self.lengths)}): "
                "train on longer videos or a shorter --window."
            )

    def __call__(
        self,
        generator: torch.Generator,
        batch_size: int,
        window: int,
        part: tuple[int, int] = (0, 1),
    ) -> torch.Tensor:
        settings = (batch_size, window, tuple(part))
        if settings != self._loader_settings:
            self._start(settings)
        crops = next(self._batches_iterator)  # (b, W, S, S, 3) uint8
        self.batches += 1
        return crops.permute(0, 1, 4, 2, 3).float() / 255  # (b, W, 3, S, S)

    def _start(self, settings) -> None:
        """(Re)start the workers at batch `self.batches` for `(batch_size, window, part)`."""
        batch_size, window, part = settings
        self.check_window(window)  # once per setting, not per batch
        self.close()
        windows = _Windows(self.paths, self.source_fps, window, self.fps, self.resize_to, self.crop_size)
        draws = _BatchDraws(self.lengths, batch_size, window, self.seed, self.batches, part)
        loader = torch.utils.data.DataLoader(
            windows,
            batch_sampler=draws,
            num_workers=self.workers,
            multiprocessing_context="spawn" if self.workers else None,
        )
        self._batches_iterator, self._loader_settings = iter(loader), settings

    def state_dict(self) -> dict:
        return {"batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.batches = int(state["batches"])
        self.close()

    def close(self) -> None:
        """Stop the decoding workers (if any); the next call starts them again where the run is."""
        self._batches_iterator = self._loader_settings = (
            None  # the loader's iterator ends its workers when dropped
        )
