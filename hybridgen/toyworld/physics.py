"""Ground-truth physics checker for toy-world clips, from pixels only (no scene metadata).

Pipeline: bright-blob segmentation (3x3-mean max channel > FG_THRESHOLD; one seed per local brightness
maximum so touching balls stay apart; 4-connected growth plus a 1 px soft rim) -> per-blob soft area
(coverage-weighted, px^2), centroid (px) and interior colour -> greedy tracking with merge handling (two
touching balls forming one blob of about their summed area) -> interpretable terms, each a per-frame
series whose clip value is the sum over frames (and balls) divided by T - 1, a rate per frame transition:

- count   objects (dis)appearing per frame (|n_t - n_{t-1}|, merges excused)             [objects]
- area    relative soft-area change of a tracked ball beyond AREA_TOL                      [fraction]
- colour  max-channel change of a tracked ball's mean colour beyond COLOUR_TOL             [0..1 units]
- accel   deviation of a ball's frame-to-frame motion from constant gravity, capped at JUMP   [px]
- jump    the part of that deviation above JUMP px (teleports, sudden stops)                 [px]
- flicker change of the mean background brightness beyond FLICKER_TOL                       [0..1 units]

"accel" is the residual of the constant-acceleration prediction p[t+1] = 2 p[t] - p[t-1] + (0, g), in px
(equivalently px/frame^2), with g the clip's own robust gravity estimate. Residuals are excused on the
axis normal to a wall (image border; floor = bottom) when the ball is within reach of that wall and the
impulse points away from it, and on both axes when two balls are within reach of each other.
Tolerances (px ones scale with image size / 64) make nearly every clean rendered clip score 0 (`physics_error` <
CLEAN_THRESHOLD): 1487 of 1500 at 64 px x 16 frames (seeds 0-1499) and 587 of 600 at 32 px x 17 frames. The rest
are three-ball scenes: at 32 px a small area term (0.03 at most); at 64 px up to 0.77, mostly where a bounce falls
in the clip's last frame (no later frame shows the rebound) and reads as a wrong acceleration.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

FG_THRESHOLD = 0.35  # max-channel level separating balls (>= 150/255) from background (<= 40/255)
MIN_AREA = 3.0  # px^2 at 64 px: smaller blobs are noise
AREA_TOL = 0.12  # relative
COLOUR_TOL = 0.12  # max-channel difference, [0, 1] units
ACCEL_TOL = 0.35  # px (per frame^2) at 64 px
JUMP = 3.0  # px at 64 px
FLICKER_TOL = 0.02  # mean background level, [0, 1] units
CLEAN_THRESHOLD = 1e-3  # clean rendered clips score below this
TERMS = ("count", "area", "colour", "accel", "jump", "flicker")


@dataclass(frozen=True)
class PhysicsReport:
    """Checker output. `terms[k]` = per_frame[k].sum() / (T - 1); `total` = sum of the terms.
    per_frame[k][t] is the violation first visible at frame t (per_frame[k][0] = 0)."""

    total: float
    terms: dict[str, float]
    per_frame: dict[str, np.ndarray]  # each (T,)
    counts: np.ndarray  # (T,) tracked objects per frame
    tracks: np.ndarray  # (K, T, 2) centroids in px, NaN where missing or merged
    gravity: float  # estimated, px/frame^2 (down > 0)
    colours: np.ndarray  # (K, T, 3) mean interior colour in [0, 1], NaN where missing or merged

    def __str__(self) -> str:
        terms = ", ".join(f"{name}={value:.3f}" for name, value in self.terms.items())
        return f"PhysicsReport(total={self.total:.3f}: {terms}; g={self.gravity:.2f} px/frame^2)"


def physics_error(frames: np.ndarray) -> float:
    """Scalar physics violation score of a clip (T, H, W, 3), uint8 or float in [0, 1]; 0 = clean."""
    return physics_report(frames).total


# -----------------------------------------------------------------------------
# segmentation


def _as_float(frames: np.ndarray) -> np.ndarray:
    """frames (T, H, W, 3), uint8 or float -> float32 in [0, 1] (NaN -> 0), after checking the shape."""
    clip = np.asarray(frames)
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {clip.shape}")
    if clip.shape[0] < 3:
        raise ValueError(f"need at least 3 frames, got {clip.shape[0]}")
    if clip.dtype == np.uint8:
        return clip.astype(np.float32) / 255.0
    if not np.issubdtype(clip.dtype, np.floating):
        raise ValueError(f"frames must be uint8 or float in [0, 1], got {clip.dtype}")
    return np.clip(np.nan_to_num(clip.astype(np.float32)), 0.0, 1.0)


def _shift(images: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """images (T, H, W) shifted so that out[:, y, x] = images[:, y + dy, x + dx] (fill outside)."""
    shifted = np.full_like(images, fill)
    H, W = images.shape[1:]
    shifted[:, max(-dy, 0) : H - max(dy, 0), max(-dx, 0) : W - max(dx, 0)] = images[
        :, max(dy, 0) : H - max(-dy, 0), max(dx, 0) : W - max(-dx, 0)
    ]
    return shifted


def label(mask: np.ndarray) -> np.ndarray:
    """4-connected components of each frame of mask (T, H, W) -> int32 labels (T, H, W), 0 = background,
    1..K numbered over the whole clip. Min-label propagation with pointer jumping (numpy only)."""
    unlabelled = mask.size  # larger than any pixel index: marks background
    # (T, H, W) pixel-index labels: each foreground pixel starts as its own flat index
    labels = np.where(mask, np.arange(mask.size).reshape(mask.shape), unlabelled)
    while True:
        new_labels = labels.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            np.minimum(new_labels, _shift(labels, dy, dx, unlabelled), out=new_labels)
        new_labels[~mask] = unlabelled
        flat_labels = new_labels.reshape(-1)  # a view: writing it updates new_labels
        is_foreground = flat_labels < unlabelled
        # pointer jumping: a label is a pixel index inside the same component
        flat_labels[is_foreground] = flat_labels[flat_labels[is_foreground]]
        if np.array_equal(new_labels, labels):
            break
        labels = new_labels
    components = np.zeros(mask.shape, np.int32)
    components[mask] = np.unique(labels[mask], return_inverse=True)[1].reshape(-1) + 1
    return components


@dataclass
class _Blobs:
    frame: np.ndarray  # (K,) frame index
    area: np.ndarray  # (K,) soft area, px^2
    centre: np.ndarray  # (K, 2) (x, y) px
    colour: np.ndarray  # (K, 3) mean core colour in [0, 1]
    background: np.ndarray  # (T,) mean background level
    region: np.ndarray  # (T, H, W) blob index + 1 (0 = background)


def _box_filter(images: np.ndarray, radius: int, op) -> np.ndarray:
    """Separable (2 radius + 1)^2 max/min/sum filter (op = np.maximum/np.minimum/np.add) of each frame of
    images (T, H, W); pixels outside the image count as the identity of op (-inf, inf or 0)."""
    fill = {np.maximum: -np.inf, np.minimum: np.inf, np.add: 0.0}[op]
    filtered = images.astype(np.float32)
    for axis in (1, 2):
        accumulated = filtered.copy()
        for offset in range(1, radius + 1):
            for step in (offset, -offset):
                dy_dx = (step, 0) if axis == 1 else (0, step)
                accumulated = op(accumulated, _shift(filtered, *dy_dx, fill))
        filtered = accumulated
    return filtered


def _segment(clip: np.ndarray) -> _Blobs:
    """Bright blobs of clip (T, H, W, 3) float in [0, 1] with their soft area, centroid and colour."""
    T, H, W, _ = clip.shape
    brightness = clip.max(-1)  # (T, H, W) max channel
    # 3x3 mean: isolated noisy pixels do not become blobs
    smooth = _box_filter(brightness, 1, np.add) / 9.0
    foreground = smooth > FG_THRESHOLD
    # seeds: pixels near the local maximum of the smoothed image. Two touching balls share one
    # foreground component but keep separate seeds, because the bridge between them is dimmer.
    dark_level = np.array(  # (T, 1, 1) median brightness of each frame's non-foreground pixels
        [np.median(brightness[t][~foreground[t]]) if (~foreground[t]).any() else 0.0 for t in range(T)]
    )[:, None, None]
    # height above the dark level relative to the 5x5 maximum's: 1 at a local peak; seeds are the pixels
    # within 20% of their peak
    peak_fraction = (smooth - dark_level) / np.maximum(_box_filter(smooth, 2, np.maximum) - dark_level, 1e-3)
    seeds = label(foreground & (peak_fraction >= 0.8))
    # grow seeds through the foreground and a 1 px rim around it (4-neighbour steps, contested pixels go
    # to the larger label; at most 8 steps); foreground left without a seed keeps its own component
    foreground_and_rim = _box_filter(foreground.astype(np.float32), 1, np.maximum) > 0
    grown = seeds.copy()
    for _ in range(8):
        next_grown = grown.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            np.maximum(next_grown, _shift(grown, dy, dx, 0), out=next_grown)
        next_grown = np.where((grown == 0) & foreground_and_rim, next_grown, grown)
        if np.array_equal(next_grown, grown):
            break
        grown = next_grown
    unseeded = label(foreground & (grown == 0))
    region = np.where(unseeded > 0, unseeded + grown.max(), grown)  # (T, H, W)
    num_blobs = int(region.max())

    # background level: per-pixel temporal median over frames where the pixel is not in a blob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pixel_background = np.nanmedian(np.where(region == 0, brightness, np.nan), axis=0)  # (H, W)
        overall_background = np.nanmedian(np.where(region == 0, brightness, np.nan))
    # pixels covered in every frame take the clip-wide median (0 if there is no background at all)
    pixel_background = np.where(
        np.isnan(pixel_background),
        0.0 if np.isnan(overall_background) else overall_background,
        pixel_background,
    )
    is_background = region == 0
    background = np.array(
        [brightness[t][is_background[t]].mean() if is_background[t].any() else 0.0 for t in range(T)]
    )

    flat_region = region.reshape(-1)
    in_blob = flat_region > 0
    blob_ids = flat_region[in_blob] - 1  # (P,) blob index of each blob pixel
    blob_brightness = brightness.reshape(-1)[in_blob]  # (P,)
    blob_background = np.broadcast_to(pixel_background, brightness.shape).reshape(-1)[in_blob]  # (P,)
    peak_brightness = np.zeros(num_blobs)
    np.maximum.at(peak_brightness, blob_ids, blob_brightness)
    # coverage estimate: fraction of the pixel covered by the ball, read from where its brightness lies
    # between the background behind it (0) and the blob's brightest pixel (1); anti-aliased edges are partial
    coverage = np.clip(
        (blob_brightness - blob_background) / np.maximum(peak_brightness[blob_ids] - blob_background, 1e-3),
        0.0,
        1.0,
    )
    pixel_t, pixel_y, pixel_x = np.nonzero(region)  # same order as flat_region[in_blob]
    area = np.bincount(blob_ids, coverage, num_blobs)  # soft area, px^2
    safe_area = np.maximum(area, 1e-9)
    # coverage-weighted centroid of the pixel centres (+ 0.5), px
    centre_x = np.bincount(blob_ids, coverage * (pixel_x + 0.5), num_blobs) / safe_area
    centre_y = np.bincount(blob_ids, coverage * (pixel_y + 0.5), num_blobs) / safe_area
    blob_rgb = clip.reshape(-1, 3)[in_blob]  # (P, 3)
    # colour from the fully covered interior (edge pixels mix in the background); the 1e-3 weight keeps a
    # colour for blobs without any interior pixel
    colour_weight = np.where(coverage >= 0.75, coverage, 1e-3 * coverage)
    colour = (
        np.stack([np.bincount(blob_ids, colour_weight * blob_rgb[:, c], num_blobs) for c in range(3)], 1)
        / np.maximum(np.bincount(blob_ids, colour_weight, num_blobs), 1e-9)[:, None]
    )
    frame = np.zeros(num_blobs, int)
    frame[blob_ids] = pixel_t
    big_enough = area >= MIN_AREA * (min(H, W) / 64.0) ** 2  # MIN_AREA is px^2 at 64 px
    # renumber the kept blobs 1..K' (dropped ones become background 0)
    new_id = np.zeros(num_blobs + 1, np.int64)
    new_id[1:][big_enough] = np.arange(1, big_enough.sum() + 1)
    return _Blobs(
        frame[big_enough],
        area[big_enough],
        np.stack([centre_x, centre_y], 1)[big_enough],
        colour[big_enough],
        background,
        new_id[region],
    )


# -----------------------------------------------------------------------------
# tracking


def _track(blobs: _Blobs, T: int, scale: float):
    """Greedy nearest-neighbour tracking. Returns pos (K, T, 2) (NaN when missing/merged), area (K, T),
    colour (K, T, 3) (NaN when missing/merged) and present (K, T) bool (detected or merged).
    scale = image size / 64 (px distances are compared at the 64 px reference)."""
    pos, area, colour, present = [], [], [], []  # per track

    def new_track(t, det):
        track_pos = np.full((T, 2), np.nan)
        track_area = np.full(T, np.nan)
        track_colour = np.full((T, 3), np.nan)
        track_pos[t], track_area[t], track_colour[t] = blobs.centre[det], blobs.area[det], blobs.colour[det]
        track_present = np.zeros(T, bool)
        track_present[t] = True
        pos.append(track_pos)
        area.append(track_area)
        colour.append(track_colour)
        present.append(track_present)

    for t in range(T):
        detections = np.flatnonzero(blobs.frame == t)  # blob indices in frame t
        # tracks seen (detected or merged) in one of the last 3 frames can still be continued
        live_tracks = [k for k in range(len(pos)) if present[k][max(t - 3, 0) : t].any()]
        predicted, ref_area, ref_colour = [], [], []  # per live track
        for track in live_tracks:
            seen_frames = np.flatnonzero(~np.isnan(pos[track][:t, 0]))
            last_seen = seen_frames[-1] if len(seen_frames) else None
            if last_seen is None:
                predicted.append(np.array([np.nan, np.nan]))
            else:
                # constant velocity from the last two positions (none if only one is known)
                velocity = (
                    pos[track][last_seen] - pos[track][last_seen - 1]
                    if last_seen >= 1 and not np.isnan(pos[track][last_seen - 1, 0])
                    else 0.0
                )
                predicted.append(pos[track][last_seen] + velocity * (t - last_seen))
            ref_area.append(np.nanmedian(area[track][:t]) if np.isfinite(area[track][:t]).any() else np.nan)
            ref_colour.append(colour[track][last_seen] if last_seen is not None else np.full(3, np.nan))
        # cost (rows: live tracks, columns: detections) in px at 64 px: distance to the prediction +
        # colour and size mismatch (a 0.1 colour difference weighs like 4 px, a factor e in area like 8 px)
        cost = np.full((len(live_tracks), len(detections)), np.inf)
        for row in range(len(live_tracks)):
            for col, det in enumerate(detections):
                if np.isnan(predicted[row][0]):
                    continue
                distance = np.hypot(*(blobs.centre[det] - predicted[row])) / scale
                colour_diff = np.abs(blobs.colour[det] - ref_colour[row]).max()
                log_area_ratio = (
                    abs(np.log(blobs.area[det] / ref_area[row])) if np.isfinite(ref_area[row]) else 0.0
                )
                cost[row, col] = distance + 40.0 * colour_diff + 8.0 * log_area_ratio
        owner = {}  # detection -> track
        while np.isfinite(cost).any():
            row, col = np.unravel_index(np.argmin(cost), cost.shape)
            track, det = live_tracks[row], detections[col]
            owner[det] = track
            pos[track][t], area[track][t], colour[track][t] = (
                blobs.centre[det],
                blobs.area[det],
                blobs.colour[det],
            )
            present[track][t] = True
            cost[row, :], cost[:, col] = np.inf, np.inf
        # merges: unmatched tracks within reach of a matched blob whose area ~ the sum of theirs
        merged_into: dict[int, list[int]] = {}  # detection -> rows of the unmatched tracks merged into it
        for row, track in enumerate(live_tracks):
            if present[track][t] or np.isnan(predicted[row][0]) or not np.isfinite(ref_area[row]):
                continue
            seen_frames = np.flatnonzero(~np.isnan(pos[track][:t, 0]))
            last_pos = pos[track][seen_frames[-1]]
            # a blob it merged into lies within the expected step (+ 3 px at 64 px) of its last or
            # predicted position
            reach = np.hypot(*(predicted[row] - last_pos)) + 3.0 * scale
            best_det, best_area_err = None, np.inf
            for det, owner_track in owner.items():
                blob_yx = np.argwhere(blobs.region[t] == det + 1) + 0.5  # (P, 2) pixel centres (y, x)
                blob_distance = min(
                    np.hypot(*(blob_yx[:, ::-1] - point).T).min() for point in (predicted[row], last_pos)
                )
                area_err = abs(blobs.area[det] - ref_area[live_tracks.index(owner_track)] - ref_area[row])
                if blob_distance <= reach and area_err < best_area_err:
                    best_det, best_area_err = det, area_err
            if best_det is not None:
                merged_into.setdefault(best_det, []).append(row)
        for det, member_rows in merged_into.items():
            owner_track = owner[det]
            owner_area = (
                np.nanmedian(area[owner_track][:t])
                if np.isfinite(area[owner_track][:t]).any()
                else blobs.area[det]
            )
            members_area = sum(ref_area[row] for row in member_rows)
            # accept the merge if the blob's area is the owner's plus the members' within 30% of the
            # smallest member plus 8% of the owner (soft areas of touching balls overlap a little)
            if (
                abs(blobs.area[det] - (members_area + owner_area))
                <= 0.3 * min(ref_area[row] for row in member_rows) + 0.08 * owner_area
            ):
                for merged_track in [owner_track] + [live_tracks[row] for row in member_rows]:
                    present[merged_track][t] = True
                    pos[merged_track][t], area[merged_track][t], colour[merged_track][t] = (
                        np.nan,
                        np.nan,
                        np.nan,
                    )
        for det in detections:
            if det not in owner:
                new_track(t, det)
    if not pos:
        return np.zeros((0, T, 2)), np.zeros((0, T)), np.zeros((0, T, 3)), np.zeros((0, T), bool)
    return np.stack(pos), np.stack(area), np.stack(colour), np.stack(present)


# -----------------------------------------------------------------------------
# the checker


def _motion_residuals(pos: np.ndarray, area: np.ndarray, present: np.ndarray, size: tuple[int, int], scale):
    """Per-track constant-gravity residuals. Returns residual norms (K, T) attributed to the frame where
    the unexpected displacement shows (t + 1 for the triple centred at t), and the gravity estimate."""
    K, T, _ = pos.shape
    H, W = size
    residual = np.zeros((K, T))
    if K == 0:
        return residual, 0.0
    velocity = pos[:, 1:] - pos[:, :-1]  # (K, T-1, 2), interval k = frame k -> k + 1
    accel = velocity[:, 1:] - velocity[:, :-1]  # (K, T-2, 2), triple centred at frame k + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # first gravity guess: median vertical acceleration over all triples (bounces included)
        rough_gravity = np.nanmedian(accel[..., 1]) if np.isfinite(accel[..., 1]).any() else 0.0
        radius = np.sqrt(np.nanmedian(area, axis=1) / np.pi)  # (K,) px, from the median soft area
    radius = np.nan_to_num(radius)
    rough_gravity = float(np.nan_to_num(rough_gravity))

    # which intervals could contain a bounce: going from p0 to the wall (or other ball) and on to p1 takes
    # at least d0 + d1 px, which must fit the local speed, read from up to 2 intervals on either side
    # (never from the suspicious interval itself, which a teleport would make huge)
    def local_reach(speed):  # (..., T-1) px/frame -> (..., T-1) px reach per interval
        n = speed.shape[-1]
        pad = np.full(speed.shape[:-1] + (2,), np.nan)
        padded = np.concatenate([pad, speed, pad], -1)  # interval i is padded[..., i + 2]
        # offsets 0, 1, 3, 4 in padded = intervals i - 2, i - 1, i + 1, i + 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # despike: a real fast interval has a similar speed within 2 intervals (a teleport does not)
            # (or unknown: a missing/merged neighbour gives the benefit of the doubt)
            neighbours = np.stack([padded[..., o : o + n] for o in (0, 1, 3, 4)])
            adjacent = np.stack([padded[..., 1 : n + 1], padded[..., 3 : n + 3]])  # intervals i -/+ 1
            speed_cap = np.nanmax(neighbours, 0) + abs(rough_gravity) + scale
            speed_cap[np.isnan(adjacent).any(0)] = np.inf
            padded[..., 2 : n + 2] = np.where(speed > speed_cap, speed_cap, speed)  # NaN (missing) stays NaN
            neighbour_max = np.nanmax(np.stack([padded[..., o : o + n] for o in (0, 1, 3, 4)]), 0)
        # no known neighbour: fall back to the interval's own speed; + scale = 1 px slack at 64 px
        return np.where(np.isnan(neighbour_max), speed, neighbour_max) + scale

    start, end = pos[:, :-1], pos[:, 1:]  # (K, T-1, 2) interval endpoints
    radius_col = radius[:, None]
    near_wall = {}  # wall -> (K, T-1) bool: a bounce off it fits in the interval
    for wall, axis, distance_to_wall in (
        ("left", 0, lambda p: p[..., 0] - radius_col),
        ("right", 0, lambda p: W - p[..., 0] - radius_col),
        ("ceiling", 1, lambda p: p[..., 1] - radius_col),
        ("floor", 1, lambda p: H - p[..., 1] - radius_col),
    ):
        reach = local_reach(np.abs(velocity[..., axis])) + abs(rough_gravity)  # (K, T-1)
        near_wall[wall] = (
            np.clip(distance_to_wall(start), 0, None) + np.clip(distance_to_wall(end), 0, None) <= reach
        )
    contact = np.zeros((K, T - 1), bool)  # a collision with another ball fits in the interval
    for ball in range(K):
        for other in range(K):
            if ball == other:
                continue
            # gaps between the two balls' edges at the interval's start and end
            gap_start = (
                np.hypot(*(pos[ball, :-1] - pos[other, :-1]).T) - radius[ball] - radius[other]
            )  # (T-1,) px
            gap_end = np.hypot(*(pos[ball, 1:] - pos[other, 1:]).T) - radius[ball] - radius[other]
            # the closing speed is at most the sum of both speeds (frame velocities blur bounces)
            reach = local_reach(np.hypot(*velocity[ball].T)) + local_reach(np.hypot(*velocity[other].T))
            gap_start, gap_end = np.clip(gap_start, 0, None), np.clip(gap_end, 0, None)
            # other merged into a blob at one endpoint (position unknown): judge by the other endpoint
            other_hidden_start = present[other, :-1] & np.isnan(pos[other, :-1, 0])
            other_hidden_end = present[other, 1:] & np.isnan(pos[other, 1:, 0])
            contact[ball] |= (
                (gap_start + gap_end <= reach)
                | (other_hidden_start & (gap_end <= reach))
                | (other_hidden_end & (gap_start <= reach))
            )

    def either_interval(per_interval):  # (K, T-1) per interval -> (K, T-2) per triple (intervals t-1 and t)
        return per_interval[:, :-1] | per_interval[:, 1:]

    free_flight = ~(
        either_interval(contact)
        | either_interval(near_wall["left"] | near_wall["right"] | near_wall["ceiling"] | near_wall["floor"])
    )
    accel_y = accel[..., 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # robust gravity: median vertical acceleration over the triples with no possible bounce
        free_accel_y = accel_y[free_flight & np.isfinite(accel_y)]
        gravity = float(np.median(free_accel_y)) if free_accel_y.size else rough_gravity
    residual_x, residual_y = accel[..., 0].copy(), accel_y - gravity  # (K, T-2)
    accel_tol = ACCEL_TOL * scale
    # excuse impulses pointing away from a reachable wall
    residual_x[either_interval(near_wall["left"]) & (residual_x > -accel_tol)] = 0.0
    residual_x[either_interval(near_wall["right"]) & (residual_x < accel_tol)] = 0.0
    residual_y[either_interval(near_wall["floor"]) & (residual_y < accel_tol)] = 0.0
    residual_y[either_interval(near_wall["ceiling"]) & (residual_y > -accel_tol)] = 0.0
    touching = either_interval(contact)
    residual_x[touching], residual_y[touching] = 0.0, 0.0
    residual[:, 2:] = np.nan_to_num(np.hypot(residual_x, residual_y))
    return residual, gravity


def _last_valid(values: np.ndarray) -> np.ndarray:
    """values (K, T, ...) -> the latest non-NaN value strictly before each frame (NaN if none)."""
    previous = np.full_like(values, np.nan)
    for k in range(values.shape[0]):
        last_value = None
        for t in range(values.shape[1]):
            previous[k, t] = np.nan if last_value is None else last_value
            if not np.isnan(values[k, t]).any():
                last_value = values[k, t]
    return previous


def physics_report(frames: np.ndarray) -> PhysicsReport:
    """Full checker output for a clip (T, H, W, 3), uint8 or float in [0, 1]. See the module docstring."""
    clip = _as_float(frames)  # (T, H, W, 3)
    T, H, W, _ = clip.shape
    scale = min(H, W) / 64.0  # px tolerances are given at 64 px
    blobs = _segment(clip)
    pos, area, colour, present = _track(blobs, T, scale)
    per_frame = {term: np.zeros(T) for term in TERMS}

    counts = present.sum(0)  # (T,)
    per_frame["count"][1:] = np.abs(np.diff(counts))
    if len(pos):
        # compare with the previous frame's measurement; colour also across merged/missing frames (two
        # same-coloured balls may swap identities while merged, which changes size but not colour)
        prev_area = np.concatenate([np.full((len(area), 1), np.nan), area[:, :-1]], 1)  # (K, T)
        prev_colour = _last_valid(colour)  # (K, T, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            area_change = np.abs(area - prev_area) / np.fmax(area, prev_area)  # (K, T) relative
            colour_change = np.abs(colour - prev_colour).max(-1)  # (K, T) max channel
        per_frame["area"] = np.nan_to_num(np.clip(area_change - AREA_TOL, 0, None)).sum(0)
        per_frame["colour"] = np.nan_to_num(np.clip(colour_change - COLOUR_TOL, 0, None)).sum(0)
    residual, gravity = _motion_residuals(pos, area, present, (H, W), scale)  # (K, T)
    excess = np.clip(residual - ACCEL_TOL * scale, 0, None)
    jump_px = JUMP * scale
    if len(pos):
        # residual beyond the tolerance up to jump_px is "accel"; the part beyond jump_px is "jump"
        per_frame["accel"] = np.minimum(excess, jump_px).sum(0)
        per_frame["jump"] = np.clip(residual - jump_px, 0, None).sum(0)
    per_frame["flicker"][1:] = np.clip(np.abs(np.diff(blobs.background)) - FLICKER_TOL, 0, None)

    terms = {term: float(series.sum() / (T - 1)) for term, series in per_frame.items()}
    return PhysicsReport(float(sum(terms.values())), terms, per_frame, counts, pos, gravity, colour)
