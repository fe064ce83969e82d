"""``emoreview flows``: run a Prefect flow once, or serve the scheduled deployments."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from emoreview.cli.common import JsonFlag, UserError, settings_of
from emoreview.cli.output import emit_json, err, out, print_json_text

if TYPE_CHECKING:
    from components.settings import Settings

app = typer.Typer(
    help="Prefect flows: run one now, or serve the scheduled deployments.", no_args_is_help=True
)


def parse_parameters(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs: VALUE as JSON when it parses, else as text."""
    parameters: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param needs KEY=VALUE, got {item!r}")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    return parameters


@app.command("run")
def run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="retrain, reviews or training.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="Flow parameter KEY=VALUE (VALUE as JSON, else text), e.g. data=path/to/faces.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a flow once against PREFECT_API_URL (or a temporary local Prefect API)."""
    from flows.retrain import retrain_flow
    from flows.reviews import reviews_flow
    from flows.training import training_flow

    settings = settings_of(ctx)
    known = {"retrain": retrain_flow, "reviews": reviews_flow, "training": training_flow}
    if name not in known:
        raise UserError(f"unknown flow {name!r}: use {', '.join(known)}")
    parameters = parse_parameters(param or [])
    try:
        with workspace_results(settings):
            state = known[name](
                settings=settings.model_dump(mode="json"), **parameters, return_state=True
            )
    except TypeError as error:
        raise UserError(f"bad parameters for flow {name}: {error}") from error
    except Exception as error:
        if not api_unreachable(error):
            raise
        raise UserError(api_gone_message(name)) from error
    if not state.is_completed():
        message = state.message or ""
        if "ConnectError" in message or "connection attempts failed" in message.lower():
            message = api_gone_message(name)
        err.print(f"[red]flow {name} {state.type.value.lower()}:[/] {message}", soft_wrap=True)
        raise typer.Exit(code=1)
    result = state.result()
    if as_json:
        emit_json(result)
        return
    out.print(f"flow {name} completed")
    print_json_text(result)


def api_unreachable(error: BaseException) -> bool:
    """Whether ``error`` (or what it was raised from) is a connection to the Prefect API
    that failed."""
    import httpx

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, httpx.TransportError):
            return True
        current = current.__cause__ or current.__context__
    return False


def api_gone_message(flow: str) -> str:
    import os

    api = os.environ.get("PREFECT_API_URL") or "the temporary local Prefect API"
    return (
        f"the Prefect API ({api}) stopped answering during flow {flow}: the run stopped there "
        "and nothing was half-published (an index version is published whole or not at all); "
        "start the API again and rerun the flow"
    )


@app.command("serve")
def serve(ctx: typer.Context) -> None:
    """Serve the scheduled deployments (retrain, index rebuild) from settings' crons.

    Uses the Prefect API in PREFECT_API_URL, or starts a local `prefect server` on
    127.0.0.1:<flows.prefect_port> (UI included) and stops it on exit."""
    import os
    import signal

    from prefect import serve as serve_deployments

    from flows.deployments import build_deployments, schedules
    from flows.server import local_prefect_server

    settings = settings_of(ctx)
    # A service manager stops us with SIGTERM: unwind like Ctrl-C so the local Prefect
    # server started below is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config_file = ctx.find_root().params.get("config")
    deployments = build_deployments(settings, str(config_file) if config_file else None)
    table = Table("deployment", "schedule", "time zone")
    for schedule in schedules(settings.flows):
        table.add_row(f"{schedule.flow}/{schedule.deployment}", schedule.cron, schedule.timezone)
    out.print(table)
    if os.environ.get("PREFECT_API_URL"):
        out.print(f"Prefect API: {os.environ['PREFECT_API_URL']} (Ctrl-C stops serving)")
        with workspace_results(settings):
            serve_deployments(*deployments)
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with local_prefect_server(settings) as url:
        out.print(f"Prefect UI and API: {url} (Ctrl-C stops serving and the server)")
        with (
            temporary_settings(updates={PREFECT_API_URL: f"{url}/api"}),
            workspace_results(settings),
        ):
            serve_deployments(*deployments)


def workspace_results(settings: Settings) -> Any:
    """Task results (the flow caches) live in the workspace unless Prefect is told
    otherwise (PREFECT_LOCAL_STORAGE_PATH), so they go away with it."""
    import contextlib
    import os

    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    if os.environ.get("PREFECT_LOCAL_STORAGE_PATH"):
        return contextlib.nullcontext()
    folder = (settings.workspace / "prefect" / "results").resolve()
    return temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: folder})


@app.command("prefect-yaml")
def prefect_yaml(ctx: typer.Context) -> None:
    """Print infra/prefect.yaml (the scheduled deployments for `prefect deploy --all`) for
    these settings' crons: `emoreview flows prefect-yaml > infra/prefect.yaml`."""
    from importlib.metadata import version

    from flows.deployments import prefect_yaml as render

    typer.echo(render(settings_of(ctx), version("prefect")), nl=False)
