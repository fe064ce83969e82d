"""``ReviewAnalysisPipeline``: one object from a face image (or a question) to an answer.

It loads everything once (classifier, face detector, embedder, index, summarizer,
sentiment scorer, precomputed emotion answers) and is cheap per call:

- ``from_image(bytes)``: faces -> emotion -> the emotion's answer. The answer for an
  emotion depends only on the emotion, the index version and the model ids, so it is
  served from the answers precomputed at index build time (or computed once and cached
  when the configuration differs from the build's): the image path costs about one
  classifier forward.
- ``from_text(query, emotion=None)``: the LCEL chain, with an LRU cache keyed on the
  normalised query plus every version and setting involved.

Everything that belongs to one index version (searcher, chain, model ids, the answers'
key and the precomputed answers) is one immutable :class:`IndexState`, swapped in one
assignment: a call that runs during :meth:`ReviewAnalysisPipeline.use_index` works on the
old state or the new one, never on a mix, so no answer is cached under the wrong version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from components.analysis.answer import Answer, Theme
from components.analysis.chain import build_answer_chain, chain_models
from components.analysis.index_build import (
    answers_key,
    read_emotion_answers,
    read_themes,
    themes_key,
)
from components.analysis.theme_summary import matching_themes
from components.analysis.themes import EmotionThemes
from components.emotions import EMOTIONS, emotion_query, normalize_emotion
from components.hashing import json_sha256
from components.index.embedder import DeferredEmbedder, Embedder, SentenceTransformerEmbedder
from components.index.search import ReviewSearcher
from components.index.store import load_index
from components.nlp.loading import LoadedOnFirstUse
from components.nlp.sentiment import SentimentScorer, load_sentiment_scorer
from components.nlp.summarize import Summarizer, load_summarizer
from components.settings import Settings
from components.text import normalize_text
from components.vision.faces import ImageInputError
from components.vision.prediction import ClassifierSource, ImagePrediction

if TYPE_CHECKING:  # torch and torchvision load only where images are classified
    from components.vision.predict import AllFaces, EmotionPredictor

log = logging.getLogger(__name__)


class AnswerCache:
    """Free-text answers under (question, emotion, k, answers digest): a thread-safe
    ``cachetools`` LRU that counts hits and misses; size 0 disables it."""

    def __init__(self, size: int) -> None:
        self._lru: LRUCache[tuple[Any, ...], Answer] | None = (
            LRUCache(maxsize=size) if size > 0 else None
        )
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Answer | None:
        with self._lock:
            answer = None if self._lru is None else self._lru.get(key)
            if answer is None:
                self.misses += 1
            else:
                self.hits += 1
            return answer

    def put(self, key: tuple[Any, ...], answer: Answer) -> None:
        if self._lru is not None:
            with self._lock:
                self._lru[key] = answer


@dataclass(frozen=True)
class IndexState:
    """What answering from one index version needs; replaced whole, never edited."""

    searcher: ReviewSearcher
    chain: Any
    models: dict[str, str]
    answers_digest: str  # sha256 of the answers key: index version, models, settings
    precomputed: dict[str, Answer]
    themes: dict[str, EmotionThemes]

    @property
    def index_version(self) -> str:
        return self.searcher.index_version


class ReviewAnalysisPipeline:
    def __init__(
        self,
        searcher: ReviewSearcher,
        summarizer: Summarizer,
        sentiment: SentimentScorer,
        settings: Settings,
        predictor: EmotionPredictor | None = None,
        classifier: ClassifierSource | None = None,
    ) -> None:
        self.summarizer = summarizer
        self.sentiment = sentiment
        self.settings = settings
        self.predictor = predictor
        self.classifier = classifier
        self._classifier_ids = classifier.describe() if classifier else {}
        self.cache = AnswerCache(settings.nlp.answer_cache_size)
        self.use_index(searcher)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls,
        settings: Settings,
        classifier: ClassifierSource | None = None,
        index_version: str | None = None,
        embedder: Embedder | None = None,
        defer_text_models: bool = False,
        predictor: EmotionPredictor | None = None,
    ) -> ReviewAnalysisPipeline:
        """Load every model named by ``settings`` and the index version (default: current).

        ``defer_text_models``: the embedder and the summarizer load only when an answer
        has to be computed (a question, or an emotion without a precomputed answer), so a
        process that answers photos from the precomputed emotion answers starts without
        them (:class:`~components.nlp.loading.LoadedOnFirstUse`). The sentiment model always
        loads only when reviews have to be scored: the index stores each review's
        sentiment from the scorer it was built with. ``predictor`` is ``classifier``'s
        model already loaded (a serving archive's frozen graph); by default its weights
        are loaded.
        """
        if embedder is None and defer_text_models:
            stored = load_index(
                settings.paths.index_root,
                version=index_version,
                expected_embedder=settings.embedder.model,
            )
            embedder = DeferredEmbedder(settings.embedder, stored.manifest.dimension)
        else:
            embedder = embedder or SentenceTransformerEmbedder.from_settings(settings.embedder)
            stored = load_index(
                settings.paths.index_root,
                version=index_version,
                expected_embedder=embedder.model_id,
                expected_dimension=embedder.dimension,
            )
        if predictor is None and classifier is not None:
            from components.vision.predict import EmotionPredictor

            predictor = EmotionPredictor.from_weights(classifier.weights, settings.vision)
        return cls(
            ReviewSearcher(stored, embedder, settings.retrieval),
            load_summarizer(settings.nlp, embedder, defer=defer_text_models),
            load_sentiment_scorer(settings.nlp, defer=True),
            settings,
            predictor,
            classifier,
        )

    def use_index(self, searcher: ReviewSearcher) -> None:
        """Answer from another index version; answers of the old one are never served."""
        chain_ids = chain_models(searcher, self.summarizer, self.sentiment)
        models = {**chain_ids, **self._classifier_ids}
        key, answers = read_emotion_answers(searcher.stored)
        expected = answers_key(searcher.index_version, chain_ids, self.settings)
        if answers and key != expected:
            log.info(
                "index %s holds emotion answers made with other settings or models; "
                "computing them on demand",
                searcher.index_version,
            )
            answers = {}
        stored_themes_key, themes = read_themes(searcher.stored)
        if themes and stored_themes_key != themes_key(searcher, self.sentiment, self.settings):
            log.info("index %s holds themes made with other settings", searcher.index_version)
            themes = {}
        if set(answers) != set(EMOTIONS):
            # Answers will be computed (and, as the answers' key names the sentiment model,
            # reviews scored): a model that cannot load fails now, not mid-request. Complete
            # answers were made by these models, and the index holds their sentiments.
            for model in (searcher.embedder, self.summarizer, self.sentiment):
                if isinstance(model, LoadedOnFirstUse):
                    model.load()
        self._state = IndexState(
            searcher=searcher,
            chain=build_answer_chain(
                searcher, self.summarizer, self.sentiment, self.settings.themes.per_answer
            ),
            models=models,
            answers_digest=json_sha256(expected),
            precomputed=answers,
            themes=themes,
        )

    @property
    def searcher(self) -> ReviewSearcher:
        return self._state.searcher

    @property
    def index_version(self) -> str:
        return self._state.index_version

    @property
    def precomputed_emotions(self) -> list[str]:
        return sorted(self._state.precomputed)

    # ------------------------------------------------------------------ answers

    def for_emotion(self, emotion: str) -> Answer:
        """Why customers felt ``emotion``: precomputed, cached, or computed once."""
        name = normalize_emotion(emotion)
        state = self._state
        stored = state.precomputed.get(name)
        if stored is not None:
            return stored.model_copy(update={"source": "precomputed", "models": state.models})
        found = state.themes.get(name)
        return self._answer(state, emotion_query(name), name, None, found.themes if found else [])

    def from_text(self, query: str, emotion: str | None = None, k: int | None = None) -> Answer:
        if not query or not query.strip():
            raise ValueError("query must not be empty")
        name = normalize_emotion(emotion) if emotion else None
        if k is not None and not 1 <= k <= 100:
            raise ValueError(f"k must be between 1 and 100, got {k}")
        state = self._state
        themes: list[Theme] = []
        if state.themes:
            vector = state.searcher.embedder.encode([query])[0]
            themes = matching_themes(
                vector, query, state.themes, name, self.settings.themes.per_answer
            )
        return self._answer(state, query, name, k, themes)

    def _answer(
        self,
        state: IndexState,
        query: str,
        emotion: str | None,
        k: int | None,
        themes: list[Theme],
    ) -> Answer:
        """The chain's answer from ``state`` (one index version throughout), LRU-cached
        under that version's digest."""
        key = (
            normalize_text(query),
            emotion,
            k or self.settings.retrieval.k,
            state.answers_digest,
        )
        cached = self.cache.get(key)
        if cached is not None:
            return cached.model_copy(update={"source": "cache"})
        answer = state.chain.invoke({"query": query, "emotion": emotion, "k": k, "themes": themes})
        answer = answer.model_copy(update={"models": state.models})
        self.cache.put(key, answer)
        return answer

    def from_image(self, data: bytes) -> Answer:
        result = self.from_images([data])[0]
        if isinstance(result, ImageInputError):
            raise result
        return result

    def from_images(
        self, images: Sequence[bytes], all_faces: AllFaces = None
    ) -> list[Answer | ImageInputError]:
        """Answers for many images with one classifier forward; bad images are returned
        as their :class:`ImageInputError` in place, so one cannot fail the others."""
        predictions = self.predict_emotions(images, all_faces)
        out: list[Answer | ImageInputError] = []
        for prediction in predictions:
            if isinstance(prediction, ImageInputError):
                out.append(prediction)
                continue
            face = prediction.primary
            answer = self.for_emotion(face.emotion)
            out.append(
                answer.model_copy(
                    update={
                        "emotion": face.emotion,
                        "emotion_probabilities": face.probabilities,
                        "face": face,
                        "faces": list(prediction.faces),
                        "note": prediction.note,
                    }
                )
            )
        return out

    def predict_emotions(
        self, images: Sequence[bytes], all_faces: AllFaces = None
    ) -> list[ImagePrediction | ImageInputError]:
        """Classify the faces of every decodable image in one forward pass."""
        if self.predictor is None:
            raise RuntimeError("this pipeline was loaded without an emotion classifier")
        return self.predictor.predict_each(images, all_faces)
