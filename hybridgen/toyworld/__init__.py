"""Synthetic physics toy world with known ground truth: balls under gravity in a box, captions, IntPhys-style
violation pairs, and a pixels-only physics checker."""

from .physics import CLEAN_THRESHOLD, TERMS, PhysicsReport, label, physics_error, physics_report
from .violations import (
    DYNAMICS_KINDS,
    KIND_CATEGORY,
    LOOKS_KINDS,
    VIOLATION_KINDS,
    ViolationPair,
    make_violation_pair,
)
from .world import (
    COLOURS,
    COUNT_WORDS,
    MOTIONS,
    Ball,
    ClipInfo,
    Physics,
    Rollout,
    Scene,
    describe,
    make_clip,
    motion_of,
    render,
    run,
    sample_scene,
    simulate,
)

__all__ = [
    "CLEAN_THRESHOLD",
    "COLOURS",
    "COUNT_WORDS",
    "DYNAMICS_KINDS",
    "KIND_CATEGORY",
    "LOOKS_KINDS",
    "MOTIONS",
    "TERMS",
    "VIOLATION_KINDS",
    "Ball",
    "ClipInfo",
    "Physics",
    "PhysicsReport",
    "Rollout",
    "Scene",
    "ViolationPair",
    "describe",
    "label",
    "make_clip",
    "make_violation_pair",
    "motion_of",
    "physics_error",
    "physics_report",
    "render",
    "run",
    "sample_scene",
    "simulate",
]
