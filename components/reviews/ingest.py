"""Ingest real reviews from CSV or JSONL with a column mapping.

Rows without an emotion are kept with ``emotion = None`` (unlabeled); the tagger labels
them later. Emotion spellings such as ``joy`` or ``Anger`` are normalised; values that are
not emotions at all are kept as written so that validation names them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from components.emotions import UnknownEmotionError, normalize_emotion
from components.errors import EmoreviewError
from components.reviews.schema import REVIEW_COLUMNS, coerce_review_dtypes


class IngestError(EmoreviewError, ValueError):
    """The input file cannot be read as reviews with the given column mapping."""


@dataclass(frozen=True)
class ColumnMapping:
    """Which input column feeds each review field. ``None``: the input has no such column."""

    text: str = "text"
    emotion: str | None = "emotion"
    review_id: str | None = None
    rating: str | None = None
    product: str | None = None
    aspect: str | None = None
    created_at: str | None = None


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or JSONL (one JSON object per line) file."""
    if not path.is_file():
        raise IngestError(f"input file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if suffix in {".jsonl", ".ndjson"}:
            return pd.read_json(path, lines=True, dtype=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise IngestError(f"cannot parse {path}: {error}") from error
    raise IngestError(f"unsupported file type {suffix!r} for {path}: use .csv or .jsonl")


def ingest_reviews(path: Path, mapping: ColumnMapping, now: datetime | None = None) -> pd.DataFrame:
    """Turn a CSV/JSONL file into reviews with the canonical schema."""
    raw = read_table(path)
    if raw.empty:
        raise IngestError(f"{path} holds no rows")
    wanted = {
        "text": mapping.text,
        "emotion": mapping.emotion,
        "review_id": mapping.review_id,
        "rating": mapping.rating,
        "product": mapping.product,
        "aspect": mapping.aspect,
        "created_at": mapping.created_at,
    }
    missing = [f"{name} <- {col!r}" for name, col in wanted.items() if col and col not in raw]
    # An absent emotion column is legitimate (all rows unlabeled) only when it is the default.
    missing = [m for m in missing if not (m.startswith("emotion") and mapping.emotion == "emotion")]
    if missing:
        raise IngestError(
            f"{path}: columns not found: {', '.join(missing)}; available: {', '.join(raw.columns)}"
        )

    frame = pd.DataFrame(index=raw.index)
    for name, column in wanted.items():
        frame[name] = raw[column] if column and column in raw else None
    frame["text"] = frame["text"].map(lambda v: v.strip() if isinstance(v, str) else v)
    frame["emotion"] = frame["emotion"].map(_normalize_label)
    if mapping.review_id is None:
        frame["review_id"] = [
            _content_id(path.name, i, t) for i, t in zip(raw.index, frame["text"], strict=True)
        ]
    frame["source"] = path.name
    stamp = now or datetime.now(UTC)
    frame["created_at"] = frame["created_at"].where(frame["created_at"].notna(), stamp)
    return coerce_review_dtypes(frame[list(REVIEW_COLUMNS)])


def _normalize_label(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        return normalize_emotion(text)
    except UnknownEmotionError:
        return text  # left for validation to report by name


def _content_id(source: str, row: object, text: object) -> str:
    digest = hashlib.sha1(f"{source}:{row}:{text}".encode()).hexdigest()[:12]
    return f"{Path(source).stem}-{digest}"
