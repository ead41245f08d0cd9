"""Video clips as arrays: normalise, decode, resample, and write them atomically.

Every clip inside hybridgen is a float32 numpy array of shape (T, H, W, 3) with values in [0, 1]
(T frames, H x W pixels, RGB). :func:`as_frames` converts the clip types users hand us into that form.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from fractions import Fraction
from numbers import Real
from typing import Any

import numpy as np
from PIL import Image

__all__ = [
    "as_frames",
    "atomic_write_path",
    "available_memory",
    "check_aspect_ratio",
    "check_directory_path",
    "find_videos",
    "open_video",
    "read_video",
    "resample_frames",
    "write_json_atomic",
    "write_png_atomic",
    "write_video",
]

RANGE_TOLERANCE = 1e-4  # float values this far outside [0, 1] are clipped instead of rejected
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv")  # containers that hold H.264
# what a folder is searched for: video files ffmpeg reads (a file named explicitly may have any suffix)
READABLE_VIDEO_SUFFIXES = (
    *VIDEO_SUFFIXES,
    ".webm",
    ".avi",
    ".gif",
    ".mpg",
    ".mpeg",
    ".ts",
    ".wmv",
    ".flv",
    ".3gp",
)
PNG_SUFFIXES = (".png",)
H264_CRF = 18  # constant rate factor: 0 lossless .. 51 worst; 18 is visually near-lossless
# Frames longer than this (long side / short side) are refused: no real video format comes close (32:9 ultrawide
# is 3.6:1, Polyvision cinema 4:1, three 16:9 screens side by side 5.3:1), and the critic scales the short side
# up to its input size, so a 16384x2 frame would become gigabytes. It also bounds the critic's crop warning.
MAX_ASPECT_RATIO = 8.0
# read_video refuses larger frames before decoding any: the biggest frames H.264 and HEVC allow (level 6.2) are
# 8192x4320 (8K), so 8192x8192 (805 MB per frame as float32) leaves room for square 8K and 360 degree video.
MAX_FRAME_PIXELS = 8192 * 8192
# read_video stops (ValueError) once the float32 clip it builds would pass this share of the memory available
# when it started: a long or huge video fails with a message instead of driving the machine out of memory.
DECODE_MEMORY_SHARE = 0.5
FALLBACK_DECODE_BUDGET = 8 << 30  # bytes, where the available memory cannot be read
_PIL_MODES = ("RGB", "RGBA", "P")  # PIL modes converted to RGB (alpha is dropped, not composited)
_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


# ---------------------------------------------------------------------------------------------------------
# Normalising clips


def as_frames(video: Any, *, name: str = "video") -> np.ndarray:
    """Convert a clip to a new float32 array of shape (T, H, W, 3) with values in [0, 1].

    Accepted inputs:
      * numpy array (T, H, W, 3), channels last: uint8 (0..255) or float16/32/64 in [0, 1];
      * torch tensor (T, 3, H, W), channels first (the diffusers / torchvision layout): uint8 or float
        in [0, 1], on any device; channels-last torch tensors are rejected, so a 3-pixel-wide clip is
        never mistaken for channels;
      * list or tuple of PIL images of equal size in mode RGB, RGBA or P (alpha is dropped).

    Floats may overshoot [0, 1] by up to 1e-4 (then clipped). ``name`` labels the clip in error messages.

    Raises:
        TypeError: unsupported container type, or a sequence holding something other than PIL images.
        ValueError: wrong shape or channel count, unsupported dtype, NaN/inf, values outside [0, 1],
            no frames, or zero-size frames.
    """
    if isinstance(video, np.ndarray):
        array = _check_channels_last(video, name=name, kind="numpy array")
    elif _is_torch_tensor(video):
        array = _torch_to_numpy(video, name=name)
    elif isinstance(video, (list, tuple)):
        array = _pil_sequence_to_numpy(video, name=name)
    else:
        raise TypeError(
            f"{name} has unsupported type {type(video).__module__}.{type(video).__qualname__}; expected a "
            "numpy array (T, H, W, 3), a torch tensor (T, 3, H, W), or a list of PIL images"
        )
    return _to_unit_float32(array, name=name)


def _is_torch_tensor(obj: Any) -> bool:
    """True if ``obj`` is a torch.Tensor (without importing torch when the caller never did)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.Tensor)


