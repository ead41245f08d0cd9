"""Interrupted writes and hostile inputs: a killed MP4 write leaves nothing behind, and odd or huge videos
fail with one clear error instead of exhausting memory."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time
import warnings

import imageio_ffmpeg
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hybridgen import VJEPA2Critic, video
from hybridgen.critics import vjepa2
from hybridgen.testing import tiny_vjepa2_model
from hybridgen.video import read_video, write_video

needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self"), reason="finds ffmpeg children in /proc (Linux)"
)


def noise(frames: int, height: int, width: int) -> np.ndarray:
    """uint8 (T, H, W, 3) random pixels: slow to encode, so a write can be caught midway."""
    return np.random.default_rng(0).integers(0, 256, size=(frames, height, width, 3), dtype=np.uint8)


def write_raw(path: pathlib.Path, frames: np.ndarray, fps: int = 8) -> pathlib.Path:
    """Encode uint8 (T, H, W, 3) frames losslessly (FFV1 in Matroska, which takes any frame size)."""
    _, height, width, _ = frames.shape
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0",
        "-c:v", "ffv1", str(path),
    ]  # fmt: skip
    subprocess.run(command, input=frames.tobytes(), check=True)
    return path


def ffmpeg_children(parent: int) -> list[int]:
    """Pids of the processes whose parent is ``parent`` and whose command line mentions ffmpeg."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        ppid = re.search(r"^PPid:\s*(\d+)", status, re.MULTILINE)
        if ppid and int(ppid.group(1)) == parent and b"ffmpeg" in command:
            found.append(int(entry.name))
    return found


def running(pid: int) -> bool:
    """True if ``pid`` is a live process (a zombie has ended: it only waits to be reaped)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def temporary_files(folder: pathlib.Path) -> list[pathlib.Path]:
    return list(folder.glob(".*.tmp.*"))


# ---------------------------------------------------------------------------------------------------------
# Interrupted writes


class Interrupted(Exception):
    """An exception a signal handler raises in the middle of an encoding."""


@needs_proc
@pytest.mark.parametrize("exception", [Interrupted, KeyboardInterrupt, SystemExit])
def test_an_exception_during_encoding_kills_ffmpeg_and_removes_the_temp_file(tmp_path, exception):
    clip = noise(60, 512, 512)  # some 3 s of encoding
    interrupted = []

    def interrupt_once_ffmpeg_writes(signum, frame):
        children = ffmpeg_children(os.getpid())
        if children and temporary_files(tmp_path):
            interrupted.extend(children)
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise exception("interrupted")

    previous = signal.signal(signal.SIGALRM, interrupt_once_ffmpeg_writes)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    try:
        with pytest.raises(exception, match="interrupted"):
            write_video(clip, tmp_path / "clip.mp4")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert interrupted, "the write finished before ffmpeg was seen writing"
    assert list(tmp_path.iterdir()) == []
    for pid in interrupted:  # killed and reaped: not even a zombie is left
        assert not pathlib.Path(f"/proc/{pid}").exists()


CHILD = """
import sys
import numpy as np
from hybridgen.signals import Terminated, terminate_as_interrupt
from hybridgen.video import write_video

frames = np.random.default_rng(0).integers(0, 256, size=(120, 512, 512, 3), dtype=np.uint8)  # ~6 s to encode
if sys.argv[2] == "terminate":
    with terminate_as_interrupt():
        try:
            write_video(frames, sys.argv[1])
        except Terminated as stop:
            sys.exit(stop.exit_status)
else:
    write_video(frames, sys.argv[1])
