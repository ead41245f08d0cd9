"""Checkpoint helpers: replace a directory atomically; record the machine a run trained on."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def replacing_directory(directory: str | Path) -> Iterator[Path]:
    """Yield an empty sibling temp folder; on success it replaces `directory`, on error it is removed.

    A reader never sees a half-written directory: until the swap the old one is complete, after it the new one.
    """
    directory = Path(directory)
    temporary = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    shutil.rmtree(directory, ignore_errors=True)
    temporary.rename(directory)


def training_machine(device: str | torch.device = "cpu") -> dict:
    """Where a run trains, saved with its checkpoints for the model card: device, torch threads, CPU cores."""
    return {"device": str(device), "threads": torch.get_num_threads(), "cpu_cores": os.cpu_count()}
