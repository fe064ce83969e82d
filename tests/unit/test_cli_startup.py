"""The command line starts fast and names a user's mistake without importing the stack."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from emoreview.cli import USER_ERROR_TYPES, UserError, is_user_error


def test_help_imports_neither_torch_nor_mlflow_nor_langchain() -> None:
    probe = (
        "import sys\n"
        "from emoreview.cli import main\n"
        "sys.argv = ['emoreview', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'mlflow', 'langchain_core', 'transformers') "
        "if m in sys.modules]\n"
        "print('heavy modules:', ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert "Emotion-driven review analysis" in result.stdout
    assert result.stdout.splitlines()[-1] == "heavy modules: "


@pytest.mark.parametrize("module_name, type_name", USER_ERROR_TYPES)
def test_every_listed_user_error_type_exists(module_name: str, type_name: str) -> None:
    error_type = getattr(importlib.import_module(module_name), type_name)
    assert issubclass(error_type, Exception)


def test_user_errors_are_recognised_and_others_are_not() -> None:
    from components.emotions import UnknownEmotionError

    assert is_user_error(UserError("bad flag"))
    assert is_user_error(UnknownEmotionError("joyful"))
    assert not is_user_error(RuntimeError("a bug"))
    assert not is_user_error(KeyError("x"))
