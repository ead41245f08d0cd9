"""Conditioned generation: every candidate conditioned on the same input, as a direct diffusers call would be, with
every strategy; which frames the critic scores; the command line's --image and --video, and batch items'."""

import json
import shutil

import numpy as np
import PIL.Image
import pytest
import torch

from hybridgen import HybridPipeline
from hybridgen.cli import main
from hybridgen.jobs import read_items
from hybridgen.pipelines.conditioning import as_video_frames
from hybridgen.pipelines.denoising import recording_clean_latents
from hybridgen.pipelines.guidance import GuidanceOptions
from hybridgen.pipelines.latents import conditioned_latents_mask, whole_clip_clean_latents
from hybridgen.testing import (
    TINY_CALL_KWARGS,
    tiny_image_to_video_pipeline,
    tiny_pipeline,
    tiny_video_to_video_pipeline,
)
from hybridgen.video import read_video, write_video

CALL = {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2}
SIZES = {"num_frames": 17, "height": 32, "width": 32}
STEPS = 8
# the image-to-video pipelines, and how each is built: Wan 2.1 (a CLIP image embedding) and Wan 2.2 A14B (none)
IMAGE_TO_VIDEO = {
    "wan": ("wan", {}),
    "wan-without-image-encoder": ("wan", {"image_encoder": False}),
    "ltx": ("ltx", {}),
    "cogvideox": ("cogvideox", {}),
}
FAMILIES = ("wan", "ltx", "cogvideox")


