"""Train a tiny text-to-video `WanPipeline` on the toy world: "a red ball bouncing", "two blue balls falling", ...

Every part is a standard diffusers / transformers class, so the result loads with `DiffusionPipeline.from_pretrained`
and is called like any Wan checkpoint. Two stages, on toy-world clips of 17 frames at 32x32:

    stage 1 (VAE)          x in [-1, 1], (B, 3, F, 32, 32), random windows of F frames
                           z    = vae.encode(x).latent_dist.sample()                # (B, 16, (F-1)/4+1, 4, 4)
                           loss = L1 + MSE (ball pixels weighted up) + kl_weight * KL  (per-element means)
    between                z0 = (mode latent - mean) / std per channel, over all clips; mean/std go into the VAE
                           config (`latents_mean` / `latents_std`), which WanPipeline undoes before decoding
    stage 2 (transformer)  text encoder and VAE frozen; caption embeddings precomputed by the pipeline itself
                           sigma = shift * u / (1 + (shift - 1) * u),  u = sigmoid(N(logit_mean, logit_std))
                           x_t  = (1 - sigma) * z0 + sigma * noise                  # (B, 16, 5, 4, 4)
                           loss = MSE(transformer(x_t, 1000 * sigma, text), noise - z0)
                           the caption is replaced by the empty prompt with probability `caption_dropout` (CFG)
    both stages            AdamW, lr: linear warm-up from 0, then cosine (the training core's `ScheduledAdamW`)

The VAE is a Wan 2.2-style `AutoencoderKLWan` (`patch_size=2`, `is_residual=True`) with three levels instead of
four: 8x in space, 4x in time, so 32x32 gives a 4x4 latent grid and the transformer (patch 1x1x1) sees
5 x 4 x 4 = 80 tokens. The text encoder is a tiny random UMT5 that stays frozen: a random encoder still gives each
caption a distinct embedding sequence. The shipped transformer is an EMA of the trained one, kept by diffusers'
`EMAModel`: decay 0 at its first update (the EMA starts as the weights after one step), then
`min(ema_decay, (1 + k) / (10 + k))` after k earlier updates. The loop, checkpoints and resume are the training
core's `ResumableTrainer`: checkpoints in `output_dir/checkpoint` make every stage resumable: weights and latents in
safetensors, the rest of the trainer's state (optimisers, schedules, the EMA weights) in JSON + safetensors
(`hybridgen.training.state`), so that resuming never unpickles anything. A resume must ask for the settings the
checkpoint was trained with, except `RESUMABLE_CHANGES`.

It trains on any `device`: the models and each batch live there, while the rendered clips, latents and caption
embeddings stay on the CPU (moved a batch at a time) and every random draw comes from a CPU `torch.Generator`, so the
same seed draws the same batches and noise on any device. `mixed_precision="bf16"` runs the forward passes under
bf16 autocast, on CUDA only.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file

from hybridgen.hub import CARD_FILE, generator_card
from hybridgen.models import CALL_DEFAULTS_FILE
from hybridgen.pipelines.limits import check_finite_numbers
from hybridgen.toyworld.text import build_t5_tokenizer, tiny_t5_encoder
from hybridgen.training.checkpoints import check_output_dir, reading_checkpoint_file
from hybridgen.training.core import (
    ResumableTrainer,
    ScheduledAdamW,
    autocast,
    check_max_minutes,
    check_mixed_precision,
    random_mirror,
    stopped_note,
)
from hybridgen.video import write_json_atomic

# seeds of the held-out clips that measure reconstruction; training clips start at `config.seed`
EVAL_SEED = 900_000
# settings a resumed run may change: how long each stage trains (a finished VAE stage is never resumed, so more
# `vae_steps` then have no effect), how often it checkpoints, the held-out clips measured once after stage 1 and
# the sampling defaults written at the end; every other one changes what a step computes (`check_same_settings`)
RESUMABLE_CHANGES = (
    "steps",
    "vae_steps",
    "checkpoint_every",
    "eval_clips",
    "sample_steps",
    "sample_guidance_scale",
)


def default_vae_config() -> dict:
    """`AutoencoderKLWan` arguments: 8x spatial / 4x temporal compression, 16 latent channels, ~0.7M parameters.

    `patch_size=2` folds 2x2 pixel patches into 12 channels before the encoder (as the Wan 2.2 VAE does), so the
    convolutions run at 16x16 and cost a quarter of full resolution; the two downsampling levels (each halves
    space, and here time too) give 4x4x(F-1)/4+1 latents. `is_residual` adds parameter-free space-to-channel
    shortcuts; it needs the last two `dim_mult` entries equal.
    """
    return {
        "base_dim": 16,
        "z_dim": 16,
        "dim_mult": [1, 2, 2],  # three levels -> two downsamplings
        "num_res_blocks": 1,
        "temperal_downsample": [True, True],  # (sic, the diffusers name) one flag per downsampling
        "is_residual": True,
        "patch_size": 2,
        "in_channels": 12,  # 3 * patch_size**2
        "out_channels": 12,
        "scale_factor_spatial": 8,  # WanPipeline sizes latents with these two: 2 (patch) * 2 * 2
        "scale_factor_temporal": 4,
    }


def default_transformer_config() -> dict:
    """`WanTransformer3DModel` arguments: 4 layers of width 128 (4 heads of 32), ~1.2M parameters."""
    return {
        "patch_size": [1, 1, 1],  # one token per 4x4 latent cell
        "num_attention_heads": 4,
        "attention_head_dim": 32,
        "ffn_dim": 512,
        "num_layers": 4,
        "freq_dim": 64,
        "cross_attn_norm": True,
        "qk_norm": "rms_norm_across_heads",
        "rope_max_seq_len": 64,
    }


@dataclass
class GeneratorTrainingConfig:
    """Hyper-parameters of `train_generator`. Steps count optimiser updates of each stage."""

    # data: `num_clips` toy-world clips (seeds seed, seed+1, ...), half 'bouncing' and half 'falling'
    num_clips: int = 3000
    num_frames: int = 17  # Wan's 4k + 1 rule
    size: int = 32
    fps: float = 8.0
    # stage 1: VAE
    vae_steps: int = 2000
    vae_batch_size: int = 4
    vae_frames: int = 9  # window length; 9 = first frame + two chunks of 4 exercises every causal-cache path
    vae_lr: float = 3e-3
    kl_weight: float = 1e-4
    ball_weight: float = 10.0  # extra weight of ball pixels: they cover ~3% of a frame
    initial_logvar: float = -6.0  # posterior log-variance at init: the default 0 buries the signal in noise
    eval_clips: int = 16  # held-out clips for the reconstruction metrics
    # stage 2: transformer
    steps: int = 2400
    batch_size: int = 16
    lr: float = 5e-4
    min_lr: float = 2e-5
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0 ships the raw weights
    caption_dropout: float = 0.1
    logit_mean: float = 0.0
    logit_std: float = 1.0
    flow_shift: float = 2.0  # used for training sigmas and by the saved FlowMatchEulerDiscreteScheduler
    max_sequence_length: int = 512  # the WanPipeline default: train with the padding users will call with
    # sampling defaults shipped in call_defaults.json (HybridPipeline and the CLI use them)
    sample_steps: int = 20
    sample_guidance_scale: float = 4.0
    # architectures and bookkeeping
    text_dim: int = 32
    vae: dict = field(default_factory=default_vae_config)
    transformer: dict = field(default_factory=default_transformer_config)
    checkpoint_every: int = 250
    seed: int = 0

    def __post_init__(self):
        # a NaN learning rate would train nothing, silently
        check_finite_numbers(asdict(self), "GeneratorTrainingConfig")
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} must be > 0.")
        if not self.vae_lr > 0:
            raise ValueError(f"vae_lr={self.vae_lr!r} must be > 0.")
        for name in ("num_clips", "vae_batch_size", "batch_size", "eval_clips", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1.")
        for name in ("vae_steps", "steps", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0.")
        for name, value in (("num_frames", self.num_frames), ("vae_frames", self.vae_frames)):
            if value < 1 or (value - 1) % 4:
                raise ValueError(f"{name}={value} must be 4k + 1 (the Wan VAE compresses time 4x).")
        if self.vae_frames > self.num_frames:
            raise ValueError(f"vae_frames={self.vae_frames} exceeds num_frames={self.num_frames}.")
        multiple = self.vae.get("scale_factor_spatial", 8) * self.transformer.get("patch_size", (1, 2, 2))[1]
        if self.size % multiple:
            raise ValueError(
                f"size={self.size} must be a multiple of {multiple} (VAE factor x transformer patch)."
            )
        if not 0 <= self.caption_dropout < 1:
            raise ValueError(f"caption_dropout={self.caption_dropout} must be in [0, 1).")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} must be in [0, 1).")
        if self.flow_shift <= 0:
            raise ValueError(f"flow_shift={self.flow_shift} must be > 0.")


def sample_sigmas(generator: torch.Generator, n: int, config: GeneratorTrainingConfig) -> torch.Tensor:
    """Logit-normal `u`, shifted like `FlowMatchEulerDiscreteScheduler(shift=flow_shift)` shifts its sigmas."""
    u = torch.sigmoid(config.logit_mean + config.logit_std * torch.randn(n, generator=generator))
    return config.flow_shift * u / (1 + (config.flow_shift - 1) * u)  # (n,) in (0, 1)


def render_clips(
    num_clips: int, seed: int, *, size: int, num_frames: int, fps: float
) -> tuple[np.ndarray, list[str]]:
    """Clips with seeds `seed .. seed + num_clips - 1`; even indices 'bouncing', odd 'falling', 1-3 balls.

    Returns uint8 frames (N, T, H, W, 3) and the captions.
    """
    from hybridgen.toyworld import MOTIONS, make_clip

    frames = np.empty((num_clips, num_frames, size, size, 3), np.uint8)
    captions = []
    for i in range(num_clips):
        clip, info = make_clip(seed + i, size=size, num_frames=num_frames, fps=fps, motion=MOTIONS[i % 2])
        frames[i] = clip
        captions.append(info.caption)
    return frames, captions


def to_model_space(frames: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1], the VAE's input layout."""
    return torch.from_numpy(frames).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


