"""The toy-world generator trainer (VAE, then Wan transformer), for a few steps on tiny architectures."""

import json
import os
import re

import numpy as np
import pytest
import torch
from bundle_toyworld import run_generator_card
from diffusers import AutoencoderKLWan, DiffusionPipeline, WanPipeline
from huggingface_hub import ModelCard

from hybridgen import cli
from hybridgen.toyworld.selection import best_of_n_table
from hybridgen.training.core import MIXED_PRECISIONS, TrainingRun
from hybridgen.training.generator import (
    GeneratorTrainer,
    GeneratorTrainingConfig,
    decode_unclamped,
    render_clips,
    sample_sigmas,
    train_generator,
)
from hybridgen.video import read_video

pytestmark = pytest.mark.slow  # the edit-run loop skips these: pytest -m "not slow"

TINY_VAE = {
    "base_dim": 8,
    "z_dim": 4,
    "dim_mult": [1, 2, 2],
    "num_res_blocks": 1,
    "temperal_downsample": [True, True],
    "is_residual": True,
    "patch_size": 2,
    "in_channels": 12,
    "out_channels": 12,
    "scale_factor_spatial": 8,
    "scale_factor_temporal": 4,
}
TINY_TRANSFORMER = {
    "patch_size": [1, 1, 1],
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "ffn_dim": 32,
    "num_layers": 2,
    "freq_dim": 16,
    "rope_max_seq_len": 32,
}
TINY = {
    "num_clips": 12,
    "vae_batch_size": 2,
    "vae_frames": 5,
    "eval_clips": 2,
    "batch_size": 8,
    "lr": 3e-3,
    "warmup_steps": 2,
    "vae": TINY_VAE,
    "transformer": TINY_TRANSFORMER,
}


def tiny_config(**options) -> GeneratorTrainingConfig:
    return GeneratorTrainingConfig(**{**TINY, "vae_steps": 4, "steps": 6, **options})


class Interrupt(Exception):
    pass


def interrupt_after(trainer: GeneratorTrainer, method: str, calls: int) -> None:
    """Make `trainer.<method>` raise on its `calls + 1`-th call, as if the process was killed."""
    original, count = getattr(trainer, method), [0]

    def wrapped():
        count[0] += 1
        if count[0] > calls:
            raise Interrupt
        return original()

    setattr(trainer, method, wrapped)


def test_losses_fall_and_the_saved_pipeline_generates(tmp_path):
    summary = train_generator(
        tmp_path / "run", vae_steps=15, steps=40, checkpoint_every=20, show_progress=False, **TINY
    )
    log = [json.loads(line) for line in (tmp_path / "run" / "training_log.jsonl").read_text().splitlines()]
    vae = [row["loss"] for row in log if row["stage"] == "vae"]
    transformer = [row["loss"] for row in log if row["stage"] == "transformer"]
    assert len(vae) == 15 and len(transformer) == 40 and summary["steps"] == 40
    assert np.mean(vae[-3:]) < np.mean(vae[:3])
    assert np.mean(transformer[-5:]) < 0.8 * np.mean(transformer[:5])
    assert set(summary["reconstruction"]) == {"psnr", "mae", "ball_mae"}
    card = ModelCard.load(tmp_path / "run" / "README.md")  # written by the run itself
    assert card.data.library_name == "diffusers" and card.data.pipeline_tag == "text-to-video"
    assert "the VAE 15 steps" in card.text and "transformer (flow matching, EMA" in card.text
    assert "minutes of training (device cpu" in card.text

    pipe = DiffusionPipeline.from_pretrained(str(tmp_path / "run"))
    assert isinstance(pipe, WanPipeline) and isinstance(pipe.vae, AutoencoderKLWan)
    assert not list((tmp_path / "run").glob("*/*.bin"))  # safetensors only
    # the per-channel latent statistics travel in the VAE config, where WanPipeline reads them to decode
    assert pipe.vae.config.latents_std != [1.0] * TINY_VAE["z_dim"]
    steps = []
    video = pipe(
        "a red ball bouncing",
        num_frames=17,
        height=32,
        width=32,
        num_inference_steps=3,
        generator=torch.Generator().manual_seed(0),
        output_type="np",
        callback_on_step_end=lambda pipe, i, t, kwargs: steps.append(i) or {},
    ).frames
    assert video.shape == (1, 17, 32, 32, 3) and 0 <= video.min() and video.max() <= 1
    assert steps == [0, 1, 2]
    latents = pipe(
        "two blue balls falling",
        num_frames=17,
        height=32,
        width=32,
        num_inference_steps=2,
        output_type="latent",
    ).frames
    assert latents.shape == (1, TINY_VAE["z_dim"], 5, 4, 4)  # 17 frames, 4x in time -> 5 latent frames

    # the model card reads the run: recipe, latent compression, and the benchmark's table when given one
    rows = best_of_n_table([[3.0, 1.0, 2.0, 0.5]], [[0.9, 0.1, 0.5, 0.4]], [1, 2])
    results = {
        "groups": 1,
        "max_candidates": 4,
        "critic": "toyworld",
        "scoring": {"aggregate": "mean"},
        "best_of_n": rows,
        "prompt_following": {"count": 0.5, "colour": 1},
    }
    card = str(run_generator_card(tmp_path / "run", [results]))
    assert "compresses 8x in space and 4x in time, with 4 channels" in card
    assert "Stage 1, VAE: 15 steps" in card and "Stage 2, transformer: 40 steps" in card
    assert 'critic `toyworld` scoring {"aggregate": "mean"}' in card
    assert "| 2 | 0.2500 | 0.4750 |" in card  # best of {0.9, 0.1} and {0.5, 0.4} by surprise: 0.1 and 0.4
    assert f"at {torch.get_num_threads()} torch threads on a {os.cpu_count()}-core CPU" in card  # as recorded


