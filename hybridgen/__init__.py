"""hybridgen: make open video generators obey physics at inference time.

A diffusers text-to-video pipeline proposes candidate clips; a V-JEPA 2 world model measures how surprised it is
by each clip's future given its past; the least surprising clip wins.

The public names are imported on first use, so `import hybridgen.video` or `hybridgen --help` does not pay for
importing diffusers and transformers.
"""

from importlib import import_module

__version__ = "0.1.0"
__all__ = ["CriticReport", "HybridOutput", "HybridPipeline", "VJEPA2Critic"]

_LOCATIONS = {
    "CriticReport": "hybridgen.critics.report",
    "VJEPA2Critic": "hybridgen.critics.vjepa2",
    "HybridOutput": "hybridgen.pipelines.hybrid",
    "HybridPipeline": "hybridgen.pipelines.hybrid",
}


def __getattr__(name: str):
    if name in _LOCATIONS:
        return getattr(import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'hybridgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
