"""Model archives for TorchServe, built from the registry's champion and the current index.

One archive per endpoint, all with the same version
``<registry version>.<index stamp>.<settings hash>`` (the registry version first, so the
served version names the registered model; the hash covers every setting that changes an
answer, so a settings change is served as a new version). Each
archive folder is a small workspace: ``settings.json``, ``classifier/weights.pt`` with
``classifier.json`` (registry name, version, sha256), the index version it answers from,
and the handler. The archiver runs with a private ``TMPDIR`` (it deletes
``$TMPDIR/<model-name>``) and writes to a staging folder; archives are moved into the
model store only when all are built. An archive folder that already exists in the store
is never deleted or rewritten (TorchServe may be serving it): the same version means the
same content, so it is reused as it is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from components.hashing import json_sha256
from components.index.store import CURRENT_POINTER, VERSIONS_DIR, current_version, verify_files
from components.settings import Settings
from components.vision.prediction import ClassifierSource
from serving.service import CLASSIFIER_FILE, ENDPOINTS, IMAGE_ENDPOINTS

log = logging.getLogger(__name__)

HANDLER = Path(__file__).with_name("handler.py")
NEEDS_INDEX = ("emotion_reviews", "reviews")


@dataclass(frozen=True)
class ServedBundle:
    version: str
    archives: dict[str, str]  # endpoint -> archive folder name in the model store
    classifier_version: str
    index_version: str


def model_store(settings: Settings) -> Path:
    return settings.paths.serving_dir / "model-store"


SERVED_SETTINGS = ("embedder", "index", "retrieval", "vision", "nlp", "serving")


def settings_hash(settings: Settings) -> str:
    """The digest of every settings section that changes what an endpoint answers."""
    return json_sha256(
        {name: getattr(settings, name).model_dump(mode="json") for name in SERVED_SETTINGS}
    )


def bundle_version(classifier_version: str, index_version: str, settings: Settings) -> str:
    """``<registry version>.<index stamp>.<settings digest>``, digits only (TorchServe's
    version strings); any change of model, index or answer settings gives a new one."""
    stamp = "".join(ch for ch in index_version.split("-")[0] if ch.isdigit())[:14]
    digest = int(settings_hash(settings)[:8], 16)
    return f"{classifier_version}.{stamp}.{digest:010d}"


def archive_name(endpoint: str, version: str) -> str:
    return f"{endpoint}-v{version}"


def model_config(endpoint: str, settings: Settings) -> dict[str, object]:
    """model-config.yaml: workers, dynamic batching (image models), timeouts."""
    serving = settings.serving
    return {
        "minWorkers": serving.workers,
        "maxWorkers": serving.workers,
        # Free-text questions are answered one by one; batching would only add delay.
        "batchSize": 1 if endpoint == "reviews" else serving.batch_size,
        "maxBatchDelay": serving.max_batch_delay_ms,
        "responseTimeout": serving.response_timeout_s,
        "startupTimeout": serving.startup_timeout_s,
        "emoreview": {"endpoint": endpoint},
    }


def package_archives(
    settings: Settings, classifier: ClassifierSource, endpoints: tuple[str, ...] = ENDPOINTS
) -> ServedBundle:
    """Build one archive per endpoint into the model store; returns what was built."""
    if classifier.version is None or classifier.sha256 is None:
        raise ValueError("archives are built from a registered model version, not a loose file")
    index_root = settings.paths.index_root
    index_version = current_version(index_root)
    version = bundle_version(classifier.version, index_version, settings)
    store = model_store(settings)
    store.mkdir(parents=True, exist_ok=True)
    names = {endpoint: archive_name(endpoint, version) for endpoint in endpoints}
    missing = [endpoint for endpoint in endpoints if not (store / names[endpoint]).is_dir()]
    if not missing:
        log.info("archives of version %s are already in %s", version, store)
        return ServedBundle(version, names, classifier.version, index_version)
    verify_files(index_root / VERSIONS_DIR / index_version)  # never package a damaged index
    work = settings.paths.serving_dir / f".package-{uuid.uuid4().hex[:8]}"
    tmp = work / "tmp"
    tmp.mkdir(parents=True)
    try:
        built = {}
        for endpoint in missing:
            payload = work / "payload" / endpoint
            _write_payload(payload, settings, classifier, index_root, index_version, endpoint)
            config = work / f"{endpoint}-config.yaml"
            config.write_text(yaml.safe_dump(model_config(endpoint, settings)))
            _archive(endpoint, version, payload, config, work / "out", tmp)
            built[endpoint] = work / "out" / endpoint
        for endpoint, folder in built.items():
            target = store / names[endpoint]
            if not target.exists():  # never replace a folder TorchServe may be serving
                folder.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("packaged %s version %s into %s", ", ".join(missing), version, store)
    return ServedBundle(version, names, classifier.version, index_version)


def _write_payload(
    payload: Path,
    settings: Settings,
    classifier: ClassifierSource,
    index_root: Path,
    index_version: str,
    endpoint: str,
) -> None:
    payload.mkdir(parents=True)
    document = settings.model_dump(mode="json")
    document.pop("workspace")  # the unpacked archive is the handler's workspace
    (payload / "settings.json").write_text(json.dumps(document, indent=2))
    (payload / "classifier").mkdir()
    weights = payload / "classifier" / "weights.pt"
    if endpoint in IMAGE_ENDPOINTS:
        try:
            os.link(classifier.weights, weights)  # same file system: no copy
        except OSError:
            shutil.copy2(classifier.weights, weights)
    info = {
        "name": classifier.name,
        "version": classifier.version,
        "sha256": classifier.sha256,
        "weights": "classifier/weights.pt",
    }
    (payload / CLASSIFIER_FILE).write_text(json.dumps(info, indent=2))
    if endpoint in NEEDS_INDEX:
        target = payload / "indexes" / "reviews"
        shutil.copytree(
            index_root / VERSIONS_DIR / index_version, target / VERSIONS_DIR / index_version
        )
        (target / CURRENT_POINTER).write_text(index_version + "\n")


def _archive(
    endpoint: str, version: str, payload: Path, config: Path, out: Path, tmp: Path
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("torch-model-archiver")),
        "--model-name", endpoint,
        "--version", version,
        "--handler", str(HANDLER),
        "--extra-files", str(payload),
        "--config-file", str(config),
        "--export-path", str(out),
        "--archive-format", "no-archive",
        "--force",
    ]  # fmt: skip
    result = subprocess.run(
        command, env={**os.environ, "TMPDIR": str(tmp)}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"torch-model-archiver failed for {endpoint}: {result.stderr.strip()}")