def _check_channels_last(array: np.ndarray, *, name: str, kind: str) -> np.ndarray:
    """Validate a (T, H, W, 3) array's shape; return it unchanged."""
    if array.ndim != 4 or array.shape[-1] != 3:
        hint = ""
        if array.ndim == 3 and array.shape[-1] == 3:
            hint = " (a single frame? add a leading time axis, e.g. frame[None])"
        elif array.ndim == 4 and array.shape[1] == 3:
            hint = " (channels first? numpy clips are channels last: use array.transpose(0, 2, 3, 1))"
        elif array.ndim == 4:
            hint = f" with 3 RGB channels, but the last axis has {array.shape[-1]} channels"
        raise ValueError(f"{name}: {kind} has shape {tuple(array.shape)}; expected (T, H, W, 3){hint}")
    _check_nonempty(array.shape[0], array.shape[1], array.shape[2], name=name)
    return array


def _check_nonempty(num_frames: int, height: int, width: int, *, name: str) -> None:
    """Reject clips with no frames or with zero-size frames."""
    if num_frames == 0:
        raise ValueError(f"{name} is empty: it has 0 frames")
    if height == 0 or width == 0:
        raise ValueError(f"{name} has zero-size frames ({height}x{width} pixels, height x width)")


def _torch_to_numpy(tensor: Any, *, name: str) -> np.ndarray:
    """Convert a (T, 3, H, W) torch tensor to a channels-last numpy array (dtype preserved or float32)."""
    shape = tuple(tensor.shape)
    if tensor.ndim != 4 or shape[1] != 3:
        hint = ""
        if tensor.ndim == 4 and shape[-1] == 3:
            hint = " (channels last? torch clips are channels first: use tensor.permute(0, 3, 1, 2))"
        elif tensor.ndim == 5:
            hint = " (a batch of clips? pass one clip at a time, e.g. tensor[0])"
        raise ValueError(f"{name}: torch tensor has shape {shape}; expected (T, 3, H, W){hint}")
    _check_nonempty(shape[0], shape[2], shape[3], name=name)
    tensor = tensor.detach()
    if tensor.is_floating_point():
        tensor = tensor.float()  # bfloat16 has no numpy equivalent
    return tensor.cpu().permute(0, 2, 3, 1).numpy()


def _pil_sequence_to_numpy(images: Sequence[Any], *, name: str) -> np.ndarray:
    """Stack equally sized PIL images into a uint8 (T, H, W, 3) array."""
    if len(images) == 0:
        raise ValueError(f"{name} is empty: the list has 0 frames")
    first_size = None
    arrays = []
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"{name}: a list clip must hold PIL images, but item {index} is {type(image).__name__}"
                " (stack numpy frames into one (T, H, W, 3) array with np.stack instead)"
            )
        if image.mode not in _PIL_MODES:
            raise ValueError(
                f"{name}: frame {index} has PIL mode {image.mode!r} ({len(image.getbands())} channels); "
                f"expected one of {_PIL_MODES} (convert with image.convert('RGB'))"
            )
        first_size = first_size or image.size
        if image.size != first_size:
            raise ValueError(
                f"{name}: frame {index} has size {image.size} (width, height) but frame 0 has {first_size}"
            )
        arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    height, width = arrays[0].shape[:2]
    _check_nonempty(len(arrays), height, width, name=name)
    return np.stack(arrays)


