"""An index version ready for answering: review sentiments, themes and the 7 emotion answers.

Reviews do not change after a build, so their sentiment is computed here once (stored as
``sentiment_label`` / ``sentiment_score`` columns of the index metadata), and so are each
emotion's themes over all its reviews (``themes.json``) and the answer for each of the 7
emotions (``emotion_answers.json``). The whole version is published atomically: a failure
leaves the previous one current.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from components.analysis.answer import Answer
from components.analysis.chain import (
    SENTIMENT_LABEL_COLUMN,
    SENTIMENT_SCORE_COLUMN,
    build_answer_chain,
    chain_models,
)
from components.analysis.theme_summary import themes_markdown
from components.analysis.themes import EmotionThemes, find_themes
from components.emotions import EMOTIONS, emotion_query
from components.errors import EmoreviewError
from components.files import write_text_atomic
from components.index.build import assemble_review_index
from components.index.embedder import Embedder
from components.index.search import ReviewSearcher
from components.index.store import IndexManifest, StoredIndex, write_index_version
from components.nlp.sentiment import SentimentScorer
from components.nlp.summarize import Summarizer
from components.progress import Progress
from components.settings import Settings

EMOTION_ANSWERS_FILE = "emotion_answers.json"
THEMES_FILE = "themes.json"

log = logging.getLogger(__name__)


class UnlabeledReviewsError(EmoreviewError, ValueError):
    """Reviews without an emotion cannot be indexed: tag them first."""


def score_review_sentiments(
    reviews: pd.DataFrame, scorer: SentimentScorer, batch_size: int = 64, progress: bool = True
) -> pd.DataFrame:
    """``reviews`` plus ``sentiment_label`` and ``sentiment_score``, scored in batches."""
    texts = reviews["text"].astype(str).tolist()
    labels: list[str] = []
    scores: list[float] = []
    with Progress(
        total=len(texts), desc="scoring sentiment", unit="review", enabled=progress
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


ANSWER_SETTINGS = ("embedder", "retrieval", "nlp", "themes")


def answers_key(index_version: str, models: dict[str, str], settings: Settings) -> dict[str, Any]:
    """What an answer depends on: the index version, the model ids, and every setting of
    the sections that make answers (whole sections, so a new setting is never missed). A
    pipeline uses precomputed answers only on an exact match."""
    return {
        "index_version": index_version,
        **models,
        **{name: getattr(settings, name).model_dump(mode="json") for name in ANSWER_SETTINGS},
    }


def themes_key(
    searcher: ReviewSearcher, sentiment: SentimentScorer, settings: Settings
) -> dict[str, Any]:
    """What themes depend on: the index version (its reviews and vectors), the embedder,
    the sentiment scorer (their mean sentiment) and the ``themes`` settings."""
    return {
        "index_version": searcher.index_version,
        "embedder": searcher.embedder.model_id,
        "sentiment": sentiment.model_id,
        "themes": settings.themes.model_dump(mode="json"),
    }


def compute_emotion_answers(
    searcher: ReviewSearcher,
    summarizer: Summarizer,
    sentiment: SentimentScorer,
    themes: dict[str, EmotionThemes] | None = None,
    summary_reasons: int = 3,
) -> dict[str, Answer]:
    """The answer for each of the 7 emotions, with the original system's query and the
    emotion's themes (an emotion without reviews gets an answer that says so)."""
    chain = build_answer_chain(searcher, summarizer, sentiment, summary_reasons)
    return {
        emotion: chain.invoke(
            {
                "query": emotion_query(emotion),
                "emotion": emotion,
                "k": None,
                "themes": themes[emotion].themes if themes and emotion in themes else [],
            }
        )
        for emotion in EMOTIONS
    }


def read_emotion_answers(stored: StoredIndex) -> tuple[dict[str, Any], dict[str, Answer]]:
    """(key, answers) stored with a version; empty when it has none."""
    if stored.directory is None or not (stored.directory / EMOTION_ANSWERS_FILE).is_file():
        return {}, {}
    document = json.loads((stored.directory / EMOTION_ANSWERS_FILE).read_text(encoding="utf-8"))
    answers = {e: Answer.model_validate(a) for e, a in document["answers"].items()}
    return document["key"], answers


