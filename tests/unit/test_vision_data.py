"""FER-2013 in both public forms, the synthetic generator, the manifest suite."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from components.emotions import EMOTIONS
from components.vision.fer_data import FerDataError, load_fer
from components.vision.manifest import (
    manifest_from_dataset,
    manifest_from_folder,
    validate_image_manifest,
)
from components.vision.synthetic_faces import draw_face, synthesize_faces


def _face(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48), dtype=np.uint8)


def test_csv_form_labels_and_splits(tmp_path: Path) -> None:
    rows = []
    for usage, count in (("Training", 3), ("PublicTest", 2), ("PrivateTest", 1)):
        for emotion_id in range(7):
            for i in range(count):
                pixels = _face(hash((usage, emotion_id, i)) % 2**32)
                rows.append(
                    {
                        "emotion": emotion_id,
                        "pixels": " ".join(map(str, pixels.flatten())),
                        "Usage": usage,
                    }
                )
    path = tmp_path / "fer2013.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    dataset = load_fer(path)
    assert (len(dataset.train), len(dataset.test), len(dataset.val)) == (21, 14, 7)
    assert np.bincount(dataset.train.labels, minlength=7).tolist() == [3] * len(EMOTIONS)
    # CSV ids are FER ids: row with emotion 6 is neutral.
    first_neutral = next(r for r in rows if r["emotion"] == 6 and r["Usage"] == "Training")
    index = [r for r in rows if r["Usage"] == "Training"].index(first_neutral)
    assert EMOTIONS[dataset.train.labels[index]] == "neutral"
    assert np.array_equal(
        dataset.train.images[index].flatten(),
        np.array(first_neutral["pixels"].split(), dtype=np.uint8),
    )


def test_ferplus_votes_become_soft_labels(tmp_path: Path) -> None:
    pixels = " ".join(["128"] * 2304)
    pd.DataFrame(
        {
            "emotion": [3, 4, 0],
            "pixels": [pixels] * 3,
            "Usage": ["Training", "PublicTest", "PrivateTest"],
        }
    ).to_csv(tmp_path / "fer2013.csv", index=False)
    votes = pd.DataFrame(
        {"Usage": ["Training", "PublicTest", "PrivateTest"], "Image name": ["a", "b", "c"],
         "neutral": [2, 0, 0], "happiness": [8, 0, 0], "surprise": [0, 0, 0], "sadness": [0, 10, 0],
         "anger": [0, 0, 10], "disgust": [0, 0, 0], "fear": [0, 0, 0], "contempt": [0, 0, 0],
         "unknown": [0, 0, 0], "NF": [0, 0, 0]}
    )  # fmt: skip
    votes.to_csv(tmp_path / "fer2013new.csv", index=False)
    dataset = load_fer(tmp_path / "fer2013.csv", ferplus_votes=tmp_path / "fer2013new.csv")
    soft = dataset.train.soft_labels
    assert soft is not None and soft[0, EMOTIONS.index("happy")] == pytest.approx(0.8)
    assert soft[0, EMOTIONS.index("neutral")] == pytest.approx(0.2)


def test_folder_form_maps_by_class_name_not_alphabet(tmp_path: Path) -> None:
    for split, n in (("train", 4), ("test", 2)):
        for emotion in EMOTIONS:
            folder = tmp_path / split / emotion
            folder.mkdir(parents=True)
            for i in range(n):
                # Encode the FER id in the pixels so the label can be checked from the image.
                Image.fromarray(
                    np.full((48, 48), EMOTIONS.index(emotion) * 30, dtype=np.uint8)
                ).save(folder / f"{i}.png")
    dataset = load_fer(tmp_path, val_fraction=0.25, seed=1)
    for split in (dataset.train, dataset.val, dataset.test):
        assert np.array_equal(split.images[:, 0, 0] // 30, split.labels)
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (21, 7, 14)
    assert np.bincount(dataset.val.labels, minlength=7).tolist() == [1] * 7  # stratified


def test_bad_dataset_paths(tmp_path: Path) -> None:
    with pytest.raises(FerDataError, match="expected fer2013.csv"):
        load_fer(tmp_path / "nothing")
    (tmp_path / "train" / "happy").mkdir(parents=True)
    with pytest.raises(FerDataError, match="missing test/"):
        load_fer(tmp_path)
    (tmp_path / "test" / "grumpy").mkdir(parents=True)
    with pytest.raises(FerDataError, match="not an emotion"):
        load_fer(tmp_path)
    bad_csv = tmp_path / "fer.csv"
    bad_csv.write_text("emotion,pixels\n1,2 3\n")
    with pytest.raises(FerDataError, match="Usage"):
        load_fer(bad_csv)


def test_synthetic_faces_are_deterministic_and_marked(tmp_path: Path) -> None:
    synthesize_faces(tmp_path / "a", 2, 1, seed=4, progress=False)
    synthesize_faces(tmp_path / "b", 2, 1, seed=4, progress=False)
    first = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(first) == 21
    for rel in first:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    dataset = load_fer(tmp_path / "a", val_fraction=0.5)
    assert dataset.name == "synthetic"
    assert np.asarray(draw_face("happy", random.Random(0))).shape == (48, 48)


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    synthesize_faces(root, 12, 4, seed=2, progress=False)
    return root


def test_clean_synthetic_manifest_passes(synthetic_root: Path) -> None:
    manifest = manifest_from_folder(synthetic_root, progress=False)
    assert len(manifest) == 7 * 16 and manifest["readable"].all()
    report = validate_image_manifest(manifest, min_per_class=4)
    assert report.passed, report.failure_summary()


def test_manifest_catches_planted_defects(synthetic_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "faces"
    shutil.copytree(synthetic_root, root)
    # Exact leak, near-duplicate leak (re-encoded with noise), an unreadable file, a wrong size.
    shutil.copy(root / "train/happy/happy_00000.png", root / "test/happy/leak_exact.png")
    near = np.asarray(Image.open(root / "train/sad/sad_00001.png"), dtype=np.float64)
    near = np.clip(
        near * 1.04 + 6 + np.random.default_rng(0).normal(0, 3, near.shape), 0, 255
    ).astype(np.uint8)
    Image.fromarray(near).save(root / "test/sad/leak_near.jpg", quality=80)
    (root / "train/fear/broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    Image.new("L", (64, 64), 90).save(root / "train/neutral/big.png")
    report = validate_image_manifest(manifest_from_folder(root, progress=False), min_per_class=4)
    failures = {(f.expectation, f.column): f for f in report.failures}
    leak = failures[("expect_column_values_to_be_null", "leaks_into_train_from")]
    assert leak.unexpected_count == 2
    assert set(leak.examples) == {"train/happy/happy_00000.png", "train/sad/sad_00001.png"}
    assert ("expect_column_values_to_be_in_set", "readable") in failures
    assert ("expect_column_values_to_be_between", "width") in failures


def test_manifest_min_per_class(synthetic_root: Path) -> None:
    report = validate_image_manifest(
        manifest_from_folder(synthetic_root, progress=False), min_per_class=5
    )
    assert not report.passed
    assert "test/angry (4 < 5)" in report.failure_summary()


def test_manifest_from_csv_dataset(tmp_path: Path) -> None:
    rows = [
        {"emotion": e, "pixels": " ".join(map(str, _face(e * 10 + i).flatten())), "Usage": usage}
        for e in range(7)
        for i, usage in enumerate(("Training", "PublicTest", "PrivateTest"))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "fer2013.csv", index=False)
    manifest = manifest_from_dataset(load_fer(tmp_path / "fer2013.csv"))
    assert set(manifest["split"]) == {"train", "val", "test"} and manifest["sha256"].is_unique
