"""How commands print: results on stdout (``--json``: one JSON document), tables with rich;
logs and progress go to stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import pandas as pd

    from components.analysis.answer import Answer

# Piped output (CI logs, files) gets room for the tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


def emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def print_json_text(document: Any) -> None:
    """A JSON document for a person: coloured on a terminal, plain when piped."""
    out.print_json(json.dumps(document, default=str))


def fmt_score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def print_counts(counts: dict[str, int]) -> None:
    table = Table("emotion", "reviews")
    for emotion, n in counts.items():
        table.add_row(emotion, str(n))
    out.print(table)


def report_reviews_file(
    path: Path, frame: pd.DataFrame, headline: str, as_json: bool, **facts: Any
) -> dict[str, Any]:
    """What the reviews commands say after writing a reviews file: its path, rows, sha256
    and the reviews per emotion (``facts`` first), as JSON or a headline and a table."""
    from components.hashing import file_sha256
    from components.reviews.validate import emotion_counts

    summary = {
        "path": str(path),
        "rows": len(frame),
        **facts,
        "sha256": file_sha256(path),
        "per_emotion": emotion_counts(frame),
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(headline)
        print_counts(summary["per_emotion"])
    return summary


def print_answer(answer: Answer, as_json: bool) -> None:
    if as_json:
        emit_json(answer.model_dump(mode="json"))
    else:
        out.print(answer.describe(), highlight=False, soft_wrap=True, markup=False)
