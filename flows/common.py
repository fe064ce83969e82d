"""What every flow shares: settings at the flow entry, the task runner, content keys,
validation results as Prefect artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from components.hashing import json_sha256
from components.settings import Settings
from components.validation import ValidationReport


def flow_settings(settings: dict[str, Any] | None, config_file: str | None) -> Settings:
    """Build the settings once at the flow entry: a full settings dict (from the CLI) as-is,
    otherwise defaults -> ``config_file`` -> ``EMOREVIEW_*`` environment (deployments)."""
    if settings is not None:
        return Settings.from_dict(settings)
    return Settings.load(Path(config_file) if config_file else None)


def make_task_runner(settings: Settings) -> Any:
    """Threads by default; ``prefect-dask``'s ``DaskTaskRunner`` on a cluster address."""
    if settings.flows.task_runner == "dask":
        from prefect_dask import DaskTaskRunner

        if not settings.flows.dask_address:
            raise ValueError("flows.task_runner is dask but flows.dask_address is not set")
        return DaskTaskRunner(address=settings.flows.dask_address)
    return ThreadPoolTaskRunner(max_workers=settings.flows.max_workers)


def io_task(task: Any, settings: Settings) -> Any:
    """An I/O task with ``flows.io_retries`` retries (its decorator sets the backoff)."""
    return task.with_options(retries=settings.flows.io_retries)


def content_key(*parts: Any) -> str:
    """A cache key from plain values (paths, hashes, settings sections)."""
    return json_sha256(list(parts))


def publish_validation_table(key: str, report: ValidationReport) -> None:
    """A Great Expectations result as a Prefect table artifact (one row per failure or
    warning)."""
    overall = {
        "expectation": "all",
        "column": "",
        "result": "passed" if report.passed else "FAILED",
        "detail": f"{report.successful}/{report.evaluated} expectations, {report.row_count} rows",
    }
    outcomes = [("FAILED", f) for f in report.failures] + [("warning", w) for w in report.warnings]
    rows = [overall] + [
        {
            "expectation": item.expectation,
            "column": item.column or "",
            "result": result,
            "detail": item.describe(),
        }
        for result, item in outcomes
    ]
    create_table_artifact(
        key=key, table=rows, description=f"Great Expectations suite `{report.suite}`"
    )
