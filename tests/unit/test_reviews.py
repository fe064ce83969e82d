from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from components.emotions import EMOTIONS
from components.hashing import file_sha256
from components.reviews.generate import generate_reviews
from components.reviews.ingest import ColumnMapping, IngestError, ingest_reviews
from components.reviews.schema import REVIEW_COLUMNS, read_reviews, write_reviews
from components.text import normalize_text


def test_generator_counts_and_schema(reviews_700: pd.DataFrame) -> None:
    assert list(reviews_700.columns) == list(REVIEW_COLUMNS)
    assert reviews_700["emotion"].value_counts().to_dict() == {e: 100 for e in EMOTIONS}
    assert reviews_700["rating"].between(1, 5).all()
    assert (reviews_700["source"] == "synthetic").all()
    assert reviews_700["review_id"].is_unique


def test_generator_texts_are_unique(reviews_700: pd.DataFrame) -> None:
    assert reviews_700["text"].is_unique
    normalized = reviews_700["text"].map(normalize_text)
    assert normalized.nunique() / len(normalized) >= 0.95


def test_generator_explains_why(reviews_700: pd.DataFrame) -> None:
    for row in reviews_700.itertuples():
        assert row.product in row.text
        assert any(
            marker in row.text
            for marker in ("because", "Because", "reason", "comes down", "put,", "happened")
        )


def test_same_seed_same_file(tmp_path: Path) -> None:
    first = write_reviews(generate_reviews(per_emotion=20, seed=5), tmp_path / "a.parquet")
    second = write_reviews(generate_reviews(per_emotion=20, seed=5), tmp_path / "b.parquet")
    other = write_reviews(generate_reviews(per_emotion=20, seed=6), tmp_path / "c.parquet")
    assert file_sha256(first) == file_sha256(second)
    assert file_sha256(first) != file_sha256(other)
    pd.testing.assert_frame_equal(read_reviews(first), generate_reviews(per_emotion=20, seed=5))


def test_ingest_csv_with_column_mapping(tmp_path: Path) -> None:
    source = tmp_path / "shop.csv"
    pd.DataFrame(
        {
            "body": ["Great blender, love it!", "Broke after a day.", "It is fine I guess."],
            "label": ["Joy", "anger", ""],
            "stars": ["5", "1", "3"],
        }
    ).to_csv(source, index=False)
    frame = ingest_reviews(source, ColumnMapping(text="body", emotion="label", rating="stars"))
    assert list(frame.columns) == list(REVIEW_COLUMNS)
    assert frame["emotion"].tolist()[:2] == ["happy", "angry"]
    assert pd.isna(frame["emotion"].iloc[2])  # kept, unlabeled
    assert frame["rating"].tolist() == [5, 1, 3]
    assert (frame["source"] == "shop.csv").all()
    assert frame["review_id"].is_unique


def test_ingest_jsonl_without_emotion_column(tmp_path: Path) -> None:
    source = tmp_path / "reviews.jsonl"
    source.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["one review here", "another review"])
    )
    frame = ingest_reviews(source, ColumnMapping())
    assert len(frame) == 2 and frame["emotion"].isna().all()


@pytest.mark.parametrize(
    ("name", "content", "mapping", "message"),
    [
        ("missing.csv", None, ColumnMapping(), "not found"),
        ("r.txt", "text\nhello", ColumnMapping(), "unsupported file type"),
        ("r.csv", "body\nhello there", ColumnMapping(), "columns not found: text"),
        (
            "r.csv",
            "text,mood\nhello there,happy",
            ColumnMapping(emotion="feeling"),
            "emotion <- 'feeling'",
        ),
        ("r.csv", "text\n", ColumnMapping(), "no rows"),
        ("r.jsonl", "{not json", ColumnMapping(), "cannot parse"),
    ],
)
def test_ingest_bad_input_is_a_clear_error(
    tmp_path: Path, name: str, content: str | None, mapping: ColumnMapping, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(IngestError, match=message):
        ingest_reviews(path, mapping)


def test_concurrent_writers_of_one_reviews_file_never_collide(tmp_path, reviews_700) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from components.reviews.schema import read_reviews, write_reviews

    path = tmp_path / "reviews.parquet"
    frames = [reviews_700.iloc[: 100 + i] for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda frame: write_reviews(frame, path), frames * 4))
    assert len(read_reviews(path)) in {len(frame) for frame in frames}
    assert [p.name for p in tmp_path.iterdir()] == ["reviews.parquet"]
