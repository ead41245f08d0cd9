"""Tests for hybridgen.video: clip normalisation, decoding, resampling and atomic writes."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from hybridgen import video
from hybridgen.video import (
    as_frames,
    atomic_write_path,
    check_output_path,
    read_video,
    resample_frames,
    write_json_atomic,
    write_png_atomic,
    write_video,
)


def smooth_clip(num_frames: int = 16, height: int = 32, width: int = 48) -> np.ndarray:
    """A smoothly moving colour pattern, float32 (T, H, W, 3) in [0.1, 0.9]; compresses well."""
    t = np.linspace(0, 1, num_frames)[:, None, None, None]
    y = np.linspace(0, 1, height)[None, :, None, None]
    x = np.linspace(0, 1, width)[None, None, :, None]
    phase = np.arange(3)[None, None, None, :]
    return (0.5 + 0.4 * np.sin(6 * x + 3 * y + 4 * t + phase)).astype(np.float32)


@pytest.fixture
def uint8_clip() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(4, 6, 5, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------------
# as_frames: accepted inputs


def test_as_frames_accepts_every_input_type_equally(uint8_clip):
    expected = uint8_clip.astype(np.float32) / 255
    as_torch = torch.from_numpy(expected).permute(0, 3, 1, 2)
    inputs = {
        "uint8": uint8_clip,
        "float64": expected.astype(np.float64),
        "float16": expected.astype(np.float16),
        "torch float": as_torch,
        "torch bfloat16 grad": as_torch.to(torch.bfloat16).requires_grad_(),
        "torch uint8": torch.from_numpy(uint8_clip).permute(0, 3, 1, 2),
        "PIL list": [Image.fromarray(frame) for frame in uint8_clip],
        "PIL RGBA tuple": tuple(Image.fromarray(frame).convert("RGBA") for frame in uint8_clip),
    }
    for kind, clip in inputs.items():
        frames = as_frames(clip)
        assert frames.dtype == np.float32 and frames.shape == (4, 6, 5, 3), kind
        tolerance = 5e-3 if "16" in kind else 1e-6  # half-precision rounding
        np.testing.assert_allclose(frames, expected, atol=tolerance, err_msg=kind)


def test_as_frames_returns_a_copy_and_clips_tiny_overshoot():
    clip = np.full((2, 3, 3, 3), 1.0 + 5e-5, dtype=np.float32)
    clip[0, 0, 0, 0] = -5e-5
    frames = as_frames(clip)
    assert frames.min() == 0.0 and frames.max() == 1.0
    assert not np.shares_memory(frames, clip)


# ---------------------------------------------------------------------------------------------------------
# as_frames: errors


@pytest.mark.parametrize(
    ("clip", "error", "keyword"),
    [
        (np.zeros((4, 4, 3)), ValueError, "shape"),  # a single frame
        (np.zeros((2, 3, 4, 4)), ValueError, "channels first"),
        (np.zeros((2, 4, 4, 1)), ValueError, "channels"),
        (np.zeros((2, 4, 4, 4)), ValueError, "channels"),
        (np.zeros((2, 4, 4, 3), dtype=np.int64), ValueError, "dtype"),
        (np.zeros((2, 4, 4, 3), dtype=bool), ValueError, "dtype"),
        (np.full((2, 4, 4, 3), 2.0), ValueError, "range"),
        (np.full((2, 4, 4, 3), -0.5), ValueError, "range"),
        (np.zeros((0, 4, 4, 3)), ValueError, "empty"),
        (np.zeros((2, 0, 4, 3)), ValueError, "zero-size"),
        (torch.zeros(2, 4, 4, 3), ValueError, "permute"),
        (torch.zeros(1, 2, 3, 4, 4), ValueError, "shape"),
        ([], ValueError, "empty"),
        ([np.zeros((4, 4, 3))], TypeError, "PIL"),
        ([Image.new("L", (4, 4))], ValueError, "mode"),
        ([Image.new("RGB", (4, 4)), Image.new("RGB", (5, 4))], ValueError, "size"),
        ("clip.mp4", TypeError, "unsupported type"),
    ],
)
def test_as_frames_rejects_bad_input(clip, error, keyword):
    with pytest.raises(error, match=keyword):
        as_frames(clip, name="candidate 3")


def test_as_frames_error_names_the_clip_and_the_received_shape():
    with pytest.raises(ValueError, match=r"candidate 3.*\(2, 4, 4, 1\)"):
        as_frames(np.zeros((2, 4, 4, 1)), name="candidate 3")


def test_as_frames_reports_nan_frames():
    clip = np.zeros((5, 4, 4, 3), dtype=np.float32)
    clip[2, 0, 0, 0] = np.nan
    clip[4, 1, 1, 1] = np.inf
    with pytest.raises(ValueError, match=r"NaN or inf values in 2 of 5 frames \(first bad frame index 2\)"):
        as_frames(clip)


def test_as_frames_reports_min_and_max_out_of_range():
    clip = np.linspace(-0.25, 1.5, 2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    with pytest.raises(ValueError, match=r"min -0\.25, max 1\.5"):
        as_frames(clip)


# ---------------------------------------------------------------------------------------------------------
# write_video / read_video


@pytest.mark.parametrize(("height", "width"), [(32, 48), (33, 47)])
def test_write_read_round_trip(tmp_path, height, width):
    clip = smooth_clip(16, height, width)
    path = write_video(clip, tmp_path / "nested" / "clip.mp4", fps=16)
    frames, fps = read_video(path)
    even_height, even_width = height + height % 2, width + width % 2  # odd sizes are padded to even
    assert frames.shape == (16, even_height, even_width, 3) and frames.dtype == np.float32
    assert fps == pytest.approx(16)
    assert np.abs(frames[:, :height, :width] - clip).mean() < 0.1
    if width % 2:  # the padding column repeats the last column
        assert np.abs(frames[:, :height, -1] - clip[:, :, -1]).mean() < 0.1
    assert [p.name for p in path.parent.iterdir()] == ["clip.mp4"]  # no temporary file left


def test_write_video_accepts_fractional_fps_and_torch(tmp_path):
    clip = torch.from_numpy(smooth_clip(6)).permute(0, 3, 1, 2)
    _, fps = read_video(write_video(clip, tmp_path / "clip.mp4", fps=29.97))
    assert fps == pytest.approx(29.97, abs=1e-3)


def test_read_video_resamples_to_requested_fps(tmp_path):
    path = write_video(smooth_clip(16), tmp_path / "clip.mp4", fps=16)
    frames, fps = read_video(path, fps=8)
    assert frames.shape[0] == 8 and fps == 8.0


def test_read_video_decodes_gif(tmp_path):
    images = [Image.fromarray(np.full((10, 12, 3), 40 * i, dtype=np.uint8)) for i in range(5)]
    images[0].save(tmp_path / "clip.gif", save_all=True, append_images=images[1:], duration=100)
    frames, fps = read_video(tmp_path / "clip.gif")
    assert frames.shape == (5, 10, 12, 3) and fps == pytest.approx(10)


@pytest.mark.parametrize(
    "display",
    [
        ["-display_rotation", "90"],
        ["-display_rotation", "270"],
        ["-display_rotation", "180"],
        ["-display_hflip"],
    ]
    + [
        ["-display_vflip"],
        ["-display_rotation", "90", "-display_hflip"],
        ["-display_rotation", "-90", "-display_hflip"],
    ],
)
def test_read_video_shows_rotated_and_mirrored_videos_as_ffmpeg_does(tmp_path, display):
    """A display matrix (a phone's portrait clip, a mirrored selfie) is applied as ffmpeg and players apply it."""
    import subprocess

    import imageio_ffmpeg

    ffmpeg = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error"]
    clip = np.zeros((4, 32, 48, 3), np.float32)
    clip[:, :8, :8, 0] = 1  # a red top-left corner: landscape as stored
    write_video(clip, tmp_path / "stored.mp4", fps=8)
    subprocess.run(
        [*ffmpeg, *display, "-i", str(tmp_path / "stored.mp4"), "-c", "copy", str(tmp_path / "d.mp4")],
        check=True,
    )
    frames, fps = read_video(tmp_path / "d.mp4")
    shown = subprocess.run(  # what ffmpeg itself decodes, the display matrix applied
        [*ffmpeg, "-i", str(tmp_path / "d.mp4"), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    assert fps == pytest.approx(8) and frames.size == len(shown)
    assert np.abs(frames * 255 - np.frombuffer(shown, np.uint8).reshape(frames.shape)).mean() < 1
    stored, _ = read_video(tmp_path / "stored.mp4")
    assert not np.array_equal(frames, stored)  # something was turned


def test_an_output_under_a_file_is_refused_before_writing(tmp_path):
    (tmp_path / "best.mp4").write_bytes(b"not a folder")
    with pytest.raises(NotADirectoryError, match=r"best.mp4 is a file, not a directory"):
        check_output_path(tmp_path / "best.mp4" / "deeper" / "x.mp4", (".mp4",))


def test_write_video_failure_midway_leaves_no_file_and_keeps_existing(tmp_path, monkeypatch):
    target = tmp_path / "clip.mp4"
    target.write_bytes(b"previous video")

    def failing_encoder(pixels, path, *, fps):
        path.write_bytes(b"partial mp4 data")
        raise RuntimeError("encoder crashed midway")

    monkeypatch.setattr(video, "_encode_h264", failing_encoder)
    with pytest.raises(RuntimeError, match="midway"):
        write_video(smooth_clip(4), target)
    assert target.read_bytes() == b"previous video"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_write_video_reports_real_ffmpeg_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(video, "H264_CRF", -5)  # out of libx264's range: ffmpeg exits with an error
    with pytest.raises(RuntimeError, match=r"could not write video .*clip\.mp4: ffmpeg exited .*crf"):
        write_video(smooth_clip(4), tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "keyword"),
    [
        ({"path": "clip.gif"}, ValueError, r"\.mp4"),
        ({"fps": 0}, ValueError, "positive"),
        ({"fps": float("nan")}, ValueError, "positive"),
        ({"fps": "16"}, TypeError, "number"),
    ],
)
def test_write_video_rejects_bad_arguments(tmp_path, kwargs, error, keyword):
    path = tmp_path / kwargs.pop("path", "clip.mp4")
    with pytest.raises(error, match=keyword):
        write_video(smooth_clip(2), path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_read_video_values_are_pyav_rgb24_divided_by_255(tmp_path):
    """read_video fills its float32 clip frame by frame: the values are exactly the decoded bytes / 255."""
    import av

    path = write_video(smooth_clip(8, 33, 47), tmp_path / "clip.mp4")
    with av.open(str(path)) as container:
        decoded = np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])
    frames, _ = read_video(path)
    assert frames.dtype == np.float32 and np.array_equal(frames, decoded.astype(np.float32) / np.float32(255))


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="reads Linux's /proc/meminfo")
def test_theavailable_memory_is_read_on_linux():
    with open("/proc/meminfo") as meminfo:
        total = next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemTotal:"))
    assert 0 < video.available_memory() <= total


