"""What the flows package sets for every Prefect server it starts."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_prefect_server_started_for_the_flows_sends_no_usage_data() -> None:
    """Prefect's server sends anonymous usage data at start unless told not to; offline,
    the attempt logs an error. A fresh interpreter: this process's environment is the
    tests' own (tests/conftest.py sets the same default)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_ANALYTICS_ENABLED"}
    script = (
        "import flows\n"
        "from prefect.settings import get_current_settings\n"
        "print(get_current_settings().server.analytics_enabled)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
