"""Review sentiment: negative / neutral / positive with a score, batched.

Two methods behind one protocol: a transformer text classifier (by default
cardiffnlp/twitter-roberta-base-sentiment-latest through ``pipeline("text-classification")``)
and VADER, whose lexicon ships inside the ``vadersentiment`` wheel (offline).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from components.nlp.loading import (
    LoadedOnFirstUse,
    ModelLoadError,
    TextClassifier,
    available_locally,
    choose_method,
    model_id_for,
)
from components.settings import NlpSettings

log = logging.getLogger(__name__)

SentimentLabel = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: tuple[SentimentLabel, ...] = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Sentiment:
    """A label and the scorer's confidence in it (0-1)."""

    label: SentimentLabel
    score: float

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "score": self.score}


class SentimentScorer(Protocol):
    method: str
    model_id: str

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        """Score all ``texts`` (one forward pass per ``batch_size`` texts)."""
        ...


class VaderSentimentScorer:
    """VADER's compound score mapped onto the three labels.

    compound >= 0.05 is positive and <= -0.05 negative (VADER's own thresholds); the score
    is ``|compound|`` for positive/negative and ``1 - |compound|`` for neutral.
    """

    method = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()
        self.model_id = "vader:vadersentiment"

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        out = []
        for text in texts:
            compound = float(self._analyzer.polarity_scores(str(text))["compound"])
            if compound >= 0.05:
                out.append(Sentiment("positive", compound))
            elif compound <= -0.05:
                out.append(Sentiment("negative", -compound))
            else:
                out.append(Sentiment("neutral", 1.0 - abs(compound)))
        return out


class TransformerSentimentScorer:
    """A sequence classifier with negative/neutral/positive labels, scored in batches."""

    method = "roberta"

    def __init__(self, classifier: TextClassifier, model_id: str) -> None:
        self._classifier = classifier
        self.model_id = model_id
        self._labels = {name: _sentiment_label(name, i) for i, name in classifier.labels.items()}

    @classmethod
    def load(
        cls, source: str, batch_size: int = 32, device: str = "cpu", local_only: bool = False
    ) -> TransformerSentimentScorer:
        classifier = TextClassifier.load(source, device, local_only, batch_size)
        return cls(classifier, model_id_for(cls.method, source))

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        return [Sentiment(self._labels[name], p) for name, p in self._classifier.classify(texts)]


def _sentiment_label(name: str, index: int) -> SentimentLabel:
    key = name.lower()
    if key in SENTIMENT_LABELS:
        return key  # type: ignore[return-value]
    if key == f"label_{index}" and 0 <= index < 3:
        return SENTIMENT_LABELS[index]
    raise ModelLoadError(
        f"sentiment model label {name!r} is not one of {', '.join(SENTIMENT_LABELS)}"
    )


class DeferredTransformerSentimentScorer(LoadedOnFirstUse[TransformerSentimentScorer]):
    """The transformer scorer whose weights load on first use."""

    method = TransformerSentimentScorer.method

    def __init__(self, settings: NlpSettings, local_only: bool) -> None:
        source = settings.sentiment_model
        self.model_id = model_id_for(self.method, source)
        super().__init__(
            lambda: TransformerSentimentScorer.load(
                source, settings.batch_size, settings.device, local_only
            ),
            f"sentiment model {self.model_id}",
        )

    def score(self, texts: Sequence[str]) -> list[Sentiment]:
        return self.load().score(texts)


def load_sentiment_scorer(settings: NlpSettings, defer: bool = False) -> SentimentScorer:
    """The scorer ``settings.sentiment`` selects (``auto``: RoBERTa if local, else VADER).

    With ``defer``, RoBERTa's weights load on first use
    (:class:`DeferredTransformerSentimentScorer`); ``auto`` then decides by whether the
    model is on this machine, and a model that is there but cannot load fails on first use
    (never a silent switch to VADER after answers were keyed on RoBERTa)."""
    if defer and settings.sentiment == "roberta":
        return DeferredTransformerSentimentScorer(settings, local_only=False)
    if defer and settings.sentiment == "auto" and available_locally(settings.sentiment_model):
        return DeferredTransformerSentimentScorer(settings, local_only=True)
    return choose_method(
        settings.sentiment,
        "roberta",
        lambda local_only: TransformerSentimentScorer.load(
            settings.sentiment_model, settings.batch_size, settings.device, local_only
        ),
        VaderSentimentScorer,
        what=f"sentiment model {settings.sentiment_model!r} is not available locally",
        source=settings.sentiment_model,
    )
