"""The image dataset manifest and its Great Expectations suite.

One row per image: file, label, split, readable, width, height, sha256 and a 256-bit DCT
perceptual hash. The suite checks readable images, sizes, labels in the 7-class set, a
minimum per class and split, and no exact or near-duplicate image shared between train and
test (FER-2013 is known to leak that way). The perceptual hash has 256 bits (16x16 low DCT
frequencies): on 48 px faces the common 64-bit variant cannot tell apart distinct faces
that share a layout. Failures use the same report and error as the
review suite.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from components.emotions import EMOTIONS
from components.hashing import bytes_sha256
from components.progress import Progress
from components.validation import ValidationReport, run_suite
from components.vision.fer_data import FerDataset, list_folder_images

SUITE_NAME = "images"
MANIFEST_COLUMNS = ("file", "label", "split", "readable", "width", "height", "sha256", "phash")
LEAK_COLUMN = "leaks_into_train_from"


PHASH_BYTES = 32


def perceptual_hash(gray: np.ndarray) -> str:
    """256-bit pHash as hex: low 16x16 DCT coefficients of a 64x64 downscale vs. median."""
    small = cv2.resize(gray.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:16, :16].flatten()
    return np.packbits(low > np.median(low[1:])).tobytes().hex()


def _hash_words(hex_hashes: list[str]) -> np.ndarray:
    """(N, 4) uint64 words of 256-bit hashes, for vectorised Hamming distances."""
    raw = b"".join(bytes.fromhex(h) for h in hex_hashes)
    return np.frombuffer(raw, dtype=np.uint64).reshape(-1, PHASH_BYTES // 8)


def manifest_from_folder(root: Path, progress: bool = True) -> pd.DataFrame:
    """Manifest of a FER folder dataset, reading every file (unreadable ones are recorded)."""
    listing = list_folder_images(root)
    rows = []
    for record in Progress(
        listing.to_dict("records"), desc="hashing images", unit="img", enabled=progress
    ):
        data = (root / record["file"]).read_bytes()
        row = {
            **record,
            "readable": False,
            "width": 0,
            "height": 0,
            "sha256": bytes_sha256(data),
            "phash": None,
        }
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                gray = np.asarray(image.convert("L"))
            row.update(
                readable=True,
                width=gray.shape[1],
                height=gray.shape[0],
                phash=perceptual_hash(gray),
            )
        except (OSError, SyntaxError, ValueError):
            pass
        rows.append(row)
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def manifest_from_dataset(dataset: FerDataset) -> pd.DataFrame:
    """Manifest of an in-memory dataset (the CSV form): hashes of the pixel arrays."""
    rows = []
    for split, data in dataset.splits().items():
        for i in range(len(data)):
            pixels = data.images[i]
            rows.append(
                {
                    "file": data.files[i] if data.files else f"{split}#{i}",
                    "label": EMOTIONS[int(data.labels[i])],
                    "split": split,
                    "readable": True,
                    "width": int(pixels.shape[1]),
                    "height": int(pixels.shape[0]),
                    "sha256": bytes_sha256(pixels.tobytes()),
                    "phash": perceptual_hash(pixels),
                }
            )
    return pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))


def nearest_duplicates(
    queries: pd.DataFrame, references: pd.DataFrame, max_distance: int = 12
) -> pd.Series:
    """For each readable query row, the index of the reference row it duplicates: the same
    sha256, or perceptual hashes within ``max_distance`` bits (``None`` when none does)."""
    found = pd.Series([None] * len(queries), index=queries.index, dtype=object)
    references = references[references["readable"]]
    queries = queries[queries["readable"]]
    if references.empty or queries.empty:
        return found
    by_sha = dict(zip(references["sha256"], references.index, strict=True))
    reference_hashes = _hash_words(references["phash"].tolist())
    reference_index = references.index.to_numpy()
    for index, row in queries.iterrows():
        if row["sha256"] in by_sha:
            found[index] = by_sha[row["sha256"]]
            continue
        distance = np.bitwise_count(reference_hashes ^ _hash_words([row["phash"]])).sum(axis=1)
        nearest = int(distance.argmin())
        if distance[nearest] <= max_distance:
            found[index] = reference_index[nearest]
    return found


def find_leaks(manifest: pd.DataFrame, max_distance: int = 12) -> pd.Series:
    """For each evaluation (non-train) image, the train file it duplicates or nearly does.

    Exact duplicates match on sha256; near-duplicates have perceptual hashes within
    ``max_distance`` bits. Rows without a leak get ``None``.
    """
    train = manifest[manifest["split"] == "train"]
    matches = nearest_duplicates(manifest[manifest["split"] != "train"], train, max_distance)
    leaks = pd.Series([None] * len(manifest), index=manifest.index, dtype=object)
    for index, match in matches.items():
        if match is not None:
            leaks[index] = manifest.at[match, "file"]
    return leaks


def image_expectations(
    manifest: pd.DataFrame, min_per_class: int, image_size: tuple[int, int] | None
) -> list[Any]:
    import great_expectations.expectations as gxe

    counts = manifest.groupby(["split", "label"]).size()
    short = [
        f"{split}/{label} ({int(counts.get((split, label), 0))} < {min_per_class})"
        for split in ("train", "test")
        for label in EMOTIONS
        if int(counts.get((split, label), 0)) < min_per_class
    ]
    expectations: list[Any] = [
        gxe.ExpectColumnValuesToBeInSet(column="readable", value_set=[True]),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(EMOTIONS)),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "val", "test"]),
        gxe.ExpectColumnValuesToBeUnique(column="file"),
        gxe.ExpectColumnValuesToBeNull(
            column=LEAK_COLUMN,
            meta={"explain": "evaluation images duplicated (exactly or nearly) in train"},
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="class_count",
            min_value=min_per_class,
            meta={"explain": "too few images for " + ", ".join(short)} if short else None,
        ),
        gxe.ExpectColumnDistinctValuesToContainSet(column="label", value_set=list(EMOTIONS)),
    ]
    if image_size is not None:
        width, height = image_size
        expectations += [
            gxe.ExpectColumnValuesToBeBetween(column="width", min_value=width, max_value=width),
            gxe.ExpectColumnValuesToBeBetween(column="height", min_value=height, max_value=height),
        ]
    return expectations


def validate_image_manifest(
    manifest: pd.DataFrame,
    min_per_class: int = 10,
    image_size: tuple[int, int] | None = (48, 48),
    near_duplicate_bits: int = 12,
    docs_dir: Path | None = None,
) -> ValidationReport:
    """Run the image suite on a manifest."""
    checked = manifest.copy()
    checked[LEAK_COLUMN] = find_leaks(manifest, near_duplicate_bits)
    group = checked.groupby(["split", "label"])["file"].transform("size")
    checked["class_count"] = group.astype("int64")
    # Unreadable images have no size; keep them out of the size checks (readable covers them).
    checked.loc[~checked["readable"], ["width", "height"]] = None
    statistics = {
        "images": len(manifest),
        "per_split": manifest["split"].value_counts().to_dict(),
        "per_class": manifest.groupby("split")["label"]
        .value_counts()
        .unstack(fill_value=0)
        .to_dict("index"),
        "leaks": int(checked[LEAK_COLUMN].notna().sum()),
    }
    return run_suite(
        SUITE_NAME,
        checked,
        image_expectations(manifest, min_per_class, image_size),
        statistics,
        docs_dir,
    )


def manifest_sha256(manifest: pd.DataFrame) -> str:
    """A content hash of the dataset: sorted (split, label, sha256) rows."""
    key = manifest.sort_values(["split", "file"])[["split", "label", "sha256"]].to_csv(index=False)
    return bytes_sha256(key.encode())
