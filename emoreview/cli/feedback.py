"""``emoreview feedback``: corrections and review votes, what they say, and their deletion.

The store is ``feedback.url`` (default: SQLite in ``<workspace>/feedback``). A face is kept
only with ``--consent``, and only as the 48x48 grayscale crop the classifier saw.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from emoreview.cli.common import JsonFlag, UserError, classifier_source, require_file, settings_of
from emoreview.cli.output import emit_json, out

if TYPE_CHECKING:
    from components.feedback.store import FeedbackStore
    from components.settings import Settings

app = typer.Typer(
    help="User feedback: correct an emotion, vote on reviews, list, report, export, purge.",
    no_args_is_help=True,
)
AGE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` -> a timedelta."""
    match = AGE.match(text)
    if match is None:
        raise UserError(f"--older-than takes an age like 90d, 12h or 30m, not {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
        unit, timedelta(minutes=amount)
    )


def open_store(settings: Settings) -> FeedbackStore:
    from components.feedback.store import FeedbackStore

    return FeedbackStore.from_settings(settings)


@app.command("add")
def add(
    ctx: typer.Context,
    image: Annotated[Path, typer.Argument(help="The photo whose emotion was wrong.")],
    emotion: Annotated[str, typer.Option("--emotion", "-e", help="The right emotion.")],
    consent: Annotated[
        bool,
        typer.Option(
            "--consent",
            help="Keep the 48x48 face crop so the next training can learn from it "
            "(without it only the correction and the crop's sha256 are stored).",
        ),
    ] = False,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Weights file [default: the registry's champion].")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Correct the emotion of the largest face in IMAGE (classified by the champion, whose
    prediction is recorded with the correction)."""
    from components.emotions import normalize_emotion
    from components.feedback.store import ServedVersions
    from components.vision.faces import classified_face
    from components.vision.predict import EmotionPredictor

    settings = settings_of(ctx)
    require_file(image, "image")
    corrected = normalize_emotion(emotion)  # refused before any work
    source = classifier_source(settings, checkpoint)
    predictor = EmotionPredictor.from_weights(source.weights, settings.vision)
    gray = predictor.decode(image.read_bytes())
    face = predictor.predict_decoded([gray], all_faces=False)[0].faces[0]
    with open_store(settings) as store:
        row = store.add_correction(
            face=classified_face(gray, face.box, margin=predictor.detector.margin),
            corrected_emotion=corrected,
            predicted_probabilities=face.probabilities,
            versions=ServedVersions(
                model_version=source.version or "",
                weights_sha256=source.describe()["classifier_sha256"],
            ),
            consent=consent,
            source="cli",
        )
    if as_json:
        emit_json(row.as_dict())
        return
    kept = "face crop kept (consent)" if consent else "no face kept (no --consent)"
    out.print(
        f"feedback {row.id}: predicted {row.predicted_emotion}, corrected to "
        f"{row.corrected_emotion}; {kept}",
        soft_wrap=True,
    )


@app.command("vote")
def vote(
    ctx: typer.Context,
    review_id: Annotated[str, typer.Argument(help="The review's id (from an answer).")],
    helpful: Annotated[
        bool, typer.Option("--helpful/--unhelpful", help="Did it explain the emotion?")
    ],
    emotion: Annotated[
        str | None, typer.Option("--emotion", "-e", help="The emotion it was shown for.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Say whether a review shown in an answer explained the emotion."""
    from components.feedback.store import ServedVersions

    with open_store(settings_of(ctx)) as store:
        row = store.add_vote(
            review_id=review_id,
            helpful=helpful,
            emotion=emotion,
            versions=ServedVersions(),
            source="cli",
        )
    if as_json:
        emit_json(row.as_dict())
        return
    out.print(f"feedback {row.id}: review {review_id} {'helpful' if helpful else 'unhelpful'}")


@app.command("list")
def list_rows(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every feedback row: when, what was predicted, the correction or vote, versions."""
    with open_store(settings_of(ctx)) as store:
        rows = store.rows()
    if as_json:
        emit_json({"feedback": [row.as_dict() for row in rows]})
        return
    if not rows:
        out.print("no feedback yet: the web app's Photo tab or `emoreview feedback add`")
        return
    table = Table("id", "when (UTC)", "kind", "predicted", "correction / vote", "model", "face")
    for row in rows:
        said = (
            str(row.corrected_emotion)
            if row.kind == "correction"
            else f"{row.review_id}: {'👍' if row.helpful else '👎'}"
        )
        table.add_row(
            str(row.id),
            row.created_at.strftime("%Y-%m-%d %H:%M"),
            row.kind,
            str(row.predicted_emotion or ""),
            said,
            row.model_version,
            "kept" if row.face_file else "-",
        )
    out.print(table)


@app.command("export")
def export(
    ctx: typer.Context,
    as_json: JsonFlag = True,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """All rows as one JSON document (face files are named, not embedded)."""
    import json

    with open_store(settings_of(ctx)) as store:
        document = {
            "faces_dir": str(store.faces_dir),
            "feedback": [row.as_dict() for row in store.rows()],
        }
    if output is None:
        emit_json(document)
        return
    output.write_text(json.dumps(document, indent=2))
    out.print(f"{len(document['feedback'])} feedback rows written to {output}")


@app.command("report")
def report(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Per emotion: corrections from and to it, and the reviews most often voted unhelpful."""
    from components.feedback.report import feedback_report

    with open_store(settings_of(ctx)) as store:
        summary = feedback_report(store.rows())
    if as_json:
        emit_json(summary)
        return
    out.print(
        f"{summary['rows']} feedback rows: {summary['corrections']} corrections "
        f"({summary['corrections_with_consent']} with a kept face), "
        f"{summary['review_votes']} review votes"
    )
    table = Table("emotion", "corrected away", "corrected to", "👍", "👎", "most unhelpful")
    for emotion, facts in summary["per_emotion"].items():
        table.add_row(
            emotion,
            str(facts["corrected_from"]),
            ", ".join(f"{name} ×{n}" for name, n in facts["corrected_to"] if name != emotion),
            str(facts["helpful_votes"]),
            str(facts["unhelpful_votes"]),
            ", ".join(
                f"{r['review_id']} ×{r['unhelpful_votes']}" for r in facts["most_unhelpful_reviews"]
            ),
        )
    out.print(table)


@app.command("purge")
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Delete feedback older than e.g. 90d.")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Delete all feedback.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Delete feedback rows (and every face file no remaining row refers to)."""
    if older_than is None and not everything:
        raise UserError("say what to delete: --older-than 90d or --all")
    with open_store(settings_of(ctx)) as store:
        result = store.purge(
            older_than=parse_age(older_than) if older_than else None, everything=everything
        )
    if as_json:
        emit_json({"rows": result.rows, "files": result.files})
        return
    out.print(f"purged {result.rows} feedback rows and {result.files} face files")
