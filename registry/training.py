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
from components.vision.model import load_weights
from components.vision.train import EpochStats
from components.vision.training_run import TrainingOutcome, load_test_set, run_training
from registry.gate import ChampionScore, PromotionDecision, decide_promotion
from registry.models import ModelRegistry, RegistryError, VersionRecord
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


def track_training(
    data: Path,
    settings: Settings,
    min_per_class: int = 10,
    run_dir: Path | None = None,
    resume: bool = False,
    allow_invalid_data: bool = False,
    index_version: str | None = None,
    progress: bool = True,
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
        mlflow.set_tags(
            {
                "dataset": outcome.dataset,
                "data_sha256": outcome.data_sha256,
                "test_set_sha256": outcome.test_set_sha256,
                "synthetic": "true" if outcome.dataset == "synthetic" else "false",
                "validation_status": "passed" if outcome.validation.passed else "failed",
            }
        )
    return run.info.run_id, outcome


def register_tracked(registry: ModelRegistry, run_id: str, weights: Path) -> str:
    """Register the weights of a tracked run as a new version (alias ``challenger``),
    copying the run's lineage tags onto the version."""
    run = registry.client.get_run(run_id)
    keys = (
        "git_commit", "git_dirty", "index_version", "dataset", "data_sha256",
        "test_set_sha256", "synthetic", "validation_status",
    )  # fmt: skip
    tags = {key: run.data.tags.get(key, "") for key in keys}
    metrics = run.data.metrics
    tags.update(
        run_id=run_id,
        test_accuracy=f"{metrics.get('test_accuracy', float('nan')):.6f}",
        test_macro_f1=f"{metrics.get('test_macro_f1', float('nan')):.6f}",
    )
    with mlflow.start_run(run_id=run_id):
        return registry.log_and_register(weights, tags=tags)


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
    run_id, outcome = track_training(
        data, settings, min_per_class, run_dir, resume, allow_invalid_data, index_version, progress
    )
    registry = open_registry(settings)
    version = register_tracked(registry, run_id, outcome.result.weights_path)  # type: ignore[arg-type]
    decision = apply_gate(registry, version, data, settings)
    return RegistrationResult(outcome, run_id, version, decision, registry.champion_version())


def is_synthetic(record: VersionRecord) -> bool:
    """Whether a version was trained on synthetic faces (older versions: by dataset name)."""
    return record.tags.get("synthetic", "") == "true" or record.tags.get("dataset") == "synthetic"


def apply_gate(
    registry: ModelRegistry, version: str, data: Path, settings: Settings
) -> PromotionDecision:
    """Compare a registered challenger with the champion on the challenger's test set and
    record the decision (and that test set's sha256) on the version."""
    challenger = registry.record(version)
    champion = registry.champion_version()
    if "promotion_decision" in challenger.tags:
        # Decided before (e.g. a flow rerun whose training was cached): keep that decision.
        return PromotionDecision(
            promoted=champion == version,
            reason=f"already decided: {challenger.tags.get('promotion_reason', '')}",
            challenger_macro_f1=float(challenger.tags["test_macro_f1"]),
            champion=None,
            margin=settings.registry.promotion_margin,
        )
    test_set_sha256 = challenger.tags["test_set_sha256"]
    synthetic = is_synthetic(challenger)
    score = None
    if champion is not None and champion != version:
        champion_record = registry.record(champion)
        if synthetic and not is_synthetic(champion_record):
            score = ChampionScore(champion, float("nan"), synthetic=False)  # refused unmeasured
        else:
            score = champion_score(registry, champion_record, test_set_sha256, data, settings)
    decision = decide_promotion(
        challenger.validation_passed,
        float(challenger.tags["test_macro_f1"]),
        score,
        settings.registry.promotion_margin,
        challenger_synthetic=synthetic,
        test_set_sha256=test_set_sha256,
    )
    if decision.promoted:
        registry.make_champion(version, decision.as_tags())
    else:
        registry.record_decision(version, decision.as_tags())
    log.info("gate for %s v%s: %s", registry.name, version, decision.reason)
    return decision


def champion_score(
    registry: ModelRegistry,
    champion: VersionRecord,
    test_set_sha256: str,
    data: Path,
    settings: Settings,
) -> ChampionScore:
    """The champion's test macro-F1 on exactly the challenger's test set (same rows, labels
    and FER+ votes, proven by its sha256): the recorded number when the champion was tested
    on it, otherwise a fresh evaluation."""
    synthetic = is_synthetic(champion)
    if champion.tags.get("test_set_sha256") == test_set_sha256:
        return ChampionScore(champion.version, float(champion.tags["test_macro_f1"]), synthetic)
    log.info(
        "champion v%s was tested on another test set: evaluating it on this one", champion.version
    )
    test, digest = load_test_set(data, settings)
    if digest != test_set_sha256:
        raise RegistryError(
            f"the test set in {data} (sha256 {digest[:12]}) is not the one the challenger was "
            f"tested on ({test_set_sha256[:12]}): the data or settings.train.ferplus_votes "
            "changed since training, so the champion cannot be compared; train again"
        )
    source = registry.fetch(champion.version, settings.paths.models_dir)
    probabilities = predict_probabilities(
        load_weights(source.weights), test.images, batch_size=256, tta=settings.vision.tta
    )
    report = compute_metrics(test.labels, probabilities, "challenger test set", "test")
    return ChampionScore(champion.version, report.macro_f1, synthetic)
