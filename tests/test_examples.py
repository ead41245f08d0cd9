"""The example scripts, run as a user would: in a subprocess, on tiny components."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hybridgen.testing import tiny_vjepa2_model
from hybridgen.video import read_video, write_video

pytestmark = pytest.mark.slow  # the edit-run loop skips these: pytest -m "not slow"

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_tiny_cpu_writes_best_clip_sheet_and_curves(tmp_path):
    run_example("tiny_cpu.py", "--output", str(tmp_path / "best.mp4"), cwd=tmp_path)
    frames, _ = read_video(tmp_path / "best.mp4")
    assert frames.shape == (17, 32, 32, 3)
    for name in ("best_candidates.png", "best_curves.png"):
        assert Image.open(tmp_path / name).format == "PNG"


@pytest.mark.parametrize("critic", ["tiny", "toyworld"])  # toyworld predicts both directions of time
def test_score_videos_ranks_plots_and_writes_heatmaps(tmp_path, critic):
    if critic == "tiny":
        tiny_vjepa2_model().save_pretrained(tmp_path / "critic")
        critic = str(tmp_path / "critic")
    ramp = np.broadcast_to(np.linspace(0, 1, 24, dtype=np.float32)[:, None, None, None], (24, 32, 32, 3))
    noise = np.random.default_rng(0).random((20, 40, 56, 3), dtype=np.float32)  # not square: centre-cropped
    videos = [write_video(ramp, tmp_path / "ramp.mp4"), write_video(noise, tmp_path / "noise.mp4")]
    result = run_example(
        "score_videos.py",
        *map(str, videos),
        *("--critic", critic, "--device", "cpu"),
        *("--plot", str(tmp_path / "curves.png"), "--heatmap", str(tmp_path / "heatmaps")),
        cwd=tmp_path,
    )
    ranking = [line for line in result.stdout.splitlines() if line.endswith(".mp4")]
    assert len(ranking) == 2 and {line.split()[-1] for line in ranking} == set(map(str, videos))
    assert Image.open(tmp_path / "curves.png").format == "PNG"
    for name in ("ramp", "noise"):
        assert Image.open(tmp_path / "heatmaps" / f"{name}_heatmap.png").format == "PNG"


def run_generate_gpu_in_process(monkeypatch, *args: str) -> int:
    """Run examples/generate_gpu.py as `python generate_gpu.py ARGS` would, in this process (no import cost)."""
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / "generate_gpu.py"), *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(EXAMPLES / "generate_gpu.py"), run_name="__main__")
    return exit_info.value.code


def test_generate_gpu_help(monkeypatch, capsys):
    assert run_generate_gpu_in_process(monkeypatch, "--help") == 0
    help_text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, also inside the ids
    for option in ("--generator-id", "--critic-id", "--frames", "--guidance-scale", "--output-dir"):
        assert option in help_text
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in help_text and "facebook/vjepa2-vitl-fpc64-256" in help_text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error")
def test_generate_gpu_without_cuda_says_so(monkeypatch, capsys):
    assert run_generate_gpu_in_process(monkeypatch) == 2
    assert "examples/tiny_cpu.py" in capsys.readouterr().err


def test_strategies_writes_one_clip_per_strategy_and_a_side_by_side(tmp_path):
    from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline

    tiny_vjepa2_model().save_pretrained(tmp_path / "critic")
    tiny_pipeline("wan").save_pretrained(tmp_path / "generator")
    defaults = {"fps": 8, "pipeline_call": dict(TINY_CALL_KWARGS["wan"], num_inference_steps=4)}
    (tmp_path / "generator" / "call_defaults.json").write_text(json.dumps(defaults))
    result = run_example(
        "strategies.py",
        *("--generator", str(tmp_path / "generator"), "--critic", str(tmp_path / "critic")),
        *("--candidates", "4", "--output-dir", str(tmp_path / "out")),
        cwd=tmp_path,
    )
    for name in ("plain", "best_of_4", "search", "guidance"):
        frames, fps = read_video(tmp_path / "out" / f"{name}.mp4")
        assert frames.shape == (17, 32, 32, 3) and fps == 8
        assert name in result.stdout
    frames, _ = read_video(tmp_path / "out" / "side_by_side.mp4")
    assert frames.shape == (17, 32, 4 * 32, 3)
    steps = {line.split()[0]: int(line.split()[3]) for line in result.stdout.splitlines()[1:5]}
    assert steps == {"plain": 4, "best_of_4": 16, "search": 4 + 2 + 1 * 2, "guidance": 4}
