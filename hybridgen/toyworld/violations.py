"""IntPhys-style violation pairs: a plausible clip and an impossible twin, identical up to frame t_v.

Each kind branches the plausible simulation at frame t_v - 1 (or edits frame t_v onward) and continues
under broken physics, so `impossible[:t_v] == plausible[:t_v]` exactly and `impossible[t_v]` differs
visibly. t_v is drawn from the middle half of the clip ([T // 4, T - T // 4]); generation retries new scenes
until the violation is visible (ball on screen and in free flight, a meaningful jump, ...).

The kinds come in two families (`KIND_CATEGORY`): "looks" kinds break the picture or the kinematics at one
frame; "dynamics" kinds (`DYNAMICS_KINDS`) leave every ball's looks alone and change only a force or the energy,
so the motion stays continuous and only its evolution over the next frames (or one bounce) gives it away.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from .world import (
    COLOURS,
    REFERENCE_SIZE,
    Physics,
    Rollout,
    Scene,
    describe,
    random_ball,
    render,
    run,
    sample_scene,
)

VIOLATION_KINDS: dict[str, str] = {
    "teleport": "a ball jumps to a distant position and carries on from there",
    "vanish": "a ball disappears (object permanence)",
    "gravity_reversal": "gravity points upward from the violation frame on",
    "appear": "a new ball pops into existence",
    "duplicate": "a ball splits into two identical balls",
    "colour_change": "a ball suddenly changes colour",
    "freeze": "a moving ball stops dead in mid-air and hangs there",
    "speed_change": "a ball suddenly speeds up or slows down in mid-air",
    "time_warp": "the whole scene switches to fast or slow motion",
    "pass_through_floor": "a ball falls through the floor instead of bouncing",
    "size_change": "a ball suddenly shrinks or grows",
    "reverse": "a ball reverses direction in mid-air",
    "gravity_change": "gravity suddenly gets much weaker or much stronger (still pointing down)",
    "gravity_off": "gravity switches off: balls carry on in straight lines",
    "wind": "a sideways force appears, as if a strong wind started to blow",
    "drag": "the air suddenly turns thick: every ball is strongly slowed down",
    "super_bounce": "a ball bounces off the floor faster than it hit it (energy from nowhere)",
    "dead_bounce": "a ball hits the floor without bouncing and stays down",
}
# Two families. "looks": the original suite, where a single frame breaks the picture (a ball changes colour or
# size, vanishes, appears, splits) or its kinematics (a jump, an abrupt stop, turn or change of speed or clock);
# the outside check of 2026-12 found the bundled critic catches these. "dynamics": a ball looks the same and moves
# on continuously from where it was; only the forces or the energy change (gravity's strength, a new sideways
# force, drag, the restitution of one bounce), so the evidence is how the motion evolves over the next frames.
DYNAMICS_KINDS: tuple[str, ...] = (
    "gravity_change",
    "gravity_off",
    "wind",
    "drag",
    "super_bounce",
    "dead_bounce",
)
LOOKS_KINDS: tuple[str, ...] = tuple(kind for kind in VIOLATION_KINDS if kind not in DYNAMICS_KINDS)
KIND_CATEGORY: dict[str, str] = {
    kind: "dynamics" if kind in DYNAMICS_KINDS else "looks" for kind in VIOLATION_KINDS
}
MIN_FRAMES = 10  # violation pairs need room before and after t_v


@dataclass(frozen=True)
class ViolationPair:
    """A plausible clip and its impossible twin (both uint8 (T, H, W, 3)); they are identical for frames
    < t_violation and differ at t_violation. `ball` is the affected ball (-1: the whole scene)."""

    kind: str
    t_violation: int
    plausible: np.ndarray  # (T, H, W, 3) uint8
    impossible: np.ndarray  # (T, H, W, 3) uint8
    scene: Scene  # the plausible scene
    caption: str  # caption of the plausible scene
    ball: int
    seed: int
    plausible_trajectories: np.ndarray  # (T, n, 2) px
    impossible_trajectories: np.ndarray  # (T, n', 2) px (n' = n + 1 for appear/duplicate)
    impossible_visible: np.ndarray  # (T, n') bool


@dataclass
class _Edit:
    """The impossible branch: trajectories, visibility and per-frame colours/radii for rendering."""

    traj: np.ndarray  # (T, n', 2)
    visible: np.ndarray  # (T, n') bool
    colours: np.ndarray  # (T, n', 3)
    radii: np.ndarray  # (T, n')
    ball: int


# -----------------------------------------------------------------------------
# helpers


def _physics_at(scene: Scene, roll: Rollout, frame: int) -> Physics:
    """A simulation state equal to the plausible run's state at `frame`."""
    phys = Physics.from_scene(scene)
    phys.pos, phys.vel = roll.positions[frame].copy(), roll.velocities[frame].copy()
    phys.time = frame * scene.dt
    return phys


