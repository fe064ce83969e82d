"""Loading Hugging Face models by hub id or local path, and the ``auto`` method choice.

``auto`` means: use the transformer model when its weights load from local files (a local
folder, or the hub cache) and otherwise the offline method, with a logged warning. An
explicit transformer method loads normally (it may download) and fails loudly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class ModelLoadError(RuntimeError):
    """A configured model cannot be loaded."""


def is_local_path(source: str) -> bool:
    return Path(source).expanduser().exists()


def available_locally(source: str) -> bool:
    """Whether a checkpoint's config is on this machine (a local folder, or the hub cache),
    without loading it: what ``auto`` would find with ``local_files_only``."""
    if is_local_path(source):
        return (Path(source).expanduser() / "config.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(source, "config.json"), str)


def choose_method(
    choice: str,
    primary: str,
    load_primary: Callable[[bool], T],
    load_fallback: Callable[[], T],
    what: str,
) -> T:
    """Resolve ``choice`` (``primary`` | the fallback's name | ``auto``) to a loaded model.

    ``load_primary(local_only)`` loads the transformer model; ``auto`` calls it with
    ``local_only=True`` so that nothing waits on the network.
    """
    if choice == primary:
        return load_primary(False)
    if choice != "auto":
        return load_fallback()
    try:
        return load_primary(True)
    except ModelLoadError as error:
        fallback = load_fallback()
        log.warning(
            "%s: %s; using the offline method %s instead",
            what,
            error,
            getattr(fallback, "model_id", type(fallback).__name__),
        )
        return fallback


def model_id_for(method: str, source: str) -> str:
    """How answers name a model: ``<method>:<hub id or local folder name>``."""
    return f"{method}:{source}"


def first_line(error: BaseException) -> str:
    """The first line of an error message (hub errors span a paragraph)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
