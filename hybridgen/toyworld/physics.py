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
        terms = ", ".join(f"{k}={v:.3f}" for k, v in self.terms.items())
        return f"PhysicsReport(total={self.total:.3f}: {terms}; g={self.gravity:.2f} px/frame^2)"


def physics_error(frames: np.ndarray) -> float:
    """Scalar physics violation score of a clip (T, H, W, 3), uint8 or float in [0, 1]; 0 = clean."""
    return physics_report(frames).total


# -----------------------------------------------------------------------------
# segmentation


def _as_float(frames: np.ndarray) -> np.ndarray:
    x = np.asarray(frames)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3), got {x.shape}")
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 frames, got {x.shape[0]}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"frames must be uint8 or float in [0, 1], got {x.dtype}")
    return np.clip(np.nan_to_num(x.astype(np.float32)), 0.0, 1.0)


def _shift(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """a (T, H, W) shifted so that out[:, y, x] = a[:, y + dy, x + dx] (fill outside)."""
    out = np.full_like(a, fill)
    H, W = a.shape[1:]
    out[:, max(-dy, 0) : H - max(dy, 0), max(-dx, 0) : W - max(dx, 0)] = a[
        :, max(dy, 0) : H - max(-dy, 0), max(dx, 0) : W - max(-dx, 0)
    ]
    return out


def label(mask: np.ndarray) -> np.ndarray:
    """4-connected components of each frame of mask (T, H, W) -> int32 labels (T, H, W), 0 = background,
    1..K numbered over the whole clip. Min-label propagation with pointer jumping (numpy only)."""
    big = mask.size
    lab = np.where(mask, np.arange(mask.size).reshape(mask.shape), big)  # (T, H, W) pixel-index labels
    while True:
        new = lab.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            np.minimum(new, _shift(lab, dy, dx, big), out=new)
        new[~mask] = big
        flat = new.reshape(-1)
        fg = flat < big
        flat[fg] = flat[flat[fg]]  # pointer jumping: a label is a pixel index inside the same component
        if np.array_equal(new, lab):
            break
        lab = new
    out = np.zeros(mask.shape, np.int32)
    out[mask] = np.unique(lab[mask], return_inverse=True)[1].reshape(-1) + 1
    return out


@dataclass
class _Blobs:
    frame: np.ndarray  # (K,) frame index
    area: np.ndarray  # (K,) soft area, px^2
    centre: np.ndarray  # (K, 2) (x, y) px
    colour: np.ndarray  # (K, 3) mean core colour in [0, 1]
    background: np.ndarray  # (T,) mean background level
    region: np.ndarray  # (T, H, W) blob index + 1 (0 = background)


def _filter(a: np.ndarray, radius: int, op) -> np.ndarray:
    """Separable (2 radius + 1)^2 max/min/sum filter of each frame of a (T, H, W); zero/identity outside."""
    fill = {np.maximum: -np.inf, np.minimum: np.inf, np.add: 0.0}[op]
    out = a.astype(np.float32)
    for axis in (1, 2):
        acc = out.copy()
        for d in range(1, radius + 1):
            for s in (d, -d):
                sh = (s, 0) if axis == 1 else (0, s)
                acc = op(acc, _shift(out, *sh, fill))
        out = acc
    return out


def _segment(x: np.ndarray) -> _Blobs:
    T, H, W, _ = x.shape
    m = x.max(-1)  # (T, H, W) max channel
    sm = _filter(m, 1, np.add) / 9.0  # 3x3 mean: isolated noisy pixels do not become blobs
    fg = sm > FG_THRESHOLD
    # seeds: pixels near the local maximum of the smoothed image. Two touching balls share one
    # foreground component but keep separate seeds, because the bridge between them is dimmer.
    low = np.array([np.median(m[t][~fg[t]]) if (~fg[t]).any() else 0.0 for t in range(T)])[:, None, None]
    level = (sm - low) / np.maximum(_filter(sm, 2, np.maximum) - low, 1e-3)
    seeds = label(fg & (level >= 0.8))
    # grow seeds through the foreground and a 1 px rim around it (4-neighbour steps, contested pixels go
    # to the larger label); foreground left without a seed keeps its own component
    rim = _filter(fg.astype(np.float32), 1, np.maximum) > 0
    core = seeds.copy()
    for _ in range(8):
        grow = core.copy()
        for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            np.maximum(grow, _shift(core, dy, dx, 0), out=grow)
        grow = np.where((core == 0) & rim, grow, core)
        if np.array_equal(grow, core):
            break
        core = grow
    rest = label(fg & (core == 0))
    region = np.where(rest > 0, rest + core.max(), core)  # (T, H, W)
    K = int(region.max())

    # background level: per-pixel temporal median over frames where the pixel is not in a blob
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        bgpix = np.nanmedian(np.where(region == 0, m, np.nan), axis=0)  # (H, W)
        fallback = np.nanmedian(np.where(region == 0, m, np.nan))
    bgpix = np.where(np.isnan(bgpix), 0.0 if np.isnan(fallback) else fallback, bgpix)
    bgmask = region == 0
    background = np.array([m[t][bgmask[t]].mean() if bgmask[t].any() else 0.0 for t in range(T)])

    flat = region.reshape(-1)
    sel = flat > 0
    ids = flat[sel] - 1
    mm = m.reshape(-1)[sel]
    bb = np.broadcast_to(bgpix, m.shape).reshape(-1)[sel]
    peak = np.zeros(K)
    np.maximum.at(peak, ids, mm)
    w = np.clip((mm - bb) / np.maximum(peak[ids] - bb, 1e-3), 0.0, 1.0)  # coverage estimate
    tt, yy, xx = np.nonzero(region)  # same order as flat[sel]
    area = np.bincount(ids, w, K)
    safe = np.maximum(area, 1e-9)
    cx = np.bincount(ids, w * (xx + 0.5), K) / safe
    cy = np.bincount(ids, w * (yy + 0.5), K) / safe
    rgb = x.reshape(-1, 3)[sel]
    wc = np.where(w >= 0.75, w, 1e-3 * w)  # colour from the fully covered interior
    colour = (
        np.stack([np.bincount(ids, wc * rgb[:, c], K) for c in range(3)], 1)
        / np.maximum(np.bincount(ids, wc, K), 1e-9)[:, None]
    )
    frame = np.zeros(K, int)
    frame[ids] = tt
    keep = area >= MIN_AREA * (min(H, W) / 64.0) ** 2
    remap = np.zeros(K + 1, np.int64)
    remap[1:][keep] = np.arange(1, keep.sum() + 1)
    return _Blobs(
        frame[keep], area[keep], np.stack([cx, cy], 1)[keep], colour[keep], background, remap[region]
    )


# -----------------------------------------------------------------------------
# tracking


def _track(blobs: _Blobs, T: int, scale: float):
    """Greedy nearest-neighbour tracking. Returns pos (K, T, 2) (NaN when missing/merged), area (K, T),
    colour (K, T, 3) (NaN when missing/merged) and present (K, T) bool (detected or merged)."""
    pos, area, colour, present = [], [], [], []

    def new_track(t, d):
        p = np.full((T, 2), np.nan)
        a = np.full(T, np.nan)
        c = np.full((T, 3), np.nan)
        p[t], a[t], c[t] = blobs.centre[d], blobs.area[d], blobs.colour[d]
        pr = np.zeros(T, bool)
        pr[t] = True
        pos.append(p), area.append(a), colour.append(c), present.append(pr)

    for t in range(T):
        dets = np.flatnonzero(blobs.frame == t)
        live = [k for k in range(len(pos)) if present[k][max(t - 3, 0) : t].any()]
        pred, ref_area, ref_col = [], [], []
        for k in live:
            seen = np.flatnonzero(~np.isnan(pos[k][:t, 0]))
            last = seen[-1] if len(seen) else None
            if last is None:
                pred.append(np.array([np.nan, np.nan]))
            else:
                v = (
                    pos[k][last] - pos[k][last - 1]
                    if last >= 1 and not np.isnan(pos[k][last - 1, 0])
                    else 0.0
                )
                pred.append(pos[k][last] + v * (t - last))
            ref_area.append(np.nanmedian(area[k][:t]) if np.isfinite(area[k][:t]).any() else np.nan)
            ref_col.append(colour[k][last] if last is not None else np.full(3, np.nan))
        # cost in px: distance to the prediction + colour and size mismatch
        cost = np.full((len(live), len(dets)), np.inf)
        for a_ in range(len(live)):
            for b_, d in enumerate(dets):
                if np.isnan(pred[a_][0]):
                    continue
                dist = np.hypot(*(blobs.centre[d] - pred[a_])) / scale
                dcol = np.abs(blobs.colour[d] - ref_col[a_]).max()
                darea = abs(np.log(blobs.area[d] / ref_area[a_])) if np.isfinite(ref_area[a_]) else 0.0
                cost[a_, b_] = dist + 40.0 * dcol + 8.0 * darea
        owner = {}  # detection -> track
        while np.isfinite(cost).any():
            a_, b_ = np.unravel_index(np.argmin(cost), cost.shape)
            k, d = live[a_], dets[b_]
            owner[d] = k
            pos[k][t], area[k][t], colour[k][t] = blobs.centre[d], blobs.area[d], blobs.colour[d]
            present[k][t] = True
            cost[a_, :], cost[:, b_] = np.inf, np.inf
        # merges: unmatched tracks within reach of a matched blob whose area ~ the sum of theirs
        joined: dict[int, list[int]] = {}
        for a_, k in enumerate(live):
            if present[k][t] or np.isnan(pred[a_][0]) or not np.isfinite(ref_area[a_]):
                continue
            seen = np.flatnonzero(~np.isnan(pos[k][:t, 0]))
            last = pos[k][seen[-1]]
            reach = np.hypot(*(pred[a_] - last)) + 3.0 * scale
            best, best_err = None, np.inf
            for d, k2 in owner.items():
                yx = np.argwhere(blobs.region[t] == d + 1) + 0.5  # (P, 2) pixel centres (y, x)
                dist = min(np.hypot(*(yx[:, ::-1] - p).T).min() for p in (pred[a_], last))
                err = abs(blobs.area[d] - ref_area[live.index(k2)] - ref_area[a_])
                if dist <= reach and err < best_err:
                    best, best_err = d, err
            if best is not None:
                joined.setdefault(best, []).append(a_)
        for d, members in joined.items():
            k2 = owner[d]
            a_m = np.nanmedian(area[k2][:t]) if np.isfinite(area[k2][:t]).any() else blobs.area[d]
            a_u = sum(ref_area[a_] for a_ in members)
            if abs(blobs.area[d] - (a_u + a_m)) <= 0.3 * min(ref_area[a_] for a_ in members) + 0.08 * a_m:
                for kk in [k2] + [live[a_] for a_ in members]:
                    present[kk][t] = True
                    pos[kk][t], area[kk][t], colour[kk][t] = np.nan, np.nan, np.nan
        for d in dets:
            if d not in owner:
                new_track(t, d)
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
    res = np.zeros((K, T))
    if K == 0:
        return res, 0.0
    vel = pos[:, 1:] - pos[:, :-1]  # (K, T-1, 2), interval k = frame k -> k + 1
    acc = vel[:, 1:] - vel[:, :-1]  # (K, T-2, 2), triple centred at frame k + 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        g0 = np.nanmedian(acc[..., 1]) if np.isfinite(acc[..., 1]).any() else 0.0
        radius = np.sqrt(np.nanmedian(area, axis=1) / np.pi)  # (K,)
    radius = np.nan_to_num(radius)
    g0 = float(np.nan_to_num(g0))

    # which intervals could contain a bounce: going from p0 to the wall (or other ball) and on to p1 takes
    # at least d0 + d1 px, which must fit the local speed, read from up to 2 intervals on either side
    # (never from the suspicious interval itself, which a teleport would make huge)
    def local(v):  # (..., T-1) px/frame -> (..., T-1) px reach per interval
        n = v.shape[-1]
        pad = np.full(v.shape[:-1] + (2,), np.nan)
        vp = np.concatenate([pad, v, pad], -1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # despike: a real fast interval has a similar speed within 2 intervals (a teleport does not)
            # (or unknown: a missing/merged neighbour gives the benefit of the doubt)
            window = np.stack([vp[..., o : o + n] for o in (0, 1, 3, 4)])
            inner = np.stack([vp[..., 1 : n + 1], vp[..., 3 : n + 3]])
            cap = np.nanmax(window, 0) + abs(g0) + scale
            cap[np.isnan(inner).any(0)] = np.inf
            vp[..., 2 : n + 2] = np.where(v > cap, cap, v)  # NaN (missing) stays NaN
            m = np.nanmax(np.stack([vp[..., o : o + n] for o in (0, 1, 3, 4)]), 0)
        return np.where(np.isnan(m), v, m) + scale

    p0, p1 = pos[:, :-1], pos[:, 1:]  # (K, T-1, 2) interval endpoints
    r = radius[:, None]
    near = {}
    for name, axis, dist in (
        ("left", 0, lambda p: p[..., 0] - r),
        ("right", 0, lambda p: W - p[..., 0] - r),
        ("ceiling", 1, lambda p: p[..., 1] - r),
        ("floor", 1, lambda p: H - p[..., 1] - r),
    ):
        reach = local(np.abs(vel[..., axis])) + abs(g0)  # (K, T-1)
        near[name] = np.clip(dist(p0), 0, None) + np.clip(dist(p1), 0, None) <= reach
    contact = np.zeros((K, T - 1), bool)
    for i in range(K):
        for j in range(K):
            if i == j:
                continue
            gap0 = np.hypot(*(pos[i, :-1] - pos[j, :-1]).T) - radius[i] - radius[j]  # (T-1,) px
            gap1 = np.hypot(*(pos[i, 1:] - pos[j, 1:]).T) - radius[i] - radius[j]
            # the closing speed is at most the sum of both speeds (frame velocities blur bounces)
            reach = local(np.hypot(*vel[i].T)) + local(np.hypot(*vel[j].T))
            gap0, gap1 = np.clip(gap0, 0, None), np.clip(gap1, 0, None)
            # j merged into a blob at one endpoint (position unknown): judge by the other endpoint
            hidden0 = present[j, :-1] & np.isnan(pos[j, :-1, 0])
            hidden1 = present[j, 1:] & np.isnan(pos[j, 1:, 0])
            contact[i] |= (gap0 + gap1 <= reach) | (hidden0 & (gap1 <= reach)) | (hidden1 & (gap0 <= reach))

    def either(b):  # (K, T-1) per interval -> (K, T-2) per triple (intervals t-1 and t)
        return b[:, :-1] | b[:, 1:]

    free = ~(either(contact) | either(near["left"] | near["right"] | near["ceiling"] | near["floor"]))
    ay = acc[..., 1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pick = ay[free & np.isfinite(ay)]
        g = float(np.median(pick)) if pick.size else g0
    rx, ry = acc[..., 0].copy(), ay - g  # (K, T-2)
    tol = ACCEL_TOL * scale
    # excuse impulses pointing away from a reachable wall
    rx[either(near["left"]) & (rx > -tol)] = 0.0
    rx[either(near["right"]) & (rx < tol)] = 0.0
    ry[either(near["floor"]) & (ry < tol)] = 0.0
    ry[either(near["ceiling"]) & (ry > -tol)] = 0.0
    both = either(contact)
    rx[both], ry[both] = 0.0, 0.0
    res[:, 2:] = np.nan_to_num(np.hypot(rx, ry))
    return res, g


def _last_valid(x: np.ndarray) -> np.ndarray:
    """x (K, T, ...) -> the latest non-NaN value strictly before each frame (NaN if none)."""
    out = np.full_like(x, np.nan)
    for k in range(x.shape[0]):
        last = None
        for t in range(x.shape[1]):
            out[k, t] = np.nan if last is None else last
            if not np.isnan(x[k, t]).any():
                last = x[k, t]
    return out


def physics_report(frames: np.ndarray) -> PhysicsReport:
    """Full checker output for a clip (T, H, W, 3), uint8 or float in [0, 1]. See the module docstring."""
    x = _as_float(frames)  # (T, H, W, 3)
    T, H, W, _ = x.shape
    scale = min(H, W) / 64.0
    blobs = _segment(x)
    pos, area, colour, present = _track(blobs, T, scale)
    per = {k: np.zeros(T) for k in TERMS}

    counts = present.sum(0)  # (T,)
    per["count"][1:] = np.abs(np.diff(counts))
    if len(pos):
        # compare with the previous frame's measurement; colour also across merged/missing frames (two
        # same-coloured balls may swap identities while merged, which changes size but not colour)
        a_prev = np.concatenate([np.full((len(area), 1), np.nan), area[:, :-1]], 1)  # (K, T)
        c_prev = _last_valid(colour)  # (K, T, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            da = np.abs(area - a_prev) / np.fmax(area, a_prev)  # (K, T)
            dc = np.abs(colour - c_prev).max(-1)  # (K, T)
        per["area"] = np.nan_to_num(np.clip(da - AREA_TOL, 0, None)).sum(0)
        per["colour"] = np.nan_to_num(np.clip(dc - COLOUR_TOL, 0, None)).sum(0)
    res, g = _motion_residuals(pos, area, present, (H, W), scale)  # (K, T)
    excess = np.clip(res - ACCEL_TOL * scale, 0, None)
    jump = JUMP * scale
    if len(pos):
        per["accel"] = np.minimum(excess, jump).sum(0)
        per["jump"] = np.clip(res - jump, 0, None).sum(0)
    per["flicker"][1:] = np.clip(np.abs(np.diff(blobs.background)) - FLICKER_TOL, 0, None)

    terms = {k: float(v.sum() / (T - 1)) for k, v in per.items()}
    return PhysicsReport(float(sum(terms.values())), terms, per, counts, pos, g, colour)
