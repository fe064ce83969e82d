"""A tracked training run: train -> log everything -> register -> gate.

Everything the audit needs is recorded on the MLflow run and the model version: the full
settings as params, per-epoch metrics, test metrics, artifacts (evaluation JSON and PNGs,
data manifest, validation result, history, settings) and lineage tags (git commit and
dirty flag, dataset, data and test-set sha256, validation status, index version).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow

from components.settings import Settings
from components.validation import DataValidationError
from components.vision.evaluate import compute_metrics, predict_probabilities
from components.vision.fer_data import load_fer
from components.vision.model import load_weights
from components.vision.train import EpochStats
from components.vision.training_run import TrainingOutcome, run_training
from registry.gate import ChampionScore, PromotionDecision, decide_promotion
from registry.models import ModelRegistry
from registry.tracking import (
    connect,
    ensure_experiment,
    git_revision,
    settings_params,
    tracking_uri,
)

log = logging.getLogger(__name__)

RUN_ARTIFACTS = (
    "evaluation",
    "confusion_matrix",
    "per_class_accuracy",
    "data_manifest",
    "validation",
    "history",
    "settings",
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


def open_registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(connect(settings), settings.registry.model_name, tracking_uri(settings))


def train_and_register(
    data: Path,
    settings: Settings,
    min_per_class: int = 10,
    run_dir: Path | None = None,
    resume: bool = False,
    allow_invalid_data: bool = False,
    index_version: str | None = None,
    progress: bool = True,
) -> RegistrationResult:
    """Train on ``data`` in an MLflow run, register the model, and apply the gate."""
    registry = open_registry(settings)
    experiment_id = ensure_experiment(registry.client, settings, settings.registry.experiment)
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
                **{
                    f"test_accuracy_{name}": metrics.accuracy
                    for name, metrics in evaluation.per_class.items()
                },
            }
        )
        for name in RUN_ARTIFACTS:
            path = outcome.artifacts.get(name)
            if path is not None and Path(path).is_file():
                mlflow.log_artifact(str(path))
        data_tags = {
            "dataset": outcome.dataset,
            "data_sha256": outcome.data_sha256,
            "test_set_sha256": outcome.test_set_sha256,
            "validation_status": "passed" if outcome.validation.passed else "failed",
        }
        mlflow.set_tags(data_tags)
        version = registry.log_and_register(
            outcome.result.weights_path,  # type: ignore[arg-type]
            tags={
                **lineage,
                **data_tags,
                "run_id": run.info.run_id,
                "test_accuracy": f"{evaluation.accuracy:.6f}",
                "test_macro_f1": f"{evaluation.macro_f1:.6f}",
            },
        )
    decision = apply_gate(registry, version, outcome, data, settings)
    return RegistrationResult(
        outcome, run.info.run_id, version, decision, registry.champion_version()
    )


def apply_gate(
    registry: ModelRegistry,
    version: str,
    outcome: TrainingOutcome,
    data: Path,
    settings: Settings,
) -> PromotionDecision:
    """Compare the challenger with the champion on the challenger's test set and record it."""
    champion = registry.champion_version()
    score = None
    if champion is not None and champion != version:
        score = champion_score(registry, champion, outcome, data, settings)
    decision = decide_promotion(
        outcome.validation.passed,
        outcome.evaluation.macro_f1,
        score,
        settings.registry.promotion_margin,
    )
    if decision.promoted:
        registry.make_champion(version, decision.as_tags())
    else:
        registry.record_decision(version, decision.as_tags())
    log.info("gate for %s v%s: %s", registry.name, version, decision.reason)
    return decision


def champion_score(
    registry: ModelRegistry,
    champion: str,
    outcome: TrainingOutcome,
    data: Path,
    settings: Settings,
) -> ChampionScore:
    """The champion's test macro-F1 on the challenger's test set: the recorded number when
    it was measured on the same test set, otherwise a fresh evaluation."""
    record = registry.record(champion)
    if record.tags.get("test_set_sha256") == outcome.test_set_sha256:
        return ChampionScore(champion, float(record.tags["test_macro_f1"]))
    log.info("champion v%s was tested on another test set: evaluating it on this one", champion)
    source = registry.fetch(champion, settings.paths.models_dir)
    dataset = load_fer(data, val_fraction=settings.train.val_fraction, seed=settings.train.seed)
    probabilities = predict_probabilities(
        load_weights(source.weights), dataset.test.images, batch_size=256, tta=settings.vision.tta
    )
    report = compute_metrics(dataset.test.labels, probabilities, dataset.name, "test")
    return ChampionScore(champion, report.macro_f1)
