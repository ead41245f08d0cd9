"""Peak memory and time of scoring a long, large video file: whole-clip decode against streaming decode.

    python benchmarks/streaming_decode.py --threads 2 --json benchmarks/results/streaming_decode.json

For each size (720p, 1080p) and length (48, 96, 192 frames at 24 fps) it writes a synthetic clip (balls moving on
a gradient), then scores it in a fresh process two ways with the same critic (default: the bundled `toyworld`):

- whole: `critic.score(*read_video(path))`: every frame decoded to float32 first, then resized and cropped;
- streaming: `critic.score_file(path)` (what `hybridgen score` does): each frame resized and cropped to the
  critic's input as it is decoded and kept as uint8.

Each process reports its peak resident memory (Linux's VmHWM, which includes the interpreter, torch and the critic:
the baseline row loads the critic and scores nothing) and the seconds the scoring took.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import benchmark_parser, parse_args, write_results

SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}
LENGTHS = (48, 96, 192)
FPS = 24

# run in a fresh process per measurement, so that each peak is its own
MEASURE = """
import json, sys, time
import torch
from hybridgen import VJEPA2Critic
from hybridgen.video import read_video
torch.set_num_threads({threads})
critic = VJEPA2Critic.from_pretrained({critic!r})
path, way = {path!r}, {way!r}
started = time.perf_counter()
if way == "whole":
    frames, fps = read_video(path)
    surprise = critic.score(frames, fps=fps).surprise
elif way == "streaming":
    surprise = critic.score_file(path).surprise
else:
    surprise = None
seconds = time.perf_counter() - started
# VmHWM: this process's peak resident memory (ru_maxrss would carry the parent's over from the fork)
peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
peak_mb = peak_kb / 1024
print(json.dumps({{"peak_mb": peak_mb, "seconds": seconds, "surprise": surprise}}))
"""


def synthetic_clip(num_frames: int, height: int, width: int) -> np.ndarray:
    """uint8 `(T, H, W, 3)`: three balls crossing a grey gradient, so the encoder has something to code."""
    rows = np.linspace(40, 120, height, dtype=np.float32)[:, None, None]
    background = np.broadcast_to(rows, (height, width, 3)).astype(np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    radius = height // 12
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        for k, colour in enumerate(((230, 60, 60), (60, 200, 90), (70, 110, 240))):
            cx = (0.2 + 0.3 * k) * width + 6 * t
            cy = height * (0.3 + 0.2 * k) + 40 * np.sin(t / 8 + k)
            frame[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2] = colour
        frames[t] = frame
    return frames


def measure(path: str, way: str, critic: str, threads: int) -> dict:
    code = MEASURE.format(path=path, way=way, critic=critic, threads=threads)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2)
    parser.add_argument(
        "--critic", default="toyworld", help="critic id (default: the bundled toy-world critic)"
    )
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES), help="frame sizes")
    parser.add_argument(
        "--lengths", nargs="*", type=int, default=list(LENGTHS), help="clip lengths in frames"
    )
    args = parse_args(parser)
    from hybridgen.video import write_video

    rows = [
        {"size": "-", "frames": 0, "way": "baseline", **measure("", "baseline", args.critic, args.threads)}
    ]
    print("| size | frames | way | peak MB | seconds | surprise |\n|---|---:|---|---:|---:|---:|")
    print(f"| - | 0 | baseline (critic loaded) | {rows[0]['peak_mb']:.0f} | - | - |")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            for num_frames in args.lengths:
                path = write_video(
                    synthetic_clip(num_frames, *SIZES[size]), Path(folder) / "clip.mp4", fps=FPS
                )
                for way in ("whole", "streaming"):
                    row = {
                        "size": size,
                        "frames": num_frames,
                        "way": way,
                        **measure(str(path), way, args.critic, args.threads),
                    }
                    rows.append(row)
                    print(
                        f"| {size} | {num_frames} | {way} | {row['peak_mb']:.0f} | {row['seconds']:.2f} | "
                        f"{row['surprise']:.5f} |",
                        flush=True,
                    )
    if args.json:
        write_results({"critic": args.critic, "fps": FPS, "threads": args.threads, "rows": rows}, args.json)


if __name__ == "__main__":
    main()