def _base_edit(scene: Scene, roll: Rollout) -> _Edit:
    T, n = roll.positions.shape[:2]
    colours = np.array([COLOURS[b.colour] for b in scene.balls], np.float32)
    return _Edit(
        traj=roll.positions.copy(),
        visible=np.ones((T, n), bool),
        colours=np.broadcast_to(colours, (T, n, 3)).copy(),
        radii=np.broadcast_to(np.array([b.radius for b in scene.balls]), (T, n)).copy(),
        ball=-1,
    )


def _branch(scene: Scene, roll: Rollout, t_v: int, phys: Physics, edit: _Edit, dt: float | None = None):
    """Continue `phys` (state at frame t_v - 1) to the end of the clip, writing frames t_v.. into edit."""
    pos, _ = phys.rollout(scene.num_frames - t_v, scene.dt if dt is None else dt)
    edit.traj[t_v:] = pos


def _branch_stepped(scene: Scene, roll: Rollout, t_v: int, phys: Physics, edit: _Edit, after_step) -> None:
    """Like `_branch`, but one simulation step at a time (the scene's `substeps` per frame), calling
    `after_step(phys, h)` after each step of h seconds. The hook adds what `Physics` cannot express: a force
    other than vertical gravity, or a different restitution at one bounce. Without a hook this is the same
    simulation (the same steps in the same order); with one, splitting each step into the world's motion and
    the hook's change errs by O(h^2) per step (h = dt / 32 by default), far below a pixel over a clip."""
    steps, h = phys.substeps, scene.dt / phys.substeps
    phys.substeps = 1
    for f in range(t_v, scene.num_frames):
        for _ in range(steps):
            phys.advance(h)
            after_step(phys, h)
        edit.traj[f] = phys.pos


def _moving(phys: Physics) -> np.ndarray:
    """(n,) bool: the balls that move under forces (present and not pinned)."""
    return phys.active & ~phys.pinned


def _gap(pos: np.ndarray, radii: np.ndarray, i: int) -> float:
    """Smallest rim-to-rim distance (px) from ball i to the other balls (inf if alone)."""
    d = [np.hypot(*(pos[j] - pos[i])) - radii[i] - radii[j] for j in range(len(pos)) if j != i]
    return min(d) if d else math.inf


def _wall_dist(p: np.ndarray, r: float, size: int) -> float:
    """Distance (px) from a ball's rim to the nearest wall."""
    return float(min(p[0] - r, size - p[0] - r, p[1] - r, size - p[1] - r))


def _free_balls(scene: Scene, roll: Rollout, t_v: int, min_speed: float) -> list[int]:
    """Balls moving at >= min_speed px/frame and clear of walls and other balls around t_v (frames
    t_v - 2 .. t_v + 1), i.e. in free flight where a change of motion cannot pass for a bounce."""
    T, n = roll.positions.shape[:2]
    s, dt = scene.scale, scene.dt
    radii = np.array([b.radius for b in scene.balls])
    out = []
    for i in range(n):
        speed = float(np.hypot(*roll.velocities[t_v - 1, i])) * dt
        margin = speed + abs(scene.gravity) * dt * dt + 3.0 * s
        frames = range(max(t_v - 2, 0), min(t_v + 2, T))
        if speed >= min_speed * s and all(
            _wall_dist(roll.positions[f, i], radii[i], scene.size) > margin
            and _gap(roll.positions[f], radii, i) > margin
            for f in frames
        ):
            out.append(i)
    return out


def _place(rng, pos: np.ndarray, radii: np.ndarray, r: float, size: int, gap: float, n_tries=200):
    """A random centre for a disc of radius r keeping `gap` px from the walls and the given discs."""
    for _ in range(n_tries):
        p = rng.uniform(r + gap, size - r - gap, size=2)
        if all(np.hypot(*(p - q)) - r - rq >= gap for q, rq in zip(pos, radii, strict=True)):
            return p
    return None


