"""Emotion tags for reviews that arrive without a label.

- :class:`TransformerEmotionTagger`: j-hartmann/emotion-english-distilroberta-base by
  default; its 7 labels are FER's (joy = happy, sadness = sad, anger = angry).
- :class:`PrototypeEmotionTagger`: nearest emotion prototype in the embedding space. A
  prototype is the mean embedding of the labeled reviews of that emotion when there are
  enough of them, otherwise of a few seed phrases describing the emotion.

Both give a confidence in 0-1 that is kept next to the tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from components.emotions import EMOTIONS, EmotionName, normalize_emotion
from components.index.embedder import Embedder
from components.nlp.loading import TextClassifier, choose_method, model_id_for
from components.settings import NlpSettings

SEED_PHRASES: dict[str, tuple[str, ...]] = {
    "angry": (
        "I am furious about this.",
        "This made me so angry, it is outrageous.",
        "Terrible service, I am livid and fed up.",
    ),
    "disgust": (
        "This is disgusting and gross.",
        "It smelled revolting and made me sick.",
        "Filthy, dirty and nauseating.",
    ),
    "fear": (
        "I was scared it would hurt someone.",
        "This is frightening and unsafe, I am worried.",
        "I am afraid my data is not secure.",
    ),
    "happy": (
        "I love it, this makes me so happy.",
        "Wonderful product, absolutely delighted.",
        "Great experience, I am thrilled.",
    ),
    "sad": (
        "I am so disappointed and sad.",
        "It broke my heart when it stopped working.",
        "Unfortunately it let me down, very upsetting.",
    ),
    "surprise": (
        "I was surprised, I did not expect that at all.",
        "Wow, it was unexpectedly amazing.",
        "What a shock, I could not believe it.",
    ),
    "neutral": (
        "It is okay, nothing special.",
        "The product works as described.",
        "Average, it does the job.",
    ),
}


@dataclass(frozen=True)
class EmotionTag:
    emotion: EmotionName
    confidence: float


class EmotionTagger(Protocol):
    method: str
    model_id: str

    def tag(self, texts: Sequence[str]) -> list[EmotionTag]: ...


class TransformerEmotionTagger:
    """An emotion classifier whose labels name FER's 7 emotions, run in batches."""

    method = "distilroberta"

    def __init__(self, classifier: TextClassifier, model_id: str) -> None:
        self._classifier = classifier
        self.model_id = model_id
        self._labels = {name: normalize_emotion(name) for name in classifier.labels.values()}

    @classmethod
    def load(
        cls, source: str, batch_size: int = 32, device: str = "cpu", local_only: bool = False
    ) -> TransformerEmotionTagger:
        classifier = TextClassifier.load(source, device, local_only, batch_size)
        return cls(classifier, model_id_for(cls.method, source))

    def tag(self, texts: Sequence[str]) -> list[EmotionTag]:
        return [EmotionTag(self._labels[name], p) for name, p in self._classifier.classify(texts)]


class PrototypeEmotionTagger:
    """Cosine similarity to 7 prototypes; confidence = softmax(similarity / temperature)."""

    method = "prototype"

    def __init__(self, embedder: Embedder, prototypes: np.ndarray, temperature: float = 0.05):
        if prototypes.shape != (len(EMOTIONS), embedder.dimension):
            raise ValueError(f"need {len(EMOTIONS)} prototypes of dimension {embedder.dimension}")
        self.embedder = embedder
        self.prototypes = prototypes
        self.temperature = temperature
        self.model_id = model_id_for(self.method, embedder.model_id)

    @classmethod
    def fit(
        cls,
        embedder: Embedder,
        labeled: pd.DataFrame | None = None,
        min_examples: int = 5,
    ) -> PrototypeEmotionTagger:
        """Prototypes from ``labeled`` reviews (``text``, ``emotion``) where an emotion has
        at least ``min_examples``, from the seed phrases otherwise."""
        rows = []
        for emotion in EMOTIONS:
            texts: list[str] = list(SEED_PHRASES[emotion])
            if labeled is not None and not labeled.empty:
                own = labeled.loc[labeled["emotion"] == emotion, "text"].astype(str).tolist()
                if len(own) >= min_examples:
                    texts = own
            vectors = embedder.encode(texts)
            mean = vectors.mean(axis=0)
            rows.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
        return cls(embedder, np.stack(rows).astype(np.float32))

    def tag(self, texts: Sequence[str]) -> list[EmotionTag]:
        if not texts:
            return []
        similarity = self.embedder.encode(list(texts)) @ self.prototypes.T
        logits = similarity / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        best = probabilities.argmax(axis=1)
        return [
            EmotionTag(EMOTIONS[int(b)], float(probabilities[i, b])) for i, b in enumerate(best)
        ]


def load_emotion_tagger(
    settings: NlpSettings, embedder: Embedder, labeled: pd.DataFrame | None = None
) -> EmotionTagger:
    return choose_method(
        settings.tagger,
        "distilroberta",
        lambda local_only: TransformerEmotionTagger.load(
            settings.tagger_model, settings.batch_size, settings.device, local_only
        ),
        lambda: PrototypeEmotionTagger.fit(embedder, labeled),
        what=f"emotion tagger {settings.tagger_model!r} is not available locally",
        source=settings.tagger_model,
    )


def tag_reviews(frame: pd.DataFrame, tagger: EmotionTagger) -> tuple[pd.DataFrame, int]:
    """Fill the missing ``emotion`` values; returns the new frame and how many were tagged.

    Adds ``emotion_source`` (``label`` or the tagger's id) and ``emotion_confidence`` (the
    tagger's confidence; empty for rows that came with a label).
    """
    out = frame.copy()
    missing = out["emotion"].isna()
    if "emotion_source" not in out:
        out["emotion_source"] = pd.Series(pd.NA, index=out.index, dtype="string")
        out.loc[~missing, "emotion_source"] = "label"
    if "emotion_confidence" not in out:
        out["emotion_confidence"] = pd.Series(np.nan, index=out.index, dtype="float64")
    tags = tagger.tag(out.loc[missing, "text"].astype(str).tolist())
    out.loc[missing, "emotion"] = [t.emotion for t in tags]
    out.loc[missing, "emotion_confidence"] = [t.confidence for t in tags]
    out.loc[missing, "emotion_source"] = tagger.model_id
    out["emotion"] = out["emotion"].astype("string")
    out["emotion_source"] = out["emotion_source"].astype("string")
    return out, len(tags)
