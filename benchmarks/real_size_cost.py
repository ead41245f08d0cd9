"""What scoring a candidate costs next to generating it, at the sizes of released models.

- Generator: the Wan 2.1 T2V 1.3B architecture (`WanTransformer3DModel`, 30 layers x 1536 wide, as in
  Wan-AI/Wan2.1-T2V-1.3B-Diffusers; `AutoencoderKLWan` with its released defaults; the repo's UniPC
  flow-prediction scheduler, shift 3.0), 50 steps, classifier-free guidance 5.0 (two transformer passes a step).
- Critics: V-JEPA 2 ViT-L/16 at 256 px (the architecture of facebook/vjepa2-vitl-fpc64-256, `VJEPA2Config()`'s
  defaults) and ViT-g/16 at 384 px (facebook/vjepa2-vitg-fpc64-384), scored with `VJEPA2Critic`'s defaults for a Hub
  checkpoint (16-frame windows, 8 of context, forward) and with both directions.

Weights are random: the time of a forward pass depends on shapes, not values, so no download is needed. The
text encoder is left out (the pipeline gets prompt embeddings of the UMT5-XXL shape, (1, 512, 4096)): it runs once
per prompt, not once per step. Generation time covers denoising and VAE decoding to (F, H, W, 3) frames; scoring
time covers resizing those frames and every critic window.

    python benchmarks/real_size_cost.py --device cuda --json results.json    # a GPU with >= 40 GB
    python benchmarks/real_size_cost.py --tiny                                # CPU smoke run of the same code path
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from common import benchmark_parser, machine, parse_args, write_results
from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
from transformers import VJEPA2Config, VJEPA2Model

from hybridgen import VJEPA2Critic
from hybridgen.testing import tiny_vjepa2_config, tiny_wan_pipeline

FPS = 16  # Wan 2.1's frame rate
# (name, num_frames, height, width): Wan 2.1 1.3B's 480p setting at two lengths
SETTINGS = (("33 frames, 480x832", 33, 480, 832), ("81 frames, 480x832", 81, 480, 832))
TINY_SETTINGS = (("tiny: 9 frames, 32x32", 9, 32, 32),)
CRITICS = {
    "V-JEPA 2 ViT-L/16, 256 px": VJEPA2Config(),  # transformers' defaults are ViT-L fpc64 256
    "V-JEPA 2 ViT-g/16, 384 px": VJEPA2Config(
        crop_size=384, hidden_size=1408, num_hidden_layers=40, num_attention_heads=22, mlp_ratio=48 / 11
    ),
}
SCORINGS = {"forward (Hub default)": {}, "both directions": {"direction": "both"}}


def wan_1_3b_pipeline(device: str, dtype: torch.dtype) -> WanPipeline:
    """The Wan 2.1 T2V 1.3B architecture with random weights, built on `device` (no text encoder)."""
    with torch.device(device):
        transformer = WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=12,
            attention_head_dim=128,
            in_channels=16,
            out_channels=16,
            text_dim=4096,
            freq_dim=256,
            ffn_dim=8960,
            num_layers=30,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            eps=1e-6,
            rope_max_seq_len=1024,
        )
        vae = AutoencoderKLWan()  # the released Wan 2.1 VAE's architecture
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0, num_train_timesteps=1000
    )
    pipe = WanPipeline(
        tokenizer=None, text_encoder=None, vae=vae, scheduler=scheduler, transformer=transformer
    )
    cast_transformer(pipe, dtype)  # the VAE stays float32, as in diffusers' Wan examples
    pipe.set_progress_bar_config(disable=True)
    return pipe


def cast_transformer(pipe: WanPipeline, dtype: torch.dtype) -> None:
    """Cast the transformer to `dtype` as `from_pretrained(torch_dtype=dtype)` would: the modules the class
    lists in `_keep_in_fp32_modules` (norms, time embedding, RoPE) stay float32."""
    keep = set(pipe.transformer._keep_in_fp32_modules or ())
    pipe.transformer.to(dtype)
    for name, parameter in pipe.transformer.named_parameters():
        if keep & set(name.split(".")):
            parameter.data = parameter.data.float()


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device: str, function, *args, **kwargs):
    """`(function(*args, **kwargs), seconds)`, with the device's queue drained before and after."""
    synchronize(device)
    started = time.perf_counter()
    result = function(*args, **kwargs)
    synchronize(device)
    return result, time.perf_counter() - started


