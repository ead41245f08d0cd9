"""Decode a pipeline's latents to frames, differentiably, the way that pipeline's own `__call__` does after its loop.

Search scores x̂0 estimates mid-denoising and guidance backpropagates the critic through the decoder, so both need
the decode step outside the pipeline call (which runs under `torch.no_grad()`). Each supported family's decode is
a few lines mirroring diffusers, using the pipeline's own helpers where it has them:

    Wan        (B, C, F', h, w)  ->  z / latents_std + latents_mean  ->  vae.decode
    LTX        (B, N, D) packed  ->  _unpack_latents, _denormalize_latents  ->  vae.decode(z, decode timestep 0)
    CogVideoX  (B, F', C, h, w)  ->  pipeline.decode_latents (permute, 1 / scaling_factor, vae.decode)

Output: `(B, F, 3, H, W)` float in [0, 1], the layout `VJEPA2Critic.surprise` takes.

LTX image-to-video keeps its conditioned first latent frame out of the scheduler's steps, so x̂0 as the scheduler
sees it covers the frames after it, unpacked: `whole_clip_clean_latents` puts the conditioned frame back (from the
loop's latents, where the pipeline keeps it clean) and packs the whole clip, and `conditioned_latents_mask` marks
that frame so guidance leaves it alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SUPPORTED = (
    "WanPipeline",
    "LTXPipeline",
    "CogVideoXPipeline",
    "WanImageToVideoPipeline",
    "LTXImageToVideoPipeline",
    "CogVideoXImageToVideoPipeline",
    "CogVideoXVideoToVideoPipeline",
)
# pipelines that keep a conditioned first latent frame out of the scheduler's steps: `scheduler.step` (and so x̂0)
# sees the latents after it, unpacked `(B, C, F' - 1, h, w)`
STEPS_AFTER_CONDITIONED_FRAME = ("LTXImageToVideoPipeline",)


def pipeline_family(pipeline) -> str:
    """ "wan", "ltx" or "cogvideox"; ValueError for a pipeline whose latents hybridgen cannot decode."""
    name = type(pipeline).__name__
    for family, prefix in (("wan", "Wan"), ("ltx", "LTX"), ("cogvideox", "CogVideoX")):
        if name.startswith(prefix):
            return family
    raise ValueError(
        f"decoding mid-denoising latents of {name} is not supported (supported: {', '.join(SUPPORTED)}); "
        "strategy='rerank' works with any text-to-video pipeline."
    )


def decode_latents(
    pipeline, latents: torch.Tensor, *, num_frames: int, height: int, width: int
) -> torch.Tensor:
    """Latents in the pipeline's loop layout -> frames `(B, F, 3, H, W)` in [0, 1], with gradients.

    `num_frames`, `height`, `width` are the call's pixel sizes (LTX needs them to unpack its token sequence).
    """
    family = pipeline_family(pipeline)
    vae = pipeline.vae
    z = latents.to(vae.dtype)
    if family == "wan":
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1).to(z)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1).to(z)
        video = vae.decode(z * std + mean, return_dict=False)[0]  # (B, 3, F, H, W) in [-1, 1]
    elif family == "ltx":
        z = pipeline._unpack_latents(
            z, *ltx_latent_grid(pipeline, num_frames, height, width), *ltx_patch_sizes(pipeline)
        )  # (B, C, F', h, w)
        z = pipeline._denormalize_latents(z, vae.latents_mean, vae.latents_std, vae.config.scaling_factor)
        timestep = (
            torch.zeros(len(z), device=z.device, dtype=z.dtype) if vae.config.timestep_conditioning else None
        )
        video = vae.decode(z, timestep, return_dict=False)[0]
    else:
        video = pipeline.decode_latents(z)  # (B, 3, F, H, W) in [-1, 1]
    video = (video.float().permute(0, 2, 1, 3, 4) + 1) / 2  # (B, F, 3, H, W)
    return video.clamp(0, 1)


def ltx_latent_grid(pipeline, num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Latent frames, height and width of an LTX clip of these pixel sizes."""
    return (
        (num_frames - 1) // pipeline.vae_temporal_compression_ratio + 1,
        height // pipeline.vae_spatial_compression_ratio,
        width // pipeline.vae_spatial_compression_ratio,
    )


def ltx_patch_sizes(pipeline) -> tuple[int, int]:
    """The transformer's spatial and temporal patch sizes, which LTX packs its latents by."""
    return pipeline.transformer_spatial_patch_size, pipeline.transformer_temporal_patch_size


