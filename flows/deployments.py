"""The scheduled deployments (`emoreview flows serve`; `infra/prefect.yaml` declares the
same ones for a work pool)."""

from __future__ import annotations

from typing import Any

from prefect.schedules import Cron

from components.settings import Settings
from flows.retrain import retrain_flow
from flows.reviews import reviews_flow


def build_deployments(settings: Settings, config_file: str | None) -> list[Any]:
    """Retraining on ``flows.retrain_cron`` and the index rebuild on ``flows.reviews_cron``,
    both in ``flows.timezone``; runs build their settings from ``config_file`` + env."""
    parameters = {"config_file": config_file}
    zone = settings.flows.timezone
    return [
        retrain_flow.to_deployment(
            name="retrain-scheduled",
            schedule=Cron(settings.flows.retrain_cron, timezone=zone),
            parameters=parameters,
            description="Reviews -> index, FER data -> train -> register -> gate -> serve",
            tags=["emoreview"],
        ),
        reviews_flow.to_deployment(
            name="index-rebuild-scheduled",
            schedule=Cron(settings.flows.reviews_cron, timezone=zone),
            parameters=parameters,
            description="Re-validate and re-index the reviews when they changed",
            tags=["emoreview"],
        ),
    ]
