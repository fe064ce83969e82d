"""Themes say why customers feel an emotion: measured against what the synthetic generator
knows, on reviews written differently, and on uneven coverage (real exports)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.analysis.index_build import build_index
from components.analysis.pipeline import ReviewAnalysisPipeline
from components.analysis.theme_summary import summarize_themes
from components.analysis.themes import find_themes
from components.emotions import EMOTIONS
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.nlp.tagging import PrototypeEmotionTagger, tag_reviews
from components.reviews.generate import REASONS
from components.reviews.ingest import ColumnMapping, ingest_reviews
from components.reviews.validate import validate_reviews
from components.settings import Settings, ThemeSettings

pytestmark = pytest.mark.integration

SHOP_CSV = Path(__file__).resolve().parents[1] / "fixtures" / "shop_reviews.csv"


def purity(assigned: np.ndarray, truth: np.ndarray) -> float:
    kept = assigned >= 0
    total = sum(
        Counter(truth[kept & (assigned == t)]).most_common(1)[0][1] for t in set(assigned[kept])
    )
    return total / max(int(kept.sum()), 1)


def assignment(themes, emotion: str, size: int) -> np.ndarray:
    assigned = np.full(size, -1)
    for number, members in enumerate(themes[emotion].members):
        assigned[members] = number
    return assigned


@pytest.fixture(scope="module")
def default_themes(reviews_700: pd.DataFrame, minilm):
    return find_themes(reviews_700, minilm.encode(reviews_700["text"].tolist()), ThemeSettings())


def test_themes_recover_the_generators_reasons_and_the_summary_names_its_aspects(
    reviews_700: pd.DataFrame, default_themes
) -> None:
    for emotion in EMOTIONS:
        rows = np.flatnonzero((reviews_700["emotion"] == emotion).to_numpy())
        truth = np.array(
            [
                next(i for i, (_, r) in enumerate(REASONS[emotion]) if r in text)
                for text in reviews_700["text"].iloc[rows]
            ]
        )
        found = assignment(default_themes, emotion, len(reviews_700))[rows]
        assert purity(found, truth) >= 0.8, emotion
        themes = default_themes[emotion].themes
        assert abs(sum(t.share for t in themes) - (found >= 0).mean()) < 1e-9
        top_aspects = [a for a, _ in Counter(reviews_700["aspect"].iloc[rows]).most_common(3)]
        summary = summarize_themes(emotion, themes, 3)
        assert summary.startswith(f"Customers who feel {emotion} mostly mention")
        assert sum(aspect in summary for aspect in top_aspects) >= 2, (summary, top_aspects)
        for theme in themes:
            assert 2 <= len(theme.quotes) <= 3 and len({q.text for q in theme.quotes}) == len(
                theme.quotes
            )


def test_a_tiny_emotion_gets_one_theme_or_none_never_invented_ones(
    reviews_700: pd.DataFrame, minilm
) -> None:
    keep = reviews_700.groupby("emotion").cumcount()
    limits = {"disgust": 3, "fear": 2, "neutral": 0}
    mask = [keep[i] < limits.get(e, 100) for i, e in enumerate(reviews_700["emotion"])]
    uneven = reviews_700[mask].reset_index(drop=True)
    themes = find_themes(uneven, minilm.encode(uneven["text"].tolist()), ThemeSettings())
    assert len(themes["disgust"].themes) == 1 and themes["disgust"].themes[0].reviews == 3
    assert themes["fear"].themes == [] and themes["neutral"].themes == []
    assert len(themes["happy"].themes) >= 5


def test_reviews_written_differently_give_sensible_themes(tmp_path: Path, minilm) -> None:
    """A shop's own export: other products and phrasings, three emotions only, some rows
    unlabeled (tagged here), no aspect column: the themes still find its reasons."""
    truth = pd.read_csv(SHOP_CSV).set_index("id")
    reviews = ingest_reviews(
        SHOP_CSV, ColumnMapping(text="review", emotion="label", review_id="id", product="product")
    )
    labeled = reviews[reviews["emotion"].notna()]
    reviews, tagged = tag_reviews(reviews, PrototypeEmotionTagger.fit(minilm, labeled))
    assert tagged == 6
    unlabeled = truth[truth["label"].isna()]
    got = reviews.set_index("review_id").loc[unlabeled.index, "emotion"]
    assert (got == unlabeled["true_label"]).sum() >= 5

    report = validate_reviews(reviews, Settings.from_dict({}).reviews)
    assert report.passed, report.failure_summary()  # three emotions of seven: a warning
    assert any("no reviews yet for" in w.describe() for w in report.warnings)

    vectors = minilm.encode(reviews["text"].tolist())
    themes = find_themes(reviews, vectors, ThemeSettings())
    topics = truth.loc[reviews["review_id"], "topic"].to_numpy()
    for emotion in ("angry", "happy", "sad"):
        rows = np.flatnonzero((reviews["emotion"] == emotion).to_numpy())
        found = assignment(themes, emotion, len(reviews))[rows]
        assert len(themes[emotion].themes) >= 2
        assert purity(found, topics[rows]) >= 0.8, emotion
    words = {w for t in themes["angry"].themes for k in t.keywords for w in k.split()}
    assert {"charged", "twice"} & words and {"support", "rude"} & words

    settings = Settings.from_dict({"workspace": str(tmp_path / "ws")})
    build_index(
        reviews, "7" * 64, minilm, settings, sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm), progress=False,
    )  # fmt: skip
    pipeline = ReviewAnalysisPipeline.load(settings, embedder=minilm)
    fear = pipeline.for_emotion("fear")
    assert fear.summary == "No reviews from customers who felt fear yet."
    assert fear.reviews == [] and fear.themes == []
    angry = pipeline.for_emotion("angry")
    assert angry.source == "precomputed" and angry.themes
    assert angry.summary.startswith("Customers who feel angry mostly mention")
    billing = pipeline.from_text("why are customers angry about being billed twice?", "angry")
    quoted = {truth.loc[q.review_id, "topic"] for q in billing.themes[0].quotes}
    assert quoted == {"double charge"}, billing.themes[0]