def whole_clip_clean_latents(
    pipeline, clean: torch.Tensor, latents: torch.Tensor, *, num_frames: int, height: int, width: int
) -> torch.Tensor:
    """x̂0 of the whole clip in the pipeline's loop layout, as `decode_latents` takes it.

    `clean` is x̂0 as the scheduler's step saw it (`recording_clean_latents`); `latents` are the loop's latents of
    the same step, which hold any frame the pipeline keeps out of its steps. For LTX image-to-video that is the
    conditioned first latent frame: it is put back in front of `clean`, and the clip packed. Other pipelines step
    the whole clip: `clean` as it is.
    """
    if type(pipeline).__name__ not in STEPS_AFTER_CONDITIONED_FRAME:
        return clean
    grid, patches = ltx_latent_grid(pipeline, num_frames, height, width), ltx_patch_sizes(pipeline)
    conditioned = pipeline._unpack_latents(latents, *grid, *patches)[:, :, :1]  # (B, C, 1, h, w)
    return pipeline._pack_latents(torch.cat([conditioned.to(clean), clean], dim=2), *patches)


def conditioned_latents_mask(
    pipeline, latents: torch.Tensor, *, num_frames: int, height: int, width: int
) -> torch.Tensor | None:
    """1 at the entries of the loop's `latents` the pipeline never steps (LTX image-to-video's conditioned first
    latent frame), 0 elsewhere, shaped like one video's latents; None for pipelines that step all of them."""
    if type(pipeline).__name__ not in STEPS_AFTER_CONDITIONED_FRAME:
        return None
    (frames, h, w), (patch, patch_t) = (
        ltx_latent_grid(pipeline, num_frames, height, width),
        ltx_patch_sizes(pipeline),
    )
    mask = latents.new_zeros(1, latents.shape[-1] // (patch * patch * patch_t), frames, h, w)
    mask[:, :, 0] = 1
    return pipeline._pack_latents(mask, patch, patch_t)


def downscale_latents(
    pipeline, latents: torch.Tensor, scale: float, *, num_frames: int, height: int, width: int
) -> tuple[torch.Tensor, dict[str, int]]:
    """Latents in the pipeline's loop layout, area-averaged to `scale` of their height and width (differentiably),
    and the pixel sizes they then decode to (`downscaled_sizes`); `scale=1` gives them back unchanged.

    A VAE decodes latents of any spatial size, and a spatially averaged latent decodes to about the downscaled clip:
    guidance decodes x̂0 this way when its frames only have to reach the critic's crop (V-JEPA 2 sees 256 pixels).
    """
    sizes = {"num_frames": num_frames, "height": height, "width": width}
    if scale == 1:
        return latents, sizes
    family = pipeline_family(pipeline)
    if family == "ltx":
        grid, patches = ltx_latent_grid(pipeline, num_frames, height, width), ltx_patch_sizes(pipeline)
        video = pipeline._unpack_latents(latents, *grid, *patches)  # (B, C, F', h, w)
    elif family == "cogvideox":
        video = latents.permute(0, 2, 1, 3, 4)  # (B, C, F', h, w)
    else:
        video = latents  # (B, C, F', h, w)
    small = downscaled_sizes(pipeline, scale, **sizes)
    ratio = spatial_compression(pipeline)
    video = F.interpolate(
        video, size=(video.shape[2], small["height"] // ratio, small["width"] // ratio), mode="area"
    )
    if family == "ltx":
        return pipeline._pack_latents(video, *patches), small
    if family == "cogvideox":
        return video.permute(0, 2, 1, 3, 4), small
    return video, small


def downscaled_sizes(pipeline, scale: float, *, num_frames: int, height: int, width: int) -> dict[str, int]:
    """The pixel sizes `downscale_latents` decodes to: each latent side scaled and rounded to a multiple of the
    transformer's spatial patch (LTX packs by it), at least one patch, times the VAE's spatial compression."""
    ratio = spatial_compression(pipeline)
    patch = ltx_patch_sizes(pipeline)[0] if pipeline_family(pipeline) == "ltx" else 1
    small = [max(patch, round(side // ratio * scale / patch) * patch) * ratio for side in (height, width)]
    return {"num_frames": num_frames, "height": small[0], "width": small[1]}


def spatial_compression(pipeline) -> int:
    """Pixels per latent along height and width."""
    if pipeline_family(pipeline) == "ltx":
        return pipeline.vae_spatial_compression_ratio
    return pipeline.vae_scale_factor_spatial
