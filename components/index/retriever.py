"""LangChain face of the review search: a ``BaseRetriever`` returning ``Document``s."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from components.index.search import ReviewSearcher, SearchHit


class ReviewRetriever(BaseRetriever):
    """Retrieve reviews for a query, optionally restricted to one emotion.

    Each ``Document`` has the review text as content and the review fields plus ``score``
    (cosine similarity) and ``index_version`` in its metadata.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    searcher: ReviewSearcher
    emotion: str | None = None
    k: int = 4

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self.searcher.search(query, emotion=self.emotion, k=self.k)
        return [hit_to_document(hit, self.searcher.index_version) for hit in hits]


def hit_to_document(hit: SearchHit, index_version: str) -> Document:
    metadata: dict[str, Any] = {k: v for k, v in hit.review.items() if k != "text"}
    metadata.update(score=hit.score, index_version=index_version)
    return Document(page_content=hit.text, metadata=metadata, id=str(hit.review.get("review_id")))