# -----------------------------------------------------------------------------
# violation kinds: each returns an _Edit, or None when this scene / t_v cannot show it


def _teleport(rng, scene, roll, t_v):
    s, dt = scene.scale, scene.dt
    edit = _base_edit(scene, roll)
    radii = edit.radii[0]
    cands = _free_balls(scene, roll, t_v, min_speed=0.0)
    if not cands:
        return None
    i = int(rng.choice(cands))
    speed = float(np.hypot(*roll.velocities[t_v, i])) * dt
    here = roll.positions[t_v, i]
    others = np.delete(roll.positions[t_v], i, 0)
    for _ in range(50):
        p = _place(rng, others, np.delete(radii, i), radii[i], scene.size, gap=speed + 4.0 * s)
        if p is not None and np.hypot(*(p - here)) >= max(16.0 * s, 4 * radii[i], 3 * speed):
            break
    else:
        return None
    phys = _physics_at(scene, roll, t_v)
    phys.pos[i] = p
    edit.traj[t_v] = phys.pos
    if t_v + 1 < scene.num_frames:
        _branch(scene, roll, t_v + 1, phys, edit)
    edit.ball = i
    return edit


def _vanish(rng, scene, roll, t_v):
    edit = _base_edit(scene, roll)
    radii = edit.radii[0]
    gaps = [min(_gap(roll.positions[f], radii, i) for f in (t_v - 1, t_v)) for i in range(len(radii))]
    cands = [i for i, g in enumerate(gaps) if g > 3.0 * scene.scale]  # a separate blob when it goes
    if not cands:
        return None
    i = int(rng.choice(cands))
    phys = _physics_at(scene, roll, t_v - 1)
    phys.active[i] = False  # gone: it neither moves nor collides
    _branch(scene, roll, t_v, phys, edit)
    edit.visible[t_v:, i] = False
    edit.ball = i
    return edit


def _gravity_reversal(rng, scene, roll, t_v):
    if not _free_balls(scene, roll, t_v, min_speed=0.0):
        return None
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    phys.gravity = -scene.gravity
    _branch(scene, roll, t_v, phys, edit)
    if np.abs(edit.traj - roll.positions).max() < 3.0 * scene.scale:
        return None
    return edit


def _add_ball(scene, roll, t_v, edit: _Edit, phys: Physics, p, v, r: float, colour) -> _Edit:
    """Append a ball that exists from frame t_v on (phys: state at frame t_v)."""
    T = scene.num_frames
    j = phys.add_ball(p, v, r)
    edit.traj = np.concatenate([edit.traj, np.broadcast_to(np.asarray(p, float), (T, 1, 2))], 1)
    edit.visible = np.concatenate([edit.visible, np.zeros((T, 1), bool)], 1)
    edit.visible[t_v:, j] = True
    edit.colours = np.concatenate([edit.colours, np.broadcast_to(np.float32(colour), (T, 1, 3))], 1)
    edit.radii = np.concatenate([edit.radii, np.full((T, 1), r)], 1)
    edit.traj[t_v] = phys.pos
    if t_v + 1 < T:
        _branch(scene, roll, t_v + 1, phys, edit)
    return edit


def _appear(rng, scene, roll, t_v):
    edit = _base_edit(scene, roll)
    others = [(roll.positions[t_v, i], b.radius) for i, b in enumerate(scene.balls)]
    colour = sorted(COLOURS)[int(rng.integers(len(COLOURS)))]
    new = random_ball(rng, colour, scene.size, others, gap=6.0 * scene.scale)
    if new is None:
        return None
    phys = _physics_at(scene, roll, t_v)
    edit = _add_ball(scene, roll, t_v, edit, phys, new.position, new.velocity, new.radius, COLOURS[colour])
    edit.ball = len(scene.balls)
    return edit


