"""Small file-system helpers shared by the library."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np


@contextmanager
def atomic_writer(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` only once written in full and
    synced: a reader sees the old or the new file, never half, and a failure leaves
    neither ``path`` changed nor a temporary file behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_temp_path(path)
    try:
        with tmp.open("wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new content, never half."""
    with atomic_writer(path) as handle:
        handle.write(text.encode("utf-8"))


def unique_temp_path(path: Path) -> Path:
    """A temporary name next to ``path`` that no concurrent writer shares (then rename)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` under a unique temporary name, then an atomic rename onto ``path``."""
    with atomic_writer(path) as handle:
        np.save(handle, array, allow_pickle=False)
