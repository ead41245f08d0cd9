"""Memory controls: the generator offloaded to the CPU, VAE tiling and slicing, the critic on its own device."""

import warnings

import numpy as np
import pytest
import torch

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.cli import main
from hybridgen.pipelines.denoising import CleanLatents
from hybridgen.pipelines.guidance import GuidanceOptions, PhysicsGuidance
from hybridgen.pipelines.latents import (
    decode_latents,
    downscale_latents,
    ltx_latent_grid,
    ltx_patch_sizes,
    pipeline_family,
)
from hybridgen.testing import TINY_CALL_KWARGS, tiny_pipeline, tiny_vjepa2_model
from hybridgen.video import read_video

CALL = {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2, "show_progress": False}


def clip(pipe, strategy="rerank"):
    out = pipe(
        "a ball", num_candidates=2, strategy=strategy, generator=torch.Generator().manual_seed(0), **CALL
    )
    return out.video


def fresh_pipe():
    return HybridPipeline(tiny_pipeline("wan"), VJEPA2Critic(tiny_vjepa2_model()))


def test_model_offload_makes_the_same_clips_and_to_cannot_undo_it():
    plain = clip(fresh_pipe())
    pipe = fresh_pipe().enable_model_cpu_offload(device="cpu")  # on a GPU machine: the GPU (the default)
    assert pipe.offload == "model"
    assert np.array_equal(clip(pipe), plain)
    assert np.array_equal(clip(pipe, "guidance"), clip(fresh_pipe(), "guidance"))
    with pytest.raises(RuntimeError, match="would undo that"):
        pipe.to("cpu")
    pipe.critic.to("cpu")  # the critic alone still moves


def test_sequential_offload_to_the_cpu_itself_is_refused_with_the_reason():
    pipe = fresh_pipe()
    with pytest.raises(ValueError, match="nothing to offload to"):
        pipe.enable_sequential_cpu_offload(device="cpu")
    assert pipe.offload is None  # nothing was changed
    assert np.array_equal(clip(pipe), clip(fresh_pipe()))


def test_vae_tiling_and_slicing_are_switched_on_the_generators_vae():
    pipe = fresh_pipe().enable_vae_tiling().enable_vae_slicing()
    assert pipe.pipeline.vae.use_tiling and pipe.pipeline.vae.use_slicing
    assert np.allclose(clip(pipe), clip(fresh_pipe()), atol=1e-5)  # frames smaller than a tile: no seams
    pipe.pipeline.vae.enable_tiling = None  # a VAE without tiling
    with pytest.raises(ValueError, match="AutoencoderKLWan has no enable_tiling"):
        pipe.enable_vae_tiling()


def test_generate_takes_the_memory_options(saved_models, tmp_path):
    argv = ["generate", "a ball", "--generator", str(saved_models / "generator"), "--critic"]
    argv += [
        str(saved_models / "critic"),
        "--frames",
        "17",
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "2",
    ]
    argv += ["--candidates", "2", "--quiet", "--device", "cpu"]
    assert main([*argv, "-o", str(tmp_path / "plain.mp4")]) == 0
    memory = ["--offload", "model", "--vae-tiling", "--vae-slicing", "--critic-device", "cpu"]
    assert main([*argv, *memory, "-o", str(tmp_path / "saving.mp4")]) == 0
    plain, _ = read_video(tmp_path / "plain.mp4")
    saving, _ = read_video(tmp_path / "saving.mp4")
    assert np.array_equal(plain, saving)
    assert main([*argv, "--critic-device", "gpu", "-o", str(tmp_path / "x.mp4")]) == 2  # refused, one line


def test_a_released_size_denoiser_makes_one_video_a_call_by_default(critic, monkeypatch):
    from hybridgen.pipelines import hybrid

    pipe = HybridPipeline(tiny_pipeline("wan"), critic)
    assert hybrid.default_batch_size(pipe.pipeline) == hybrid.DEFAULT_BATCH_SIZE  # tiny: batched
    sizes = {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2, "show_progress": False}
    batched = pipe("a ball", num_candidates=3, generator=torch.Generator().manual_seed(1), **sizes)

    calls = []
    original_call = type(pipe.pipeline).__call__
    monkeypatch.setattr(
        type(pipe.pipeline),
        "__call__",
        lambda self, *args, **kwargs: (
            calls.append(len(kwargs["generator"])) or original_call(self, *args, **kwargs)
        ),
    )
    parameters = sum(p.numel() for p in pipe.pipeline.transformer.parameters())
    monkeypatch.setattr(
        hybrid, "LARGE_DENOISER_PARAMETERS", parameters - 1
    )  # this one now counts as released
    assert hybrid.default_batch_size(pipe.pipeline) == 1
    one_by_one = pipe("a ball", num_candidates=3, generator=torch.Generator().manual_seed(1), **sizes)
    assert calls == [1, 1, 1]
    assert one_by_one.seeds == batched.seeds
    for a, b in zip(one_by_one.candidates, batched.candidates):
        np.testing.assert_allclose(a, b, atol=1e-5)


# ------------------------------------------------------------------------------------------- guidance's memory
FAMILIES = ("wan", "ltx", "cogvideox")
SIZES = {"num_frames": 17, "height": 32, "width": 32}


def clean_latents(pipeline) -> torch.Tensor:
    """Final latents of a tiny call, in the pipeline's loop layout."""
    family = pipeline_family(pipeline)
    generator = torch.Generator().manual_seed(0)
    return pipeline(
        prompt="a ball", generator=generator, output_type="latent", **TINY_CALL_KWARGS[family]
    ).frames


