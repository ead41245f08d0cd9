"""CUDA smoke check: the hybrid loop, search, guidance and the critic on a GPU, in float32 and bfloat16.

Everything runs offline: the bundled toy world (by name, and by Hub id through a populated Hugging Face cache with
HF_HUB_OFFLINE=1, the code path of `examples/generate_gpu.py`) and tiny random Wan, LTX and CogVideoX
components. Each check compares with the CPU in float32 where that means something and records its wall time;
one failing check does not stop the others. Writes a JSON report; the exit status is the number of failures.

Conditioned generation (every tiny image-to-video pipeline and CogVideoX video-to-video, every strategy), model and
sequential CPU offload, the critic on another device than the generator (a second GPU when there is one, else the
CPU), and guidance's memory with and without `decode_scale` on the Wan 2.1 VAE architecture are checked too.

    python benchmarks/cuda_smoke.py --json out/cuda_smoke.json
"""

import os
import sys
import tempfile
import time
import traceback

import numpy as np
import PIL.Image
import torch
from common import benchmark_parser, machine, parse_args, write_results

from hybridgen import HybridPipeline, VJEPA2Critic
from hybridgen.models import WEIGHTS_DIR
from hybridgen.pipelines.guidance import GuidanceOptions
from hybridgen.pipelines.search import SearchOptions
from hybridgen.testing import (
    TINY_CALL_KWARGS,
    populate_hf_cache,
    tiny_image_to_video_pipeline,
    tiny_pipeline,
    tiny_video_to_video_pipeline,
    tiny_vjepa2_model,
)
from hybridgen.toyworld import make_clip, physics_error

PROMPT = "a red ball bouncing"
FAMILIES = ("wan", "ltx", "cogvideox")


