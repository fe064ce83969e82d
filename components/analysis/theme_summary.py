"""How themes appear in answers: the summary that states them, a flan-t5 prompt built from
them, the themes a free-text question is about, and markdown for people (a Prefect
artifact, an MLflow run artifact)."""

from __future__ import annotations

import re

import numpy as np

from components.analysis.answer import Theme
from components.analysis.themes import EmotionThemes
from components.emotions import UnknownEmotionError, normalize_emotion


def summarize_themes(emotion: str, themes: list[Theme], count: int) -> str:
    """The why, in one or two sentences: the ``count`` largest reasons with their shares
    (themes about the same aspect counted together), then a quote from the largest reason."""
    if not themes:
        return f"No themes were found among the reviews from customers who felt {emotion}."
    reasons: dict[str, list[Theme]] = {}
    for theme in themes:
        reasons.setdefault(theme.aspect or theme.label, []).append(theme)
    top = sorted(reasons.items(), key=lambda item: -sum(t.share for t in item[1]))[:count]
    named = [f"{reason} ({sum(t.share for t in group):.0%})" for reason, group in top]
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + f" and {named[-1]}"
    summary = f"Customers who feel {emotion} mostly mention {listed}."
    quote = _reason_sentence(max(top[0][1], key=lambda theme: theme.share))
    return f'{summary} For example: "{quote}"' if quote else summary


def _reason_sentence(theme: Theme) -> str:
    """The sentence of the theme's first quote that holds the most of its keywords."""
    if not theme.quotes:
        return ""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", theme.quotes[0].text) if s.strip()]
    words = {w for k in theme.keywords for w in k.lower().split()}

    def hits(sentence: str) -> int:
        return len(words & set(re.findall(r"[a-z']+", sentence.lower())))

    return max(sentences, key=hits) if sentences else ""


def themes_prompt(emotion: str, question: str, themes: list[Theme]) -> str:
    """A flan-t5 prompt built from the themes and a quote of each, instead of raw reviews."""
    lines = [f"- {theme.label} ({theme.share:.0%}): {_reason_sentence(theme)}" for theme in themes]
    return (
        f"Why do customers feel {emotion}? {question}\nMain reasons, with their share of "
        "reviews:\n" + "\n".join(lines) + "\nAnswer in one sentence naming the main reasons:"
    )


GENERIC_WORDS = frozenset({"why", "customers", "customer", "people", "feel", "felt", "feeling"})


def _emotion_words(words: set[str]) -> list[str]:
    named = []
    for word in words:
        try:
            normalize_emotion(word)
        except UnknownEmotionError:
            continue
        named.append(word)
    return named


def matching_themes(
    query_vector: np.ndarray,
    query: str,
    themes: dict[str, EmotionThemes],
    emotion: str | None,
    count: int,
) -> list[Theme]:
    """The themes a free-text question is about: closest centres to the question (of its
    emotion when given), a theme whose label or keywords the question names first. A
    question that names nothing but the emotion ("why are customers angry?") gets all of
    that emotion's themes, largest first (or the ``count`` largest of any emotion)."""
    # Imported here: scikit-learn takes 1 s to import, and only free-text questions need it.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = set(re.findall(r"[a-z']+", query.lower()))
    if not words - ENGLISH_STOP_WORDS - GENERIC_WORDS - set(_emotion_words(words)):
        candidates = [
            theme
            for name, found in themes.items()
            if emotion is None or name == emotion
            for theme in found.themes
        ]
        return sorted(candidates, key=lambda theme: -theme.reviews)[: None if emotion else count]
    scored: list[tuple[float, Theme]] = []
    for name, found in themes.items():
        if emotion is not None and name != emotion:
            continue
        similarity = found.centroids @ query_vector if len(found.themes) else []
        for theme, score in zip(found.themes, similarity, strict=True):
            named = words & {w for k in [theme.label, *theme.keywords] for w in k.lower().split()}
            scored.append((float(score) + 0.25 * len(named), theme))
    scored.sort(key=lambda item: -item[0])
    return [theme for _, theme in scored[:count]]


def themes_markdown(index_version: str, themes: dict[str, EmotionThemes]) -> str:
    """The themes of an index version for people (a Prefect artifact, an MLflow artifact)."""
    lines = [f"# Why customers feel each emotion (index {index_version})", ""]
    for emotion, found in themes.items():
        lines.append(f"## {emotion}")
        if not found.themes:
            lines += [f"No themes: too few reviews from customers who felt {emotion}.", ""]
            continue
        lines += [
            "| share | reviews | theme | keywords | sentiment | quote |",
            "|---|---|---|---|---|---|",
        ]
        for theme in found.themes:
            quote = theme.quotes[0].text.replace("|", "/") if theme.quotes else ""
            mood = "" if theme.mean_sentiment is None else f"{theme.mean_sentiment:+.2f}"
            lines.append(
                f"| {theme.share:.0%} | {theme.reviews} | {theme.label} | "
                f"{', '.join(theme.keywords)} | {mood} | {quote} |"
            )
        lines.append("")
    return "\n".join(lines)
