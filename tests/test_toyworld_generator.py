"""The bundled toy-world generator: it resolves offline by name, is small, makes the main job run, follows prompts."""

import json
import os
import subprocess
import sys
import time

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from diffusers import WanPipeline
from PIL import Image

from hybridgen import HybridPipeline
from hybridgen.models import BUNDLED, WEIGHTS_DIR
from hybridgen.toyworld.prompts import follows_prompt
from hybridgen.video import read_video

pytestmark = pytest.mark.slow  # the edit-run loop skips these: pytest -m "not slow"


@pytest.fixture(scope="module")
def pipe():
    return HybridPipeline.from_pretrained("toyworld")


def test_toyworld_resolves_to_both_bundled_models_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert BUNDLED["toyworld"]["generator"] == WEIGHTS_DIR / "generator"
    pipe = HybridPipeline.from_pretrained("toyworld")
    assert isinstance(pipe.pipeline, WanPipeline) and pipe.critic.crop_size == 64
    assert pipe.call_defaults["num_frames"] >= 16 and pipe.call_defaults["height"] >= 32 and pipe.fps == 8
    size = sum(path.stat().st_size for path in WEIGHTS_DIR.rglob("*") if path.is_file())
    assert size <= 25 * 10**6  # generator + critic
    assert not list(WEIGHTS_DIR.rglob("*.bin"))  # safetensors only
    card = (WEIGHTS_DIR / "generator" / "README.md").read_text()
    assert "## Training" in card and "Training time" in card


def test_the_generator_follows_count_and_colour_better_than_chance(pipe):
    """Chance is 1/3 for the count (one to three balls) and 1/7 for the colour."""
    prompts = [
        "a red ball bouncing",
        "two blue balls falling",
        "a green ball falling",
        "two white balls bouncing",
    ]
    results = []
    for prompt in prompts:
        out = pipe(prompt, num_candidates=3, generator=torch.Generator().manual_seed(7), show_progress=False)
        results += [follows_prompt(clip, prompt) for clip in out.candidates]
    count = np.mean([r["count"] for r in results])
    colour = np.mean([r["colour"] for r in results])
    # well above chance: 0.67 and 0.42 here; over 256 benchmark candidates 0.50-0.55 and 0.65-0.69
    assert count > 0.5 and colour > 2 / 7, (count, colour)


def test_main_job_runs_offline_from_the_command_line(tmp_path):
    """The README's main job: the console entry point, no model arguments, HF_HUB_OFFLINE=1."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "home"))
    env.setdefault("OMP_NUM_THREADS", "2")
    command = [
        sys.executable,
        "-m",
        "hybridgen.cli",
        "generate",
        "a red ball bouncing",
        "-o",
        str(tmp_path / "best.mp4"),
    ]
    command += [
        "--sheet",
        str(tmp_path / "candidates.png"),
        "--plot",
        str(tmp_path / "curves.png"),
        "--quiet",
    ]
    command += ["--report", str(tmp_path / "report.json")]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    frames, fps = read_video(tmp_path / "best.mp4")
    assert frames.shape == (17, 32, 32, 3) and fps == 8
    sheet = Image.open(tmp_path / "candidates.png")
    assert sheet.format == "PNG" and sheet.height > 4 * 32  # four candidate rows
    assert Image.open(tmp_path / "curves.png").format == "PNG"
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["candidates"]) == 4 and report["denoising_steps"] == 4 * 20
    assert seconds < 90, f"main job took {seconds:.0f} s"  # the target is under a minute on 2 free cores
