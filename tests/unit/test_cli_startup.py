"""The command line starts fast and names a user's mistake without importing the stack."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys

import pytest

from components.errors import EmoreviewError, is_user_error
from emoreview.cli.common import UserError

HEAVY = ("torch", "mlflow", "langchain_core", "transformers", "numpy", "pydantic_settings")


def test_help_imports_nothing_heavy() -> None:
    probe = (
        "import sys\n"
        "from emoreview.cli import main\n"
        "sys.argv = ['emoreview', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print('heavy modules:', ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Emotion-driven review analysis" in result.stdout
    assert "[default: ./.emoreview]" in result.stdout  # help text is not eaten as markup
    assert result.stdout.splitlines()[-1] == "heavy modules: "


def _project_error_types() -> list[type]:
    found = []
    for package in ("components", "registry", "serving"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name in {"serving.handler"}:  # needs TorchServe's runtime on the path
                continue
            module = importlib.import_module(info.name)
            for _, value in inspect.getmembers(module, inspect.isclass):
                if value.__module__ == info.name and issubclass(value, Exception):
                    found.append(value)
    return found


@pytest.mark.parametrize("error_type", _project_error_types(), ids=lambda t: t.__qualname__)
def test_every_project_error_belongs_to_the_family(error_type: type) -> None:
    assert issubclass(error_type, EmoreviewError)


def test_user_errors_are_recognised_and_others_are_not() -> None:
    from components.emotions import UnknownEmotionError

    assert is_user_error(UserError("bad flag"))
    assert is_user_error(UnknownEmotionError("joyful"))
    assert not is_user_error(RuntimeError("a bug"))
    assert not is_user_error(KeyError("x"))
