"""Loading models by local directory and by Hub id from a pre-populated cache, offline."""

import json

import huggingface_hub
import pytest
import torch

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.models import ModelNotFoundError
from hybridgen.testing import TINY_CALL_KWARGS, populate_hf_cache, tiny_pipeline, tiny_vjepa2_model

CRITIC_ID = "hybridgen-test/tiny-vjepa2"
GENERATOR_ID = "hybridgen-test/tiny-wan"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Tiny critic and Wan pipeline saved with save_pretrained, and a Hub cache holding both."""
    root = tmp_path_factory.mktemp("models")
    critic_dir, generator_dir, cache = root / "critic", root / "generator", root / "hub-cache"
    tiny_vjepa2_model(seed=3).save_pretrained(critic_dir)
    (critic_dir / "video_preprocessor_config.json").write_text(
        json.dumps({"size": {"shortest_edge": 36}, "image_mean": [0.5] * 3, "image_std": [0.25] * 3})
    )
    tiny_pipeline("wan").save_pretrained(generator_dir)
    call_defaults = {"fps": 8, "pipeline_call": TINY_CALL_KWARGS["wan"]}
    (generator_dir / "call_defaults.json").write_text(json.dumps(call_defaults))
    populate_hf_cache(cache, CRITIC_ID, critic_dir)
    populate_hf_cache(cache, GENERATOR_ID, generator_dir)
    return {"critic": critic_dir, "generator": generator_dir, "cache": cache}


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_critic_from_local_directory(saved):
    critic = VJEPA2Critic.from_pretrained(str(saved["critic"]), window=8)
    reference = tiny_vjepa2_model(seed=3)
    for name, weight in reference.state_dict().items():
        torch.testing.assert_close(critic.model.state_dict()[name], weight)
    assert critic.options.window == 8 and critic.options.context == 4
    # the checkpoint's video processor config sets the preprocessing
    assert critic.options.resize_to == 36
    assert critic.image_mean.flatten().tolist() == [0.5] * 3
    assert critic.image_std.flatten().tolist() == [0.25] * 3


def test_hub_ids_load_offline_from_the_cache(saved, offline):
    pipe = HybridPipeline.from_pretrained(GENERATOR_ID, critic=CRITIC_ID, cache_dir=str(saved["cache"]))
    assert type(pipe.pipeline).__name__ == "WanPipeline"
    assert pipe.critic.options.resize_to == 36
    out = pipe(
        "a red ball",
        num_candidates=2,
        generator=torch.Generator().manual_seed(0),
        show_progress=False,
        **TINY_CALL_KWARGS["wan"],
    )
    assert len(out.candidates) == 2


def test_a_hub_critic_cached_without_its_processor_config_warns(saved, offline, tmp_path):
    """The weights alone in the cache would score with other preprocessing than the checkpoint's: say so."""
    bare = tmp_path / "bare"
    tiny_vjepa2_model(seed=3).save_pretrained(bare)
    populate_hf_cache(tmp_path / "cache", "hybridgen-test/bare-vjepa2", bare)
    with pytest.warns(UserWarning, match="no video processor config in the Hugging Face cache"):
        critic = VJEPA2Critic.from_pretrained("hybridgen-test/bare-vjepa2", cache_dir=str(tmp_path / "cache"))
    assert critic.options.resize_to == critic.crop_size


@pytest.mark.parametrize("where", ["directory", "hub cache"])
def test_call_defaults_travel_with_the_generator(saved, offline, where):
    generator = str(saved["generator"]) if where == "directory" else GENERATOR_ID
    pipe = HybridPipeline.from_pretrained(
        generator, critic=str(saved["critic"]), cache_dir=str(saved["cache"])
    )
    assert pipe.call_defaults == TINY_CALL_KWARGS["wan"] and pipe.fps == 8
    out = pipe("a red ball", num_candidates=1, show_progress=False)  # no sizes: the checkpoint's defaults
    assert out.video.shape == (17, 32, 32, 3) and out.denoising_steps == 2 and out.fps == 8
    longer = pipe("a red ball", num_candidates=1, num_frames=21, show_progress=False)  # explicit wins
    assert longer.video.shape == (21, 32, 32, 3)


