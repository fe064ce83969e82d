"""Retrieval quality on the default 700 reviews with the real all-MiniLM-L6-v2."""

from __future__ import annotations

import pytest

from components.emotions import EMOTIONS, emotion_query
from components.index.retriever import ReviewRetriever
from components.index.search import ReviewSearcher
from components.settings import RetrievalSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def searcher(built_index, minilm) -> ReviewSearcher:
    return ReviewSearcher(built_index, minilm, RetrievalSettings())


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_emotion_answers_carry_that_emotion_and_are_distinct(
    searcher: ReviewSearcher, emotion: str
) -> None:
    hits = searcher.search(emotion_query(emotion), emotion=emotion, k=4)
    assert len(hits) == 4
    assert {h.review["emotion"] for h in hits} == {emotion}
    assert len({h.text for h in hits}) == 4
    assert all(0.0 < h.score <= 1.0 for h in hits)


def test_free_text_query_finds_matching_reasons(searcher: ReviewSearcher) -> None:
    hits = searcher.search("the battery swelled and I am scared it will explode", k=4)
    assert sum(h.review["emotion"] == "fear" for h in hits) >= 3
    assert "battery" in hits[0].text


def test_langchain_retriever_returns_documents(searcher: ReviewSearcher) -> None:
    retriever = ReviewRetriever(searcher=searcher, emotion="happy", k=4)
    documents = retriever.invoke(emotion_query("happy"))
    assert len(documents) == 4
    for document in documents:
        assert document.metadata["emotion"] == "happy"
        assert document.metadata["index_version"] == searcher.index_version
        assert isinstance(document.metadata["score"], float)
        assert document.page_content and document.id
