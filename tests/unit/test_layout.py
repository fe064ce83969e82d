"""The library stays a plain library: no orchestration, tracking or serving imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("prefect", "mlflow", "ts", "torchserve", "model_archiver")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "components").rglob("*.py")), ids=lambda p: p.name)
def test_components_import_no_orchestration_tracking_or_serving(path: Path) -> None:
    assert not (_imported_modules(path) & set(FORBIDDEN))


def test_top_level_layout() -> None:
    for name in (
        "flows",
        "serving",
        "components",
        "registry",
        "infra",
        "tests",
        "pyproject.toml",
        "README.md",
    ):
        assert (ROOT / name).exists(), name
