"""Screening feedback faces for training (pure: manifests and arrays), and the report."""

from __future__ import annotations

import numpy as np
import pandas as pd

from components.emotions import EMOTIONS
from components.feedback.report import (
    feedback_report,
    index_data_sha256,
    reviews_voted_unhelpful,
)
from components.feedback.store import FeedbackRow
from components.feedback.training import FeedbackFaces, screen_feedback, with_feedback
from components.hashing import bytes_sha256
from components.vision.fer_data import FerDataset, FerSplit
from components.vision.manifest import perceptual_hash


def faces(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 48, 48), dtype=np.uint8)


def manifest_of(split: str, images: np.ndarray, labels: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "file": f"{split}/{i}.png",
                "label": labels[i],
                "split": split,
                "readable": True,
                "width": 48,
                "height": 48,
                "sha256": bytes_sha256(images[i].tobytes()),
                "phash": perceptual_hash(images[i]),
            }  # fmt: skip
            for i in range(len(images))
        ]
    )


def test_a_test_duplicate_is_dropped_and_a_relabelled_train_image_is_a_disagreement() -> None:
    train, test = faces(0, 7), faces(1, 7)
    manifest = pd.concat(
        [manifest_of("train", train, list(EMOTIONS)), manifest_of("test", test, list(EMOTIONS))],
        ignore_index=True,
    )
    fresh = faces(2, 1)[0]
    brighter_test_copy = np.clip(test[3].astype(int) + 3, 0, 255).astype(np.uint8)
    offered = FeedbackFaces(
        ids=[10, 11, 12],
        images=np.stack([fresh, brighter_test_copy, train[0]]),
        labels=["sad", "happy", "fear"],  # train[0] is labelled angry in the dataset
        sha256s=["a" * 64, "b" * 64, "c" * 64],
    )
    merge = screen_feedback(manifest, offered)
    assert merge.offered == 3 and merge.kept.ids == [10, 12]
    assert merge.dropped == [{"feedback_id": 11, "duplicates_test_image": "test/3.png"}]
    assert merge.disagreements == [
        {"feedback_id": 12, "corrected_emotion": "fear", "dataset_label": "angry",
         "dataset_file": "train/0.png"}
    ]  # fmt: skip
    tags = merge.tags()
    assert (tags["feedback_rows"], tags["feedback_dropped"], tags["feedback_disagreements"]) == (
        "2", "1", "1",
    )  # fmt: skip
    assert tags["feedback_sha256"] == merge.kept.digest and len(merge.kept.digest) == 64


def test_feedback_joins_train_only() -> None:
    def split(seed: int, n: int) -> FerSplit:
        return FerSplit(images=faces(seed, n), labels=np.zeros(n, dtype=np.int64), files=[""] * n)

    dataset = FerDataset("d", split(0, 5), split(1, 2), split(2, 3), "here")
    extra = FeedbackFaces([1, 2], faces(9, 2), ["sad", "happy"], ["d" * 64, "e" * 64])
    merged = with_feedback(dataset, extra)
    assert len(merged.train) == 7 and merged.val is dataset.val and merged.test is dataset.test
    assert merged.train.labels[-2:].tolist() == [EMOTIONS.index("sad"), EMOTIONS.index("happy")]
    assert merged.train.files[-1] == "feedback/" + "e" * 64 + ".png"
    np.testing.assert_array_equal(merged.train.images[-2:], extra.images)


def row(row_id: int, kind: str, **values) -> FeedbackRow:
    base = dict(
        id=row_id, created_at=pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime(), kind=kind,
        source="app", predicted_emotion=None, predicted_probabilities=None,
        corrected_emotion=None, review_id=None, helpful=None, model_version="1",
        weights_sha256="", index_version="", image_sha256=None, consent=False, face_file=None,
    )  # fmt: skip
    return FeedbackRow(**{**base, **values})


def test_the_report_counts_corrections_and_unhelpful_reviews_per_emotion() -> None:
    rows = [
        row(1, "correction", predicted_emotion="happy", corrected_emotion="sad", consent=True),
        row(2, "correction", predicted_emotion="happy", corrected_emotion="sad"),
        row(3, "review_vote", predicted_emotion="angry", review_id="r1", helpful=False),
        row(4, "review_vote", predicted_emotion="angry", review_id="r1", helpful=False),
        row(5, "review_vote", predicted_emotion="angry", review_id="r2", helpful=False),
        row(6, "review_vote", predicted_emotion="angry", review_id="r2", helpful=True),
    ]
    report = feedback_report(rows)
    assert report["corrections"] == 2 and report["corrections_with_consent"] == 1
    assert report["per_emotion"]["happy"]["corrected_to"] == [("sad", 2)]
    angry = report["per_emotion"]["angry"]
    assert angry["most_unhelpful_reviews"][0] == {"review_id": "r1", "unhelpful_votes": 2}
    assert (angry["helpful_votes"], angry["unhelpful_votes"]) == (1, 3)
    assert reviews_voted_unhelpful({"r1": 2, "r2": 1}, 2) == ["r1"]
    assert reviews_voted_unhelpful({"r1": 2}, None) == []
    assert index_data_sha256("f" * 64, []) == "f" * 64
    assert index_data_sha256("f" * 64, ["r1"]) != "f" * 64
