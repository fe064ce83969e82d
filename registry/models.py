"""The ``emotion-classifier`` registered model: versions, aliases, lineage, audit.

Aliases (MLflow 3; stages are deprecated): ``challenger`` is the newest registered
version, ``champion`` the one serving. Every decision about the champion is written as
version tags (decision, reason, the numbers compared) and appended to the registered
model's ``champion_history`` tag, so a rollback knows the previous champion and an audit
can show why each version is or is not serving.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import Schema, TensorSpec

from components.emotions import EMOTIONS
from components.errors import EmoreviewError
from components.hashing import file_sha256
from components.settings import Settings
from components.vision.fer_data import IMAGE_SIZE
from components.vision.model import read_architecture
from components.vision.prediction import ClassifierSource
from registry.tracking import connect, tracking_uri

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
WEIGHTS_ARTIFACT = "weights"
MODEL_CODE = Path(__file__).with_name("classifier_model.py")
# What loading the model needs: the classifier's code travels inside the model
# (``code_paths``), so no emoreview install is required where it is loaded.
PIP_REQUIREMENTS = ["torch==2.14.1", "torchvision==0.29.1", "numpy"]
MODEL_CODE_PATHS = [str(Path(__file__).resolve().parents[1] / "components")]
AUDIT_TAGS = (
    "architecture",
    "source",
    "dataset",
    "data_sha256",
    "test_set_sha256",
    "synthetic",
    "validation_status",
    "feedback_rows",
    "git_commit",
    "git_dirty",
    "weights_sha256",
    "promotion_decision",
    "promotion_reason",
)


class RegistryError(EmoreviewError, RuntimeError):
    """A registry request that cannot be honoured (unknown version, no champion...)."""


@dataclass
class VersionRecord:
    version: str
    aliases: list[str]
    created: datetime
    run_id: str | None
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def validation_passed(self) -> bool:
        """Trained on data that passed validation, or imported weights (no data here)."""
        return self.tags.get("validation_status") == "passed" or self.is_external

    @property
    def is_external(self) -> bool:
        return self.tags.get("source") == "external"

    def row(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "aliases": self.aliases,
            "created": self.created.isoformat(timespec="seconds"),
            "test_accuracy": self.metrics.get("test_accuracy"),
            "test_macro_f1": self.metrics.get("test_macro_f1"),
            **{tag: self.tags.get(tag) for tag in AUDIT_TAGS},
        }


def classifier_signature(input_size: int = IMAGE_SIZE) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, 1, input_size, input_size))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, len(EMOTIONS)))]),
    )


class ModelRegistry:
    def __init__(self, client: MlflowClient, name: str, tracking_uri: str) -> None:
        self.client = client
        self.name = name
        self.tracking_uri = tracking_uri

    # ----------------------------------------------------------------- registering

    def log_and_register(
        self, weights: Path, tags: dict[str, str], description: str | None = None
    ) -> str:
        """Log the weights as a pyfunc model in the active run and register a version.

        The version gets ``tags`` plus the weights' sha256 and architecture (name and
        spec, read from the weights file) and becomes ``challenger``.
        """
        digest = file_sha256(weights)
        architecture = read_architecture(weights)
        with warnings.catch_warnings():
            # The explicit tensor signature replaces MLflow's type-hint inference.
            warnings.filterwarnings("ignore", message=".*[Tt]ype hint.*")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_CODE),
                artifacts={WEIGHTS_ARTIFACT: str(weights)},
                signature=classifier_signature(),
                input_example=np.zeros((1, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32),
                pip_requirements=PIP_REQUIREMENTS,
                code_paths=MODEL_CODE_PATHS,
            )
        try:
            self.client.get_registered_model(self.name)
        except MlflowException:
            self.client.create_registered_model(
                self.name,
                description="FER-2013 7-class facial emotion classifier (trained ResNet-50s "
                "and the imported mini-Xception baseline)",
            )
        version = self.client.create_model_version(
            self.name,
            info.model_uri,
            run_id=info.run_id,
            tags={
                **tags,
                "weights_sha256": digest,
                "architecture": str(architecture.get("arch")),
                "architecture_spec": json.dumps(architecture, sort_keys=True),
            },
            description=description,
            model_id=info.model_id,
        ).version
        self.client.set_registered_model_alias(self.name, CHALLENGER, str(version))
        log.info("registered %s version %s (sha256 %s)", self.name, version, digest[:12])
        return str(version)

    # ----------------------------------------------------------------- reading

    def versions(self) -> list[str]:
        try:
            found = self.client.search_model_versions(f"name='{self.name}'")
        except MlflowException:
            return []
        return sorted((str(v.version) for v in found), key=int)

    def alias_version(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.name, alias).version)
        except MlflowException:
            return None

    def champion_version(self) -> str | None:
        return self.alias_version(CHAMPION)

    def record(self, version: str) -> VersionRecord:
        try:
            mv = self.client.get_model_version(self.name, str(version))
        except MlflowException as error:
            raise RegistryError(f"{self.name} has no version {version!r}") from error
        metrics: dict[str, float] = {}
        if mv.run_id:
            try:
                metrics = dict(self.client.get_run(mv.run_id).data.metrics)
            except MlflowException:
                metrics = {}
        # search_model_versions returns no aliases in this MLflow: get_model_version does.
        return VersionRecord(
            version=str(mv.version),
            aliases=sorted(mv.aliases),
            created=datetime.fromtimestamp(mv.creation_timestamp / 1000, tz=UTC),
            run_id=mv.run_id,
            tags=dict(mv.tags),
            metrics=metrics,
        )

    def records(self) -> list[VersionRecord]:
        return [self.record(v) for v in self.versions()]

    def history(self) -> list[str]:
        try:
            model = self.client.get_registered_model(self.name)
        except MlflowException:
            return []
        return json.loads(model.tags.get(HISTORY_TAG, "[]"))

    # ----------------------------------------------------------------- deciding

    def record_decision(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.name, version, key, value)

    def make_champion(self, version: str, tags: dict[str, str]) -> None:
        """Point ``champion`` at ``version``, recording ``tags`` and the history."""
        record = self.record(version)  # raises for an unknown version
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.record_decision(record.version, {**tags, "promoted_at": stamp})
        self.client.set_registered_model_alias(self.name, CHAMPION, record.version)
        history = [v for v in self.history() if v != record.version] + [record.version]
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history))
        log.info("%s version %s is champion", self.name, record.version)

    def promote(self, version: str, reason: str, actor: str = "manual") -> VersionRecord:
        """A manual override: make ``version`` champion, recording who and why."""
        if not reason.strip():
            raise RegistryError("a manual promotion needs a --reason")
        record = self.record(version)
        if not record.validation_passed:
            raise RegistryError(
                f"version {version} was trained on data that failed validation: "
                "it cannot be champion"
            )
        previous = self.champion_version()
        self.make_champion(
            version,
            {
                "promotion_decision": "promoted (manual)",
                "promotion_reason": reason,
                "promoted_by": actor,
                "replaced_champion_version": previous or "",
            },
        )
        return self.record(version)

    def rollback(self, reason: str = "rollback") -> tuple[str, str]:
        """Champion back to the previous champion; returns (from, to)."""
        current = self.champion_version()
        if current is None:
            raise RegistryError(f"{self.name} has no champion to roll back")
        history = [v for v in self.history() if v != current]
        if not history:
            raise RegistryError(f"version {current} is the only champion {self.name} has had")
        previous = history[-1]
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.record_decision(
            current,
            {
                "promotion_decision": "rolled back",
                "promotion_reason": f"{reason}: champion returned to version {previous}",
                "rolled_back_at": stamp,
            },
        )
        self.record_decision(previous, {"restored_at": stamp, "restored_reason": reason})
        self.client.set_registered_model_alias(self.name, CHAMPION, previous)
        self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history))
        log.info("%s champion rolled back from %s to %s", self.name, current, previous)
        return current, previous

    # ----------------------------------------------------------------- fetching

    def _download(self, version: str, target: Path, weights: Path) -> str:
        """Download a version into a uniquely named staging folder beside ``target``, then
        rename it into place (concurrent fetches never share a folder); returns the
        weights' sha256."""
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=target.parent))
        try:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{self.name}/{version}",
                dst_path=str(staging),
                tracking_uri=self.tracking_uri,
            )
            found = list((staging / "artifacts").glob("*.pt"))
            if len(found) != 1:
                raise RegistryError(f"version {version} has no weights artifact")
            found[0].rename(staging / "artifacts" / f"{WEIGHTS_ARTIFACT}.pt")
            shutil.rmtree(target, ignore_errors=True)
            try:
                staging.rename(target)
            except OSError:  # another fetch put the same version in place first
                log.info("version %s was fetched concurrently; using that copy", version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return file_sha256(weights)

    def run_artifact(self, version: str, artifact: str, target_dir: Path) -> Path | None:
        """One file the version's training run logged (e.g. ``confusion_matrix.png``),
        downloaded into ``target_dir``; ``None`` when the run has no such file (an imported
        version was never evaluated here)."""
        run_id = self.record(version).run_id
        if not run_id:
            return None
        names = {item.path for item in self.client.list_artifacts(run_id)}
        if artifact not in names:
            return None
        target_dir.mkdir(parents=True, exist_ok=True)
        return Path(self.client.download_artifacts(run_id, artifact, str(target_dir)))

    def fetch(self, reference: str, models_dir: Path) -> ClassifierSource:
        """Download a version (number or alias) and verify its weights' sha256."""
        version = reference if reference.isdigit() else self.alias_version(reference)
        if version is None:
            raise RegistryError(
                f"{self.name} has no {reference!r} version yet: train a model "
                "(`emoreview train --data ...`) first"
            )
        record = self.record(version)
        target = models_dir / self.name / version
        weights = target / "artifacts" / f"{WEIGHTS_ARTIFACT}.pt"
        expected = record.tags.get("weights_sha256")
        digest = file_sha256(weights) if weights.is_file() else None
        if digest != expected:
            digest = self._download(version, target, weights)
        if digest != expected:
            shutil.rmtree(target, ignore_errors=True)  # never leave refused weights around
            raise RegistryError(
                f"{self.name} version {version}: weights sha256 {digest} does not match the "
                f"registered {expected}: refusing them"
            )
        return ClassifierSource(weights=weights, name=self.name, version=version, sha256=digest)


def open_registry(settings: Settings) -> ModelRegistry:
    """The registered model named in settings, on settings' tracking server."""
    return ModelRegistry(connect(settings), settings.registry.model_name, tracking_uri(settings))
