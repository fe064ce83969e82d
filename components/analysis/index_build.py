"""An index version ready for answering: review sentiments and the 7 emotion answers.

Reviews do not change after a build, so their sentiment is computed here once (stored as
``sentiment_label`` / ``sentiment_score`` columns of the index metadata), and so is the
answer for each of the 7 emotions (``emotion_answers.json`` in the version folder). The
whole version is published atomically: a failure leaves the previous one current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from components.analysis.answer import Answer
from components.analysis.chain import (
    SENTIMENT_LABEL_COLUMN,
    SENTIMENT_SCORE_COLUMN,
    build_answer_chain,
    chain_models,
)
from components.emotions import EMOTIONS, emotion_query
from components.files import write_text_atomic
from components.index.build import assemble_review_index, publish_review_index
from components.index.embedder import Embedder
from components.index.search import ReviewSearcher
from components.index.store import IndexManifest, StoredIndex
from components.nlp.sentiment import SentimentScorer
from components.nlp.summarize import Summarizer
from components.settings import Settings

EMOTION_ANSWERS_FILE = "emotion_answers.json"


class UnlabeledReviewsError(ValueError):
    """Reviews without an emotion cannot be indexed: tag them first."""


def score_review_sentiments(
    reviews: pd.DataFrame, scorer: SentimentScorer, batch_size: int = 64, progress: bool = True
) -> pd.DataFrame:
    """``reviews`` plus ``sentiment_label`` and ``sentiment_score``, scored in batches."""
    texts = reviews["text"].astype(str).tolist()
    labels: list[str] = []
    scores: list[float] = []
    with tqdm(
        total=len(texts), desc="scoring sentiment", unit="review", disable=not progress
    ) as bar:
        for start in range(0, len(texts), batch_size):
            for sentiment in scorer.score(texts[start : start + batch_size]):
                labels.append(sentiment.label)
                scores.append(sentiment.score)
            bar.update(min(batch_size, len(texts) - start))
    out = reviews.copy()
    out[SENTIMENT_LABEL_COLUMN] = pd.Series(labels, index=out.index, dtype="string")
    out[SENTIMENT_SCORE_COLUMN] = pd.Series(scores, index=out.index, dtype="float64")
    return out


ANSWER_SETTINGS = ("embedder", "retrieval", "nlp")


def answers_key(index_version: str, models: dict[str, str], settings: Settings) -> dict[str, Any]:
    """What an answer depends on: the index version, the model ids, and every setting of
    the sections that make answers (whole sections, so a new setting is never missed). A
    pipeline uses precomputed answers only on an exact match."""
    return {
        "index_version": index_version,
        **models,
        **{name: getattr(settings, name).model_dump(mode="json") for name in ANSWER_SETTINGS},
    }


def compute_emotion_answers(
    searcher: ReviewSearcher, summarizer: Summarizer, sentiment: SentimentScorer
) -> dict[str, Answer]:
    """The answer for each of the 7 emotions, with the original system's query."""
    chain = build_answer_chain(searcher, summarizer, sentiment)
    return {
        emotion: chain.invoke({"query": emotion_query(emotion), "emotion": emotion, "k": None})
        for emotion in EMOTIONS
        if searcher.emotion_size(emotion) > 0
    }


def read_emotion_answers(stored: StoredIndex) -> tuple[dict[str, Any], dict[str, Answer]]:
    """(key, answers) stored with a version; empty when it has none."""
    if stored.directory is None or not (stored.directory / EMOTION_ANSWERS_FILE).is_file():
        return {}, {}
    document = json.loads((stored.directory / EMOTION_ANSWERS_FILE).read_text(encoding="utf-8"))
    answers = {e: Answer.model_validate(a) for e, a in document["answers"].items()}
    return document["key"], answers


def build_analysis_index(
    reviews: pd.DataFrame,
    data_sha256: str,
    embedder: Embedder,
    sentiment: SentimentScorer,
    summarizer: Summarizer,
    settings: Settings,
    root: Path,
    progress: bool = True,
    vectors: np.ndarray | None = None,
) -> IndexManifest:
    """Score, embed (unless ``vectors`` are given, e.g. computed on a cluster), precompute
    the emotion answers, and publish one index version."""
    unlabeled = int(reviews["emotion"].isna().sum())
    if unlabeled:
        raise UnlabeledReviewsError(
            f"{unlabeled} reviews have no emotion: run `emoreview reviews tag` first"
        )
    scored = score_review_sentiments(reviews, sentiment, settings.nlp.batch_size, progress)
    stored = assemble_review_index(
        scored, data_sha256, embedder, settings.index, vectors=vectors, progress=progress
    )
    searcher = ReviewSearcher(stored, embedder, settings.retrieval)
    models = chain_models(searcher, summarizer, sentiment)
    key = answers_key(stored.version, models, settings)
    answers = compute_emotion_answers(searcher, summarizer, sentiment)
    document = {
        "key": key,
        "answers": {emotion: a.model_dump(mode="json") for emotion, a in answers.items()},
    }

    def write_answers(path: Path) -> None:
        write_text_atomic(path, json.dumps(document, indent=2))

    return publish_review_index(
        stored,
        root,
        settings.index,
        extra_files={EMOTION_ANSWERS_FILE: write_answers},
        extras={"sentiment": sentiment.model_id, "summarizer": summarizer.model_id},
    )


def build_configured_index(
    reviews: pd.DataFrame,
    data_sha256: str,
    embedder: Embedder,
    settings: Settings,
    progress: bool = True,
    vectors: np.ndarray | None = None,
) -> IndexManifest:
    """:func:`build_analysis_index` with the sentiment scorer and summarizer the settings
    select, published under the workspace's index root."""
    from components.nlp.sentiment import load_sentiment_scorer
    from components.nlp.summarize import load_summarizer

    return build_analysis_index(
        reviews,
        data_sha256,
        embedder,
        load_sentiment_scorer(settings.nlp),
        load_summarizer(settings.nlp, embedder),
        settings,
        settings.paths.index_root,
        progress=progress,
        vectors=vectors,
    )
