"""Prefect flows: thin orchestration over components/ (see the orchestration issue)."""
