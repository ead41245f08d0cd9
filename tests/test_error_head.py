"""The expected-error head and relative surprise: fitting, scoring, saving, loading and the CLI."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hybridgen import VJEPA2Critic
from hybridgen.cli import main
from hybridgen.critics.error_head import ERROR_HEAD_FILE, ExpectedErrorHead
from hybridgen.training.error_head import fit_expected_error_head


def plausible_windows(generator: torch.Generator, batch_size: int, window: int) -> torch.Tensor:
    """Smooth random clips: a bright square drifting at a constant velocity, `(B, W, 3, 32, 32)` in [0, 1]."""
    clips = torch.zeros(batch_size, window, 3, 32, 32)
    for b in range(batch_size):
        x, y, vx, vy = torch.randint(4, 20, (4,), generator=generator).tolist()
        for t in range(window):
            left, top = (x + t * (vx % 3)) % 26, (y + t * (vy % 3)) % 26
            clips[b, t, :, top : top + 6, left : left + 6] = 0.9
    return clips


@pytest.fixture(scope="module")
def critic(critic):
    """The shared tiny critic, scoring windows of 8 frames both ways."""
    return critic.with_options(window=8, context=4, direction="both")


@pytest.fixture(scope="module")
def fitted(critic):
    return fit_expected_error_head(critic, plausible_windows, steps=60, batch_size=8, show_progress=False)


def clip(seed=0, frames=16):
    generator = torch.Generator().manual_seed(seed)
    return plausible_windows(generator, 1, frames)[0].permute(0, 2, 3, 1).numpy()  # (T, H, W, 3)


@pytest.mark.slow
def test_the_fit_learns_the_size_of_the_error_and_leaves_the_critic_alone(critic, fitted):
    before = {name: value.clone() for name, value in critic.model.state_dict().items()}
    head, _ = fit_expected_error_head(critic, plausible_windows, steps=5, batch_size=4, show_progress=False)
    assert all(torch.equal(value, critic.model.state_dict()[name]) for name, value in before.items())
    assert not any(parameter.requires_grad for parameter in head.parameters())
    head, history = fitted
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        prediction, target = critic.predict(critic.preprocess(plausible_windows(generator, 16, 8)), 4)
        errors = (prediction - target).abs().mean(-1)  # (B, N)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the fit's own initialisation (seed 0)
            untrained = ExpectedErrorHead(critic.model.config.hidden_size)(prediction)
        expected = head(prediction)
    # a random tiny critic errs about equally everywhere: the head must at least learn how much
    assert abs(untrained.mean() / errors.mean() - 1) > 0.05  # -0.095 with this seed
    assert abs(expected.mean() / errors.mean() - 1) < 0.03
    assert np.mean([r["loss"] for r in history[-10:]]) < np.mean([r["loss"] for r in history[:3]])


def test_relative_scores_divide_each_token_error_by_the_expected_one(critic, fitted):
    head, _ = fitted
    relative = critic.with_options(expected_error_head=head, relative=True)
    video = clip(1)
    raw_report, report = critic.score(video), relative.score(video)
    frames = torch.from_numpy(video).permute(0, 3, 1, 2)
    with torch.no_grad():
        (outputs,) = critic.window_outputs([frames])
        expected = head(outputs.predictions).numpy().reshape(report.token_errors.shape)
    np.testing.assert_allclose(report.token_errors, raw_report.token_errors / expected, rtol=1e-5)
    assert report.options.relative and not raw_report.options.relative
    assert report.to_dict()["relative"] is True
    differentiable = relative.surprise(frames)
    assert differentiable.item() == pytest.approx(report.surprise, rel=1e-5)
    mirrored = relative.with_options(mirror=True)
    assert mirrored.score(video).surprise == pytest.approx(
        mirrored.score(np.ascontiguousarray(video[:, :, ::-1])).surprise, rel=1e-5
    )


def test_relative_without_a_head_or_with_the_wrong_one_is_refused(critic):
    with pytest.raises(ValueError, match="calibrate-critic"):
        critic.with_options(relative=True)
    with pytest.raises(ValueError, match="different critic"):
        critic.with_options(expected_error_head=ExpectedErrorHead(critic.model.config.hidden_size + 6))
    with pytest.raises(TypeError, match="ExpectedErrorHead"):
        critic.with_options(expected_error_head=torch.nn.Linear(48, 1))
    with pytest.raises(ValueError, match="True or False"):
        critic.with_options(relative="yes")


def test_save_and_load_keep_the_head_and_the_option(critic, fitted, tmp_path):
    head, _ = fitted
    relative = critic.with_options(expected_error_head=head, relative=True)
    relative.save_pretrained(tmp_path / "critic")
    assert (tmp_path / "critic" / ERROR_HEAD_FILE).is_file()
    assert not list((tmp_path / "critic").glob("*.tmp"))
    loaded = VJEPA2Critic.from_pretrained(str(tmp_path / "critic"))
    assert loaded.options.relative and loaded.expected_error_head is not None
    assert loaded.score(clip(2)).surprise == pytest.approx(relative.score(clip(2)).surprise, rel=1e-5)
    raw = VJEPA2Critic.from_pretrained(str(tmp_path / "critic"), relative=False)
    assert raw.score(clip(2)).surprise == pytest.approx(critic.score(clip(2)).surprise, rel=1e-5)
    critic.save_pretrained(tmp_path / "critic")  # over it, without a head: the old head goes
    assert VJEPA2Critic.from_pretrained(str(tmp_path / "critic")).expected_error_head is None
    save_file({"weight": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an expected-error head"):
        ExpectedErrorHead.load(tmp_path / "other.safetensors")


@pytest.mark.slow
def test_cli_calibrates_a_saved_critic(critic, tmp_path, capsys):
    critic.save_pretrained(tmp_path / "critic")
    # the tiny critic crops 32 px; the toy world renders at that size too
    argv = ["calibrate-critic", str(tmp_path / "critic"), "-o", str(tmp_path / "calibrated")]
    assert main([*argv, "--steps", "3", "--batch-size", "2", "--quiet", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    loaded = VJEPA2Critic.from_pretrained(str(tmp_path / "calibrated"), relative=True)
    assert np.isfinite(loaded.score(clip(3)).surprise)
    # in place, as `make toyworld-critic` does: the weights are rewritten unchanged, the head added
    weights = (tmp_path / "critic" / "model.safetensors").read_bytes()
    assert (
        main(["calibrate-critic", str(tmp_path / "critic"), "-o", str(tmp_path / "critic"), "--steps", "2"])
        == 0
    )
    assert (tmp_path / "critic" / "model.safetensors").read_bytes() == weights
    assert (tmp_path / "critic" / ERROR_HEAD_FILE).is_file()


def test_a_hub_checkpoint_brings_its_head_offline(critic, fitted, tmp_path, monkeypatch):
    import huggingface_hub.constants

    from hybridgen.testing import populate_hf_cache

    head, _ = fitted
    critic.with_options(expected_error_head=head).save_pretrained(tmp_path / "saved")
    populate_hf_cache(tmp_path / "cache", "org/calibrated-critic", tmp_path / "saved")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    loaded = VJEPA2Critic.from_pretrained(
        "org/calibrated-critic", cache_dir=str(tmp_path / "cache"), relative=True
    )
    reference = critic.with_options(expected_error_head=head, relative=True)
    assert loaded.score(clip(4)).surprise == pytest.approx(reference.score(clip(4)).surprise, rel=1e-5)
