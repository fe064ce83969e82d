"""What README promises about index builds and answers holds off the happy path too:
the build indexes the vectors it is given, precomputed answers and the free-text cache are
keyed on every setting, and an index swap never mixes two versions."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from components.analysis import pipeline as pipeline_module
from components.analysis.index_build import build_index
from components.analysis.pipeline import ReviewAnalysisPipeline
from components.index.search import ReviewSearcher
from components.index.store import load_index
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.settings import Settings

pytestmark = pytest.mark.integration


class CountingEmbedder:
    """The real MiniLM, recording every text it is asked to encode."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dimension = inner.dimension
        self.encoded: list[str] = []

    def encode(self, texts):
        self.encoded += list(texts)
        return self.inner.encode(texts)


def _build(settings: Settings, reviews: pd.DataFrame, embedder, vectors=None, sha="a" * 64):
    return build_index(
        reviews, sha, embedder, settings, vectors=vectors, sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(embedder), progress=False,
    )  # fmt: skip


def test_given_vectors_are_what_the_index_holds_and_reviews_are_not_embedded_again(
    tmp_path, reviews_700, minilm
) -> None:
    settings = Settings.from_dict({"workspace": str(tmp_path / "ws")})
    reviews = reviews_700.iloc[:140].reset_index(drop=True)
    vectors = minilm.encode(reviews["text"].tolist())
    vectors = (vectors + np.float32(0.001)).astype(np.float32)  # recognisably ours
    counting = CountingEmbedder(minilm)
    manifest = _build(settings, reviews, counting, vectors=vectors)
    assert not set(counting.encoded) & set(reviews["text"]), "reviews were embedded again"
    stored = load_index(settings.paths.index_root, manifest.version)
    np.testing.assert_array_equal(stored.index.reconstruct_n(0, stored.index.ntotal), vectors)


def test_stored_answers_are_keyed_on_generation_settings(tmp_path, reviews_700, minilm) -> None:
    built = Settings.from_dict({"workspace": str(tmp_path / "ws"), "nlp": {"sentiment": "vader"}})
    _build(built, reviews_700, minilm)
    same = ReviewAnalysisPipeline.load(built, embedder=minilm)
    assert len(same.precomputed_emotions) == 7
    for change in ({"summary_sentences": 3}, {"max_new_tokens": 32}, {"num_beams": 2}):
        other = Settings.from_dict(
            {"workspace": str(tmp_path / "ws"), "nlp": {"sentiment": "vader", **change}}
        )
        changed = ReviewAnalysisPipeline.load(other, embedder=minilm)
        assert changed.precomputed_emotions == [], f"{change} served answers made without it"
    longer = Settings.from_dict(
        {"workspace": str(tmp_path / "ws"), "nlp": {"sentiment": "vader", "summary_sentences": 4}}
    )
    answer = ReviewAnalysisPipeline.load(longer, embedder=minilm).for_emotion("happy")
    assert answer.source == "computed"


def test_a_question_during_an_index_swap_is_cached_under_its_own_version(
    tmp_path, reviews_700, minilm, monkeypatch
) -> None:
    settings = Settings.from_dict(
        {"workspace": str(tmp_path / "ws"), "nlp": {"sentiment": "vader"}}
    )
    old_reviews = reviews_700[reviews_700["emotion"] != "angry"].copy()
    old_reviews = pd.concat([old_reviews, reviews_700[reviews_700["emotion"] == "angry"].iloc[:50]])
    new_reviews = pd.concat(
        [
            reviews_700[reviews_700["emotion"] != "angry"],
            reviews_700[reviews_700["emotion"] == "angry"].iloc[50:],
        ]
    )
    _build(settings, old_reviews.reset_index(drop=True), minilm, sha="1" * 64)
    pipeline = ReviewAnalysisPipeline.load(settings, embedder=minilm)
    old_version = pipeline.index_version
    new_manifest = _build(settings, new_reviews.reset_index(drop=True), minilm, sha="2" * 64)
    new_searcher = ReviewSearcher(
        load_index(settings.paths.index_root, new_manifest.version), minilm, settings.retrieval
    )

    swapping, asked = threading.Event(), threading.Event()
    real_build = pipeline_module.build_answer_chain

    def slow_build(searcher, *args):
        if searcher is new_searcher:
            swapping.set()
            asked.wait(timeout=60)  # a question arrives in the middle of the swap
        return real_build(searcher, *args)

    monkeypatch.setattr(pipeline_module, "build_answer_chain", slow_build)
    swap = threading.Thread(target=pipeline.use_index, args=(new_searcher,))
    swap.start()
    assert swapping.wait(timeout=60)
    question = "why was the delivery late?"
    during = pipeline.from_text(question, emotion="angry")
    asked.set()
    swap.join(timeout=60)
    assert during.index_version == old_version
    after = pipeline.from_text(question, emotion="angry")
    assert after.index_version == new_manifest.version
    new_ids = set(new_reviews["review_id"])
    assert {r.review_id for r in after.reviews} <= new_ids, "an old-index answer was served"
