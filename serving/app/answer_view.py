"""How the app shows an answer: the emotion's 7 probabilities, the summary, the themes (why,
over all of the emotion's reviews), the retrieved reviews as cards, and every version
involved. Each function renders one part of the served JSON; none calls an endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import streamlit as st

SENTIMENT_COLOURS = {"positive": "green", "neutral": "gray", "negative": "red"}
QUOTED_THEMES = 3  # themes whose quotes are shown; the chart shows them all
Vote = Callable[[dict[str, Any], str], None]
"""Draws the feedback buttons of one review card (the review, the card's key)."""


BAR_ROW = (
    '<div style="display:flex;align-items:center;gap:0.5rem;margin:0.15rem 0">'
    '<span style="flex:0 0 9rem;text-align:right;overflow:hidden;text-overflow:ellipsis;'
    'white-space:nowrap" title="{name}">{name}</span>'
    '<span style="flex:1 1 auto;height:1.1rem;background:rgba(151,166,195,0.15)">'
    '<span style="display:block;height:100%;width:{width:.1f}%;background:{colour}"></span>'
    "</span>"
    '<span style="flex:0 0 3.5rem;font-variant-numeric:tabular-nums">{value:.1%}</span>'
    "</div>"
)
"""One bar of :func:`bar_chart`: name, bar, percentage."""


def bar_chart(
    bars: Sequence[tuple[str, float]], key: str, *, highlight: str | None, full: float | None
) -> None:
    """Horizontal bars, largest first (``full``: the value of a full-width bar; ``None``:
    the largest value). Plain HTML and CSS in one element: a chart library's scripts cost
    the browser more than the served answer takes to compute (``make bench``'s app row)."""
    ordered = sorted(bars, key=lambda bar: -bar[1])
    scale = full or max((value for _, value in ordered), default=0.0) or 1.0
    rows = []
    for name, value in ordered:
        colour = "#1c83e1" if highlight is None else "#ff4b4b" if name == highlight else "#9ea7b3"
        width = max(0.0, min(100.0, 100 * value / scale))
        rows.append(BAR_ROW.format(name=escape(name), width=width, colour=colour, value=value))
    with st.container(key=key):
        st.markdown("".join(rows), unsafe_allow_html=True)


def probabilities_view(probabilities: dict[str, float], key: str) -> None:
    """All 7 probabilities as a bar chart, largest first, and as one line of text."""
    ordered = sorted(probabilities.items(), key=lambda item: -item[1])
    bar_chart(ordered, f"{key}-chart", highlight=ordered[0][0], full=1.0)
    with st.container(key=f"{key}-probabilities"):
        st.caption(" · ".join(f"{name} {value:.1%}" for name, value in ordered))


def themes_view(themes: list[dict[str, Any]], key: str) -> None:
    """Why customers feel it: each theme's share of the emotion's reviews, with quotes."""
    if not themes:
        return
    st.markdown("**Themes** (share of the emotion's reviews)")
    bars = [(theme["label"], theme["share"]) for theme in themes]
    bar_chart(bars, f"{key}-themes-chart", highlight=None, full=None)
    for number, theme in enumerate(themes[:QUOTED_THEMES]):
        mood = theme.get("mean_sentiment")
        mood_text = "" if mood is None else f", mean sentiment {mood:+.2f}"
        title = f"{theme['share']:.0%} · {theme['label']} ({theme['reviews']} reviews{mood_text})"
        with st.expander(title, expanded=False, key=f"{key}-theme-{number}"):
            st.caption("keywords: " + ", ".join(theme.get("keywords", [])[:8]))
            for quote in theme.get("quotes", []):
                st.markdown(f"> {quote['text']}")


def review_cards(reviews: list[dict[str, Any]], key: str, vote: Vote | None = None) -> None:
    """One card per retrieved review: sentiment label and score, similarity, product/aspect
    (and ``vote``'s buttons)."""
    for number, review in enumerate(reviews):
        sentiment = review["sentiment"]
        where = " · ".join(
            f"{name} **{review[name]}**" for name in ("product", "aspect") if review.get(name)
        )
        with st.container(border=True, key=f"{key}-review-{number}"):
            colour = SENTIMENT_COLOURS.get(sentiment["label"], "gray")
            st.markdown(
                f":{colour}[**{sentiment['label']}**] "
                f"{sentiment['score']:.2f} · similarity {review['score']:.3f}"
                + (f" · {where}" if where else "")
            )
            st.write(review["text"])
            if vote is not None:
                vote(review, f"{key}-vote-{number}")


def versions_footer(answer: dict[str, Any], key: str) -> None:
    """Every version that made the answer: model, weights, index, summarizer, sentiment."""
    versions = answer.get("versions", {})
    sha = versions.get("model_sha256") or ""
    parts = [
        f"model {versions.get('model_name', '?')} v{versions.get('model_version', '?')}",
        f"weights sha256 {sha[:12]}" if sha else None,
        f"index {answer.get('index_version') or versions.get('index_version', '?')}",
        f"summarizer {answer.get('summarizer') or versions.get('summarizer', '?')}",
        f"sentiment {answer.get('sentiment_method') or versions.get('sentiment', '?')}",
    ]
    with st.container(key=f"{key}-versions"):
        st.caption("Versions: " + " · ".join(part for part in parts if part))


def answer_view(
    answer: dict[str, Any], key: str, heading: str | None = None, vote: Vote | None = None
) -> None:
    """The summary, themes, review cards (with ``vote``'s buttons) and versions of one
    answer."""
    if heading:
        st.subheader(heading)
    with st.container(key=f"{key}-summary"):
        st.markdown(answer["summary"])
    themes_view(answer.get("themes", []), key)
    if answer.get("reviews"):
        st.markdown(f"**{len(answer['reviews'])} reviews that explain it**")
        review_cards(answer["reviews"], key, vote)
    if answer.get("note"):
        st.caption(answer["note"])
    versions_footer(answer, key)


def download_json(document: dict[str, Any], file_name: str, key: str) -> None:
    st.download_button(
        "Download the answer (JSON)",
        json.dumps(document, indent=2, ensure_ascii=False),
        file_name=file_name,
        mime="application/json",
        key=f"{key}-download",
    )
