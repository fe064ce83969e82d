"""The library stays a plain library: no orchestration, tracking or serving imports."""

from __future__ import annotations

import ast
import re
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


def test_infra_prefect_yaml_is_generated_from_the_declared_schedules() -> None:
    """The crons live in settings and the deployments in flows/deployments.py; the file a
    team runs `prefect deploy --all` on must say the same."""
    from importlib.metadata import version

    from components.settings import Settings
    from flows.deployments import prefect_yaml

    expected = prefect_yaml(Settings.from_dict({}), version("prefect"))
    actual = (ROOT / "infra" / "prefect.yaml").read_text(encoding="utf-8")
    assert actual == expected, "regenerate: emoreview flows prefect-yaml > infra/prefect.yaml"


PACKAGES = ("components", "registry", "serving", "flows", "emoreview", "benchmarks", "tests")
LONG_MODULE_LINES = 400


@pytest.mark.parametrize(
    "path",
    sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_a_long_module_says_why_at_its_top(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if text.count("\n") <= LONG_MODULE_LINES:
        return
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert "Longer than 400 lines" in docstring, f"{path.name}: split it, or say why not"


def test_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    words = set(re.findall(r"[a-z_]+", layout))
    missing = [
        str(path.relative_to(ROOT))
        for package in ("components", "registry", "serving", "flows", "emoreview", "benchmarks")
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.stem.startswith("__") and path.stem not in words
    ]
    assert missing == [], "README's Layout section does not name these modules"