def test_interrupted_runs_resume_to_the_same_weights(tmp_path):
    straight = GeneratorTrainer(tiny_config(checkpoint_every=2))
    straight.fit(tmp_path / "straight", show_progress=False)

    first = GeneratorTrainer(tiny_config(checkpoint_every=2))
    interrupt_after(first, "vae_train_step", 3)  # killed in stage 1, after the checkpoint at VAE step 2
    with pytest.raises(Interrupt):
        first.fit(tmp_path / "resumed", show_progress=False)
    second = GeneratorTrainer(tiny_config(checkpoint_every=2))
    interrupt_after(second, "train_step", 5)  # killed in stage 2, after the checkpoint at step 4
    with pytest.raises(Interrupt):
        second.fit(tmp_path / "resumed", show_progress=False)
    assert second.vae_step == 4
    third = GeneratorTrainer(tiny_config(checkpoint_every=2))
    third.fit(tmp_path / "resumed", show_progress=False)
    assert (third.vae_step, third.step) == (4, 6)

    for name, expected, actual in (
        ("vae", straight.vae, third.vae),
        ("ema", straight.ema_transformer(), third.ema_transformer()),
    ):
        expected, actual = expected.state_dict(), actual.state_dict()
        for key in expected:
            torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0, msg=f"{name}.{key}")
    assert [r.get("loss") for r in third.history] == [r.get("loss") for r in straight.history]
    assert [r.get("lr") for r in third.history] == [r.get("lr") for r in straight.history]
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "trainer_state.json").read_text())
    assert state["machine"]["device"] == "cpu" and state["machine"]["mixed_precision"] == "no"


def test_a_time_budget_stops_in_either_stage_and_the_next_runs_go_on(tmp_path, monkeypatch):
    straight = GeneratorTrainer(tiny_config(checkpoint_every=5))
    straight.fit(tmp_path / "straight", show_progress=False)

    first = GeneratorTrainer(tiny_config(checkpoint_every=5))
    monkeypatch.setattr(TrainingRun, "time_is_up", lambda run: first.vae_step >= 2)
    assert (
        first.fit(tmp_path / "run", show_progress=False, max_minutes=1) is None
    )  # in stage 1: no pipeline yet
    assert not (tmp_path / "run" / "model_index.json").exists()
    second = GeneratorTrainer(tiny_config(checkpoint_every=5))
    monkeypatch.setattr(TrainingRun, "time_is_up", lambda run: second.step >= 3)
    pipe = second.fit(tmp_path / "run", show_progress=False, max_minutes=1)  # in stage 2: what it has, saved
    assert (second.vae_step, second.step) == (4, 3)
    assert isinstance(WanPipeline.from_pretrained(str(tmp_path / "run")), WanPipeline) and pipe is not None
    assert "stopped by its time budget after 3 of the 6 steps" in (tmp_path / "run" / "README.md").read_text()
    monkeypatch.undo()
    third = GeneratorTrainer(tiny_config(checkpoint_every=5))
    third.fit(tmp_path / "run", show_progress=False)
    assert (third.vae_step, third.step) == (4, 6)
    for key, expected in straight.ema_transformer().state_dict().items():
        torch.testing.assert_close(
            third.ema_transformer().state_dict()[key], expected, rtol=0, atol=0, msg=key
        )