def generate(pipe, embeds: torch.Tensor, call: dict, steps: int, device: str) -> np.ndarray:
    """One clip `(F, H, W, 3)` float in [0, 1]: `steps` denoising steps with guidance 5.0, then VAE decoding."""
    return pipe(
        prompt_embeds=embeds,
        negative_prompt_embeds=embeds,
        num_inference_steps=steps,
        guidance_scale=5.0,
        generator=torch.Generator(device).manual_seed(0),
        output_type="np",
        **call,
    ).frames[0]


def measure(pipe, critics: dict, settings, steps: int, text_dim: int, device: str, dtype) -> list[dict]:
    """One generation per setting (after a 2-step warm-up), then each critic x scoring option on its frames."""
    embeds = torch.randn(1, 512, text_dim, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    rows = []
    for name, num_frames, height, width in settings:
        call = {"num_frames": num_frames, "height": height, "width": width}
        generate(pipe, embeds, call, 2, device)  # warm-up: kernels, allocator
        frames, seconds = timed(device, generate, pipe, embeds, call, steps, device)
        row = {"setting": name, "frames": num_frames, "height": height, "width": width, "steps": steps}
        row["generate_seconds"] = round(seconds, 6)
        row["critics"] = {}
        for critic_name, critic in critics.items():
            for scoring_name, options in SCORINGS.items():
                scorer = critic.with_options(**options)
                scorer.score(frames, fps=FPS)  # warm-up
                report, score_seconds = timed(device, scorer.score, frames, fps=FPS)
                row["critics"][f"{critic_name}, {scoring_name}"] = {
                    "windows": len(report.window_surprise),
                    "score_seconds": round(score_seconds, 6),
                    "score_over_generate": round(score_seconds / seconds, 5),
                }
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> int:
    parser = benchmark_parser(__doc__, device="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps (default 50, Wan's default)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models on small clips: a smoke run")
    args = parse_args(parser)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    dtype = getattr(torch, args.dtype)

    if args.tiny:
        pipe = tiny_wan_pipeline(scheduler="unipc").to(args.device)
        cast_transformer(pipe, dtype)
        configs = {"tiny V-JEPA 2": tiny_vjepa2_config()}
        settings, text_dim = TINY_SETTINGS, pipe.transformer.config.text_dim
    else:
        pipe = wan_1_3b_pipeline(args.device, dtype)
        configs, settings, text_dim = CRITICS, SETTINGS, 4096
    critics = {}
    for name, config in configs.items():
        with torch.device(args.device):
            model = VJEPA2Model(config).to(dtype)
        critics[name] = VJEPA2Critic(model)
    parameters = {
        "generator transformer": sum(p.numel() for p in pipe.transformer.parameters()),
        **{name: sum(p.numel() for p in critic.model.parameters()) for name, critic in critics.items()},
    }
    with torch.inference_mode():
        rows = measure(pipe, critics, settings, args.steps, text_dim, args.device, dtype)
    system = machine(args.device)
    results = {
        "environment": {
            "device": system["accelerator"] or system["cpu"],
            "dtype": args.dtype,
            "torch": torch.__version__,
            "command": " ".join(["python", *sys.argv]),
        },
        "parameters": parameters,
        "rows": rows,
        "machine": system,
    }
    for row in rows:
        for critic_name, cost in row["critics"].items():
            print(
                f"{row['setting']}: generate {row['generate_seconds']:.2f} s; {critic_name}: "
                f"{cost['windows']} windows, {cost['score_seconds']:.3f} s = {100 * cost['score_over_generate']:.2f}%"
            )
    if args.json:
        write_results(results, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
