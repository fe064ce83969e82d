"""Loading Hugging Face models by hub id or local path, the ``auto`` method choice, and the
batched text classifier the sentiment scorer and the emotion tagger share.

``auto`` means: use the transformer model when its weights load from local files (a local
folder, or the hub cache) and otherwise the offline method, with a logged warning. An
explicit transformer method loads normally (it may download) and fails loudly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from components.errors import EmoreviewError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ModelLoadError(EmoreviewError, RuntimeError):
    """A configured model cannot be loaded."""


def is_local_path(source: str) -> bool:
    return Path(source).expanduser().exists()


def available_locally(source: str) -> bool:
    """Whether a checkpoint's config is on this machine (a local folder, or the hub cache),
    without loading it: what ``auto`` would find with ``local_files_only``."""
    if is_local_path(source):
        return (Path(source).expanduser() / "config.json").is_file()
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(source, "config.json"), str)
    except ValueError:  # HFValidationError: neither a folder here nor a valid hub id
        return False


def choose_method(
    choice: str,
    primary: str,
    load_primary: Callable[[bool], T],
    load_fallback: Callable[[], T],
    what: str,
    source: str,
) -> T:
    """Resolve ``choice`` (``primary`` | the fallback's name | ``auto``) to a loaded model.

    ``load_primary(local_only)`` loads the transformer model; ``auto`` calls it with
    ``local_only=True`` so that nothing waits on the network, and only once the model's
    ``source`` is on this machine at all (:func:`available_locally`): when it is not, the
    fallback loads without importing transformers (2-4 s of CPU in each TorchServe worker
    and command that would only have found nothing).
    """
    if choice == primary:
        return load_primary(False)
    if choice != "auto":
        return load_fallback()
    if not available_locally(source):
        return _fall_back(load_fallback, what, "no config.json at that path or in the hub cache")
    try:
        return load_primary(True)
    except ModelLoadError as error:
        return _fall_back(load_fallback, what, str(error))


def _fall_back(load_fallback: Callable[[], T], what: str, reason: str) -> T:
    fallback = load_fallback()
    log.warning(
        "%s: %s; using the offline method %s instead",
        what,
        reason,
        getattr(fallback, "model_id", type(fallback).__name__),
    )
    return fallback


class LoadedOnFirstUse(Generic[T]):
    """A model that loads when it is first used (once, thread-safe): for a worker that
    answers from precomputed answers and may never need it, such as the
    ``emotion_reviews`` endpoint's. Subclasses name the model without loading it and pass
    each call on to :meth:`load`."""

    def __init__(self, load: Callable[[], T], name: str) -> None:
        self._load = load
        self.name = name
        self._model: T | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> T:
        with self._lock:
            if self._model is None:
                log.info("loading %s on first use", self.name)
                self._model = self._load()
            return self._model


def model_id_for(method: str, source: str) -> str:
    """How answers name a model: ``<method>:<hub id or local folder name>``."""
    return f"{method}:{source}"


def first_line(error: BaseException) -> str:
    """The first line of an error message (hub errors span a paragraph)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class TextClassifier:
    """A sequence classifier (``pipeline("text-classification")``) over a hub id or a local
    folder, run in batches of ``batch_size`` with inputs cut at ``max_length`` tokens."""

    def __init__(self, pipeline: Any, batch_size: int = 32, max_length: int = 128) -> None:
        self._pipeline = pipeline
        self.batch_size = batch_size
        self.max_length = max_length

    @classmethod
    def load(
        cls, source: str, device: str = "cpu", local_only: bool = False, batch_size: int = 32
    ) -> TextClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            model = AutoModelForSequenceClassification.from_pretrained(
                source, local_files_only=local_only
            )
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"cannot load text classifier {source!r}: {first_line(error)}"
            ) from error
        model.eval()
        classifier = pipeline(
            "text-classification", model=model, tokenizer=tokenizer, device=device
        )
        return cls(classifier, batch_size)

    @property
    def labels(self) -> dict[int, str]:
        """The model's label names by class index (its config's ``id2label``)."""
        return {int(i): str(name) for i, name in self._pipeline.model.config.id2label.items()}

    def classify(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """The top label and its probability for each text."""
        if not texts:
            return []
        results = self._pipeline(
            [str(t) for t in texts],
            batch_size=self.batch_size,
            truncation=True,
            max_length=self.max_length,
        )
        return [(str(r["label"]), float(r["score"])) for r in results]
