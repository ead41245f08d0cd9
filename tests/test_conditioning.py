"""Conditioned generation: every candidate conditioned on the same input, as a direct diffusers call would be."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import LTXImageToVideoPipeline

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.testing import tiny_pipeline, tiny_vjepa2_model

CALL = {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def image_to_video():
    """A tiny LTX image-to-video pipeline (the text-to-video components) under a tiny critic, and an image."""
    pipeline = LTXImageToVideoPipeline(**tiny_pipeline("ltx").components)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return HybridPipeline(pipeline, VJEPA2Critic(tiny_vjepa2_model())), image


def test_every_candidate_is_the_direct_call_with_the_same_image(image_to_video):
    pipe, image = image_to_video
    out = pipe(
        "a ball",
        image=image,
        num_candidates=3,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
        **CALL,
    )
    for seed, candidate in zip(out.seeds, out.candidates):  # one pipeline call made all three
        direct = pipe.pipeline(
            prompt="a ball",
            image=image,
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
            **CALL,
        ).frames[0]
        assert np.allclose(candidate, direct, atol=1e-5)


def test_strategies_that_cannot_follow_the_conditioned_denoising_are_refused_first(
    image_to_video, monkeypatch
):
    pipe, image = image_to_video
    monkeypatch.setattr(
        "hybridgen.pipelines.hybrid.search_candidates", lambda *a, **k: pytest.fail("started")
    )
    for strategy in ("search", "guidance"):
        with pytest.raises(ValueError, match="Use strategy='rerank'"):
            pipe("a ball", image=image, strategy=strategy, show_progress=False, **CALL)
