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


class Answer(BaseModel):
    """Why customers felt an emotion: summary, evidence, and every version involved."""

    emotion: str | None = Field(description="The emotion the answer is about (None: any)")
    emotion_probabilities: dict[str, float] | None = Field(
        None, description="All 7 probabilities when the emotion came from an image"
    )
    face: FacePrediction | None = None
    query: str
    summary: str
    summarizer: str = Field(description="Which summarizer wrote the summary (method:model)")
    sentiment_method: str = Field(description="Which scorer gave the sentiments (method:model)")
    reviews: list[ReviewEvidence]
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
            lines.append(
                f"Emotion: {self.face.emotion} ({self.face.confidence:.1%})"
                + ("" if self.face.face_detected else " - no face found, whole image used")
            )
        elif self.emotion:
            lines.append(f"Emotion: {self.emotion}")
        lines += [f"Question: {self.query}", f"Summary ({self.summarizer}): {self.summary}", ""]
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
