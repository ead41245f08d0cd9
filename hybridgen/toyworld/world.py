"""A tiny 2-D physics world: 1-3 balls under gravity in a box, rendered as anti-aliased discs.

Conventions (used everywhere in hybridgen.toyworld):
- positions are (x, y) in pixels, origin at the top-left corner, x to the right, y *down*; pixel (i, j)
  covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5);
- time is in seconds, velocities in px/s, gravity in px/s^2 (positive = down);
- the walls are the image borders: floor = bottom edge, ceiling = top edge.

The simulation is sub-stepped (`Scene.substeps` steps per frame) with exact constant-acceleration motion
inside a step, reflection at the walls (restitution `e`) and elastic-with-restitution ball-ball impulses
(mass proportional to disc area). Free flight is therefore an exact parabola at frame resolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

# Public colour table: prompts say "a red ball", so names are part of the API. Every colour has a max
# channel >= 150 and the background stays <= 40 in every channel.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 250),
    "yellow": (235, 215, 40),
    "cyan": (40, 215, 230),
    "magenta": (225, 50, 220),
    "white": (240, 240, 240),
}
COUNT_WORDS: dict[int, str] = {1: "a", 2: "two", 3: "three"}
MOTIONS: tuple[str, ...] = ("bouncing", "falling")

REFERENCE_SIZE = 64  # px; radii, speeds and gravity below are given at this size and scale with size / 64
RADIUS_RANGE = (3.0, 8.0)  # px at 64 px
GRAVITY_RANGE = (60.0, 110.0)  # px/s^2 at 64 px
RESTITUTION_RANGE = (0.7, 1.0)
MAX_BALLS = 3


@dataclass(frozen=True)
class Ball:
    """One ball at t=0: colour name, radius (px), position (x, y) (px), velocity (vx, vy) (px/s)."""

    colour: str
    radius: float
    position: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}; choose from {sorted(COLOURS)}")
        if not (self.radius > 0):
            raise ValueError(f"radius must be > 0 px, got {self.radius}")
        for name, v in (("position", self.position), ("velocity", self.velocity)):
            if len(v) != 2 or not all(math.isfinite(float(c)) for c in v):
                raise ValueError(f"{name} must be two finite numbers, got {v!r}")
        object.__setattr__(self, "radius", float(self.radius))
        object.__setattr__(self, "position", (float(self.position[0]), float(self.position[1])))
        object.__setattr__(self, "velocity", (float(self.velocity[0]), float(self.velocity[1])))


@dataclass(frozen=True)
class Scene:
    """A full clip description. `size` is the square image side (px), `gravity` in px/s^2 (down > 0)."""

    balls: tuple[Ball, ...]
    gravity: float = 90.0
    restitution: float = 0.85
    size: int = 64
    num_frames: int = 16
    fps: float = 8.0
    substeps: int = 32  # simulation steps per frame
    collisions: bool = True  # ball-ball collisions

    def __post_init__(self):
        object.__setattr__(self, "balls", tuple(self.balls))
        if not self.balls:
            raise ValueError("a scene needs at least one ball")
        if not all(isinstance(b, Ball) for b in self.balls):
            raise ValueError("balls must be Ball instances")
        if int(self.size) != self.size or self.size < 16:
            raise ValueError(f"size must be an integer >= 16 px, got {self.size}")
        if int(self.num_frames) != self.num_frames or self.num_frames < 2:
            raise ValueError(f"num_frames must be an integer >= 2, got {self.num_frames}")
        if not (self.fps > 0):
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if not (0.0 <= self.restitution <= 1.0):
            raise ValueError(f"restitution must be in [0, 1], got {self.restitution}")
        if not math.isfinite(self.gravity):
            raise ValueError(f"gravity must be finite, got {self.gravity}")
        if int(self.substeps) != self.substeps or self.substeps < 1:
            raise ValueError(f"substeps must be an integer >= 1, got {self.substeps}")
        for i, b in enumerate(self.balls):
            x, y = b.position
            if not (b.radius <= x <= self.size - b.radius and b.radius <= y <= self.size - b.radius):
                raise ValueError(
                    f"ball {i} ({b.colour}, r={b.radius:.2f}) at {b.position} is outside the box"
                )
            if 2 * b.radius > self.size:
                raise ValueError(f"ball {i} radius {b.radius} does not fit in a {self.size} px box")
        object.__setattr__(self, "size", int(self.size))
        object.__setattr__(self, "num_frames", int(self.num_frames))
        object.__setattr__(self, "substeps", int(self.substeps))

    @property
    def dt(self) -> float:
        """Seconds between frames."""
        return 1.0 / self.fps

    @property
    def scale(self) -> float:
        """Image size relative to the 64 px reference."""
        return self.size / REFERENCE_SIZE


@dataclass(frozen=True)
class ClipInfo:
    """Everything behind a rendered clip: the scene, its trajectories, visibility and caption."""

    scene: Scene
    trajectories: np.ndarray  # (T, n, 2) px
    visible: np.ndarray  # (T, n) bool
    caption: str
    seed: int | None = None


# -----------------------------------------------------------------------------
# simulation


@dataclass
class Physics:
    """Mutable simulation state; `simulate` is a thin wrapper. Used directly by the violation generator,
    which branches a plausible run at some frame and continues it under modified physics."""

    pos: np.ndarray  # (n, 2) px
    vel: np.ndarray  # (n, 2) px/s
    radius: np.ndarray  # (n,) px
    size: int
    gravity: float  # px/s^2, down > 0
    restitution: float
    substeps: int
    collisions: bool = True
    active: np.ndarray | None = None  # (n,) inactive balls neither move nor collide
    pinned: np.ndarray | None = None  # (n,) pinned balls stay put; others still bounce off them
    floor: np.ndarray | None = None  # (n,) False: the ball falls through the bottom edge
    time: float = 0.0  # s
    # bounce log: (time s, ball, 'floor' | 'ceiling' | 'wall' | 'ball')
    events: list[tuple[float, int, str]] = field(default_factory=list)

    def __post_init__(self):
        self.pos = np.array(self.pos, dtype=np.float64).reshape(-1, 2)
        n = len(self.pos)
        self.vel = np.array(self.vel, dtype=np.float64).reshape(n, 2)
        self.radius = np.array(self.radius, dtype=np.float64).reshape(n)
        self.active = np.ones(n, bool) if self.active is None else np.array(self.active, bool).reshape(n)
        self.pinned = np.zeros(n, bool) if self.pinned is None else np.array(self.pinned, bool).reshape(n)
        self.floor = np.ones(n, bool) if self.floor is None else np.array(self.floor, bool).reshape(n)

    @classmethod
    def from_scene(cls, scene: Scene) -> Physics:
        return cls(
            pos=[b.position for b in scene.balls],
            vel=[b.velocity for b in scene.balls],
            radius=[b.radius for b in scene.balls],
            size=scene.size,
            gravity=scene.gravity,
            restitution=scene.restitution,
            substeps=scene.substeps,
            collisions=scene.collisions,
        )

    def add_ball(self, position, velocity, radius: float) -> int:
        """Append a ball (used by 'appear'/'duplicate' violations); returns its index."""
        self.pos = np.vstack([self.pos, np.asarray(position, np.float64)[None]])
        self.vel = np.vstack([self.vel, np.asarray(velocity, np.float64)[None]])
        self.radius = np.append(self.radius, float(radius))
        self.active = np.append(self.active, True)
        self.pinned = np.append(self.pinned, False)
        self.floor = np.append(self.floor, True)
        return len(self.pos) - 1

    def advance(self, dt: float):
        """Advance by `dt` seconds in `substeps` equal steps. Plain Python floats: n <= 4 balls makes
        numpy's per-call overhead dominate."""
        n, h, e, g, S = len(self.pos), dt / self.substeps, self.restitution, self.gravity, self.size
        px, py = self.pos[:, 0].tolist(), self.pos[:, 1].tolist()
        vx, vy = self.vel[:, 0].tolist(), self.vel[:, 1].tolist()
        r = self.radius.tolist()
        moving = [bool(a and not p) for a, p in zip(self.active, self.pinned, strict=True)]
        inv_m = [0.0 if p else 1.0 / (ri * ri) for p, ri in zip(self.pinned, r, strict=True)]  # 1/mass
        floor = self.floor.tolist()
        active = self.active.tolist()
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if active[i] and active[j]]
        pairs = pairs if self.collisions else []
        slow = 2.0 * abs(g) * h + 1e-9  # slower impacts are the micro-bounces of a resting ball
        events = self.events
        for k in range(self.substeps):
            t = self.time + k * h
            for i in range(n):
                if not moving[i]:
                    continue
                # exact constant-acceleration motion within the step
                px[i] += vx[i] * h
                py[i] += vy[i] * h + 0.5 * g * h * h
                vy[i] += g * h
                # walls: reflect the penetration depth and the normal velocity (scaled by restitution)
                lo, hi = r[i], S - r[i]
                if px[i] < lo or px[i] > hi:
                    b = lo if px[i] < lo else hi
                    px[i] = b + e * (b - px[i])
                    if (vx[i] < 0) == (b == lo) and vx[i] != 0:
                        if abs(vx[i]) > slow:
                            events.append((t, i, "wall"))
                        vx[i] = -e * vx[i]
                if py[i] < lo or (py[i] > hi and floor[i]):
                    b = lo if py[i] < lo else hi
                    py[i] = b + e * (b - py[i])
                    if (vy[i] < 0) == (b == lo) and vy[i] != 0:
                        if abs(vy[i]) > slow:
                            events.append((t, i, "ceiling" if b == lo else "floor"))
                        vy[i] = -e * vy[i]
            for i, j in pairs:
                dx, dy = px[j] - px[i], py[j] - py[i]
                overlap = r[i] + r[j] - math.hypot(dx, dy)
                if overlap <= 0 or inv_m[i] + inv_m[j] == 0:
                    continue
                d = math.hypot(dx, dy)
                nx, ny = (dx / d, dy / d) if d > 1e-9 else (1.0, 0.0)
                w = inv_m[i] + inv_m[j]
                rel = (vx[j] - vx[i]) * nx + (vy[j] - vy[i]) * ny  # < 0: approaching
                if rel < 0:
                    J = -(1.0 + e) * rel / w
                    vx[i] -= J * inv_m[i] * nx
                    vy[i] -= J * inv_m[i] * ny
                    vx[j] += J * inv_m[j] * nx
                    vy[j] += J * inv_m[j] * ny
                    events.append((t, i, "ball"))
                    events.append((t, j, "ball"))
                push = overlap / w  # separate in proportion to inverse mass
                px[i] -= push * inv_m[i] * nx
                py[i] -= push * inv_m[i] * ny
                px[j] += push * inv_m[j] * nx
                py[j] += push * inv_m[j] * ny
        self.time += dt
        self.pos = np.stack([px, py], 1).astype(np.float64).reshape(n, 2)
        self.vel = np.stack([vx, vy], 1).astype(np.float64).reshape(n, 2)

    def rollout(self, num_frames: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """Advance `num_frames` frames of `dt` s; returns positions and velocities after each frame,
        both (num_frames, n, 2)."""
        n = len(self.pos)
        pos = np.empty((num_frames, n, 2))
        vel = np.empty((num_frames, n, 2))
        for f in range(num_frames):
            self.advance(dt)
            pos[f], vel[f] = self.pos, self.vel
        return pos, vel


@dataclass(frozen=True)
class Rollout:
    """Full simulation output: positions and velocities per frame, and the bounce events."""

    positions: np.ndarray  # (T, n, 2) px
    velocities: np.ndarray  # (T, n, 2) px/s
    events: tuple[tuple[float, int, str], ...]  # (time s, ball, floor|ceiling|wall|ball)


def run(scene: Scene) -> Rollout:
    """Simulate `scene`, keeping velocities and bounce events (see `simulate` for the short form)."""
    phys = Physics.from_scene(scene)
    pos0, vel0 = phys.pos.copy(), phys.vel.copy()
    pos, vel = phys.rollout(scene.num_frames - 1, scene.dt)
    positions = np.concatenate([pos0[None], pos], 0)  # (T, n, 2)
    velocities = np.concatenate([vel0[None], vel], 0)  # (T, n, 2)
    return Rollout(positions, velocities, tuple(phys.events))


def simulate(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Returns trajectories (T, n_balls, 2) ball centres in px, and visibility (T, n_balls) bool."""
    out = run(scene)
    return out.positions, np.ones(out.positions.shape[:2], dtype=bool)


# -----------------------------------------------------------------------------
# rendering


@lru_cache(maxsize=8)
def _background(size: int) -> np.ndarray:
    """Static near-black background (H, W, 3) float32: a faint vertical gradient plus fixed fine texture,
    every channel <= 40."""
    y = (np.arange(size, dtype=np.float32) + 0.5) / size  # (H,)
    base = np.array([10.0, 10.0, 16.0], np.float32) + y[:, None] * np.array([8.0, 8.0, 10.0], np.float32)
    texture = np.random.default_rng(0).uniform(-2.0, 2.0, size=(size, size, 1)).astype(np.float32)
    bg = base[:, None, :] + texture  # (H, W, 3)
    bg.setflags(write=False)
    return bg


def render(
    scene: Scene,
    trajectories: np.ndarray,
    visible: np.ndarray | None = None,
    *,
    colours: np.ndarray | None = None,
    radii: np.ndarray | None = None,
) -> np.ndarray:
    """Draw the balls as anti-aliased discs (alpha = pixel coverage, estimated from the distance of the
    pixel centre to the rim). Returns uint8 frames (T, H, W, 3).

    trajectories: (T, n, 2) centres in px; visible: (T, n) bool (default all); colours: optional (T, n, 3)
    RGB override (default: each ball's table colour); radii: optional (T, n) px override. Balls are drawn
    in index order; positions may lie partly or fully outside the image.
    """
    traj = np.asarray(trajectories, dtype=np.float64)
    if traj.ndim != 3 or traj.shape[2] != 2:
        raise ValueError(f"trajectories must be (T, n, 2), got {traj.shape}")
    T, n = traj.shape[:2]
    vis = np.ones((T, n), bool) if visible is None else np.asarray(visible, bool)
    if vis.shape != (T, n):
        raise ValueError(f"visible must be {(T, n)}, got {vis.shape}")
    if colours is None:
        if n != len(scene.balls):
            raise ValueError(f"{n} trajectories but {len(scene.balls)} balls: pass colours and radii")
        colours = np.broadcast_to(np.array([COLOURS[b.colour] for b in scene.balls], np.float32), (T, n, 3))
    col = np.asarray(colours, np.float32)
    if col.shape != (T, n, 3):
        raise ValueError(f"colours must be {(T, n, 3)}, got {col.shape}")
    if radii is None:
        if n != len(scene.balls):
            raise ValueError(f"{n} trajectories but {len(scene.balls)} balls: pass colours and radii")
        radii = np.broadcast_to(np.array([b.radius for b in scene.balls]), (T, n))
    rad = np.asarray(radii, np.float64)
    if rad.shape != (T, n):
        raise ValueError(f"radii must be {(T, n)}, got {rad.shape}")

    S = scene.size
    frames = np.empty((T, S, S, 3), np.float32)
    frames[:] = _background(S)
    centres = np.arange(S, dtype=np.float64) + 0.5  # pixel centres along either axis
    for t in range(T):
        for i in range(n):
            if not vis[t, i]:
                continue
            (cx, cy), r = traj[t, i], rad[t, i]
            x0, x1 = max(int(cx - r - 1.0), 0), min(int(cx + r + 2.0), S)
            y0, y1 = max(int(cy - r - 1.0), 0), min(int(cy + r + 2.0), S)
            if x0 >= x1 or y0 >= y1:
                continue  # entirely off-screen
            dx = centres[x0:x1] - cx  # (w,)
            dy = centres[y0:y1] - cy  # (h,)
            dist = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)  # (h, w)
            alpha = np.clip(r + 0.5 - dist, 0.0, 1.0).astype(np.float32)[..., None]  # (h, w, 1) coverage
            patch = frames[t, y0:y1, x0:x1]  # view, (h, w, 3)
            patch += alpha * (col[t, i] - patch)
    return np.rint(frames).astype(np.uint8)


# -----------------------------------------------------------------------------
# sampling and captions


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def _resolve_colours(colours, num_balls: int | None, rng: np.random.Generator) -> list[str]:
    """colours: None (random: half the time all balls share one colour), a colour name (all balls), or a
    sequence of names (one per ball)."""
    if isinstance(colours, str):
        colours = [colours] * (num_balls if num_balls is not None else int(rng.integers(1, MAX_BALLS + 1)))
    if colours is not None:
        colours = list(colours)
        if num_balls is not None and len(colours) != num_balls:
            raise ValueError(f"got {len(colours)} colours for num_balls={num_balls}")
        if not 1 <= len(colours) <= MAX_BALLS:
            raise ValueError(f"need 1 to {MAX_BALLS} colours, got {len(colours)}")
        for c in colours:
            if c not in COLOURS:
                raise ValueError(f"unknown colour {c!r}; choose from {sorted(COLOURS)}")
        return colours
    n = num_balls if num_balls is not None else int(rng.integers(1, MAX_BALLS + 1))
    names = sorted(COLOURS)
    if rng.random() < 0.5:
        return [names[int(rng.integers(len(names)))]] * n
    return [names[int(k)] for k in rng.integers(len(names), size=n)]


def random_ball(
    rng: np.random.Generator,
    colour: str,
    size: int,
    others: list[tuple[np.ndarray, float]],
    gap: float,
    *,
    calm: bool = False,
) -> Ball | None:
    """A ball with random radius/position/velocity that keeps `gap` px from the discs in `others`
    ([(centre, radius)]); None if 100 tries fail. calm: start high and slow (for 'falling' scenes)."""
    s = size / REFERENCE_SIZE
    for _ in range(100):
        r = float(rng.uniform(*RADIUS_RANGE)) * s
        x = float(rng.uniform(r, size - r))
        y = float(rng.uniform(r, max(r, (0.35 if calm else 0.65) * size)))  # start in the upper part
        if all(np.hypot(x - p[0], y - p[1]) >= r + ro + gap for p, ro in others):
            vx = float(rng.uniform(-12.0, 12.0) if calm else rng.uniform(-40.0, 40.0)) * s  # px/s
            vy = float(rng.uniform(0.0, 8.0) if calm else rng.uniform(-40.0, 16.0)) * s
            return Ball(colour, r, (x, y), (vx, vy))
    return None


def sample_scene(
    rng: np.random.Generator | int,
    *,
    num_balls: int | None = None,
    colours: str | list[str] | None = None,
    size: int = 64,
    num_frames: int = 16,
    fps: float = 8.0,
    motion: str | None = None,
    max_tries: int = 200,
) -> Scene:
    """Sample a random scene. num_balls: 1-3 (random if None); colours: see `_resolve_colours`;
    motion: None, 'bouncing' (some ball hits a wall, the floor or another ball) or 'falling' (nothing
    does), enforced by rejection. With the default 2 s clips balls nearly always land, so 'falling' scenes
    start high and slow and may get weaker gravity than GRAVITY_RANGE (never below 10 px/s^2 at 64 px)."""
    rng = _as_rng(rng)
    if num_balls is not None and not (
        isinstance(num_balls, (int, np.integer)) and 1 <= num_balls <= MAX_BALLS
    ):
        raise ValueError(f"num_balls must be an int in 1..{MAX_BALLS}, got {num_balls!r}")
    if motion is not None and motion not in MOTIONS:
        raise ValueError(f"motion must be None or one of {MOTIONS}, got {motion!r}")
    if int(size) != size or size < 16:
        raise ValueError(f"size must be an integer >= 16 px, got {size}")
    s = size / REFERENCE_SIZE
    for _ in range(max_tries):
        names = _resolve_colours(colours, num_balls, rng)
        balls: list[Ball] = []
        calm = motion == "falling"
        for c in names:
            others = [(np.array(o.position), o.radius) for o in balls]
            b = random_ball(rng, c, size, others, gap=2.0 * s, calm=calm)
            if b is None:
                break
            balls.append(b)
        if len(balls) != len(names):
            continue
        gravity = float(rng.uniform(*GRAVITY_RANGE)) * s
        if calm:  # weaken gravity where needed so that no ball lands within the clip
            span = (num_frames - 1) / fps  # s
            room = min(size - b.radius - b.position[1] - b.velocity[1] * span for b in balls)  # px
            gravity = min(gravity, 0.9 * 2.0 * room / span**2)
            if gravity < 10.0 * s:
                continue
        scene = Scene(
            balls=tuple(balls),
            gravity=gravity,
            restitution=float(rng.uniform(*RESTITUTION_RANGE)),
            size=int(size),
            num_frames=num_frames,
            fps=fps,
        )
        if motion is None or motion_of(scene) == motion:
            return scene
    raise RuntimeError(f"could not sample a scene with motion={motion!r} in {max_tries} tries")


def motion_of(scene: Scene, rollout: Rollout | None = None) -> str:
    """'bouncing' if any ball hits a wall, the floor, the ceiling or another ball during the clip, else
    'falling'."""
    rollout = run(scene) if rollout is None else rollout
    return "bouncing" if rollout.events else "falling"


def describe(scene: Scene, rollout: Rollout | None = None) -> str:
    """Systematic caption: '<count> [<colour>] ball(s) <motion>', e.g. 'a red ball bouncing',
    'two blue balls falling', 'three balls bouncing'. The colour is named when all balls share it."""
    n = len(scene.balls)
    if n not in COUNT_WORDS:
        raise ValueError(f"captions cover 1 to {MAX_BALLS} balls, scene has {n}")
    names = {b.colour for b in scene.balls}
    colour = f"{next(iter(names))} " if len(names) == 1 else ""
    noun = "ball" if n == 1 else "balls"
    return f"{COUNT_WORDS[n]} {colour}{noun} {motion_of(scene, rollout)}"


def make_clip(
    seed: int,
    *,
    num_balls: int | None = None,
    colours: str | list[str] | None = None,
    size: int = 64,
    num_frames: int = 16,
    fps: float = 8.0,
    motion: str | None = None,
) -> tuple[np.ndarray, ClipInfo]:
    """Sample, simulate and render one plausible clip. Returns frames uint8 (T, H, W, 3) and ClipInfo.
    The same arguments always give the same clip."""
    if not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {type(seed).__name__}")
    scene = sample_scene(
        np.random.default_rng(int(seed)),
        num_balls=num_balls,
        colours=colours,
        size=size,
        num_frames=num_frames,
        fps=fps,
        motion=motion,
    )
    out = run(scene)
    visible = np.ones(out.positions.shape[:2], dtype=bool)
    frames = render(scene, out.positions, visible)
    return frames, ClipInfo(scene, out.positions, visible, describe(scene, out), int(seed))
