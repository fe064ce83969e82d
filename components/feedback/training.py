"""Consented corrections into the next training: the train split only, screened first.

The faces pass the same image suite as the dataset (readable, 48x48, labels in the 7-class
set, near-duplicate leak check); before that, a feedback face that duplicates a test image
(exactly or nearly) is dropped and reported, so the test set, and with it the gate's
comparison, stays the same. A correction whose face is an image of the dataset with another
label is kept (the person may be right: FER-2013's labels are noisy) and counted as a
disagreement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from components.emotions import EMOTION_TO_INDEX
from components.feedback.store import FeedbackRow, FeedbackStore
from components.hashing import bytes_sha256
from components.vision.fer_data import FerDataset, FerSplit, read_gray
from components.vision.manifest import MANIFEST_COLUMNS, nearest_duplicates, perceptual_hash

FEEDBACK_PREFIX = "feedback/"


@dataclass(frozen=True)
class FeedbackFaces:
    """Consented corrections as training rows: 48x48 faces and their corrected labels."""

    ids: list[int]
    images: np.ndarray
    labels: list[str]
    sha256s: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def digest(self) -> str:
        """sha256 of exactly what training sees: (face sha256, label) per row, in order."""
        key = json.dumps(sorted(zip(self.sha256s, self.labels, strict=True)))
        return bytes_sha256(key.encode())

    def subset(self, keep: Sequence[int]) -> FeedbackFaces:
        positions = [i for i, row_id in enumerate(self.ids) if row_id in set(keep)]
        return FeedbackFaces(
            ids=[self.ids[i] for i in positions],
            images=self.images[positions] if positions else self.images[:0],
            labels=[self.labels[i] for i in positions],
            sha256s=[self.sha256s[i] for i in positions],
        )

    def file(self, position: int) -> str:
        return f"{FEEDBACK_PREFIX}{self.sha256s[position]}.png"


@dataclass
class FeedbackMerge:
    """What screening did with the feedback faces."""

    offered: int
    kept: FeedbackFaces
    dropped: list[dict[str, Any]] = field(default_factory=list)
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        return {
            "feedback_rows": str(len(self.kept)),
            "feedback_sha256": self.kept.digest if len(self.kept) else "",
            "feedback_dropped": str(len(self.dropped)),
            "feedback_disagreements": str(len(self.disagreements)),
        }

    def report(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "kept": len(self.kept),
            "kept_ids": self.kept.ids,
            "feedback_sha256": self.kept.digest if len(self.kept) else "",
            "dropped_as_test_duplicates": self.dropped,
            "disagreements_with_dataset_labels": self.disagreements,
        }


def load_feedback_faces(store: FeedbackStore, ids: Sequence[int] | None = None) -> FeedbackFaces:
    """The consented corrections (``ids``: exactly those) with their stored face files."""
    rows: list[FeedbackRow] = store.training_corrections()
    if ids is not None:
        wanted = set(ids)
        rows = [row for row in rows if row.id in wanted]
    images = [read_gray(store.face_path(row)) for row in rows]
    return FeedbackFaces(
        ids=[row.id for row in rows],
        images=np.stack(images) if images else np.zeros((0, 48, 48), dtype=np.uint8),
        labels=[str(row.corrected_emotion) for row in rows],
        sha256s=[str(row.image_sha256) for row in rows],
    )


def collect_training_feedback(store: FeedbackStore, retention_days: int | None) -> FeedbackFaces:
    """Apply the retention (older feedback is purged first), then the consented faces."""
    if retention_days is not None:
        store.purge(older_than=timedelta(days=retention_days))
    return load_feedback_faces(store)


def feedback_manifest(faces: FeedbackFaces) -> pd.DataFrame:
    """Manifest rows (split ``train``) of the feedback faces, in the dataset's format."""
    rows = [
        {
            "file": faces.file(i),
            "label": faces.labels[i],
            "split": "train",
            "readable": True,
            "width": int(faces.images[i].shape[1]),
            "height": int(faces.images[i].shape[0]),
            "sha256": faces.sha256s[i],
            "phash": perceptual_hash(faces.images[i]),
        }
        for i in range(len(faces))
    ]
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def screen_feedback(
    manifest: pd.DataFrame, faces: FeedbackFaces, max_distance: int = 12
) -> FeedbackMerge:
    """Drop feedback faces that duplicate a test image; count those that are a train or
    val image of the dataset under another label."""
    rows = feedback_manifest(faces)
    test = manifest[manifest["split"] == "test"]
    leaks = nearest_duplicates(rows, test, max_distance)
    dropped = [
        {"feedback_id": faces.ids[i], "duplicates_test_image": str(test.at[match, "file"])}
        for i, match in enumerate(leaks)
        if match is not None
    ]
    dropped_ids = {d["feedback_id"] for d in dropped}
    same = nearest_duplicates(rows, manifest[manifest["split"] != "test"], max_distance=0)
    disagreements = [
        {
            "feedback_id": faces.ids[i],
            "corrected_emotion": faces.labels[i],
            "dataset_label": str(manifest.at[match, "label"]),
            "dataset_file": str(manifest.at[match, "file"]),
        }
        for i, match in enumerate(same)
        if match is not None
        and faces.ids[i] not in dropped_ids
        and manifest.at[match, "label"] != faces.labels[i]
    ]
    kept = faces.subset([row_id for row_id in faces.ids if row_id not in dropped_ids])
    return FeedbackMerge(len(faces), kept, dropped, disagreements)


def with_feedback(dataset: FerDataset, faces: FeedbackFaces) -> FerDataset:
    """The dataset with the feedback faces appended to its train split (val and test are
    untouched)."""
    if len(faces) == 0:
        return dataset
    train = dataset.train
    labels = np.array([EMOTION_TO_INDEX[label] for label in faces.labels], dtype=np.int64)
    soft = None
    if train.soft_labels is not None:
        one_hot = np.eye(train.soft_labels.shape[1], dtype=train.soft_labels.dtype)[labels]
        soft = np.concatenate([train.soft_labels, one_hot])
    merged = FerSplit(
        images=np.concatenate([train.images, faces.images]),
        labels=np.concatenate([train.labels, labels]),
        files=[*train.files, *(faces.file(i) for i in range(len(faces)))],
        soft_labels=soft,
    )
    return FerDataset(
        name=dataset.name, train=merged, val=dataset.val, test=dataset.test, source=dataset.source
    )
