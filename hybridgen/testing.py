"""Tiny, random, deterministic *real* components for tests, the CPU example and benchmarks.

Nothing here is a mock: every object is a genuine ``diffusers`` / ``transformers`` class, built from a tiny config
with random weights, so code under test exercises the same call paths as with the released checkpoints. Everything
is built locally (no Hugging Face Hub access), in float32 and eval mode, and is a pure function of ``seed``; the
global torch RNG is left untouched.

Frame-count rules for ``num_frames`` (all three decode exactly ``num_frames`` frames when the rule holds):

- Wan: ``4k + 1`` (VAE temporal compression 4). Other values are rounded down to ``4k + 1`` with a warning.
- LTX: ``8k + 1`` (VAE temporal compression 8, as in the released LTX-Video VAE). Other values are not rejected
  and decode to ``8 * ((num_frames - 1) // 8) + 1`` frames. LTX also needs ``num_inference_steps >= 2``: with its
  Hub scheduler config (``shift_terminal=0.1``) one step gives NaN sigmas and an ``IndexError``.
- CogVideoX: ``8k + 1`` (9, 17, 25, ..., 49 as released). Latent frames are ``(num_frames - 1) // 4 + 1`` and the
  VAE decodes them in chunks of two, so an even latent count (``num_frames = 8k + 5``) yields ``num_frames + 3``.

Height and width must be multiples of 16 (VAE spatial compression 8 times transformer patch 2 for Wan and
CogVideoX; LTX has patch 1 but the same VAE factor 8). Latent shapes inside the denoising loop:
Wan ``(B, 16, F', H/8, W/8)``; LTX packed tokens ``(B, F' * H/8 * W/8, 8)``; CogVideoX ``(B, F', 4, H/8, W/8)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    CogVideoXDDIMScheduler,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    UniPCMultistepScheduler,
    WanPipeline,
    WanTransformer3DModel,
)
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import Unigram
from transformers import (
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
    UMT5Config,
    UMT5EncoderModel,
    VJEPA2Config,
    VJEPA2Model,
)

__all__ = [
    "TEXT_ENCODER_VARIANTS",
    "TINY_CALL_KWARGS",
    "TINY_VOCABULARY",
    "WAN_SCHEDULERS",
    "build_t5_tokenizer",
    "populate_hf_cache",
    "tiny_cogvideox_pipeline",
    "tiny_ltx_pipeline",
    "tiny_pipeline",
    "tiny_t5_encoder",
    "tiny_vjepa2_config",
    "tiny_vjepa2_model",
    "tiny_wan_pipeline",
]


def _seeded(seed: int, build):
    """Call ``build()`` in float32 with the torch RNG seeded to ``seed``; global RNG and default dtype are restored."""
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(torch.float32)
        try:
            return build()
        finally:
            torch.set_default_dtype(default_dtype)


# ----------------------------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------------------------

_T5_SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in every T5 tokenizer

TINY_VOCABULARY: tuple[str, ...] = (
    # articles, numbers, function words
    *("a", "an", "the", "one", "two", "three", "four", "and", "or", "of", "on", "in", "into", "onto", "off"),
    *("with", "from", "to", "at", "over", "under", "across", "is", "are", "it", "its", "then", "that"),
    # colours and looks
    *("red", "green", "blue", "yellow", "cyan", "magenta", "white", "black", "gray", "orange", "purple"),
    *("dark", "bright", "small", "large", "big", "tiny", "heavy", "light"),
    # objects and scenes
    *("ball", "balls", "cube", "cubes", "box", "block", "blocks", "sphere", "object", "objects", "glass"),
    *("floor", "ground", "table", "wall", "ramp", "background", "scene", "room", "water", "video", "camera"),
    # motion and physics
    *("bouncing", "bounces", "bounce", "falling", "falls", "fall", "rolling", "rolls", "roll", "sliding"),
    *("slides", "moving", "moves", "spinning", "colliding", "collide", "dropping", "dropped", "thrown"),
    *("stacked", "toppling", "left", "right", "up", "down", "slowly", "quickly", "fast", "slow"),
    *("gravity", "physics", "realistic", "static", "still", "shot", "high", "quality", "low", "blurry"),
)
_PUNCTUATION = (",", ".", "!", "?", ":", ";", "-", "'", '"', "(", ")")
_METASPACE = "\u2581"


def _lowercase_precompiled_charsmap() -> bytes:
    """SentencePiece ``precompiled_charsmap`` mapping ASCII ``A``-``Z`` to ``a``-``z``.

    T5 tokenizers normalise with a precompiled charsmap (a darts-clone double-array trie plus a table of
    replacement strings). ``T5TokenizerFast.from_pretrained`` rebuilds its backend from the vocabulary and keeps only
    this kind of normaliser, so lowercasing has to live here to survive a save/load round trip.
    """
    root_offset, leaf_offset = 64, 32  # children of the root at 64 ^ byte (1..26), their values at child ^ 32
    units = [0] * 256  # every node reachable from the root by one byte must be in range
    units[0] = root_offset << 10
    replacements = b""
    for upper in range(ord("A"), ord("Z") + 1):
        child = root_offset ^ upper
        units[child] = (leaf_offset << 10) | (1 << 8) | upper  # offset | has_leaf | label
        units[child ^ leaf_offset] = (1 << 31) | len(replacements)  # leaf: offset into the replacement table
        replacements += bytes([upper + 32, 0])
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + replacements


def build_t5_tokenizer(model_max_length: int = 512) -> T5TokenizerFast:
    """Build a tiny T5 tokenizer locally with the ``tokenizers`` library (no Hub download).

    Same structure as the released T5/UMT5 tokenizers: a Unigram model over ``"▁word"`` pieces, a precompiled
    charsmap normaliser (here: ASCII lowercasing), whitespace + metaspace pre-tokenisation and an ``</s>`` appended
    by the post-processor. ``<pad>`` is id 0, ``</s>`` id 1, ``<unk>`` id 2; words outside :data:`TINY_VOCABULARY`
    become a single ``<unk>``, punctuation attached to a word is split off. Round-trips through
    ``save_pretrained`` / ``T5TokenizerFast.from_pretrained`` / ``AutoTokenizer.from_pretrained``.
    """
    pieces = [(token, 0.0) for token in _T5_SPECIAL_TOKENS]
    pieces += [(_METASPACE + word, -5.0) for word in TINY_VOCABULARY]
    pieces += [(mark, -6.0) for mark in _PUNCTUATION]
    pieces += [(_METASPACE + mark, -6.0) for mark in _PUNCTUATION]

    backend = Tokenizer(Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.normalizer = normalizers.Precompiled(_lowercase_precompiled_charsmap())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True),
        ]
    )
    backend.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    backend.post_processor = processors.TemplateProcessing(
        single=["$A", "</s>"], pair=["$A", "</s>", "$B", "</s>"], special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_ids=0,
        model_max_length=model_max_length,
    )


TEXT_ENCODER_VARIANTS = ("t5", "umt5")


def tiny_t5_encoder(
    seed: int = 0, variant: str = "t5", d_model: int = 32
) -> T5EncoderModel | UMT5EncoderModel:
    """Tiny random text encoder for :func:`build_t5_tokenizer`'s vocabulary, output width ``d_model``.

    ``variant="t5"`` gives a ``T5EncoderModel`` (LTX, CogVideoX), ``"umt5"`` a ``UMT5EncoderModel`` (Wan).
    """
    shared = {
        "vocab_size": len(build_t5_tokenizer()),
        "d_model": d_model,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "relative_attention_max_distance": 32,
        "dropout_rate": 0.0,
        "feed_forward_proj": "gated-gelu",
        "is_encoder_decoder": False,
        "use_cache": False,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }
    if variant == "t5":
        model_class, config = T5EncoderModel, T5Config(**shared)
    elif variant == "umt5":
        model_class, config = UMT5EncoderModel, UMT5Config(**shared)
    else:
        raise ValueError(
            f"Unknown text encoder variant {variant!r}; expected one of {TEXT_ENCODER_VARIANTS}."
        )
    return _seeded(seed, lambda: model_class(config)).eval()


# ----------------------------------------------------------------------------------------------------------------
# V-JEPA 2
# ----------------------------------------------------------------------------------------------------------------

_TINY_VJEPA2_DEFAULTS = {
    "crop_size": 32,
    "patch_size": 8,
    "tubelet_size": 2,
    "frames_per_clip": 16,
    "hidden_size": 48,
    "num_attention_heads": 2,  # head dim 24 -> RoPE parts 8/8/8 (depth, height, width)
    "num_hidden_layers": 2,
    "mlp_ratio": 2.0,
    "num_pooler_layers": 1,
    "pred_hidden_size": 48,
    "pred_num_attention_heads": 2,
    "pred_num_hidden_layers": 2,
    "pred_num_mask_tokens": 10,
    "pred_mlp_ratio": 2.0,
}


def tiny_vjepa2_config(**overrides) -> VJEPA2Config:
    """Tiny ``VJEPA2Config`` (32 px crops, 8 px patches, tubelets of 2 frames, 48-wide encoder and predictor).

    ``overrides`` replace individual ``VJEPA2Config`` fields; unknown names raise ``TypeError`` (the config class
    itself would silently store them). Keep ``hidden_size / num_attention_heads`` (and the predictor's) a multiple
    of 6 so the 3-D RoPE splits each head into three equal even parts.
    """
    unknown = sorted(set(overrides) - set(VJEPA2Config().to_dict()))
    if unknown:
        raise TypeError(f"Unknown VJEPA2Config field(s): {unknown}")
    return VJEPA2Config(**{**_TINY_VJEPA2_DEFAULTS, **overrides})


def tiny_vjepa2_model(seed: int = 0, **config_overrides) -> VJEPA2Model:
    """Random ``VJEPA2Model`` (encoder + predictor) from :func:`tiny_vjepa2_config`, float32, eval mode.

    The same ``seed`` always gives identical weights; the global torch RNG is not advanced.
    """
    config = tiny_vjepa2_config(**config_overrides)
    return _seeded(seed, lambda: VJEPA2Model(config)).eval()


# ----------------------------------------------------------------------------------------------------------------
# Video pipelines
# ----------------------------------------------------------------------------------------------------------------

WAN_SCHEDULERS = ("flow_match_euler", "unipc")


def _finish(pipe: DiffusionPipeline) -> DiffusionPipeline:
    for component in pipe.components.values():
        if isinstance(component, torch.nn.Module):
            component.eval()  # built in float32 (torch's default dtype); no cast needed
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_wan_pipeline(seed: int = 0, scheduler: str = "flow_match_euler") -> WanPipeline:
    """Tiny random Wan 2.1 text-to-video pipeline (``WanTransformer3DModel`` + ``AutoencoderKLWan`` + T5).

    ``scheduler="flow_match_euler"`` gives ``FlowMatchEulerDiscreteScheduler(shift=3.0)`` (what diffusers' own tests
    use); ``scheduler="unipc"`` gives the ``UniPCMultistepScheduler`` flow-prediction config of the Wan Hub repos.
    Latents are ``(B, 16, (F - 1) // 4 + 1, H // 8, W // 8)``.
    """
    if scheduler == "flow_match_euler":
        noise_scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0)
    elif scheduler == "unipc":
        noise_scheduler = UniPCMultistepScheduler(
            prediction_type="flow_prediction",
            use_flow_sigmas=True,
            flow_shift=3.0,
            num_train_timesteps=1000,
            solver_order=2,
            solver_type="bh2",
            predict_x0=True,
            lower_order_final=True,
            final_sigmas_type="zero",
        )
    else:
        raise ValueError(f"Unknown Wan scheduler {scheduler!r}; expected one of {WAN_SCHEDULERS}.")

    vae = _seeded(
        seed,
        lambda: AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ),
    )
    transformer = _seeded(
        seed,
        lambda: WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=12,
            in_channels=16,
            out_channels=16,
            text_dim=32,
            freq_dim=32,
            ffn_dim=32,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=32,
        ),
    )
    pipe = WanPipeline(
        tokenizer=build_t5_tokenizer(),
        text_encoder=tiny_t5_encoder(seed, variant="umt5"),
        vae=vae,
        transformer=transformer,
        scheduler=noise_scheduler,
    )
    return _finish(pipe)


def tiny_ltx_pipeline(seed: int = 0) -> LTXPipeline:
    """Tiny random LTX-Video text-to-video pipeline (``LTXVideoTransformer3DModel`` + ``AutoencoderKLLTXVideo``).

    The VAE compresses 8x in time and space (the released VAE: 8x time, 32x space); the scheduler is
    ``FlowMatchEulerDiscreteScheduler`` with the Hub repo's resolution-dependent shift. Inside the denoising loop
    latents are packed tokens ``(B, F' * H' * W', 8)`` with ``F' = (F - 1) // 8 + 1``, ``H' = H // 8``.
    """
    vae = _seeded(
        seed,
        lambda: AutoencoderKLLTXVideo(
            latent_channels=8,
            block_out_channels=(8, 8, 8, 8),
            decoder_block_out_channels=(8, 8, 8, 8),
            layers_per_block=(1, 1, 1, 1, 1),
            decoder_layers_per_block=(1, 1, 1, 1, 1),
            spatio_temporal_scaling=(True, True, True, False),
            decoder_spatio_temporal_scaling=(True, True, True, False),
            decoder_inject_noise=(False, False, False, False, False),
            patch_size=1,
            patch_size_t=1,
            encoder_causal=True,
            decoder_causal=False,
        ),
    )
    transformer = _seeded(
        seed,
        lambda: LTXVideoTransformer3DModel(
            in_channels=8,
            out_channels=8,
            patch_size=1,
            patch_size_t=1,
            num_attention_heads=4,
            attention_head_dim=8,
            cross_attention_dim=32,
            num_layers=1,
            caption_channels=32,
        ),
    )
    noise_scheduler = FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_shift=0.95,
        max_shift=2.05,
        base_image_seq_len=1024,
        max_image_seq_len=4096,
        shift_terminal=0.1,
    )
    pipe = LTXPipeline(
        tokenizer=build_t5_tokenizer(),
        text_encoder=tiny_t5_encoder(seed),
        vae=vae,
        transformer=transformer,
        scheduler=noise_scheduler,
    )
    return _finish(pipe)


def tiny_cogvideox_pipeline(seed: int = 0) -> CogVideoXPipeline:
    """Tiny random CogVideoX text-to-video pipeline (``CogVideoXTransformer3DModel`` + ``AutoencoderKLCogVideoX``).

    The scheduler is ``CogVideoXDDIMScheduler`` with the CogVideoX-2b Hub config (v-prediction, zero-SNR, trailing
    spacing). Latents are ``(B, (F - 1) // 4 + 1, 4, H // 8, W // 8)`` (frames before channels). The transformer's
    text length is fixed: call with ``max_sequence_length=16``.
    """
    vae = _seeded(
        seed,
        lambda: AutoencoderKLCogVideoX(
            in_channels=3,
            out_channels=3,
            down_block_types=("CogVideoXDownBlock3D",) * 4,
            up_block_types=("CogVideoXUpBlock3D",) * 4,
            block_out_channels=(8, 8, 8, 8),
            latent_channels=4,
            layers_per_block=1,
            norm_num_groups=2,
            temporal_compression_ratio=4,
        ),
    )
    transformer = _seeded(
        seed,
        lambda: CogVideoXTransformer3DModel(
            num_attention_heads=4,
            attention_head_dim=8,
            in_channels=4,
            out_channels=4,
            time_embed_dim=2,
            text_embed_dim=32,
            num_layers=1,
            sample_width=4,
            sample_height=4,
            sample_frames=9,
            patch_size=2,
            temporal_compression_ratio=4,
            max_text_seq_length=16,
        ),
    )
    noise_scheduler = CogVideoXDDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=0,
        prediction_type="v_prediction",
        rescale_betas_zero_snr=True,
        snr_shift_scale=3.0,
        timestep_spacing="trailing",
    )
    pipe = CogVideoXPipeline(
        tokenizer=build_t5_tokenizer(),
        text_encoder=tiny_t5_encoder(seed),
        vae=vae,
        transformer=transformer,
        scheduler=noise_scheduler,
    )
    return _finish(pipe)


_TINY_PIPELINE_BUILDERS = {
    "wan": tiny_wan_pipeline,
    "ltx": tiny_ltx_pipeline,
    "cogvideox": tiny_cogvideox_pipeline,
}

TINY_CALL_KWARGS: dict[str, dict] = {
    "wan": {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2, "max_sequence_length": 16},
    "ltx": {"num_frames": 17, "height": 32, "width": 32, "num_inference_steps": 2, "max_sequence_length": 16},
    "cogvideox": {
        "num_frames": 17,
        "height": 32,
        "width": 32,
        "num_inference_steps": 2,
        "max_sequence_length": 16,
    },
}
"""Small valid call arguments per family: ``pipe(prompt=..., output_type="np", **TINY_CALL_KWARGS[family])``
returns ``.frames`` of shape ``(1, 17, 32, 32, 3)`` in ``[0, 1]``. Guidance scales are left at the pipeline defaults
(Wan 5.0, LTX 3.0, CogVideoX 6.0), so classifier-free guidance is exercised."""


def tiny_pipeline(family: str, seed: int = 0) -> DiffusionPipeline:
    """Build the tiny pipeline of ``family`` (``"wan"``, ``"ltx"`` or ``"cogvideox"``)."""
    try:
        build = _TINY_PIPELINE_BUILDERS[family]
    except KeyError:
        raise ValueError(
            f"Unknown pipeline family {family!r}; expected one of {sorted(_TINY_PIPELINE_BUILDERS)}."
        ) from None
    return build(seed=seed)


# ----------------------------------------------------------------------------------------------------------------
# Offline Hugging Face cache
# ----------------------------------------------------------------------------------------------------------------

_LFS_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".msgpack",
    ".h5",
    ".onnx",
    ".gguf",
    ".model",
)


def _file_digests(path: Path) -> tuple[str, str]:
    """Return ``(git blob sha1, sha256)`` of a file, read in chunks."""
    size = path.stat().st_size
    git_sha1 = hashlib.sha1(f"blob {size}\0".encode())
    sha256 = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            git_sha1.update(chunk)
            sha256.update(chunk)
    return git_sha1.hexdigest(), sha256.hexdigest()


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def populate_hf_cache(cache_dir: str | os.PathLike, repo_id: str, folder: str | os.PathLike) -> Path:
    """Copy a ``save_pretrained`` folder into the Hugging Face Hub cache layout as revision ``main`` of ``repo_id``.

    Writes ``models--{org}--{name}/`` with ``blobs/`` (named by sha256 for weight files, git sha1 otherwise, as the
    Hub does), ``snapshots/<commit>/`` (relative symlinks to the blobs, or copies where symlinks are unavailable),
    ``refs/main`` and the ``trees/<commit>.json`` listing that ``huggingface_hub`` >= 1.x caches and diffusers reads
    offline. The commit hash is derived from ``repo_id`` and the file contents, so it is deterministic. Returns the
    snapshot path.

    To load without network, make ``huggingface_hub`` offline *and* point it at the cache::

        import huggingface_hub.constants  # a lazy submodule: `import huggingface_hub` alone may not expose it

        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        VJEPA2Model.from_pretrained(repo_id, cache_dir=cache_dir)
        DiffusionPipeline.from_pretrained(repo_id, cache_dir=cache_dir)  # add local_files_only=True to skip warnings

    ``huggingface_hub`` reads the ``HF_HUB_OFFLINE`` environment variable once, at import, into that constant;
    transformers (via ``huggingface_hub.is_offline_mode()``) and diffusers (whose ``model_info`` call then raises
    ``OfflineModeIsEnabled`` and falls back to the cache) both consult the constant at call time, so patching it is
    enough in-process, and ``HF_HUB_OFFLINE=1`` in the environment of a fresh process works too. Instead of
    ``cache_dir=``, set ``HF_HUB_CACHE`` before import or patch ``huggingface_hub.constants.HF_HUB_CACHE``.
    """
    from huggingface_hub.utils import validate_repo_id

    validate_repo_id(repo_id)
    source = Path(folder)
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a directory written by save_pretrained")
    files = sorted(path for path in source.rglob("*") if path.is_file())
    if not files:
        raise FileNotFoundError(f"{source} contains no files")

    entries: dict[str, dict] = {}
    etags: dict[str, str] = {}
    commit = hashlib.sha1(repo_id.encode())
    for path in files:
        relative = path.relative_to(source).as_posix()
        git_sha1, sha256 = _file_digests(path)
        size = path.stat().st_size
        if relative.endswith(_LFS_SUFFIXES):
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
            entries[relative] = {
                "size": size,
                "blob_id": _git_blob_sha1(pointer.encode()),
                "lfs_sha256": sha256,
            }
            entries[relative]["lfs_size"] = size
            etags[relative] = sha256
        else:
            entries[relative] = {"size": size, "blob_id": git_sha1}
            etags[relative] = git_sha1
        commit.update(f"{relative}\0{etags[relative]}\0".encode())
    commit_hash = commit.hexdigest()

    repo_dir = Path(cache_dir) / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo_dir / "snapshots" / commit_hash
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    for path in files:
        relative = path.relative_to(source).as_posix()
        blob = repo_dir / "blobs" / etags[relative]
        if not blob.exists():
            shutil.copyfile(path, blob)
        target = snapshot / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink() or target.exists():
            target.unlink()
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:
            shutil.copyfile(blob, target)

    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(commit_hash)
    (repo_dir / "trees").mkdir(exist_ok=True)
    tree = {"format_version": 1, "files": entries}
    (repo_dir / "trees" / f"{commit_hash}.json").write_text(json.dumps(tree, indent=1, sort_keys=True))
    return snapshot
