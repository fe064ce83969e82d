"""The fault suite (``make chaos``): each test breaks one real part of the running system
(a TorchServe worker or frontend, an index build, the MLflow server, the disk, the Prefect
API, a request flood), checks that it recovers, and then checks that nothing was lost: the
current index loads, the champion is the one it was, no registered version lacks its
weights.

Every test reports one row (fault, what was checked, requests sent and lost) through the
``fault_report`` fixture; whether it survived is the test's outcome. ``make chaos`` prints
the table at the end and writes it to ``--chaos-table`` (Markdown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.settings import Settings


@dataclass
class FaultReport:
    number: int
    fault: str
    checked: list[str] = field(default_factory=list)
    requests: int | None = None
    lost: int | None = None
    survived: bool | None = None

    def check(self, what: str) -> None:
        """Record one thing the test verified (call it after the assertion passed)."""
        self.checked.append(what)


REPORTS: dict[str, FaultReport] = {}


@pytest.fixture
def fault_report(request: pytest.FixtureRequest):
    """The row this test reports: ``fault_report(number, fault)``."""

    def start(number: int, fault: str) -> FaultReport:
        report = FaultReport(number, fault)
        REPORTS[request.node.nodeid] = report
        return report

    return start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    row = REPORTS.get(item.nodeid)
    if row is not None and (report.when == "call" or report.failed):
        row.survived = report.passed if row.survived in (None, True) else False
    return report


def fault_table() -> str:
    lines = [
        "| # | fault | checked | survived | requests lost |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in sorted(REPORTS.values(), key=lambda r: (r.number, r.fault)):
        lost = "—" if row.requests is None else f"{row.lost or 0} of {row.requests}"
        survived = {True: "yes", False: "**no**", None: "not run"}[row.survived]
        checked = "; ".join(row.checked) or "—"
        lines.append(f"| {row.number} | {row.fault} | {checked} | {survived} | {lost} |")
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not REPORTS:
        return
    table = fault_table()
    terminalreporter.section("fault suite")
    terminalreporter.write(table)
    target = config.getoption("--chaos-table")
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(table, encoding="utf-8")
        terminalreporter.write_line(f"table written to {target}")


# ----------------------------------------------------------------------- nothing lost


@dataclass(frozen=True)
class Snapshot:
    """What must survive a fault: the current index version and the champion."""

    index_version: str | None
    champion: str | None


def snapshot(settings: Settings) -> Snapshot:
    from components.index.store import IndexNotFoundError, current_version
    from registry.models import open_registry

    try:
        index = current_version(settings.paths.index_root)
    except IndexNotFoundError:
        index = None
    return Snapshot(index, open_registry(settings).champion_version())


def assert_nothing_lost(
    settings: Settings, before: Snapshot, *, champion: str | None = None
) -> list[str]:
    """The current index loads (every file matches its manifest), the champion is
    ``before``'s (or ``champion``, when the test promoted one), and every registered version
    has its weights (sha256 as registered). Returns what was checked."""
    from components.index.store import load_index
    from registry.models import open_registry

    checked = []
    if before.index_version is not None:
        stored = load_index(settings.paths.index_root)
        assert stored.version >= before.index_version
        checked.append(f"index {stored.version} loads")
    registry = open_registry(settings)
    assert registry.champion_version() == (champion or before.champion)
    checked.append("champion unchanged" if champion is None else f"champion is v{champion}")
    for version in registry.versions():
        record = registry.record(version)
        assert record.tags.get("weights_sha256"), f"version {version} has no weights tag"
        registry.fetch(version, settings.paths.models_dir)  # downloads, checks the sha256
    checked.append(f"all {len(registry.versions())} versions have their weights")
    return checked
