"""The review analysis chain with real loading paths: tiny random T5 / RoBERTa checkpoints
saved by the tests, and the real MiniLM for the offline methods."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from components.analysis.index_build import (
    build_index,
    compute_emotion_answers,
    read_emotion_answers,
    read_themes,
)
from components.analysis.pipeline import ReviewAnalysisPipeline
from components.emotions import EMOTIONS, emotion_query
from components.index.search import ReviewSearcher
from components.index.store import load_index
from components.nlp.sentiment import (
    TransformerSentimentScorer,
    VaderSentimentScorer,
    load_sentiment_scorer,
)
from components.nlp.summarize import (
    DeferredFlanT5Summarizer,
    ExtractiveSummarizer,
    FlanT5Summarizer,
    SummaryRequest,
    load_summarizer,
)
from components.nlp.tagging import (
    PrototypeEmotionTagger,
    TransformerEmotionTagger,
    load_emotion_tagger,
)
from components.settings import Settings
from components.vision.faces import ImageInputError
from components.vision.prediction import ClassifierSource

pytestmark = pytest.mark.integration


def _settings(workspace: Path, **nlp: object) -> Settings:
    return Settings.from_dict({"workspace": str(workspace), "nlp": nlp})


@pytest.fixture(scope="module")
def offline_workspace(tmp_path_factory, reviews_700, minilm) -> Settings:
    """A workspace whose index was built with the offline methods (extractive + VADER)."""
    settings = _settings(tmp_path_factory.mktemp("ws"), summarizer="extractive", sentiment="vader")
    build_index(
        reviews_700,
        "1" * 64,
        minilm,
        settings,
        sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm),
        progress=False,
    )
    return settings


@pytest.fixture(scope="module")
def pipeline(offline_workspace, minilm, random_classifier_weights) -> ReviewAnalysisPipeline:
    return ReviewAnalysisPipeline.load(
        offline_workspace,
        ClassifierSource(random_classifier_weights, version="3", sha256="ab" * 32),
        embedder=minilm,
    )


def _png(size: int = 64, value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (size, size), value).save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------- models


def test_flan_t5_loads_by_path_and_bounds_prompt_and_output(tiny_nlp_models, minilm) -> None:
    settings = _settings(
        Path("."), summarizer_model=str(tiny_nlp_models["t5"]), max_review_tokens=12,
        max_input_tokens=48, max_new_tokens=6,
    ).nlp  # fmt: skip
    auto = load_summarizer(settings, minilm)
    assert isinstance(auto, FlanT5Summarizer), "auto uses flan-t5 when its weights are local"
    assert auto.model_id == f"flan-t5:{tiny_nlp_models['t5']}"
    long_review = "The parcel arrived late and the box was crushed. " * 20
    clipped = auto.clip(long_review)
    assert len(auto.tokenizer(clipped, add_special_tokens=False)["input_ids"]) <= 12
    summary = auto.summarize(
        SummaryRequest("angry", "why?", [long_review], prompt="summarize: " + long_review * 5)
    )
    assert isinstance(summary, str)
    assert len(auto.tokenizer(summary, add_special_tokens=False)["input_ids"]) <= 6


# torch 2.14 deprecates its quantized tensors (README "Inference"); int8 still uses them.
@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")
def test_flan_t5_int8_quantizes_every_linear_layer_and_names_it(tiny_nlp_models, minilm) -> None:
    import torch

    t5 = str(tiny_nlp_models["t5"])
    settings = _settings(Path("."), summarizer_model=t5, quantize_int8=True, max_new_tokens=6)
    int8 = load_summarizer(settings.nlp, minilm)
    assert isinstance(int8, FlanT5Summarizer) and int8.model_id == f"flan-t5:{t5}+int8"
    modules = list(int8.model.modules())  # type: ignore[attr-defined]
    assert not [m for m in modules if type(m) is torch.nn.Linear], "a float Linear is left"
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in modules)
    request = SummaryRequest("sad", "why?", ["It broke."], prompt="summarize: It broke.")
    assert isinstance(int8.summarize(request), str)


def test_auto_without_local_weights_falls_back_to_offline_methods(tmp_path, minilm) -> None:
    missing = str(tmp_path / "no-such-model")
    settings = _settings(
        tmp_path, summarizer_model=missing, sentiment_model=missing, tagger_model=missing
    ).nlp
    assert isinstance(load_summarizer(settings, minilm), ExtractiveSummarizer)
    assert isinstance(load_sentiment_scorer(settings), VaderSentimentScorer)
    assert isinstance(load_emotion_tagger(settings, minilm), PrototypeEmotionTagger)


def test_batched_sentiment_equals_one_by_one(tiny_nlp_models, reviews_700) -> None:
    scorer = TransformerSentimentScorer.load(str(tiny_nlp_models["sentiment"]), batch_size=16)
    texts = reviews_700["text"].tolist()[::50]
    batched = scorer.score(texts)
    single = [scorer.score([t])[0] for t in texts]
    assert [s.label for s in batched] == [s.label for s in single]
    assert [s.score for s in batched] == pytest.approx([s.score for s in single], abs=1e-4)
    assert {s.label for s in batched} <= {"negative", "neutral", "positive"}


def test_transformer_tagger_maps_model_labels_to_fer_names(tiny_nlp_models, minilm) -> None:
    settings = _settings(Path("."), tagger_model=str(tiny_nlp_models["emotion"])).nlp
    tagger = load_emotion_tagger(settings, minilm)
    assert isinstance(tagger, TransformerEmotionTagger)
    tags = tagger.tag(["I love it", "It broke and I am furious", "meh"])
    assert all(t.emotion in EMOTIONS and 0 < t.confidence <= 1 for t in tags)


def test_prototype_tagger_recovers_most_labels(minilm, reviews_700) -> None:
    sample = reviews_700.sample(210, random_state=0)
    seeds_only = PrototypeEmotionTagger.fit(minilm)
    predicted = [t.emotion for t in seeds_only.tag(sample["text"].tolist())]
    seed_accuracy = (pd.Series(predicted, index=sample.index) == sample["emotion"]).mean()
    labeled = reviews_700.drop(sample.index)
    fitted = PrototypeEmotionTagger.fit(minilm, labeled)
    predicted = [t.emotion for t in fitted.tag(sample["text"].tolist())]
    fitted_accuracy = (pd.Series(predicted, index=sample.index) == sample["emotion"]).mean()
    assert seed_accuracy > 0.5, seed_accuracy  # chance is 1/7
    assert fitted_accuracy > 0.8, fitted_accuracy


# ----------------------------------------------------------------------------- chain


def test_answer_from_an_image_carries_every_field(pipeline) -> None:
    answer = pipeline.from_image(_png())
    assert answer.emotion in EMOTIONS
    assert answer.face is not None and answer.face.emotion == answer.emotion
    assert set(answer.emotion_probabilities) == set(EMOTIONS)
    assert sum(answer.emotion_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert answer.query == emotion_query(answer.emotion)
    assert answer.summary and answer.summarizer.startswith("extractive:")
    assert answer.sentiment_method == "vader:vadersentiment"
    assert len(answer.reviews) == 4
    for review in answer.reviews:
        assert review.review_id and review.text and review.emotion == answer.emotion
        assert 0 < review.score <= 1
        assert review.sentiment.label in ("negative", "neutral", "positive")
    assert answer.index_version == pipeline.index_version
    assert answer.models["classifier"] == "emotion-classifier/3"
    assert answer.models["classifier_sha256"] == "ab" * 32
    assert {"embedder", "summarizer", "sentiment"} <= set(answer.models)
    assert answer.source == "precomputed"
    assert answer.note  # a flat gray square has no face: the answer says so


def test_precomputed_answers_equal_a_fresh_computation(pipeline, minilm) -> None:
    assert pipeline.precomputed_emotions == sorted(EMOTIONS)
    searcher = ReviewSearcher(pipeline.searcher.stored, minilm, pipeline.settings.retrieval)
    _, themes = read_themes(pipeline.searcher.stored)
    fresh = compute_emotion_answers(
        searcher, ExtractiveSummarizer(minilm), VaderSentimentScorer(), themes
    )
    for emotion in EMOTIONS:
        stored = pipeline.for_emotion(emotion)
        assert stored.source == "precomputed"
        expected = fresh[emotion]
        assert stored.summary == expected.summary
        assert stored.themes == expected.themes and stored.themes
        assert [r.review_id for r in stored.reviews] == [r.review_id for r in expected.reviews]
        assert [r.sentiment for r in stored.reviews] == [r.sentiment for r in expected.reviews]
        assert [r.score for r in stored.reviews] == pytest.approx(
            [r.score for r in expected.reviews], abs=1e-5
        )


def test_answers_read_stored_sentiment_instead_of_recomputing(pipeline) -> None:
    class CountingScorer(VaderSentimentScorer):
        calls = 0

        def score(self, texts):
            type(self).calls += len(texts)
            return super().score(texts)

    scorer = CountingScorer()
    text_pipeline = ReviewAnalysisPipeline(
        pipeline.searcher, pipeline.summarizer, scorer, pipeline.settings
    )
    answer = text_pipeline.from_text("the package never arrived", k=6)
    assert len(answer.reviews) == 6
    assert CountingScorer.calls == 0


def test_the_chain_runs_the_summarizer_in_the_callers_thread(pipeline) -> None:
    """torch's OpenMP workers belong to the calling thread: generation on a thread that
    LangChain made for the call was about 50% slower (see ``chain.assign``)."""
    threads: list[int] = []

    class RecordingSummarizer:
        def __init__(self, inner) -> None:
            self.inner, self.method, self.model_id = inner, inner.method, inner.model_id
            self.abstractive = True  # a generator: what must stay on the caller's thread

        def clip(self, text: str) -> str:
            return self.inner.clip(text)

        def summarize(self, request: SummaryRequest) -> str:
            threads.append(threading.get_ident())
            return self.inner.summarize(request)

    text_pipeline = ReviewAnalysisPipeline(
        pipeline.searcher,
        RecordingSummarizer(pipeline.summarizer),
        pipeline.sentiment,
        pipeline.settings,
    )
    text_pipeline.from_text("why was the refund so slow, thread check")
    assert threads == [threading.get_ident()]


def test_free_text_answers_are_cached_until_the_index_changes(
    offline_workspace, minilm, reviews_700, random_classifier_weights
) -> None:
    local = ReviewAnalysisPipeline.load(
        offline_workspace, ClassifierSource(random_classifier_weights), embedder=minilm
    )
    first = local.from_text("Why was the delivery so slow?", emotion="Anger")
    assert first.source == "computed" and first.emotion == "angry"
    again = local.from_text("  why was the DELIVERY so slow? ", emotion="angry")
    assert again.source == "cache" and again.summary == first.summary
    # A new index version (different data) must never be answered from the old cache.
    build_index(
        reviews_700.iloc[::2],
        "2" * 64,
        minilm,
        offline_workspace,
        sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm),
        progress=False,
    )
    stored = load_index(offline_workspace.paths.index_root, expected_embedder=minilm.model_id)
    local.use_index(ReviewSearcher(stored, minilm, offline_workspace.retrieval))
    new_version = stored.version
    assert new_version != first.index_version
    after = local.from_text("Why was the delivery so slow?", emotion="angry")
    assert after.source == "computed" and after.index_version == new_version
    assert local.for_emotion("sad").index_version == new_version


def test_a_bad_image_in_a_batch_fails_alone(pipeline) -> None:
    results = pipeline.from_images([_png(), b"not an image", b"", _png(80, 30)])
    assert not isinstance(results[0], ImageInputError)
    assert isinstance(results[1], ImageInputError) and isinstance(results[2], ImageInputError)
    assert not isinstance(results[3], ImageInputError)
    with pytest.raises(ImageInputError):
        pipeline.from_image(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(ValueError, match="k must be"):
        pipeline.from_text("delivery", k=0)


def test_pipeline_with_flan_t5_and_roberta_checkpoints(
    tmp_path, tiny_nlp_models, reviews_700, minilm
) -> None:
    settings = _settings(
        tmp_path,
        summarizer="flan-t5",
        summarizer_model=str(tiny_nlp_models["t5"]),
        sentiment="roberta",
        sentiment_model=str(tiny_nlp_models["sentiment"]),
        max_new_tokens=8,
    )
    build_index(reviews_700.iloc[::5], "3" * 64, minilm, settings, progress=False)
    text_pipeline = ReviewAnalysisPipeline.load(settings, embedder=minilm)
    assert text_pipeline.precomputed_emotions == sorted(EMOTIONS)
    answer = text_pipeline.for_emotion("happy")
    assert answer.summarizer.startswith("flan-t5:") and answer.source == "precomputed"
    assert answer.sentiment_method.startswith("roberta:")
    assert answer.themes and answer.themes[0].mean_sentiment is not None  # roberta's scores
    # Deferred (the emotion_reviews worker): stored answers need no text model in memory.
    deferred = ReviewAnalysisPipeline.load(settings, defer_text_models=True)
    text_models = (deferred.searcher.embedder, deferred.summarizer, deferred.sentiment)
    assert isinstance(deferred.summarizer, DeferredFlanT5Summarizer)
    assert deferred.summarizer.model_id == text_pipeline.summarizer.model_id
    assert deferred.sentiment.model_id == text_pipeline.sentiment.model_id
    assert deferred.for_emotion("happy").summary == answer.summary
    assert not any(model.loaded for model in text_models)
    generated = deferred.from_text("why did the refund take so long?")
    assert deferred.searcher.embedder.loaded and deferred.summarizer.loaded
    assert not deferred.sentiment.loaded, "the index stores every review's sentiment"
    assert generated.summarizer == answer.summarizer
    # Another summarizer setting: stored answers no longer apply and are recomputed; a
    # deferring pipeline then loads its models at once (a model that cannot load fails
    # the start, not a request).
    other = settings.model_copy(deep=True)
    other.nlp.summarizer = "extractive"
    switched = ReviewAnalysisPipeline.load(other, embedder=minilm)
    assert switched.precomputed_emotions == []
    assert switched.for_emotion("happy").summarizer.startswith("extractive:")
    eager = ReviewAnalysisPipeline.load(other, defer_text_models=True)
    assert eager.precomputed_emotions == []
    assert eager.searcher.embedder.loaded and eager.sentiment.loaded


def test_stored_sentiments_of_another_scorer_are_not_passed_off_as_this_ones(
    pipeline, tiny_nlp_models
) -> None:
    roberta = TransformerSentimentScorer.load(str(tiny_nlp_models["sentiment"]))
    other = ReviewAnalysisPipeline(
        pipeline.searcher, pipeline.summarizer, roberta, pipeline.settings
    )
    answer = other.from_text("the package never arrived")
    assert answer.sentiment_method.startswith("roberta:")
    fresh = roberta.score([r.text for r in answer.reviews])
    assert [r.sentiment.label for r in answer.reviews] == [s.label for s in fresh]


def test_an_ivfpq_build_answers_like_the_exact_index(tmp_path, minilm, reviews_700) -> None:
    """The whole build (sentiment, themes, the 7 answers, publish) with index.kind ivfpq:
    the version stores its full vectors, and each emotion's precomputed reviews are the
    exact (flat) index's, with the same scores (the candidates are re-scored exactly). Every
    list is scanned (1,050 reviews train 26 lists), so nothing but the build can differ;
    the recall of a partial scan is the unit tests' and bench_ivfpq's."""
    import pandas as pd

    from components.index.build import embed_texts
    from components.index.kinds import VECTORS_FILE
    from components.reviews.generate import generate_reviews

    # The session's 700 reviews (their vectors already encoded) and 350 of another seed:
    # ivfpq needs 1,000 to train its codebooks.
    more = generate_reviews(per_emotion=50, seed=21)
    reviews = pd.concat([reviews_700, more], ignore_index=True)
    vectors = embed_texts(minilm, reviews["text"].astype(str).tolist(), progress=False)
    answers = {}
    for kind in ("flat", "ivfpq"):
        index = {"kind": kind, "ivf_nprobe": 64}
        settings = Settings.from_dict({"workspace": str(tmp_path / kind), "index": index})
        build_index(
            reviews, "2" * 64, minilm, settings, vectors=vectors, sentiment=VaderSentimentScorer(),
            summarizer=ExtractiveSummarizer(minilm), progress=False,
        )  # fmt: skip
        stored = load_index(settings.paths.index_root, expected_embedder=minilm.model_id)
        assert stored.manifest.kind == kind
        assert (stored.directory / VECTORS_FILE).is_file() == (kind == "ivfpq")
        answers[kind] = read_emotion_answers(stored)[1]
        assert read_themes(stored)[1][EMOTIONS[0]].themes
    for emotion in EMOTIONS:
        exact, compressed = answers["flat"][emotion], answers["ivfpq"][emotion]
        assert [r.review_id for r in compressed.reviews] == [r.review_id for r in exact.reviews]
        assert [r.score for r in compressed.reviews] == pytest.approx(
            [r.score for r in exact.reviews], abs=1e-5
        )


def test_a_deferred_embedder_that_does_not_fit_its_index_fails_on_first_use() -> None:
    from components.index.embedder import DeferredEmbedder, EmbedderLoadError
    from components.settings import EmbedderSettings

    embedder = DeferredEmbedder(EmbedderSettings(), dimension=32)
    assert embedder.model_id == EmbedderSettings().model and not embedder.loaded
    with pytest.raises(EmbedderLoadError, match="384-d vectors, but the index holds 32-d"):
        embedder.encode(["the parcel was late"])
    assert DeferredEmbedder(EmbedderSettings(), 384).encode(["late"]).shape == (1, 384)
