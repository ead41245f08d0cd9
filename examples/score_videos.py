"""Rank existing videos by how surprising a V-JEPA 2 critic finds their dynamics (lowest surprise first).

    python examples/score_videos.py clip1.mp4 clip2.mp4 --plot curves.png --heatmap heatmaps/

--critic is a Hub id (default facebook/vjepa2-vitl-fpc64-256), a local directory written by `save_pretrained`, or
`toyworld` (the bundled critic).
--heatmap writes one PNG per video: the frames the critic predicted (centre-cropped as the critic sees them) above
the same frames overlaid with the per-token prediction error, on one colour scale per video.
"""

import argparse
import sys
from pathlib import Path

import torch

from hybridgen import VJEPA2Critic
from hybridgen.viz import heatmap_sheet, plot_surprise_curves, save_figure, save_image

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
HEATMAP_COLUMNS = 16  # at most this many evenly spaced predicted tubelets per heatmap strip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("videos", nargs="+", type=Path, help="video files (mp4, webm, gif, ...)")
    parser.add_argument(
        "--critic", default="facebook/vjepa2-vitl-fpc64-256", help="Hub id or local directory"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="critic weights dtype")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="plot every video's surprise per window")
    parser.add_argument("--heatmap", type=Path, metavar="DIR", help="write <video>_heatmap.png strips here")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    missing = [str(path) for path in args.videos if not path.is_file()]
    if missing:
        print(f"score_videos.py: error: video file(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    stems = [path.stem for path in args.videos]
    if args.heatmap and len(set(stems)) < len(stems):
        print("score_videos.py: error: --heatmap needs videos with distinct file names", file=sys.stderr)
        return 2

    # 1. Load the critic
    critic = VJEPA2Critic.from_pretrained(args.critic, torch_dtype=DTYPES[args.dtype], device=args.device)

    # 2. Score every video, decoding it a frame at a time into what the critic sees (resized, centre-cropped)
    clips, reports = [], []
    for path in args.videos:
        crops, fps = critic.read_crops(path)
        reports.append(critic.score_crops(crops, fps=fps))
        clips.append(crops[reports[-1].frame_indices])  # the frames the critic scored

    # 3. Print the ranking
    ranking = sorted(range(len(reports)), key=lambda i: reports[i].surprise)
    print(f"{'rank':>4} {'surprise':>10} {'windows':>7}  video   (lower surprise = more plausible dynamics)")
    for rank, i in enumerate(ranking):
        print(f"{rank:>4} {reports[i].surprise:>10.5f} {reports[i].num_windows:>7}  {args.videos[i]}")

    # 4. Optional pictures: surprise curves, per-video token-error heatmaps
    names = [path.name for path in args.videos]
    if args.plot:
        curves = [(report.window_starts, report.window_surprise) for report in reports]
        save_figure(plot_surprise_curves(curves, labels=names, title="surprise per window"), args.plot)
        print(f"wrote {args.plot}")
    if args.heatmap:
        for path, frames, report in zip(args.videos, clips, reports):
            sheet = heatmap_sheet(frames, report, title=path.name, columns=HEATMAP_COLUMNS)
            save_image(sheet, args.heatmap / f"{path.stem}_heatmap.png")
        print(f"wrote {len(clips)} heatmap(s) to {args.heatmap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