def test_read_video_budget_is_a_share_of_theavailable_memory(monkeypatch):
    monkeypatch.setattr(video, "available_memory", lambda: 10 << 30)
    assert video._decode_budget() == int(video.DECODE_MEMORY_SHARE * (10 << 30))
    monkeypatch.setattr(video, "available_memory", lambda: None)  # unknown: a fixed budget
    assert video._decode_budget() == video.FALLBACK_DECODE_BUDGET


def test_read_video_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")


def test_read_video_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="directory"):
        read_video(tmp_path)


def test_read_video_corrupt_file(tmp_path):
    path = tmp_path / "x.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(ValueError, match="could not decode video"):
        read_video(path)


# ---------------------------------------------------------------------------------------------------------
# resample_frames


def test_resample_halves_frame_rate():
    frames = np.arange(32)
    resampled = resample_frames(frames, 30, 15)
    assert len(resampled) == 16
    np.testing.assert_array_equal(resampled, np.arange(0, 32, 2))


def test_resample_upsamples_by_repeating_nearest_frames():
    np.testing.assert_array_equal(resample_frames(np.arange(3), 10, 20), [0, 1, 1, 2, 2, 2])


def test_resample_keeps_at_least_one_frame():
    assert len(resample_frames(np.arange(2), 30, 1)) == 1