def _duplicate(rng, scene, roll, t_v):
    s = scene.scale
    edit = _base_edit(scene, roll)
    radii = edit.radii[0]
    pos = roll.positions[t_v]
    for i in rng.permutation(len(radii)):
        r = radii[i]
        for _ in range(20):
            ang = rng.uniform(0, 2 * np.pi)
            p = pos[i] + (2 * r + 3.0 * s) * np.array([np.cos(ang), np.sin(ang)])
            inside = r + 1.0 <= p[0] <= scene.size - r - 1.0 and r + 1.0 <= p[1] <= scene.size - r - 1.0
            if inside and all(
                np.hypot(*(p - pos[j])) - r - radii[j] > 3.0 * s for j in range(len(radii)) if j != i
            ):
                break
        else:
            continue
        v = roll.velocities[t_v, i]
        v_new = v + 25.0 * s * np.array([np.cos(ang), np.sin(ang)])  # drift away from the original (px/s)
        phys = _physics_at(scene, roll, t_v)
        edit = _add_ball(scene, roll, t_v, edit, phys, p, v_new, r, COLOURS[scene.balls[i].colour])
        edit.ball = int(i)
        return edit
    return None


def _colour_change(rng, scene, roll, t_v):
    edit = _base_edit(scene, roll)
    i = int(rng.integers(len(scene.balls)))
    old = np.array(COLOURS[scene.balls[i].colour], float)
    far = [c for c in sorted(COLOURS) if np.abs(np.array(COLOURS[c]) - old).max() >= 120]
    edit.colours[t_v:, i] = COLOURS[far[int(rng.integers(len(far)))]]
    edit.ball = i
    return edit


def _freeze(rng, scene, roll, t_v):
    cands = _free_balls(scene, roll, t_v, min_speed=2.0)
    if not cands:
        return None
    i = int(rng.choice(cands))
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    phys.pinned[i] = True  # hangs in the air; others still bounce off it
    phys.vel[i] = 0.0
    _branch(scene, roll, t_v, phys, edit)
    edit.ball = i
    return edit


def _speed_change(rng, scene, roll, t_v):
    cands = _free_balls(scene, roll, t_v, min_speed=3.0)
    if not cands:
        return None
    i = int(rng.choice(cands))
    speed = float(np.hypot(*roll.velocities[t_v - 1, i])) * scene.dt  # px/frame
    k = (
        rng.uniform(0.1, 0.35)
        if rng.random() < 0.5
        else min(rng.uniform(2.0, 2.6), 14.0 * scene.scale / speed)
    )
    if abs(k - 1.0) * speed < 2.0 * scene.scale:
        return None
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    phys.vel[i] *= k
    _branch(scene, roll, t_v, phys, edit)
    edit.ball = i
    return edit


def _time_warp(rng, scene, roll, t_v):
    if not _free_balls(scene, roll, t_v, min_speed=2.0):
        return None
    k = rng.uniform(0.35, 0.5) if rng.random() < 0.5 else rng.uniform(2.0, 2.5)
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    _branch(scene, roll, t_v, phys, edit, dt=k * scene.dt)
    return edit


def _floor_impact(rng, scene, roll, t_v) -> int | None:
    """A ball (drawn at random) whose floor impact falls in frame interval (t_v - 1, t_v] at >= 2 px/frame
    (at 64 px), or None when there is none."""
    dt = scene.dt
    hits = [(t, i) for t, i, what in roll.events if what == "floor" and (t_v - 1) * dt <= t < t_v * dt]
    if not hits:
        return None
    _, i = hits[int(rng.integers(len(hits)))]
    if np.hypot(*roll.velocities[t_v - 1, i]) * dt < 2.0 * scene.scale:
        return None
    return i


def _pass_through_floor(rng, scene, roll, t_v):
    """Uses the first floor impact in frame interval (t_v - 1, t_v]: the ball does not bounce."""
    i = _floor_impact(rng, scene, roll, t_v)
    if i is None:
        return None
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    phys.floor[i] = False
    _branch(scene, roll, t_v, phys, edit)
    edit.ball = i
    return edit


def _size_change(rng, scene, roll, t_v):
    edit = _base_edit(scene, roll)
    radii = edit.radii[0]
    i = int(rng.integers(len(radii)))
    p = roll.positions[t_v - 1]
    room = min(_wall_dist(p[i], radii[i], scene.size), _gap(p, radii, i))  # px the rim may grow
    grow = rng.uniform(1.5, 1.8)
    k = (
        grow
        if rng.random() < 0.5 and (grow - 1.0) * radii[i] < room - 2.0 * scene.scale
        else rng.uniform(0.45, 0.6)
    )
    phys = _physics_at(scene, roll, t_v - 1)
    phys.radius[i] *= k
    _branch(scene, roll, t_v, phys, edit)
    edit.radii[t_v:, i] = radii[i] * k
    edit.ball = i
    return edit


