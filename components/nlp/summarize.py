"""Summaries of the retrieved reviews: why customers felt an emotion.

- :class:`FlanT5Summarizer`: abstractive, google/flan-t5-base by default. transformers 5 has
  no summarization pipeline, so this calls the tokenizer and ``generate`` itself, with a
  bounded prompt (each review clipped to ``max_review_tokens``, the whole prompt to
  ``max_input_tokens``) and bounded output (``max_new_tokens``).
- :class:`ExtractiveSummarizer`: no extra weights. It embeds the reviews' sentences and
  picks the most central, mutually diverse ones (centroid relevance + MMR).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from components.index.embedder import Embedder
from components.index.search import mmr_select
from components.nlp.loading import (
    LoadedOnFirstUse,
    ModelLoadError,
    available_locally,
    choose_method,
    first_line,
    model_id_for,
)
from components.settings import NlpSettings
from components.text import normalize_text

log = logging.getLogger(__name__)

# Short on purpose: every prompt token costs encoder time and cross-attention in each of
# the generated tokens; the reviews are what the model should read.
PROMPT_TEMPLATE = (
    "Why do customers feel {emotion}? {question}\nReviews:\n{reviews}\nAnswer in one sentence:"
)
NO_REVIEWS = "No reviews were found for this question."


@dataclass(frozen=True)
class SummaryRequest:
    """What a summarizer gets: the emotion, the question, the reviews and the prompt."""

    emotion: str
    question: str
    reviews: Sequence[str]
    prompt: str


class Summarizer(Protocol):
    method: str
    model_id: str
    abstractive: bool  # writes new text (flan-t5) rather than picking sentences

    def clip(self, text: str) -> str:
        """A review as it may appear in the prompt (bounded length)."""
        ...

    def summarize(self, request: SummaryRequest) -> str: ...


def quantized(settings: NlpSettings) -> bool:
    """Dynamic int8 quantization applies (a CPU option)."""
    return settings.quantize_int8 and settings.device == "cpu"


class FlanT5Summarizer:
    method = "flan-t5"
    abstractive = True

    def __init__(
        self, model: object, tokenizer: object, model_id: str, settings: NlpSettings
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.settings = settings

    @classmethod
    def load(cls, source: str, settings: NlpSettings, local_only: bool = False) -> FlanT5Summarizer:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
            model = AutoModelForSeq2SeqLM.from_pretrained(source, local_files_only=local_only)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"cannot load summarizer {source!r}: {first_line(error)}"
            ) from error
        model.eval()
        if quantized(settings):
            # In place: the model is ours alone, and copying flan-t5-base's float weights
            # first took 0.8 s of the free-text worker's load (and 1 GB more at its peak).
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
            )
        else:
            model.to(settings.device)
        return cls(model, tokenizer, cls.model_id_for(source, settings), settings)

    @classmethod
    def model_id_for(cls, source: str, settings: NlpSettings) -> str:
        """How answers name this summarizer, known before any weights load."""
        return model_id_for(cls.method, source) + ("+int8" if quantized(settings) else "")

    def clip(self, text: str) -> str:
        ids = self.tokenizer(  # type: ignore[operator]
            text,
            add_special_tokens=False,
            truncation=True,
            max_length=self.settings.max_review_tokens,
        )["input_ids"]
        return self.tokenizer.decode(ids, skip_special_tokens=True)  # type: ignore[attr-defined]

    def summarize(self, request: SummaryRequest) -> str:
        import torch

        if not request.reviews:
            return NO_REVIEWS
        encoded = self.tokenizer(  # type: ignore[operator]
            request.prompt,
            return_tensors="pt",
            truncation=True,
            max_length=self.settings.max_input_tokens,
            return_token_type_ids=False,
        )
        device = next(self.model.parameters()).device  # type: ignore[attr-defined]
        with torch.inference_mode():
            output = self.model.generate(  # type: ignore[attr-defined]
                **{k: v.to(device) for k, v in encoded.items()},
                max_new_tokens=self.settings.max_new_tokens,
                min_new_tokens=self.settings.min_new_tokens or None,
                num_beams=self.settings.num_beams,
                do_sample=False,
            )
        text = self.tokenizer.decode(output[0], skip_special_tokens=True)  # type: ignore[attr-defined]
        return text.strip()


class DeferredFlanT5Summarizer(LoadedOnFirstUse[FlanT5Summarizer]):
    """flan-t5 whose weights load on first use."""

    method = FlanT5Summarizer.method
    abstractive = True

    def __init__(self, source: str, settings: NlpSettings, local_only: bool = False) -> None:
        self.model_id = FlanT5Summarizer.model_id_for(source, settings)
        super().__init__(
            lambda: FlanT5Summarizer.load(source, settings, local_only=local_only),
            f"summarizer {self.model_id}",
        )

    def clip(self, text: str) -> str:
        return self.load().clip(text)

    def summarize(self, request: SummaryRequest) -> str:
        return self.load().summarize(request)


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if len(s.strip()) > 1]


class ExtractiveSummarizer:
    """Central, diverse sentences of the reviews, chosen with the embedder."""

    method = "extractive"
    abstractive = False

    def __init__(self, embedder: Embedder, sentences: int = 2, diversity: float = 0.5) -> None:
        self.embedder = embedder
        self.sentences = sentences
        self.diversity = diversity
        self.model_id = model_id_for(self.method, embedder.model_id)

    def clip(self, text: str) -> str:
        return text

    def summarize(self, request: SummaryRequest) -> str:
        sentences = [s for review in request.reviews for s in split_sentences(review)]
        if not sentences:
            return NO_REVIEWS
        vectors = self.embedder.encode(sentences)
        centroid = vectors.mean(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        relevance = vectors @ centroid
        chosen = mmr_select(
            centroid,
            vectors,
            relevance,
            self.sentences,
            1.0 - self.diversity,
            keys=[normalize_text(s) for s in sentences],
        )
        # Keep the reviews' own order so the summary reads naturally.
        return " ".join(sentences[i] for i in sorted(chosen))


def load_summarizer(settings: NlpSettings, embedder: Embedder, defer: bool = False) -> Summarizer:
    """The summarizer ``settings.summarizer`` selects (``auto``: flan-t5 if local).

    With ``defer``, flan-t5's weights load on first use (:class:`DeferredFlanT5Summarizer`).
    """
    source = settings.summarizer_model
    if defer and settings.summarizer == "flan-t5":
        return DeferredFlanT5Summarizer(source, settings)
    if defer and settings.summarizer == "auto" and available_locally(source):
        return DeferredFlanT5Summarizer(source, settings, local_only=True)
    return choose_method(
        settings.summarizer,
        "flan-t5",
        lambda local_only: FlanT5Summarizer.load(settings.summarizer_model, settings, local_only),
        lambda: ExtractiveSummarizer(embedder, settings.summary_sentences),
        what=f"summarizer {settings.summarizer_model!r} is not available locally",
        source=settings.summarizer_model,
    )
