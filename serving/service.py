"""What each served endpoint does with a batch of request bodies: HTTP-free.

The TorchServe handler hands every batch to :meth:`EndpointService.handle` and sends back
what it returns. A user's mistake (any :class:`~components.errors.EmoreviewError`: a bad
request, a bad image, an unknown emotion) becomes a 4xx with a JSON ``{"error", "code"}``
body for that request only; the others of the batch are answered normally and the worker
lives on. Anything else is a bug: a 500 with a generic message, its traceback in the model
log.

Endpoints:

- ``emotion``: image -> faces with emotion, 7 probabilities and box (one forward/batch)
- ``emotion_reviews``: image -> the whole answer (one forward/batch, stored answers)

Both image endpoints take the header ``X-Emoreview-Faces: all`` (every face, at most
``vision.max_faces``) or ``largest``; without it, ``vision.face_detection`` decides.
- ``reviews``: ``{"query", "emotion"?, "k"?}`` -> summary + reviews with sentiment
- ``sentiment``: text, or a JSON list of texts -> label and score each (one pass/batch)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from components.errors import EmoreviewError, is_user_error
from components.hashing import file_sha256
from components.settings import Settings, VisionSettings
from components.vision.faces import ImageInputError
from components.vision.prediction import ClassifierSource

if TYPE_CHECKING:  # loaded only by the endpoints that use them (worker memory, cold start)
    from components.analysis.pipeline import ReviewAnalysisPipeline
    from components.nlp.sentiment import SentimentScorer
    from components.vision.predict import EmotionPredictor

log = logging.getLogger(__name__)

Endpoint = Literal["emotion", "emotion_reviews", "reviews", "sentiment"]
ENDPOINTS: tuple[Endpoint, ...] = ("emotion", "emotion_reviews", "reviews", "sentiment")
IMAGE_ENDPOINTS = ("emotion", "emotion_reviews")
MAX_TEXTS = 256
MAX_TEXT_CHARS = 10_000
CLASSIFIER_FILE = "classifier.json"
INTERNAL_ERROR = "internal error while answering: the server's model log has the details"


class RequestError(EmoreviewError, ValueError):
    """A bad request: answered with ``status`` and a JSON error message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.http_status = status


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]


def error_response(error: EmoreviewError) -> Response:
    """A user's mistake, one of emoreview's error family: its 4xx and a one-line message."""
    message = f"{error} ({error.reason})" if isinstance(error, ImageInputError) else str(error)
    return Response(error.http_status, {"error": message, "code": error.http_status})


def read_classifier(bundle: Path) -> tuple[ClassifierSource, dict[str, Any]]:
    """The classifier an archive was built for, and its ``classifier.json``."""
    info = json.loads((bundle / CLASSIFIER_FILE).read_text(encoding="utf-8"))
    source = ClassifierSource(
        weights=bundle / info["weights"],
        name=info["name"],
        version=str(info["version"]),
        sha256=info["sha256"],
    )
    return source, info


def require_sha256(path: Path, expected: str, recorded_by: str, use: str = "serve") -> None:
    """Raise unless ``path`` has the sha256 that ``recorded_by`` recorded."""
    digest = file_sha256(path)
    if digest != expected:
        raise RuntimeError(
            f"{path} has sha256 {digest}, but {recorded_by} recorded {expected}: "
            f"refusing to {use} it"
        )


def load_predictor(
    bundle: Path, source: ClassifierSource, info: dict[str, Any], vision: VisionSettings
) -> EmotionPredictor:
    """An image archive's classifier, ready to answer. Its weights are first proven to be
    the registered version's (registry sha256), its frozen graph to be the one packaged
    from them; the graph then runs without the network being built (no torchvision
    import). Without a graph for ``vision.inference``, or with one that does not load or
    answer as its module did, the weights are loaded."""
    from components.vision.inference import SavedGraph, graph_modes, load_frozen_graph
    from components.vision.predict import EmotionPredictor

    require_sha256(source.weights, str(source.sha256), f"registry version {source.version}")
    record = info.get("frozen_graph")
    if record and record["mode"] in graph_modes(vision.inference):
        graph = bundle / record["file"]
        require_sha256(graph, record["sha256"], f"the archive of version {source.version}")
        saved = SavedGraph(record["mode"], record["architecture"], record["probe_probabilities"])
        frozen = load_frozen_graph(graph, saved)
        if frozen is not None:
            return EmotionPredictor.from_model(frozen, vision)
        log.warning("%s: loading the registered weights instead", graph)
    return EmotionPredictor.from_weights(source.weights, vision)


