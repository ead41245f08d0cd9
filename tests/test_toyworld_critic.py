"""The bundled toy-world critic: it resolves offline by name, is small, and has learned something."""

import json

import huggingface_hub.constants
import pytest
import torch
from transformers import VJEPA2Model

from hybridgen import VJEPA2Critic
from hybridgen.cli import main
from hybridgen.models import BUNDLED, WEIGHTS_DIR
from hybridgen.toyworld import make_clip
from hybridgen.toyworld.evaluation import VIOLATION_SCORING, evaluate_violations
from hybridgen.training.critic import ToyWorldClips
from hybridgen.training.error_head import CALIBRATION_SEED, fit_expected_error_head
from hybridgen.video import write_video

# held out from training (which never sees violations), tuning (2_000_000..) and the benchmark (1_000_000..)
TEST_SEED = 3_000_000


@pytest.fixture(scope="module")
def bundled_critic():
    return VJEPA2Critic.from_pretrained("toyworld", batch_size=32)


def surprises(critic):
    return lambda clips: [report.surprise for report in critic.score_batch(clips)]


def test_toyworld_resolves_to_the_bundled_weights_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert BUNDLED["toyworld"]["critic"] == WEIGHTS_DIR / "critic"
    critic = VJEPA2Critic.from_pretrained("toyworld")
    assert (critic.crop_size, critic.options.window, critic.options.context, critic.options.direction) == (
        64,
        8,
        4,
        "both",
    )
    size = sum(path.stat().st_size for path in (WEIGHTS_DIR / "critic").iterdir())
    assert size < 10 * 2**20
    assert (WEIGHTS_DIR / "critic" / "README.md").is_file()


def test_trained_critic_separates_violations_an_untrained_one_does_not(bundled_critic):
    kinds = ["teleport", "gravity_reversal", "colour_change"]
    trained = bundled_critic.with_options(**VIOLATION_SCORING)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = VJEPA2Critic(
            VJEPA2Model(trained.model.config), options=trained.options.replace(relative=False)
        )
    # the untrained critic is scored the same way, relative to a head fitted to it (briefly: it errs evenly)
    clips = ToyWorldClips(pool_size=64, size=64, seed=CALIBRATION_SEED)
    head, _ = fit_expected_error_head(untrained, clips, steps=40, batch_size=8, show_progress=False)
    untrained = untrained.with_options(**VIOLATION_SCORING, expected_error_head=head)
    trained_results = evaluate_violations(surprises(trained), kinds=kinds, num_pairs=10, seed=TEST_SEED)
    untrained_results = evaluate_violations(surprises(untrained), kinds=kinds, num_pairs=10, seed=TEST_SEED)
    trained_accuracy = sum(r.accuracy for r in trained_results.values()) / len(kinds)
    baseline = sum(r.accuracy for r in untrained_results.values()) / len(kinds)
    assert trained_accuracy >= 0.6
    assert trained_accuracy > baseline + 0.1


def test_cli_scores_with_the_toyworld_critic(tmp_path, capsys):
    path = write_video(make_clip(0)[0], tmp_path / "clip.mp4", fps=8)
    assert main(["score", str(path), "--critic", "toyworld", "--quiet", "--device", "cpu", "--json"]) == 0
    (default,) = json.loads(capsys.readouterr().out)
    assert main(["score", str(path), "--quiet", "--json"]) == 0  # no --critic: the bundled one
    assert json.loads(capsys.readouterr().out) == [default]
    assert (default["aggregate"], default["token_reduce"]) == ("mean", "mean")  # the bundled default
    argv = [
        "score",
        str(path),
        "--critic",
        "toyworld",
        "--json",
        "--top-fraction",
        "0.02",
        "--aggregate",
        "max",
        "--mirror",
    ]
    assert main(argv) == 0
    (violation,) = json.loads(capsys.readouterr().out)
    assert main([*argv, "--relative"]) == 0
    (relative,) = json.loads(capsys.readouterr().out)
    assert relative["relative"] and not violation["relative"]
    assert relative["surprise"] != violation["surprise"]
    assert (violation["aggregate"], violation["token_reduce"], violation["mirror"]) == (
        "max",
        "topk:0.02",
        True,
    )
    assert not default["mirror"]
    assert violation["surprise"] > default["surprise"]  # the worst tokens of the worst window


def test_model_card_counts_the_wall_time_of_every_resumed_run():
    from bundle_toyworld import training_time

    one_run = [{"step": 1, "seconds": 30.0}, {"step": 2, "seconds": 60.0}]
    assert training_time(one_run) == "1.0 minutes of wall time"
    resumed = one_run + [{"step": 3, "seconds": 40.0, "lr": 5e-4}, {"step": 4, "seconds": 120.0, "lr": 1e-5}]
    assert training_time(resumed) == (
        "3.0 minutes of wall time in 2 runs: steps 1-2 in 1.0 min, steps 3-4 in 2.0 min (resumed; lr restarting at 5.0e-04)"
    )


def test_the_bundled_expected_error_head_knows_where_the_critic_errs(bundled_critic):
    critic = bundled_critic
    assert critic.expected_error_head is not None and not critic.options.relative  # shipped, off by default
    clips = torch.stack([torch.from_numpy(make_clip(seed)[0][:8]) for seed in range(16)])  # (B, 8, H, W, 3)
    clips = clips.permute(0, 1, 4, 2, 3).float() / 255  # (B, W, 3, H, W)
    with torch.no_grad():
        prediction, target = critic.predict(critic.preprocess(clips), critic.options.context)
        errors = (prediction - target).abs().mean(-1).flatten()
        expected = critic.expected_error_head(prediction).flatten()
    assert torch.corrcoef(torch.stack([errors, expected]))[0, 1] > 0.7
