"""A non-editable install (`pip install .`) carries what serving reads at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("emoreview", "components", "flows", "registry", "serving")

CHECK = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:] = [p for p in sys.path if p not in ("", sys.argv[1])]
from components.settings import Settings
import serving.config, serving.server, serving.package
from serving.server import TorchServe
assert serving.server.__file__.startswith(sys.argv[2]), serving.server.__file__
assert serving.package.HANDLER.is_file(), serving.package.HANDLER
assert serving.config.LOG_CONFIG.is_file(), serving.config.LOG_CONFIG
config = TorchServe(Settings.from_dict({"workspace": sys.argv[3]})).render_config()
print(config.read_text())
"""


def test_a_non_editable_install_can_render_the_serving_config(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in PACKAGES:
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    site = tmp_path / "site"
    installed = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--target", str(site), str(source),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    rendered = subprocess.run(
        [sys.executable, "-c", CHECK, str(REPO), str(site), str(tmp_path / "ws")],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert "inference_address=http://127.0.0.1:8080" in rendered.stdout
    assert "enable_model_api=true" in rendered.stdout
