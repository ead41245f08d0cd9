"""Training on a folder of videos: the streaming dataset, fine-tuning that keeps a checkpoint's preprocessing, and
the critic trainer under accelerate (gradient accumulation in process; two processes with torchrun)."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from hybridgen import VJEPA2Critic
from hybridgen.critics.error_head import ERROR_HEAD_FILE, ExpectedErrorHead
from hybridgen.testing import tiny_vjepa2_model
from hybridgen.training.critic import CriticTrainer, CriticTrainingConfig, train_critic
from hybridgen.training.error_head import calibrate_critic
from hybridgen.training.folder_clips import VideoFolderClips
from hybridgen.video import read_video, write_video

SCORING = {"window": 8, "context": 4, "stride": 2, "direction": "both"}


def striped_video(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """Frames whose content differs frame to frame and left to right, so a wrong frame or a squashed (not
    centre-cropped) frame shows."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t, :, : width // 4] = 255  # a bar a square crop cuts off
        frames[t, :, width // 4 :, 0] = (t * 23) % 256
        frames[t, :, width // 4 :, 1:] = rng.integers(0, 256, (height, width - width // 4, 2))
    return frames


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Three landscape videos (18, 12 and 6 frames at 8 fps), one in a subfolder."""
    root = tmp_path_factory.mktemp("videos")
    write_video(striped_video(18, 48, 80, 0), root / "a.mp4", fps=8)
    write_video(striped_video(12, 48, 80, 1), root / "b.mp4", fps=8)
    (root / "more").mkdir()
    write_video(striped_video(6, 48, 80, 2), root / "more" / "c.mp4", fps=8)
    return root


def test_windows_are_what_the_critic_scores(folder, critic):
    critic = critic.with_options(resize_to=40)
    clips = VideoFolderClips(folder, resize_to=40, crop_size=critic.crop_size, seed=3, workers=0)
    assert sorted(clips.lengths) == [6, 12, 18]
    batch = clips(torch.Generator(), 5, 8)
    assert batch.shape == (5, 8, 3, 32, 32) and batch.dtype == torch.float32
    # every window is a run of consecutive frames of one video, cropped exactly as scoring crops it
    scored = {path: critic.read_crops(path)[0] for path in clips.paths}  # (T, 32, 32, 3) uint8 each
    for window in (batch * 255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy():
        matches = [
            (path, first)
            for path, crops in scored.items()
            for first in range(len(crops) - 7)
            if np.array_equal(crops[first : first + 8], window)
        ]
        assert matches, "a window that is not 8 consecutive scoring crops of one video"
        assert matches[0][0].name != "c.mp4"  # too short for a window of 8


def test_batches_depend_on_the_seed_and_batch_number_only(folder):
    def batches(workers, count=3, start=None):
        clips = VideoFolderClips(folder, resize_to=32, crop_size=32, seed=7, workers=workers)
        if start is not None:
            clips.load_state_dict(start)
        drawn = [clips(torch.Generator().manual_seed(99 + i), 4, 4) for i in range(count)]
        state = clips.state_dict()
        clips.close()
        return drawn, state

    in_process, state = batches(0)
    assert state == {"batches": 3}
    with_workers, _ = batches(2)
    assert all(torch.equal(a, b) for a, b in zip(in_process, with_workers))
    # a resumed run draws on from where it was
    resumed, _ = batches(0, count=1, start={"batches": 2})
    assert torch.equal(resumed[0], in_process[2])
    other_seed = VideoFolderClips(folder, resize_to=32, crop_size=32, seed=8, workers=0)
    assert not torch.equal(other_seed(torch.Generator(), 4, 4), in_process[0])


def test_each_process_decodes_its_rows_of_the_same_batch(folder):
    whole = VideoFolderClips(folder, resize_to=32, crop_size=32, seed=1, workers=0)(torch.Generator(), 6, 4)
    first, second = (
        VideoFolderClips(folder, resize_to=32, crop_size=32, seed=1, workers=0)(
            torch.Generator(), 6, 4, part=(index, 2)
        )
        for index in range(2)
    )
    assert torch.equal(first, whole[0::2]) and torch.equal(second, whole[1::2])


def test_videos_are_resampled_to_the_critics_frame_rate(tmp_path):
    write_video(striped_video(16, 32, 32, 0), tmp_path / "fast.mp4", fps=16)
    clips = VideoFolderClips(tmp_path, resize_to=32, crop_size=32, fps=8, workers=0)
    assert clips.lengths == [8]
    window = clips(torch.Generator(), 1, 8)[0]  # the whole clip at 8 fps
    expected = torch.from_numpy(read_video(tmp_path / "fast.mp4", fps=8)[0]).permute(0, 3, 1, 2)
    assert torch.equal((window * 255).round(), (expected * 255).round())


def test_bad_folders_and_windows_are_refused(tmp_path, folder):
    with pytest.raises(FileNotFoundError, match="not found"):
        VideoFolderClips(tmp_path / "missing", resize_to=32, crop_size=32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no video files"):
        VideoFolderClips(tmp_path / "empty", resize_to=32, crop_size=32)
    clips = VideoFolderClips(folder, resize_to=32, crop_size=32, workers=0)
    with pytest.raises(ValueError, match="no video in the folder has 20 frames"):
        clips(torch.Generator(), 1, 20)
    with pytest.raises(ValueError, match="workers=-1"):
        VideoFolderClips(folder, resize_to=32, crop_size=32, workers=-1)


@pytest.mark.filterwarnings("ignore:.*relative=False")
def test_training_on_a_folder_it_cannot_use_is_refused_before_any_step(tmp_path, folder, checkpoint):
    with pytest.raises(FileNotFoundError, match="'toyworld' or a folder of videos"):
        train_critic(tmp_path / "a", data=str(tmp_path / "missing"), init=str(checkpoint), steps=1)
    with pytest.raises(FileNotFoundError, match="'toyworld' or a folder of videos"):
        calibrate_critic(str(checkpoint), tmp_path / "b", data=str(tmp_path / "missing"), steps=1)
    with pytest.raises(ValueError, match="no video in the folder has 20 frames.*shorter --window"):
        train_critic(tmp_path / "c", data=str(folder), init=str(checkpoint), steps=1, window=20, workers=0)
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny critic that resizes to 40 before its 32 px crop, scores with its own options and has a head."""
    directory = tmp_path_factory.mktemp("init") / "critic"
    model = tiny_vjepa2_model(seed=0)
    head = ExpectedErrorHead(model.config.hidden_size, 16)
    critic = VJEPA2Critic(model, resize_to=40, aggregate="max", top_fraction=0.25, expected_error_head=head)
    critic.with_options(relative=True).save_pretrained(directory)
    return directory


def test_fine_tuning_keeps_the_checkpoints_preprocessing_and_scoring(folder, checkpoint, tmp_path):
    with pytest.warns(UserWarning, match="relative=False"):
        summary = train_critic(
            tmp_path / "tuned",
            data=str(folder),
            init=str(checkpoint),
            steps=2,
            batch_size=2,
            show_progress=False,
        )
    assert summary["steps"] == 2
    saved = json.loads((tmp_path / "tuned" / "critic_config.json").read_text())
    original = json.loads((checkpoint / "critic_config.json").read_text())
    assert saved == {**original, "relative": False} and saved["resize_to"] == 40
    assert not (tmp_path / "tuned" / ERROR_HEAD_FILE).exists()
    tuned = VJEPA2Critic.from_pretrained(str(tmp_path / "tuned"))
    assert tuned.options.resize_to == 40 and tuned.crop_size == 32 and tuned.options.aggregate == "max"
    card = ModelCard.load(tmp_path / "tuned" / "README.md")  # the run writes its card
    assert card.data.library_name == "hybridgen"
    assert (
        f"`hybridgen train-critic` on {folder} from {checkpoint}: 2 steps of 2 8-frame windows" in card.text
    )
    assert "minutes of training (device cpu" in card.text and "resized to 40 px" in card.text
    # told otherwise, it changes what it was told and keeps the rest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        train_critic(
            tmp_path / "told",
            data=str(folder),
            init=str(checkpoint),
            steps=1,
            batch_size=2,
            scoring={"resize_to": 32, "aggregate": "mean"},
            show_progress=False,
        )
    told = VJEPA2Critic.from_pretrained(str(tmp_path / "told")).options
    assert (told.resize_to, told.aggregate, told.top_fraction) == (32, "mean", 0.25)
    with pytest.raises(TypeError, match="unknown scoring options"):
        train_critic(tmp_path / "bad", data=str(folder), scoring={"resize": 32}, show_progress=False)
    assert not (tmp_path / "bad").exists()


def test_a_batch_that_does_not_split_is_refused_before_any_work(folder, tmp_path):
    with pytest.raises(ValueError, match="split evenly into 1 process"):
        train_critic(
            tmp_path / "run",
            data=str(folder),
            batch_size=3,
            gradient_accumulation_steps=2,
            show_progress=False,
        )
    assert not (tmp_path / "run").exists()


def folder_trainer(folder, **options):
    config = CriticTrainingConfig(
        **{"steps": 3, "batch_size": 4, "warmup_steps": 1, "scoring": SCORING, "data": str(folder), **options}
    )
    clips = VideoFolderClips(folder, resize_to=32, crop_size=32, seed=0, workers=0)
    return CriticTrainer(tiny_vjepa2_model(seed=0), clips, config)


def test_accumulated_micro_batches_train_the_same_steps(folder, tmp_path):
    whole = folder_trainer(folder)
    whole.fit(tmp_path / "whole", show_progress=False)
    accumulated = folder_trainer(folder, gradient_accumulation_steps=2)
    accumulated.fit(tmp_path / "accumulated", show_progress=False)
    for (name, a), b in zip(whole.model.state_dict().items(), accumulated.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert [r["loss"] for r in whole.history] == pytest.approx(
        [r["loss"] for r in accumulated.history], rel=1e-4
    )


@pytest.mark.slow
def test_two_processes_train_and_resume_as_one_does(folder, checkpoint, tmp_path):
    """torchrun with two CPU processes (gloo): each takes half of every batch, and a run resumed for a third step
    ends with the weights of one process doing the same."""
    command = [
        "hybridgen.cli", "train-critic", "OUT", "--data", str(folder), "--init", str(checkpoint),
        "--batch-size", "4", "--checkpoint-every", "2", "--device", "cpu", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def run(prefix, output, steps):
        args = [*prefix, *(str(output) if part == "OUT" else part for part in command), "--steps", str(steps)]
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout[done.stdout.index("{") :])

    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone", "-m"]
    assert run(torchrun, tmp_path / "two", steps=2)["processes"] == 2
    assert run(torchrun, tmp_path / "two", steps=3)["resumed_from"] == 2
    for steps, resumed_from in ((2, 0), (3, 2)):
        assert run([sys.executable, "-m"], tmp_path / "one", steps=steps)["resumed_from"] == resumed_from
    one_weights = load_file(str(tmp_path / "one" / "model.safetensors"))
    two_weights = load_file(str(tmp_path / "two" / "model.safetensors"))
    for name, tensor in one_weights.items():
        assert torch.allclose(tensor, two_weights[name], atol=1e-5), name
    log = [json.loads(line) for line in (tmp_path / "two" / "training_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log] == [1, 2, 3]  # one log, written once
    state = json.loads((tmp_path / "two" / "checkpoint" / "trainer_state.json").read_text())
    assert state["machine"]["processes"] == 2
