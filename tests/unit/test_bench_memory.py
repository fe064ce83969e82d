"""The benchmarks' memory figures are the measured process's own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np


def test_a_phase_reports_its_own_peak_memory_not_its_parents() -> None:
    held = np.ones(2**30 // 8)  # 1 GiB resident in this (the parent) process
    held += 1
    script = "from benchmarks.bench_ivfpq import _peak_rss_mb; print(_peak_rss_mb())"
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert float(child.stdout.strip()) < 800, "the child reported its parent's peak"
    assert held[0] == 2.0
