"""The ``emoreview`` command line.

Settings are built once here (defaults -> ``--config`` YAML -> ``EMOREVIEW_*`` env ->
flags) and passed down. Results go to stdout (``--json``: one JSON document), logs and
progress bars to stderr. A user's mistake exits with code 2 and a one-line message.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from components.files import write_text_atomic
from components.settings import Settings, deep_merge

log = logging.getLogger("emoreview")
out = Console()
err = Console(stderr=True)

app = typer.Typer(
    help="Emotion-driven review analysis: a face's emotion -> why customers felt it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
reviews_app = typer.Typer(
    help="Generate, ingest and validate customer reviews.", no_args_is_help=True
)
index_app = typer.Typer(help="Build and inspect the FAISS index of reviews.", no_args_is_help=True)
app.add_typer(reviews_app, name="reviews")
faces_app = typer.Typer(help="Synthetic FER-format face data.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(faces_app, name="faces")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit code 2."""


def _user_error_types() -> tuple[type[BaseException], ...]:
    from components.emotions import UnknownEmotionError
    from components.index.embedder import EmbedderLoadError
    from components.index.store import IndexStoreError
    from components.reviews.ingest import IngestError
    from components.reviews.schema import ReviewsFileError
    from components.settings import ConfigFileError
    from components.validation import DataValidationError
    from components.vision.faces import ImageInputError
    from components.vision.fer_data import FerDataError

    return (
        ImageInputError,
        FerDataError,
        UserError,
        UnknownEmotionError,
        EmbedderLoadError,
        IndexStoreError,
        IngestError,
        ReviewsFileError,
        ConfigFileError,
        DataValidationError,
    )


@dataclass
class AppState:
    settings: Settings


def _settings(ctx: typer.Context) -> Settings:
    return ctx.ensure_object(AppState).settings


def _emit_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


@app.callback()
def configure(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML settings file.", show_default=False)
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace", "-w", help="State directory [default: ./.emoreview].", show_default=False
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", show_default=False),
    ] = None,
) -> None:
    """Build the settings once for every command."""
    from pydantic import ValidationError

    from emoreview.logs import configure_logging

    try:
        settings = Settings.load(
            config, {"workspace": workspace, "log_level": log_level.upper() if log_level else None}
        )
    except ValidationError as error:
        raise UserError(f"invalid settings: {error}") from error
    configure_logging(settings.log_level, settings.paths.logs_dir)
    ctx.obj = AppState(settings=settings)


# --------------------------------------------------------------------------- reviews