def _to_unit_float32(array: np.ndarray, *, name: str) -> np.ndarray:
    """Convert a validated uint8 or float (T, H, W, 3) array to a new float32 array in [0, 1]."""
    if array.dtype == np.uint8:
        frames = array.astype(np.float32)
        frames /= np.float32(255)  # in place: one float32 copy of a large clip, not two
        return frames
    if array.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"{name} has unsupported dtype {array.dtype}; use uint8 (0..255) or float (0..1)")
    frames = array.astype(np.float32)  # always a copy, so callers' arrays are never aliased
    _check_finite(frames, name=name)
    check_unit_range(float(frames.min()), float(frames.max()), name=name)
    return np.clip(frames, 0.0, 1.0, out=frames)


def check_aspect_ratio(height: int, width: int, *, name: str) -> None:
    """Refuse frames whose long side is more than MAX_ASPECT_RATIO times their short side.

    :func:`read_video` calls it before decoding and the critic before scoring: such frames come from broken or
    hostile files, not cameras, and scaling their short side up to the critic's input size multiplies their
    long side too (a 3 KB file of 16384x2 frames took 6.8 GB to score).
    """
    ratio = max(height, width) / max(min(height, width), 1)
    if ratio > MAX_ASPECT_RATIO:
        raise ValueError(
            f"{name} has {width}x{height}-pixel frames (width x height), an aspect ratio of {ratio:.4g}:1; "
            f"hybridgen accepts at most {MAX_ASPECT_RATIO:g}:1 (32:9 ultrawide is 3.6:1). Crop the part to judge "
            "first: frames[:, top:bottom, left:right] for an array, ffmpeg -vf crop=W:H:X:Y for a file"
        )


def check_unit_range(low: float, high: float, *, name: str) -> None:
    """Reject float frames whose values (min `low`, max `high`) leave [0, 1] by more than RANGE_TOLERANCE, or are
    NaN; the error says how to map the usual other ranges."""
    if not (low >= -RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE):
        raise ValueError(
            f"{name} has float values outside the range [0, 1] (min {low:.4g}, max {high:.4g}); "
            "map [-1, 1] output with (x + 1) / 2, or divide 0..255 floats by 255"
        )


def _check_finite(frames: np.ndarray, *, name: str) -> None:
    """Reject frames containing NaN or inf, reporting how many frames and the first bad one."""
    finite_per_frame = np.isfinite(frames).reshape(len(frames), -1).all(axis=1)
    if not finite_per_frame.all():
        bad = np.flatnonzero(~finite_per_frame)
        raise ValueError(
            f"{name} contains NaN or inf values in {len(bad)} of {len(frames)} frames "
            f"(first bad frame index {bad[0]})"
        )


# ---------------------------------------------------------------------------------------------------------
# Decoding and resampling


def read_video(path: str | os.PathLike[str], *, fps: float | None = None) -> tuple[np.ndarray, float]:
    """Decode a video file (mp4, webm, gif, ...) with PyAV.

    Returns (frames, fps): float32 (T, H, W, 3) in [0, 1] and the frame rate in frames per second.
    If ``fps`` is given, frames are resampled to it by nearest-frame selection (see
    :func:`resample_frames`) and ``fps`` is returned. Frames whose size differs from the first frame's
    are rescaled to it; a rotated or mirrored video (display matrix) is shown as players show it. The source is
    assumed to have a constant frame rate. To look at a long clip a frame at a time instead, see
    :func:`open_video`.

    Hostile or absurd files are refused with a ValueError instead of exhausting memory: frames of more than
    MAX_FRAME_PIXELS or longer than MAX_ASPECT_RATIO:1 before any frame is decoded, and a clip whose float32
    frames would pass DECODE_MEMORY_SHARE of the memory available as soon as it does.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        IsADirectoryError: ``path`` is a directory.
        ValueError: the file cannot be decoded, has no video stream or no frames, or its frame rate is
            unknown; its frames are too large, too elongated, or too many for the memory; or ``fps`` is
            not a positive number.
    """
    if fps is not None:
        check_fps(fps, "fps")
    with open_video(path) as video:
        frames = _decode_rgb(video, budget=_decode_budget())
        source_fps = video.fps
    if len(frames) == 0:
        raise ValueError(f"could not decode video {video.path}: it contains 0 frames")
    clip = _unit_float32(frames)
    if fps is None:
        return clip, source_fps
    return resample_frames(clip, source_fps, fps), float(fps)


