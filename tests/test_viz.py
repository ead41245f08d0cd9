"""Tests for hybridgen.viz: contact sheets, surprise curves, heat maps and atomic saving."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from hybridgen import viz
from hybridgen.viz import contact_sheet, plot_surprise_curves, save_figure, save_image, surprise_heatmap


def gray_clip(level: float, num_frames: int = 10, size: int = 32) -> np.ndarray:
    return np.full((num_frames, size, size, 3), level, dtype=np.float32)


def test_contact_sheet_layout_for_small_frames():
    clips = [gray_clip(0.2), gray_clip(0.8)]
    sheet = contact_sheet(
        clips, labels=["#0  seed 1  surprise 0.5", "#1  seed 2  surprise 0.4"], frames_per_row=4
    )
    assert sheet.mode == "RGB"
    cell = 128  # 32-pixel frames enlarged 4x
    expected_width = 2 * viz.MARGIN + 4 * cell + 3 * viz.CELL_GAP
    expected_height = 2 * viz.MARGIN + 2 * (viz.LABEL_HEIGHT + cell) + viz.ROW_GAP
    assert sheet.size == (expected_width, expected_height)
    top_of_first_cell = viz.MARGIN + viz.LABEL_HEIGHT
    assert sheet.getpixel((viz.MARGIN + 5, top_of_first_cell + 5)) == (51, 51, 51)


def test_contact_sheet_outlines_only_the_highlighted_row():
    clips = [gray_clip(0.2), gray_clip(0.8)]
    plain = np.asarray(contact_sheet(clips, frames_per_row=3))
    marked = np.asarray(contact_sheet(clips, frames_per_row=3, highlight=1))
    changed_rows = np.flatnonzero((plain != marked).any(axis=(1, 2)))
    second_row_top = viz.MARGIN + viz.LABEL_HEIGHT + 96 + viz.ROW_GAP  # 32-pixel frames enlarged 3x
    assert changed_rows.size > 0 and changed_rows.min() >= second_row_top - viz.OUTLINE - 1
    highlight_pixels = (marked == viz.HIGHLIGHT_COLOR).all(axis=-1)
    assert highlight_pixels.any()


def test_contact_sheet_shrinks_large_frames_and_handles_short_clips():
    clips = [gray_clip(0.5, num_frames=2, size=256), gray_clip(0.5, num_frames=9, size=200)]
    sheet = contact_sheet(clips, frames_per_row=8, cell_height=64)
    assert sheet.height == 2 * viz.MARGIN + 2 * (viz.LABEL_HEIGHT + 64) + viz.ROW_GAP
    assert sheet.width == 2 * viz.MARGIN + 8 * 64 + 7 * viz.CELL_GAP


@pytest.mark.parametrize(
    ("kwargs", "error", "keyword"),
    [
        ({"labels": ["only one"]}, ValueError, "labels"),
        ({"labels": "ab"}, TypeError, "single string"),
        ({"highlight": 2}, ValueError, "out of range"),
        ({"highlight": True}, TypeError, "highlight"),
        ({"frames_per_row": 0}, ValueError, "frames_per_row"),
    ],
)
def test_contact_sheet_rejects_bad_arguments(kwargs, error, keyword):
    with pytest.raises(error, match=keyword):
        contact_sheet([gray_clip(0.1), gray_clip(0.2)], **kwargs)


def test_contact_sheet_names_the_bad_candidate():
    with pytest.raises(ValueError, match="candidate 1"):
        contact_sheet([gray_clip(0.1), np.zeros((3, 8, 8))])


def test_surprise_curves_figure_saves_a_png(tmp_path):
    curves = [
        (np.arange(0, 12, 2), np.linspace(0.3, 0.5, 6)),
        (np.arange(0, 12, 2), np.linspace(0.6, 0.2, 6)),
    ]
    figure = plot_surprise_curves(curves, labels=["a", "b"], highlight=1, title="surprise")
    path = save_figure(figure, tmp_path / "plots" / "curves.png")
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 100
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]


def test_surprise_curves_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="curve 0"):
        plot_surprise_curves([(np.arange(3), np.arange(4))])


def test_save_figure_failure_keeps_existing_file(tmp_path, monkeypatch):
    figure = plot_surprise_curves([(np.arange(3), np.ones(3))])
    target = tmp_path / "curves.png"
    target.write_bytes(b"old")

    def failing_savefig(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(figure, "savefig", failing_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(figure, target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_save_image_round_trip(tmp_path):
    sheet = contact_sheet([gray_clip(0.5, num_frames=3)], frames_per_row=3)
    path = save_image(sheet, tmp_path / "sheet.png")
    with Image.open(path) as loaded:
        assert loaded.size == sheet.size
        assert np.array_equal(np.asarray(loaded.convert("RGB")), np.asarray(sheet))


def test_surprise_heatmap_shape_and_blend():
    frames = gray_clip(0.0, num_frames=8, size=16)
    errors = np.zeros((4, 2, 2), dtype=np.float32)
    errors[:, 0, 0] = 1.0
    overlays = surprise_heatmap(frames, errors, alpha=1.0, colormap="gray")
    assert overlays.shape == (4, 16, 16, 3) and overlays.dtype == np.float32
    assert overlays[0, 0, 0].mean() > 0.9 and overlays[0, -1, -1].mean() < 0.1
    with pytest.raises(ValueError, match="time steps"):
        surprise_heatmap(frames, np.zeros((9, 2, 2)))
    # errors all above a vmax below the smallest of them: the top of the colormap, not the bottom
    high = surprise_heatmap(frames, errors + 0.5, vmax=0.3, alpha=1.0, colormap="gray")
    assert high.min() > 0.9


def test_heatmap_sheet_and_overlay_show_where_the_critic_erred(critic):
    frames = np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32)
    report = critic.score(frames)
    first_frames, errors = viz.tubelet_error_maps(report)
    assert first_frames == list(range(critic.options.context, 16, critic.tubelet))  # stride 8: targets tile
    assert errors.shape == (len(first_frames), critic.grid, critic.grid)
    sheet = viz.heatmap_sheet(frames, report, title="noise", columns=4)
    assert sheet.mode == "RGB" and sheet.width > sheet.height
    overlay = viz.overlay_frames(frames, report)
    assert overlay.shape == frames.shape
    np.testing.assert_array_equal(
        overlay[: critic.options.context], frames[: critic.options.context]
    )  # no heat
    assert not np.allclose(overlay[critic.options.context :], frames[critic.options.context :])
    with pytest.raises(ValueError, match="predicts frame 14 but frames has 8"):
        viz.overlay_frames(frames[:8], report)