@reviews_app.command("generate")
def reviews_generate(
    ctx: typer.Context,
    per_emotion: Annotated[
        int | None, typer.Option(help="Reviews per emotion [default: 100].", min=1)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Generator seed [default: 13].")] = None,
    output: Annotated[
        Path | None, typer.Option(help="Parquet file [default: workspace data].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate synthetic reviews that explain why customers felt each emotion."""
    from components.hashing import file_sha256
    from components.reviews.generate import generate_reviews
    from components.reviews.schema import write_reviews
    from components.reviews.validate import emotion_counts

    settings = _settings(ctx)
    per_emotion = per_emotion or settings.reviews.per_emotion
    seed = settings.reviews.seed if seed is None else seed
    frame = generate_reviews(per_emotion=per_emotion, seed=seed)
    path = write_reviews(frame, output or settings.paths.reviews)
    summary = {
        "path": str(path),
        "rows": len(frame),
        "seed": seed,
        "sha256": file_sha256(path),
        "per_emotion": emotion_counts(frame),
    }
    log.info("wrote %d synthetic reviews to %s", len(frame), path)
    if as_json:
        _emit_json(summary)
        return
    out.print(f"Generated [bold]{len(frame)}[/] synthetic reviews (seed {seed}) -> {path}")
    _print_counts(summary["per_emotion"])


@reviews_app.command("ingest")
def reviews_ingest(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV or JSONL file of reviews.")],
    text_column: Annotated[str, typer.Option(help="Column holding the review text.")] = "text",
    emotion_column: Annotated[
        str | None,
        typer.Option(help="Column holding an emotion label (rows without one stay unlabeled)."),
    ] = "emotion",
    id_column: Annotated[
        str | None, typer.Option(help="Column with review ids [default: derived].")
    ] = None,
    rating_column: Annotated[str | None, typer.Option(help="Column with a 1-5 rating.")] = None,
    product_column: Annotated[str | None, typer.Option(help="Column naming the product.")] = None,
    aspect_column: Annotated[str | None, typer.Option(help="Column naming the aspect.")] = None,
    created_at_column: Annotated[
        str | None, typer.Option(help="Column with the review time.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Parquet file [default: workspace data].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Ingest real reviews from CSV or JSONL into the workspace."""
    from components.hashing import file_sha256
    from components.reviews.ingest import ColumnMapping, ingest_reviews
    from components.reviews.schema import write_reviews
    from components.reviews.validate import emotion_counts

    settings = _settings(ctx)
    mapping = ColumnMapping(
        text=text_column,
        emotion=emotion_column,
        review_id=id_column,
        rating=rating_column,
        product=product_column,
        aspect=aspect_column,
        created_at=created_at_column,
    )
    frame = ingest_reviews(file, mapping)
    path = write_reviews(frame, output or settings.paths.reviews)
    counts = emotion_counts(frame)
    summary = {
        "path": str(path),
        "rows": len(frame),
        "sha256": file_sha256(path),
        "per_emotion": counts,
    }
    if as_json:
        _emit_json(summary)
        return
    out.print(f"Ingested [bold]{len(frame)}[/] reviews from {file} -> {path}")
    _print_counts(counts)
    if counts.get("unlabeled"):
        out.print(
            f"[yellow]{counts['unlabeled']} reviews have no emotion yet[/]: "
            "tag them before indexing."
        )


@reviews_app.command("validate")
def reviews_validate(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option(help="Reviews Parquet [default: workspace data].")
    ] = None,
    data_docs: Annotated[
        bool, typer.Option("--data-docs/--no-data-docs", help="Also write GX Data Docs (HTML).")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Validate reviews with the Great Expectations suite; exit 1 when they fail."""
    from components.reviews.schema import read_reviews
    from components.reviews.validate import validate_reviews

    settings = _settings(ctx)
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    docs = settings.paths.validation_dir / "gx" if data_docs else None
    report = validate_reviews(frame, settings.reviews, docs_dir=docs)
    settings.paths.validation_dir.mkdir(parents=True, exist_ok=True)
    (settings.paths.validation_dir / "reviews-latest.json").write_text(
        report.model_dump_json(indent=2)
    )
    if as_json:
        _emit_json(report.model_dump(mode="json"))
    else:
        status = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
        out.print(
            f"Validation of {path}: {status} ({report.successful}/{report.evaluated} "
            f"expectations, {report.row_count} rows)",
            soft_wrap=True,
        )
        for failure in report.failures:
            out.print(f"  [red]x[/] {failure.describe()}", soft_wrap=True, highlight=False)
        if report.data_docs:
            out.print(f"Data Docs: {report.data_docs}")
    if not report.passed:
        raise typer.Exit(code=1)


# --------------------------------------------------------------------------- index


@index_app.command("build")
def index_build(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option(help="Reviews Parquet [default: workspace data].")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="flat (exact) or hnsw.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate the reviews, embed them and publish a new index version atomically."""
    from components.hashing import file_sha256
    from components.index.build import build_review_index
    from components.index.embedder import SentenceTransformerEmbedder
    from components.reviews.schema import read_reviews
    from components.reviews.validate import validate_reviews
    from components.validation import raise_for_failures

    settings = _settings(ctx)
    if kind is not None:
        if kind not in ("flat", "hnsw"):
            raise UserError(f"unknown index kind {kind!r}: use flat or hnsw")
        settings.index.kind = kind  # type: ignore[assignment]
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    raise_for_failures(validate_reviews(frame, settings.reviews))
    embedder = SentenceTransformerEmbedder.load(
        settings.embedder.model, settings.embedder.device, settings.embedder.batch_size
    )
    manifest = build_review_index(
        frame, file_sha256(path), embedder, settings.index, settings.paths.index_root
    )
    if as_json:
        _emit_json(manifest.model_dump(mode="json"))
        return
    out.print(
        f"Index version [bold]{manifest.version}[/]: {manifest.count} reviews, "
        f"{manifest.kind}, {manifest.dimension}-d {manifest.embedder}"
    )
    out.print(f"-> {settings.paths.index_root}")


@index_app.command("show")
def index_show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show the current index version and the versions kept on disk."""
    from components.index.store import current_version, list_versions, read_manifest

    settings = _settings(ctx)
    root = settings.paths.index_root
    current = current_version(root)
    manifest = read_manifest(root / "versions" / current)
    if as_json:
        _emit_json({"current": manifest.model_dump(mode="json"), "versions": list_versions(root)})
        return
    out.print_json(manifest.model_dump_json())
    out.print("versions: " + ", ".join(list_versions(root)))


# --------------------------------------------------------------------------- search


@app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Free-text question or phrase.")],
    emotion: Annotated[
        str | None, typer.Option("--emotion", "-e", help="Only reviews with this emotion.")
    ] = None,
    k: Annotated[
        int | None, typer.Option("-k", help="Number of reviews [default: 4].", min=1, max=100)
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Retrieve the most relevant, diverse reviews for a query."""
    from components.emotions import normalize_emotion
    from components.index.embedder import SentenceTransformerEmbedder
    from components.index.search import ReviewSearcher
    from components.index.store import load_index

    settings = _settings(ctx)
    if not query.strip():
        raise UserError("query must not be empty")
    emotion = normalize_emotion(emotion) if emotion else None
    stored = load_index(settings.paths.index_root, expected_embedder=settings.embedder.model)
    embedder = SentenceTransformerEmbedder.load(
        settings.embedder.model, settings.embedder.device, settings.embedder.batch_size
    )
    searcher = ReviewSearcher(stored, embedder, settings.retrieval)
    hits = searcher.search(query, emotion=emotion, k=k)
    if as_json:
        _emit_json(
            {
                "query": query,
                "emotion": emotion,
                "index_version": searcher.index_version,
                "results": [{"score": h.score, **h.review} for h in hits],
            }
        )
        return
    table = Table(
        "#",
        "score",
        "emotion",
        "rating",
        "review",
        title=f"{query!r} (index {searcher.index_version})",
        show_lines=True,
    )
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank),
            f"{hit.score:.3f}",
            str(hit.review.get("emotion")),
            str(hit.review.get("rating") or ""),
            hit.text,
        )
    out.print(table)


# --------------------------------------------------------------------------- vision


@faces_app.command("synthesize")
def faces_synthesize(
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

    settings = _settings(ctx)
    target = out_dir or settings.paths.faces_dir
    counts = synthesize_faces(
        target, per_class_train=per_class, per_class_test=test_per_class, seed=seed
    )
    summary = {"path": str(target), "dataset": "synthetic", **counts}
    if as_json:
        _emit_json(summary)
        return
    out.print(f"Drew {counts['train']} train and {counts['test']} test synthetic faces -> {target}")


@app.command("train")
def train(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option("--data", help="fer2013.csv or a folder with train/ and test/.")
    ],
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
    as_json: JsonFlag = False,
) -> None:
    """Validate the image data, train ResNet-50, evaluate on the test split, write artifacts."""
    from components.vision.training_run import run_training

    settings = _settings(ctx)
    overrides = {
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "optimizer": optimizer, "device": device, "ferplus_votes": ferplus,
    }  # fmt: skip
    settings = Settings.from_dict(
        deep_merge(
            settings.model_dump(),
            {
                "train": {k: v for k, v in overrides.items() if v is not None},
                "vision": {"input_size": input_size} if input_size else {},
            },
        )
    )
    if not data.exists():
        raise UserError(f"data not found: {data}")
    outcome = run_training(
        data, settings, run_dir=run_dir, min_per_class=min_per_class, resume=resume
    )
    write_text_atomic(settings.paths.runs_dir / "latest", outcome.run_dir.name + "\n")
    summary = outcome.summary()
    if as_json:
        _emit_json(summary)
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


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option("--data", help="fer2013.csv or a folder with train/ and test/.")
    ],
    checkpoint: Annotated[
        Path | None, typer.Option(help="Weights file [default: latest run's best.pt].")
    ] = None,
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

    settings = _settings(ctx)
    if tta is not None and tta not in ("none", "flip", "ten_crop"):
        raise UserError(f"unknown tta {tta!r}: use none, flip or ten_crop")
    mode = tta or settings.vision.tta
    weights = checkpoint or _latest_weights(settings)
    if not data.exists():
        raise UserError(f"data not found: {data}")
    dataset = load_fer(data, val_fraction=settings.train.val_fraction, seed=settings.train.seed)
    model = load_weights(weights)
    probabilities = predict_probabilities(model, dataset.test.images, batch_size=256, tta=mode)  # type: ignore[arg-type]
    report = compute_metrics(dataset.test.labels, probabilities, dataset.name, "test", tta=mode)
    paths = write_evaluation(report, out_dir or weights.parent / "evaluation")
    if as_json:
        _emit_json(
            {**report.model_dump(mode="json"), "artifacts": {k: str(v) for k, v in paths.items()}}
        )
        return
    out.print(report.summary())
    out.print("artifacts: " + ", ".join(str(p) for p in paths.values()))


@app.command("predict-emotion")
def predict_emotion(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="Image file (any format Pillow reads).")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="Weights file [default: latest run's best.pt].")
    ] = None,
    all_faces: Annotated[
        bool, typer.Option("--all-faces", help="Classify every face, not just the largest.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Detect the face(s) in an image and predict the emotion with all 7 probabilities."""
    from components.vision.predict import EmotionPredictor

    settings = _settings(ctx)
    if not image.is_file():
        raise UserError(f"image not found: {image}")
    predictor = EmotionPredictor.from_weights(
        checkpoint or _latest_weights(settings), settings.vision
    )
    prediction = predictor.predict(image.read_bytes(), all_faces=all_faces or None)
    if as_json:
        _emit_json({"image": str(image), **prediction.as_dict()})
        return
    if prediction.note:
        out.print(f"[yellow]{prediction.note}[/]")
    for n, face in enumerate(prediction.faces, start=1):
        out.print(f"face {n} at {face.box}: [bold]{face.emotion}[/] ({face.confidence:.1%})")
        out.print("  " + ", ".join(f"{k} {v:.2f}" for k, v in face.probabilities.items()))


def _latest_weights(settings: Settings) -> Path:
    pointer = settings.paths.runs_dir / "latest"
    if not pointer.is_file():
        raise UserError(
            "no trained model yet: run `emoreview train --data ...` or pass --checkpoint"
        )
    weights = settings.paths.runs_dir / pointer.read_text().strip() / "best.pt"
    if not weights.is_file():
        raise UserError(f"latest run has no weights: {weights}")
    return weights


def _print_counts(counts: dict[str, int]) -> None:
    table = Table("emotion", "reviews")
    for emotion, n in counts.items():
        table.add_row(emotion, str(n))
    out.print(table)


def main() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    user_errors = _user_error_types()
    try:
        app()
    except user_errors as error:
        err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
