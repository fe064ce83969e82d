"""``retrain_flow``: the parent users schedule. Runs the reviews and training flows as
subflows (their caches make unchanged work cheap), then, when a new champion appeared or
the index changed, repackages the served models and reloads a running server."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.tasks import exponential_backoff

from components.settings import Settings
from flows.common import flow_settings, io_task
from flows.reviews import reviews_flow
from flows.training import training_flow


@task(name="deploy to TorchServe", retry_delay_seconds=exponential_backoff(5))
def redeploy(settings: Settings) -> dict[str, Any]:
    """Package the champion + current index; reload the running server without downtime
    (a stopped server is left stopped, its archives ready for `emoreview serve start`)."""
    from serving.deploy import deploy_champion

    deployment = deploy_champion(settings, start=False)
    return {"action": deployment.action, "version": deployment.bundle.version}


@flow(name="retrain", log_prints=True, result_serializer="json")
def retrain_flow(
    settings: dict[str, Any] | None = None,
    config_file: str | None = None,
    data: str | None = None,
    reviews_source: str | None = None,
    min_per_class: int = 10,
) -> dict[str, Any]:
    config = flow_settings(settings, config_file)
    plain = config.model_dump(mode="json")
    index = reviews_flow(settings=plain, source=reviews_source)
    training = training_flow(settings=plain, data=data, min_per_class=min_per_class)
    result: dict[str, Any] = {"index": index, "training": training, "serving": None}
    if index["changed"] or training["new_champion"]:
        result["serving"] = io_task(redeploy, config)(config)
    else:
        get_run_logger().info("no new champion and the index is unchanged: serving untouched")
    return result
