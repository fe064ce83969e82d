"""The benchmark workspace: models with real architectures, an index with stored
sentiments and answers, and a registered champion, all built once per run."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from components.analysis.index_build import build_index
from components.index.embedder import SentenceTransformerEmbedder
from components.reviews.generate import generate_reviews
from components.settings import Settings
from tests.random_models import (
    SENTIMENT_LABELS,
    register_champion,
    save_classifier,
    save_roberta_classifier,
    save_t5,
)

GENERATED_TOKENS = 32


@dataclass(frozen=True)
class BenchWorkspace:
    settings: Settings
    weights: Path
    models: dict[str, str]
    photo: bytes


def photo_bytes(side: int = 256) -> bytes:
    """A real face photo (scikit-image's astronaut) as JPEG, the size a phone upload is cut to."""
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((side, side)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def prepare(root: Path, smoke: bool, int8: bool) -> BenchWorkspace:
    size = "tiny" if smoke else "base"
    models_dir = root / "models"
    t5 = save_t5(models_dir / f"flan-t5-{size}-random", size=size)
    roberta = save_roberta_classifier(
        models_dir / f"roberta-{size}-sentiment-random", SENTIMENT_LABELS, size=size
    )
    weights = save_classifier(models_dir / "resnet50-random.pt")
    settings = Settings.from_dict(
        {
            "workspace": str(root / ("ws-int8" if int8 else "ws")),
            "nlp": {
                "summarizer": "flan-t5",
                "summarizer_model": str(t5),
                "sentiment": "roberta",
                "sentiment_model": str(roberta),
                "max_new_tokens": GENERATED_TOKENS,
                "min_new_tokens": GENERATED_TOKENS,
                "quantize_int8": int8,
            },
        }
    )
    build_index(
        generate_reviews(per_emotion=10 if smoke else 100, seed=13),
        "b" * 64,
        SentenceTransformerEmbedder.from_settings(settings.embedder),
        settings,
        progress=False,
    )
    register_champion(settings, weights)
    return BenchWorkspace(
        settings=settings,
        weights=weights,
        models={
            "summarizer": f"T5 with google/flan-t5-base's architecture, random weights ({size})"
            if not smoke
            else "tiny T5, random weights",
            "sentiment": f"RoBERTa-base classifier, random weights ({size})"
            if not smoke
            else "tiny RoBERTa, random weights",
            "classifier": "ResNet-50 (7 classes, 1-channel stem), random weights",
            "embedder": "all-MiniLM-L6-v2 (real weights)",
            "generated_tokens": str(GENERATED_TOKENS),
        },
        photo=photo_bytes(),
    )


def fresh_questions(count: int, salt: str) -> list[str]:
    """Distinct questions (no cache can answer them)."""
    topics = ["delivery", "refund", "battery", "support", "packaging", "price", "quality"]
    return [
        f"What did customers say about the {topics[i % len(topics)]} of order {salt}-{i}?"
        for i in range(count)
    ]


def decoded_face(workspace: BenchWorkspace) -> np.ndarray:
    from components.vision.faces import decode_image

    return decode_image(workspace.photo)