def test_the_shipped_transformer_is_the_ema_by_diffusers_rule(tmp_path):
    """The EMA after n updates follows `EMAModel`'s decay: 0 at the first (a copy), then min(ema_decay,
    (1 + k) / (10 + k)) at the (k+1)-th; `ema_decay=0` ships the trained weights themselves."""
    trainer = GeneratorTrainer(tiny_config(vae_steps=1, steps=4, ema_decay=0.3))
    snapshots, train_step = [], trainer.train_step

    def step_and_snapshot():
        record = train_step()
        snapshots.append([p.detach().clone() for p in trainer.transformer.parameters()])
        return record

    trainer.train_step = step_and_snapshot
    trainer.fit(tmp_path / "run", show_progress=False)
    expected = [p.clone() for p in snapshots[0]]
    for k, weights in enumerate(snapshots[1:], start=1):
        decay = min(0.3, (1 + k) / (10 + k))  # 0.18, 0.25, then 0.3 (the cap)
        expected = [decay * e + (1 - decay) * w for e, w in zip(expected, weights)]
    for e, actual in zip(expected, trainer.ema_transformer().parameters()):
        torch.testing.assert_close(actual, e)
    shipped = WanPipeline.from_pretrained(str(tmp_path / "run")).transformer
    for e, actual in zip(expected, shipped.parameters()):
        torch.testing.assert_close(actual, e)
    raw = GeneratorTrainer(tiny_config(vae_steps=1, steps=2, ema_decay=0.0))
    raw.fit(tmp_path / "raw", show_progress=False)
    for e, actual in zip(raw.transformer.parameters(), raw.ema_transformer().parameters()):
        torch.testing.assert_close(actual, e)


def test_resume_refuses_another_architecture(tmp_path):
    GeneratorTrainer(tiny_config(steps=1, vae_steps=1)).fit(tmp_path / "run", show_progress=False)
    other = GeneratorTrainer(tiny_config(transformer={**TINY_TRANSFORMER, "num_layers": 1}))
    with pytest.raises(ValueError, match="was trained with transformer=.*'num_layers': 2"):
        other.fit(tmp_path / "run", show_progress=False)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("lr", 1e-3),
        ("batch_size", 4),
        ("num_clips", 10),
        ("seed", 1),
        ("vae_lr", 1e-3),
        ("kl_weight", 0.0),
        ("vae", {**TINY_VAE, "base_dim": 4}),
    ],
)
def test_resume_refuses_other_training_settings(tmp_path, name, value):
    GeneratorTrainer(tiny_config(steps=1, vae_steps=1)).fit(tmp_path / "run", show_progress=False)
    saved = getattr(tiny_config(), name)
    expected = (
        re.escape(f"was trained with {name}={saved!r}; this run asks {name}={value!r}: ") + ".*--no-resume"
    )
    with pytest.raises(ValueError, match=expected):
        GeneratorTrainer(tiny_config(steps=2, vae_steps=1, **{name: value})).fit(
            tmp_path / "run", show_progress=False
        )
    fresh = GeneratorTrainer(tiny_config(steps=2, vae_steps=1, **{name: value}))
    fresh.fit(tmp_path / "run", resume=False, show_progress=False)  # starting over is the user's call
    assert (fresh.vae_step, fresh.step) == (1, 2)


def test_resume_accepts_more_steps_and_other_checkpoint_periods(tmp_path):
    GeneratorTrainer(tiny_config(steps=2, vae_steps=2)).fit(tmp_path / "run", show_progress=False)
    more = tiny_config(steps=3, vae_steps=3, checkpoint_every=7, eval_clips=1, sample_steps=5)
    resumed = GeneratorTrainer(more)
    resumed.fit(tmp_path / "run", show_progress=False)
    assert (resumed.vae_step, resumed.step) == (2, 3)  # a finished VAE stage is not resumed


