"""Small file-system helpers shared by the library."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_temp_path(path)
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def unique_temp_path(path: Path) -> Path:
    """A temporary name next to ``path`` that no concurrent writer shares (then rename)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """``np.save`` under a unique temporary name, then an atomic rename onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_temp_path(path)
    try:
        with tmp.open("wb") as handle:
            np.save(handle, array, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
