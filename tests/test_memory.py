"""Memory controls: the generator offloaded to the CPU, VAE tiling and slicing, the critic on its own device."""

import numpy as np
import pytest
import torch

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.cli import main
from hybridgen.testing import tiny_pipeline, tiny_vjepa2_model
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
