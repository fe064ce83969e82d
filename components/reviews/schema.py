"""The typed review schema and its tabular (Parquet) form."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, Field

from components.emotions import EmotionName
from components.errors import EmoreviewError
from components.files import unique_temp_path

REVIEW_COLUMNS: tuple[str, ...] = (
    "review_id",
    "text",
    "emotion",
    "rating",
    "product",
    "aspect",
    "source",
    "created_at",
)
SYNTHETIC_SOURCE = "synthetic"


class Review(BaseModel):
    """One customer review. ``emotion`` is ``None`` for an ingested row not yet tagged."""

    review_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    emotion: EmotionName | None
    rating: int | None = Field(None, ge=1, le=5)
    product: str | None = None
    aspect: str | None = None
    source: str = Field(description="'synthetic' or the file the review came from")
    created_at: datetime


def reviews_to_frame(reviews: list[Review]) -> pd.DataFrame:
    """Reviews as a DataFrame with the canonical column order and dtypes."""
    frame = pd.DataFrame([r.model_dump() for r in reviews], columns=list(REVIEW_COLUMNS))
    return coerce_review_dtypes(frame)


def coerce_review_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the known columns their canonical dtypes (nullable where a value may be missing)."""
    frame = frame.copy()
    for column in ("review_id", "text", "emotion", "product", "aspect", "source"):
        if column in frame:
            frame[column] = frame[column].astype("string")
    if "rating" in frame:
        frame["rating"] = pd.to_numeric(frame["rating"], errors="coerce").astype("Int64")
    if "created_at" in frame:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True, errors="coerce")
    return frame


def write_reviews(frame: pd.DataFrame, path: Path) -> Path:
    """Write reviews as Parquet atomically (a reader never sees a partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = unique_temp_path(path)  # concurrent writers never share a temporary file
    try:
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class ReviewsFileError(EmoreviewError, ValueError):
    """A reviews file is missing or unreadable."""


def read_reviews(path: Path) -> pd.DataFrame:
    """Read a reviews Parquet file written by :func:`write_reviews`."""
    if not path.is_file():
        raise ReviewsFileError(
            f"reviews file not found: {path} (run `emoreview reviews generate` or "
            "`emoreview reviews ingest FILE` first)"
        )
    try:
        return pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types
        raise ReviewsFileError(f"cannot read reviews file {path}: {error}") from error
