"""``training_flow``: validate image data -> train and evaluate (tracked in MLflow) ->
register -> gate. Training on unchanged data with unchanged settings is cached."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.tasks import exponential_backoff

from components.settings import Settings
from flows.common import content_key, flow_settings, io_task, publish_validation_table


@task(name="prepare training data")
def ensure_training_data(settings: Settings, data: str | None) -> str:
    """The FER data to train on: ``data``, ``flows.training_data``, or the workspace's
    faces; when none exists yet, seeded synthetic faces are drawn there (a fresh clone)."""
    from components.vision.synthetic_faces import synthesize_faces

    chosen = Path(data or settings.flows.training_data or settings.paths.faces_dir)
    if data is None and settings.flows.training_data is None and not chosen.exists():
        get_run_logger().warning(
            "no training data configured (flows.training_data): drawing synthetic faces into "
            "%s; a model trained on them never replaces a champion trained on real data",
            chosen,
        )
        synthesize_faces(chosen, per_class_train=100, per_class_test=30, progress=False)
    return str(chosen)


@task(name="collect feedback")
def collect_feedback(settings: Settings) -> list[int]:
    """The consented corrections this training merges into train (after the retention
    purge): their row ids, so validation and training see exactly the same rows."""
    from registry.training import training_feedback_ids

    ids = training_feedback_ids(settings)
    if ids is None:
        get_run_logger().info("feedback.use_in_training is off: no feedback in this training")
        return []
    get_run_logger().info("%d consented feedback corrections to merge into train", len(ids))
    return ids


@task(name="validate image data")
def validate_images(
    settings: Settings, data: str, min_per_class: int, feedback_ids: list[int]
) -> dict[str, Any]:
    """Manifest + GX suite (feedback faces screened and validated as train rows); a failure
    fails the flow here, before any training."""
    from components.validation import raise_for_failures
    from components.vision.training_run import validate_image_data
    from registry.training import training_feedback

    check = validate_image_data(
        Path(data),
        min_per_class,
        ferplus_votes=settings.train.ferplus_votes,
        feedback=training_feedback(settings, feedback_ids) if feedback_ids else None,
    )
    publish_validation_table("images-validation", check.report)
    if check.feedback is not None:
        merge = check.feedback
        create_markdown_artifact(
            key="training-feedback",
            markdown="\n".join(
                [
                    "## User feedback in this training",
                    "",
                    f"- consented corrections offered: {merge.offered}",
                    f"- merged into **train** (never val or test): {len(merge.kept)}",
                    f"- dropped as duplicates of a test image: {len(merge.dropped)}",
                    f"- disagreeing with the dataset's own label: {len(merge.disagreements)}",
                    "",
                    *[
                        f"- feedback {d['feedback_id']} duplicates `{d['duplicates_test_image']}`"
                        for d in merge.dropped
                    ],
                ]
            ),
            description="Feedback corrections merged into the train split",
        )
    raise_for_failures(check.report)
    return {"data_sha256": check.data_sha256, "test_set_sha256": check.test_set_sha256}


def _train_key(context: Any, parameters: dict[str, Any]) -> str:
    settings: Settings = parameters["settings"]
    return content_key(
        "train",
        parameters["data_sha256"],
        settings.train.model_dump(mode="json"),
        settings.vision.model_dump(mode="json"),
        str(settings.workspace.resolve()),
        settings.registry.tracking_uri,
    )


@task(
    name="train and evaluate",
    cache_key_fn=_train_key,
    persist_result=True,
    result_serializer="json",
)
def train_model(
    settings: Settings,
    data: str,
    data_sha256: str,
    min_per_class: int,
    feedback_ids: list[int] | None = None,
) -> dict[str, Any]:
    """ResNet-50 training and test evaluation inside an MLflow run (per-epoch metrics,
    artifacts, lineage). Returns paths and numbers only. The cache key's data sha256
    covers the feedback rows."""
    from registry.training import track_training, training_feedback

    run_id, outcome = track_training(
        Path(data),
        settings,
        min_per_class=min_per_class,
        progress=False,
        feedback=training_feedback(settings, feedback_ids) if feedback_ids else None,
    )
    return {
        "run_id": run_id,
        "run_dir": str(outcome.run_dir),
        "weights": str(outcome.result.weights_path),
        "test_accuracy": outcome.evaluation.accuracy,
        "test_macro_f1": outcome.evaluation.macro_f1,
        "data_sha256": data_sha256,
    }


def _register_key(context: Any, parameters: dict[str, Any]) -> str:
    return content_key("register", parameters["trained"]["run_id"])


@task(
    name="register model",
    cache_key_fn=_register_key,
    persist_result=True,
    result_serializer="json",
    retry_delay_seconds=exponential_backoff(2),
)
def register_model(settings: Settings, trained: dict[str, Any]) -> str:
    from registry.models import open_registry
    from registry.training import register_tracked

    return register_tracked(open_registry(settings), trained["run_id"], Path(trained["weights"]))


@task(name="promotion gate")
def gate(settings: Settings, version: str, data: str, trained: dict[str, Any]) -> dict[str, Any]:
    from registry.cards import publish_model_card
    from registry.models import open_registry
    from registry.promotion import apply_gate
    from registry.tracking import run_link, tracking_uri

    registry = open_registry(settings)
    champion_before = registry.champion_version()
    decision = apply_gate(registry, version, Path(data), settings)
    card = publish_model_card(registry, version)
    champion = registry.champion_version()
    compared = decision.champion
    against = "no champion"
    if compared is not None:
        score = "not measured" if math.isnan(compared.macro_f1) else f"{compared.macro_f1:.4f}"
        against = f"v{compared.version} ({score})"
    create_markdown_artifact(
        key="training-decision",
        markdown="\n".join(
            [
                f"## {registry.name} version {version}",
                "",
                "| metric | value |",
                "| --- | --- |",
                f"| test accuracy | {trained['test_accuracy']:.4f} |",
                f"| test macro-F1 | {trained['test_macro_f1']:.4f} |",
                f"| compared with | {against} |",
                f"| margin | {decision.margin:.4f} |",
                "",
                f"**Decision: {'promoted to champion' if decision.promoted else 'not promoted'}**"
                f" - {decision.reason}",
                "",
                f"Champion now: version {champion}",
                "",
                "Model card: `emoreview registry card " + version + "` (the version's "
                "description in the MLflow UI)"
                + (
                    f"; calibrated: temperature {card.calibration.temperature:.3f}, test ECE "
                    f"{card.calibration.ece_before:.3f} -> {card.calibration.ece_after:.3f}"
                    if card is not None and card.calibration is not None
                    else ""
                ),
            ]
        ),
        description="Test metrics and the promotion decision",
    )
    uri = tracking_uri(settings)
    link = run_link(settings, trained["run_id"])
    if link is not None:
        create_link_artifact(
            key="mlflow-run", link=link, link_text=f"MLflow run {trained['run_id']}"
        )
    else:
        create_markdown_artifact(
            key="mlflow-run",
            markdown=f"MLflow run `{trained['run_id']}` in `{uri}` "
            f"(open with `mlflow ui --backend-store-uri {uri}`)",
        )
    return {
        "version": version,
        "promoted": decision.promoted,
        "reason": decision.reason,
        "champion": champion,
        "new_champion": champion != champion_before,
    }


@flow(name="training", log_prints=True, result_serializer="json")
def training_flow(
    settings: dict[str, Any] | None = None,
    config_file: str | None = None,
    data: str | None = None,
    min_per_class: int = 10,
) -> dict[str, Any]:
    """Image data -> a registered model version and the gate's decision."""
    config = flow_settings(settings, config_file)
    source = ensure_training_data(config, data)
    feedback_ids = collect_feedback(config)
    checked = validate_images(config, source, min_per_class, feedback_ids)
    trained = train_model(config, source, checked["data_sha256"], min_per_class, feedback_ids)
    version = io_task(register_model, config)(config, trained)
    decision = gate(config, version, source, trained)
    get_run_logger().info(
        "version %s: %s (champion %s)", version, decision["reason"], decision["champion"]
    )
    return {**decision, "run_id": trained["run_id"], "test_macro_f1": trained["test_macro_f1"]}