class OpenVideo:
    """A video file open for decoding (see :func:`open_video`): its `path`, `fps`, and `frames()`."""

    def __init__(self, path: pathlib.Path, container: Any, stream: Any):
        self.path, self._container, self._stream = path, container, stream

    @property
    def fps(self) -> float:
        """The stream's frame rate in frames per second (ValueError when unknown)."""
        return _stream_fps(self._stream, self.path)

    @property
    def frame_count(self) -> int | None:
        """The number of frames the container says the stream holds (None when it does not say)."""
        return self._stream.frames or None

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame, decoded one at a time, as uint8 (H, W, 3) at the first frame's size, turned upright as
        its display matrix says (a phone's portrait video is stored landscape with a 90 degree rotation), as
        players and ffmpeg show it: a physics critic must see gravity point down. The first frame's size is
        checked as the header's was (headers can lie)."""
        size: dict[str, int] = {}
        for frame in self._container.decode(self._stream):
            if not size:
                _check_frame_size(frame.width, frame.height, self.path)
                # read once: a stream keeps its rotation, and reading a frame's side data keeps the frame alive
                # until the garbage collector runs (memory would grow with the clip's length)
                matrix = _display_matrix(frame)
            pixels = frame.to_ndarray(format="rgb24", **size)  # (H, W, 3) as stored
            size = size or {"height": pixels.shape[0], "width": pixels.shape[1]}
            yield _upright(pixels, matrix)


@contextlib.contextmanager
def open_video(path: str | os.PathLike[str]) -> Iterator[OpenVideo]:
    """Open a video file with PyAV to decode it a frame at a time: memory stays that of one frame however long the
    clip (:func:`read_video` holds them all).

        with open_video("clip.mp4") as video:
            for frame in video.frames():  # uint8 (H, W, 3), upright
                ...

    Frames of more than MAX_FRAME_PIXELS or longer than MAX_ASPECT_RATIO:1 are refused (ValueError) before any is
    decoded; a file ffmpeg cannot read is a ValueError naming it, whether it fails to open or midway.
    """
    import av  # deferred: PyAV loads the ffmpeg libraries

    path = check_video_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"could not decode video {path}: the file has no video stream")
            stream = container.streams.video[0]
            if stream.width and stream.height:  # 0 when unknown; the first decoded frame is checked too
                _check_frame_size(stream.width, stream.height, path)
            stream.thread_type = "AUTO"
            yield OpenVideo(path, container, stream)
    except av.FFmpegError as error:
        raise ValueError(f"could not decode video {path}: {error}") from None


def _check_frame_size(width: int, height: int, path: pathlib.Path) -> None:
    """Refuse frames of more than MAX_FRAME_PIXELS pixels or longer than MAX_ASPECT_RATIO:1, before decoding."""
    if width * height > MAX_FRAME_PIXELS:
        side = math.isqrt(MAX_FRAME_PIXELS)
        raise ValueError(
            f"could not decode video {path}: its frames are {width}x{height} pixels (width x height), more than "
            f"the {side}x{side} pixels hybridgen reads (8K video is 7680x4320); scale it down first, e.g. "
            "ffmpeg -i INPUT -vf scale=-2:1080 OUTPUT.mp4"
        )
    check_aspect_ratio(height, width, name=f"video {path}")


