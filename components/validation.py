"""Great Expectations plumbing shared by every data suite (reviews, image manifests).

A suite is a list of GX expectations run on one DataFrame; the result comes back as a small
typed :class:`ValidationReport`. :func:`raise_for_failures` turns a failed report into one
:class:`DataValidationError` whose message names each failed expectation, its column and a
few offending values. Data Docs can be written into a folder for people to browse.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from components.errors import EmoreviewError

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5


class FailedExpectation(BaseModel):
    """One expectation that did not hold."""

    expectation: str = Field(
        description="GX expectation type, e.g. expect_column_values_to_be_unique"
    )
    column: str | None = None
    unexpected_count: int | None = None
    examples: list[Any] = Field(default_factory=list, description="A few offending values")
    detail: str = ""

    def describe(self) -> str:
        where = f" on column {self.column!r}" if self.column else ""
        count = f" ({self.unexpected_count} bad rows)" if self.unexpected_count else ""
        examples = f", e.g. {self.examples}" if self.examples else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.expectation}{where}{count}{examples}{detail}"


class ValidationReport(BaseModel):
    """The outcome of running a suite on one dataset."""

    suite: str
    passed: bool
    row_count: int
    evaluated: int
    successful: int
    failures: list[FailedExpectation] = Field(default_factory=list)
    warnings: list[FailedExpectation] = Field(
        default_factory=list,
        description="Expectations of severity 'warning' that did not hold: reported, never failing",
    )
    statistics: dict[str, Any] = Field(default_factory=dict)
    data_docs: str | None = None

    def failure_summary(self) -> str:
        return "; ".join(f.describe() for f in self.failures)


class DataValidationError(EmoreviewError, ValueError):
    """Raised when data fails its suite; carries the full report."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(
            f"{report.suite} validation failed ({len(report.failures)} of {report.evaluated} "
            f"expectations): {report.failure_summary()}"
        )
        self.report = report


def raise_for_failures(report: ValidationReport) -> ValidationReport:
    """Return ``report`` when it passed; raise :class:`DataValidationError` otherwise."""
    if not report.passed:
        raise DataValidationError(report)
    return report


def run_suite(
    suite_name: str,
    frame: pd.DataFrame,
    expectations: list[Any],
    statistics: dict[str, Any] | None = None,
    docs_dir: Path | None = None,
) -> ValidationReport:
    """Run GX ``expectations`` on ``frame``; optionally write Data Docs under ``docs_dir``."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # GX prints bits of its state to stdout; keep stdout clean for `--json` consumers.
    with contextlib.redirect_stdout(sys.stderr):
        return _run_suite(suite_name, frame, expectations, statistics, docs_dir)


def _run_suite(
    suite_name: str,
    frame: pd.DataFrame,
    expectations: list[Any],
    statistics: dict[str, Any] | None,
    docs_dir: Path | None,
) -> ValidationReport:
    import great_expectations as gx

    if docs_dir is None:
        context = gx.get_context(mode="ephemeral")
    else:
        docs_dir.mkdir(parents=True, exist_ok=True)
        context = gx.get_context(mode="file", project_root_dir=str(docs_dir))
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]

    source = context.data_sources.add_or_update_pandas(name=suite_name)
    asset = next((a for a in source.assets if a.name == suite_name), None)
    if asset is None:
        asset = source.add_dataframe_asset(name=suite_name)
    batch_definition = next(
        (b for b in asset.batch_definitions if b.name == "whole"), None
    ) or asset.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
    )
    docs_index: str | None = None
    if docs_dir is None:
        result = definition.run(
            batch_parameters={"dataframe": frame}, result_format={"result_format": "SUMMARY"}
        )
    else:
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=suite_name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
                result_format={"result_format": "SUMMARY"},
            )
        )
        checkpoint_result = checkpoint.run(batch_parameters={"dataframe": frame})
        result = next(iter(checkpoint_result.run_results.values()))
        docs_index = _data_docs_index(context)
    return _to_report(suite_name, frame, result, statistics or {}, docs_index)


def _data_docs_index(context: Any) -> str | None:
    sites = context.get_docs_sites_urls()
    return sites[0].get("site_url") if sites else None


def _to_report(
    suite_name: str,
    frame: pd.DataFrame,
    result: Any,
    statistics: dict[str, Any],
    docs_index: str | None,
) -> ValidationReport:
    failures: list[FailedExpectation] = []
    warnings: list[FailedExpectation] = []
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        detail = ""
        exception = item.exception_info or {}
        if exception.get("raised_exception"):
            detail = str(exception.get("exception_message", "")).splitlines()[0]
        outcome = item.result or {}
        examples = outcome.get("partial_unexpected_list") or []
        if not examples and "observed_value" in outcome:
            examples = [outcome["observed_value"]]
        severity = str(getattr(getattr(config, "severity", None), "value", "critical"))
        (warnings if severity != "critical" else failures).append(
            FailedExpectation(
                expectation=config.type,
                column=config.kwargs.get("column"),
                unexpected_count=outcome.get("unexpected_count"),
                examples=[_jsonable(v) for v in list(dict.fromkeys(map(str, examples)))][
                    :MAX_EXAMPLES
                ],
                detail=detail or (config.meta or {}).get("explain", ""),
            )
        )
    stats = result.statistics
    report = ValidationReport(
        suite=suite_name,
        passed=not failures,
        row_count=len(frame),
        evaluated=int(stats.get("evaluated_expectations", 0)),
        successful=int(stats.get("successful_expectations", 0)),
        failures=failures,
        warnings=warnings,
        statistics=statistics,
        data_docs=docs_index,
    )
    for warning in warnings:
        log.warning("%s validation warning: %s", suite_name, warning.describe())
    log.info(
        "%s validation %s: %d/%d expectations hold on %d rows",
        suite_name,
        "passed" if report.passed else "FAILED",
        report.successful,
        report.evaluated,
        report.row_count,
    )
    return report


def _jsonable(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)
