"""Guidance memory: what one guided step costs (the decode of x̂0 with gradients, the critic's pass and the backward
pass), and what `decode_scale` and `gradient_checkpointing` save, on the released VAE architectures.

Each family's pipeline is the tiny one of `hybridgen.testing` with its VAE replaced by the released architecture at
random weights (diffusers' default configs: the Wan 2.1 VAE, 127M parameters; LTX-Video 0.9's, 419M; CogVideoX-2b's,
216M): memory and time depend on the architecture and the clip's size, not on the weights. The critic is the bundled
toy-world critic (0.95M parameters), so the numbers are the decoder's. One measurement is one `PhysicsGuidance.push`
of one video (what every guided step does per video), after a warm-up push:

    CPU   peak resident memory above what the process held before the push (Linux's VmHWM, reset through
          /proc/self/clear_refs), each setting in a fresh process whose allocator maps every large block on its
          own (MALLOC_MMAP_THRESHOLD_), so what the warm-up freed is not reused unseen
    CUDA  torch.cuda.max_memory_allocated above the memory allocated before the push

How much of guidance's effect a smaller decode keeps is a question for trained weights: BENCHMARKS.md measures it on
the toy world.

    python benchmarks/guidance_memory.py --threads 2 --json benchmarks/results/guidance_memory.json
    python benchmarks/guidance_memory.py --device cuda --frames 81 --height 480 --width 832  # a released size
"""

import multiprocessing
import os
import sys
import time
from pathlib import Path

import torch
from common import benchmark_parser, machine, parse_args, write_results

FAMILIES = ("wan", "ltx", "cogvideox")
# each setting's GuidanceOptions fields; gradient checkpointing only where the family's VAE supports it
SETTINGS = {
    "full": {},
    "decode_scale=0.5": {"decode_scale": 0.5},
    "decode_scale=0.25": {"decode_scale": 0.25},
    "gradient_checkpointing": {"gradient_checkpointing": True},
    "both (0.5)": {"decode_scale": 0.5, "gradient_checkpointing": True},
}


def released_vae(family: str):
    """The family's released VAE architecture (diffusers' default config) at seeded random weights."""
    from diffusers import AutoencoderKLCogVideoX, AutoencoderKLLTXVideo, AutoencoderKLWan

    torch.manual_seed(0)
    vae_class = {"wan": AutoencoderKLWan, "ltx": AutoencoderKLLTXVideo, "cogvideox": AutoencoderKLCogVideoX}[
        family
    ]
    return vae_class().eval()


def pipeline_with_released_vae(family: str):
    """The tiny pipeline of `family`, rebuilt around the released VAE (so its scale factors are the real ones)."""
    from hybridgen.testing import tiny_pipeline

    tiny = tiny_pipeline(family)
    return type(tiny)(**{**tiny.components, "vae": released_vae(family)})


def latents_for(pipeline, sizes: dict) -> torch.Tensor:
    """Seeded random x̂0 in the pipeline's loop layout for a clip of `sizes`."""
    from hybridgen.pipelines.latents import ltx_latent_grid, ltx_patch_sizes, pipeline_family

    family = pipeline_family(pipeline)
    generator = torch.Generator().manual_seed(1)
    if family == "ltx":
        frames, h, w = ltx_latent_grid(pipeline, **sizes)
        grid = torch.randn(1, pipeline.vae.config.latent_channels, frames, h, w, generator=generator)
        return pipeline._pack_latents(grid, *ltx_patch_sizes(pipeline))
    temporal = pipeline.vae_scale_factor_temporal
    frames = (sizes["num_frames"] - 1) // temporal + 1
    h, w = (
        sizes["height"] // pipeline.vae_scale_factor_spatial,
        sizes["width"] // pipeline.vae_scale_factor_spatial,
    )
    channels = pipeline.vae.config.get("z_dim") or pipeline.vae.config.latent_channels
    shape = (1, channels, frames, h, w) if family == "wan" else (1, frames, channels, h, w)
    return torch.randn(*shape, generator=generator)


def resident_mib(field: str) -> float:
    """VmRSS or VmHWM of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(family: str, setting: str, sizes: dict, device: str, threads: int | None) -> dict:
    """Peak memory and seconds of one push under `setting`."""
    from hybridgen import VJEPA2Critic
    from hybridgen.pipelines.denoising import CleanLatents
    from hybridgen.pipelines.guidance import GuidanceOptions, PhysicsGuidance

    if threads is not None:
        torch.set_num_threads(threads)
    pipeline = pipeline_with_released_vae(family).to(device)
    critic = VJEPA2Critic.from_pretrained("toyworld", device=device)
    options = GuidanceOptions(**SETTINGS[setting])
    guide = PhysicsGuidance(pipeline, critic, CleanLatents(), options, num_steps=1, sizes=sizes)
    latents = latents_for(pipeline, sizes).to(device)
    guide.push(latents)  # warm-up: kernels, allocator, lazy buffers
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current VmRSS
        before = resident_mib("VmRSS")
    started = time.perf_counter()
    guide.push(latents)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if cuda else resident_mib("VmHWM") - before
    return {"peak_mib": round(peak, 1), "seconds": round(seconds, 2)}


def measure_in_fresh_process(family, setting, sizes, device, threads) -> dict:
    """`measure` in a spawned process on the CPU (a clean allocator per setting), in this one on CUDA."""
    if device.startswith("cuda"):
        return measure(family, setting, sizes, device, threads)
    os.environ["MALLOC_MMAP_THRESHOLD_"] = str(
        2**16
    )  # glibc: blocks of 64 KiB and more are unmapped when freed
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(measure, (family, setting, sizes, device, threads))


def main() -> int:
    parser = benchmark_parser(__doc__, device="cpu")
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--frames", type=int, default=9, help="clip frames (default 9)")
    parser.add_argument("--height", type=int, default=128, help="clip height (default 128)")
    parser.add_argument("--width", type=int, default=192, help="clip width (default 192)")
    args = parse_args(parser)
    sizes = {"num_frames": args.frames, "height": args.height, "width": args.width}

    rows = []
    for family in args.families:
        supports_checkpointing = released_vae(family)._supports_gradient_checkpointing
        full = None
        for setting, fields in SETTINGS.items():
            if fields.get("gradient_checkpointing") and not supports_checkpointing:
                continue
            result = measure_in_fresh_process(family, setting, sizes, args.device, args.threads)
            full = full or result
            row = {"family": family, "setting": setting, **result}
            row["memory_vs_full"] = round(result["peak_mib"] / full["peak_mib"], 3)
            row["time_vs_full"] = round(result["seconds"] / full["seconds"], 3)
            rows.append(row)
            print(
                f"{family:10} {setting:24} peak {row['peak_mib']:9.1f} MiB ({row['memory_vs_full']:.2f}x)  "
                f"{row['seconds']:7.2f} s ({row['time_vs_full']:.2f}x)",
                flush=True,
            )
    if args.json:
        write_results({"sizes": sizes, "rows": rows, "machine": machine(args.device)}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
