"""Plain-text helpers shared by the generator, search, the pipeline and the summarizer."""

from __future__ import annotations


def normalize_text(text: str) -> str:
    """Lower-case, drop punctuation and collapse whitespace: the near-duplicate key."""
    kept = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower())
    return " ".join(kept.split())
