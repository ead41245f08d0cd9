"""Critics: world models that score how physically plausible a clip is."""

from hybridgen.critics.report import CriticReport
from hybridgen.critics.vjepa2 import VJEPA2Critic

__all__ = ["CriticReport", "VJEPA2Critic"]
