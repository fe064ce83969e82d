"""Shared fixtures. Expensive things (real MiniLM, a built index) are session-scoped."""

from __future__ import annotations

import os

# Nothing in the tests may wait on the network; set before any HF library is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # as flows/__init__.py
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# `make test` splits the suite over the cores (pytest-xdist): each test process, and the
# servers and commands it starts, computes on one thread. Two processes of two torch
# threads each on 2 cores spin-wait on each other: the suite took 14.2 min in one process,
# 15.2 in three of two threads, 9.8 in two of one thread.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from components.settings import Settings  # noqa: E402

# The slowest modules of the last measured run (`pytest --durations`), slowest first. xdist
# hands whole modules to its processes in collection order (with --no-loadscope-reorder;
# its default orders them by how many tests they hold, and the one-test, three-minute
# benchmark smoke ran last, alone): starting on these, the many short modules fill in at
# the end. Other integration modules follow, unit tests last.
SLOWEST_MODULES = tuple(
    f"tests/integration/{name}.py"
    for name in (
        "test_benchmarks_smoke",
        "test_registry",
        "test_serving",
        "test_flows",
        "test_app",
        "test_serving_security",
        "test_cli",
        "test_training",
        "test_analysis",
    )
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    renamed = [name for name in SLOWEST_MODULES if not (config.rootpath / name).is_file()]
    if renamed:
        raise pytest.UsageError(f"tests/conftest.py SLOWEST_MODULES names no module: {renamed}")

    def rank(item: pytest.Item) -> tuple[int, int]:
        module = item.nodeid.split("::")[0]
        if module in SLOWEST_MODULES:
            return 0, SLOWEST_MODULES.index(module)
        return (1 if "integration" in item.keywords else 2), 0

    items.sort(key=rank)  # stable: a module's tests keep their order


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-table",
        default=None,
        help="The fault suite (tests/chaos): write its table (Markdown) to this file.",
    )


@pytest.fixture(autouse=True)
def _no_emoreview_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; a developer's EMOREVIEW_* must not leak in."""
    for key in list(os.environ):
        if key.startswith("EMOREVIEW_"):
            monkeypatch.delenv(key)


@pytest.fixture(scope="session")
def reviews_700() -> pd.DataFrame:
    from components.reviews.generate import generate_reviews

    return generate_reviews(per_emotion=100, seed=13)


class EncodedOnce:
    """An embedder that encodes each distinct text once and answers it from memory after:
    the suite builds indexes of the same 700 reviews in about ten fixtures, and MiniLM
    encoding them was 6 of the 7 s of CPU of each build. The vectors are the real model's."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self.model_id: str = embedder.model_id
        self.dimension: int = embedder.dimension
        self._vectors: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        missing = list(dict.fromkeys(text for text in texts if text not in self._vectors))
        if missing:
            encoded = self._embedder.encode(missing, show_progress=show_progress)
            self._vectors.update(zip(missing, encoded, strict=True))
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack([self._vectors[text] for text in texts])


@pytest.fixture(scope="session")
def minilm() -> EncodedOnce:
    """The real all-MiniLM-L6-v2 from the offline package, each text encoded once."""
    from components.index.embedder import SentenceTransformerEmbedder
    from components.settings import DEFAULT_EMBEDDER

    return EncodedOnce(SentenceTransformerEmbedder.load(DEFAULT_EMBEDDER))


@pytest.fixture(scope="session")
def built_index(tmp_path_factory: pytest.TempPathFactory, reviews_700: pd.DataFrame, minilm):
    """An index of the default 700 reviews built with the real MiniLM."""
    from components.analysis.index_build import build_index
    from components.index.store import load_index
    from components.nlp.sentiment import VaderSentimentScorer
    from components.nlp.summarize import ExtractiveSummarizer

    root = tmp_path_factory.mktemp("index")
    build_index(
        reviews_700, "0" * 64, minilm, Settings.from_dict({}), sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm), root=root, progress=False,
    )  # fmt: skip
    return load_index(root, expected_embedder=minilm.model_id)


@pytest.fixture
def workspace_settings(tmp_path: Path) -> Settings:
    return Settings.from_dict({"workspace": str(tmp_path / "ws")})


@pytest.fixture(scope="session")
def tiny_nlp_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random T5, RoBERTa sentiment and RoBERTa emotion models saved like checkpoints."""
    from tests.random_models import (
        EMOTION_MODEL_LABELS,
        SENTIMENT_LABELS,
        save_roberta_classifier,
        save_t5,
    )

    root = tmp_path_factory.mktemp("nlp-models")
    return {
        "t5": save_t5(root / "tiny-flan-t5", size="tiny"),
        "sentiment": save_roberta_classifier(root / "tiny-sentiment", SENTIMENT_LABELS, "tiny"),
        "emotion": save_roberta_classifier(root / "tiny-emotion", EMOTION_MODEL_LABELS, "tiny"),
    }


@pytest.fixture(scope="session")
def random_classifier_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained EmotionResNet saved the way training saves one."""
    import torch

    from components.vision.model import EmotionResNet, save_weights

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("classifier") / "weights.pt"
    save_weights(EmotionResNet(), path)
    return path


@pytest.fixture(scope="session")
def synthetic_faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded synthetic FER-format faces: 60 train and 15 test images per emotion."""
    from components.vision.synthetic_faces import synthesize_faces

    root = tmp_path_factory.mktemp("faces")
    synthesize_faces(root, per_class_train=60, per_class_test=15, seed=0, progress=False)
    return root
