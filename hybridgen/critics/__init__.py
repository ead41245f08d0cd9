"""Critics: world models that score how physically plausible a clip is.

`ScoringOptions` imports without torch (the CLI builds its flags from it); the critic and its report load on
first use.
"""

from importlib import import_module

__all__ = ["CriticReport", "ScoringOptions", "VJEPA2Critic"]

_LOCATIONS = {
    "CriticReport": "hybridgen.critics.report",
    "ScoringOptions": "hybridgen.critics.options",
    "VJEPA2Critic": "hybridgen.critics.vjepa2",
}


def __getattr__(name: str):
    if name in _LOCATIONS:
        return getattr(import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'hybridgen.critics' has no attribute {name!r}")
