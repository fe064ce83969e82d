"""``emoreview reviews``: generate, ingest, validate and tag customer reviews."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from emoreview.cli.common import JsonFlag, settings_of
from emoreview.cli.output import emit_json, out, report_reviews_file

log = logging.getLogger("emoreview")

app = typer.Typer(help="Generate, ingest and validate customer reviews.", no_args_is_help=True)

ParquetOption = Annotated[Path | None, typer.Option(help="Parquet file [default: workspace data].")]


@app.command("generate")
def generate(
    ctx: typer.Context,
    per_emotion: Annotated[
        int | None, typer.Option(help="Reviews per emotion [default: 100].", min=1)
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Generator seed [default: 13].")] = None,
    output: ParquetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate synthetic reviews that explain why customers felt each emotion."""
    from components.reviews.generate import generate_reviews
    from components.reviews.schema import write_reviews

    settings = settings_of(ctx)
    per_emotion = per_emotion or settings.reviews.per_emotion
    seed = settings.reviews.seed if seed is None else seed
    frame = generate_reviews(per_emotion=per_emotion, seed=seed)
    path = write_reviews(frame, output or settings.paths.reviews)
    log.info("wrote %d synthetic reviews to %s", len(frame), path)
    headline = f"Generated [bold]{len(frame)}[/] synthetic reviews (seed {seed}) -> {path}"
    report_reviews_file(path, frame, headline, as_json, seed=seed)


@app.command("ingest")
def ingest(
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
    output: ParquetOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Ingest real reviews from CSV or JSONL into the workspace."""
    from components.reviews.ingest import ColumnMapping, ingest_reviews
    from components.reviews.schema import write_reviews

    settings = settings_of(ctx)
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
    headline = f"Ingested [bold]{len(frame)}[/] reviews from {file} -> {path}"
    summary = report_reviews_file(path, frame, headline, as_json)
    unlabeled = summary["per_emotion"].get("unlabeled")
    if unlabeled and not as_json:
        out.print(f"[yellow]{unlabeled} reviews have no emotion yet[/]: tag them before indexing.")


@app.command("validate")
def validate(
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

    settings = settings_of(ctx)
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    docs = settings.paths.validation_dir / "gx" if data_docs else None
    report = validate_reviews(frame, settings.reviews, docs_dir=docs)
    settings.paths.validation_dir.mkdir(parents=True, exist_ok=True)
    (settings.paths.validation_dir / "reviews-latest.json").write_text(
        report.model_dump_json(indent=2)
    )
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        status = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
        out.print(
            f"Validation of {path}: {status} ({report.successful}/{report.evaluated} "
            f"expectations, {report.row_count} rows)",
            soft_wrap=True,
        )
        for failure in report.failures:
            out.print(f"  [red]x[/] {failure.describe()}", soft_wrap=True, highlight=False)
        for warning in report.warnings:
            out.print(f"  [yellow]![/] {warning.describe()}", soft_wrap=True, highlight=False)
        if report.data_docs:
            out.print(f"Data Docs: {report.data_docs}")
    if not report.passed:
        raise typer.Exit(code=1)


@app.command("tag")
def tag(
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
    from components.index.embedder import SentenceTransformerEmbedder
    from components.nlp.tagging import load_emotion_tagger, tag_reviews
    from components.reviews.schema import read_reviews, write_reviews

    settings = settings_of(ctx)
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    labeled = frame[frame["emotion"].notna()]
    tagger = load_emotion_tagger(settings.nlp, embedder, labeled)
    tagged, count = tag_reviews(frame, tagger)
    target = write_reviews(tagged, output or path)
    headline = f"Tagged [bold]{count}[/] reviews with {tagger.model_id} -> {target}"
    report_reviews_file(target, tagged, headline, as_json, tagged=count, tagger=tagger.model_id)