class EndpointService:
    def __init__(
        self,
        endpoint: Endpoint,
        settings: Settings,
        versions: dict[str, str],
        pipeline: ReviewAnalysisPipeline | None = None,
        predictor: EmotionPredictor | None = None,
        sentiment: SentimentScorer | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.versions = versions
        self.pipeline = pipeline
        self.predictor = predictor
        self.sentiment = sentiment

    @classmethod
    def load(cls, endpoint: str, bundle: Path, settings: Settings) -> EndpointService:
        """Load what ``endpoint`` needs from an unpacked archive (``bundle``)."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}: expected one of {ENDPOINTS}")
        classifier, info = read_classifier(bundle)
        versions = {
            "model_name": classifier.name,
            "model_version": classifier.version or "",
            "model_sha256": classifier.sha256 or "",
        }
        if endpoint == "emotion":
            predictor = load_predictor(bundle, classifier, info, settings.vision)
            return cls("emotion", settings, versions, predictor=predictor)
        if endpoint == "sentiment":
            from components.nlp.sentiment import load_sentiment_scorer

            scorer = load_sentiment_scorer(settings.nlp)
            return cls(
                "sentiment", settings, {**versions, "sentiment": scorer.model_id}, sentiment=scorer
            )
        from components.analysis.pipeline import ReviewAnalysisPipeline

        photos = endpoint == "emotion_reviews"  # answers from the precomputed ones
        pipeline = ReviewAnalysisPipeline.load(
            settings,
            classifier if photos else None,
            defer_text_models=photos,
            predictor=load_predictor(bundle, classifier, info, settings.vision) if photos else None,
        )
        versions.update(
            index_version=pipeline.index_version,
            summarizer=pipeline.summarizer.model_id,
            sentiment=pipeline.sentiment.model_id,
        )
        return cls(endpoint, settings, versions, pipeline=pipeline)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ batches

    def handle(self, bodies: Sequence[Any], faces: Sequence[Any] | None = None) -> list[Response]:
        """Answer a batch; ``faces`` holds each request's ``X-Emoreview-Faces`` header."""
        if self.endpoint in IMAGE_ENDPOINTS:
            return self._images(bodies, faces or [None] * len(bodies))
        if self.endpoint == "sentiment":
            return self._sentiment(bodies)
        return [self._guard(self._reviews, body) for body in bodies]

    def _guard(self, function: Any, body: Any) -> Response:
        try:
            return Response(200, function(body))
        except Exception as error:
            if is_user_error(error):
                return error_response(error)  # type: ignore[arg-type]
            log.exception("endpoint %s failed on a request", self.endpoint)
            return Response(500, {"error": INTERNAL_ERROR, "code": 500})

    def _images(self, bodies: Sequence[Any], faces: Sequence[Any]) -> list[Response]:
        images: list[bytes | None] = []
        every_face: list[bool | None] = []
        responses: list[Response | None] = []
        for body, face_mode in zip(bodies, faces, strict=True):
            try:
                every_face.append(all_faces_flag(face_mode))
                images.append(as_bytes(body, "an image"))
                responses.append(None)
            except RequestError as error:
                images.append(None)
                responses.append(error_response(error))
        good = [data for data in images if data is not None]
        modes = [mode for data, mode in zip(images, every_face, strict=False) if data is not None]
        results = iter(self._answer_images(good, modes) if good else [])
        out = []
        for response in responses:
            if response is not None:
                out.append(response)
                continue
            result = next(results)
            if isinstance(result, ImageInputError):
                out.append(error_response(result))
            else:
                out.append(Response(200, {**result, "versions": self.versions}))
        return out

    def _answer_images(self, images: list[bytes], every_face: list[bool | None]) -> list[Any]:
        if self.endpoint == "emotion":
            assert self.predictor is not None
            return [
                p if isinstance(p, ImageInputError) else p.as_dict()
                for p in self.predictor.predict_each(images, every_face)
            ]
        assert self.pipeline is not None
        return [
            r if isinstance(r, ImageInputError) else r.model_dump(mode="json")
            for r in self.pipeline.from_images(images, every_face)
        ]

    def _reviews(self, body: Any) -> dict[str, Any]:
        assert self.pipeline is not None
        request = as_json(body)
        if not isinstance(request, dict):
            raise RequestError('expected a JSON object like {"query": "...", "emotion": "angry"}')
        unknown = set(request) - {"query", "emotion", "k"}
        if unknown:
            raise RequestError(f"unknown fields: {', '.join(sorted(unknown))}")
        query = request.get("query")
        if not isinstance(query, str) or not query.strip():
            raise RequestError('"query" must be a non-empty string')
        if len(query) > MAX_TEXT_CHARS:
            raise RequestError(f'"query" is longer than {MAX_TEXT_CHARS} characters')
        emotion = request.get("emotion")
        if emotion is not None and not isinstance(emotion, str):
            raise RequestError('"emotion" must be a string')
        k = request.get("k")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 100):
            raise RequestError('"k" must be an integer between 1 and 100')
        answer = self.pipeline.from_text(query, emotion=emotion or None, k=k)
        return {**answer.model_dump(mode="json"), "versions": self.versions}

    def _sentiment(self, bodies: Sequence[Any]) -> list[Response]:
        assert self.sentiment is not None
        parsed: list[list[str] | RequestError] = []
        for body in bodies:
            try:
                parsed.append(sentiment_texts(body))
            except RequestError as error:
                parsed.append(error)
        flat = [t for p in parsed if not isinstance(p, RequestError) for t in p]
        scores = iter(self.sentiment.score(flat) if flat else [])
        out = []
        for item in parsed:
            if isinstance(item, RequestError):
                out.append(error_response(item))
                continue
            results = [{"text": t, **next(scores).as_dict()} for t in item]
            out.append(Response(200, {"results": results, "versions": self.versions}))
        return out


