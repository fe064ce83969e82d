"""TorchServe lifecycle: start, stop, status, and zero-downtime reload of a new bundle.

Start and stop use the same private temporary folder ``serving/tmp`` (TorchServe's pid
file, its workers' sockets, unpacked models) and the workspace's ``serving/`` folder as
working directory (TorchServe writes ``key_file.json`` there). Reload is all or nothing
across the endpoints: every new archive version is registered next to the old one with its
workers ready before any default switches, a failure unregisters what was added, and the
old versions go only after their queues drained, so requests keep being answered
throughout. Keys expire (``serving.token_expiration_min``), renewed by ``/token``.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import requests

from components.errors import EmoreviewError
from components.files import write_text_atomic
from components.settings import Settings
from serving import dead_server
from serving.config import LOG_CONFIG, render_config, server_addresses
from serving.package import ServedBundle, model_store

log = logging.getLogger(__name__)

SOCKET_PATH_MAX = 107  # bytes in a Unix socket's path (the workers': <tmp>/.ts.sock.<port>)
KEY_FILE = "key_file.json"
SERVED_FILE = "served.json"
WORKERS_FILE = "workers.json"  # the served version's worker pids at start or reload


class ServerError(EmoreviewError, RuntimeError):
    """TorchServe could not be started, reached or reconfigured."""


class TorchServe:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.paths.serving_dir.resolve()
        self.tmp = self.folder / "tmp"
        self.logs = self.folder / "logs"
        addresses = server_addresses(settings.serving)
        self.inference_url = addresses["inference_address"]
        self.management_url = addresses["management_address"]
        self.metrics_url = addresses["metrics_address"]
        self._key_lock = threading.Lock()

    # ------------------------------------------------------------------ config and keys

    def render_config(self) -> Path:
        return render_config(self.settings, self.folder)

    def key(self, kind: str = "inference") -> str:
        return self._key_entry(kind)["key"]

    def key_expires(self, kind: str = "inference") -> datetime | None:
        """When the ``kind`` key expires (TorchServe writes it to the key file)."""
        stamp = self._key_entry(kind).get("expiration time")
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None

    def _key_entry(self, kind: str) -> dict[str, Any]:
        path = self.folder / KEY_FILE
        if not path.is_file():
            raise ServerError(f"no {path}: is the server running (`emoreview serve start`)?")
        return json.loads(path.read_text(encoding="utf-8"))[kind]

    def refresh_key(self, kind: str = "inference") -> str:
        """Have TorchServe issue a new ``kind`` key (it rewrites the key file; the old one
        stops working at once). Authorised by the key file's non-expiring ``API`` key."""
        response = requests.post(
            f"{self.management_url}/token",
            params={"type": kind},
            headers={"Authorization": f"Bearer {self.key('API')}"},
            timeout=30,
        )
        if response.status_code >= 400:
            raise ServerError(f"new {kind} key refused: {response.text.strip()[:300]}")
        return self.key(kind)

    def _management_key(self) -> str:
        """The management key, renewed once it is past half its life or expired (TorchServe
        expires it after ``serving.token_expiration_min``). One thread at a time: a renewal
        ends the old key at once, so two must never race (a reload registers in parallel)."""
        with self._key_lock:
            expires = self.key_expires("management")
            if expires is not None:
                left = (expires - datetime.now(UTC)).total_seconds()
                if left < self.settings.serving.token_expiration_min * 30:
                    self.refresh_key("management")
            return self.key("management")

    def _management(self, method: str, path: str, **params: Any) -> requests.Response:
        response = requests.request(
            method,
            f"{self.management_url}{path}",
            params=params or None,
            headers={"Authorization": f"Bearer {self._management_key()}"},
            timeout=self.settings.serving.startup_timeout_s + 30,
        )
        if response.status_code >= 400:
            raise ServerError(
                f"{method} {path} -> {response.status_code}: {response.text.strip()[:500]}"
            )
        return response

    # ------------------------------------------------------------------ lifecycle

    def is_running(self) -> bool:
        """Whether anything answers HTTP on the inference address (/ping needs the token,
        so any answer counts)."""
        try:
            requests.get(f"{self.inference_url}/ping", timeout=2)
        except requests.RequestException:
            return False
        return True

    def start(self, bundle: ServedBundle) -> None:
        if self.is_running():
            raise ServerError(f"a server already answers at {self.inference_url}")
        self.clear_stale_state()
        for folder in (self.tmp, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        (self.folder / KEY_FILE).unlink(missing_ok=True)
        config = self.render_config()
        models = ",".join(f"{ep}={name}" for ep, name in bundle.archives.items())
        command = [
            str(Path(sys.executable).with_name("torchserve")),
            "--start", "--ncs",
            "--model-store", str(model_store(self.settings).resolve()),
            "--ts-config", str(config),
            "--log-config", str(LOG_CONFIG),
            "--models", models,
        ]  # fmt: skip
        # The Java frontend inherits the launcher's stdout: send it to a file, not a pipe.
        console = self.logs / "console.log"
        with console.open("ab") as sink:
            result = subprocess.run(
                command,
                cwd=self.folder,
                env=self._env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                timeout=120,
                check=False,
            )
        if result.returncode != 0:
            raise ServerError(
                f"torchserve --start failed (exit {result.returncode}); see {console}"
            )
        self.wait_ready(bundle)
        self._save_served(bundle)
        self._save_workers(bundle)

    def wait_ready(self, bundle: ServedBundle, endpoints: Iterable[str] | None = None) -> None:
        """Until each endpoint of ``bundle`` (or of ``endpoints``) has a READY worker."""
        deadline = time.monotonic() + self.settings.serving.startup_timeout_s
        pending = set(bundle.archives if endpoints is None else endpoints)
        while time.monotonic() < deadline:
            if self.is_running() and (self.folder / KEY_FILE).is_file():
                pending = {ep for ep in pending if not self._ready(ep, bundle.version)}
                if not pending:
                    return
            time.sleep(0.1)  # a ready worker is seen 0.05 s late on average
        raise ServerError(
            f"models {sorted(pending)} were not ready within "
            f"{self.settings.serving.startup_timeout_s} s; see {self.logs}/model_log.log"
        )

    def _ready(self, endpoint: str, version: str) -> bool:
        try:
            described = self._management("GET", f"/models/{endpoint}/{version}").json()
        except (ServerError, requests.RequestException, ValueError):
            return False
        workers = described[0].get("workers", []) if described else []
        return any(worker.get("status") == "READY" for worker in workers)

    def stale_pid(self) -> int | None:
        return dead_server.stale_pid(self.tmp)

    def orphan_workers(self) -> list[psutil.Process]:
        return dead_server.orphan_workers(self.tmp)

    def clear_stale_state(self) -> list[str]:
        return dead_server.clear_stale_state(self.tmp)

    def stop(self) -> bool:
        """Stop the server; False when none was running (what a dead one left is cleared)."""
        if not self.is_running():
            self.clear_stale_state()
            return False
        with (self.logs / "console.log").open("ab") as sink:
            subprocess.run(
                [str(Path(sys.executable).with_name("torchserve")), "--stop"],
                cwd=self.folder,
                env=self._env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        deadline = time.monotonic() + 60
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.5)
        if self.is_running():
            raise ServerError("torchserve did not stop within 60 s")
        dead_server.clear_after_stop(self.tmp)  # a start then finds nothing to clear
        return True

    def status(self) -> dict[str, Any]:
        """What runs: models, versions and workers, and every worker TorchServe restarted
        since the served version started (its pid changed). When nothing answers, the pid
        of a frontend that died without ``serve stop`` (``frontend_died``)."""
        if not self.is_running():
            return {
                "running": False,
                "inference_url": self.inference_url,
                "frontend_died": self.stale_pid(),
            }
        models = {}
        for entry in self._management("GET", "/models").json().get("models", []):
            name = entry["modelName"]
            described = self._management("GET", f"/models/{name}/all").json()
            models[name] = [
                {
                    "version": d["modelVersion"],
                    "default": d.get("isDefaultVersion", False),
                    "workers": [w.get("status") for w in d.get("workers", [])],
                    "worker_pids": [w.get("pid") for w in d.get("workers", [])],
                    "batch_size": d.get("batchSize"),
                    "max_batch_delay": d.get("maxBatchDelay"),
                }
                for d in described
            ]
        served = self.served()
        return {
            "running": True,
            "inference_url": self.inference_url,
            "management_url": self.management_url,
            "metrics_url": f"{self.metrics_url}/metrics",
            "key_file": str(self.folder / KEY_FILE),
            "served": served,
            "models": models,
            "worker_restarts": self._restarts(served, models),
        }

    def _restarts(
        self, served: ServedBundle | None, models: dict[str, list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        path = self.folder / WORKERS_FILE
        if served is None or not path.is_file():
            return []
        return dead_server.worker_restarts(json.loads(path.read_text("utf-8")), served, models)

    def _save_workers(self, bundle: ServedBundle) -> None:
        pids = {}
        for endpoint in bundle.archives:
            described = self._management("GET", f"/models/{endpoint}/{bundle.version}").json()
            pids[endpoint] = [w.get("pid") for w in described[0].get("workers", [])]
        document = {"version": bundle.version, "workers": pids}
        write_text_atomic(self.folder / WORKERS_FILE, json.dumps(document, indent=2))

    def reload(self, bundle: ServedBundle) -> ServedBundle | None:
        """Swap every endpoint to ``bundle`` without downtime, all or nothing; returns the
        old bundle.

        Every new version is registered first, all at once (their workers loaded and
        ready); only when all are, the defaults switch, endpoint after endpoint within
        milliseconds. Any failure before that unregisters what was added and leaves every
        endpoint, and ``served.json``, on the old version. The old versions are
        unregistered after their queues drained and ``serving.drain_seconds`` passed.
        """
        old = self.served()
        if old is not None and old.version == bundle.version:
            log.info("version %s is already served", bundle.version)
            return old
        # Versions left registered by an interrupted reload are reused, never unregistered.
        present = {ep for ep in bundle.archives if self._registered(ep, bundle.version)}
        try:
            self._register(bundle, [ep for ep in bundle.archives if ep not in present])
            for endpoint in bundle.archives:
                self._management("PUT", f"/models/{endpoint}/{bundle.version}/set-default")
        except (ServerError, requests.RequestException) as error:
            added = [ep for ep in bundle.archives if ep not in present]
            self._undo_reload(bundle, old, added)
            kept = f"every endpoint still serves {old.version}" if old else "nothing was served"
            raise ServerError(f"reload to {bundle.version} failed ({kept}): {error}") from error
        self._save_served(bundle)
        self._save_workers(bundle)
        if old is not None:
            retiring = [endpoint for endpoint in old.archives if endpoint in bundle.archives]
            self._drain(retiring, old.version)
            for endpoint in retiring:
                self._management("DELETE", f"/models/{endpoint}/{old.version}")
        log.info("serving version %s (was %s)", bundle.version, old.version if old else None)
        return old

    def _register(self, bundle: ServedBundle, endpoints: list[str]) -> None:
        """Register ``endpoints``' new versions side by side, their workers loading at once
        as at start (one after another, a reload of four endpoints took 13 s instead of 7 on
        2 cores), then wait until each has a READY worker. Every registration has ended,
        answered or failed, before the first failure is raised, so an undo finds them all."""
        with ThreadPoolExecutor(max_workers=max(len(endpoints), 1)) as pool:
            registrations = [
                pool.submit(
                    self._management,
                    "POST",
                    "/models",
                    url=bundle.archives[endpoint],
                    synchronous="true",
                    initial_workers=str(self.settings.serving.workers),
                )
                for endpoint in endpoints
            ]
        failures = [error for r in registrations if (error := r.exception()) is not None]
        if failures:
            raise failures[0]
        self.wait_ready(bundle, endpoints)  # a sync register answers before READY

    def _registered(self, endpoint: str, version: str) -> bool:
        try:
            self._management("GET", f"/models/{endpoint}/{version}")
        except ServerError:
            return False
        return True

    def _undo_reload(
        self, bundle: ServedBundle, old: ServedBundle | None, added: list[str]
    ) -> None:
        """Defaults back to the old version, then the added versions unregistered."""
        for endpoint in bundle.archives:
            if old is not None and endpoint in old.archives:
                try:
                    self._management("PUT", f"/models/{endpoint}/{old.version}/set-default")
                except (ServerError, requests.RequestException) as error:
                    log.error(
                        "could not restore %s to version %s: %s", endpoint, old.version, error
                    )
        for endpoint in added:  # a failed registration can leave its version registered
            if not self._registered(endpoint, bundle.version):
                continue
            try:
                self._management("DELETE", f"/models/{endpoint}/{bundle.version}")
            except (ServerError, requests.RequestException) as error:
                log.error("could not unregister %s version %s: %s", endpoint, bundle.version, error)

    def _drain(self, endpoints: list[str], version: str) -> None:
        """Wait until the old versions hold no request, then the grace period. TorchServe
        drops a running batch on unregister, so ask each for a description queued behind it."""
        deadline = time.monotonic() + self.settings.serving.response_timeout_s
        while time.monotonic() < deadline:
            pending = 0
            for endpoint in endpoints:
                described = self._management("GET", f"/models/{endpoint}/{version}").json()
                pending += int(described[0].get("jobQueueStatus", {}).get("pendingRequests", 0))
            if pending == 0:
                break
            time.sleep(0.2)
        for endpoint in endpoints * self.settings.serving.workers:
            try:
                self._management("GET", f"/models/{endpoint}/{version}", customized="true")
            except (ServerError, requests.RequestException) as error:
                log.warning("%s %s did not answer its drain: %s", endpoint, version, error)
        time.sleep(self.settings.serving.drain_seconds)

    def served(self) -> ServedBundle | None:
        path = self.folder / SERVED_FILE
        if not path.is_file():
            return None
        return ServedBundle(**json.loads(path.read_text(encoding="utf-8")))

    def _save_served(self, bundle: ServedBundle) -> None:
        write_text_atomic(self.folder / SERVED_FILE, json.dumps(asdict(bundle), indent=2))

    def _env(self) -> dict[str, str]:
        tmp = str(self.tmp.resolve())
        # TEMP: the frontend's java.io.tmpdir (sockets, unpacked models; /tmp if too deep).
        fits = len(os.fsencode(f"{tmp}/.ts.sock.65535")) <= SOCKET_PATH_MAX
        return {
            **os.environ,
            **({"TEMP": tmp} if fits else {}),
            "TMPDIR": tmp,
            "LOG_LOCATION": str(self.logs.resolve()),
            "METRICS_LOCATION": str(self.logs.resolve()),
            "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
        }
