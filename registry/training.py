"""A tracked training run: train -> log everything -> register -> gate
(:mod:`registry.promotion`).

Everything the audit needs is recorded on the MLflow run and the model version: the full
settings as params, per-epoch metrics, test metrics, artifacts (evaluation JSON and PNGs,
data manifest, validation result, history, settings) and lineage tags (git commit and
dirty flag, dataset, data and test-set sha256, validation status, index version).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import mlflow

from components.feedback.store import FeedbackStore
from components.feedback.training import (
    FeedbackFaces,
    collect_training_feedback,
    load_feedback_faces,
)
from components.settings import Settings
from components.validation import DataValidationError
from components.vision.train import EpochStats
from components.vision.training_run import TrainingOutcome, run_training
from registry.cards import publish_model_card
from registry.gate import PromotionDecision
from registry.models import ModelRegistry, open_registry
from registry.promotion import apply_gate
from registry.tracking import (
    connect,
    ensure_experiment,
    git_revision,
    settings_params,
    tracking_server_guard,
)

log = logging.getLogger(__name__)

RUN_ARTIFACTS = (
    "evaluation",
    "confusion_matrix",
    "per_class_accuracy",
    "calibration",
    "reliability_diagram",
    "feedback",
    "data_manifest",
    "validation",
    "history",
    "settings",
    "calibration_faces",
    "int8",
)


@dataclass(frozen=True)
class RegistrationResult:
    outcome: TrainingOutcome
    run_id: str
    version: str
    decision: PromotionDecision
    champion: str | None

    def summary(self) -> dict[str, object]:
        return {
            **self.outcome.summary(),
            "mlflow_run_id": self.run_id,
            "registered_version": self.version,
            "promoted": self.decision.promoted,
            "promotion_reason": self.decision.reason,
            "champion_version": self.champion,
        }


def training_feedback(settings: Settings, ids: Sequence[int] | None = None) -> FeedbackFaces | None:
    """The consented corrections the next training merges into its train split (after the
    retention purge; ``ids``: exactly those rows, as a flow snapshotted them), or ``None``
    when ``feedback.use_in_training`` is off."""
    if not settings.feedback.use_in_training:
        return None
    with FeedbackStore.from_settings(settings) as store:
        if ids is not None:
            return load_feedback_faces(store, ids)
        return collect_training_feedback(store, settings.feedback.retention_days)


def training_feedback_ids(settings: Settings) -> list[int] | None:
    """Like :func:`training_feedback` (retention purge first), but only the rows' ids: a
    flow snapshots them without reading a face."""
    if not settings.feedback.use_in_training:
        return None
    with FeedbackStore.from_settings(settings) as store:
        if settings.feedback.retention_days is not None:
            store.purge(older_than=timedelta(days=settings.feedback.retention_days))
        return [row.id for row in store.training_corrections()]


def track_training(
    data: Path,
    settings: Settings,
    *,
    min_per_class: int = 10,
    run_dir: Path | None = None,
    resume: bool = False,
    allow_invalid_data: bool = False,
    index_version: str | None = None,
    progress: bool = True,
    feedback: FeedbackFaces | None = None,
) -> tuple[str, TrainingOutcome]:
    """Train and evaluate on ``data`` inside an MLflow run that records everything the
    audit needs (per-epoch metrics live, as training goes); returns the run id too."""
    client = connect(settings)
    experiment_id = ensure_experiment(client, settings, settings.registry.experiment)
    lineage = {**git_revision(), "index_version": index_version or ""}

    def log_epoch(stats: EpochStats) -> None:
        mlflow.log_metrics(
            {
                "train_loss": stats.train_loss,
                "train_accuracy": stats.train_accuracy,
                "val_accuracy": stats.val_accuracy,
                "val_macro_f1": stats.val_macro_f1,
                "learning_rate": stats.learning_rate,
                "epoch_seconds": stats.seconds,
                "train_images_per_second": stats.images_per_second,
            },
            step=stats.epoch,
        )

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(settings_params(settings))
        mlflow.set_tags({**lineage, "data_path": str(data)})
        try:
            outcome = run_training(
                data,
                settings,
                run_dir=run_dir,
                min_per_class=min_per_class,
                resume=resume,
                on_epoch=log_epoch,
                progress=progress,
                allow_invalid_data=allow_invalid_data,
                feedback=feedback,
            )
        except DataValidationError:
            mlflow.set_tag("validation_status", "failed")
            raise
        mlflow.set_tag("mlflow.runName", outcome.run_name)
        evaluation = outcome.evaluation
        mlflow.log_metrics(
            {
                "test_accuracy": evaluation.accuracy,
                "test_macro_f1": evaluation.macro_f1,
                "test_weighted_f1": evaluation.weighted_f1,
                "best_epoch": outcome.result.best_epoch,
                "temperature": outcome.calibration.temperature,
                "test_ece_before": outcome.calibration.ece_before,
                "test_ece_after": outcome.calibration.ece_after,
                "val_nll_before": outcome.calibration.nll_before,
                "val_nll_after": outcome.calibration.nll_after,
                **{
                    f"test_accuracy_{name}": metrics.accuracy
                    for name, metrics in evaluation.per_class.items()
                },
                **(
                    {}
                    if outcome.int8 is None
                    else {
                        "int8_test_accuracy": outcome.int8.test_accuracy,
                        "int8_test_macro_f1": outcome.int8.test_macro_f1,
                        "int8_top1_agreement": outcome.int8.top1_agreement,
                    }
                ),
            }
        )
        for name in RUN_ARTIFACTS:
            path = outcome.artifacts.get(name)
            if path is not None and Path(path).is_file():
                mlflow.log_artifact(str(path))
        mlflow.set_tags(
            {
                "dataset": outcome.dataset,
                "data_sha256": outcome.data_sha256,
                "test_set_sha256": outcome.test_set_sha256,
                "synthetic": "true" if outcome.dataset == "synthetic" else "false",
                "validation_status": "passed" if outcome.validation.passed else "failed",
                **(
                    outcome.feedback.tags()
                    if outcome.feedback is not None
                    else {"feedback_rows": "0", "feedback_sha256": ""}
                ),
            }
        )
    return run.info.run_id, outcome


def register_tracked(registry: ModelRegistry, run_id: str, weights: Path) -> str:
    """Register the weights of a tracked run as a new version (alias ``challenger``),
    copying the run's lineage tags onto the version."""
    run = registry.client.get_run(run_id)
    keys = (
        "git_commit", "git_dirty", "index_version", "dataset", "data_sha256",
        "test_set_sha256", "synthetic", "validation_status", "feedback_rows",
        "feedback_sha256", "feedback_dropped", "feedback_disagreements",
    )  # fmt: skip
    tags = {key: run.data.tags.get(key, "") for key in keys}
    metrics = run.data.metrics
    tags.update(
        run_id=run_id,
        test_accuracy=f"{metrics.get('test_accuracy', float('nan')):.6f}",
        test_macro_f1=f"{metrics.get('test_macro_f1', float('nan')):.6f}",
        temperature=f"{metrics.get('temperature', 1.0):.6f}",
        test_ece_after=f"{metrics.get('test_ece_after', float('nan')):.6f}",
    )
    with mlflow.start_run(run_id=run_id):
        return registry.log_and_register(weights, tags=tags)


def train_and_register(
    data: Path,
    settings: Settings,
    *,
    min_per_class: int = 10,
    run_dir: Path | None = None,
    resume: bool = False,
    allow_invalid_data: bool = False,
    index_version: str | None = None,
    progress: bool = True,
) -> RegistrationResult:
    """Train on ``data`` in an MLflow run, register the model, and apply the gate. An
    `mlflow server` that stops answering fails the run with a
    :class:`~registry.tracking.TrackingServerError`."""
    with tracking_server_guard(settings, "training"):
        run_id, outcome = track_training(
            data,
            settings,
            min_per_class=min_per_class,
            run_dir=run_dir,
            resume=resume,
            allow_invalid_data=allow_invalid_data,
            index_version=index_version,
            progress=progress,
            feedback=training_feedback(settings),
        )
        registry = open_registry(settings)
        version = register_tracked(registry, run_id, outcome.result.weights_path)  # type: ignore[arg-type]
        decision = apply_gate(registry, version, data, settings)
        publish_model_card(registry, version)
    return RegistrationResult(outcome, run_id, version, decision, registry.champion_version())
