"""Tiny randomly initialised transformer models for tests (see benchmarks/models.py).

No weights can be downloaded here, so tests build models with the real architectures'
classes (T5, RoBERTa) at toy sizes and ``save_pretrained`` them; the production loading
code then reads them exactly as it would read google/flan-t5-base or the cardiffnlp model.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.models import (
    EMOTION_MODEL_LABELS,
    SENTIMENT_LABELS,
    save_roberta_classifier,
    save_t5,
)


def save_tiny_t5(folder: Path) -> Path:
    return save_t5(folder, size="tiny")


def save_tiny_roberta_classifier(folder: Path, labels: dict[int, str]) -> Path:
    return save_roberta_classifier(folder, labels, size="tiny")


__all__ = [
    "EMOTION_MODEL_LABELS",
    "SENTIMENT_LABELS",
    "save_tiny_roberta_classifier",
    "save_tiny_t5",
]
