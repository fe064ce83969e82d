"""The Great Expectations suite for reviews.

Checks that fail the suite: required columns, types, non-null id and text, emotion in the
7-class set, text length bounds, rating range, unique ids, no duplicate texts. Nothing
downstream (an index build) may run on data that fails it. Coverage is a reported
statistic and a warning (severity ``warning`` in the suite and the Data Docs), never a
failure: real review sets are uneven, and an emotion without reviews gets an answer that
says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from components.emotions import EMOTIONS
from components.reviews.schema import REVIEW_COLUMNS
from components.settings import ReviewSettings
from components.validation import ValidationReport, run_suite

SUITE_NAME = "reviews"
_STRING_TYPES = ["string", "str", "object", "StringDtype", "string[python]", "string[pyarrow]"]
# GX reads nullable integer columns as plain numpy dtypes, so ratings are checked as numbers
# of the right type and then restricted to the integers 1..5.
_NUMERIC_TYPES = ["int64", "int32", "int16", "int8", "float64", "float32"]


def review_expectations(frame: pd.DataFrame, rules: ReviewSettings) -> list[Any]:
    """The suite's expectations. Column checks only run on columns that exist."""
    import great_expectations.expectations as gxe

    expectations: list[Any] = [gxe.ExpectColumnToExist(column=c) for c in REVIEW_COLUMNS]
    present = set(frame.columns)

    def when(column: str, *items: Any) -> None:
        if column in present:
            expectations.extend(items)

    when(
        "review_id",
        gxe.ExpectColumnValuesToNotBeNull(column="review_id"),
        gxe.ExpectColumnValuesToBeUnique(column="review_id"),
        gxe.ExpectColumnValuesToBeInTypeList(column="review_id", type_list=_STRING_TYPES),
    )
    when(
        "text",
        gxe.ExpectColumnValuesToNotBeNull(column="text"),
        gxe.ExpectColumnValuesToBeInTypeList(column="text", type_list=_STRING_TYPES),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="text", min_value=rules.min_text_chars, max_value=rules.max_text_chars
        ),
        gxe.ExpectColumnValuesToBeUnique(column="text"),
    )
    when(
        "emotion",
        gxe.ExpectColumnValuesToNotBeNull(
            column="emotion",
            meta={"explain": "unlabeled reviews: tag them first (emoreview reviews tag)"},
        ),
        gxe.ExpectColumnValuesToBeInSet(column="emotion", value_set=list(EMOTIONS)),
    )
    when(
        "rating",
        gxe.ExpectColumnValuesToBeInTypeList(column="rating", type_list=_NUMERIC_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="rating", min_value=1, max_value=5),
        gxe.ExpectColumnValuesToBeInSet(column="rating", value_set=[1, 2, 3, 4, 5]),
    )
    when("source", gxe.ExpectColumnValuesToNotBeNull(column="source"))
    if "emotion" in present:
        expectations.extend(_per_emotion_count_expectations(frame, rules.min_per_emotion))
    return expectations


COUNT_COLUMN = "reviews_with_same_emotion"


def _per_emotion_count_expectations(frame: pd.DataFrame, minimum: int) -> list[Any]:
    """Coverage warnings: every emotion appears, and each row's emotion has at least
    ``minimum`` reviews.

    Runs on the derived column :data:`COUNT_COLUMN` that :func:`validate_reviews` adds.
    """
    import great_expectations.expectations as gxe

    counts = emotion_counts(frame)
    short = [f"{e} ({counts[e]} < {minimum})" for e in EMOTIONS if counts[e] < minimum]
    absent = [e for e in EMOTIONS if counts[e] == 0]
    return [
        gxe.ExpectColumnDistinctValuesToContainSet(
            column="emotion",
            value_set=list(EMOTIONS),
            severity="warning",
            meta={"explain": "no reviews yet for " + ", ".join(absent)} if absent else None,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column=COUNT_COLUMN,
            min_value=minimum,
            severity="warning",
            meta={"explain": "few reviews for " + ", ".join(short)} if short else None,
        ),
    ]


def emotion_counts(frame: pd.DataFrame) -> dict[str, int]:
    """Number of reviews per emotion (all 7 present, 0 when absent) plus unlabeled."""
    counts = {e: 0 for e in EMOTIONS}
    if "emotion" in frame:
        for value, n in frame["emotion"].value_counts(dropna=False).items():
            key = "unlabeled" if pd.isna(value) else str(value)
            counts[key] = counts.get(key, 0) + int(n)
    return counts


def validate_reviews(
    frame: pd.DataFrame, rules: ReviewSettings, docs_dir: Path | None = None
) -> ValidationReport:
    """Run the review suite; return the typed report (raise with ``raise_for_failures``)."""
    counts = emotion_counts(frame)
    checked = frame.copy()
    if "rating" in checked and isinstance(
        checked["rating"].dtype, pd.api.extensions.ExtensionDtype
    ):
        checked["rating"] = pd.to_numeric(checked["rating"], errors="coerce").astype("float64")
    if "emotion" in checked:
        labels = checked["emotion"].astype("string").fillna("<unlabeled>")
        checked[COUNT_COLUMN] = labels.map(labels.value_counts()).astype("int64")
    statistics = {"rows": len(frame), "per_emotion": counts}
    return run_suite(
        SUITE_NAME,
        checked,
        review_expectations(frame, rules),
        statistics=statistics,
        docs_dir=docs_dir,
    )
