"""From the registry's champion and the current index to a serving TorchServe."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from components.settings import Settings
from components.vision.prediction import ClassifierSource
from components.vision.quantization import CALIBRATION_FILE
from registry.models import open_registry
from serving.package import ServedBundle, package_archives
from serving.server import TorchServe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    bundle: ServedBundle
    previous: ServedBundle | None
    action: str  # "started", "reloaded" or "unchanged"


def champion_source(settings: Settings) -> ClassifierSource:
    """The champion's verified weights; for ``vision.inference: int8`` also the validation
    faces its training run stored (None for a version without them)."""
    registry = open_registry(settings)
    source = registry.fetch("champion", settings.paths.models_dir)
    if settings.vision.inference != "int8":
        return source
    cached = source.weights.parent / CALIBRATION_FILE
    faces = (
        cached
        if cached.is_file()
        else registry.run_artifact(str(source.version), CALIBRATION_FILE, cached.parent)
    )
    return replace(source, calibration_faces=faces)


def package_champion(settings: Settings) -> ServedBundle:
    """Archives for the champion (never a loose file) and the current index version."""
    return package_archives(settings, champion_source(settings))


def deploy_champion(settings: Settings, start: bool = True) -> Deployment:
    """Serve the champion + current index: start the server, or swap a running one."""
    server = TorchServe(settings)
    bundle = package_champion(settings)
    if not server.is_running():
        if not start:
            return Deployment(bundle, None, "packaged")
        server.start(bundle)
        return Deployment(bundle, None, "started")
    previous = server.served()
    if previous is not None and previous.version == bundle.version:
        return Deployment(bundle, previous, "unchanged")
    server.reload(bundle)
    return Deployment(bundle, previous, "reloaded")
