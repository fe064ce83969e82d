"""The classifier's commands: ``faces synthesize``, ``train``, ``evaluate``,
``predict-emotion`` (in-process, from weights on disk or the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emoreview.cli.common import JsonFlag, UserError, latest_weights, require_file, settings_of
from emoreview.cli.output import emit_json, out

faces_app = typer.Typer(help="Synthetic FER-format face data.", no_args_is_help=True)
app = typer.Typer()

DataOption = Annotated[
    Path, typer.Option("--data", help="fer2013.csv or a folder with train/ and test/.")
]
CheckpointOption = Annotated[
    Path | None, typer.Option(help="Weights file [default: latest run's best.pt].")
]


@faces_app.command("synthesize")
def synthesize(
    ctx: typer.Context,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder [default: workspace data/faces].")
    ] = None,
    per_class: Annotated[int, typer.Option(help="Training faces per emotion.", min=1)] = 100,
    test_per_class: Annotated[int, typer.Option(help="Test faces per emotion.", min=1)] = 30,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Draw seeded 48x48 synthetic faces in the FER folder layout (train/ and test/)."""
    from components.vision.synthetic_faces import synthesize_faces

    target = out_dir or settings_of(ctx).paths.faces_dir
    counts = synthesize_faces(
        target, per_class_train=per_class, per_class_test=test_per_class, seed=seed
    )
    if as_json:
        emit_json({"path": str(target), "dataset": "synthetic", **counts})
        return
    out.print(f"Drew {counts['train']} train and {counts['test']} test synthetic faces -> {target}")


@app.command("train")
def train(
    ctx: typer.Context,
    data: DataOption,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs [default: 30].", min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size [default: 64].", min=1)] = None,
    learning_rate: Annotated[
        float | None, typer.Option("--lr", help="Learning rate [default: 0.01].")
    ] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd (Nesterov) or adamw.")] = None,
    input_size: Annotated[int | None, typer.Option(help="Model input side (48 or 224).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    ferplus: Annotated[
        Path | None, typer.Option(help="fer2013new.csv: train on FER+ vote distributions.")
    ] = None,
    min_per_class: Annotated[
        int, typer.Option(help="Validation: minimum images per class and split.")
    ] = 10,
    resume: Annotated[bool, typer.Option(help="Resume from the run folder's last.pt.")] = False,
    run_dir: Annotated[
        Path | None, typer.Option(help="Run folder [default: workspace runs/<dataset>-<time>].")
    ] = None,
    register: Annotated[
        bool,
        typer.Option(
            "--register/--no-register",
            help="Track the run in MLflow, register the model and apply the promotion gate.",
        ),
    ] = True,
    allow_invalid_data: Annotated[
        bool,
        typer.Option(
            "--allow-invalid-data",
            help="Train even when data validation fails (recorded; never champion).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Validate the image data, train ResNet-50, evaluate on the test split, write artifacts,
    then register the model in MLflow and decide whether it becomes champion."""
    from components.files import write_text_atomic
    from components.settings import Settings, deep_merge
    from components.vision.training_run import run_training

    overrides = {
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "optimizer": optimizer, "device": device, "ferplus_votes": ferplus,
    }  # fmt: skip
    settings = Settings.from_dict(
        deep_merge(
            settings_of(ctx).model_dump(),
            {
                "train": {k: v for k, v in overrides.items() if v is not None},
                "vision": {"input_size": input_size} if input_size else {},
            },
        )
    )
    if not data.exists():
        raise UserError(f"data not found: {data}")
    how = {
        "min_per_class": min_per_class,
        "run_dir": run_dir,
        "resume": resume,
        "allow_invalid_data": allow_invalid_data,
    }
    registration = None
    if register:
        from registry.training import train_and_register

        registration = train_and_register(data, settings, **how)
        outcome = registration.outcome
        summary = registration.summary()
    else:
        outcome = run_training(data, settings, **how)
        summary = outcome.summary()
    write_text_atomic(settings.paths.runs_dir / "latest", outcome.run_dir.name + "\n")
    if as_json:
        emit_json(summary)
        return
    out.print(f"[bold]{outcome.evaluation.summary()}[/]")
    out.print(
        f"best epoch {outcome.result.best_epoch}, {summary['images_per_second']} training images/s"
    )
    table = Table("emotion", "accuracy", "95% CI", "support")
    for name, metrics in outcome.evaluation.per_class.items():
        low, high = metrics.accuracy_ci95
        table.add_row(
            name, f"{metrics.accuracy:.3f}", f"{low:.2f}-{high:.2f}", str(metrics.support)
        )
    out.print(table)
    out.print(f"artifacts -> {outcome.run_dir}")
    if registration is not None:
        verdict = (
            "[green]champion[/]" if registration.decision.promoted else "[yellow]challenger[/]"
        )
        out.print(
            f"registered {settings.registry.model_name} version {registration.version} "
            f"(MLflow run {registration.run_id}): {verdict}: {registration.decision.reason}",
            soft_wrap=True,
        )


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    data: DataOption,
    checkpoint: CheckpointOption = None,
    tta: Annotated[str | None, typer.Option(help="none, flip or ten_crop.")] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Where to write JSON + PNGs.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a model on the test split: metrics JSON, confusion matrix, per-class chart."""
    from components.vision.evaluate import compute_metrics, predict_probabilities, write_evaluation
    from components.vision.fer_data import load_fer
    from components.vision.model import load_weights

    settings = settings_of(ctx)
    if tta is not None and tta not in ("none", "flip", "ten_crop"):
        raise UserError(f"unknown tta {tta!r}: use none, flip or ten_crop")
    mode = tta or settings.vision.tta
    weights = checkpoint or latest_weights(settings)
    if not data.exists():
        raise UserError(f"data not found: {data}")
    dataset = load_fer(data, val_fraction=settings.train.val_fraction, seed=settings.train.seed)
    model = load_weights(weights)
    probabilities = predict_probabilities(model, dataset.test.images, batch_size=256, tta=mode)  # type: ignore[arg-type]
    report = compute_metrics(dataset.test.labels, probabilities, dataset.name, "test", tta=mode)
    paths = write_evaluation(report, out_dir or weights.parent / "evaluation")
    if as_json:
        emit_json(
            {**report.model_dump(mode="json"), "artifacts": {k: str(v) for k, v in paths.items()}}
        )
        return
    out.print(report.summary())
    out.print("artifacts: " + ", ".join(str(p) for p in paths.values()))


@app.command("predict-emotion")
def predict_emotion(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="Image file (any format Pillow reads).")],
    checkpoint: CheckpointOption = None,
    all_faces: Annotated[
        bool, typer.Option("--all-faces", help="Classify every face, not just the largest.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Detect the face(s) in an image and predict the emotion with all 7 probabilities."""
    from components.vision.predict import EmotionPredictor

    settings = settings_of(ctx)
    require_file(image, "image")
    predictor = EmotionPredictor.from_weights(
        checkpoint or latest_weights(settings), settings.vision
    )
    prediction = predictor.predict(image.read_bytes(), all_faces=all_faces or None)
    if as_json:
        emit_json({"image": str(image), **prediction.as_dict()})
        return
    if prediction.note:
        out.print(f"[yellow]{prediction.note}[/]")
    for n, face in enumerate(prediction.faces, start=1):
        out.print(f"face {n} at {face.box}: [bold]{face.emotion}[/] ({face.confidence:.1%})")
        out.print("  " + ", ".join(f"{k} {v:.2f}" for k, v in face.probabilities.items()))
