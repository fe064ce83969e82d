"""A short real training run on synthetic faces, and the vision CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.settings import Settings
from components.vision.training_run import run_training
from tests.cli import run_cli
from tests.integration.test_registry import WEAK_RECIPE

pytestmark = pytest.mark.integration


def test_vision_cli(synthetic_faces: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    synthesized = run_cli(
        ws, "faces", "synthesize", "--per-class", "10", "--test-per-class", "3", "--json"
    )
    assert synthesized.returncode == 0, synthesized.stderr
    assert json.loads(synthesized.stdout)["train"] == 70

    # Four batches (train.max_train_batches from a --config file, with int8 serving): the
    # command's whole path runs; the epoch's 14 batches cost 2 s of CPU more (`emoreview
    # train`: 17.4 s against 15.4, imports included).
    config = tmp_path / "four-batches.yaml"
    config.write_text("train: {max_train_batches: 4}\nvision: {inference: int8}\n")
    trained = run_cli(
        ws, "--config", str(config), "train", "--data", str(synthetic_faces), "--epochs", "1",
        "--optimizer", "adamw", "--lr", "0.001", "--batch-size", "32", "--min-per-class", "10",
        "--json",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    summary = json.loads(trained.stdout)
    assert summary["dataset"] == "synthetic" and summary["images_per_second"] > 0
    # Registered in the workspace's default sqlite MLflow and, being first, champion.
    assert summary["registered_version"] == "1" and summary["champion_version"] == "1"
    assert (ws / "mlflow.db").is_file() and (ws / "mlartifacts").is_dir()
    assert summary["temperature"] > 0 and 0 <= summary["test_ece_after"] <= 1

    card = run_cli(ws, "registry", "card", "champion")
    assert card.returncode == 0, card.stderr
    assert card.stdout.startswith("# Model card: emotion-classifier version 1")
    assert f"accuracy **{summary['test_accuracy']:.4f}**" in card.stdout
    # Trained for int8 serving: the card has the int8 graph's test accuracy beside fp32's.
    assert "- served as `vision.inference: int8`: int8 (calibrated on " in card.stdout
    facts = json.loads(run_cli(ws, "registry", "card", "1", "--json").stdout)
    assert facts["int8"]["fp32_test_accuracy"] == summary["test_accuracy"]
    assert facts["calibration"]["temperature"] == summary["temperature"]
    assert facts["data"]["data_sha256"] == summary["data_sha256"]
    missing = run_cli(ws, "registry", "card", "7")
    assert missing.returncode == 2 and "no version" in missing.stderr

    evaluated = run_cli(ws, "evaluate", "--data", str(synthetic_faces), "--tta", "flip", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["tta"] == "flip"

    face = synthetic_faces / "test" / "happy" / "happy_00000.png"
    predicted = run_cli(ws, "predict-emotion", str(face), "--json")
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)
    assert len(answer["faces"]) == 1 and len(answer["faces"][0]["probabilities"]) == 7

    not_image = tmp_path / "notes.png"
    not_image.write_text("hello")
    bad = run_cli(ws, "predict-emotion", str(not_image))
    assert bad.returncode == 2 and "not an image" in bad.stderr and "Traceback" not in bad.stderr


def test_training_refuses_leaky_data(synthetic_faces: Path, tmp_path: Path) -> None:
    import shutil

    leaky = tmp_path / "leaky"
    shutil.copytree(synthetic_faces, leaky)
    shutil.copy(leaky / "train/angry/angry_00003.png", leaky / "test/angry/copied.png")
    result = run_cli(tmp_path / "ws", "train", "--data", str(leaky), "--epochs", "1")
    assert result.returncode == 2
    assert "leaks_into_train_from" in result.stderr
    assert not (tmp_path / "ws" / "runs" / "latest").exists()


def test_csv_form_with_ferplus_votes_trains_on_the_voted_rows(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows, votes = [], []
    vote_columns = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear"]
    extra = {"contempt": 0, "unknown": 0, "NF": 0}
    fer_to_vote = {
        0: "anger",
        1: "disgust",
        2: "fear",
        3: "happiness",
        4: "sadness",
        5: "surprise",
        6: "neutral",
    }
    for usage in ("Training", "Training", "PublicTest", "PrivateTest"):
        for emotion in range(7):
            pixels = rng.integers(0, 256, 48 * 48)
            rows.append({"emotion": emotion, "pixels": " ".join(map(str, pixels)), "Usage": usage})
            votes.append(
                {"Usage": usage, **{c: 0 for c in vote_columns}, fer_to_vote[emotion]: 10, **extra}
            )
    votes[0] = {**votes[0], "anger": 0}  # a training row nobody voted for: FER+ drops it
    pd.DataFrame(rows).to_csv(tmp_path / "fer2013.csv", index=False)
    pd.DataFrame(votes).to_csv(tmp_path / "fer2013new.csv", index=False)

    recipe = {
        **WEAK_RECIPE,
        "max_train_batches": None,
        "ferplus_votes": str(tmp_path / "fer2013new.csv"),
    }
    settings = Settings.from_dict({"workspace": str(tmp_path / "ws"), "train": recipe})
    outcome = run_training(tmp_path / "fer2013.csv", settings, min_per_class=1, progress=False)
    assert outcome.dataset == "fer2013" and len(outcome.result.history) == 1
    manifest = pd.read_csv(outcome.artifacts["data_manifest"])
    assert len(manifest) == len(rows) - 1
    assert manifest["split"].value_counts().to_dict() == {"train": 13, "test": 7, "val": 7}
