"""What the feedback says, per emotion: how often the classifier was corrected and to what,
and which reviews people found unhelpful for it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from components.emotions import EMOTIONS
from components.feedback.store import FeedbackRow
from components.hashing import json_sha256


def feedback_report(rows: Sequence[FeedbackRow], top: int = 5) -> dict[str, Any]:
    """Counts per emotion (corrections from and to, votes) and, per emotion, the ``top``
    reviews most often voted unhelpful."""
    corrections = [r for r in rows if r.kind == "correction"]
    votes = [r for r in rows if r.kind == "review_vote"]
    per_emotion: dict[str, Any] = {}
    for emotion in EMOTIONS:
        wrong = [r for r in corrections if r.predicted_emotion == emotion]
        unhelpful = Counter(
            r.review_id for r in votes if r.predicted_emotion == emotion and r.helpful is False
        )
        helpful = sum(1 for r in votes if r.predicted_emotion == emotion and r.helpful)
        per_emotion[emotion] = {
            "corrected_from": len([r for r in wrong if r.corrected_emotion != emotion]),
            "corrected_to": Counter(r.corrected_emotion for r in wrong).most_common(),
            "confirmed": len([r for r in wrong if r.corrected_emotion == emotion]),
            "helpful_votes": helpful,
            "unhelpful_votes": sum(unhelpful.values()),
            "most_unhelpful_reviews": [
                {"review_id": review, "unhelpful_votes": n}
                for review, n in unhelpful.most_common(top)
            ],
        }
    return {
        "rows": len(rows),
        "corrections": len(corrections),
        "corrections_with_consent": sum(1 for r in corrections if r.consent),
        "review_votes": len(votes),
        "per_emotion": per_emotion,
    }


def reviews_voted_unhelpful(counts: dict[str, int], threshold: int | None) -> list[str]:
    """The review ids voted unhelpful at least ``threshold`` times (none when it is off)."""
    if threshold is None:
        return []
    return sorted(review for review, n in counts.items() if n >= threshold)


def index_data_sha256(reviews_sha256: str, excluded: Sequence[str]) -> str:
    """What an index is built from: the reviews file, less the excluded reviews (the
    file's own sha256 when none is excluded)."""
    if not excluded:
        return reviews_sha256
    return json_sha256({"reviews": reviews_sha256, "excluded": sorted(excluded)})
