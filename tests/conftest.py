"""Fixtures shared by the test modules: one tiny random critic, and tiny models saved to disk.

Both are built once per session; tests that need other options derive them (`critic.with_options(...)` shares the
model), and none changes them in place.
"""

import pytest

from hybridgen import VJEPA2Critic
from hybridgen.testing import tiny_pipeline, tiny_vjepa2_model


@pytest.fixture(scope="session")
def critic() -> VJEPA2Critic:
    """A tiny random V-JEPA 2 critic (seed 0): crop 32, patch 8, tubelet 2, the default scoring options."""
    return VJEPA2Critic(tiny_vjepa2_model(seed=0))


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory):
    """A folder with `critic/` (a tiny random V-JEPA 2) and `generator/` (a tiny random Wan pipeline), both
    written by `save_pretrained`."""
    root = tmp_path_factory.mktemp("saved-models")
    tiny_vjepa2_model().save_pretrained(root / "critic")
    tiny_pipeline("wan").save_pretrained(root / "generator")
    return root
