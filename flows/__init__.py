"""Prefect flows: thin orchestration over components/ (see the orchestration issue)."""

import os

# A Prefect server started for these flows (the temporary local API of `emoreview flows
# run`, the one `emoreview flows serve` starts) sends no anonymous usage data: emoreview
# runs offline, where the attempt only logs an error. Set it to "true" to allow it.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
