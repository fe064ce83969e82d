"""The LangChain LCEL chain: retriever -> prompt -> summarizer -> typed answer.

Input: ``{"query": str, "emotion": str | None, "k": int | None, "themes": list[Theme]}``
(``themes`` optional). With themes, the summary says the why from them: composed from their
shares and quotes offline, or a flan-t5 prompt built from them instead of the raw reviews.
An emotion without reviews gets an answer that says so. Every review's sentiment comes from
the index metadata (computed once at build time); only reviews of an index built without
sentiments are scored here, all in one batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from langchain_core.documents import Document
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from components.analysis.answer import Answer, ReviewEvidence, SentimentOut
from components.analysis.theme_summary import summarize_themes, themes_prompt
from components.emotions import normalize_emotion
from components.index.retriever import ReviewRetriever
from components.index.search import ReviewSearcher
from components.nlp.sentiment import Sentiment, SentimentScorer
from components.nlp.summarize import PROMPT_TEMPLATE, Summarizer, SummaryRequest

SENTIMENT_LABEL_COLUMN = "sentiment_label"
SENTIMENT_SCORE_COLUMN = "sentiment_score"


def chain_models(searcher: ReviewSearcher, summarizer: Summarizer, sentiment: SentimentScorer):
    return {
        "embedder": searcher.embedder.model_id,
        "summarizer": summarizer.model_id,
        "sentiment": sentiment.model_id,
    }


def build_answer_chain(
    searcher: ReviewSearcher,
    summarizer: Summarizer,
    sentiment: SentimentScorer,
    summary_reasons: int = 3,
) -> Runnable[dict[str, Any], Answer]:
    prompt = PromptTemplate.from_template(PROMPT_TEMPLATE)
    models = chain_models(searcher, summarizer, sentiment)
    # Stored sentiments are only this scorer's when the index was built with it.
    use_stored = searcher.stored.manifest.extras.get("sentiment") == sentiment.model_id

    def retrieve(inputs: dict[str, Any]) -> list[Document]:
        retriever = ReviewRetriever(
            searcher=searcher,
            emotion=inputs.get("emotion"),
            k=inputs.get("k") or searcher.settings.k,
        )
        return retriever.invoke(inputs["query"])

    def prompt_emotion(inputs: dict[str, Any]) -> str:
        if inputs.get("emotion"):
            return normalize_emotion(inputs["emotion"])
        emotions = Counter(d.metadata.get("emotion") for d in inputs["documents"])
        emotions.pop(None, None)
        return emotions.most_common(1)[0][0] if emotions else "the way they do"

    def render_prompt(inputs: dict[str, Any]) -> str:
        reviews = "\n".join(f"- {summarizer.clip(d.page_content)}" for d in inputs["documents"])
        return prompt.format(
            emotion=inputs["prompt_emotion"], reviews=reviews, question=inputs["query"]
        )

    def summarize(inputs: dict[str, Any]) -> str:
        emotion = inputs["prompt_emotion"]
        if not inputs["documents"] and inputs.get("emotion"):
            return f"No reviews from customers who felt {emotion} yet."
        # The summary speaks of one emotion's reviews: a question without an emotion may
        # match themes of several; the summary states those of the emotion it is about.
        themes = [t for t in inputs.get("themes") or [] if t.emotion == emotion]
        if themes and not summarizer.abstractive:
            return summarize_themes(emotion, themes, summary_reasons)
        if themes:
            return summarizer.summarize(
                SummaryRequest(
                    emotion=emotion,
                    question=inputs["query"],
                    reviews=[q.text for theme in themes for q in theme.quotes[:1]],
                    prompt=themes_prompt(emotion, inputs["query"], themes[:summary_reasons]),
                )
            )
        request = SummaryRequest(
            emotion=inputs["prompt_emotion"],
            question=inputs["query"],
            reviews=[d.page_content for d in inputs["documents"]],
            prompt=inputs["prompt"],
        )
        return summarizer.summarize(request)

    def sentiments(inputs: dict[str, Any]) -> list[Sentiment]:
        return stored_sentiments(inputs["documents"], sentiment, use_stored)

    def to_answer(inputs: dict[str, Any]) -> Answer:
        evidence = [
            _evidence(document, scored)
            for document, scored in zip(inputs["documents"], inputs["sentiments"], strict=True)
        ]
        return Answer(
            emotion=normalize_emotion(inputs["emotion"]) if inputs.get("emotion") else None,
            query=inputs["query"],
            summary=inputs["summary"],
            summarizer=summarizer.model_id,
            sentiment_method=sentiment.model_id,
            reviews=evidence,
            themes=list(inputs.get("themes") or []),
            index_version=searcher.index_version,
            models=dict(models),
        )

    return (
        assign("documents", retrieve)
        | assign("prompt_emotion", prompt_emotion)
        | assign("sentiments", sentiments)
        | assign("prompt", render_prompt)
        | assign("summary", summarize)
        | RunnableLambda(to_answer)
    ).with_config(run_name="review_answer")


def assign(key: str, step: Callable[[dict[str, Any]], Any]) -> Runnable:
    """``RunnablePassthrough.assign(key=step)`` run in the caller's thread.

    ``assign`` goes through ``RunnableParallel``, which submits every step to a new thread
    pool on each call; torch's OpenMP workers belong to the calling thread, so T5 generation
    on a fresh thread is about 50% slower on 2 cores (measured: 600 -> 950 ms). Steps here
    are sequential anyway.
    """

    def merged(inputs: dict[str, Any]) -> dict[str, Any]:
        return {**inputs, key: step(inputs)}

    return RunnableLambda(merged, name=key)


def stored_sentiments(
    documents: list[Document], scorer: SentimentScorer, use_stored: bool = True
) -> list[Sentiment]:
    """Sentiments stored with the index (when ``use_stored``); the rest in one batch."""
    found: list[Sentiment | None] = [None] * len(documents)
    if use_stored:
        for i, document in enumerate(documents):
            label = document.metadata.get(SENTIMENT_LABEL_COLUMN)
            score = document.metadata.get(SENTIMENT_SCORE_COLUMN)
            if label and score is not None:
                found[i] = Sentiment(label, float(score))
    missing = [i for i, s in enumerate(found) if s is None]
    if missing:
        fresh = scorer.score([documents[i].page_content for i in missing])
        for i, scored in zip(missing, fresh, strict=True):
            found[i] = scored
    return [s for s in found if s is not None]


def _evidence(document: Document, sentiment: Sentiment) -> ReviewEvidence:
    meta = document.metadata
    rating = meta.get("rating")
    return ReviewEvidence(
        review_id=str(meta.get("review_id") or document.id),
        text=document.page_content,
        emotion=meta.get("emotion"),
        score=float(meta["score"]),
        sentiment=SentimentOut(label=sentiment.label, score=sentiment.score),
        rating=int(rating) if rating is not None else None,
        product=meta.get("product"),
        aspect=meta.get("aspect"),
    )
