"""Where TorchServe keeps its temporary files: the server's own folder, unless the
workspace is too deep for a Unix socket's path there."""

from __future__ import annotations

from pathlib import Path

from components.settings import Settings
from serving.server import SOCKET_PATH_MAX, TorchServe


def test_the_frontend_gets_the_servers_own_temporary_folder(tmp_path: Path) -> None:
    server = TorchServe(Settings.from_dict({"workspace": str(tmp_path / "ws")}))
    env = server._env()
    assert env["TEMP"] == env["TMPDIR"] == str(server.tmp)


def test_a_workspace_too_deep_for_a_socket_path_leaves_the_frontend_on_tmp(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("TEMP", raising=False)
    deep = tmp_path / ("d" * SOCKET_PATH_MAX) / "ws"
    server = TorchServe(Settings.from_dict({"workspace": str(deep)}))
    env = server._env()
    assert "TEMP" not in env and env["TMPDIR"] == str(server.tmp)
