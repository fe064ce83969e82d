"""Themes: *why* customers feel an emotion, over all of that emotion's reviews.

Computed once per index version (BERTopic-style, with scikit-learn): each emotion's reviews
are grouped by k-means, each group is labelled with its most distinctive words against the
emotion's other groups (class-based TF-IDF) and, when most of its reviews share one, the
data's aspect; the reviews closest to a group's centre are its quotes.

What the reviews are grouped on, measured by purity against the true reasons of the
synthetic generator's default 700 reviews and of a shop's export written differently
(``tests/fixtures/shop_reviews.csv``; ``benchmarks/bench_themes.py``):

- the review's vector from the index (no second embedding pass), with the mean vector of its
  product removed when the data names products. Raw all-MiniLM-L6-v2 vectors group the
  synthetic reviews by product and phrasing rather than by reason (purity 0.34); without the
  product, 0.71. On the shop's own phrasings the vectors carry the synonyms (0.62-1.0).
- the review's words: TF-IDF (1-2 grams, English stop words, terms in at most 30 % of the
  emotion's reviews), reduced by truncated SVD. Alone: 0.98 on the synthetic reviews, but
  0.76-0.89 on the shop's, whose reviews of one reason share few words.
- both, the words at ``themes.text_weight`` 0.8: 0.997 synthetic, 0.88-1.0 on the shop's.

The number of themes is chosen by silhouette (2 to ``themes.max_themes``), fitted on at most
``themes.fit_sample`` reviews per emotion; the other reviews are assigned to the nearest
theme, so 100 k reviews take minutes. A group smaller than ``themes.min_theme_size`` is not
a theme, and an emotion with too few reviews gets one theme or none, never invented ones.

Emotions are clustered side by side, one thread each: their matrices (at most
``fit_sample`` rows) are so small that waking the BLAS and OpenMP thread pools for every
k-means step cost more than it saved (5,000 reviews on 2 cores: 5.3 s with the pools,
1.6 s one emotion after another on one thread, 1.1 s two emotions at a time; the same
themes each way). scikit-learn is imported only by the functions that find themes: the
photo endpoint reads stored themes without paying its 1.1 s import.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from components.analysis.answer import Theme, ThemeQuote
from components.emotions import EMOTIONS
from components.settings import ThemeSettings
from components.text import normalize_text

MAX_TERM_SHARE = 0.3  # a term in more of an emotion's reviews is its template, not a reason
SVD_COMPONENTS = 50
KEYWORDS = 4
QUOTE_CHARS = 300


@dataclass(frozen=True)
class EmotionThemes:
    """One emotion's themes (largest first) and their centres in the index's vector space
    (for matching a question to them)."""

    themes: list[Theme]
    centroids: np.ndarray  # (len(themes), d), L2-normalised
    # Row positions of each theme's reviews in the frame given to find_themes (not stored).
    members: tuple[np.ndarray, ...] = ()

    @classmethod
    def empty(cls, dimension: int) -> EmotionThemes:
        return cls([], np.zeros((0, dimension), dtype=np.float32))

    def to_json(self) -> dict[str, object]:
        return {
            "themes": [theme.model_dump(mode="json") for theme in self.themes],
            "centroids": np.round(self.centroids, 6).tolist(),
            "dimension": int(self.centroids.shape[1]),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> EmotionThemes:
        centroids = np.asarray(document["centroids"], dtype=np.float32)
        return cls(
            [Theme.model_validate(t) for t in document["themes"]],
            centroids.reshape(len(document["themes"]), int(document["dimension"])),
        )


def find_themes(
    reviews: pd.DataFrame, vectors: np.ndarray, settings: ThemeSettings
) -> dict[str, EmotionThemes]:
    """Themes for each emotion of ``reviews`` (``text``, ``emotion``; ``review_id``,
    ``product``, ``aspect`` and ``sentiment_label``/``sentiment_score`` when present), whose
    index vectors are the rows of ``vectors``."""
    if len(reviews) != len(vectors):
        raise ValueError(f"{len(reviews)} reviews but {len(vectors)} vectors")
    frame = reviews.reset_index(drop=True)
    labels = frame["emotion"].astype("string")

    def emotion_themes(emotion: str) -> EmotionThemes:
        rows = np.flatnonzero((labels == emotion).fillna(False).to_numpy())
        themes = _emotion_themes(emotion, frame.iloc[rows], vectors[rows], settings)
        return dataclasses.replace(
            themes, members=tuple(rows[members] for members in themes.members)
        )

    workers = min(len(EMOTIONS), os.cpu_count() or 1)
    with threadpool_limits(limits=1), ThreadPoolExecutor(workers) as pool:
        return dict(zip(EMOTIONS, pool.map(emotion_themes, EMOTIONS), strict=True))


def _emotion_themes(
    emotion: str, reviews: pd.DataFrame, vectors: np.ndarray, settings: ThemeSettings
) -> EmotionThemes:
    n = len(reviews)
    if n < settings.min_theme_size:
        return EmotionThemes.empty(vectors.shape[1])
    texts = reviews["text"].astype(str).tolist()
    rng = np.random.default_rng(settings.seed)
    fit = (
        np.sort(rng.choice(n, settings.fit_sample, replace=False))
        if n > settings.fit_sample
        else np.arange(n)
    )
    features = _features(texts, vectors, _column(reviews, "product"), fit, settings)
    assignment, centres = _cluster(features, fit, settings)
    groups = [
        np.flatnonzero(assignment == c)
        for c in range(len(centres))
        if (assignment == c).sum() >= settings.min_theme_size
    ]
    groups.sort(key=len, reverse=True)
    keywords = _distinctive_terms(texts, groups)
    aspects = [_shared_value(_column(reviews, "aspect"), members) for members in groups]
    themes, centroids = [], []
    for members, words, aspect in zip(groups, keywords, aspects, strict=True):
        centre = features[members].mean(axis=0)
        closest = members[np.argsort(-(features[members] @ centre))]
        themes.append(
            Theme(
                emotion=emotion,
                label=_label(aspect, words, aspects),
                keywords=words,
                aspect=aspect,
                reviews=len(members),
                share=len(members) / n,
                mean_sentiment=_mean_sentiment(reviews, members),
                quotes=_quotes(reviews, closest, settings.quotes),
            )
        )
        centroid = vectors[members].mean(axis=0)
        centroids.append(centroid / max(float(np.linalg.norm(centroid)), 1e-12))
    if not themes:
        return EmotionThemes.empty(vectors.shape[1])
    return EmotionThemes(themes, np.stack(centroids).astype(np.float32), tuple(groups))


def _features(
    texts: list[str],
    vectors: np.ndarray,
    products: pd.Series | None,
    fit: np.ndarray,
    settings: ThemeSettings,
) -> np.ndarray:
    """What reviews are grouped on (see the module docstring), L2-normalised rows."""
    from sklearn.preprocessing import normalize

    meaning = np.asarray(vectors, dtype=np.float64).copy()
    if products is not None:
        for product in products.dropna().unique():
            same = (products == product).fillna(False).to_numpy()
            if same.sum() > 1:
                meaning[same] -= meaning[same].mean(axis=0)
    meaning = normalize(meaning - meaning[fit].mean(axis=0))
    words = _word_features(texts, fit)
    if words is None or settings.text_weight == 0.0:
        return meaning
    w = settings.text_weight
    return normalize(np.hstack([meaning * math.sqrt(1.0 - w), words * math.sqrt(w)]))


def _word_features(texts: list[str], fit: np.ndarray) -> np.ndarray | None:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    vectorizer = TfidfVectorizer(
        stop_words="english",
        ngram_range=(1, 2),
        sublinear_tf=True,
        max_df=MAX_TERM_SHARE if len(fit) >= 20 else 1.0,
    )
    try:
        vectorizer.fit([texts[i] for i in fit])
    except ValueError:  # no term left (very few or very short reviews)
        return None
    tfidf = vectorizer.transform(texts)
    components = min(SVD_COMPONENTS, tfidf.shape[1] - 1, len(fit) - 1)
    if components < 2:
        return normalize(tfidf.toarray())
    svd = TruncatedSVD(components, random_state=0).fit(tfidf[fit])
    return normalize(svd.transform(tfidf))


def _cluster(
    features: np.ndarray, fit: np.ndarray, settings: ThemeSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(theme of every review, centres): k by silhouette, fitted on the ``fit`` rows."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    sample = features[fit]
    most = min(settings.max_themes, len(fit) // settings.min_theme_size, len(fit) - 1)
    if most < 2:
        return np.zeros(len(features), dtype=np.int64), features.mean(axis=0, keepdims=True)
    best: tuple[float, KMeans] | None = None
    for k in range(2, most + 1):
        model = KMeans(k, n_init=3, random_state=settings.seed).fit(sample)
        if len(set(model.labels_)) < 2:
            continue
        score = float(silhouette_score(sample, model.labels_))
        if best is None or score > best[0]:
            best = (score, model)
    if best is None:
        return np.zeros(len(features), dtype=np.int64), features.mean(axis=0, keepdims=True)
    model = best[1]
    return model.predict(features), model.cluster_centers_


def _distinctive_terms(texts: list[str], groups: list[np.ndarray]) -> list[list[str]]:
    """Each group's most distinctive words and phrases against the other groups
    (class-based TF-IDF: a term's frequency in the group, weighted by how rare it is across
    all groups)."""
    from sklearn.feature_extraction.text import CountVectorizer

    if not groups:
        return []
    documents = [" ".join(texts[i] for i in members) for members in groups]
    vectorizer = CountVectorizer(stop_words="english", ngram_range=(1, 2))
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(np.float64)
    except ValueError:
        return [[] for _ in groups]
    terms = vectorizer.get_feature_names_out()
    words_per_group = counts.sum(axis=1, keepdims=True)
    frequency = counts / np.maximum(words_per_group, 1.0)
    rarity = np.log1p(words_per_group.mean() / np.maximum(counts.sum(axis=0), 1.0))
    scores = frequency * rarity
    keywords = []
    for row in scores:
        chosen: list[str] = []
        for index in np.argsort(-row):
            if row[index] <= 0 or len(chosen) == KEYWORDS:
                break
            term = str(terms[index])
            if any(term in kept or kept in term for kept in chosen):
                continue
            chosen.append(term)
        keywords.append(chosen)
    return keywords


def _column(reviews: pd.DataFrame, name: str) -> pd.Series | None:
    """A column the data really fills (at least half the rows), else None."""
    if name not in reviews:
        return None
    column = reviews[name].astype("string").reset_index(drop=True)
    return column if column.notna().mean() >= 0.5 else None


def _shared_value(column: pd.Series | None, members: np.ndarray) -> str | None:
    """The value most of ``members`` share (more than half), if any."""
    if column is None:
        return None
    values = column.iloc[members].dropna()
    if values.empty:
        return None
    value, count = Counter(values).most_common(1)[0]
    return str(value) if count > len(members) / 2 else None


def _label(aspect: str | None, keywords: list[str], aspects: list[str | None]) -> str:
    """The aspect when the data has one (with its top phrase when two themes share it),
    otherwise the two most distinctive phrases."""
    if aspect is not None:
        if aspects.count(aspect) > 1 and keywords:
            phrase = next((k for k in keywords if " " in k), keywords[0])
            return f"{aspect}: {phrase}"
        return aspect
    return ", ".join(keywords[:2]) if keywords else "other"


def _mean_sentiment(reviews: pd.DataFrame, members: np.ndarray) -> float | None:
    if "sentiment_label" not in reviews or "sentiment_score" not in reviews:
        return None
    labels = reviews["sentiment_label"].astype("string").iloc[members]
    scores = pd.to_numeric(reviews["sentiment_score"], errors="coerce").iloc[members]
    sign = labels.map({"positive": 1.0, "negative": -1.0, "neutral": 0.0}).astype("float64")
    signed = (sign * scores).dropna()
    return round(float(signed.mean()), 4) if not signed.empty else None


def _quotes(reviews: pd.DataFrame, ordered: np.ndarray, count: int) -> list[ThemeQuote]:
    """The first ``count`` distinct texts of ``ordered`` (closest to the centre first)."""
    quotes, seen = [], set()
    ids = reviews["review_id"].astype(str).tolist() if "review_id" in reviews else None
    texts = reviews["text"].astype(str).tolist()
    for i in ordered:
        key = normalize_text(texts[i])
        if key in seen:
            continue
        seen.add(key)
        text = texts[i] if len(texts[i]) <= QUOTE_CHARS else texts[i][: QUOTE_CHARS - 1] + "…"
        quotes.append(ThemeQuote(review_id=ids[i] if ids else str(i), text=text))
        if len(quotes) == count:
            break
    return quotes