def all_faces_flag(value: Any) -> bool | None:
    """The ``X-Emoreview-Faces`` header: ``all`` -> True, ``largest`` -> False, absent -> None."""
    if value is None:
        return None
    text = (
        value.decode("utf-8", errors="replace")
        if isinstance(value, (bytes, bytearray))
        else str(value)
    )
    choice = text.strip().lower()
    if choice not in ("all", "largest"):
        raise RequestError(f"X-Emoreview-Faces must be 'all' or 'largest', got {text[:40]!r}")
    return choice == "all"


def as_bytes(body: Any, what: str) -> bytes:
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    elif isinstance(body, str):
        data = body.encode("utf-8")
    elif body is None:
        data = b""
    else:
        raise RequestError(f"expected {what} as the request body, got JSON")
    if not data:
        raise RequestError(
            f"empty request body: send {what} as the raw body, e.g. curl --data-binary @FILE "
            "-H 'Content-Type: application/octet-stream' (a form-encoded body arrives empty)"
        )
    return data


def as_json(body: Any) -> Any:
    """TorchServe already parses application/json bodies; anything else arrives as bytes."""
    if isinstance(body, (dict, list)):
        return body
    data = as_bytes(body, "a JSON body")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RequestError(f"invalid JSON: {error}") from error


def sentiment_texts(body: Any) -> list[str]:
    """A plain-text body is one text; a JSON list (or {"texts": [...]}) is many."""
    if isinstance(body, (bytes, bytearray)) and body[:1] not in (b"[", b"{"):
        texts: Any = [as_bytes(body, "text").decode("utf-8", errors="replace")]
    else:
        parsed = as_json(body)
        texts = parsed.get("texts") if isinstance(parsed, dict) else parsed
        if isinstance(texts, str):
            texts = [texts]
    if not isinstance(texts, list) or not texts:
        raise RequestError('expected text, a JSON list of texts, or {"texts": [...]}')
    if len(texts) > MAX_TEXTS:
        raise RequestError(f"at most {MAX_TEXTS} texts per request")
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise RequestError("every text must be a non-empty string")
    if any(len(t) > MAX_TEXT_CHARS for t in texts):
        raise RequestError(f"texts must be at most {MAX_TEXT_CHARS} characters")
    return texts
