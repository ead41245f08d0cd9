"""Pictures of candidates and their surprise: contact sheets, surprise curves, token-error overlays.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never pyplot, so
importing this module does not touch the user's matplotlib backend.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from hybridgen.video import PNG_SUFFIXES, as_frames, atomic_write_path, check_output_path, write_png_atomic

__all__ = [
    "contact_sheet",
    "heatmap_sheet",
    "overlay_frames",
    "plot_surprise_curves",
    "save_figure",
    "save_image",
    "surprise_heatmap",
    "tubelet_error_maps",
]

BACKGROUND = (255, 255, 255)
TEXT_COLOR = (20, 20, 20)
HIGHLIGHT_COLOR = (230, 90, 0)
MARGIN = 8  # pixels around the sheet, and at least OUTLINE + 2 so the highlight outline fits
CELL_GAP = 2  # pixels between frames in a row
ROW_GAP = 12  # pixels between rows
LABEL_HEIGHT = 20  # pixels of label band above each row
LABEL_FONT_SIZE = 14
OUTLINE = 3  # highlight outline width in pixels


# ---------------------------------------------------------------------------------------------------------
# Contact sheet


def contact_sheet(
    candidates: Sequence[Any],
    *,
    labels: Sequence[str] | None = None,
    frames_per_row: int = 8,
    highlight: int | None = None,
    cell_height: int = 128,
) -> Image.Image:
    """Render one row per candidate clip, with a label above each row; outline the highlighted row.

    Each row shows up to ``frames_per_row`` evenly spaced frames (first and last included). Frames are
    scaled to cells ``cell_height`` pixels tall, with the first candidate's aspect ratio (other sizes
    are stretched to it): small frames are enlarged by a whole factor with nearest-neighbour sampling,
    so 32x32 frames stay crisp, and large frames are shrunk smoothly.

    Args:
        candidates: clips, anything :func:`hybridgen.video.as_frames` accepts.
        labels: one text per candidate, e.g. "#2  seed 123  surprise 0.412"; default "#0", "#1", ...
        frames_per_row: frames shown per clip (fewer if a clip is shorter).
        highlight: index of the candidate to outline (e.g. the chosen one), or None.
        cell_height: target frame height in pixels.

    Returns:
        An RGB PIL image.
    """
    if len(candidates) == 0:
        raise ValueError("contact_sheet needs at least one candidate; got an empty list")
    _check_positive_int(frames_per_row, "frames_per_row")
    _check_positive_int(cell_height, "cell_height")
    labels = _default_labels(labels, len(candidates))
    _check_highlight(highlight, len(candidates))
    clips = [as_frames(clip, name=f"candidate {index}") for index, clip in enumerate(candidates)]
    cell_size = _cell_size(clips[0].shape[1:3], cell_height)
    rows = [_row_cells(clip, frames_per_row, cell_size) for clip in clips]
    return _compose_sheet(rows, labels, cell_size, highlight)


def _check_positive_int(value: Any, name: str) -> None:
    """Require a positive int (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1; got {value}")


def _default_labels(labels: Sequence[str] | None, count: int) -> list[str]:
    """Return ``labels`` as a list of ``count`` strings, defaulting to "#0", "#1", ..."""
    if labels is None:
        return [f"#{index}" for index in range(count)]
    if isinstance(labels, str):
        raise TypeError("labels must be a list of strings, one per item; got a single string")
    if len(labels) != count:
        raise ValueError(f"got {len(labels)} labels for {count} items; pass one label per item")
    return [str(label) for label in labels]


def _check_highlight(highlight: int | None, count: int) -> None:
    """Require ``highlight`` to be None or an index in [0, count)."""
    if highlight is None:
        return
    if isinstance(highlight, bool) or not isinstance(highlight, (int, np.integer)):
        raise TypeError(f"highlight must be an int index or None; got {type(highlight).__name__}")
    if not 0 <= highlight < count:
        raise ValueError(f"highlight index {highlight} is out of range for {count} items")


def _cell_size(frame_size: tuple[int, int], cell_height: int) -> tuple[int, int]:
    """(width, height) of a cell for frames of (height, width), about ``cell_height`` pixels tall.

    Frames shorter than ``cell_height`` are enlarged by the largest whole factor that fits.
    """
    height, width = frame_size
    if height < cell_height:
        factor = cell_height // height
        return width * factor, height * factor
    return max(1, round(width * cell_height / height)), cell_height


def _row_cells(clip: np.ndarray, frames_per_row: int, cell_size: tuple[int, int]) -> list[Image.Image]:
    """Evenly spaced frames of a (T, H, W, 3) [0, 1] clip, as PIL images of ``cell_size`` (w, h)."""
    count = min(frames_per_row, len(clip))
    indices = np.rint(np.linspace(0, len(clip) - 1, num=count)).astype(int)
    cells = []
    for index in indices:
        frame = Image.fromarray(np.rint(clip[index] * 255).astype(np.uint8))
        enlarging = cell_size[0] >= frame.width and cell_size[1] >= frame.height
        resample = Image.Resampling.NEAREST if enlarging else Image.Resampling.LANCZOS
        cells.append(frame if frame.size == cell_size else frame.resize(cell_size, resample))
    return cells


def _label_font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at LABEL_FONT_SIZE (bitmap fallback without FreeType)."""
    try:
        return ImageFont.load_default(size=LABEL_FONT_SIZE)
    except (ImportError, OSError, TypeError):
        return ImageFont.load_default()


def _compose_sheet(
    rows: list[list[Image.Image]],
    labels: list[str],
    cell_size: tuple[int, int],
    highlight: int | None,
) -> Image.Image:
    """Paste rows of equally sized cells under their labels onto one white RGB canvas."""
    cell_width, cell_height = cell_size
    font = _label_font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    columns = max(len(row) for row in rows)
    frames_width = columns * cell_width + (columns - 1) * CELL_GAP
    label_width = max(math.ceil(measure.textlength(label, font=font)) for label in labels)
    width = 2 * MARGIN + max(frames_width, label_width)
    row_height = LABEL_HEIGHT + cell_height
    height = 2 * MARGIN + len(rows) * row_height + (len(rows) - 1) * ROW_GAP
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for row_index, (cells, label) in enumerate(zip(rows, labels, strict=True)):
        top = MARGIN + row_index * (row_height + ROW_GAP)
        draw.text((MARGIN, top + 2), label, fill=TEXT_COLOR, font=font)
        for column, cell in enumerate(cells):
            sheet.paste(cell, (MARGIN + column * (cell_width + CELL_GAP), top + LABEL_HEIGHT))
        if row_index == highlight:
            box = (
                MARGIN - OUTLINE - 1,
                top - OUTLINE - 1,
                width - MARGIN + OUTLINE,
                top + row_height + OUTLINE,
            )
            draw.rectangle(box, outline=HIGHLIGHT_COLOR, width=OUTLINE)
    return sheet


# ---------------------------------------------------------------------------------------------------------
# Surprise curves


def plot_surprise_curves(
    curves: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    labels: Sequence[str] | None = None,
    highlight: int | None = None,
    title: str | None = None,
) -> Figure:
    """Plot surprise over time, one line per clip; the highlighted clip is drawn thick and on top.

    Args:
        curves: per clip, (window_starts, surprise): two 1-D arrays of equal length N >= 1, the first
            frame index of each scoring window and that window's surprise. NaN leaves a gap.
        labels: legend text per clip; default "#0", "#1", ...
        highlight: index of the clip to emphasise, or None.
        title: axes title, or None.

    Returns:
        A matplotlib Figure on an Agg canvas (pyplot is not used); save it with :func:`save_figure`.
    """
    if len(curves) == 0:
        raise ValueError("plot_surprise_curves needs at least one curve; got an empty list")
    labels = _default_labels(labels, len(curves))
    _check_highlight(highlight, len(curves))
    checked = [_check_curve(curve, index) for index, curve in enumerate(curves)]
    figure = Figure(figsize=(7.0, 3.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, ((starts, surprise), label) in enumerate(zip(checked, labels, strict=True)):
        chosen = index == highlight
        axes.plot(
            starts,
            surprise,
            marker="o",
            markersize=3,
            linewidth=2.5 if chosen else 1.2,
            alpha=1.0 if chosen or highlight is None else 0.55,
            zorder=3 if chosen else 2,
            label=f"{label} (chosen)" if chosen else label,
        )
    axes.set_xlabel("window start frame")
    axes.set_ylabel("surprise")
    axes.grid(alpha=0.3)
    if title is not None:
        axes.set_title(title)
    if len(checked) <= 12:
        axes.legend(fontsize="small", loc="best")
    return figure


def _check_curve(curve: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate one (window_starts, surprise) pair; return both as 1-D float arrays."""
    if not isinstance(curve, (tuple, list)) or len(curve) != 2:
        raise TypeError(f"curve {index} must be a (window_starts, surprise) pair of arrays")
    starts, surprise = (np.asarray(values, dtype=np.float64) for values in curve)
    if starts.ndim != 1 or surprise.ndim != 1 or len(starts) != len(surprise) or len(starts) == 0:
        raise ValueError(
            f"curve {index}: window_starts has shape {starts.shape} and surprise has shape "
            f"{surprise.shape}; expected two 1-D arrays of the same non-zero length"
        )
    return starts, surprise


# ---------------------------------------------------------------------------------------------------------
# Token-error overlay


def surprise_heatmap(
    frames: Any,
    token_errors: Any,
    *,
    alpha: float = 0.5,
    colormap: str = "magma",
    vmax: float | None = None,
) -> np.ndarray:
    """Overlay a per-token prediction-error map on the frames it describes.

    Args:
        frames: a clip of T frames, anything :func:`hybridgen.video.as_frames` accepts.
        token_errors: (T', Gh, Gw) errors, T' <= T time steps (e.g. tubelets of T / T' frames) on a
            Gh x Gw token grid; numpy or torch.
        alpha: opacity of the heat map, in [0, 1].
        colormap: a matplotlib colormap name.
        vmax: error mapped to the top colour; default the largest error. The smallest error maps to
            the bottom colour, and one scale is shared by all time steps so they are comparable.

    Returns:
        float32 (T', H, W, 3) in [0, 1]: for each time step t, its first frame (t * T // T') with the
        bilinearly upsampled error map blended on top. Pass it to ``write_video`` or ``contact_sheet``.
    """
    clip = as_frames(frames, name="frames")
    errors = _check_token_errors(token_errors, len(clip))
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
    if colormap not in colormaps:
        raise ValueError(f"unknown matplotlib colormap {colormap!r}")
    low = float(errors.min())
    high = float(errors.max()) if vmax is None else float(vmax)
    # a flat map draws at the bottom of the colormap; errors above a `vmax` at or below the smallest one, at the top
    scale = (errors - low) / (high - low) if high > low else (errors > high).astype(errors.dtype)
    steps, height, width = len(errors), clip.shape[1], clip.shape[2]
    overlays = np.empty((steps, height, width, 3), dtype=np.float32)
    for step in range(steps):
        heat = Image.fromarray(np.clip(scale[step], 0, 1).astype(np.float32))
        heat = np.asarray(heat.resize((width, height), Image.Resampling.BILINEAR))
        color = colormaps[colormap](heat)[..., :3].astype(np.float32)
        overlays[step] = (1 - alpha) * clip[step * len(clip) // steps] + alpha * color
    return overlays


def tubelet_error_maps(report: Any) -> tuple[list[int], np.ndarray]:
    """Where a `CriticReport`'s surprise is: the first critic frame of every predicted tubelet, in order, and its
    `(G, G)` token-error map averaged over the windows that predict it: `(first_frames, (K, G, G) errors)`."""
    maps: dict[int, list[np.ndarray]] = {}
    for start, window_errors in zip(report.window_starts, report.token_errors):
        # window_errors: (T_target, G, G); with direction "both", forward then backward predictions
        for offset, tubelet_errors in zip(report.target_offsets, window_errors):
            maps.setdefault(int(start) + int(offset), []).append(tubelet_errors)
    first_frames = sorted(maps)
    return first_frames, np.stack([np.mean(maps[frame], axis=0) for frame in first_frames])


def heatmap_sheet(frames: Any, report: Any, *, title: str = "", columns: int = 16) -> Image.Image:
    """A picture of where and when a clip surprised the critic: up to `columns` evenly spaced predicted frames
    above the same frames with their token errors over them (one colour scale per clip).

    Args:
        frames: the frames the critic saw, `(T_critic, H, W, 3)` (e.g. `crops[report.frame_indices]` from
            `VJEPA2Critic.read_crops`); anything `as_frames` accepts.
        report: the clip's `CriticReport`.
    """
    _check_positive_int(columns, "columns")
    clip = as_frames(frames, name="frames")
    first_frames, errors = tubelet_error_maps(report)
    if first_frames[-1] >= len(clip):
        raise ValueError(f"the report predicts frame {first_frames[-1]} but frames has {len(clip)}")
    shown = np.unique(np.linspace(0, len(first_frames) - 1, columns).round().astype(int))
    predicted = clip[[first_frames[i] for i in shown]]
    labels = [
        f"{title}{': ' if title else ''}predicted frames {first_frames[0]}..{first_frames[-1] + report.tubelet - 1}",
        f"token error, {errors.min():.3f} (dark) .. {errors.max():.3f} (bright)",
    ]
    overlays = surprise_heatmap(predicted, errors[shown])
    return contact_sheet([predicted, overlays], labels=labels, frames_per_row=len(shown))


def overlay_frames(frames: Any, report: Any, *, alpha: float = 0.5) -> np.ndarray:
    """Every frame the critic saw with the token errors of the tubelets that cover it over it (their mean), float32
    `(T_critic, H, W, 3)` in [0, 1] for `write_video`; frames no window predicts (the first context) are shown
    plain. One colour scale for the whole clip."""
    clip = as_frames(frames, name="frames")
    first_frames, errors = tubelet_error_maps(report)
    if first_frames[-1] >= len(clip):
        raise ValueError(f"the report predicts frame {first_frames[-1]} but frames has {len(clip)}")
    maps: dict[int, list[np.ndarray]] = {}  # frame -> the maps of the tubelets that cover it
    for first, tubelet_errors in zip(first_frames, errors):
        for frame in range(first, min(first + report.tubelet, len(clip))):
            maps.setdefault(frame, []).append(tubelet_errors)
    covered = sorted(maps)
    per_frame = np.stack([np.mean(maps[frame], axis=0) for frame in covered])
    video = clip.copy()
    video[covered] = surprise_heatmap(clip[covered], per_frame, alpha=alpha)
    return video


def _check_token_errors(token_errors: Any, num_frames: int) -> np.ndarray:
    """Validate a (T', Gh, Gw) error map against a clip of ``num_frames``; return float32 numpy."""
    if hasattr(token_errors, "detach"):  # torch tensor
        token_errors = token_errors.detach().float().cpu().numpy()
    errors = np.asarray(token_errors, dtype=np.float32)
    if errors.ndim != 3 or 0 in errors.shape:
        raise ValueError(f"token_errors has shape {errors.shape}; expected (T', Gh, Gw) with no empty axis")
    if len(errors) > num_frames:
        raise ValueError(
            f"token_errors has {len(errors)} time steps but the clip has only {num_frames} frames"
        )
    if not np.isfinite(errors).all():
        raise ValueError("token_errors contains NaN or inf values")
    return errors


# ---------------------------------------------------------------------------------------------------------
# Saving


def save_figure(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 150) -> pathlib.Path:
    """Save a matplotlib figure as PNG, atomically. Returns ``path`` as a Path."""
    if not isinstance(figure, Figure):
        raise TypeError(f"figure must be a matplotlib Figure; got {type(figure).__name__}")
    path = check_output_path(path, PNG_SUFFIXES)
    with atomic_write_path(path) as temp_path:
        figure.savefig(temp_path, format="png", dpi=dpi)
    return path


def save_image(image: Image.Image | np.ndarray, path: str | os.PathLike[str]) -> pathlib.Path:
    """Save a PIL image or an (H, W[, 3|4]) uint8 / [0, 1] float array as PNG, atomically."""
    return write_png_atomic(image, path)
