"""The real ``emoreview`` command, run by the tests.

``run_cli`` calls the console script's own entry point (``emoreview.cli.main``) in the test
process with its argv, stdout and stderr: the same argument parsing, settings, exit codes
and messages as a shell, without paying a fresh interpreter's imports (torch,
transformers, MLflow, Great Expectations: 3-10 s) on every one of the suite's calls. An
exception that the command lets escape is raised in the test, as the traceback it is.
``run_cli_process`` runs ``python -m emoreview`` as its own process, for the tests of the
process itself.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock


def _argv(workspace: Path, args: tuple[str, ...]) -> list[str]:
    return ["--workspace", str(workspace), *args]


def run_cli(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    from emoreview.cli import main

    argv = ["emoreview", *_argv(workspace, args)]
    stdout, stderr = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    code = 0
    try:
        with mock.patch.object(sys, "argv", argv), redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                main()
            except SystemExit as done:
                if isinstance(done.code, str):  # sys.exit("message"): the message, code 1
                    stderr.write(done.code + "\n")
                    code = 1
                else:
                    code = done.code or 0
    finally:
        # The command set up logging for itself (a rich handler, its workspace's log file):
        # give the test process its own back.
        for handler in root.handlers:
            if handler not in handlers:
                handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


def run_cli_process(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    return subprocess.run(
        [sys.executable, "-m", "emoreview", *_argv(workspace, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
