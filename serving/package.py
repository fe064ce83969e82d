"""Model archives for TorchServe, built from the registry's champion and the current index.

One archive per endpoint, all with the same version
``<registry version>.<index stamp>.<settings hash>`` (the registry version first, so the
served version names the registered model; the hash covers every setting that changes an
answer, so a settings change is served as a new version). Each archive folder is a small
workspace: ``settings.json``, ``classifier.json`` (registry name, version, sha256), the
index version it answers from, and the handler. Image archives also carry the registered
weights (``classifier/weights.pt``) and the classifier frozen for ``vision.inference``
from them (``classifier/graph.pt``, made once per packaging): their workers run the graph
without building the network or importing torchvision (cold start, README "Round two").
The archiver runs with a private ``TMPDIR`` (it deletes ``$TMPDIR/<model-name>``) and
writes to a staging folder; archives are moved into the model store only when all are
built. An archive folder that already exists in the store is never deleted or rewritten
(TorchServe may be serving it): the same version means the same content, so it is reused
as it is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from components.hashing import file_sha256, json_sha256
from components.index.store import CURRENT_POINTER, VERSIONS_DIR, current_version, verify_files
from components.settings import Settings
from components.vision.prediction import ClassifierSource
from serving.service import CLASSIFIER_FILE, ENDPOINTS, IMAGE_ENDPOINTS, require_sha256

log = logging.getLogger(__name__)

HANDLER = Path(__file__).with_name("handler.py")
NEEDS_INDEX = ("emotion_reviews", "reviews")
WEIGHTS_FILE = "classifier/weights.pt"
GRAPH_FILE = "classifier/graph.pt"


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
        graph = None
        if any(endpoint in IMAGE_ENDPOINTS for endpoint in missing):
            graph = save_classifier_graph(settings, classifier, work / "graph.pt")
        built = {}
        for endpoint in missing:
            payload = work / "payload" / endpoint
            _write_payload(payload, settings, index_root, index_version, endpoint)
            if endpoint in IMAGE_ENDPOINTS:
                write_classifier_files(payload, classifier, graph)
            else:  # the text endpoints only name the classifier
                write_classifier_files(payload, classifier, graph=None, weights=False)
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


def save_classifier_graph(
    settings: Settings, classifier: ClassifierSource, path: Path
) -> tuple[Path, dict[str, object]] | None:
    """The registered weights frozen for ``vision.inference``, saved to ``path``, and what
    ``classifier.json`` records of them; None in eager mode or when the model runs eager.
    int8 is calibrated on ``classifier.calibration_faces``; without them, or when the
    quantized graph would change predictions, the archive carries the frozen graph."""
    mode = settings.vision.inference
    if mode == "eager":
        return None
    from components.vision.inference import save_frozen_graph
    from components.vision.model import load_weights
    from components.vision.quantization import load_calibration_faces

    recorded_by = f"registry version {classifier.version}"
    require_sha256(classifier.weights, str(classifier.sha256), recorded_by, use="package")
    faces = None
    if mode == "int8" and classifier.calibration_faces is not None:
        try:
            faces = load_calibration_faces(classifier.calibration_faces)
        except ValueError as error:
            log.warning("version %s: %s", classifier.version, error)
    saved = save_frozen_graph(load_weights(classifier.weights), mode, path, calibration=faces)
    if saved is None:
        return None
    return path, {"file": GRAPH_FILE, "sha256": file_sha256(path), **asdict(saved)}


def write_classifier_files(
    payload: Path,
    classifier: ClassifierSource,
    graph: tuple[Path, dict[str, object]] | None,
    weights: bool = True,
) -> None:
    """``classifier.json``, the registered weights (unless ``weights`` is False) and the
    frozen graph with its record (``graph``, from :func:`save_classifier_graph`)."""
    (payload / "classifier").mkdir(parents=True, exist_ok=True)
    info: dict[str, object] = {
        "name": classifier.name,
        "version": classifier.version,
        "sha256": classifier.sha256,
        "weights": WEIGHTS_FILE,
    }
    if weights:
        _link_or_copy(classifier.weights, payload / WEIGHTS_FILE)
    if graph is not None:
        path, record = graph
        _link_or_copy(path, payload / GRAPH_FILE)
        info["frozen_graph"] = record
    (payload / CLASSIFIER_FILE).write_text(json.dumps(info, indent=2))


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # same file system: no copy
    except OSError:
        shutil.copy2(source, target)


def _write_payload(
    payload: Path,
    settings: Settings,
    index_root: Path,
    index_version: str,
    endpoint: str,
) -> None:
    payload.mkdir(parents=True)
    document = settings.model_dump(mode="json")
    document.pop("workspace")  # the unpacked archive is the handler's workspace
    (payload / "settings.json").write_text(json.dumps(document, indent=2))
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
