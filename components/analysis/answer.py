"""The typed answer every entry point (CLI, flows, TorchServe) returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from components.vision.prediction import FacePrediction


class SentimentOut(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float


class ReviewEvidence(BaseModel):
    """One retrieved review with its similarity to the query and its sentiment."""

    review_id: str
    text: str
    emotion: str | None
    score: float = Field(description="cosine similarity to the query")
    sentiment: SentimentOut
    rating: int | None = None
    product: str | None = None
    aspect: str | None = None


class ThemeQuote(BaseModel):
    review_id: str
    text: str


class Theme(BaseModel):
    """One reason customers give for an emotion, found over all of that emotion's reviews."""

    emotion: str
    label: str = Field(description="What the theme is about (aspect, or distinctive words)")
    keywords: list[str] = Field(description="Its most distinctive words and phrases (c-TF-IDF)")
    aspect: str | None = Field(None, description="The reviews' aspect when most of them share one")
    reviews: int = Field(description="How many of the emotion's reviews are in the theme")
    share: float = Field(description="That number as a share of the emotion's reviews (0-1)")
    mean_sentiment: float | None = Field(
        None, description="Mean sentiment, -1 (negative) to 1 (positive)"
    )
    quotes: list[ThemeQuote] = Field(description="Reviews closest to the theme's centre")


class Answer(BaseModel):
    """Why customers felt an emotion: summary, evidence, and every version involved."""

    emotion: str | None = Field(description="The emotion the answer is about (None: any)")
    emotion_probabilities: dict[str, float] | None = Field(
        None, description="All 7 probabilities when the emotion came from an image"
    )
    face: FacePrediction | None = Field(None, description="The face the answer is about (largest)")
    faces: list[FacePrediction] = Field(
        default_factory=list,
        description="Every classified face of the image, largest first (one unless all faces "
        "were asked for)",
    )
    query: str
    summary: str
    summarizer: str = Field(description="Which summarizer wrote the summary (method:model)")
    sentiment_method: str = Field(description="Which scorer gave the sentiments (method:model)")
    reviews: list[ReviewEvidence]
    themes: list[Theme] = Field(
        default_factory=list, description="Why, over all the emotion's reviews: largest first"
    )
    index_version: str
    models: dict[str, str] = Field(
        default_factory=dict, description="embedder, summarizer, sentiment, classifier ids"
    )
    source: Literal["computed", "precomputed", "cache"] = "computed"
    note: str | None = None

    def describe(self) -> str:
        """A readable multi-line rendering for terminals."""
        lines = []
        if self.face is not None:
            whole = ""
            if self.face.face_crop_input:
                whole = " - a face crop, classified whole"
            elif not self.face.face_detected:
                whole = " - no face found, whole image used"
            lines.append(f"Emotion: {self.face.emotion} ({self.face.confidence:.1%}){whole}")
        elif self.emotion:
            lines.append(f"Emotion: {self.emotion}")
        lines += [f"Question: {self.query}", f"Summary ({self.summarizer}): {self.summary}", ""]
        if self.themes:
            lines.append("Themes (share of the emotion's reviews, mean sentiment):")
            for theme in self.themes:
                mood = "" if theme.mean_sentiment is None else f", {theme.mean_sentiment:+.2f}"
                lines.append(
                    f"  {theme.share:4.0%}  {theme.label} [{theme.emotion}] "
                    f"({theme.reviews} reviews{mood}): {', '.join(theme.keywords[:3])}"
                )
                if theme.quotes:
                    lines.append(f'        "{theme.quotes[0].text}"')
            lines.append("")
        for n, review in enumerate(self.reviews, start=1):
            lines.append(
                f"{n}. [{review.emotion}] {review.sentiment.label} "
                f"({review.sentiment.score:.2f}), similarity {review.score:.3f}"
            )
            lines.append(f"   {review.text}")
        lines.append("")
        lines.append(f"Index {self.index_version}")
        lines += [f"{name}: {value}" for name, value in sorted(self.models.items())]
        return "\n".join(lines)