def test_unclamped_decode_matches_the_vae():
    vae = GeneratorTrainer(tiny_config()).vae.eval()
    z = 3 * torch.randn(2, TINY_VAE["z_dim"], 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = decode_unclamped(vae, z)
        torch.testing.assert_close(raw.clamp(-1, 1), vae.decode(z).sample)
    assert raw.shape == (2, 3, 9, 32, 32)


def test_schedules_and_validation():
    config = GeneratorTrainingConfig(flow_shift=3.0)
    sigmas = sample_sigmas(torch.Generator().manual_seed(0), 4096, config)
    assert 0 < sigmas.min() and sigmas.max() < 1 and sigmas.mean() > 0.6  # the shift favours high noise
    # both stages' schedules: the transformer's warm-up and cosine, the VAE's cosine to a tenth of its peak
    trainer = GeneratorTrainer(tiny_config(vae_steps=100, steps=100, warmup_steps=10, lr=1e-3, min_lr=1e-5))

    def lr_at(optimizer, step):
        return optimizer.scheduler.base_lrs[0] * optimizer.scheduler.lr_lambdas[0](step)

    assert trainer.optimizer.lr == 0 and lr_at(trainer.optimizer, 5) == pytest.approx(5e-4)
    assert lr_at(trainer.optimizer, 10) == pytest.approx(1e-3) and lr_at(
        trainer.optimizer, 100
    ) == pytest.approx(1e-5)
    vae_lr = trainer.config.vae_lr
    assert lr_at(trainer.vae_optimizer, 10) == pytest.approx(
        vae_lr
    )  # warm-up: min(50, vae_steps // 10) steps
    assert lr_at(trainer.vae_optimizer, 100) == pytest.approx(vae_lr / 10)
    with pytest.raises(ValueError, match="needs a CUDA device; this run trains on cpu"):
        GeneratorTrainer(tiny_config(), mixed_precision="bf16")
    with pytest.raises(ValueError, match="mixed_precision='fp16' must be one of"):
        GeneratorTrainer(tiny_config(), mixed_precision="fp16")
    with pytest.raises(ValueError, match="4k \\+ 1"):
        GeneratorTrainingConfig(num_frames=16)
    with pytest.raises(ValueError, match="multiple of 8"):
        GeneratorTrainingConfig(size=36)
    with pytest.raises(TypeError):
        train_generator("unused", vae_step=3)  # a typo is an error, not ignored


def test_cli(tmp_path, capsys):
    parser = cli.build_parser()
    args = parser.parse_args(
        ["train-generator", str(tmp_path / "run"), "--num-clips", "4", "--vae-steps", "1", "--steps", "1"]
        + ["--batch-size", "2", "--threads", "1", "--device", "cpu", "--quiet"]
    )
    assert args.mixed_precision == "no"
    assert cli.run_train_generator(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 1 and summary["vae_steps"] == 1
    assert (tmp_path / "run" / "model_index.json").is_file()
    assert cli.MIXED_PRECISIONS == MIXED_PRECISIONS  # the CLI spells out the core's list
    assert (
        parser.parse_args(["train-generator", "out", "--mixed-precision", "bf16"]).mixed_precision == "bf16"
    )


def test_reconstructions_keep_the_clip_in_the_generators_look(tmp_path):
    from vae_reconstructions import write_reconstructions

    from hybridgen.models import load_video_pipeline
    from hybridgen.training.generator import reconstruct

    frames, _ = render_clips(2, 0, size=32, num_frames=17, fps=8.0)
    vae = load_video_pipeline("toyworld").vae
    rebuilt = reconstruct(vae, frames)  # (2, 17, 32, 32, 3) in [0, 1]
    assert rebuilt.shape == (2, 17, 32, 32, 3)
    assert np.abs(rebuilt - frames / 255).mean() < 0.08  # the bundled VAE keeps the scene
    assert write_reconstructions(tmp_path / "clips", num_clips=3, batch_size=2, show_progress=False) == 3
    written = sorted(p.name for p in (tmp_path / "clips").iterdir())
    assert written == ["clip_00000.mp4", "clip_00001.mp4", "clip_00002.mp4"]
    assert read_video(tmp_path / "clips" / written[0])[0].shape == (17, 32, 32, 3)
