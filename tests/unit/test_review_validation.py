"""Each kind of defect planted in the reviews is caught, naming the right expectation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from components.reviews.validate import validate_reviews
from components.settings import ReviewSettings
from components.validation import DataValidationError, raise_for_failures

RULES = ReviewSettings()


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def plant(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return plant


def _copy_from(column: str, row: int, other: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def plant(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = frame.loc[other, column]
        return frame

    return plant


DEFECTS = {
    "missing column": (lambda f: f.drop(columns=["aspect"]), "expect_column_to_exist", "aspect"),
    "null text": (_set("text", 3, None), "expect_column_values_to_not_be_null", "text"),
    "null id": (_set("review_id", 3, None), "expect_column_values_to_not_be_null", "review_id"),
    "unknown emotion": (
        _set("emotion", 4, "joyful"),
        "expect_column_values_to_be_in_set",
        "emotion",
    ),
    "unlabeled": (_set("emotion", 4, None), "expect_column_values_to_not_be_null", "emotion"),
    "short text": (_set("text", 5, "bad"), "expect_column_value_lengths_to_be_between", "text"),
    "rating out of range": (_set("rating", 6, 9), "expect_column_values_to_be_between", "rating"),
    "duplicate id": (
        _copy_from("review_id", 7, 8),
        "expect_column_values_to_be_unique",
        "review_id",
    ),
    "duplicate text": (_copy_from("text", 9, 10), "expect_column_values_to_be_unique", "text"),
    "text of wrong type": (
        lambda f: f.assign(text=f["text"].astype(object).where(f.index != 11, 12345)),
        "expect_column_values_to_be_in_type_list",
        "text",
    ),
}

COVERAGE = {
    "too few of one emotion": (
        lambda f: f[(f["emotion"] != "disgust") | (f.index % 10 == 0)].reset_index(drop=True),
        "expect_column_values_to_be_between",
        "reviews_with_same_emotion",
        "few reviews for disgust (10 < 20)",
    ),
    "emotion absent": (
        lambda f: f[~f["emotion"].isin(["fear", "sad", "neutral", "surprise"])].reset_index(
            drop=True
        ),
        "expect_column_distinct_values_to_contain_set",
        "emotion",
        "no reviews yet for fear, sad, surprise, neutral",
    ),
}


def test_clean_reviews_pass(reviews_700: pd.DataFrame) -> None:
    report = validate_reviews(reviews_700, RULES)
    assert report.passed, report.failure_summary()
    assert report.failures == [] and report.evaluated >= 20
    assert report.statistics["per_emotion"]["happy"] == 100
    assert raise_for_failures(report) is report


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_planted_defect_is_caught(reviews_700: pd.DataFrame, defect: str) -> None:
    plant, expectation, column = DEFECTS[defect]
    report = validate_reviews(plant(reviews_700.copy()), RULES)
    assert not report.passed
    assert (expectation, column) in {(f.expectation, f.column) for f in report.failures}
    with pytest.raises(DataValidationError, match=expectation):
        raise_for_failures(report)


@pytest.mark.parametrize("case", sorted(COVERAGE))
def test_uneven_coverage_is_a_warning_not_a_failure(reviews_700: pd.DataFrame, case: str) -> None:
    """A real export labelled with three emotions must still be indexable: coverage is
    reported (statistics and a warning naming the emotions), never a failure."""
    plant, expectation, column, explain = COVERAGE[case]
    report = validate_reviews(plant(reviews_700.copy()), RULES)
    assert report.passed and report.failures == []
    warned = {(w.expectation, w.column): w.describe() for w in report.warnings}
    assert explain in warned[(expectation, column)]
    assert raise_for_failures(report) is report


def test_data_docs_are_written(reviews_700: pd.DataFrame, tmp_path) -> None:
    report = validate_reviews(reviews_700, RULES, docs_dir=tmp_path / "gx")
    assert report.data_docs and report.data_docs.startswith("file://")
    pages = list((tmp_path / "gx").rglob("index.html"))
    assert pages, "no Data Docs index page was written"
    assert report.data_docs.endswith("index.html") and Path(report.data_docs[7:]).is_file()
    assert "<html" in pages[0].read_text(encoding="utf-8").lower()
