"""Checkpoint helpers: replace a directory atomically; restore a run's log; record the machine it trained on."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch


@contextmanager
def replacing_directory(directory: str | Path) -> Iterator[Path]:
    """Yield an empty sibling temp folder; on success it replaces `directory`, on error it is removed.

    A reader never sees a half-written directory: the old one is moved aside (`NAME.hybridgen-old`) only once the
    new one is complete (`NAME.hybridgen-new`), and removed only once the new one is in place. A crash between the
    two renames leaves both complete folders, which `recover_directory` puts back together.
    """
    directory = recover_directory(directory)
    temporary, old = _siblings(directory)
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if directory.exists():
        directory.rename(old)
    temporary.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(directory: str | Path) -> Path:
    """`directory`, restored if a `replacing_directory` swap was cut off between its two renames: the new folder
    (complete by then) takes its place. Only the swap's own sibling names are touched."""
    directory = Path(directory)
    temporary, old = _siblings(directory)
    if not directory.exists() and old.exists():
        (temporary if temporary.exists() else old).rename(directory)
    shutil.rmtree(old, ignore_errors=True)  # the old folder, once the new one is in place
    return directory


def _siblings(directory: Path) -> tuple[Path, Path]:
    """The new folder being written and the old one moved aside, named so no user folder is taken for them."""
    return directory.with_name(directory.name + ".hybridgen-new"), directory.with_name(
        directory.name + ".hybridgen-old"
    )


def restore_log(log_path: Path, history: list[dict]) -> None:
    """Rewrite a run's per-step log (JSON lines) as `history`, the records its checkpoint holds: the steps a
    resumed run does again (logged after the checkpoint, then lost) are not listed twice, and a run started
    afresh starts an empty log."""
    from hybridgen.video import atomic_write_path

    with atomic_write_path(log_path) as temporary:
        temporary.write_text("".join(json.dumps(record) + "\n" for record in history))


def training_machine(device: str | torch.device = "cpu") -> dict:
    """Where a run trains, saved with its checkpoints for the model card: device, torch threads, CPU cores."""
    return {"device": str(device), "threads": torch.get_num_threads(), "cpu_cores": os.cpu_count()}