@pytest.fixture(scope="module")
def image():
    return PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def clip():
    """A 17-frame random clip, float32 (T, H, W, 3), to condition video-to-video generation on."""
    return np.random.default_rng(1).random((17, 32, 32, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def image_pipes(critic):
    """Each tiny image-to-video pipeline of `IMAGE_TO_VIDEO` under the tiny critic."""
    return {
        name: HybridPipeline(tiny_image_to_video_pipeline(family, **options), critic)
        for name, (family, options) in IMAGE_TO_VIDEO.items()
    }


@pytest.fixture(scope="module")
def video_pipe(critic):
    """The tiny CogVideoX video-to-video pipeline under the tiny critic."""
    return HybridPipeline(tiny_video_to_video_pipeline(), critic)


@pytest.fixture(scope="module")
def image_to_video(image_pipes, image):
    """The tiny LTX image-to-video pipeline under the tiny critic, and an image."""
    return image_pipes["ltx"], image


def call_kwargs(name: str, steps: int = 2) -> dict:
    """Small call arguments for the pipeline of `IMAGE_TO_VIDEO[name]` (or "cogvideox-v2v": no num_frames)."""
    family = IMAGE_TO_VIDEO[name][0] if name in IMAGE_TO_VIDEO else "cogvideox"
    kwargs = dict(TINY_CALL_KWARGS[family], num_inference_steps=steps)
    if name == "cogvideox-v2v":
        del kwargs["num_frames"]  # as long as its video
    return kwargs


def generate(pipe, name, steps=2, seed=0, **options):
    options.setdefault("num_candidates", 3)
    return pipe(
        "a ball",
        generator=torch.Generator().manual_seed(seed),
        show_progress=False,
        **call_kwargs(name, steps),
        **options,
    )


def direct_clip(pipe, name, seed, steps=2, **conditioning):
    """The clip the plain diffusers call makes from `seed` and the same conditioning."""
    generator = torch.Generator().manual_seed(seed)
    kwargs = call_kwargs(name, steps)
    return pipe.pipeline(
        prompt="a ball", generator=generator, output_type="np", **kwargs, **conditioning
    ).frames[0]


# ------------------------------------------------------------------------------------------- image-to-video
@pytest.mark.parametrize("name", IMAGE_TO_VIDEO)
def test_every_candidate_is_the_direct_call_with_the_same_image(image_pipes, image, name):
    """LTX and Wan 2.2 make all three in one call (LTX with the image repeated per generator); Wan 2.1 one per call
    (its image embedding is repeated per prompt only); CogVideoX one per call."""
    pipe = image_pipes[name]
    out = generate(pipe, name, image=image)
    for seed, candidate in zip(out.seeds, out.candidates):
        np.testing.assert_allclose(candidate, direct_clip(pipe, name, seed, image=image), atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_clean_estimate_is_the_whole_conditioned_clip(image_pipes, image, family):
    """At the last step x̂0 is the final latents; LTX's x̂0 covers the frames after the conditioned one until that
    frame is put back."""
    pipeline = image_pipes[family].pipeline
    generator = torch.Generator().manual_seed(3)
    with recording_clean_latents(pipeline.scheduler) as record:
        final = pipeline(
            prompt="a ball",
            image=image,
            generator=generator,
            output_type="latent",
            **call_kwargs(family, STEPS),
        ).frames
    whole = whole_clip_clean_latents(pipeline, record.latents, final, **SIZES)
    torch.testing.assert_close(whole, final, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_search_survivors_are_the_conditioned_clips_of_their_seeds(image_pipes, image, family):
    pipe = image_pipes[family]
    out = generate(pipe, family, STEPS, num_candidates=4, strategy="search", image=image)
    assert out.denoising_steps == 4 * 2 + 2 * 2 + 1 * 4  # checkpoints at 25% and 50% of 8 steps
    assert [len(entry["seeds"]) for entry in out.search_history] == [4, 2]
    assert all(np.isfinite(entry["surprise"]).all() for entry in out.search_history)
    # the survivor, continued over three calls from its latents, is the clip of its seed conditioned on the image
    np.testing.assert_allclose(
        out.candidates[0], direct_clip(pipe, family, out.seeds[0], STEPS, image=image), atol=1e-5
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_guidance_conditions_every_candidate_on_the_image(image_pipes, image, family):
    """A vanishing push leaves each candidate the direct call's clip with the image; a real one changes them."""
    pipe = image_pipes[family]
    faint = generate(
        pipe, family, STEPS, strategy="guidance", guidance=GuidanceOptions(scale=1e-9), image=image
    )
    assert [entry["step"] for entry in faint.guidance_history][:3] == [0, 2, 4]
    for seed, candidate in zip(faint.seeds, faint.candidates):
        np.testing.assert_allclose(candidate, direct_clip(pipe, family, seed, STEPS, image=image), atol=1e-5)
    pushed = generate(
        pipe, family, STEPS, strategy="guidance", guidance=GuidanceOptions(scale=0.5), image=image
    )
    assert pushed.denoising_steps == 3 * STEPS
    assert all(np.abs(p - f).max() > 1e-3 for p, f in zip(pushed.candidates, faint.candidates))


def test_guidance_never_pushes_ltx_conditioned_frame(image_pipes, image):
    pipe = image_pipes["ltx"]
    seen = []

    def keep_latents(pipeline, step, timestep, callback_kwargs):
        seen.append(callback_kwargs["latents"].clone())  # after guidance's push
        return {}

    out = generate(
        pipe,
        "ltx",
        STEPS,
        num_candidates=1,
        strategy="guidance",
        guidance=GuidanceOptions(scale=0.5, every=1),
        image=image,
        callback_on_step_end=keep_latents,
        callback_on_step_end_tensor_inputs=["latents"],
    )
    assert len(out.guidance_history) == STEPS
    conditioned = conditioned_latents_mask(pipe.pipeline, seen[0], **SIZES).expand_as(seen[0]) == 1
    assert conditioned.sum() == seen[0].shape[-1] * 4 * 4  # the first latent frame: 4 x 4 tokens
    torch.testing.assert_close(seen[-1][conditioned], seen[0][conditioned], rtol=0, atol=0)
    assert (seen[-1][~conditioned] - seen[0][~conditioned]).abs().max() > 0.1


def test_score_given_frames_false_scores_the_generated_frames_alone(image_pipes, image, critic):
    pipe = image_pipes["ltx"]
    everything = generate(pipe, "ltx", image=image)  # the default: the given first frame is scored too
    generated = generate(pipe, "ltx", image=image, score_given_frames=False)
    np.testing.assert_array_equal(np.stack(everything.candidates), np.stack(generated.candidates))
    for clip, whole, alone in zip(everything.candidates, everything.reports, generated.reports):
        assert whole.surprise == pytest.approx(critic.score(clip).surprise, rel=1e-5)
        assert alone.surprise == pytest.approx(critic.score(clip[1:]).surprise, rel=1e-5)
        assert whole.frame_indices[0] == 0 and alone.frame_indices[0] == 1  # indices into the whole clip
    for strategy in ("search", "guidance"):  # x̂0 too is scored without the given frame
        out = generate(pipe, "ltx", 4, strategy=strategy, image=image, score_given_frames=False)
        assert all(report.frame_indices[0] == 1 for report in out.reports)


def test_too_few_generated_frames_to_score_is_refused_before_any_work(image_pipes, image, monkeypatch):
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.generate_candidates", lambda *a, **k: pytest.fail("started")
    )
    pipe = image_pipes["ltx"]
    with pytest.raises(ValueError, match="leaves 3 generated frames to score"):
        pipe("a ball", image=image, num_frames=4, score_given_frames=False, show_progress=False)
    with pytest.raises(TypeError, match="score_given_frames must be True or False"):
        pipe("a ball", image=image, score_given_frames="no", show_progress=False)


def test_conditioning_a_pipeline_cannot_take_or_follow_is_refused_first(critic, image, monkeypatch):
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.generate_candidates", lambda *a, **k: pytest.fail("started")
    )
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.search_candidates", lambda *a, **k: pytest.fail("started")
    )
    with pytest.raises(TypeError, match="image= needs a generator that takes an image; WanPipeline does not"):
        HybridPipeline(tiny_pipeline("wan"), critic)("a ball", image=image, show_progress=False)
    # Wan 2.2 TI2V blends its conditioned frame in inside the loop: x̂0 lacks it
    blended = HybridPipeline(
        tiny_image_to_video_pipeline("wan", image_encoder=False, expand_timesteps=True), critic
    )
    for strategy in ("search", "guidance"):
        with pytest.raises(ValueError, match="expand_timesteps.*Use strategy='rerank'"):
            blended("a ball", image=image, strategy=strategy, show_progress=False)
    monkeypatch.undo()  # rerank works
    out = generate(blended, "wan", num_candidates=1, image=image)
    np.testing.assert_allclose(out.video, direct_clip(blended, "wan", out.seeds[0], image=image), atol=1e-5)


# ------------------------------------------------------------------------------------------- video-to-video
def test_every_candidate_is_the_direct_call_with_the_same_video(video_pipe, clip):
    out = generate(video_pipe, "cogvideox-v2v", num_candidates=2, video=clip)
    frames = as_video_frames(clip)
    for seed, candidate in zip(out.seeds, out.candidates):
        assert candidate.shape == clip.shape  # as long as the video
        np.testing.assert_allclose(
            candidate, direct_clip(video_pipe, "cogvideox-v2v", seed, video=frames), atol=1e-5
        )
    # nothing of a video-to-video clip is given as it is: score_given_frames changes nothing
    alone = generate(video_pipe, "cogvideox-v2v", num_candidates=2, video=clip, score_given_frames=False)
    assert alone.surprises == out.surprises


def test_guidance_follows_video_to_video_over_the_steps_it_runs(video_pipe, clip):
    out = generate(video_pipe, "cogvideox-v2v", STEPS, num_candidates=2, strategy="guidance", video=clip)
    # strength 0.8 of 8 steps: the last 6 run, guided at every 2nd
    assert out.denoising_steps == 2 * 6
    assert [entry["step"] for entry in out.guidance_history] == [0, 2, 4] * 2


def test_search_follows_video_to_video_over_the_steps_it_runs(video_pipe, clip):
    out = generate(video_pipe, "cogvideox-v2v", STEPS, num_candidates=4, strategy="search", video=clip)
    # strength 0.8 of 8 steps: the last 6 run, scored at 25% and 50% of them (steps 2 and 3)
    assert [entry["step"] for entry in out.search_history] == [2, 3]
    assert out.denoising_steps == 4 * 2 + 2 * 1 + 1 * 3
    assert all(np.isfinite(entry["surprise"]).all() for entry in out.search_history)
    # the survivor, noised from the video in the first call and continued from its latents, is its seed's clip
    frames = as_video_frames(clip)
    np.testing.assert_allclose(
        out.video, direct_clip(video_pipe, "cogvideox-v2v", out.seeds[0], STEPS, video=frames), atol=1e-5
    )


def test_video_to_video_refusals_say_what_to_do_instead(video_pipe, clip, monkeypatch):
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.generate_candidates", lambda *a, **k: pytest.fail("started")
    )
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.search_candidates", lambda *a, **k: pytest.fail("started")
    )
    with pytest.raises(ValueError, match=r"num_frames=9, but .* as many frames as video= holds \(17\)"):
        generate(video_pipe, "cogvideox-v2v", video=clip, num_frames=9)
    with pytest.raises(ValueError, match="video= of 3 frames is too short for the critic"):
        generate(video_pipe, "cogvideox-v2v", video=clip[:3])
    with pytest.raises(ValueError, match="video has 4 dimensions|video must|channels"):
        generate(video_pipe, "cogvideox-v2v", video=clip[..., :2])