def test_a_hub_generator_needs_a_critic(saved):
    with pytest.raises(ValueError, match="no critic given"):
        HybridPipeline.from_pretrained(str(saved["generator"]))


def test_torch_dtype_is_forwarded(saved):
    critic = VJEPA2Critic.from_pretrained(str(saved["critic"]), torch_dtype=torch.bfloat16)
    assert critic.dtype == torch.bfloat16
    report = critic.score(torch.rand(8, 3, 32, 32))
    assert report.token_errors.dtype.name == "float32"


@pytest.mark.parametrize("path", ["/no/such/critic", "./no-such-critic", "runs/no/such-critic"])
def test_a_missing_directory_is_named_as_such(path):
    with pytest.raises(ModelNotFoundError, match=f"the critic directory '{path}' does not exist"):
        VJEPA2Critic.from_pretrained(path)
    with pytest.raises(ModelNotFoundError, match="generator directory"):
        HybridPipeline.from_pretrained(path, critic="toyworld")


def test_dtype_and_device_are_checked_before_loading():
    with pytest.raises(
        TypeError, match="torch_dtype must be a torch.dtype such as torch.bfloat16, got 'float16'"
    ):
        HybridPipeline.from_pretrained("toyworld", torch_dtype="float16")
    with pytest.raises(TypeError, match="critic_torch_dtype"):
        HybridPipeline.from_pretrained("toyworld", critic_torch_dtype="bfloat16")
    with pytest.raises(ValueError, match="device='gpu' is not a torch device"):
        VJEPA2Critic.from_pretrained("toyworld", device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            VJEPA2Critic.from_pretrained("toyworld", device="cuda")


def test_unknown_hub_id_offline(saved, offline):
    with pytest.raises(
        ModelNotFoundError, match=r"nor in the Hugging Face cache \(HF_HUB_OFFLINE=1 is set\)"
    ) as error:
        VJEPA2Critic.from_pretrained("hybridgen-test/does-not-exist", cache_dir=str(saved["cache"]))
    assert "\n" not in str(error.value)  # one line, whatever the libraries' own messages span
    with pytest.raises(ModelNotFoundError, match="video pipeline"):
        HybridPipeline.from_pretrained(
            "hybridgen-test/does-not-exist", critic=CRITIC_ID, cache_dir=str(saved["cache"])
        )


def test_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="not a saved V-JEPA 2 model"):
        VJEPA2Critic.from_pretrained(str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="not a saved diffusers pipeline"):
        HybridPipeline.from_pretrained(str(tmp_path), critic=CRITIC_ID)


def test_empty_model_id():
    with pytest.raises(ModelNotFoundError, match="non-empty"):
        VJEPA2Critic.from_pretrained("")


def test_critic_save_pretrained_keeps_its_scoring_options(tmp_path):
    critic = VJEPA2Critic(
        tiny_vjepa2_model(seed=1),
        window=8,
        context=4,
        stride=2,
        direction="both",
        top_fraction=0.2,
        shifts=[(0, 2), (2, 2)],
    )
    critic.save_pretrained(tmp_path / "critic")
    loaded = VJEPA2Critic.from_pretrained(str(tmp_path / "critic"))
    assert loaded.options == critic.options
    clip = torch.rand(12, 3, 32, 32)
    assert loaded.score(clip).surprise == pytest.approx(critic.score(clip).surprise, rel=1e-6)
    overridden = VJEPA2Critic.from_pretrained(str(tmp_path / "critic"), direction="forward", stride=4)
    assert (overridden.options.direction, overridden.options.stride, overridden.options.window) == (
        "forward",
        4,
        8,
    )