def call(pipe: HybridPipeline, seed: int = 0, **options):
    """One hybrid call with per-candidate seeds drawn from `seed`; returns (output, seconds)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = pipe(PROMPT, generator=torch.Generator().manual_seed(seed), show_progress=False, **options)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - started


def summary(out, seconds: float) -> dict:
    """What a check records of one call: scores, choice, steps, finiteness, physics error of the choice."""
    candidates = np.stack(out.candidates)  # (N, F, H, W, 3)
    return {
        "seconds": round(seconds, 3),
        "surprises": [round(s, 5) for s in out.surprises],
        "best_index": out.best_index,
        "denoising_steps": out.denoising_steps,
        "frames_finite": bool(np.isfinite(candidates).all()),
        "best_physics_error": round(physics_error(out.video), 4),
    }


def toyworld_rerank(device: str) -> dict:
    """The bundled generator and critic: CPU float32 against `device` float32 and bfloat16."""
    options = {"num_candidates": 4}
    cpu_out, cpu_seconds = call(HybridPipeline.from_pretrained("toyworld"), **options)
    result = {"cpu_float32": summary(cpu_out, cpu_seconds)}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        pipe = HybridPipeline.from_pretrained("toyworld", torch_dtype=dtype, device=device)
        call(pipe, **options)  # warm-up: kernels, allocator
        out, seconds = call(pipe, **options)
        row = summary(out, seconds)
        row["max_pixel_difference_vs_cpu"] = float(
            max(np.abs(a - b).max() for a, b in zip(out.candidates, cpu_out.candidates))
        )
        row["max_surprise_difference_vs_cpu"] = float(
            max(abs(a - b) for a, b in zip(out.surprises, cpu_out.surprises))
        )
        row["same_choice_as_cpu"] = out.best_index == cpu_out.best_index
        result[f"{device}_{name}"] = row
    return result


def toyworld_strategies(device: str) -> dict:
    """Search and guidance (with reranking) on the bundled toy world in bfloat16."""
    pipe = HybridPipeline.from_pretrained("toyworld", torch_dtype=torch.bfloat16, device=device)
    result = {}
    for name, options in {
        "rerank_8": {"num_candidates": 8},
        "search_8": {"num_candidates": 8, "strategy": "search", "search": SearchOptions()},
        "guidance_2": {"num_candidates": 2, "strategy": "guidance", "guidance": GuidanceOptions(scale=0.1)},
    }.items():
        out, seconds = call(pipe, **options)
        result[name] = summary(out, seconds)
    return result


def hub_ids(device: str) -> dict:
    """Load the bundled weights by Hub id from a populated cache with HF_HUB_OFFLINE=1, in bfloat16."""
    with tempfile.TemporaryDirectory() as cache:
        populate_hf_cache(cache, "hybridgen-smoke/toyworld-t2v", WEIGHTS_DIR / "generator")
        populate_hf_cache(cache, "hybridgen-smoke/toyworld-critic", WEIGHTS_DIR / "critic")
        previous = os.environ.get("HF_HUB_OFFLINE")
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            pipe = HybridPipeline.from_pretrained(
                "hybridgen-smoke/toyworld-t2v",
                critic="hybridgen-smoke/toyworld-critic",
                torch_dtype=torch.bfloat16,
                cache_dir=cache,
            ).to(device)
            out, seconds = call(pipe, num_candidates=2)
        finally:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE")
            else:
                os.environ["HF_HUB_OFFLINE"] = previous
    return summary(out, seconds)


def tiny_families(device: str) -> dict:
    """Every strategy on tiny random Wan, LTX and CogVideoX components in bfloat16."""
    critic = VJEPA2Critic(tiny_vjepa2_model(seed=0)).to(device, torch.bfloat16)
    result = {}
    for family in FAMILIES:
        pipe = HybridPipeline(tiny_pipeline(family).to(device, torch.bfloat16), critic)
        sizes = dict(TINY_CALL_KWARGS[family], num_inference_steps=8)
        for strategy, options in {
            "rerank": {},
            "search": {"search": SearchOptions()},
            "guidance": {"guidance": GuidanceOptions(scale=0.1)},
        }.items():
            out, seconds = call(pipe, num_candidates=4, strategy=strategy, **options, **sizes)
            result[f"{family}_{strategy}"] = summary(out, seconds)
    return result


def critic_parity(device: str) -> dict:
    """The bundled critic's surprise on 16 plausible clips: CPU float32 against `device` float32/bfloat16."""
    clips = [make_clip(seed)[0] for seed in range(16)]
    reference = np.array([r.surprise for r in VJEPA2Critic.from_pretrained("toyworld").score_batch(clips)])
    result = {}
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        critic = VJEPA2Critic.from_pretrained("toyworld", torch_dtype=dtype, device=device)
        scores = np.array([r.surprise for r in critic.score_batch(clips)])
        relative = np.abs(scores - reference) / np.abs(reference)
        order = np.corrcoef(np.argsort(np.argsort(scores)), np.argsort(np.argsort(reference)))[0, 1]
        result[name] = {"max_relative_difference": float(relative.max()), "rank_correlation": float(order)}
    return result


def conditioned_generation(device: str) -> dict:
    """Every strategy on the tiny image-to-video pipelines and CogVideoX video-to-video, in bfloat16: each
    candidate conditioned on the same image (or clip)."""
    critic = VJEPA2Critic(tiny_vjepa2_model(seed=0)).to(device, torch.bfloat16)
    image = PIL.Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    clip = np.random.default_rng(1).random((17, 32, 32, 3)).astype(np.float32)
    pipelines = {
        f"{family}_image": (tiny_image_to_video_pipeline(family), {"image": image}) for family in FAMILIES
    }
    pipelines["cogvideox_video"] = (tiny_video_to_video_pipeline(), {"video": clip})
    result = {}
    for name, (pipeline, conditioning) in pipelines.items():
        pipe = HybridPipeline(pipeline.to(device, torch.bfloat16), critic)
        sizes = dict(
            TINY_CALL_KWARGS["cogvideox" if name.startswith("cogvideox") else name[:3]], num_inference_steps=8
        )
        if "video" in conditioning:
            del sizes["num_frames"]  # as long as its video
        for strategy in ("rerank", "search", "guidance"):
            out, seconds = call(pipe, num_candidates=4, strategy=strategy, **conditioning, **sizes)
            result[f"{name}_{strategy}"] = summary(out, seconds)
    return result