def _reverse(rng, scene, roll, t_v):
    cands = _free_balls(scene, roll, t_v, min_speed=2.0)
    if not cands:
        return None
    i = int(rng.choice(cands))
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    phys.vel[i] *= -1.0
    _branch(scene, roll, t_v, phys, edit)
    edit.ball = i
    return edit


def _changed_world(scene, roll, t_v, *, gravity: float | None = None, after_step=None) -> _Edit | None:
    """The whole scene continued from frame t_v - 1 under `gravity` (px/s^2, default the scene's) and with a
    per-step hook `after_step` (see `_branch_stepped`); None when no ball ends up at least 3 px (at 64 px)
    from where it would have been, i.e. the change would not show within the clip."""
    edit = _base_edit(scene, roll)
    phys = _physics_at(scene, roll, t_v - 1)
    if gravity is not None:
        phys.gravity = gravity
    if after_step is None:
        _branch(scene, roll, t_v, phys, edit)
    else:
        _branch_stepped(scene, roll, t_v, phys, edit, after_step)
    if np.abs(edit.traj - roll.positions).max() < 3.0 * scene.scale:
        return None
    return edit


def _gravity_change(rng, scene, roll, t_v):
    """Gravity keeps its direction but gets 2.5-4 times weaker or 2.2-3 times stronger from frame t_v on: every
    parabola bends less (or more) than the ones before. Unlike `time_warp`, speeds do not jump at t_v; unlike
    `gravity_reversal`, balls still fall. Needs a ball in free flight so that the change shows as curvature."""
    if not _free_balls(scene, roll, t_v, min_speed=0.0):
        return None
    k = rng.uniform(0.25, 0.4) if rng.random() < 0.5 else rng.uniform(2.2, 3.0)
    return _changed_world(scene, roll, t_v, gravity=k * scene.gravity)


def _gravity_off(rng, scene, roll, t_v):
    """Gravity vanishes from frame t_v on: balls in flight stop curving and carry on in straight lines at
    constant speed (bouncing off walls and each other as before). Needs a ball in free flight."""
    if not _free_balls(scene, roll, t_v, min_speed=0.0):
        return None
    return _changed_world(scene, roll, t_v, gravity=0.0)


def _wind(rng, scene, roll, t_v):
    """A uniform sideways acceleration of 0.6-1 g (left or right, the same for every ball) acts from frame
    t_v on, on top of gravity: parabolas tilt and balls drift towards one wall. Nothing pushes sideways in
    this world, so any horizontal acceleration in free flight is impossible. Needs a ball in free flight."""
    if not _free_balls(scene, roll, t_v, min_speed=0.0):
        return None
    accel = np.array([rng.choice([-1.0, 1.0]) * rng.uniform(0.6, 1.0) * scene.gravity, 0.0])  # px/s^2

    def push(phys, h):
        moving = _moving(phys)
        phys.pos[moving] += 0.5 * accel * h * h
        phys.vel[moving] += accel * h

    return _changed_world(scene, roll, t_v, after_step=push)


def _drag(rng, scene, roll, t_v):
    """Linear drag dv/dt = -c v with c = 2-3.5 /s acts on every ball from frame t_v on, as if the air turned
    to syrup: speeds decay by a factor exp(-c dt) (0.65-0.78 at 8 fps) per frame and falling balls approach
    the terminal speed g / c. The world has no friction, so any loss of speed in free flight is impossible.
    Needs a ball in free flight at >= 3 px/frame, so that the loss shows at once."""
    if not _free_balls(scene, roll, t_v, min_speed=3.0):
        return None
    c = rng.uniform(2.0, 3.5)  # 1/s

    def slow_down(phys, h):
        phys.vel[_moving(phys)] *= math.exp(-c * h)

    return _changed_world(scene, roll, t_v, after_step=slow_down)


