"""How the app shows an answer: the emotion's 7 probabilities, the summary, the themes (why,
over all of the emotion's reviews), the retrieved reviews as cards, and every version
involved. Each function renders one part of the served JSON; none calls an endpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import streamlit as st

SENTIMENT_COLOURS = {"positive": "green", "neutral": "gray", "negative": "red"}
QUOTED_THEMES = 3  # themes whose quotes are shown; the chart shows them all
Vote = Callable[[dict[str, Any], str], None]
"""Draws the feedback buttons of one review card (the review, the card's key)."""


def bar_chart(
    rows: list[dict[str, Any]],
    category: str,
    value: str,
    key: str,
    *,
    highlight: str | None,
    domain: list[float] | None = None,
    height: int,
) -> None:
    """A horizontal bar chart, largest bar first, as a plain Vega-Lite spec (no Altair
    validation pass on every rerun)."""
    x: dict[str, Any] = {"field": value, "type": "quantitative", "axis": {"format": "%"}}
    if domain:
        x["scale"] = {"domain": domain}
    colour: dict[str, Any] = {"value": "#1c83e1"}
    if highlight is not None:
        colour = {
            "condition": {"test": f"datum[{category!r}] === {highlight!r}", "value": "#ff4b4b"},
            "value": "#9ea7b3",
        }
    spec = {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {**x, "title": None},
            "y": {
                "field": category, "type": "nominal", "sort": "-x", "title": None,
                "axis": {"labelOverlap": False, "labelLimit": 160},
            },
            "color": colour,
            "tooltip": [{"field": category}, {"field": value, "format": ".1%"}],
        },
    }  # fmt: skip
    st.vega_lite_chart(rows, spec, width="stretch", height=height, key=key)


def probabilities_view(probabilities: dict[str, float], key: str) -> None:
    """All 7 probabilities as a bar chart, largest first, and as one line of text."""
    ordered = sorted(probabilities.items(), key=lambda item: -item[1])
    rows = [{"emotion": name, "probability": value} for name, value in ordered]
    bar_chart(
        rows, "emotion", "probability", f"{key}-chart", highlight=ordered[0][0],
        domain=[0, 1], height=28 * len(rows) + 50,
    )  # fmt: skip
    with st.container(key=f"{key}-probabilities"):
        st.caption(" · ".join(f"{name} {value:.1%}" for name, value in ordered))


def themes_view(themes: list[dict[str, Any]], key: str) -> None:
    """Why customers feel it: each theme's share of the emotion's reviews, with quotes."""
    if not themes:
        return
    st.markdown("**Themes** (share of the emotion's reviews)")
    rows = [{"theme": t["label"], "share": t["share"]} for t in themes]
    bar_chart(
        rows, "theme", "share", f"{key}-themes-chart", highlight=None,
        height=max(90, 24 * len(rows) + 40),
    )  # fmt: skip
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
