"""The scheduled deployments, declared once.

`emoreview flows serve` serves them with the crons from settings; `infra/prefect.yaml` (for a
team with a Prefect server and a work pool) is generated from the same declarations by
:func:`prefect_yaml` (``emoreview flows prefect-yaml``), and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from components.settings import FlowSettings, Settings

PREFECT_YAML_HEADER = """\
# Prefect deployments for a team with a Prefect server and a work pool:
#   prefect work-pool create emoreview --type process
#   prefect deploy --all            (from the repository root)
#   prefect worker start --pool emoreview
# The same deployments `emoreview flows serve` serves from the settings' crons. Each run
# builds its settings from EMOREVIEW_* environment variables (and `config_file`, when set).
# Generated from flows/deployments.py and the default settings by
# `emoreview flows prefect-yaml > infra/prefect.yaml`: edit those, not this file.
"""
WORK_POOL = "emoreview"


@dataclass(frozen=True)
class ScheduledDeployment:
    flow: str  # the flow's name in Prefect
    deployment: str
    entrypoint: str  # file:function, from the repository root
    cron: str
    timezone: str
    description: str


def schedules(flows: FlowSettings) -> list[ScheduledDeployment]:
    """Retraining on ``flows.retrain_cron`` and the index rebuild on ``flows.reviews_cron``,
    both in ``flows.timezone``."""
    return [
        ScheduledDeployment(
            flow="retrain",
            deployment="retrain-scheduled",
            entrypoint="flows/retrain.py:retrain_flow",
            cron=flows.retrain_cron,
            timezone=flows.timezone,
            description="Reviews -> index, FER data -> train -> register -> gate -> serve",
        ),
        ScheduledDeployment(
            flow="reviews",
            deployment="index-rebuild-scheduled",
            entrypoint="flows/reviews.py:reviews_flow",
            cron=flows.reviews_cron,
            timezone=flows.timezone,
            description="Re-validate and re-index the reviews when they changed",
        ),
    ]


def build_deployments(settings: Settings, config_file: str | None) -> list[Any]:
    """The deployments to serve; runs build their settings from ``config_file`` + env."""
    from prefect.schedules import Cron

    from flows.retrain import retrain_flow
    from flows.reviews import reviews_flow

    flows = {"retrain": retrain_flow, "reviews": reviews_flow}
    return [
        flows[scheduled.flow].to_deployment(
            name=scheduled.deployment,
            schedule=Cron(scheduled.cron, timezone=scheduled.timezone),
            parameters={"config_file": config_file},
            description=scheduled.description,
            tags=["emoreview"],
        )
        for scheduled in schedules(settings.flows)
    ]


def prefect_yaml(settings: Settings, prefect_version: str) -> str:
    """``infra/prefect.yaml``: the same deployments for ``prefect deploy --all``."""
    document = {
        "name": "emoreview",
        "prefect-version": prefect_version,
        "pull": [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $EMOREVIEW_REPO }}"
                }
            }
        ],
        "deployments": [
            {
                "name": scheduled.deployment,
                "entrypoint": scheduled.entrypoint,
                "description": scheduled.description,
                "tags": ["emoreview"],
                "parameters": {"config_file": None},
                "schedules": [{"cron": scheduled.cron, "timezone": scheduled.timezone}],
                "work_pool": {"name": WORK_POOL},
            }
            for scheduled in schedules(settings.flows)
        ],
    }
    return PREFECT_YAML_HEADER + "\n" + yaml.safe_dump(document, sort_keys=False)
