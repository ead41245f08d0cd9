"""Checkpoint helpers: replace a directory atomically; restore a run's log; record the machine it trained on; refuse
a run directory that is a file, a checkpoint that is broken, and a resume with other training settings."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Collection, Iterator
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


def check_output_dir(output_dir: str | Path) -> Path:
    """`output_dir` as a Path if a training run can write there: a directory, or nothing yet under directories.

    Trainers call it first, so that `train-critic notes.txt` fails at once, not after rendering its clips.
    """
    from hybridgen.video import check_directory_path

    return check_directory_path(output_dir, "train into")


class BrokenCheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, malformed, missing) or does not fit the trainer."""


@contextmanager
def reading_checkpoint_file(path: Path) -> Iterator[None]:
    """Turn any failure to read or apply checkpoint file `path` into one `BrokenCheckpointError` naming it.

    The readers fail in many ways (safetensors' own error, JSON, key and shape errors); a user needs one line
    saying which file is broken and how to go on, not a traceback.
    """
    try:
        yield
    except Exception as error:
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise BrokenCheckpointError(
            f"cannot resume from {path} ({type(error).__name__}: {reason}): the file is broken or belongs to "
            "another run. Pass --no-resume (resume=False) to start the training over."
        ) from None


def check_same_settings(directory: Path, saved: dict, wanted: dict, changeable: Collection[str]) -> None:
    """Refuse to resume the checkpoint in `directory`, trained with config `saved`, under another config `wanted`.

    Resuming with another seed, learning rate, batch size, ... would silently mix two trainings and record only
    the second; the settings in `changeable` (more steps, another evaluation or checkpoint period) do not change
    what was trained so far and may differ. Settings the checkpoint does not record are not compared.
    """
    differing = [
        name
        for name, value in wanted.items()
        if name not in changeable and name in saved and not _same_setting(saved[name], value)
    ]
    if differing:
        trained = ", ".join(f"{name}={saved[name]!r}" for name in differing)
        asked = ", ".join(f"{name}={wanted[name]!r}" for name in differing)
        raise ValueError(
            f"the checkpoint in {directory} was trained with {trained}; this run asks {asked}: resuming would mix "
            "two trainings. Pass the same settings, or --no-resume (resume=False) to start over."
        )


def _same_setting(saved, wanted) -> bool:
    """Whether two values of a setting are the same: equal as JSON reads them back, or two spellings of one
    existing path (`clips/` and `/home/me/clips` for --data, a relative and an absolute --init)."""
    if _plain(saved) == _plain(wanted):
        return True
    if isinstance(saved, str) and isinstance(wanted, str) and Path(saved).exists() and Path(wanted).exists():
        return Path(saved).resolve() == Path(wanted).resolve()
    return False


def _plain(value):
    """`value` as JSON reads it back (tuples become lists), so that `(1, 2)` and `[1, 2]` compare equal."""
    return json.loads(json.dumps(value))