print("the write finished")
"""


def interrupt_a_write(folder: pathlib.Path, mode: str, send) -> tuple[subprocess.CompletedProcess, int]:
    """Start a Python process writing a long clip to ``folder``, call ``send(process)`` once its ffmpeg child
    is writing the temporary file, and wait for it to end. Returns its result and the ffmpeg pid."""
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder / "clip.mp4"), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a shell job has, for Ctrl-C
    )
    try:
        deadline = time.monotonic() + 30
        children: list[int] = []
        while not (children and temporary_files(folder)):
            assert process.poll() is None, f"the writer ended early: {process.communicate()}"
            assert time.monotonic() < deadline, "ffmpeg never started writing"
            time.sleep(0.05)
            children = ffmpeg_children(process.pid)
        (encoder,) = children
        send(process)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), encoder


@needs_proc
def test_sigterm_during_write_video_leaves_no_file_and_no_ffmpeg(tmp_path):
    """`kill PID` of a program inside terminate_as_interrupt: ffmpeg is killed, the temporary file deleted."""
    result, encoder = interrupt_a_write(tmp_path, "terminate", lambda process: process.terminate())
    assert result.returncode == 128 + signal.SIGTERM, result.stderr.decode()
    assert list(tmp_path.iterdir()) == []  # neither the temporary file nor the target
    assert not running(encoder)


@needs_proc
def test_ctrl_c_during_write_video_leaves_no_file_and_no_ffmpeg(tmp_path):
    """Ctrl-C signals the whole foreground process group: Python and its ffmpeg child both get SIGINT."""
    result, encoder = interrupt_a_write(
        tmp_path, "plain", lambda process: os.killpg(process.pid, signal.SIGINT)
    )
    assert result.returncode == -signal.SIGINT, result.stderr.decode()  # how Python ends on KeyboardInterrupt
    assert b"KeyboardInterrupt" in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert not running(encoder)


# ---------------------------------------------------------------------------------------------------------
# terminate_as_interrupt


@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_terminate_as_interrupt_raises_terminated_and_restores_the_handler(name):
    from hybridgen.signals import Terminated, terminate_as_interrupt

    signum = getattr(signal, name)
    inherited = signal.signal(signum, signal.SIG_DFL)  # as in a terminal (under nohup SIGHUP is ignored)
    try:
        with pytest.raises(Terminated, match=f"terminated by {name}") as caught:
            with terminate_as_interrupt():
                signal.raise_signal(signum)
        assert isinstance(
            caught.value, KeyboardInterrupt
        )  # code that cleans up after Ctrl-C does so here too
        assert caught.value.signum == signum and caught.value.exit_status == 128 + signum
        assert signal.getsignal(signum) == signal.SIG_DFL
    finally:
        signal.signal(signum, inherited)


def test_terminate_as_interrupt_keeps_ignored_signals_ignored():
    """Under nohup SIGHUP is ignored so the job outlives its terminal; it must stay so."""
    from hybridgen.signals import Terminated, terminate_as_interrupt

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with terminate_as_interrupt():
            signal.raise_signal(signal.SIGHUP)  # ignored: nothing happens
            with pytest.raises(Terminated):
                signal.raise_signal(signal.SIGTERM)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_terminate_as_interrupt_does_nothing_outside_the_main_thread():
    from hybridgen.signals import terminate_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    inside = []

    def work():
        with terminate_as_interrupt():
            inside.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert inside == [before]


# ---------------------------------------------------------------------------------------------------------
# The critic: absurd aspect ratios, narrow crops, large frames


@pytest.mark.parametrize("shape", [(16, 1024, 2), (16, 2, 1024)])
def test_the_critic_refuses_an_absurd_aspect_ratio_before_any_work(critic, monkeypatch, shape):
    """A 2x1024 frame would be scaled to 32x16384 first (the issue's 16384x2 frames took 6.8 GB)."""
    clip = np.random.default_rng(0).random((*shape, 3), dtype=np.float32)
    monkeypatch.setattr(F, "interpolate", lambda *args, **kwargs: pytest.fail("preprocessing ran"))
    height, width = shape[1:]
    message = rf"clip 1 has {width}x{height}-pixel frames .* 512:1; hybridgen accepts at most 8:1 .*Crop"
    with pytest.raises(ValueError, match=message):
        critic.score_batch([np.zeros((16, 32, 32, 3), np.float32), clip])
    with pytest.raises(ValueError, match="at most 8:1"):
        critic.surprise(torch.from_numpy(clip).permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match="at most 8:1"):
        critic.preprocess(torch.from_numpy(clip).permute(0, 3, 1, 2).unsqueeze(0))


def test_the_widest_accepted_frames_are_scored_with_a_warning(critic):
    widest = np.random.default_rng(0).random((8, 4, 32, 3), dtype=np.float32)  # 8:1, the crop keeps 12.5%
    with pytest.warns(
        UserWarning, match=r"sees only 12% of each 32x4 frame \(its central 4x4 pixels\)"
    ) as caught:
        report = critic.score(widest)
    assert np.isfinite(report.surprise)
    assert caught[0].filename == __file__  # attributed to the caller, who can act on it


def test_a_crop_keeping_little_of_the_frame_warns_once_per_call(critic):
    wide = np.random.default_rng(0).random((8, 32, 128, 3), dtype=np.float32)  # 4:1, the crop keeps 25%
    message = r"the critic sees only 25% of each 128x32 frame \(its central 32x32 pixels\).*squarer shape"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        critic.score_batch([wide, wide, wide])
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == [str(caught[0].message)]
    assert re.search(message, str(caught[0].message)) and caught[0].filename == __file__
    with pytest.warns(UserWarning, match=message):
        critic.surprise(torch.from_numpy(wide).permute(0, 3, 1, 2))


@pytest.mark.parametrize("resize_to", [None, 37])  # 37 -> 32 is V-JEPA 2 ViT-L's 292 -> 256 in small
def test_16_9_video_is_scored_without_a_crop_warning(resize_to):
    critic = VJEPA2Critic(tiny_vjepa2_model(seed=0), resize_to=resize_to)
    sixteen_by_nine = np.random.default_rng(0).random((8, 36, 64, 3), dtype=np.float32)  # keeps 56% / 42%
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        critic.score(sixteen_by_nine)


def test_preprocess_resizes_a_few_frames_at_a_time_with_the_same_result(critic, monkeypatch):
    """Large frames are resized in chunks of about PREPROCESS_CHUNK_PIXELS, giving bit-identical pixels."""
    clips = torch.rand(2, 6, 3, 40, 100, generator=torch.Generator().manual_seed(0))
    whole = critic.preprocess(clips)
    calls = []
    interpolate = F.interpolate

    def counting(chunk, **kwargs):
        calls.append(len(chunk))
        return interpolate(chunk, **kwargs)

    monkeypatch.setattr(F, "interpolate", counting)
    monkeypatch.setattr(vjepa2, "PREPROCESS_CHUNK_PIXELS", 3 * (40 * 100 + 32 * 80))  # 3 frames, resized too
    assert torch.equal(critic.preprocess(clips), whole)
    assert calls == [3, 3, 3, 3]


# ---------------------------------------------------------------------------------------------------------
# read_video: absurd frames and memory


def test_read_video_refuses_a_tiny_file_of_absurdly_wide_frames_before_decoding(tmp_path, monkeypatch):
    """The issue's file: 16 frames of 16384x2 pixels in 3 KB."""
    path = write_raw(tmp_path / "wide.mkv", np.zeros((16, 2, 16384, 3), np.uint8))
    assert path.stat().st_size < 10_000
    monkeypatch.setattr(video, "_decode_rgb", lambda *args, **kwargs: pytest.fail("frames were decoded"))
    with pytest.raises(ValueError, match=r"wide\.mkv has 16384x2-pixel frames .* 8192:1; .*at most 8:1"):
        read_video(path)


def test_read_video_refuses_frames_over_the_pixel_limit_before_decoding(tmp_path, monkeypatch):
    path = write_raw(tmp_path / "big.mkv", noise(2, 48, 64))
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 32 * 32)  # the real limit, 8192x8192, makes files too big
    monkeypatch.setattr(video, "_decode_rgb", lambda *args, **kwargs: pytest.fail("frames were decoded"))
    with pytest.raises(
        ValueError, match=r"big\.mkv: its frames are 64x48 pixels .* more than the 32x32 .*scale"
    ):
        read_video(path)


def test_read_video_stops_once_the_clip_passes_its_memory_budget(tmp_path, monkeypatch):
    path = write_raw(tmp_path / "long.mkv", noise(8, 32, 48))
    frame_bytes = 32 * 48 * 3 * 4  # float32
    monkeypatch.setattr(video, "available_memory", lambda: 2 * 8 * frame_bytes)  # DECODE_MEMORY_SHARE = 50%
    assert read_video(path)[0].shape == (8, 32, 48, 3)  # exactly fits
    monkeypatch.setattr(video, "available_memory", lambda: 2 * 3 * frame_bytes)
    with pytest.raises(ValueError, match=r"long\.mkv: its frames \(48x32 pixels.* at frame 4, .*shorter"):
        read_video(path)
