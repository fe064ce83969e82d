"""Logging setup for the command line: readable lines on stderr, full lines in a file.

Without a terminal (a log file, CI), progress is logged as one line per stage
(:mod:`components.progress`) and neither the Hugging Face libraries nor MLflow's artifact
downloads draw bars.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_NOISY = ("httpx", "urllib3", "great_expectations", "filelock", "huggingface_hub", "faiss")


def configure_logging(level: str, log_dir: Path | None = None) -> None:
    """Send records to stderr (rich) and, when ``log_dir`` is given, to ``emoreview.log``."""
    from rich.console import Console
    from rich.logging import RichHandler

    if not sys.stderr.isatty():
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        _hf_bars_off_if_imported()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    console = RichHandler(
        console=Console(stderr=True), show_path=False, rich_tracebacks=False, markup=False
    )
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_dir / "emoreview.log", encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(file_handler)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


def _hf_bars_off_if_imported() -> None:
    """huggingface_hub and transformers read ``HF_HUB_DISABLE_PROGRESS_BARS`` once, when
    they are imported: where a program imported them before configuring logging (the
    tests call this command in their own process), switch their bars off directly."""
    if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") != "1":
        return
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
