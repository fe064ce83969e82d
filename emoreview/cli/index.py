"""``emoreview index`` (build, show) and ``emoreview search``: the FAISS index of reviews."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emoreview.cli.common import (
    EmotionOption,
    JsonFlag,
    TopKOption,
    UserError,
    non_empty_query,
    settings_of,
)
from emoreview.cli.output import emit_json, err, out

app = typer.Typer(help="Build and inspect the FAISS index of reviews.", no_args_is_help=True)
search_app = typer.Typer()


@app.command("build")
def build(
    ctx: typer.Context,
    file: Annotated[
        Path | None, typer.Option(help="Reviews Parquet [default: workspace data].")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(help="flat (exact), hnsw, or ivfpq (compressed, re-ranked exactly; 10M+)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate, score sentiment, embed, precompute the 7 emotion answers and publish a new
    index version atomically."""
    from components.analysis.index_build import (
        build_index,
        read_version_themes,
        version_themes_markdown,
    )
    from components.feedback.report import index_data_sha256
    from components.feedback.store import unhelpful_reviews
    from components.hashing import file_sha256
    from components.index.embedder import SentenceTransformerEmbedder
    from components.reviews.schema import read_reviews
    from components.reviews.validate import validate_reviews
    from components.settings import INDEX_KINDS
    from components.validation import raise_for_failures
    from registry.tracking import log_index_build

    settings = settings_of(ctx)
    if kind is not None:
        if kind not in INDEX_KINDS:
            raise UserError(f"unknown index kind {kind!r}: use {', '.join(INDEX_KINDS)}")
        settings.index.kind = kind  # type: ignore[assignment]
    path = file or settings.paths.reviews
    frame = read_reviews(path)
    raise_for_failures(validate_reviews(frame, settings.reviews))
    excluded = unhelpful_reviews(settings)
    if excluded:
        frame = frame[~frame["review_id"].astype(str).isin(excluded)].reset_index(drop=True)
        err.print(f"leaving out {len(excluded)} reviews voted unhelpful (feedback)")
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    data_sha = index_data_sha256(file_sha256(path), excluded)
    manifest = build_index(frame, data_sha, embedder, settings)
    root = settings.paths.index_root
    log_index_build(
        settings, manifest, path, version_themes_markdown(root, manifest.version), excluded
    )
    if as_json:
        emit_json(manifest.model_dump(mode="json"))
        return
    out.print(
        f"Index version [bold]{manifest.version}[/]: {manifest.count} reviews, "
        f"{manifest.kind}, {manifest.dimension}-d {manifest.embedder}"
    )
    out.print(
        f"sentiment: {manifest.extras.get('sentiment')}, "
        f"emotion answers precomputed with {manifest.extras.get('summarizer')}"
    )
    _, themes = read_version_themes(root / "versions" / manifest.version)
    table = Table("emotion", "themes", "largest themes (share of the emotion's reviews)")
    for emotion, found in themes.items():
        largest = ", ".join(f"{t.label} {t.share:.0%}" for t in found.themes[:3])
        table.add_row(emotion, str(len(found.themes)), largest or "none (too few reviews)")
    out.print(table)
    out.print(f"-> {root}")


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    to: Annotated[
        str | None, typer.Option("--to", help="Version to return to [default: the previous].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Point the index's `current` back at the previous intact version (or --to VERSION),
    e.g. after a published version was damaged; `serve reload` then serves it."""
    from components.index.store import rollback_index

    settings = settings_of(ctx)
    old, new = rollback_index(settings.paths.index_root, to, settings.index.lock_timeout_s)
    if as_json:
        emit_json({"from": old, "to": new})
        return
    out.print(f"index current rolled back from {old} to {new}")


@app.command("show")
def show(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Show the current index version and the versions kept on disk."""
    from components.index.store import current_version, list_versions, read_manifest

    root = settings_of(ctx).paths.index_root
    manifest = read_manifest(root / "versions" / current_version(root))
    if as_json:
        emit_json({"current": manifest.model_dump(mode="json"), "versions": list_versions(root)})
        return
    out.print_json(manifest.model_dump_json())
    out.print("versions: " + ", ".join(list_versions(root)))


@search_app.command("search")
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Free-text question or phrase.")],
    emotion: EmotionOption = None,
    k: TopKOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Retrieve the most relevant, diverse reviews for a query."""
    from components.emotions import normalize_emotion
    from components.index.embedder import SentenceTransformerEmbedder
    from components.index.search import ReviewSearcher
    from components.index.store import load_index

    settings = settings_of(ctx)
    non_empty_query(query)
    emotion = normalize_emotion(emotion) if emotion else None
    stored = load_index(settings.paths.index_root, expected_embedder=settings.embedder.model)
    embedder = SentenceTransformerEmbedder.from_settings(settings.embedder)
    searcher = ReviewSearcher(stored, embedder, settings.retrieval)
    hits = searcher.search(query, emotion=emotion, k=k)
    if as_json:
        emit_json(
            {
                "query": query,
                "emotion": emotion,
                "index_version": searcher.index_version,
                "results": [{"score": h.score, **h.review} for h in hits],
            }
        )
        return
    table = Table(
        "#", "score", "emotion", "rating", "review",
        title=f"{query!r} (index {searcher.index_version})", show_lines=True,
    )  # fmt: skip
    for rank, hit in enumerate(hits, start=1):
        table.add_row(
            str(rank),
            f"{hit.score:.3f}",
            str(hit.review.get("emotion")),
            str(hit.review.get("rating") or ""),
            hit.text,
        )
    out.print(table)
