"""One training run, end to end: validate the images, train, evaluate, write artifacts.

Everything a run produces lands in its run folder (weights, history, evaluation JSON and
charts, data manifest, validation report), so the registry can log the folder as is.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from components.feedback.training import (
    FeedbackFaces,
    FeedbackMerge,
    feedback_manifest,
    screen_feedback,
    with_feedback,
)
from components.settings import Settings
from components.validation import ValidationReport, raise_for_failures
from components.vision.calibration import (
    CalibrationReport,
    collect_logits,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    write_reliability_diagram,
)
from components.vision.evaluate import (
    EvaluationReport,
    compute_metrics,
    predict_probabilities,
    write_evaluation,
)
from components.vision.fer_data import FerDataset, FerSplit, load_fer
from components.vision.manifest import (
    manifest_from_dataset,
    manifest_from_folder,
    manifest_sha256,
    validate_image_manifest,
)
from components.vision.model import TemperatureScaled, save_weights
from components.vision.quantization import (
    CALIBRATION_FILE,
    Int8Report,
    calibration_sample,
    quantize_int8,
    save_calibration_faces,
)
from components.vision.train import EpochStats, TrainResult, resolve_device, train_classifier

log = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    run_name: str
    run_dir: Path
    dataset: str
    data_sha256: str
    test_set_sha256: str
    validation: ValidationReport
    evaluation: EvaluationReport
    calibration: CalibrationReport
    result: TrainResult
    artifacts: dict[str, Path]
    feedback: FeedbackMerge | None = None
    int8: Int8Report | None = None  # when trained with ``vision.inference: int8``

    def summary(self) -> dict[str, object]:
        return {
            "run_name": self.run_name,
            "run_dir": str(self.run_dir),
            "dataset": self.dataset,
            "data_sha256": self.data_sha256,
            "test_set_sha256": self.test_set_sha256,
            "validation_passed": self.validation.passed,
            "best_epoch": self.result.best_epoch,
            "epochs_run": len(self.result.history),
            "images_per_second": round(self.result.images_per_second, 1),
            "test_accuracy": self.evaluation.accuracy,
            "test_macro_f1": self.evaluation.macro_f1,
            "test_weighted_f1": self.evaluation.weighted_f1,
            "temperature": self.calibration.temperature,
            "test_ece_before": self.calibration.ece_before,
            "test_ece_after": self.calibration.ece_after,
            "feedback_rows": len(self.feedback.kept) if self.feedback else 0,
            "feedback_dropped": len(self.feedback.dropped) if self.feedback else 0,
            "weights": str(self.result.weights_path),
            "artifacts": {k: str(v) for k, v in self.artifacts.items()},
        }


@dataclass(frozen=True)
class ImageDataCheck:
    """The validation of one image dataset and the digests that identify it."""

    report: ValidationReport
    data_sha256: str
    test_set_sha256: str
    dataset: FerDataset | None
    feedback: FeedbackMerge | None = None


def validate_image_data(
    data: Path,
    min_per_class: int = 10,
    out_dir: Path | None = None,
    ferplus_votes: Path | None = None,
    feedback: FeedbackFaces | None = None,
) -> ImageDataCheck:
    """Manifest + suite for a dataset path, with the digests of all data and of the test
    split (models are only compared on the same test set).

    ``feedback`` faces are screened (:func:`~components.feedback.training.screen_feedback`)
    and the kept ones validated as train rows with the dataset, so the data sha256 covers
    them. The CSV form has to be parsed to be hashed, so its dataset (with FER+ soft labels
    when ``ferplus_votes`` is given) is returned for training to reuse.
    """
    manifest, dataset = image_manifest(data, ferplus_votes)
    test_digest = test_split_digest(manifest, dataset)
    merge = None
    if feedback is not None and len(feedback):
        merge = screen_feedback(manifest, feedback)
        manifest = pd.concat([manifest, feedback_manifest(merge.kept)], ignore_index=True)
    report = validate_image_manifest(manifest, min_per_class=min_per_class)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        manifest.to_csv(out_dir / "data_manifest.csv", index=False)
        (out_dir / "validation.json").write_text(report.model_dump_json(indent=2))
        if merge is not None:
            (out_dir / "feedback.json").write_text(json.dumps(merge.report(), indent=2))
    return ImageDataCheck(
        report=report,
        data_sha256=manifest_sha256(manifest),
        test_set_sha256=test_digest,
        dataset=dataset,
        feedback=merge,
    )


def image_manifest(
    data: Path, ferplus_votes: Path | None = None
) -> tuple[pd.DataFrame, FerDataset | None]:
    """The manifest of a dataset path; the CSV form's parsed dataset comes with it."""
    if data.is_dir():
        return manifest_from_folder(data), None
    dataset = load_fer(data, ferplus_votes=ferplus_votes)
    return manifest_from_dataset(dataset), dataset


