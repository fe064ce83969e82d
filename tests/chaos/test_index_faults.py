"""Faults of an index build, each a real ``emoreview index build`` process: SIGKILLed while
embedding, while writing its staging folder, and between its rename and the pointer
switch; a file limit hit while writing (the disk "fills"); a published file corrupted or
truncated. The previous version must still load and package, and the next build must
succeed and clear the leftovers."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from components.index.store import (
    INDEX_FILE,
    STAGING_PREFIX,
    VERSIONS_DIR,
    current_version,
    list_versions,
    load_index,
)
from components.settings import Settings
from tests.chaos.conftest import assert_nothing_lost, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

# Runs `emoreview index build` in this process after arming one kill point: the process
# SIGKILLs itself when the build reaches it (nothing is patched but the trigger).
KILLED_BUILD = textwrap.dedent(
    """
    import os, signal, sys
    phase = sys.argv[1]

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    if phase == "embedding":
        from components.index import embedder
        embedder.SentenceTransformerEmbedder.encode = die
    elif phase == "staging":
        import pandas
        to_parquet = pandas.DataFrame.to_parquet
        def write(self, path, *args, **kwargs):
            if "{staging}" in str(path):
                die()
            return to_parquet(self, path, *args, **kwargs)
        pandas.DataFrame.to_parquet = write
    elif phase == "pointer":
        from components.index import store
        write_text = store.write_text_atomic
        def pointer(path, text):
            if path.name == store.CURRENT_POINTER:
                die()
            return write_text(path, text)
        store.write_text_atomic = pointer
    sys.argv = ["emoreview", *sys.argv[2:]]
    from emoreview.cli import main
    main()
    """
).replace("{staging}", STAGING_PREFIX)


def emoreview(workspace: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    return subprocess.run(
        [sys.executable, "-m", "emoreview", "--workspace", str(workspace), *args],
        capture_output=True, text=True, env=env, timeout=600, check=False, **kwargs,
    )  # fmt: skip


def killed_build(workspace: Path, phase: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    return subprocess.run(
        [sys.executable, "-c", KILLED_BUILD, phase, "--workspace", str(workspace), "index",
         "build"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A workspace with validated reviews, one published index version and a champion."""
    from tests.integration.test_serving import register_random_model

    ws = tmp_path_factory.mktemp("chaos-index") / "ws"
    for command in (
        ("reviews", "generate", "--per-emotion", "40"),
        ("reviews", "validate"),
        ("index", "build"),
    ):
        done = emoreview(ws, *command)
        assert done.returncode == 0, done.stderr
    register_random_model(Settings.from_dict({"workspace": str(ws)}), 5, ws.parent)
    return ws


def leftovers(root: Path) -> list[str]:
    return [p.name for p in (root / VERSIONS_DIR).iterdir() if p.name.startswith(STAGING_PREFIX)]


def packages(workspace: Path) -> bool:
    """The current index (and the champion) package into TorchServe archives."""
    return emoreview(workspace, "serve", "package").returncode == 0


PHASES = {
    "embedding": "while embedding",
    "staging": "while writing staging",
    "pointer": "between rename and pointer switch",
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_index_build_killed(workspace: Path, phase: str, fault_report) -> None:
    row = fault_report(3, f"index build SIGKILLed {PHASES[phase]}")
    settings = Settings.from_dict({"workspace": str(workspace)})
    root = settings.paths.index_root
    before = snapshot(settings)
    killed = killed_build(workspace, phase)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    row.check("the build died by SIGKILL")
    assert current_version(root) == before.index_version
    assert load_index(root).version == before.index_version
    assert packages(workspace)
    row.check("the previous version is current, loads and packages")
    if phase == "staging":
        assert leftovers(root), "the kill left no staging folder: it hit the wrong phase"
    orphan = None
    if phase == "pointer":
        orphan = list_versions(root)[-1]
        assert orphan > before.index_version, "the kill came before the rename"

    rebuilt = emoreview(workspace, "index", "build", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    new = json.loads(rebuilt.stdout)["version"]
    assert current_version(root) == new and list_versions(root)[-1] == new
    assert not leftovers(root)
    assert orphan not in list_versions(root), "the never-current version was left behind"
    row.check("the next build succeeds and clears the leftovers")
    for what in assert_nothing_lost(settings, before):
        row.check(what)


def test_disk_fills_during_index_build(workspace: Path, fault_report) -> None:
    """RLIMIT_FSIZE below the index file's size: the write fails with EFBIG, as on a full
    disk (SIGXFSZ ignored, so the process sees the error instead of dying)."""
    row = fault_report(6, "disk full during an index build (RLIMIT_FSIZE)")
    settings = Settings.from_dict({"workspace": str(workspace)})
    root = settings.paths.index_root
    before = snapshot(settings)
    version_dir = root / VERSIONS_DIR / before.index_version
    index_bytes = (version_dir / INDEX_FILE).stat().st_size
    limit = index_bytes // 2

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = emoreview(workspace, "index", "build", preexec_fn=small_disk)
    assert failed.returncode == 1, (failed.returncode, failed.stderr[-3000:])
    message = failed.stderr.strip().splitlines()[-1]
    assert "the disk is full" in message and "Traceback" not in failed.stderr, failed.stderr
    row.check(f"a clear one-line error ({message[:60]}…), no traceback")
    assert current_version(root) == before.index_version
    assert list_versions(root)[-1] == before.index_version, "a partial version is visible"
    assert not leftovers(root), "staging was not cleaned"
    row.check("no partial version, staging cleaned")
    again = emoreview(workspace, "index", "build")
    assert again.returncode == 0, again.stderr
    row.check("with space again the build succeeds")
    for what in assert_nothing_lost(settings, before):
        row.check(what)


def test_published_file_damaged(workspace: Path, fault_report) -> None:
    row = fault_report(4, "a published index file corrupted, then truncated")
    settings = Settings.from_dict({"workspace": str(workspace)})
    root = settings.paths.index_root
    assert emoreview(workspace, "index", "build").returncode == 0  # a good older version
    good = current_version(root)
    assert emoreview(workspace, "index", "build").returncode == 0
    damaged = current_version(root)
    target = root / VERSIONS_DIR / damaged / INDEX_FILE
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(Exception, match=INDEX_FILE):
        load_index(root)
    row.check("load refuses the corrupted file, naming it")
    refused = emoreview(workspace, "serve", "package")
    assert refused.returncode == 2 and INDEX_FILE in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    row.check("packaging for `serve reload` refuses it in one line")
    target.write_bytes(bytes(data[: len(data) // 3]))  # and truncated
    with pytest.raises(Exception, match=INDEX_FILE):
        load_index(root)
    rolled = emoreview(workspace, "index", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert current_version(root) == good and load_index(root).version == good
    assert packages(workspace)
    row.check("`index rollback` returns current to the previous good version, which packages")
    before = snapshot(settings)
    for what in assert_nothing_lost(settings, before):
        row.check(what)
