"""How the critic's scoring cost grows with clip length, and what it costs next to generating the clip.

On the tiny random components of `hybridgen.testing` (CPU):

(a) `VJEPA2Critic.score` on random 32x32 clips of growing length: median seconds, seconds per window, and a
    least-squares fit `seconds = intercept + slope * windows` (windows grow linearly with length).
(b) generating one clip with the tiny Wan pipeline vs scoring that clip, as a ratio measured in the same run.

    python benchmarks/critic_scaling.py [--threads 1] [--repeats 5] [--json results.json]
    python benchmarks/critic_scaling.py --quick      # smoke run, a few seconds

Timings on a shared machine are noisy; compare ratios within one run, not absolute seconds across runs.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
from common import benchmark_parser, machine, parse_args, write_results

from hybridgen import VJEPA2Critic
from hybridgen.testing import TINY_CALL_KWARGS, tiny_vjepa2_model, tiny_wan_pipeline

LENGTHS = (16, 32, 64, 128, 256)
QUICK_LENGTHS = (16, 32)
CLIP_SIZE = 32  # the tiny critic's crop size: no resize
PROMPT = "a red ball bouncing on the floor"
GENERATION_SETTINGS = {
    "tiny (TINY_CALL_KWARGS)": TINY_CALL_KWARGS["wan"],
    "longer, larger": {
        "num_frames": 65,
        "height": 64,
        "width": 64,
        "num_inference_steps": 10,
        "max_sequence_length": 16,
    },
}


def interleaved_seconds(functions: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Wall-clock seconds of each function over `repeats` rounds, after one untimed warm-up call each.

    Each round calls every function once, so a burst of load from other processes hits all of them alike.
    """
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            started = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - started)
    return times


def linear_fit(x: list[float], y: list[float]) -> dict[str, float]:
    """Least-squares `y = intercept + slope * x` and its coefficient of determination R^2."""
    slope, intercept = np.polyfit(x, y, 1)
    residual = np.asarray(y) - (intercept + slope * np.asarray(x))
    total = np.asarray(y) - np.mean(y)
    r_squared = 1.0 - float(residual @ residual) / float(total @ total) if total.any() else 1.0
    return {"slope": float(slope), "intercept": float(intercept), "r_squared": r_squared}


def critic_scaling(critic: VJEPA2Critic, lengths: tuple[int, ...], repeats: int) -> list[dict]:
    """(a) Seconds of `critic.score` on random clips of each length (median and minimum over repeats)."""
    rng = np.random.default_rng(0)
    clips = {length: rng.random((length, CLIP_SIZE, CLIP_SIZE, 3), dtype=np.float32) for length in lengths}
    times = interleaved_seconds(
        {str(length): (lambda clip=clip: critic.score(clip)) for length, clip in clips.items()}, repeats
    )
    rows = []
    for length in lengths:
        windows = len(critic.window_starts(length, critic.window_plan(length)[0]))
        seconds = statistics.median(times[str(length)])
        rows.append(
            {
                "frames": length,
                "windows": windows,
                "seconds": seconds,
                "min_seconds": min(times[str(length)]),
                "seconds_per_window": seconds / windows,
            }
        )
    return rows


def generation_vs_scoring(critic: VJEPA2Critic, settings: dict[str, dict], repeats: int) -> list[dict]:
    """(b) Seconds to generate one clip with the tiny Wan pipeline and to score that clip, timed in alternation;
    the ratio is the median of the per-round ratios."""
    pipe = tiny_wan_pipeline()
    rows = []
    for name, call_kwargs in settings.items():

        def generate(call_kwargs=call_kwargs) -> np.ndarray:
            generator = torch.Generator().manual_seed(0)
            return pipe(prompt=PROMPT, generator=generator, output_type="np", **call_kwargs).frames[0]

        clip = generate()
        times = interleaved_seconds(
            {"generate": generate, "score": lambda clip=clip: critic.score(clip)}, repeats
        )
        ratios = [score / generate for score, generate in zip(times["score"], times["generate"])]
        rows.append(
            {
                "setting": name,
                "frames": int(clip.shape[0]),
                "size": f"{clip.shape[1]}x{clip.shape[2]}",
                "steps": call_kwargs["num_inference_steps"],
                "generate_seconds": statistics.median(times["generate"]),
                "score_seconds": statistics.median(times["score"]),
                "score_over_generate": statistics.median(ratios),
            }
        )
    return rows


def markdown(scaling: list[dict], fits: dict[str, dict], generation: list[dict], environment: dict) -> str:
    first, last = scaling[0], scaling[-1]
    lines = [
        f"torch {environment['torch']}, {environment['threads']} thread(s), {environment['cpu']}, "
        f"{environment['repeats']} interleaved repeats after one warm-up call",
        "",
        "| frames | windows | median s | min s | median ms / window |",
        "|---:|---:|---:|---:|---:|",
        *(
            f"| {row['frames']} | {row['windows']} | {row['seconds']:.4f} | {row['min_seconds']:.4f} | "
            f"{1000 * row['seconds_per_window']:.2f} |"
            for row in scaling
        ),
        "",
        *(
            f"fit of the {name}: seconds = {fit['intercept']:.4f} + {fit['slope']:.5f} * windows, "
            f"R^2 = {fit['r_squared']:.4f}"
            for name, fit in fits.items()
        ),
        f"{last['frames']} vs {first['frames']} frames: {last['windows'] / first['windows']:.0f}x the windows, "
        f"{last['seconds'] / first['seconds']:.1f}x the median time",
        "",
        "| generation setting | frames | size | steps | generate s | score s | score / generate |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {row['setting']} | {row['frames']} | {row['size']} | {row['steps']} | "
            f"{row['generate_seconds']:.4f} | {row['score_seconds']:.4f} | {row['score_over_generate']:.3f} |"
            for row in generation
        ),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = benchmark_parser(__doc__, threads=1)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement (default 5)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 short clips, 1 repeat, tiny setting"
    )
    args = parse_args(parser)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    repeats = 1 if args.quick else args.repeats
    lengths = QUICK_LENGTHS if args.quick else LENGTHS
    settings = dict(list(GENERATION_SETTINGS.items())[:1]) if args.quick else GENERATION_SETTINGS

    system = machine()
    environment = {
        "torch": system["torch"],
        "threads": system["threads"],
        "cpu": system["cpu"],
        "python": system["python"],
        "repeats": repeats,
        "command": " ".join(["python", *sys.argv]),
    }
    critic = VJEPA2Critic(tiny_vjepa2_model())
    with torch.inference_mode():
        scaling = critic_scaling(critic, lengths, repeats)
        generation = generation_vs_scoring(critic, settings, repeats)
    windows = [row["windows"] for row in scaling]
    fits = {
        "medians": linear_fit(windows, [row["seconds"] for row in scaling]),
        "minima": linear_fit(windows, [row["min_seconds"] for row in scaling]),
    }
    print(f"critic: {critic}")
    print(markdown(scaling, fits, generation, environment))
    if args.json:
        results = {"environment": environment, "scaling": scaling, "fits": fits, "generation": generation}
        write_results({**results, "machine": system}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
