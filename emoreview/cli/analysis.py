"""``emoreview analyze`` (a photo) and ``emoreview ask`` (a question): the whole answer,
in-process, or from the served endpoint with ``--url``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emoreview.cli.common import (
    EmotionOption,
    JsonFlag,
    KeyFileOption,
    TopKOption,
    UrlOption,
    classifier_source,
    non_empty_query,
    require_file,
    served_client,
    settings_of,
)
from emoreview.cli.output import emit_json, print_answer

app = typer.Typer()


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

    settings = settings_of(ctx)
    require_file(image, "image")
    pipeline = ReviewAnalysisPipeline.load(settings, classifier_source(settings, checkpoint))
    print_answer(pipeline.from_image(image.read_bytes()), as_json)


@app.command("ask")
def ask(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='A question, e.g. "why are customers angry?"')],
    emotion: EmotionOption = None,
    k: TopKOption = None,
    url: UrlOption = None,
    key_file: KeyFileOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a free-text question from the reviews: summary plus reviews with sentiment.

    In-process by default; with --url, from the served `reviews` endpoint."""
    from components.analysis.answer import Answer
    from components.analysis.pipeline import ReviewAnalysisPipeline
    from components.emotions import normalize_emotion

    settings = settings_of(ctx)
    non_empty_query(query)
    emotion = normalize_emotion(emotion) if emotion else None
    if url:
        body = served_client(settings, url, key_file).reviews(query, emotion=emotion, k=k)
        if as_json:
            emit_json(body)
            return
        body.pop("versions", None)
        print_answer(Answer.model_validate(body), False)
        return
    pipeline = ReviewAnalysisPipeline.load(settings)
    print_answer(pipeline.from_text(query, emotion=emotion, k=k), as_json)
