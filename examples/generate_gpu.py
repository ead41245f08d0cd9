"""Best-of-N with the released checkpoints on a CUDA GPU: Wan 2.1 proposes, V-JEPA 2 judges.

Needs a CUDA GPU (roughly 12 GB in bfloat16 at 480x832, 33 frames, one video per call, by the model cards'
figures; not measured here) and the Hugging Face Hub or a populated cache (`HF_HUB_OFFLINE=1` is honoured).
Writes into --output-dir: best.mp4, candidate_<i>.mp4, candidates.png (contact sheet), curves.png (surprise per
window) and report.json. On a CPU, run `examples/tiny_cpu.py` instead.

    python examples/generate_gpu.py --prompt "a ball rolls off a table and bounces on the floor" --candidates 4
"""

import argparse
import sys
import time
from pathlib import Path

import torch

from hybridgen import HybridPipeline
from hybridgen.pipelines.hybrid import describe_reports
from hybridgen.video import write_json_atomic
from hybridgen.viz import contact_sheet, plot_surprise_curves, save_figure, save_image

DEFAULT_PROMPT = "a red ball rolls off a wooden table and bounces on the floor, static camera"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="what the video should show")
    parser.add_argument(
        "--generator-id", default="Wan-AI/Wan2.1-T2V-1.3B-Diffusers", help="diffusers pipeline"
    )
    parser.add_argument("--critic-id", default="facebook/vjepa2-vitl-fpc64-256", help="V-JEPA 2 checkpoint")
    parser.add_argument("--candidates", type=int, default=4, help="clips to generate")
    parser.add_argument("--frames", type=int, default=33, help="frames per clip (4k + 1 for Wan)")
    parser.add_argument("--height", type=int, default=480, help="frame height in pixels")
    parser.add_argument("--width", type=int, default=832, help="frame width in pixels")
    parser.add_argument("--steps", type=int, default=30, help="denoising steps per candidate")
    parser.add_argument("--guidance-scale", type=float, default=5.0, help="classifier-free guidance scale")
    parser.add_argument("--batch-size", type=int, default=1, help="videos per pipeline call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the candidates' seeds")
    parser.add_argument("--fps", type=float, default=16, help="frame rate of the written MP4s")
    parser.add_argument(
        "--output-dir", type=Path, default=Path("out/gpu"), help="where everything is written"
    )
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if not torch.cuda.is_available():
        print(
            "generate_gpu.py needs a CUDA GPU and torch.cuda.is_available() is False. "
            "On a CPU, run the same loop on tiny random components: python examples/tiny_cpu.py",
            file=sys.stderr,
        )
        return 2

    # 1. Load the video pipeline and the critic, both in bfloat16, on the GPU
    pipe = HybridPipeline.from_pretrained(
        args.generator_id, critic=args.critic_id, torch_dtype=torch.bfloat16
    ).to("cuda")

    # 2. Generate the candidates and let the critic choose
    started = time.perf_counter()
    out = pipe(
        args.prompt,
        num_candidates=args.candidates,
        generator=torch.Generator().manual_seed(args.seed),
        num_frames=args.frames,
        height=args.height,
        width=args.width,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale,
        batch_size=args.batch_size,
    )
    seconds = time.perf_counter() - started

    # 3. Write the chosen clip and every candidate
    out.save(args.output_dir / "best.mp4", fps=args.fps)
    out.save_candidates(args.output_dir, fps=args.fps)

    # 4. Write the contact sheet and the surprise curves
    labels = [
        f"#{i}  seed {seed}  surprise {s:.4f}" for i, (seed, s) in enumerate(zip(out.seeds, out.surprises))
    ]
    sheet = contact_sheet(out.candidates, labels=labels, highlight=out.best_index)
    save_image(sheet, args.output_dir / "candidates.png")
    curves = [(report.window_starts, report.window_surprise) for report in out.reports]
    figure = plot_surprise_curves(curves, labels=labels, highlight=out.best_index, title=args.prompt)
    save_figure(figure, args.output_dir / "curves.png")

    # 5. Write the report: settings, seeds, scores, time
    settings = {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()}
    report = {
        "settings": settings,
        "generate_and_score_seconds": seconds,
        "device": torch.cuda.get_device_name(),
        **out.to_dict(),
    }
    write_json_atomic(report, args.output_dir / "report.json")
    print(describe_reports(out))
    print(f"wrote {args.output_dir}/best.mp4 (candidate {out.best_index}) and the rest in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