@pytest.fixture(scope="module")
def saved_image_to_video(image_to_video, tmp_path_factory):
    """The tiny LTX image-to-video pipeline and its critic saved as folders, and an image file."""
    pipe, image = image_to_video
    root = tmp_path_factory.mktemp("image-to-video")
    pipe.pipeline.save_pretrained(root / "generator")
    pipe.critic.save_pretrained(root / "critic")
    image.save(root / "first.png")
    return root


def test_generate_conditions_on_an_image_file(saved_image_to_video, saved_models, tmp_path, capsys):
    root = saved_image_to_video
    argv = ["generate", "a ball", "--frames", "17", "--height", "32", "--width", "32", "--steps", "2"]
    argv += ["--candidates", "2", "--quiet", "--device", "cpu", "-o", str(tmp_path / "out.mp4")]
    models = ["--generator", str(root / "generator"), "--critic", str(root / "critic")]
    report = ["--report", str(tmp_path / "report.json")]
    assert main([*argv, *models, "--image", str(root / "first.png"), *report, "--no-score-given-frames"]) == 0
    assert (tmp_path / "out.mp4").stat().st_size > 0
    scored = [
        c["num_frames_scored"] for c in json.loads((tmp_path / "report.json").read_text())["candidates"]
    ]
    assert scored == [16, 16]  # the given first frame left out
    (tmp_path / "out.mp4").unlink()
    for image, message in (
        (tmp_path / "missing.png", "image not found"),
        (root / "critic" / "config.json", "not an image"),
    ):
        assert (
            main([*argv, "--generator", "/no/such/model", "--image", str(image)]) == 2
        )  # before models load
        assert message in capsys.readouterr().err
    text_to_video = ["--generator", str(saved_models / "generator"), "--critic", str(saved_models / "critic")]
    assert main([*argv, *text_to_video, "--image", str(root / "first.png")]) == 2
    assert "--image needs a generator that takes an image; WanPipeline does not" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_batch_items_name_their_image_and_a_missing_one_fails_that_item_alone(saved_image_to_video, tmp_path):
    root = saved_image_to_video
    items = tmp_path / "items.jsonl"
    shutil.copy(root / "first.png", tmp_path / "first.png")
    items.write_text(
        json.dumps({"prompt": "a ball", "id": "good", "image": "first.png"})
        + "\n"
        + json.dumps({"prompt": "a ball", "id": "bad", "image": "missing.png"})
        + "\n"
    )
    assert read_items(items)[0].options["image"] == str(tmp_path / "first.png")  # relative to the items file
    argv = [
        "batch",
        str(items),
        "-o",
        str(tmp_path / "out"),
        "--generator",
        str(root / "generator"),
        "--critic",
    ]
    argv += [str(root / "critic"), "--frames", "17", "--height", "32", "--width", "32", "--steps", "2"]
    assert main([*argv, "--candidates", "2", "--quiet", "--device", "cpu"]) == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert "surprise" in rows[0] and "image not found" in rows[1]["error"]