def ball_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] -> (B, 1, T, H, W) bool: pixels brighter than the background (<= 40) can be."""
    return x.amax(dim=1, keepdim=True) > (60 / 127.5 - 1)


def reconstruction_metrics(x: torch.Tensor, reconstruction: torch.Tensor) -> dict[str, float]:
    """How far `reconstruction` is from `x`, both (B, 3, T, H, W) in [-1, 1]: PSNR (dB, mean over clips), mean
    absolute error, and that error over the ball pixels of `x` alone, both in [0, 1] units."""
    error = (reconstruction - x).abs() / 2  # (B, 3, T, H, W) in [0, 1] units
    mse = error.pow(2).mean(dim=(1, 2, 3, 4))  # (B,)
    ball = ball_mask(x).expand_as(error)
    return {
        "psnr": float((-10 * torch.log10(mse.clamp_min(1e-10))).mean()),
        "mae": float(error.mean()),
        "ball_mae": float(error.masked_select(ball).mean()),
    }


def kl_divergence(posterior) -> torch.Tensor:
    """Mean KL(q(z|x) || N(0, 1)) per latent element (diffusers' `.kl()` sums over dims 1-3 only for 5-D)."""
    return 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean()


def reconstruct(vae, frames: np.ndarray) -> np.ndarray:
    """uint8 (B, T, H, W, 3) -> the VAE's reconstruction of the mean latent, float32 (B, T, H, W, 3) in [0, 1]."""
    with torch.no_grad():
        x = to_model_space(frames).to(vae.dtype)  # (B, 3, T, H, W) in [-1, 1]
        z = vae.encode(x).latent_dist.mode()
        video = vae.decode(z).sample  # (B, 3, T, H, W)
    return ((video.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 4, 1).numpy()


def decode_unclamped(vae: AutoencoderKLWan, z: torch.Tensor) -> torch.Tensor:
    """`vae.decode(z).sample` before its final clamp to [-1, 1], for training.

    The clamp has zero gradient outside [-1, 1], and the background (~-0.9) sits next to its edge: a ball pixel
    whose output undershoots -1 would get no gradient at all. Mirrors `AutoencoderKLWan._decode` (without
    tiling): one latent frame at a time through the causal feature cache. A test checks it against `decode`.
    """
    vae.clear_cache()
    x = vae.post_quant_conv(z)  # (B, z, F', h, w)
    frames = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        frames.append(
            vae.decoder(
                x[:, :, i : i + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=i == 0
            )
        )
    vae.clear_cache()
    out = torch.cat(frames, dim=2)
    if vae.config.patch_size is not None:  # Wan 2.2-style VAEs fold patches into channels
        from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

        out = unpatchify(out, patch_size=vae.config.patch_size)
    return out  # (B, 3, F, H, W)


def model_megabytes(module: torch.nn.Module) -> float:
    """Size of the float32 weights in MB (what safetensors stores)."""
    return sum(p.numel() * p.element_size() for p in module.parameters()) / 1e6


class GeneratorTrainer(ResumableTrainer):
    """Builds the Wan components from `config` and trains them in two stages (see the module docstring).

    Args:
        config: hyper-parameters.
        device: where the models and each batch live ("cpu", "cuda", ...); the data and the random draws stay on
            the CPU (same seed, same batches and noise).
        mixed_precision: "bf16" runs the forward passes under bf16 autocast (CUDA only), "no" in float32.
    """

    resumable_changes = RESUMABLE_CHANGES

    def __init__(
        self,
        config: GeneratorTrainingConfig,
        device: str | torch.device = "cpu",
        mixed_precision: str = "no",
    ):
        super().__init__(config, device)
        check_mixed_precision(mixed_precision, self.device)
        self.mixed_precision = mixed_precision
        z_dim = config.vae.get("z_dim", 16)
        # 1. components, seeded on the CPU then moved; the text encoder is random and frozen (rebuilt from the seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.vae = AutoencoderKLWan(
                **{**config.vae, "latents_mean": [0.0] * z_dim, "latents_std": [1.0] * z_dim}
            )
            self.transformer = WanTransformer3DModel(
                **{
                    **config.transformer,
                    "in_channels": z_dim,
                    "out_channels": z_dim,
                    "text_dim": config.text_dim,
                }
            )
            # quant_conv outputs (mean, logvar): start from a near-deterministic posterior
            with torch.no_grad():
                self.vae.quant_conv.bias[z_dim:] = config.initial_logvar
        self.vae.to(self.device)
        self.transformer.to(self.device)
        self.tokenizer = build_t5_tokenizer()
        self.text_encoder = tiny_t5_encoder(config.seed, variant="umt5", d_model=config.text_dim)
        self.text_encoder.to(self.device).requires_grad_(False)
        self.scheduler = FlowMatchEulerDiscreteScheduler(shift=config.flow_shift)
        # 2. optimisers with their schedules (the VAE's: a short warm-up, a cosine to a tenth), the EMA
        self.vae_optimizer = ScheduledAdamW(
            self.vae.parameters(),
            lr=config.vae_lr,
            min_lr=config.vae_lr / 10,
            warmup_steps=min(50, config.vae_steps // 10),
            total_steps=config.vae_steps,
            weight_decay=0.0,
            grad_clip=config.grad_clip,
        )
        self.optimizer = ScheduledAdamW.from_config(self.transformer.parameters(), config)
        self.ema = EMAModel(self.transformer.parameters(), decay=config.ema_decay)
        # 3. progress and data
        self.vae_step = 0
        self.step = 0
        self.reconstruction: dict | None = None
        self._frames: np.ndarray | None = None  # (N, T, H, W, 3) uint8, rendered on first use
        self.captions: list[str] = []
        self.latents: torch.Tensor | None = None  # (N, z, F', h, w) on the CPU, normalised per channel
        self.caption_ids: torch.Tensor | None = None  # (N,) index into self.prompts
        self.prompts: list[str] = []  # unique training captions, then "" (the unconditional prompt)
        self.prompt_embeds: torch.Tensor | None = None  # (len(prompts), L, text_dim) on the CPU

    # ------------------------------------------------------------------ data
    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            c = self.config
            self._frames, self.captions = render_clips(
                c.num_clips, c.seed, size=c.size, num_frames=c.num_frames, fps=c.fps
            )
        return self._frames

    def ema_transformer(self) -> WanTransformer3DModel:
        """The transformer to ship: a copy of the trained one holding the EMA weights."""
        transformer = copy.deepcopy(self.transformer)
        transformer.zero_grad(set_to_none=True)
        self.ema.copy_to(transformer.parameters())
        return transformer.eval().requires_grad_(False)

    def pipeline(self, transformer: WanTransformer3DModel | None = None) -> WanPipeline:
        """The pipeline around the current components (the EMA transformer unless one is given)."""
        pipe = WanPipeline(
            tokenizer=self.tokenizer,
            text_encoder=self.text_encoder,
            vae=self.vae,
            transformer=self.ema_transformer() if transformer is None else transformer,
            scheduler=self.scheduler,
        )
        pipe.set_progress_bar_config(disable=True)
        return pipe

    # ------------------------------------------------------------------ stage 1: VAE
    def vae_train_step(self) -> dict:
        c = self.config
        self.vae.train()
        index = torch.randint(len(self.frames), (c.vae_batch_size,), generator=self.generator).numpy()
        start = int(torch.randint(c.num_frames - c.vae_frames + 1, (1,), generator=self.generator))
        x = to_model_space(self.frames[index, start : start + c.vae_frames])  # (B, 3, F, H, W)
        x = random_mirror(x, self.generator).to(self.device)  # half the batch mirrored left-right

        with autocast(self.mixed_precision, self.device):
            posterior = self.vae.encode(x).latent_dist
            z = posterior.sample(generator=self.generator)  # (B, z, (F-1)/4+1, H/8, W/8)
            reconstruction = decode_unclamped(self.vae, z)  # (B, 3, F, H, W)
            weight = 1 + c.ball_weight * ball_mask(x).float()  # (B, 1, F, H, W)
            error = reconstruction - x
            l1 = (weight * error.abs()).mean() / weight.mean()
            mse = (weight * error.pow(2)).mean() / weight.mean()
            kl = kl_divergence(posterior)
            loss = l1 + mse + c.kl_weight * kl

        lr = self.vae_optimizer.lr
        self.vae_optimizer.update(loss)
        self.vae_step += 1
        return {
            "stage": "vae",
            "step": self.vae_step,
            "loss": float(loss.detach()),
            "l1": float(l1.detach()),
            "kl": float(kl.detach()),
            "lr": lr,
        }

    @torch.no_grad()
    def evaluate_reconstruction(self) -> dict:
        """PSNR and ball-pixel error of full held-out clips through encode (mode) -> decode, in [0, 1] units."""
        c = self.config
        frames, _ = render_clips(c.eval_clips, EVAL_SEED, size=c.size, num_frames=c.num_frames, fps=c.fps)
        self.vae.eval()
        x = to_model_space(frames).to(self.device)  # (B, 3, T, H, W)
        reconstruction = self.vae.decode(self.vae.encode(x).latent_dist.mode()).sample  # (B, 3, T, H, W)
        metrics = reconstruction_metrics(x, reconstruction)
        return {name: round(value, 2 if name == "psnr" else 4) for name, value in metrics.items()}

    @torch.no_grad()
    def encode_dataset(self) -> None:
        """Mode latents of every clip, normalised per channel; mean/std are written into the VAE config."""
        self.vae.eval()
        chunks = [self.frames[i : i + 32] for i in range(0, len(self.frames), 32)]
        latents = torch.cat([self._encode(to_model_space(chunk)) for chunk in chunks])
        mean = latents.mean(dim=(0, 2, 3, 4))  # (z,)
        std = latents.std(dim=(0, 2, 3, 4))  # (z,)
        self.vae.register_to_config(latents_mean=mean.tolist(), latents_std=std.tolist())
        self.latents = (latents - mean.view(1, -1, 1, 1, 1)) / std.view(1, -1, 1, 1, 1)  # (N, z, F', h, w)
        self.prompts = sorted(set(self.captions)) + [""]
        lookup = {prompt: i for i, prompt in enumerate(self.prompts)}
        self.caption_ids = torch.tensor([lookup[caption] for caption in self.captions])

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """Mode latents of CPU clips `x` (B, 3, T, H, W), encoded on the device and brought back to the CPU."""
        return self.vae.encode(x.to(self.device)).latent_dist.mode().cpu()

    @torch.no_grad()
    def embed_prompts(self) -> None:
        """Caption embeddings exactly as the pipeline computes them at inference (zero-padded to L tokens)."""
        embeds, _ = self.pipeline(self.transformer).encode_prompt(
            self.prompts,
            do_classifier_free_guidance=False,
            max_sequence_length=self.config.max_sequence_length,
        )
        self.prompt_embeds = embeds.cpu()  # (P, L, text_dim)

    # ------------------------------------------------------------------ stage 2: transformer
    def train_step(self) -> dict:
        c = self.config
        self.transformer.train()
        index = torch.randint(len(self.latents), (c.batch_size,), generator=self.generator)
        x0 = self.latents[index]  # (B, z, F', h, w)
        ids = self.caption_ids[index]
        drop = torch.rand(c.batch_size, generator=self.generator) < c.caption_dropout
        ids = torch.where(drop, torch.full_like(ids, len(self.prompts) - 1), ids)  # "" for CFG
        noise = torch.randn(x0.shape, generator=self.generator)
        sigma = sample_sigmas(self.generator, c.batch_size, c).view(-1, 1, 1, 1, 1)
        batch = (x0, self.prompt_embeds[ids], noise, sigma)  # drawn on the CPU, trained on the device
        x0, text, noise, sigma = (tensor.to(self.device) for tensor in batch)  # text: (B, L, text_dim)
        x_t = (1 - sigma) * x0 + sigma * noise  # (B, z, F', h, w)

        with autocast(self.mixed_precision, self.device):
            prediction = self.transformer(
                hidden_states=x_t,
                timestep=sigma.flatten() * self.scheduler.config.num_train_timesteps,
                encoder_hidden_states=text,
                return_dict=False,
            )[0]
            loss = F.mse_loss(prediction.float(), noise - x0)  # velocity target

        lr = self.optimizer.lr
        grad_norm = self.optimizer.update(loss)
        self.ema.step(self.transformer.parameters())
        self.step += 1
        return {
            "stage": "transformer",
            "step": self.step,
            "loss": float(loss.detach()),
            "grad_norm": grad_norm,
            "lr": lr,
        }

    # ------------------------------------------------------------------ checkpoints
    def machine(self) -> dict:
        return {**super().machine(), "mixed_precision": self.mixed_precision}

    def write_weights(self, folder: Path) -> None:
        save_file(self.vae.state_dict(), str(folder / "vae.safetensors"))
        save_file(self.transformer.state_dict(), str(folder / "transformer.safetensors"))
        if self.latents is not None:
            tensors = {"latents": self.latents.contiguous(), "caption_ids": self.caption_ids}
            save_file(tensors, str(folder / "latents.safetensors"))

    def read_weights(self, directory: Path) -> None:
        for name in ("vae", "transformer"):
            path = directory / f"{name}.safetensors"
            with reading_checkpoint_file(path):
                getattr(self, name).load_state_dict(load_file(str(path)))
        path = directory / "latents.safetensors"
        if path.is_file():  # stage 1 is over
            with reading_checkpoint_file(path):
                tensors = load_file(str(path))
                self.latents, self.caption_ids = tensors["latents"], tensors["caption_ids"]

    def state_dict(self) -> dict:
        return {
            "vae_step": self.vae_step,
            "step": self.step,
            "vae_optimizer": self.vae_optimizer.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict(),  # diffusers' EMAModel: its settings, step count and weights
            "reconstruction": self.reconstruction,
            "latents_mean": list(self.vae.config.latents_mean),
            "latents_std": list(self.vae.config.latents_std),
            "prompts": self.prompts,
        }

    def load_state_dict(self, state: dict) -> None:
        self.vae_optimizer.load_state_dict(state["vae_optimizer"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._load_ema(state["ema"])
        self.vae_step, self.step = state["vae_step"], state["step"]
        self.reconstruction = state["reconstruction"]
        self.vae.register_to_config(latents_mean=state["latents_mean"], latents_std=state["latents_std"])
        if self.latents is not None:  # the prompts the latents' caption ids index
            self.prompts = state["prompts"]

    def _load_ema(self, ema: dict) -> None:
        """Restore the EMA (`EMAModel.load_state_dict` checks types, not shapes: this checks those too)."""
        shapes = [tuple(parameter.shape) for parameter in self.transformer.parameters()]
        if [tuple(weight.shape) for weight in ema["shadow_params"]] != shapes:
            raise ValueError("its EMA weights do not fit this transformer")
        self.ema.load_state_dict(ema)
        self.ema.to(self.device)

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        output_dir: str | Path,
        *,
        resume: bool = True,
        show_progress: bool = True,
        max_minutes: float | None = None,
    ) -> WanPipeline | None:
        """Run both stages, checkpointing into `output_dir/checkpoint`; save and return the pipeline.

        With `max_minutes`, training stops once that much wall time has passed (at a step boundary) and is
        checkpointed; the same call again goes on. Stopped in stage 2, the pipeline of the steps done is saved as
        at the end (its card says so); stopped in stage 1 there is no pipeline yet: None.

        The pipeline (`save_pretrained`, safetensors) goes to `output_dir` itself, the per-step log to
        `output_dir/training_log.jsonl`. Stage 1 ends when `vae_steps` are done: the data set is then encoded once
        and stage 1 is never resumed again (a larger `vae_steps` on resume has no effect). With `resume`, a
        checkpoint there is resumed (`load_checkpoint`); one in the old pickle format is refused, never read.
        """
        c = self.config
        # 1. open the run: its checkpoint resumed, its log restored
        run = self.open_run(output_dir, resume=resume, show_progress=show_progress, max_minutes=max_minutes)
        if self.latents is None:
            # 2. stage 1: the VAE
            run.train(self.vae_train_step, lambda: self.vae_step, c.vae_steps, "generator: vae")
            if run.stopped_early:  # out of time: the VAE so far, to go on from next time
                run.save_checkpoint()
                return None
            # 3. freeze the VAE: reconstruction metrics, then latents of the whole data set
            self.reconstruction = self.evaluate_reconstruction()
            self.encode_dataset()
            run.log({"stage": "encode", "reconstruction": self.reconstruction})
            run.save_checkpoint()
        self.vae.eval().requires_grad_(False)

        # 4. stage 2: the transformer on frozen latents and caption embeddings
        self.embed_prompts()
        run.train(self.train_step, lambda: self.step, c.steps, "generator: transformer")
        run.save_checkpoint()

        # 5. ship the EMA transformer in a standard WanPipeline
        pipe = self.pipeline()
        pipe.save_pretrained(run.output_dir)
        call_defaults = json.loads(write_call_defaults(run.output_dir, c).read_text())
        recipe = (
            f"`hybridgen train-generator` on {c.num_clips} toy-world clips: the VAE {c.vae_steps} steps of batch "
            f"{c.vae_batch_size}, then the transformer (flow matching, EMA {c.ema_decay:g}) {c.steps} steps of "
            f"batch {c.batch_size}, lr {c.lr:g}" + stopped_note(self.step, c.steps)
        )
        card = generator_card(
            pipe,
            call_defaults=call_defaults["pipeline_call"],
            fps=call_defaults.get("fps"),
            training=self.training_note(recipe),
        )
        card.save(run.output_dir / CARD_FILE)
        return pipe


def write_call_defaults(output_dir: str | Path, config: GeneratorTrainingConfig) -> Path:
    """Write `call_defaults.json`: the clip size and frame rate the generator was trained on and its sampling
    defaults, which `HybridPipeline.from_pretrained` applies unless the caller overrides them."""
    call = {
        "num_frames": config.num_frames,
        "height": config.size,
        "width": config.size,
        "num_inference_steps": config.sample_steps,
        "guidance_scale": config.sample_guidance_scale,
    }
    return write_json_atomic(
        {"fps": config.fps, "pipeline_call": call}, Path(output_dir) / CALL_DEFAULTS_FILE
    )


# ---------------------------------------------------------------------- entry point
def train_generator(
    output_dir: str | Path,
    *,
    num_clips: int = 3000,
    vae_steps: int = 2000,
    steps: int = 2400,
    batch_size: int = 16,
    lr: float = 5e-4,
    checkpoint_every: int = 250,
    seed: int = 0,
    device: str = "cpu",
    mixed_precision: str = "no",
    resume: bool = True,
    show_progress: bool = True,
    max_minutes: float | None = None,
    **overrides,
) -> dict:
    """Train the toy-world text-to-video `WanPipeline` on `device` and save it to `output_dir`.

    `overrides` are other `GeneratorTrainingConfig` fields (an unknown name is a `TypeError`). `mixed_precision`
    "bf16" autocasts the forward passes (CUDA only). An `output_dir` that is a file is refused before the models are
    built. `max_minutes`: a wall-clock budget for this run, after which what there is is checkpointed (and the
    pipeline saved once the transformer has started); run again to go on. Returns a summary: steps, whether the
    budget stopped it, final losses, reconstruction metrics, model sizes (MB) and wall time.
    """
    check_output_dir(output_dir)
    check_max_minutes(max_minutes)
    config = GeneratorTrainingConfig(
        num_clips=num_clips,
        vae_steps=vae_steps,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        checkpoint_every=checkpoint_every,
        seed=seed,
        **overrides,
    )
    trainer = GeneratorTrainer(config, device=device, mixed_precision=mixed_precision)
    started = time.perf_counter()
    pipe = trainer.fit(output_dir, resume=resume, show_progress=show_progress, max_minutes=max_minutes)

    def last(stage: str) -> float | None:
        losses = [r["loss"] for r in trainer.history if r.get("stage") == stage]
        return losses[-1] if losses else None

    return {
        "output": str(output_dir),
        "vae_steps": trainer.vae_step,
        "steps": trainer.step,
        "stopped_early": pipe is None or trainer.step < config.steps,
        "final_vae_loss": last("vae"),
        "final_loss": last("transformer"),
        "reconstruction": trainer.reconstruction,
        "megabytes": {
            "vae": round(model_megabytes(trainer.vae), 2),
            "transformer": round(model_megabytes(trainer.transformer), 2),  # the EMA's size too
            "text_encoder": round(model_megabytes(trainer.text_encoder), 2),
        },
        "seconds_this_run": round(time.perf_counter() - started, 1),
    }
