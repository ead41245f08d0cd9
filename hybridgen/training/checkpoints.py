"""Replace a directory atomically: write a sibling temp folder, then swap it in."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