def test_split_digest(manifest: pd.DataFrame, dataset: FerDataset | None) -> str:
    """sha256 of exactly what a test score depends on: the test rows with their labels,
    and the FER+ vote distributions when the labels come from votes."""
    digest = manifest_sha256(manifest[manifest["split"] == "test"])
    soft = dataset.test.soft_labels if dataset is not None else None
    if soft is None:
        return digest
    votes = np.ascontiguousarray(soft, dtype=np.float32).tobytes()
    return hashlib.sha256(digest.encode("ascii") + votes).hexdigest()


def load_test_set(data: Path, settings: Settings) -> tuple[FerSplit, str]:
    """The test split of ``data`` loaded as training loads it (FER+ votes included), with
    its :func:`test_split_digest`: a model re-evaluated on it is compared like with like."""
    manifest, dataset = image_manifest(data, settings.train.ferplus_votes)
    if dataset is None:
        dataset = load_fer(data, val_fraction=settings.train.val_fraction, seed=settings.train.seed)
    return dataset.test, test_split_digest(manifest, dataset)


def run_training(
    data: Path,
    settings: Settings,
    *,
    run_dir: Path | None = None,
    min_per_class: int = 10,
    resume: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    progress: bool = True,
    allow_invalid_data: bool = False,
    feedback: FeedbackFaces | None = None,
) -> TrainingOutcome:
    """Validate ``data`` (raising on failure unless ``allow_invalid_data``), train, evaluate
    on test, write artifacts. Consented ``feedback`` corrections join the train split."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    probe_name = "synthetic" if (data / "SYNTHETIC").exists() else data.stem
    run_dir = run_dir or settings.paths.runs_dir / f"{probe_name}-{stamp}"
    check = validate_image_data(
        data,
        min_per_class,
        out_dir=run_dir,
        ferplus_votes=settings.train.ferplus_votes,
        feedback=feedback,
    )
    report, dataset = check.report, check.dataset
    if allow_invalid_data and not report.passed:
        log.warning(
            "data validation FAILED (%d of %d expectations); training anyway because "
            "invalid data was explicitly allowed: this model can never become champion",
            report.evaluated - report.successful,
            report.evaluated,
        )
    else:
        raise_for_failures(report)
    if dataset is None:
        dataset = load_fer(
            data,
            val_fraction=settings.train.val_fraction,
            seed=settings.train.seed,
            ferplus_votes=settings.train.ferplus_votes,
        )
    if check.feedback is not None:
        dataset = with_feedback(dataset, check.feedback.kept)
        log.info(
            "feedback: %d consented corrections in train (%d dropped as test duplicates, "
            "%d disagree with the dataset's label)",
            len(check.feedback.kept), len(check.feedback.dropped),
            len(check.feedback.disagreements),
        )  # fmt: skip
    log.info(
        "training on %s: %d train / %d val / %d test images",
        dataset.name, len(dataset.train), len(dataset.val), len(dataset.test),
    )  # fmt: skip
    result = train_classifier(
        dataset,
        settings.vision,
        settings.train,
        run_dir,
        resume=resume,
        on_epoch=on_epoch,
        progress=progress,
    )
    device = resolve_device(settings.train.device)
    probabilities, calibration, reliability = calibrate_and_evaluate(
        result, dataset, settings, run_dir, device
    )
    evaluation = compute_metrics(
        dataset.test.labels, probabilities, dataset.name, "test", tta=settings.vision.tta
    )
    artifacts = write_evaluation(evaluation, run_dir)
    artifacts.update(calibration=run_dir / "calibration.json", reliability_diagram=reliability)
    if check.feedback is not None:
        artifacts["feedback"] = run_dir / "feedback.json"
    # The validation faces int8 serving calibrates on, stored with every version.
    calibration_faces = calibration_sample(dataset.val.images)
    artifacts["calibration_faces"] = save_calibration_faces(
        calibration_faces, run_dir / CALIBRATION_FILE
    )
    int8 = None
    if settings.vision.inference == "int8":
        int8 = evaluate_int8(
            result.model, calibration_faces, dataset, probabilities, evaluation, settings
        )
    if int8 is not None:
        artifacts["int8"] = run_dir / "int8.json"
        artifacts["int8"].write_text(int8.model_dump_json(indent=2))
        log.info(int8.summary())
    artifacts.update(
        data_manifest=run_dir / "data_manifest.csv",
        validation=run_dir / "validation.json",
        history=run_dir / "history.json",
        weights=result.weights_path,  # type: ignore[dict-item]
    )
    (run_dir / "settings.json").write_text(settings.model_dump_json(indent=2))
    artifacts["settings"] = run_dir / "settings.json"
    outcome = TrainingOutcome(
        run_name=run_dir.name,
        run_dir=run_dir,
        dataset=dataset.name,
        data_sha256=check.data_sha256,
        test_set_sha256=check.test_set_sha256,
        validation=report,
        evaluation=evaluation,
        calibration=calibration,
        result=result,
        artifacts=artifacts,
        feedback=check.feedback,
        int8=int8,
    )
    (run_dir / "summary.json").write_text(json.dumps(outcome.summary(), indent=2))
    log.info(evaluation.summary())
    log.info("calibration: %s", calibration.summary())
    return outcome


def evaluate_int8(
    model: torch.nn.Module,
    calibration_faces: np.ndarray,
    dataset: FerDataset,
    fp32_probabilities: np.ndarray,
    fp32: EvaluationReport,
    settings: Settings,
) -> Int8Report | None:
    """The served int8 graph of ``model`` against its fp32 test probabilities; None when
    the network is not quantized (it would be served frozen)."""
    graph = quantize_int8(model, calibration_faces)
    if graph is None:
        return None
    test, tta = dataset.test, settings.vision.tta
    probabilities = predict_probabilities(graph, test.images, batch_size=256, tta=tta)
    int8 = compute_metrics(test.labels, probabilities, dataset.name, "test", tta=tta)
    moved = np.abs(probabilities - fp32_probabilities)
    return Int8Report(
        calibration_faces=len(calibration_faces),
        test_accuracy=int8.accuracy,
        test_macro_f1=int8.macro_f1,
        fp32_test_accuracy=fp32.accuracy,
        fp32_test_macro_f1=fp32.macro_f1,
        top1_agreement=float((probabilities.argmax(1) == fp32_probabilities.argmax(1)).mean()),
        max_probability_difference=float(moved.max()),
        mean_probability_difference=float(moved.mean()),
    )


def calibrate_and_evaluate(
    result: TrainResult, dataset: FerDataset, settings: Settings, run_dir: Path, device: str
) -> tuple[np.ndarray, CalibrationReport, Path]:
    """Fit the temperature on the validation split, save it with the weights, and return
    the calibrated test probabilities (as served: with the configured TTA), the report
    and the reliability diagram's path."""
    model = result.model.to(device)
    val_logits = collect_logits(model, dataset.val.images, device=device)
    temperature = fit_temperature(val_logits, dataset.val.labels)
    calibrated = TemperatureScaled(model, temperature)

    def test_probabilities(net: torch.nn.Module) -> np.ndarray:
        return predict_probabilities(
            net, dataset.test.images, batch_size=256, tta=settings.vision.tta, device=device
        )

    before, after = test_probabilities(model), test_probabilities(calibrated)
    report = CalibrationReport(
        temperature=temperature,
        fitted_on="val",
        fitted_count=len(dataset.val),
        nll_before=negative_log_likelihood(val_logits, dataset.val.labels, 1.0),
        nll_after=negative_log_likelihood(val_logits, dataset.val.labels, temperature),
        ece_before=expected_calibration_error(before, dataset.test.labels),
        ece_after=expected_calibration_error(after, dataset.test.labels),
        evaluated_on="test",
    )
    calibrated.cpu()
    save_weights(calibrated, result.weights_path)  # the served model applies it
    result.model = calibrated
    (run_dir / "calibration.json").write_text(report.model_dump_json(indent=2))
    diagram = write_reliability_diagram(
        before, after, dataset.test.labels, report, run_dir / "reliability_diagram.png"
    )
    return after, report, diagram
