"""Offline NLP pieces without model weights: VADER, method choice, caches, tagging."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from components.analysis.answer import Answer, SentimentOut
from components.analysis.pipeline import AnswerCache
from components.nlp.loading import ModelLoadError, available_locally, choose_method
from components.nlp.sentiment import VaderSentimentScorer, _sentiment_label
from components.nlp.summarize import (
    DeferredFlanT5Summarizer,
    ExtractiveSummarizer,
    load_summarizer,
    split_sentences,
)
from components.nlp.tagging import EmotionTag, tag_reviews
from components.settings import NlpSettings


def test_vader_maps_onto_the_three_labels() -> None:
    scores = VaderSentimentScorer().score(
        ["I love this, it is wonderful!", "Awful, broken and useless.", "It is a chair."]
    )
    assert [s.label for s in scores] == ["positive", "negative", "neutral"]
    assert all(0.0 <= s.score <= 1.0 for s in scores)


def test_sentiment_labels_from_model_configs() -> None:
    assert _sentiment_label("Negative", 0) == "negative"
    assert _sentiment_label("LABEL_2", 2) == "positive"
    with pytest.raises(ModelLoadError, match="not one of"):
        _sentiment_label("joy", 3)


def test_auto_falls_back_with_a_warning_and_explicit_choice_fails_loudly(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    calls: list[bool] = []

    def primary(local_only: bool) -> str:
        calls.append(local_only)
        raise ModelLoadError("weights not found")

    local = tmp_path / "t5"  # on this machine (its config), but its weights do not load
    local.mkdir()
    (local / "config.json").write_text("{}")
    with caplog.at_level(logging.WARNING):
        chosen = choose_method("auto", "flan-t5", primary, lambda: "fallback", "s", str(local))
    assert chosen == "fallback"
    assert calls == [True], "auto must only look at local files"
    assert "weights not found" in caplog.text
    with pytest.raises(ModelLoadError):
        choose_method("flan-t5", "flan-t5", primary, lambda: "fallback", "s", str(local))
    assert choose_method("extractive", "flan-t5", primary, lambda: "x", "s", str(local)) == "x"


def test_auto_with_a_source_not_on_this_machine_never_tries_to_load_it(
    caplog: pytest.LogCaptureFixture, tmp_path
) -> None:
    calls: list[bool] = []

    def primary(local_only: bool) -> str:
        calls.append(local_only)
        return "transformer"

    missing = str(tmp_path / "no-such-model")
    with caplog.at_level(logging.WARNING):
        chosen = choose_method(
            "auto", "roberta", primary, lambda: "fallback", what="sentiment", source=missing
        )
    assert chosen == "fallback" and calls == [], "nothing to load: the loader is never called"
    assert "no config.json" in caplog.text and "offline method" in caplog.text
    (tmp_path / "no-such-model").mkdir()
    (tmp_path / "no-such-model" / "config.json").write_text("{}")
    assert choose_method("auto", "roberta", primary, lambda: "x", "s", source=missing) == (
        "transformer"
    )


def test_deferred_summarizer_is_chosen_without_loading_anything(tmp_path) -> None:
    checkpoint = tmp_path / "t5"
    checkpoint.mkdir()
    assert not available_locally(str(checkpoint)), "a folder without config.json"
    assert not available_locally("nobody/not-a-cached-model")
    (checkpoint / "config.json").write_text("{}")
    assert available_locally(str(checkpoint))

    local = NlpSettings(summarizer="auto", summarizer_model=str(checkpoint))
    deferred = load_summarizer(local, embedder=None, defer=True)  # type: ignore[arg-type]
    assert isinstance(deferred, DeferredFlanT5Summarizer) and not deferred.loaded
    assert deferred.model_id.startswith(f"flan-t5:{checkpoint}")
    with pytest.raises(ModelLoadError):  # the empty config is found only on first use
        deferred.load()

    missing = NlpSettings(summarizer="auto", summarizer_model="nobody/not-a-cached-model")
    embedder = SimpleNamespace(model_id="sentence-transformers/all-MiniLM-L6-v2")
    fallback = load_summarizer(missing, embedder, defer=True)  # type: ignore[arg-type]
    assert isinstance(fallback, ExtractiveSummarizer)


def test_split_sentences() -> None:
    assert split_sentences("It broke. Why? Because! ok") == ["It broke.", "Why?", "Because!", "ok"]


def _answer(summary: str) -> Answer:
    return Answer(
        emotion=None,
        query="q",
        summary=summary,
        summarizer="s",
        sentiment_method="v",
        reviews=[],
        index_version="v1",
    )


def test_an_answers_first_line_says_how_its_face_was_found() -> None:
    from components.vision.prediction import FacePrediction

    def first_line(**how: bool) -> str:
        face = FacePrediction(
            emotion="sad", confidence=0.5, probabilities={"sad": 0.5},
            box={"x": 0, "y": 0, "width": 48, "height": 48}, **how,
        )  # fmt: skip
        return _answer("s").model_copy(update={"face": face}).describe().splitlines()[0]

    assert first_line(face_detected=True) == "Emotion: sad (50.0%)"
    assert first_line(face_detected=False).endswith("- no face found, whole image used")
    crop = first_line(face_detected=False, face_crop_input=True)
    assert crop.endswith("- a face crop, classified whole")


def test_answer_cache_is_least_recently_used() -> None:
    cache = AnswerCache(size=2)
    cache.put(("a",), _answer("a"))
    cache.put(("b",), _answer("b"))
    assert cache.get(("a",)) is not None  # a is now the most recent
    cache.put(("c",), _answer("c"))
    assert cache.get(("b",)) is None
    assert cache.get(("a",)).summary == "a"
    assert (cache.hits, cache.misses) == (2, 1)
    disabled = AnswerCache(size=0)
    disabled.put(("a",), _answer("a"))
    assert disabled.get(("a",)) is None


def test_a_sentiment_label_outside_the_three_is_refused() -> None:
    from pydantic import ValidationError

    assert SentimentOut(label="neutral", score=0.5).label == "neutral"
    with pytest.raises(ValidationError):
        SentimentOut(label="grumpy", score=0.5)


class _FixedTagger:
    method = "fixed"
    model_id = "fixed:test"

    def tag(self, texts):
        return [EmotionTag("fear", 0.75) for _ in texts]


def test_tag_reviews_fills_only_missing_emotions_and_keeps_confidence() -> None:
    frame = pd.DataFrame(
        {"text": ["a", "b", "c"], "emotion": pd.array(["happy", None, None], dtype="string")}
    )
    tagged, count = tag_reviews(frame, _FixedTagger())
    assert count == 2
    assert tagged["emotion"].tolist() == ["happy", "fear", "fear"]
    assert tagged["emotion_source"].tolist() == ["label", "fixed:test", "fixed:test"]
    assert np.isnan(tagged["emotion_confidence"].iloc[0])
    assert tagged["emotion_confidence"].iloc[1:].tolist() == [0.75, 0.75]
    assert frame["emotion"].isna().sum() == 2, "the input frame is not modified"
