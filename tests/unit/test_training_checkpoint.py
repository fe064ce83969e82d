"""The per-epoch checkpoint (``last.pt``): training resumes from it where it stopped, and
an improving epoch's best weights are stored once, not beside a copy of themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from components.emotions import EMOTIONS
from components.settings import TrainSettings, VisionSettings
from components.vision.fer_data import FerDataset, FerSplit
from components.vision.train import LAST_CHECKPOINT, TrainResult, train_classifier


def split(seed: int, n: int) -> FerSplit:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, (n, 48, 48), dtype=np.uint8)
    return FerSplit(images, np.arange(n) % len(EMOTIONS))


DATASET = FerDataset("random", split(0, 14), split(1, 7), split(2, 7), source="random")
RECIPE = TrainSettings(
    epochs=1, batch_size=14, max_train_batches=1, optimizer="adamw", learning_rate=1e-3,
    scheduler="none", ema_decay=None, augment=False, disgust_oversample=1.0,
)  # fmt: skip


def train(folder: Path, epochs: int, resume: bool = False) -> TrainResult:
    recipe = RECIPE.model_copy(update={"epochs": epochs})
    return train_classifier(DATASET, VisionSettings(), recipe, folder, resume, progress=False)


def checkpoint(folder: Path) -> dict:
    return torch.load(folder / LAST_CHECKPOINT, map_location="cpu", weights_only=True)


def test_training_resumes_from_the_last_epoch_and_stores_the_best_weights_once(
    tmp_path: Path,
) -> None:
    first = train(tmp_path / "run", epochs=1)
    saved = checkpoint(tmp_path / "run")
    assert saved["epoch"] == saved["best_epoch"] == 1
    for name, weights in saved["best_state"].items():  # one storage, loaded as one
        assert weights.untyped_storage().data_ptr() == (
            saved["model"][name].untyped_storage().data_ptr()
        ), name

    resumed = train(tmp_path / "run", epochs=2, resume=True)
    assert [h.epoch for h in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]
    # The second epoch started from the first one's weights and optimizer: the same model
    # as two epochs in one go.
    straight = train(tmp_path / "straight", epochs=2)
    after_resume, after_straight = checkpoint(tmp_path / "run"), checkpoint(tmp_path / "straight")
    for name, weights in after_straight["model"].items():
        torch.testing.assert_close(after_resume["model"][name], weights, rtol=1e-4, atol=1e-5)
    assert resumed.best_epoch == straight.best_epoch