# -------------------------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def saved_video_to_video(video_pipe, clip, tmp_path_factory):
    """The tiny CogVideoX video-to-video pipeline (with call defaults for its tiny sizes) and its critic saved as
    folders, and a 17-frame clip file."""
    root = tmp_path_factory.mktemp("video-to-video")
    video_pipe.pipeline.save_pretrained(root / "generator")
    defaults = {
        "pipeline_call": {"max_sequence_length": 16, "height": 32, "width": 32, "num_inference_steps": 2}
    }
    (root / "generator" / "call_defaults.json").write_text(json.dumps(defaults))
    video_pipe.critic.save_pretrained(root / "critic")
    write_video(clip, root / "clip.mp4", fps=8)
    return root


def test_generate_conditions_on_the_first_frames_of_a_video_file(saved_video_to_video, tmp_path, capsys):
    root = saved_video_to_video
    argv = [
        "generate",
        "a ball",
        "--candidates",
        "2",
        "--quiet",
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "out.mp4"),
    ]
    models = ["--generator", str(root / "generator"), "--critic", str(root / "critic")]
    assert main([*argv, *models, "--video", str(root / "clip.mp4"), "--frames", "9"]) == 0
    frames, _ = read_video(tmp_path / "out.mp4")
    assert len(frames) == 9  # the clip's first 9 frames, re-generated
    (tmp_path / "out.mp4").unlink()
    for video, frames, message in (
        (tmp_path / "missing.mp4", [], "video file not found"),
        (root / "critic" / "config.json", [], "could not decode video"),
        (root / "clip.mp4", ["--frames", "33"], "has 17 frames, fewer than the 33 asked for"),
    ):
        no_models = ["--generator", "/no/such/model"]
        assert main([*argv, *no_models, "--video", str(video), *frames]) == 2  # before models load
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_generate_refuses_a_video_for_a_generator_that_takes_none(
    saved_video_to_video, saved_models, tmp_path, capsys
):
    argv = [
        "generate",
        "a ball",
        "--frames",
        "17",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "2",
        "--quiet",
    ]
    argv += [
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "out.mp4"),
        "--video",
        str(saved_video_to_video / "clip.mp4"),
    ]
    models = ["--generator", str(saved_models / "generator"), "--critic", str(saved_models / "critic")]
    assert main([*argv, *models]) == 2
    assert "--video needs a generator that takes a video; WanPipeline does not" in capsys.readouterr().err
    assert not (tmp_path / "out.mp4").exists()


def test_batch_items_name_their_video_and_a_short_one_fails_that_item_alone(saved_video_to_video, tmp_path):
    root = saved_video_to_video
    shutil.copy(root / "clip.mp4", tmp_path / "clip.mp4")
    items = tmp_path / "items.csv"
    items.write_text("prompt,id,video,frames\na ball,good,clip.mp4,9\na ball,long,clip.mp4,33\n")
    assert read_items(items)[0].options["video"] == str(tmp_path / "clip.mp4")  # relative to the items file
    argv = ["batch", str(items), "-o", str(tmp_path / "out"), "--generator", str(root / "generator")]
    argv += ["--critic", str(root / "critic"), "--candidates", "2", "--quiet", "--device", "cpu"]
    assert main(argv) == 1
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert "surprise" in rows[0] and "has 17 frames, fewer than the 33 asked for" in rows[1]["error"]
    assert len(read_video(tmp_path / "out" / "good.mp4")[0]) == 9
