"""TorchServe's runtime configuration, rendered for one workspace: ``config.properties``
from the shipped ``torchserve.properties`` with the ``serving`` settings' addresses, ports
and limits, and the log configuration ``log4j2.xml`` (each line once, none per request).
Both ship as package data (pyproject), so a non-editable install can serve too."""

from __future__ import annotations

from pathlib import Path

from components.files import write_text_atomic
from components.settings import ServingSettings, Settings
from serving.package import model_store

BASE_CONFIG = Path(__file__).with_name("torchserve.properties")
LOG_CONFIG = Path(__file__).with_name("log4j2.xml")


def server_addresses(serving: ServingSettings) -> dict[str, str]:
    """The inference, management and metrics URLs of the configured server."""
    return {
        f"{api}_address": f"http://{serving.host}:{port}"
        for api, port in (
            ("inference", serving.inference_port),
            ("management", serving.management_port),
            ("metrics", serving.metrics_port),
        )
    }


def render_config(settings: Settings, folder: Path) -> Path:
    """``folder/config.properties``: the shipped file, each setting the ``serving`` section
    decides replaced in place (or added), every other line as written."""
    serving = settings.serving
    overrides = {
        **server_addresses(serving),
        "grpc_inference_address": serving.host,
        "grpc_management_address": serving.host,
        "grpc_inference_port": str(serving.grpc_inference_port),
        "grpc_management_port": str(serving.grpc_management_port),
        "initial_worker_port": str(serving.initial_worker_port),
        "default_workers_per_model": str(serving.workers),
        "max_request_size": str(serving.max_request_mb * 1024 * 1024),
        "default_response_timeout": str(serving.response_timeout_s),
        "token_expiration_min": str(serving.token_expiration_min),
        "model_store": str(model_store(settings).resolve()),
    }
    lines, seen = [], set()
    for line in BASE_CONFIG.read_text(encoding="utf-8").splitlines():
        key = line.split("=", 1)[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in overrides:
            lines.append(f"{key}={overrides[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{k}={v}" for k, v in overrides.items() if k not in seen]
    path = folder / "config.properties"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