def _unit_float32(frames: list[np.ndarray | None]) -> np.ndarray:
    """Stack uint8 (H, W, 3) frames into one float32 (T, H, W, 3) array in [0, 1], emptying ``frames``.

    Equal to ``np.stack(frames).astype(np.float32) / 255`` but fills one preallocated array and drops each
    uint8 frame once converted, so the peak is the float32 clip plus the uint8 frames, not three copies.
    """
    clip = np.empty((len(frames), *frames[0].shape), dtype=np.float32)
    for index, frame in enumerate(frames):
        np.divide(frame, np.float32(255), out=clip[index])
        frames[index] = None
    return clip


def _decode_budget() -> int:
    """Bytes :func:`read_video`'s float32 clip may take: DECODE_MEMORY_SHARE of the memory available now."""
    available = available_memory()
    return FALLBACK_DECODE_BUDGET if available is None else int(DECODE_MEMORY_SHARE * available)


def _budget_source() -> str:
    """How :func:`_decode_budget` was set, for error messages."""
    if available_memory() is None:
        return "hybridgen.video.FALLBACK_DECODE_BUDGET, as the available memory is unknown"
    return f"hybridgen.video.DECODE_MEMORY_SHARE, {DECODE_MEMORY_SHARE:.0%} of the memory available"


def available_memory() -> int | None:
    """Bytes of memory this process could still fill, or None where that cannot be read.

    Linux's MemAvailable (free memory plus caches it can drop), lowered to what the container's cgroup v2 limit
    leaves, if one is set; elsewhere the free physical pages POSIX reports.
    """
    available = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024  # reported in kB
    if available is None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(OSError, ValueError):
        cgroup = pathlib.Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int((cgroup / "memory.current").read_text())
            available = left if available is None else min(available, left)
    return available


