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
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKLCogVideoX,
    AutoencoderKLLTXVideo,
    AutoencoderKLWan,
    CogVideoXDDIMScheduler,
    CogVideoXImageToVideoPipeline,
    CogVideoXPipeline,
    CogVideoXTransformer3DModel,
    CogVideoXVideoToVideoPipeline,
    DiffusionPipeline,
    FlowMatchEulerDiscreteScheduler,
    LTXImageToVideoPipeline,
    LTXPipeline,
    LTXVideoTransformer3DModel,
    UniPCMultistepScheduler,
    WanImageToVideoPipeline,
    WanPipeline,
    WanTransformer3DModel,
)
from transformers import CLIPVisionConfig, CLIPVisionModel, VJEPA2Config, VJEPA2Model

try:  # transformers 5: the PIL image processor, which needs no torchvision (the name diffusers saves it under)
    from transformers import CLIPImageProcessorPil as CLIPImageProcessor
except ImportError:
    from transformers import CLIPImageProcessor

from hybridgen.toyworld.text import (
    TEXT_ENCODER_VARIANTS,
    TINY_VOCABULARY,
    build_t5_tokenizer,
    seeded,
    tiny_t5_encoder,
)

__all__ = [
    "TEXT_ENCODER_VARIANTS",
    "TINY_CALL_KWARGS",
    "TINY_VOCABULARY",
    "WAN_SCHEDULERS",
    "build_t5_tokenizer",
    "populate_hf_cache",
    "tiny_cogvideox_pipeline",
    "tiny_image_to_video_pipeline",
    "tiny_ltx_pipeline",
    "tiny_pipeline",
    "tiny_t5_encoder",
    "tiny_vjepa2_config",
    "tiny_video_to_video_pipeline",
    "tiny_vjepa2_model",
    "tiny_wan_pipeline",
]


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
    return seeded(seed, lambda: VJEPA2Model(config)).eval()


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

    vae = seeded(
        seed,
        lambda: AutoencoderKLWan(
            base_dim=3,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ),
    )
    transformer = seeded(
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
    vae = seeded(
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
    transformer = seeded(
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
    vae = seeded(
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
    transformer = seeded(
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


IMAGE_TO_VIDEO_FAMILIES = ("wan", "ltx", "cogvideox")


def tiny_image_to_video_pipeline(
    family: str, seed: int = 0, *, image_encoder: bool = True, expand_timesteps: bool = False
) -> DiffusionPipeline:
    """The image-to-video pipeline of ``family`` on the components of :func:`tiny_pipeline` (``family``, ``seed``);
    call it with ``image=`` and ``TINY_CALL_KWARGS[family]``.

    - ``"wan"``: ``WanImageToVideoPipeline``. Its transformer takes the noisy latents concatenated on channels
      with the conditioning (4 mask channels + 16 latent channels: ``in_channels=36``) and, with
      ``image_encoder=True`` (Wan 2.1 I2V), a tiny random ``CLIPVisionModel``'s image embedding (16 px, 17 tokens);
      ``image_encoder=False`` is Wan 2.2 A14B I2V's layout (no image embedding). ``expand_timesteps=True`` is Wan
      2.2 TI2V's: the conditioned first latent frame is blended into the latents, ``in_channels=16``.
    - ``"ltx"``: ``LTXImageToVideoPipeline`` on the text-to-video components unchanged (the image is the first
      latent frame, kept out of the scheduler's steps).
    - ``"cogvideox"``: ``CogVideoXImageToVideoPipeline``: image latents concatenated on channels, ``in_channels=8``.
    """
    base = tiny_pipeline(family, seed=seed)
    components = dict(base.components)
    if family == "ltx":
        return _finish(LTXImageToVideoPipeline(**components))
    if family == "cogvideox":
        config = base.transformer.config
        components["transformer"] = seeded(
            seed, lambda: CogVideoXTransformer3DModel.from_config(config, in_channels=8)
        )
        return _finish(CogVideoXImageToVideoPipeline(**components))
    config = base.transformer.config
    transformer = seeded(
        seed,
        lambda: WanTransformer3DModel.from_config(
            config, in_channels=16 if expand_timesteps else 36, image_dim=4 if image_encoder else None
        ),
    )
    encoder = processor = None
    if image_encoder:
        vision = CLIPVisionConfig(
            hidden_size=4,
            projection_dim=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=16,
            intermediate_size=16,
            patch_size=4,
        )
        encoder = seeded(seed, lambda: CLIPVisionModel(vision))
        processor = CLIPImageProcessor(crop_size=16, size=16)
    pipe = WanImageToVideoPipeline(
        tokenizer=components["tokenizer"],
        text_encoder=components["text_encoder"],
        vae=components["vae"],
        scheduler=components["scheduler"],
        image_processor=processor,
        image_encoder=encoder,
        transformer=transformer,
        expand_timesteps=expand_timesteps,
    )
    return _finish(pipe)


def tiny_video_to_video_pipeline(seed: int = 0) -> CogVideoXVideoToVideoPipeline:
    """``CogVideoXVideoToVideoPipeline`` on the components of :func:`tiny_cogvideox_pipeline`: call it with
    ``video=`` (a list of PIL frames; the clip has as many frames, ``8k + 1`` as CogVideoX makes them) and
    ``TINY_CALL_KWARGS["cogvideox"]`` without ``num_frames``."""
    return _finish(CogVideoXVideoToVideoPipeline(**tiny_cogvideox_pipeline(seed).components))


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