def offload(device: str) -> dict:
    """The toy world in float32 with model offload, and with sequential offload, against no offload on `device`:
    the same candidates (the generator's weights on the CPU between uses)."""
    options = {"num_candidates": 4}
    plain, _ = call(HybridPipeline.from_pretrained("toyworld", device=device), **options)
    result = {}
    for kind in ("model", "sequential"):
        pipe = HybridPipeline.from_pretrained("toyworld")
        pipe.critic.to(device)
        if kind == "model":
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.enable_sequential_cpu_offload(device=device)
        try:
            out, seconds = call(pipe, **options)
        except Exception as error:  # sequential offload fails on some accelerate/torch pairs: record, go on
            result[kind] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            continue
        row = summary(out, seconds)
        row["max_pixel_difference_vs_no_offload"] = float(
            max(np.abs(a - b).max() for a, b in zip(out.candidates, plain.candidates))
        )
        result[kind] = {"ok": True, **row}
    if not all(entry["ok"] for entry in result.values()):
        raise RuntimeError(f"offload failed: {result}")
    return result


def critic_elsewhere(device: str) -> dict:
    """The generator on `device`, the critic on another one (a second GPU, else the CPU), float32: the same
    surprises as both on `device`, for reranking and through guidance's cross-device gradient."""
    other = "cuda:1" if device.startswith("cuda") and torch.cuda.device_count() > 1 else "cpu"
    result = {"critic_device": other}
    for strategy, options in {"rerank": {"num_candidates": 4}, "guidance": {"num_candidates": 2}}.items():
        options = {**options, "strategy": strategy}
        together, _ = call(HybridPipeline.from_pretrained("toyworld", device=device), **options)
        apart, seconds = call(
            HybridPipeline.from_pretrained("toyworld", device=device, critic_device=other), **options
        )
        row = summary(apart, seconds)
        row["max_surprise_difference_vs_same_device"] = float(
            max(abs(a - b) for a, b in zip(apart.surprises, together.surprises))
        )
        row["same_choice"] = apart.best_index == together.best_index
        result[strategy] = row
    return result


def guidance_memory(device: str) -> dict:
    """One guided step's peak memory on the Wan 2.1 VAE architecture (random weights), 17 frames at 240x416 on an
    accelerator (9 at 64x96 on the CPU), at decode_scale 1, 0.5 and 0.25 (`guidance_memory.py`)."""
    import guidance_memory as bench

    on_gpu = device.startswith("cuda")
    sizes = (
        {"num_frames": 17, "height": 240, "width": 416}
        if on_gpu
        else {"num_frames": 9, "height": 64, "width": 96}
    )
    result = {"sizes": sizes}
    for setting in ("full", "decode_scale=0.5", "decode_scale=0.25"):
        result[setting] = bench.measure_in_fresh_process("wan", setting, sizes, device, None)
        if on_gpu:
            torch.cuda.empty_cache()
    return result


CHECKS = {
    "toyworld_rerank": toyworld_rerank,
    "toyworld_strategies": toyworld_strategies,
    "hub_ids_offline": hub_ids,
    "tiny_families_bfloat16": tiny_families,
    "critic_parity": critic_parity,
    "conditioned_generation": conditioned_generation,
    "offload": offload,
    "critic_on_another_device": critic_elsewhere,
    "guidance_memory": guidance_memory,
}


def main() -> int:
    parser = benchmark_parser(__doc__, device="cuda")
    parser.add_argument("--checks", nargs="*", default=list(CHECKS), choices=list(CHECKS))
    args = parse_args(parser)

    system = machine(args.device)
    report = {"torch": system["torch"], "device": system["accelerator"] or args.device, "checks": {}}
    failures = 0
    for name in args.checks:
        started = time.perf_counter()
        try:
            report["checks"][name] = {"ok": True, "result": CHECKS[name](args.device)}
        except Exception as error:  # a smoke check records every failure and goes on
            failures += 1
            report["checks"][name] = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            traceback.print_exc()
        report["checks"][name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {'ok' if report['checks'][name]['ok'] else 'FAILED'}", flush=True)
    if args.json:
        write_results({**report, "machine": system}, args.json)
    return failures


if __name__ == "__main__":
    sys.exit(main())
