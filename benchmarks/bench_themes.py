"""Themes: quality against what the synthetic generator knows, and build time at scale.

Quality, on the default 700 reviews: each review's true reason (the generator's
``REASONS`` phrase in its text) and aspect. Per emotion: purity and adjusted Rand index of
the themes against the true reasons, whether the summary names at least 2 of the emotion's 3
most common true aspects, and how many of the 3 largest themes' labels name one of them.
Compared for the grouping features (the index vectors alone, the words alone, both: the
shipped default), so the choice in ``components/analysis/themes.py`` is a measured one.

Reviews the generator did not write: the shop export of ``tests/fixtures/shop_reviews.csv``
(other products and phrasings, three emotions, rows labelled with their true topic), purity
per emotion for the same features.

Scale: themes for 100 k reviews (the generator's texts, index vectors from embedding the
distinct ones once and adding a little noise per copy), fitted on a sample per emotion and
assigned for the rest.

    python -m benchmarks.bench_themes [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from components.analysis.theme_summary import summarize_themes
from components.analysis.themes import find_themes
from components.emotions import EMOTIONS
from components.index.embedder import SentenceTransformerEmbedder
from components.nlp.sentiment import VaderSentimentScorer
from components.reviews.generate import REASONS, generate_reviews
from components.settings import DEFAULT_EMBEDDER, ThemeSettings

SHOP_CSV = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "shop_reviews.csv"
FEATURES = {"vectors only": 0.0, "words only": 1.0, "both (default)": ThemeSettings().text_weight}


def true_reason(emotion: str, text: str) -> int:
    """Which of the generator's reasons for ``emotion`` the review gives (its phrase is in
    the text)."""
    for index, (_, reason) in enumerate(REASONS[emotion]):  # type: ignore[index]
        if reason in text:
            return index
    raise ValueError(f"no known reason in {text!r}")


def purity(assigned: np.ndarray, truth: np.ndarray) -> float:
    """Share of reviews whose theme's most common true reason is their own."""
    kept = assigned >= 0
    if not kept.any():
        return 0.0
    total = sum(
        Counter(truth[kept & (assigned == t)]).most_common(1)[0][1] for t in set(assigned[kept])
    )
    return total / int(kept.sum())


def theme_quality(
    reviews: pd.DataFrame, vectors: np.ndarray, settings: ThemeSettings
) -> dict[str, Any]:
    started = time.perf_counter()
    themes = find_themes(reviews, vectors, settings)
    seconds = time.perf_counter() - started
    per_emotion = {}
    for emotion in EMOTIONS:
        rows = np.flatnonzero((reviews["emotion"] == emotion).to_numpy())
        truth = np.array([true_reason(emotion, t) for t in reviews["text"].iloc[rows]])
        assigned = np.full(len(reviews), -1)
        for number, members in enumerate(themes[emotion].members):
            assigned[members] = number
        assigned = assigned[rows]
        found = themes[emotion].themes
        aspects = Counter(reviews["aspect"].iloc[rows].astype(str))
        top_aspects = [a for a, _ in aspects.most_common(3)]
        summary = summarize_themes(emotion, found, settings.per_answer)
        labels = " ".join(t.label for t in found[:3])
        per_emotion[emotion] = {
            "themes": len(found),
            "purity": purity(assigned, truth),
            "adjusted_rand": float(adjusted_rand_score(truth, assigned)),
            "unthemed_share": float((assigned < 0).mean()),
            "top3_true_aspects": top_aspects,
            "summary": summary,
            "summary_names_top_aspects": sum(a in summary for a in top_aspects),
            "top3_labels_name_top_aspects": sum(a in labels for a in top_aspects),
        }
    return {
        "seconds": seconds,
        "purity": float(np.mean([e["purity"] for e in per_emotion.values()])),
        "min_purity": float(min(e["purity"] for e in per_emotion.values())),
        "adjusted_rand": float(np.mean([e["adjusted_rand"] for e in per_emotion.values()])),
        "summaries_naming_2_of_top_3_aspects": sum(
            e["summary_names_top_aspects"] >= 2 for e in per_emotion.values()
        ),
        "per_emotion": per_emotion,
    }


def shop_reviews() -> tuple[pd.DataFrame, np.ndarray]:
    """The labelled rows of the shop export as reviews, and their true topics."""
    shop = pd.read_csv(SHOP_CSV)
    shop = shop[shop["label"].notna()].reset_index(drop=True)
    reviews = pd.DataFrame(
        {"review_id": shop["id"], "text": shop["review"], "emotion": shop["label"],
         "product": shop["product"]}
    )  # fmt: skip
    return reviews, shop["topic"].to_numpy()


def shop_purity(
    reviews: pd.DataFrame, vectors: np.ndarray, topics: np.ndarray, weight: float
) -> dict[str, float]:
    """Purity per emotion of the themes of the shop export against its true topics."""
    themes = find_themes(reviews, vectors, ThemeSettings(text_weight=weight))
    out = {}
    for emotion in sorted(set(reviews["emotion"])):
        rows = np.flatnonzero((reviews["emotion"] == emotion).to_numpy())
        assigned = np.full(len(reviews), -1)
        for number, members in enumerate(themes[emotion].members):
            assigned[members] = number
        out[emotion] = purity(assigned[rows], topics[rows])
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    embedder = SentenceTransformerEmbedder.load(DEFAULT_EMBEDDER)
    reviews = scored(generate_reviews(per_emotion=20 if smoke else 100, seed=13))
    vectors = embedder.encode(reviews["text"].tolist())
    shop, topics = shop_reviews()
    shop_vectors = embedder.encode(shop["text"].tolist())
    quality = {}
    for name, weight in FEATURES.items():
        quality[name] = theme_quality(reviews, vectors, ThemeSettings(text_weight=weight))
        quality[name]["shop_purity"] = shop_purity(shop, shop_vectors, topics, weight)
    scale = theme_scale(embedder, 140 if smoke else 100_000)
    return {"reviews": len(reviews), "quality": quality, "scale": scale}


def scored(reviews: pd.DataFrame) -> pd.DataFrame:
    """The reviews with their VADER sentiment (themes report a mean sentiment)."""
    results = VaderSentimentScorer().score(reviews["text"].tolist())
    return reviews.assign(
        sentiment_label=[r.label for r in results], sentiment_score=[r.score for r in results]
    )


def theme_scale(embedder: SentenceTransformerEmbedder, n: int) -> dict[str, Any]:
    distinct = generate_reviews(per_emotion=math.ceil(min(n, 7_000) / 7), seed=21)
    base = embedder.encode(distinct["text"].tolist())
    copies = math.ceil(n / len(distinct))
    reviews = pd.concat([distinct] * copies, ignore_index=True).iloc[:n]
    rng = np.random.default_rng(0)
    vectors = np.tile(base, (copies, 1))[:n] + rng.normal(0, 0.01, (n, base.shape[1]))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    started = time.perf_counter()
    themes = find_themes(reviews, vectors, ThemeSettings())
    seconds = time.perf_counter() - started
    return {
        "reviews": n,
        "seconds": seconds,
        "themes": sum(len(t.themes) for t in themes.values()),
        "fit_sample_per_emotion": ThemeSettings().fit_sample,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true")
    print(json.dumps(run(parser.parse_args().smoke), indent=2, default=str))


if __name__ == "__main__":
    main()
