"""Files written so that a kill at any moment leaves either the previous file or the new one.

Every checkpoint, prior, judge and cache file aegen writes goes through ``atomic_path``: the data
is written to a temporary file in the destination's own folder (so the final ``os.replace`` is a
rename on one filesystem), flushed to disk, then renamed over the destination.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

TMP_MARK = ".tmp-"


def _file_mode() -> int:
    """The mode ``open()`` gives new files (0o666 less the umask); mkstemp's own is 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed to ``path``.

    On any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}{TMP_MARK}", dir=path.parent)
    os.fchmod(fd, FILE_MODE)  # readable by others as a plain write would be (shared caches)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through ``atomic_path``."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``Path(path).write_text(text)`` through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder``; returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".*{TMP_MARK}*"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed
