"""``emoreview serve`` (package, start, reload, token, stop, status) and ``emoreview
predict``: TorchServe and its endpoints."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from emoreview.cli.common import (
    JsonFlag,
    KeyFileOption,
    UrlOption,
    UserError,
    require_file,
    served_client,
    settings_of,
)
from emoreview.cli.output import emit_json, out, print_answer

app = typer.Typer(
    help="TorchServe: package the champion, start, stop, status, reload.", no_args_is_help=True
)
predict_app = typer.Typer()

NOT_RUNNING = "no server is running: use `emoreview serve start`"


@app.command("package")
def package(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Build the model archives from the registry's champion and the current index."""
    from serving.deploy import package_champion
    from serving.package import model_store

    settings = settings_of(ctx)
    bundle = package_champion(settings)
    if as_json:
        emit_json(asdict(bundle))
        return
    out.print(
        f"archives version {bundle.version} (registry version {bundle.classifier_version}, "
        f"index {bundle.index_version}) -> {model_store(settings)}: "
        + ", ".join(bundle.archives.values()),
        soft_wrap=True,
    )


@app.command("start")
def start(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Package the champion and start TorchServe on 127.0.0.1 (token auth on); a running
    server gets the new version through a zero-downtime reload instead."""
    from serving.deploy import deploy_champion
    from serving.server import TorchServe

    settings = settings_of(ctx)
    deployment = deploy_champion(settings, start=True)
    server = TorchServe(settings)
    if as_json:
        emit_json({"action": deployment.action, **asdict(deployment.bundle), **server.status()})
        return
    out.print(
        f"TorchServe {deployment.action}: version {deployment.bundle.version} at "
        f"{server.inference_url} (management {server.management_url}, metrics "
        f"{server.metrics_url}/metrics); token file {server.folder / 'key_file.json'}",
        soft_wrap=True,
    )


@app.command("reload")
def reload(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Serve the current champion and index on the running server without downtime."""
    from serving.deploy import deploy_champion

    deployment = deploy_champion(settings_of(ctx), start=False)
    if deployment.action == "packaged":
        raise UserError(NOT_RUNNING)
    if as_json:
        emit_json({"action": deployment.action, **asdict(deployment.bundle)})
        return
    previous = deployment.previous.version if deployment.previous else None
    out.print(f"{deployment.action}: version {deployment.bundle.version} (was {previous})")


@app.command("token")
def token(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Issue a new inference token (the old one stops working) into the key file clients
    read; tokens expire after serving.token_expiration_min minutes."""
    from serving.server import TorchServe

    server = TorchServe(settings_of(ctx))
    if not server.is_running():
        raise UserError(NOT_RUNNING)
    server.refresh_key("inference")
    expires = server.key_expires("inference")
    document = {
        "key_file": str(server.folder / "key_file.json"),
        "inference_expires": expires.isoformat(timespec="seconds") if expires else None,
    }
    if as_json:
        emit_json(document)
        return
    out.print(
        f"new inference token in {document['key_file']} (expires {document['inference_expires']})",
        soft_wrap=True,
    )


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop TorchServe (same TMPDIR as start)."""
    from serving.server import TorchServe

    stopped = TorchServe(settings_of(ctx)).stop()
    out.print("TorchServe stopped" if stopped else "no TorchServe was running")


@app.command("status")
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether TorchServe runs, and which model versions with how many workers."""
    from serving.server import TorchServe

    report = TorchServe(settings_of(ctx)).status()
    if as_json:
        emit_json(report)
        return
    if not report["running"]:
        died = report.get("frontend_died")
        if died is not None:
            out.print(
                f"TorchServe is not running: its frontend (pid {died}) died without `serve "
                "stop`; `emoreview serve start` clears what it left and starts it again",
                soft_wrap=True,
            )
        else:
            out.print(f"TorchServe is not running ({report['inference_url']})")
        raise typer.Exit(code=1)
    out.print(f"TorchServe at {report['inference_url']}, metrics {report['metrics_url']}")
    for name, versions in report["models"].items():
        for version in versions:
            default = " (default)" if version["default"] else ""
            out.print(
                f"  {name} v{version['version']}{default}: workers {version['workers']} "
                f"(pids {version['worker_pids']}), "
                f"batch {version['batch_size']} / {version['max_batch_delay']} ms"
            )
    for restart in report["worker_restarts"]:
        out.print(
            f"  restarted: {restart['endpoint']} worker pid {restart['old_pids']} died, "
            f"TorchServe started pid {restart['new_pids']}",
            soft_wrap=True,
        )


@predict_app.command("predict")
def predict(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="A photo of a face.")],
    emotion_only: Annotated[
        bool, typer.Option("--emotion-only", help="Only the classifier (`emotion` endpoint).")
    ] = False,
    url: UrlOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send a photo to the served `emotion_reviews` endpoint (or `emotion`) and print it."""
    from components.analysis.answer import Answer

    settings = settings_of(ctx)
    require_file(image, "image")
    client = served_client(settings, url, key_file)
    data = image.read_bytes()
    body = client.emotion(data) if emotion_only else client.emotion_reviews(data)
    if as_json or emotion_only:
        emit_json(body)
        return
    versions = body.pop("versions", {})
    print_answer(Answer.model_validate(body), False)
    out.print(f"served model version {versions.get('model_version')}")
