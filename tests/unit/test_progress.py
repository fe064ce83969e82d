"""Progress in a log file or CI is one line per stage, never carriage-return frames."""

from __future__ import annotations

import logging

import pytest

from components import progress
from components.progress import Progress


def test_without_a_terminal_a_stage_logs_one_line(monkeypatch, capsys, caplog) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger="emoreview.progress"):
        with Progress(total=500, desc="embedding reviews", unit="review") as bar:
            for _ in range(500):
                bar.update(1)
        for _ in Progress(range(3), desc="epoch 1/3", unit="batch", log_line=False):
            pass
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("embedding reviews: 500 review in ")


@pytest.mark.parametrize("enabled", [True, False])
def test_on_a_terminal_the_bar_is_tqdm_and_logs_nothing(monkeypatch, caplog, enabled) -> None:
    monkeypatch.setattr(progress, "interactive", lambda: True)
    with (
        caplog.at_level(logging.INFO, logger="emoreview.progress"),
        Progress(total=2, desc="drawing faces", unit="face", enabled=enabled) as bar,
    ):
        assert bar.disable is (not enabled)
        bar.update(2)
    assert caplog.records == []