def _floor_bounce(rng, scene, roll, t_v, restitution: tuple[float, float]):
    """The first floor impact of a ball in frame interval (t_v - 1, t_v] (as `_pass_through_floor`) gets a
    restitution drawn from `restitution` instead of the scene's: the ball leaves the floor at that fraction of
    its impact speed. Every other bounce, and every other ball, keeps the scene's restitution."""
    i = _floor_impact(rng, scene, roll, t_v)
    if i is None:
        return None
    e = rng.uniform(*restitution)
    bounced = False

    def rebound(phys, h):
        nonlocal bounced
        if not bounced and any(ball == i and what == "floor" for _, ball, what in phys.events):
            phys.vel[i, 1] *= e / phys.restitution  # the step reflected vy with the scene's restitution
            bounced = True

    edit = _base_edit(scene, roll)
    _branch_stepped(scene, roll, t_v, _physics_at(scene, roll, t_v - 1), edit, rebound)
    edit.ball = i
    return edit


def _super_bounce(rng, scene, roll, t_v):
    """A floor bounce with restitution 1.3-1.6: the ball leaves the floor faster than it arrived and rises
    higher than it fell (its energy grows by a factor e^2 = 1.7-2.6). Restitution above 1 creates energy."""
    return _floor_bounce(rng, scene, roll, t_v, (1.3, 1.6))


def _dead_bounce(rng, scene, roll, t_v):
    """A floor bounce with restitution 0-0.1: the ball lands and stays down, sliding on at its horizontal
    speed, although it bounced with the scene's restitution (>= 0.7) before and every other ball still does."""
    return _floor_bounce(rng, scene, roll, t_v, (0.0, 0.1))


_APPLY = {
    "teleport": _teleport,
    "vanish": _vanish,
    "gravity_reversal": _gravity_reversal,
    "appear": _appear,
    "duplicate": _duplicate,
    "colour_change": _colour_change,
    "freeze": _freeze,
    "speed_change": _speed_change,
    "time_warp": _time_warp,
    "pass_through_floor": _pass_through_floor,
    "size_change": _size_change,
    "reverse": _reverse,
    "gravity_change": _gravity_change,
    "gravity_off": _gravity_off,
    "wind": _wind,
    "drag": _drag,
    "super_bounce": _super_bounce,
    "dead_bounce": _dead_bounce,
}
assert set(_APPLY) == set(VIOLATION_KINDS)


def make_violation_pair(
    kind: str,
    seed: int,
    *,
    num_balls: int | None = None,
    colours: str | list[str] | None = None,
    size: int = REFERENCE_SIZE,
    num_frames: int = 16,
    fps: float = 8.0,
    max_tries: int = 200,
) -> ViolationPair:
    """Build a (plausible, impossible) pair of `kind` (a key of VIOLATION_KINDS). Deterministic in
    (kind, seed, arguments). Scene arguments are as for `sample_scene`."""
    if kind not in VIOLATION_KINDS:
        raise ValueError(f"unknown violation kind {kind!r}; choose from {sorted(VIOLATION_KINDS)}")
    if not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    if int(num_frames) != num_frames or num_frames < MIN_FRAMES:
        raise ValueError(f"violation pairs need num_frames >= {MIN_FRAMES}, got {num_frames}")
    rng = np.random.default_rng([int(seed), zlib.crc32(kind.encode())])
    T = int(num_frames)
    lo, hi = max(3, T // 4), T - max(3, T // 4)
    for _ in range(max_tries):
        scene = sample_scene(rng, num_balls=num_balls, colours=colours, size=size, num_frames=T, fps=fps)
        roll = run(scene)
        t_v = int(rng.integers(lo, hi + 1))
        edit = _APPLY[kind](rng, scene, roll, t_v)
        if edit is None:
            continue
        plausible = render(scene, roll.positions)
        impossible = render(scene, edit.traj, edit.visible, colours=edit.colours, radii=edit.radii)
        diff = np.abs(plausible[t_v].astype(int) - impossible[t_v].astype(int)).max()
        if not np.array_equal(plausible[:t_v], impossible[:t_v]) or diff < 40:
            continue  # not visible at t_v (e.g. a tiny displacement)
        return ViolationPair(
            kind=kind,
            t_violation=t_v,
            plausible=plausible,
            impossible=impossible,
            scene=scene,
            caption=describe(scene, roll),
            ball=edit.ball,
            seed=int(seed),
            plausible_trajectories=roll.positions,
            impossible_trajectories=edit.traj,
            impossible_visible=edit.visible,
        )
    raise RuntimeError(f"no visible {kind!r} violation found in {max_tries} scenes (seed={seed})")