@pytest.mark.parametrize(("src_fps", "dst_fps"), [(0, 15), (30, -1), (float("inf"), 15)])
def test_resample_rejects_bad_fps(src_fps, dst_fps):
    with pytest.raises(ValueError, match="fps"):
        resample_frames(np.arange(4), src_fps, dst_fps)


def test_resample_rejects_empty_frames():
    with pytest.raises(ValueError, match="empty"):
        resample_frames(np.zeros((0, 2)), 30, 15)


# ---------------------------------------------------------------------------------------------------------
# Atomic helpers


def test_atomic_write_path_keeps_suffix_and_renames(tmp_path):
    target = tmp_path / "sub" / "report.json"
    with atomic_write_path(target) as temp_path:
        assert temp_path.parent == target.parent and temp_path.suffix == ".json"
        temp_path.write_text("{}")
        assert not target.exists()
    assert target.read_text() == "{}" and [p.name for p in target.parent.iterdir()] == ["report.json"]


def test_atomic_write_path_cleans_up_on_error(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(KeyError), atomic_write_path(target) as temp_path:
        temp_path.write_text("half")
        raise KeyError("boom")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_json_atomic_handles_numpy(tmp_path):
    path = write_json_atomic(
        {"score": np.float32(0.5), "ids": np.arange(3), "path": tmp_path}, tmp_path / "a.json"
    )
    assert json.loads(path.read_text()) == {"score": 0.5, "ids": [0, 1, 2], "path": str(tmp_path)}


def test_write_json_atomic_rejects_unknown_types_without_writing(tmp_path):
    with pytest.raises(TypeError, match="object"):
        write_json_atomic({"x": object()}, tmp_path / "a.json")
    assert list(tmp_path.iterdir()) == []


def test_write_png_atomic_from_array(tmp_path):
    image = np.linspace(0, 1, 5 * 7 * 3).reshape(5, 7, 3)
    path = write_png_atomic(image, tmp_path / "a.png")
    with Image.open(path) as loaded:
        assert loaded.size == (7, 5) and loaded.mode == "RGB"
    with pytest.raises(ValueError, match="range"):
        write_png_atomic(image * 3, tmp_path / "b.png")
    with pytest.raises(ValueError, match=".png"):
        write_png_atomic(image, tmp_path / "c.jpg")


# ---------------------------------------------------------------------------------------------------------
# open_video and find_videos: a frame at a time, and folders of videos


def test_open_video_streams_the_frames_read_video_returns(tmp_path):
    clip = np.random.default_rng(3).integers(0, 256, (9, 24, 40, 3), dtype=np.uint8)
    path = write_video(clip, tmp_path / "clip.mp4", fps=12)
    frames, fps = read_video(path)
    with video.open_video(path) as opened:
        streamed = list(opened.frames())
        assert opened.fps == fps == 12
    assert all(frame.dtype == np.uint8 and frame.shape == (24, 40, 3) for frame in streamed)
    np.testing.assert_array_equal(np.stack(streamed), np.round(frames * 255).astype(np.uint8))


def test_open_video_names_a_file_it_cannot_read(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"could not decode video .*broken\.mp4"):
        with video.open_video(broken) as opened:
            list(opened.frames())
    with pytest.raises(IsADirectoryError):
        video.open_video(tmp_path).__enter__()


def test_find_videos_searches_folders_and_keeps_files_as_given(tmp_path):
    for name in (
        "b.mp4",
        "a.webm",
        "sub/c.mov",
        "sub/deeper/d.gif",
        ".hidden/e.mp4",
        "sub/.f.mp4",
        "notes.txt",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    explicit = tmp_path / "notes.txt"  # named directly: taken whatever its suffix
    found = video.find_videos([tmp_path / "b.mp4", tmp_path, explicit])
    assert [str(name) for _, name in found] == [
        "b.mp4",
        "a.webm",
        "sub/c.mov",
        "sub/deeper/d.gif",
        "notes.txt",
    ]
    assert found[0][0] == tmp_path / "b.mp4"  # found once, under the spelling given first
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        video.find_videos([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty holds no video files"):
        video.find_videos([tmp_path / "empty"])
