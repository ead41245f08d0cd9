"""HybridPipeline best-of-N on tiny random Wan, LTX and CogVideoX pipelines with a tiny random critic."""

import numpy as np
import pytest
import torch
from PIL import Image

from hybridgen import HybridPipeline
from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline
from hybridgen.video import read_video

FAMILIES = ("wan", "ltx", "cogvideox")


@pytest.fixture(scope="module")
def wan(critic):
    return HybridPipeline(tiny_pipeline("wan"), critic)


def generate(pipe, family="wan", num_candidates=3, seed=0, **options):
    kwargs = dict(TINY_CALL_KWARGS[family], **options)
    generator = torch.Generator().manual_seed(seed)
    return pipe(
        "a red ball bouncing",
        num_candidates=num_candidates,
        generator=generator,
        show_progress=False,
        **kwargs,
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_rerank_on_every_family(critic, family):
    out = generate(HybridPipeline(tiny_pipeline(family), critic), family)
    frames, height, width = (TINY_CALL_KWARGS[family][k] for k in ("num_frames", "height", "width"))
    assert len(out.candidates) == len(out.reports) == len(out.seeds) == 3
    for clip in out.candidates:
        assert clip.shape == (frames, height, width, 3) and clip.dtype == np.float32
        assert 0 <= clip.min() and clip.max() <= 1
    assert out.best_index == int(np.argmin(out.surprises))
    assert out.video is out.candidates[out.best_index]
    assert out.denoising_steps == 3 * TINY_CALL_KWARGS[family]["num_inference_steps"]
    assert len(set(out.seeds)) == 3
    assert not np.array_equal(out.candidates[0], out.candidates[1])  # different seeds, different clips


def test_same_seed_same_candidates_and_scores(wan):
    first, second = generate(wan), generate(wan)
    assert first.seeds == second.seeds
    for a, b in zip(first.candidates, second.candidates):
        np.testing.assert_array_equal(a, b)
    assert first.surprises == second.surprises
    assert generate(wan, seed=1).seeds != first.seeds


def test_candidate_does_not_depend_on_batch_size(wan):
    batched, one_by_one = generate(wan), generate(wan, batch_size=1)
    assert batched.seeds == one_by_one.seeds
    for a, b in zip(batched.candidates, one_by_one.candidates):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_reported_seed_regenerates_the_candidate(wan):
    out = generate(wan)
    generator = torch.Generator().manual_seed(out.seeds[2])
    again = wan.pipeline(
        "a red ball bouncing", generator=generator, output_type="np", **TINY_CALL_KWARGS["wan"]
    )
    np.testing.assert_allclose(again.frames[0], out.candidates[2], atol=1e-5)


def test_cogvideox_is_generated_one_video_per_call(critic):
    batch_sizes = []

    def record(pipe, step, timestep, callback_kwargs):
        batch_sizes.append(callback_kwargs["latents"].shape[0])
        return {}

    pipe = HybridPipeline(tiny_pipeline("cogvideox"), critic)
    out = generate(pipe, "cogvideox", num_candidates=2, callback_on_step_end=record)
    assert batch_sizes == [1, 1, 1, 1]  # two calls of one video, two steps each
    assert len(out.candidates) == 2 and out.denoising_steps == 4


def test_user_callback_is_chained(wan):
    seen = []

    def callback(pipe, step, timestep, callback_kwargs):
        seen.append(step)
        return {}

    out = generate(wan, num_candidates=2, callback_on_step_end=callback)
    assert seen == [0, 1]  # one batched call of 2 videos, 2 steps
    assert out.denoising_steps == 4


def test_save_writes_the_chosen_clip(wan, tmp_path):
    out = generate(wan, num_candidates=2)
    frames, fps = read_video(out.save(tmp_path / "best.mp4", fps=8))
    assert frames.shape == out.video.shape and fps == 8
    assert np.abs(frames - out.video).mean() < 0.1
    paths = out.save_candidates(tmp_path / "all")
    assert [p.name for p in paths] == ["candidate_0.mp4", "candidate_1.mp4"]
    with pytest.raises(ValueError, match="positive"):  # not silently the clips' own rate
        out.save(tmp_path / "zero.mp4", fps=0)
    report = out.to_dict()
    assert report["best_index"] == out.best_index and len(report["candidates"]) == 2


def test_contact_sheet_and_surprise_plot(wan, tmp_path):
    out = generate(wan, num_candidates=3)
    sheet = Image.open(out.save_contact_sheet(tmp_path / "sheet.png"))
    plot = Image.open(out.save_surprise_plot(tmp_path / "curves.png"))
    assert sheet.height > 3 * 32 and sheet.width > 32 and plot.width > 100
    assert out.candidate_labels()[1] == f"#1  surprise {out.surprises[1]:.4f}"


def test_call_defaults_are_checked_and_used(critic):
    with pytest.raises(TypeError, match="call_defaults: WanPipeline has no argument 'num_frame'"):
        HybridPipeline(tiny_pipeline("wan"), critic, call_defaults={"num_frame": 17})
    with pytest.raises(ValueError, match="fps must be positive"):
        HybridPipeline(tiny_pipeline("wan"), critic, fps=0)
    pipe = HybridPipeline(tiny_pipeline("wan"), critic, call_defaults=TINY_CALL_KWARGS["wan"], fps=8)
    out = pipe("a red ball bouncing", num_candidates=1, generator=torch.Generator().manual_seed(0))
    reference = generate(HybridPipeline(tiny_pipeline("wan"), critic), num_candidates=1)
    np.testing.assert_array_equal(out.video, reference.video)
    assert (out.fps, reference.fps) == (8, 16)


@pytest.mark.parametrize(
    ("prompt", "options", "error", "message"),
    [
        ("", {}, ValueError, "prompt is empty"),
        ("   ", {}, ValueError, "prompt is empty"),
        (None, {}, TypeError, "prompt must be a string"),
        ("a ball", {"num_candidates": 0}, ValueError, "num_candidates"),
        ("a ball", {"num_candidates": 2.5}, ValueError, "num_candidates"),
        ("a ball", {"strategy": "best"}, ValueError, "unknown strategy 'best'"),
        ("a ball", {"guidance_scal": 2.0}, TypeError, "no argument 'guidance_scal'"),
        ("a ball", {"output_type": "pil"}, TypeError, "set by HybridPipeline"),
        ("a ball", {"generator": [torch.Generator()]}, TypeError, "one torch.Generator"),
        ("a ball", {"batch_size": 0}, ValueError, "batch_size"),
        ("a ball", {"num_inference_steps": 0}, ValueError, "num_inference_steps must be an integer >= 1"),
        ("a ball", {"num_frames": 16.5}, ValueError, "num_frames must be an integer >= 1"),
        ("a ball", {"height": -32}, ValueError, "height must be an integer >= 1"),
    ],
)
def test_bad_input_gets_one_clear_error(wan, prompt, options, error, message):
    with pytest.raises(error, match=message):
        wan(prompt, show_progress=False, **options)


def test_clip_too_short_for_the_critic_is_refused_before_generating(wan):
    with pytest.raises(
        ValueError, match="num_frames=3 is too short for the critic, which needs clips of at least 4"
    ):
        generate(wan, num_candidates=1, num_frames=3)


def test_numpy_integers_are_integers(wan):
    out = generate(wan, num_candidates=np.int64(2), num_inference_steps=np.int64(2))
    assert len(out.candidates) == 2 and out.denoising_steps == 4


def test_pipeline_must_speak_the_text_to_video_contract(critic):
    with pytest.raises(TypeError, match="lacks"):
        HybridPipeline(lambda image: image, critic)
    with pytest.raises(TypeError, match="VJEPA2Critic"):
        HybridPipeline(tiny_pipeline("wan"), critic=object())


def test_show_progress_false_silences_the_pipelines_own_bar(critic, capsys):
    pipeline = tiny_pipeline("wan")
    pipeline.set_progress_bar_config(leave=False)  # enabled (tiny pipelines come disabled)
    generate(HybridPipeline(pipeline, critic), num_candidates=1)
    assert "it/s" not in capsys.readouterr().err
    assert pipeline._progress_bar_config == {"leave": False}  # the caller's setting is back
