"""Tests for :mod:`hybridgen.testing` (tiny real components, offline Hub cache)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, UniPCMultistepScheduler, WanPipeline
from huggingface_hub import constants as hf_constants
from transformers import AutoTokenizer, T5TokenizerFast, UMT5EncoderModel, VJEPA2Model

from hybridgen.testing import (
    TINY_CALL_KWARGS,
    build_t5_tokenizer,
    populate_hf_cache,
    tiny_pipeline,
    tiny_vjepa2_config,
    tiny_vjepa2_model,
    tiny_wan_pipeline,
)

FAMILIES = ("wan", "ltx", "cogvideox")


def _generate(pipe, family: str, seed: int = 0, **overrides) -> np.ndarray:
    kwargs = {**TINY_CALL_KWARGS[family], **overrides}
    generator = torch.Generator().manual_seed(seed)
    return pipe(prompt="a red ball", generator=generator, output_type="np", **kwargs).frames


def _assert_same_weights(module_a: torch.nn.Module, module_b: torch.nn.Module) -> None:
    state_a, state_b = module_a.state_dict(), module_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name, tensor in state_a.items():
        assert torch.equal(tensor, state_b[name]), name


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------------------------


def test_tokenizer_special_ids_eos_and_padding():
    tokenizer = build_t5_tokenizer()
    assert isinstance(tokenizer, T5TokenizerFast)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)

    encoded = tokenizer(
        ["a red ball bouncing", "two blue balls falling"],
        padding="max_length",
        max_length=10,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    assert encoded.input_ids.shape == (2, 10)
    first = encoded.input_ids[0].tolist()
    assert first[4] == 1 and first[5:] == [0] * 5  # 4 words, </s>, then <pad>
    assert encoded.attention_mask[0].tolist() == [1] * 5 + [0] * 5
    assert tokenizer.unk_token_id not in first[:4]
    assert tokenizer.convert_ids_to_tokens(first[:4]) == [
        "\u2581a",
        "\u2581red",
        "\u2581ball",
        "\u2581bouncing",
    ]


def test_tokenizer_unknown_words_case_and_punctuation():
    tokenizer = build_t5_tokenizer()
    ids = tokenizer("A RED zebra, falling!").input_ids
    red, falling = tokenizer("red falling").input_ids[:2]
    comma, bang = tokenizer.convert_tokens_to_ids([",", "!"])
    assert ids == [tokenizer("a").input_ids[0], red, tokenizer.unk_token_id, comma, falling, bang, 1]
    assert tokenizer("a red ball").input_ids == tokenizer("A Red Ball").input_ids


def test_tokenizer_truncates_and_round_trips(tmp_path):
    tokenizer = build_t5_tokenizer()
    long_prompt = " ".join(["red"] * 40)
    encoded = tokenizer(long_prompt, padding="max_length", max_length=8, truncation=True, return_tensors="pt")
    assert encoded.input_ids.shape == (1, 8) and encoded.input_ids[0, -1].item() == 1

    tokenizer.save_pretrained(tmp_path)
    prompts = ["A red ball, bouncing off the wall!", "three zebras (unknown) falling"]
    expected = tokenizer(prompts, padding="max_length", max_length=16).input_ids
    for loader in (T5TokenizerFast, AutoTokenizer):
        reloaded = loader.from_pretrained(tmp_path)
        assert isinstance(reloaded, T5TokenizerFast)
        assert reloaded(prompts, padding="max_length", max_length=16).input_ids == expected
        assert reloaded.get_vocab() == tokenizer.get_vocab()


# ---------------------------------------------------------------------------------------------------------------
# V-JEPA 2
# ---------------------------------------------------------------------------------------------------------------


def test_tiny_vjepa2_is_deterministic_and_runs():
    state = torch.random.get_rng_state()
    model = tiny_vjepa2_model(seed=0)
    assert torch.equal(state, torch.random.get_rng_state()), "global RNG must not be disturbed"
    _assert_same_weights(model, tiny_vjepa2_model(seed=0))
    other = tiny_vjepa2_model(seed=1)
    assert not torch.equal(
        model.encoder.embeddings.patch_embeddings.proj.weight,
        other.encoder.embeddings.patch_embeddings.proj.weight,
    )
    assert not model.training and next(model.parameters()).dtype == torch.float32

    config = model.config
    video = torch.rand(2, config.frames_per_clip, 3, config.crop_size, config.crop_size)
    with torch.no_grad():
        output = model(pixel_values_videos=video)
    tokens = (config.frames_per_clip // config.tubelet_size) * (config.crop_size // config.patch_size) ** 2
    assert output.last_hidden_state.shape == (2, tokens, config.hidden_size)

    assert tiny_vjepa2_config(num_hidden_layers=1).num_hidden_layers == 1
    with pytest.raises(TypeError):
        tiny_vjepa2_config(num_hiden_layers=1)


# ---------------------------------------------------------------------------------------------------------------
# Pipelines
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_pipeline_runs_and_is_deterministic(family):
    frames = _generate(tiny_pipeline(family, seed=0), family)
    kwargs = TINY_CALL_KWARGS[family]
    assert frames.shape == (1, kwargs["num_frames"], kwargs["height"], kwargs["width"], 3)
    assert frames.dtype == np.float32 and frames.min() >= 0.0 and frames.max() <= 1.0
    np.testing.assert_array_equal(frames, _generate(tiny_pipeline(family, seed=0), family))
    assert not np.array_equal(frames, _generate(tiny_pipeline(family, seed=1), family))


@pytest.mark.parametrize("family", ["wan", "ltx"])
def test_num_videos_per_prompt(family):
    frames = _generate(tiny_pipeline(family), family, num_videos_per_prompt=2)
    kwargs = TINY_CALL_KWARGS[family]
    assert frames.shape == (2, kwargs["num_frames"], kwargs["height"], kwargs["width"], 3)


def test_cogvideox_batches_through_prompt_lists():
    # CogVideoXPipeline silently forces num_videos_per_prompt = 1; a list of prompts is the way to batch.
    pipe = tiny_pipeline("cogvideox")
    generators = [torch.Generator().manual_seed(seed) for seed in range(2)]
    frames = pipe(
        prompt=["a red ball"] * 2, generator=generators, output_type="np", **TINY_CALL_KWARGS["cogvideox"]
    )
    assert frames.frames.shape[0] == 2


def test_wan_unipc_scheduler_and_unknown_names():
    pipe = tiny_wan_pipeline(scheduler="unipc")
    assert isinstance(pipe.scheduler, UniPCMultistepScheduler)
    assert pipe.scheduler.config.prediction_type == "flow_prediction"
    assert _generate(pipe, "wan").shape[0] == 1
    with pytest.raises(ValueError, match="flow_match_euler"):
        tiny_wan_pipeline(scheduler="ddim")
    with pytest.raises(ValueError, match="cogvideox.*ltx.*wan"):
        tiny_pipeline("sora")


# ---------------------------------------------------------------------------------------------------------------
# Offline Hub cache
# ---------------------------------------------------------------------------------------------------------------


def test_populate_hf_cache_loads_offline(tmp_path, monkeypatch):
    critic = tiny_vjepa2_model(seed=3)
    pipe = tiny_wan_pipeline(seed=3)
    critic.save_pretrained(tmp_path / "critic")
    pipe.save_pretrained(tmp_path / "pipe")

    cache = tmp_path / "hub"
    critic_snapshot = populate_hf_cache(cache, "tiny-org/tiny-vjepa2", tmp_path / "critic")
    pipe_snapshot = populate_hf_cache(cache, "tiny-org/tiny-wan", tmp_path / "pipe")
    assert critic_snapshot.parent.parent.name == "models--tiny-org--tiny-vjepa2"
    assert len(critic_snapshot.name) == 40 and (critic_snapshot / "config.json").is_file()
    assert (pipe_snapshot / "model_index.json").is_file()
    assert populate_hf_cache(cache, "tiny-org/tiny-wan", tmp_path / "pipe") == pipe_snapshot  # idempotent

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads HF_HUB_OFFLINE once at import; transformers and diffusers consult this constant.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)

    loaded_critic = VJEPA2Model.from_pretrained("tiny-org/tiny-vjepa2", cache_dir=cache)
    _assert_same_weights(critic, loaded_critic)

    loaded_pipe = DiffusionPipeline.from_pretrained("tiny-org/tiny-wan", cache_dir=cache)
    assert isinstance(loaded_pipe, WanPipeline)
    assert isinstance(loaded_pipe.text_encoder, UMT5EncoderModel) and isinstance(
        loaded_pipe.tokenizer, T5TokenizerFast
    )
    for name in ("transformer", "vae", "text_encoder"):
        _assert_same_weights(getattr(pipe, name), getattr(loaded_pipe, name))
    loaded_pipe.set_progress_bar_config(disable=True)
    # Bitwise-equal weights can still differ by ~1 ulp in outputs: kernels depend on where tensors live in memory.
    np.testing.assert_allclose(_generate(pipe, "wan"), _generate(loaded_pipe, "wan"), atol=1e-6, rtol=0)

    with pytest.raises(OSError):
        VJEPA2Model.from_pretrained("tiny-org/not-cached", cache_dir=cache)
