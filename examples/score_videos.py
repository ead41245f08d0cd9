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

import numpy as np
import torch

from hybridgen import CriticReport, VJEPA2Critic
from hybridgen.video import read_video
from hybridgen.viz import contact_sheet, plot_surprise_curves, save_figure, save_image, surprise_heatmap

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


def critic_view(frames: np.ndarray, critic: VJEPA2Critic) -> np.ndarray:
    """The centre square of `(T, H, W, 3)` frames that the critic's resize + centre crop keeps."""
    height, width = frames.shape[1:3]
    side = min(height, width, round(critic.crop_size * min(height, width) / critic.options.resize_to))
    top, left = (height - side) // 2, (width - side) // 2
    return frames[:, top : top + side, left : left + side]


def predicted_tubelets(report: CriticReport) -> tuple[list[int], np.ndarray]:
    """First critic frame of every predicted tubelet and its `(G, G)` error map, averaged over the windows that
    predict it; sorted by frame."""
    maps: dict[int, list[np.ndarray]] = {}
    for start, window_errors in zip(report.window_starts, report.token_errors):
        # window_errors: (T_target, G, G); with direction "both", forward then backward predictions
        for offset, tubelet_errors in zip(report.target_offsets, window_errors):
            maps.setdefault(int(start) + int(offset), []).append(tubelet_errors)
    first_frames = sorted(maps)
    return first_frames, np.stack([np.mean(maps[frame], axis=0) for frame in first_frames])


def heatmap_strip(frames: np.ndarray, report: CriticReport, critic: VJEPA2Critic, title: str):
    """Two rows: the predicted frames as the critic saw them, and the same frames with their token errors."""
    first_frames, errors = predicted_tubelets(report)
    shown = np.unique(np.linspace(0, len(first_frames) - 1, HEATMAP_COLUMNS).round().astype(int))
    seen = critic_view(frames[report.frame_indices], critic)  # the clip after any fps resampling
    predicted = seen[[first_frames[i] for i in shown]]
    overlays = surprise_heatmap(predicted, errors[shown])
    labels = [
        f"{title}: predicted frames {first_frames[0]}..{first_frames[-1] + report.tubelet - 1}",
        f"token error, {errors.min():.3f} (dark) .. {errors.max():.3f} (bright)",
    ]
    return contact_sheet([predicted, overlays], labels=labels, frames_per_row=len(shown))


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

    # 2. Score every video
    clips, reports = [], []
    for path in args.videos:
        frames, fps = read_video(path)
        clips.append(frames)
        reports.append(critic.score(frames, fps=fps))

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
            strip = heatmap_strip(frames, report, critic, title=path.name)
            save_image(strip, args.heatmap / f"{path.stem}_heatmap.png")
        print(f"wrote {len(clips)} heatmap(s) to {args.heatmap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