def read_themes(stored: StoredIndex) -> tuple[dict[str, Any], dict[str, EmotionThemes]]:
    """(key, themes per emotion) stored with a version; empty when it has none."""
    if stored.directory is None:
        return {}, {}
    return read_version_themes(stored.directory)


def read_version_themes(folder: Path) -> tuple[dict[str, Any], dict[str, EmotionThemes]]:
    """(key, themes per emotion) of the index version in ``folder``; empty without any."""
    if not (folder / THEMES_FILE).is_file():
        return {}, {}
    document = json.loads((folder / THEMES_FILE).read_text(encoding="utf-8"))
    themes = {e: EmotionThemes.from_json(t) for e, t in document["themes"].items()}
    return document["key"], themes


def version_themes_markdown(root: Path, version: str) -> str:
    """The themes of index ``version`` under ``root``, as markdown for people."""
    _, themes = read_version_themes(root / "versions" / version)
    return themes_markdown(version, themes)


def build_index(
    reviews: pd.DataFrame,
    data_sha256: str,
    embedder: Embedder,
    settings: Settings,
    *,
    vectors: np.ndarray | None = None,
    sentiment: SentimentScorer | None = None,
    summarizer: Summarizer | None = None,
    root: Path | None = None,
    progress: bool = True,
) -> IndexManifest:
    """The one way an index version is built: score each review's sentiment, embed the
    reviews (unless ``vectors`` are given, e.g. computed by the flow's shards), precompute
    the 7 emotion answers, and publish the version atomically under ``root`` (default: the
    workspace's index root).

    ``sentiment`` and ``summarizer`` default to the ones ``settings.nlp`` selects.
    """
    unlabeled = int(reviews["emotion"].isna().sum())
    if unlabeled:
        raise UnlabeledReviewsError(
            f"{unlabeled} reviews have no emotion: run `emoreview reviews tag` first"
        )
    if sentiment is None:
        from components.nlp.sentiment import load_sentiment_scorer

        sentiment = load_sentiment_scorer(settings.nlp)
    if summarizer is None:
        from components.nlp.summarize import load_summarizer

        summarizer = load_summarizer(settings.nlp, embedder)
    scored = score_review_sentiments(reviews, sentiment, settings.nlp.batch_size, progress)
    stored = assemble_review_index(
        scored, data_sha256, embedder, settings.index, vectors=vectors, progress=progress
    )
    searcher = ReviewSearcher(stored, embedder, settings.retrieval)
    models = chain_models(searcher, summarizer, sentiment)
    key = answers_key(stored.version, models, settings)
    started = time.perf_counter()
    themes = find_themes(scored, stored.vectors_of(), settings.themes)
    log.info(
        "themes: %d over %d emotions in %.1f s",
        sum(len(found.themes) for found in themes.values()),
        sum(1 for found in themes.values() if found.themes),
        time.perf_counter() - started,
    )
    answers = compute_emotion_answers(
        searcher, summarizer, sentiment, themes, settings.themes.per_answer
    )
    answers_document = {
        "key": key,
        "answers": {emotion: answer.model_dump(mode="json") for emotion, answer in answers.items()},
    }
    themes_document = {
        "key": themes_key(searcher, sentiment, settings),
        "themes": {e: t.to_json() for e, t in themes.items()},
    }

    def write_answers(path: Path) -> None:
        write_text_atomic(path, json.dumps(answers_document, indent=2))

    def write_themes(path: Path) -> None:
        write_text_atomic(path, json.dumps(themes_document))

    extras = {"sentiment": sentiment.model_id, "summarizer": summarizer.model_id}
    manifest = stored.manifest.model_copy(update={"extras": extras})
    return write_index_version(
        root or settings.paths.index_root,
        stored.index,
        stored.metadata,
        manifest,
        extra_files={EMOTION_ANSWERS_FILE: write_answers, THEMES_FILE: write_themes},
        keep_versions=settings.index.keep_versions,
        lock_timeout_s=settings.index.lock_timeout_s,
        vectors=stored.vectors,
    )
