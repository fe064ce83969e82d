"""Model cards in the registry: built from the facts a version's run recorded, published as
the run's ``model_card.md`` / ``model_card.json`` and as the version's description (what
the MLflow UI shows on the version's page).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from components.vision.calibration import CalibrationReport
from components.vision.evaluate import EvaluationReport
from components.vision.model_card import (
    GateRecord,
    ModelCard,
    TrainingData,
    card_json,
    render_model_card,
)
from components.vision.quantization import Int8Report
from registry.models import ModelRegistry, RegistryError, VersionRecord

CARD_MARKDOWN = "model_card.md"
CARD_JSON = "model_card.json"


def _float(tags: dict[str, str], key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return None


def _read_json(registry: ModelRegistry, version: str, name: str, folder: Path) -> Any:
    path = registry.run_artifact(version, name, folder)
    return None if path is None else json.loads(path.read_text())


def build_model_card(registry: ModelRegistry, version: str) -> ModelCard | None:
    """The card of a trained version from its run's artifacts and its tags; ``None`` for a
    version whose run has no evaluation (an imported version carries its own card)."""
    record = registry.record(version)
    with tempfile.TemporaryDirectory(prefix="emoreview-card-") as scratch:
        folder = Path(scratch)
        evaluation = _read_json(registry, version, "evaluation.json", folder)
        if evaluation is None:
            return None
        calibration = _read_json(registry, version, "calibration.json", folder)
        validation = _read_json(registry, version, "validation.json", folder) or {}
        int8 = _read_json(registry, version, "int8.json", folder)
    return ModelCard(
        model_name=registry.name,
        version=record.version,
        architecture=record.tags.get("architecture", "unknown"),
        weights_sha256=record.tags.get("weights_sha256", ""),
        created=record.created.isoformat(timespec="seconds"),
        run_id=record.run_id or "",
        git_commit=record.tags.get("git_commit", ""),
        data=_training_data(record, validation),
        evaluation=EvaluationReport.model_validate(evaluation),
        calibration=None if calibration is None else CalibrationReport.model_validate(calibration),
        gate=_gate(record),
        int8=None if int8 is None else Int8Report.model_validate(int8),
    )


def _training_data(record: VersionRecord, validation: dict[str, Any]) -> TrainingData:
    tags = record.tags
    statistics = validation.get("statistics", {})
    failures = validation.get("failures", [])
    detail = (
        f"{validation.get('successful', 0)} of {validation.get('evaluated', 0)} expectations "
        f"held on {validation.get('row_count', 0)} images, {statistics.get('leaks', 0)} "
        "train/test leaks"
    )
    if failures:
        detail += "; failed: " + "; ".join(str(f.get("expectation", f)) for f in failures)
    return TrainingData(
        dataset=tags.get("dataset", "unknown"),
        synthetic=tags.get("synthetic") == "true",
        per_class={
            split: {label: int(n) for label, n in counts.items()}
            for split, counts in statistics.get("per_class", {}).items()
        },
        data_sha256=tags.get("data_sha256", ""),
        test_set_sha256=tags.get("test_set_sha256", ""),
        validation_passed=record.validation_passed,
        validation_detail=detail,
        feedback_rows=int(tags.get("feedback_rows", "0") or 0),
        feedback_sha256=tags.get("feedback_sha256", ""),
        feedback_dropped=int(tags.get("feedback_dropped", "0") or 0),
    )


def _gate(record: VersionRecord) -> GateRecord:
    tags = record.tags
    return GateRecord(
        decision=tags.get("promotion_decision", "not decided yet"),
        reason=tags.get("promotion_reason", ""),
        challenger_macro_f1=_float(tags, "compared_challenger_macro_f1"),
        champion_version=tags.get("compared_champion_version"),
        champion_macro_f1=_float(tags, "compared_champion_macro_f1"),
        margin=_float(tags, "promotion_margin"),
    )


def publish_model_card(registry: ModelRegistry, version: str) -> ModelCard | None:
    """Write the version's card into its run and as its description (after the gate, so
    the card holds the decision); imported versions keep the card they came with."""
    card = build_model_card(registry, version)
    if card is None:
        return None
    markdown = render_model_card(card)
    registry.client.log_text(card.run_id, markdown, CARD_MARKDOWN)
    registry.client.log_text(card.run_id, json.dumps(card_json(card), indent=2), CARD_JSON)
    registry.client.update_model_version(registry.name, card.version, description=markdown)
    return card


def read_model_card(registry: ModelRegistry, reference: str) -> tuple[str, dict[str, Any]]:
    """A version's published card (number or alias): its Markdown and its facts as JSON
    (an imported version's facts are its tags)."""
    version = reference if reference.isdigit() else registry.alias_version(reference)
    if version is None:
        raise RegistryError(f"{registry.name} has no {reference!r} version")
    record = registry.record(version)
    with tempfile.TemporaryDirectory(prefix="emoreview-card-") as scratch:
        folder = Path(scratch)
        markdown_path = registry.run_artifact(version, CARD_MARKDOWN, folder)
        if markdown_path is None:
            raise RegistryError(
                f"{registry.name} version {version} has no model card (registered before "
                "cards existed): `emoreview registry card --publish "
                f"{version}` writes one"
            )
        markdown = markdown_path.read_text()
        facts = _read_json(registry, version, CARD_JSON, folder)
    if facts is None:
        facts = {"model_name": registry.name, "version": version, "tags": record.tags}
    return markdown, facts