@pytest.mark.parametrize("family", FAMILIES)
def test_downscaled_latents_are_area_averages_that_decode_to_smaller_frames(family):
    pipeline = tiny_pipeline(family)
    latents = clean_latents(pipeline)
    same, sizes = downscale_latents(pipeline, latents, 1.0, **SIZES)
    assert same is latents and sizes == SIZES
    small, sizes = downscale_latents(pipeline, latents, 0.5, **SIZES)
    assert (sizes["height"], sizes["width"]) == (16, 16) and sizes["num_frames"] == 17
    full = decode_latents(pipeline, latents, **SIZES)
    frames = decode_latents(pipeline, small, **sizes)
    assert frames.shape == (*full.shape[:3], 16, 16)
    if family == "ltx":  # packed: compare on the unpacked grid
        grid, patches = ltx_latent_grid(pipeline, **SIZES), ltx_patch_sizes(pipeline)
        latents = pipeline._unpack_latents(latents, *grid, *patches)
        small = pipeline._unpack_latents(small, *ltx_latent_grid(pipeline, **sizes), *patches)
    if family == "cogvideox":  # (B, F', C, h, w)
        latents, small = latents.transpose(1, 2), small.transpose(1, 2)
    torch.testing.assert_close(small, torch.nn.functional.avg_pool3d(latents, (1, 2, 2)))


@pytest.mark.parametrize("family", ("ltx", "cogvideox"))
def test_gradient_checkpointing_gives_the_same_push_and_is_switched_off_after(critic, family):
    pipeline = tiny_pipeline(family)
    latents = clean_latents(pipeline)

    def push(**options):
        guide = PhysicsGuidance(
            pipeline, critic, CleanLatents(), GuidanceOptions(**options), num_steps=2, sizes=SIZES
        )
        return guide.push(latents)

    plain, surprise = push()
    checkpointed, same_surprise = push(gradient_checkpointing=True)
    torch.testing.assert_close(checkpointed, plain)
    assert same_surprise == pytest.approx(surprise)
    assert not pipeline.vae.is_gradient_checkpointing
    with pytest.warns(UserWarning, match="decodes x̂0 at 16x16, smaller than the critic's 32-pixel crop"):
        smaller, _ = push(decode_scale=0.5)  # a push on every latent, from the smaller decode
    assert smaller.shape == plain.shape and torch.isfinite(smaller).all() and not torch.equal(smaller, plain)


def test_guidance_memory_options_are_checked_before_any_work(critic, monkeypatch):
    pipe = HybridPipeline(tiny_pipeline("wan"), critic)
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.generate_candidates", lambda *a, **k: pytest.fail("started")
    )
    with pytest.raises(ValueError, match="AutoencoderKLWan does not: decode_scale=0.5"):
        pipe("a ball", strategy="guidance", guidance=GuidanceOptions(gradient_checkpointing=True), **CALL)
    for scale in (0, 1.5, float("nan")):
        with pytest.raises(ValueError, match="decode_scale must be in"):
            GuidanceOptions(decode_scale=scale)


def test_guided_generation_with_a_smaller_decode(critic):
    pipe = HybridPipeline(tiny_pipeline("wan"), critic)
    with pytest.warns(UserWarning, match="smaller than the critic's 32-pixel crop") as caught:
        out = pipe(
            "a ball",
            num_candidates=2,
            strategy="guidance",
            guidance=GuidanceOptions(scale=0.5, decode_scale=0.5),
            generator=torch.Generator().manual_seed(0),
            **CALL,
        )
    assert caught[0].filename == __file__  # points at the call
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at full size: no warning
        pipe("a ball", strategy="guidance", num_candidates=1, **CALL)
    assert out.video.shape == (17, 32, 32, 3)  # the clip itself is decoded at full size
    assert [len(entry["surprise"]) for entry in out.guidance_history] == [2]  # step 0 of 2, both videos
    assert np.isfinite(out.surprises).all()


def test_generate_and_batch_take_the_guidance_memory_options(saved_models, tmp_path, monkeypatch):
    models = ["--generator", str(saved_models / "generator"), "--critic", str(saved_models / "critic")]
    small = ["--frames", "17", "--height", "32", "--width", "32", "--steps", "2", "--candidates", "2"]
    argv = [
        "generate",
        "a ball",
        *models,
        *small,
        "--quiet",
        "--device",
        "cpu",
        "-o",
        str(tmp_path / "a.mp4"),
    ]
    calls = []
    original = HybridPipeline.__call__
    monkeypatch.setattr(
        HybridPipeline, "__call__", lambda self, *a, **k: calls.append(k) or original(self, *a, **k)
    )
    assert main([*argv, "--strategy", "guidance", "--guidance-decode-scale", "0.5"]) == 0
    assert calls[-1]["guidance"] == GuidanceOptions(decode_scale=0.5)
    calls.clear()
    assert main([*argv, "--guidance-decode-scale", "0.5"]) == 2  # rerank: refused before loading
    assert main([*argv, "--strategy", "guidance", "--guidance-decode-scale", "2"]) == 2
    assert not calls
    items = tmp_path / "items.jsonl"
    items.write_text('{"prompt": "a ball", "strategy": "guidance"}\n{"prompt": "a ball"}\n')
    batch = ["batch", str(items), "-o", str(tmp_path / "out"), *models, *small, "--quiet", "--device", "cpu"]
    assert main([*batch, "--guidance-decode-scale", "0.5"]) == 0
    assert [k.get("guidance") for k in calls] == [GuidanceOptions(decode_scale=0.5), None]
