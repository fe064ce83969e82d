"""FER-2013 in both public forms, mapped onto the one class order of ``components.emotions``.

- Kaggle CSV ``fer2013.csv``: ``emotion,pixels,Usage`` with Training / PublicTest /
  PrivateTest. Training -> train, PrivateTest -> val (early stopping), PublicTest -> test.
- Folder form ``train/<class>/*.png`` and ``test/<class>/*.png``; val is a stratified,
  seeded carve-out of train. Classes are mapped by *name* (``ImageFolder`` would number
  them alphabetically, which disagrees with the CSV ids).
- Optional FER+ votes (``fer2013new.csv``, same rows as the CSV) become soft labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from components.emotions import EMOTION_TO_INDEX, EMOTIONS, UnknownEmotionError, normalize_emotion
from components.errors import EmoreviewError

if TYPE_CHECKING:  # pandas is imported where a table is read: the served image workers
    import pandas as pd  # import this module for IMAGE_SIZE only (0.25 s each, cold start)

IMAGE_SIZE = 48
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
CSV_SPLITS = {"Training": "train", "PrivateTest": "val", "PublicTest": "test"}
# FER+ vote columns; contempt, unknown and NF have no FER-2013 class and are dropped.
FERPLUS_COLUMNS = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}


class FerDataError(EmoreviewError, ValueError):
    """The dataset path or file does not hold FER-2013 data in a known form."""


@dataclass
class FerSplit:
    """Images (N, 48, 48) uint8 grayscale, hard labels (N,), optional soft labels (N, 7)."""

    images: np.ndarray
    labels: np.ndarray
    files: list[str] = field(default_factory=list)
    soft_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class FerDataset:
    name: str
    train: FerSplit
    val: FerSplit
    test: FerSplit
    source: str

    def splits(self) -> dict[str, FerSplit]:
        return {"train": self.train, "val": self.val, "test": self.test}


def load_fer(
    path: Path,
    val_fraction: float = 0.1,
    seed: int = 0,
    ferplus_votes: Path | None = None,
    name: str | None = None,
) -> FerDataset:
    """Load FER-2013 from a ``fer2013.csv`` file or a ``train/``+``test/`` folder."""
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_fer_csv(path, ferplus_votes=ferplus_votes, name=name)
    if path.is_dir():
        if ferplus_votes is not None:
            raise FerDataError("FER+ votes align with the rows of fer2013.csv: use the CSV form")
        return load_fer_folder(path, val_fraction=val_fraction, seed=seed, name=name)
    raise FerDataError(f"{path}: expected fer2013.csv or a folder with train/ and test/")


def load_fer_csv(
    path: Path, ferplus_votes: Path | None = None, name: str | None = None
) -> FerDataset:
    import pandas as pd

    frame = pd.read_csv(path)
    missing = {"emotion", "pixels", "Usage"} - set(frame.columns)
    if missing:
        raise FerDataError(
            f"{path} lacks columns {sorted(missing)} (expected emotion,pixels,Usage)"
        )
    soft = _ferplus_soft_labels(ferplus_votes, len(frame)) if ferplus_votes else None
    images = np.stack([_parse_pixels(p, row) for row, p in enumerate(frame["pixels"])])
    labels = frame["emotion"].to_numpy(dtype=np.int64)
    if labels.min() < 0 or labels.max() >= len(EMOTIONS):
        raise FerDataError(f"{path}: emotion ids must be 0..6")
    splits: dict[str, FerSplit] = {}
    for usage, split in CSV_SPLITS.items():
        rows = np.flatnonzero(frame["Usage"].to_numpy() == usage)
        split_soft = soft[rows] if soft is not None else None
        keep = rows if split_soft is None else rows[split_soft.sum(axis=1) > 0]
        splits[split] = FerSplit(
            images=images[keep],
            labels=labels[keep] if soft is None else soft[keep].argmax(axis=1),
            files=[f"{path.name}#{i}" for i in keep],
            soft_labels=None if soft is None else soft[keep],
        )
    if len(splits["train"]) == 0 or len(splits["test"]) == 0:
        raise FerDataError(f"{path}: needs Training and PublicTest rows")
    if len(splits["val"]) == 0:
        raise FerDataError(f"{path}: needs PrivateTest rows for validation")
    return FerDataset(name=name or "fer2013", source=str(path), **splits)


def _parse_pixels(pixels: str, row: int) -> np.ndarray:
    values = np.array(str(pixels).split(), dtype=np.int64)
    if values.size != IMAGE_SIZE * IMAGE_SIZE or values.min() < 0 or values.max() > 255:
        raise FerDataError(f"row {row}: pixels must be {IMAGE_SIZE * IMAGE_SIZE} values in 0..255")
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def _ferplus_soft_labels(path: Path, rows: int) -> np.ndarray:
    import pandas as pd

    votes = pd.read_csv(path)
    missing = set(FERPLUS_COLUMNS) - set(votes.columns)
    if missing or len(votes) != rows:
        raise FerDataError(f"{path}: not a FER+ vote file aligned with fer2013.csv")
    counts = np.zeros((rows, len(EMOTIONS)), dtype=np.float32)
    for column, emotion in FERPLUS_COLUMNS.items():
        counts[:, EMOTION_TO_INDEX[emotion]] = votes[column].to_numpy(dtype=np.float32)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def list_folder_images(root: Path) -> pd.DataFrame:
    """Every image under ``root/{train,test}/<class>/`` with split and label (by class name)."""
    rows = []
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            raise FerDataError(f"{root}: missing {split}/ folder (expected train/<class>/*.png)")
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            try:
                emotion = normalize_emotion(class_dir.name)
            except UnknownEmotionError as error:
                raise FerDataError(
                    f"{class_dir}: folder name is not an emotion ({error})"
                ) from error
            for file in sorted(class_dir.iterdir()):
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    rows.append(
                        {"file": str(file.relative_to(root)), "label": emotion, "split": split}
                    )
    if not rows:
        raise FerDataError(f"{root}: no images found")
    import pandas as pd

    return pd.DataFrame(rows)


def load_fer_folder(
    root: Path, val_fraction: float = 0.1, seed: int = 0, name: str | None = None
) -> FerDataset:
    listing = list_folder_images(root)
    images = np.stack([read_gray(root / f) for f in listing["file"]])
    labels = listing["label"].map(EMOTION_TO_INDEX).to_numpy(dtype=np.int64)
    files = listing["file"].tolist()
    train_rows = np.flatnonzero(listing["split"].to_numpy() == "train")
    test_rows = np.flatnonzero(listing["split"].to_numpy() == "test")
    train_rows, val_rows = stratified_split(train_rows, labels[train_rows], val_fraction, seed)

    def take(rows: np.ndarray) -> FerSplit:
        return FerSplit(images=images[rows], labels=labels[rows], files=[files[i] for i in rows])

    dataset_name = name or ("synthetic" if (root / "SYNTHETIC").exists() else root.name)
    return FerDataset(
        name=dataset_name,
        source=str(root),
        train=take(train_rows),
        val=take(val_rows),
        test=take(test_rows),
    )


def read_gray(path: Path) -> np.ndarray:
    """Read an image file as 48x48 uint8 grayscale (resized when it is another size)."""
    with Image.open(path) as image:
        gray = image.convert("L")
        if gray.size != (IMAGE_SIZE, IMAGE_SIZE):
            gray = gray.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8)


def stratified_split(
    rows: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``rows`` into (keep, carved) with ``fraction`` of each class carved out."""
    rng = np.random.default_rng(seed)
    keep, carved = [], []
    for label in np.unique(labels):
        members = rows[labels == label]
        members = members[rng.permutation(members.size)]
        n = int(round(members.size * fraction)) if members.size > 1 else 0
        n = max(1, n) if fraction > 0 and members.size > 1 else n
        carved.append(members[:n])
        keep.append(members[n:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(carved))