def find_videos(paths: Sequence[str | os.PathLike[str]]) -> list[tuple[pathlib.Path, pathlib.Path]]:
    """The video files among `paths`: files as given, folders searched recursively for READABLE_VIDEO_SUFFIXES
    (hidden files and folders skipped), in sorted order, each file once.

    Returns `(file, name)` pairs: `name` is the file's path relative to the folder it was found in (its own name
    for a file given directly), for naming what is written about it. A path that does not exist, or a folder
    with no video in it, is an error before anything is read.
    """
    found: dict[pathlib.Path, tuple[pathlib.Path, pathlib.Path]] = {}  # resolved -> (as spelled, name)
    for path in map(pathlib.Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if not path.is_dir():
            found.setdefault(path.resolve(), (path, pathlib.Path(path.name)))
            continue
        videos = sorted(
            file
            for file in path.rglob("*")
            if file.suffix.lower() in READABLE_VIDEO_SUFFIXES
            and file.is_file()
            and not any(part.startswith(".") for part in file.relative_to(path).parts)
        )
        if not videos:
            raise ValueError(
                f"{path} holds no video files (searched for {', '.join(READABLE_VIDEO_SUFFIXES)})"
            )
        for file in videos:
            found.setdefault(file.resolve(), (file, file.relative_to(path)))
    return list(found.values())


def read_image(path: str | os.PathLike[str]) -> Image.Image:
    """An image file (any format PIL reads) as an RGB PIL image, e.g. the first frame to condition on; one
    clear error for a missing file or one that is not an image."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path} is not an image PIL can read ({error}).") from None


def check_video_file(path: str | os.PathLike[str]) -> pathlib.Path:
    """Return ``path`` as a Path after checking it names an existing file, not a directory (``read_video`` calls
    it; callers about to load a model first can call it up front)."""
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video file not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"expected a video file but got a directory: {path}")
    return path


def _decode_rgb(video: OpenVideo, *, budget: int) -> list[np.ndarray | None]:
    """Every frame of `video` (see `OpenVideo.frames`), stopping with a ValueError once the frames, as the float32
    clip ``read_video`` returns, would take more than ``budget`` bytes: a ten-minute 4K video fails after a few
    seconds instead of exhausting the memory."""
    frames: list[np.ndarray | None] = []
    for pixels in video.frames():
        frame_bytes = pixels.size * np.dtype(np.float32).itemsize  # read_video returns them as float32
        if (len(frames) + 1) * frame_bytes > budget:
            height, width = pixels.shape[:2]
            raise ValueError(
                f"could not decode video {video.path}: its frames ({width}x{height} pixels, "
                f"{frame_bytes / 2**20:.1f} MiB each as float32) pass {budget / 2**30:.2f} GiB at frame "
                f"{len(frames) + 1}, more than read_video may fill ({_budget_source()}). Cut a shorter or "
                "smaller clip first, e.g. ffmpeg -i INPUT -t 10 -vf scale=-2:480 OUTPUT.mp4"
            )
        frames.append(pixels)
    return frames


def _display_matrix(frame: Any) -> np.ndarray | None:
    """The frame's display matrix, `(2, 2)` floats (its rotation / flip part), or None when it has none."""
    for side_data in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" in str(side_data.type):
            return np.frombuffer(bytes(side_data), np.int32).reshape(3, 3)[:2, :2] / 65536.0
    return None


def _upright(pixels: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """`(H, W, 3)` pixels as a player shows them under `matrix`: mirrored if it flips, then turned by its angle
    (ffmpeg's `av_display_rotation_get`, counterclockwise), in quarter turns. Checked against ffmpeg's own
    decode for rotations of 90, 180 and 270 degrees with and without flips (tests)."""
    if matrix is None:
        return pixels
    flipped = np.linalg.det(matrix) < 0
    scale = np.hypot(matrix[0], matrix[1])  # each column's length
    degrees = -math.degrees(math.atan2(matrix[0, 1] / scale[1], matrix[0, 0] / scale[0]))
    quarter_turns = (round(degrees / 90) + (2 if flipped else 0)) % 4
    pixels = pixels[:, ::-1] if flipped else pixels
    return np.rot90(pixels, quarter_turns) if quarter_turns else pixels


def _stream_fps(stream: Any, path: pathlib.Path) -> float:
    """The stream's frame rate in frames per second."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or not math.isfinite(float(rate)) or float(rate) <= 0:
        raise ValueError(f"could not decode video {path}: its frame rate is unknown")
    return float(rate)


def resample_frames(frames: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Resample a clip in time by nearest-frame selection.

    ``frames`` is any array with time on axis 0, shape (T, ...). The result covers the same duration,
    T / src_fps seconds, with round(T * dst_fps / src_fps) frames (at least 1); output frame i is the
    source frame nearest to time i / dst_fps. E.g. 32 frames at 30 fps -> 16 frames at 15 fps.
    """
    if not isinstance(frames, np.ndarray):
        raise TypeError(f"frames must be a numpy array with time on axis 0; got {type(frames).__name__}")
    if frames.ndim == 0 or len(frames) == 0:
        raise ValueError(f"frames is empty: shape {frames.shape}; expected at least one frame on axis 0")
    check_fps(src_fps, "src_fps")
    check_fps(dst_fps, "dst_fps")
    num_in = len(frames)
    num_out = max(1, math.floor(num_in * dst_fps / src_fps + 0.5))
    source_index = np.floor(np.arange(num_out) * (src_fps / dst_fps) + 0.5).astype(np.int64)
    return frames[np.minimum(source_index, num_in - 1)]


def check_fps(value: Any, name: str) -> None:
    """Require a finite, positive real frame rate."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number of frames per second; got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite frame rate; got {value}")


# ---------------------------------------------------------------------------------------------------------
# Atomic writing


def check_output_path(path: str | os.PathLike[str], suffixes: Sequence[str] = ()) -> pathlib.Path:
    """``path`` as a Path if a file can be written there: not a directory, and ending in one of ``suffixes``
    (any suffix when empty). Writers call it first; callers that produce something slow before writing (the
    CLI) call it up front, so a bad path fails before the work rather than after it.
    """
    path = pathlib.Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise ValueError(f"cannot write {path}: the file name must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write to {path}: it is a directory")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"cannot write {path}: {parent} is a file, not a directory")
            break
    return path


def check_directory_path(path: str | os.PathLike[str], action: str = "write to") -> pathlib.Path:
    """``path`` as a Path if a folder can be there: an existing directory, or nothing yet below directories.
    ``action`` says what was to be done there, for the error ("cannot write candidates to PATH: ...")."""
    path = pathlib.Path(path)
    for folder in (path, *path.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "it is" if folder == path else f"{folder} is"
                raise NotADirectoryError(f"cannot {action} {path}: {where} a file, not a directory.")
            break
    return path


# the temporary name `atomic_write_path` gives a file before renaming it onto its path: `.<stem>.<12 hex>.tmp<suffix>`
TEMPORARY_FILE = re.compile(r"\.(?P<stem>.+)\.[0-9a-f]{12}\.tmp(\.[A-Za-z0-9]+)?")


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike[str]) -> Iterator[pathlib.Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, on error delete it.

    The temporary name keeps ``path``'s suffix (so encoders can infer the format) and is hidden
    (``.name.<random>.tmp.suffix``). Parent directories are created. ``path`` is replaced atomically
    (``os.replace``), so readers see the old file or the complete new one, never a partial file.
    The temporary file is not created in advance: the writer creates it with default permissions.
    """
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp_path = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")
    try:
        yield temp_path
        if not temp_path.is_file():
            raise FileNotFoundError(f"nothing was written to the temporary file {temp_path}")
        descriptor = os.open(temp_path, os.O_RDONLY)
        try:
            os.fsync(descriptor)  # on disk before the rename makes it the file: a crash leaves old or new
        finally:
            os.close(descriptor)
        os.replace(temp_path, path)
    finally:
        temp_path.unlink(missing_ok=True)


def write_video(video: Any, path: str | os.PathLike[str], *, fps: float = 16) -> pathlib.Path:
    """Encode a clip as H.264 (yuv420p, CRF 18) with imageio-ffmpeg's ffmpeg and write it atomically.

    ``video`` is anything :func:`as_frames` accepts; ``path`` must end in .mp4, .m4v, .mov or .mkv.
    yuv420p stores chroma at half resolution, so H.264 needs even frame sizes: an odd height or width
    is padded by one row/column that repeats the bottom/right edge, and reading the file back gives the
    padded (even) size. Returns ``path`` as a Path.

    An exception during the encoding (Ctrl-C; SIGTERM under :func:`hybridgen.signals.terminate_as_interrupt`)
    kills ffmpeg and deletes the temporary file before it propagates: nothing is left behind.

    Raises:
        ValueError / TypeError: bad clip (see :func:`as_frames`), bad ``fps`` or suffix.
        RuntimeError: ffmpeg failed; nothing is left at ``path`` (an existing file is kept).
    """
    path = check_output_path(path, VIDEO_SUFFIXES)
    check_fps(fps, "fps")
    pixels = _pad_to_even(_to_uint8(as_frames(video)))
    try:
        with atomic_write_path(path) as temp_path:
            _encode_h264(pixels, temp_path, fps=float(fps))
    except RuntimeError as error:
        raise RuntimeError(f"could not write video {path}: {error}") from None
    return path


def _to_uint8(frames: np.ndarray) -> np.ndarray:
    """float [0, 1] -> uint8 0..255, rounding to nearest."""
    return np.rint(frames * 255).astype(np.uint8)


def _pad_to_even(pixels: np.ndarray) -> np.ndarray:
    """Pad (T, H, W, C) to even H and W by repeating the last row / column."""
    pad_height, pad_width = pixels.shape[1] % 2, pixels.shape[2] % 2
    if not (pad_height or pad_width):
        return pixels
    return np.pad(pixels, ((0, 0), (0, pad_height), (0, pad_width), (0, 0)), mode="edge")


def _encode_h264(pixels: np.ndarray, path: pathlib.Path, *, fps: float) -> None:
    """Encode uint8 (T, H, W, 3) frames with even H and W to ``path`` with the imageio-ffmpeg binary.

    Runs ffmpeg directly (rather than imageio's writer) so its exit status is checked and its error
    output ends up in the exception. If anything interrupts the encoding, ffmpeg is killed and reaped before
    the exception goes on, so nothing writes to ``path`` afterwards.
    """
    import imageio_ffmpeg  # deferred: locates the bundled ffmpeg binary

    num_frames, height, width = pixels.shape[:3]
    rate = Fraction(fps).limit_denominator(1001)
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(rate), "-i", "pipe:0",
        "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(H264_CRF), "-preset", "medium",
        "-movflags", "+faststart", "-frames:v", str(num_frames),
        str(path),
    ]  # fmt: skip
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    with subprocess.Popen(command, **pipes) as process:
        try:
            _, error_output = process.communicate(np.ascontiguousarray(pixels).reshape(-1).data)
        finally:
            _kill_and_reap(process)
    if process.returncode != 0:
        reason = error_output.decode(errors="replace").strip()[-2000:] or "no error output"
        raise RuntimeError(f"ffmpeg exited with status {process.returncode}: {reason}")


def _kill_and_reap(process: subprocess.Popen) -> None:
    """Kill ``process`` if it is still running, and wait for it to end.

    An exception while ffmpeg encodes (KeyboardInterrupt from Ctrl-C, SystemExit, or
    :class:`hybridgen.signals.Terminated` from SIGTERM) must not leave it behind: left alone it would finish
    encoding the frames it got and write the output after the caller deleted it. Waiting reaps it (no zombie) and guarantees it writes
    nothing more before :func:`atomic_write_path` deletes the temporary file.
    """
    if process.poll() is None:
        process.kill()
    process.wait()


def write_png_atomic(image: Image.Image | np.ndarray, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write a PIL image or an image array as PNG, atomically. Returns ``path`` as a Path.

    Arrays are (H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1].
    """
    path = check_output_path(path, PNG_SUFFIXES)
    picture = image if isinstance(image, Image.Image) else _array_to_pil(image)
    with atomic_write_path(path) as temp_path:
        picture.save(temp_path, format="PNG")
    return path


def _array_to_pil(image: Any) -> Image.Image:
    """Convert an (H, W), (H, W, 3) or (H, W, 4) uint8 / [0, 1] float array to a PIL image."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a PIL image or a numpy array; got {type(image).__name__}")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (3, 4))):
        raise ValueError(f"image has shape {image.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")
    if image.dtype != np.uint8:
        # reuse the clip checks (dtype, NaN, range) on a one-frame "clip"
        channels = image if image.ndim == 3 else image[..., None]
        unit = _to_unit_float32(channels[None], name="image")[0]
        image = _to_uint8(unit if image.ndim == 3 else unit[..., 0])
    return Image.fromarray(image)


def write_json_atomic(obj: Any, path: str | os.PathLike[str]) -> pathlib.Path:
    """Write ``obj`` as indented UTF-8 JSON, atomically. Returns ``path`` as a Path.

    numpy scalars and arrays become numbers and lists, paths become strings; other unknown types raise
    TypeError before anything is written.
    """
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    path = pathlib.Path(path)
    with atomic_write_path(path) as temp_path:
        temp_path.write_text(text, encoding="utf-8")
    return path


def write_jsonl_atomic(rows: Sequence[Any], path: str | os.PathLike[str]) -> pathlib.Path:
    """Write `rows` as JSON lines (one object a line, UTF-8), atomically, as `write_json_atomic` writes JSON."""
    text = "".join(json.dumps(row, default=_json_default) + "\n" for row in rows)
    path = pathlib.Path(path)
    with atomic_write_path(path) as temp_path:
        temp_path.write_text(text, encoding="utf-8")
    return path


def _json_default(value: Any) -> Any:
    """JSON fallback for numpy values and paths."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON: {value!r:.80}")
