"""The feedback store: what people said about the answers, in a real database.

SQLite in the workspace by default, any SQLAlchemy URL (PostgreSQL for a team) by setting.
The schema is the project's: a ``feedback_schema`` table records its version and
:data:`MIGRATIONS` bring an older database up to date when the store opens.

Privacy: a face is kept only with explicit consent, and only as the 48x48 grayscale crop
the classifier saw (never the photo), as a content-addressed PNG under ``faces/``; without
consent only its sha256 is stored. :meth:`FeedbackStore.purge` deletes rows and the face
files no row refers to any more.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sqlalchemy as sa
from PIL import Image

from components.emotions import EMOTIONS, normalize_emotion
from components.errors import EmoreviewError
from components.files import unique_temp_path
from components.hashing import bytes_sha256
from components.settings import Settings
from components.vision.fer_data import IMAGE_SIZE

SCHEMA_VERSION = 1
Kind = Literal["correction", "review_vote"]

metadata = sa.MetaData()
schema_table = sa.Table(
    "feedback_schema",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("upgraded_at", sa.DateTime(timezone=True), nullable=False),
)
feedback_table = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("predicted_emotion", sa.String(16)),
    sa.Column("predicted_probabilities", sa.Text),
    sa.Column("corrected_emotion", sa.String(16)),
    sa.Column("review_id", sa.String(128), index=True),
    sa.Column("helpful", sa.Boolean),
    sa.Column("model_version", sa.String(64), nullable=False, default=""),
    sa.Column("weights_sha256", sa.String(64), nullable=False, default=""),
    sa.Column("index_version", sa.String(128), nullable=False, default=""),
    sa.Column("image_sha256", sa.String(64)),
    sa.Column("consent", sa.Boolean, nullable=False, default=False),
    sa.Column("face_file", sa.String(256)),
)


def _create_v1(connection: sa.Connection) -> None:
    feedback_table.create(connection, checkfirst=True)


# MIGRATIONS[n] upgrades a database at version n to n + 1 (index 0: an empty database).
MIGRATIONS: tuple[Callable[[sa.Connection], None], ...] = (_create_v1,)


class FeedbackError(EmoreviewError, ValueError):
    """Feedback that cannot be stored as given (unknown emotion, no face, bad database)."""


@dataclass(frozen=True)
class ServedVersions:
    """Which model and index produced the answer the feedback is about."""

    model_version: str = ""
    weights_sha256: str = ""
    index_version: str = ""

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> ServedVersions:
        """The versions a served answer names (its ``versions`` block)."""
        versions = answer.get("versions", {})
        return cls(
            model_version=str(versions.get("model_version", "")),
            weights_sha256=str(versions.get("model_sha256", "")),
            index_version=str(answer.get("index_version") or versions.get("index_version", "")),
        )


@dataclass(frozen=True)
class FeedbackRow:
    id: int
    created_at: datetime
    kind: str
    source: str
    predicted_emotion: str | None
    predicted_probabilities: dict[str, float] | None
    corrected_emotion: str | None
    review_id: str | None
    helpful: bool | None
    model_version: str
    weights_sha256: str
    index_version: str
    image_sha256: str | None
    consent: bool
    face_file: str | None

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["created_at"] = self.created_at.isoformat(timespec="seconds")
        return out


@dataclass(frozen=True)
class PurgeResult:
    rows: int
    files: int


def face_png(pixels: np.ndarray) -> bytes:
    """The stored form of a face crop: 48x48 grayscale PNG (deterministic bytes)."""
    if pixels.ndim != 2 or pixels.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise FeedbackError(
            f"a feedback face is a {IMAGE_SIZE}x{IMAGE_SIZE} grayscale crop, not {pixels.shape}"
        )
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="L").save(
        buffer, format="PNG", optimize=False
    )
    return buffer.getvalue()


def default_url(feedback_dir: Path) -> str:
    return f"sqlite:///{(feedback_dir / 'feedback.db').resolve()}"


class FeedbackStore:
    """Rows in a SQL database, consented faces as files beside it."""

    def __init__(self, url: str, faces_dir: Path) -> None:
        self.url = url
        self.faces_dir = faces_dir
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(url, future=True)
            self.schema_version = self._upgrade()
        except (sa.exc.ArgumentError, sa.exc.OperationalError, ModuleNotFoundError) as error:
            raise FeedbackError(f"cannot open the feedback database {url!r}: {error}") from error

    @classmethod
    def open(cls, url: str | None, feedback_dir: Path) -> FeedbackStore:
        """The store at ``url`` (default: SQLite in ``feedback_dir``), faces in
        ``feedback_dir/faces``."""
        return cls(url or default_url(feedback_dir), feedback_dir / "faces")

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackStore:
        """The store ``feedback.url`` names, faces in the workspace's feedback folder."""
        return cls.open(settings.feedback.url, settings.paths.feedback_dir)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ schema

    def _upgrade(self) -> int:
        with self.engine.begin() as connection:
            schema_table.create(connection, checkfirst=True)
            current = connection.execute(sa.select(sa.func.max(schema_table.c.version))).scalar()
            version = int(current or 0)
            if version > len(MIGRATIONS):
                raise FeedbackError(
                    f"the feedback database is at schema version {version}, newer than this "
                    f"emoreview ({len(MIGRATIONS)}): upgrade emoreview"
                )
            for step in MIGRATIONS[version:]:
                step(connection)
                version += 1
                connection.execute(
                    schema_table.insert().values(version=version, upgraded_at=datetime.now(UTC))
                )
        return version

    # ------------------------------------------------------------------ writing

    def add_correction(
        self,
        *,
        face: np.ndarray,
        corrected_emotion: str,
        predicted_probabilities: dict[str, float] | None,
        versions: ServedVersions,
        consent: bool,
        source: str,
    ) -> FeedbackRow:
        """A person says the right emotion of this face is ``corrected_emotion``.

        ``face`` is the 48x48 crop the classifier saw: its file is written only with
        ``consent``; its sha256 is always recorded. Everything is checked before anything
        is written.
        """
        corrected = normalize_emotion(corrected_emotion)
        png = face_png(face)
        predicted = _predicted(predicted_probabilities)
        digest = bytes_sha256(png)
        face_file = self._write_face(png, digest) if consent else None
        return self._insert(
            kind="correction",
            source=source,
            predicted_emotion=predicted[0],
            predicted_probabilities=predicted[1],
            corrected_emotion=corrected,
            image_sha256=digest,
            consent=consent,
            face_file=face_file,
            versions=versions,
        )

    def add_vote(
        self,
        *,
        review_id: str,
        helpful: bool,
        emotion: str | None,
        versions: ServedVersions,
        source: str,
    ) -> FeedbackRow:
        """A person says a review shown for ``emotion`` did (not) explain it."""
        if not str(review_id).strip():
            raise FeedbackError("a review vote needs the review's id")
        return self._insert(
            kind="review_vote",
            source=source,
            predicted_emotion=normalize_emotion(emotion) if emotion else None,
            review_id=str(review_id),
            helpful=bool(helpful),
            consent=False,
            versions=versions,
        )

    def _write_face(self, png: bytes, digest: str) -> str:
        relative = f"{digest[:2]}/{digest}.png"
        target = self.faces_dir / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = unique_temp_path(target)
            try:
                tmp.write_bytes(png)
                tmp.replace(target)
            finally:
                tmp.unlink(missing_ok=True)
        return relative

    def _insert(self, *, versions: ServedVersions, **values: Any) -> FeedbackRow:
        values.update(
            created_at=datetime.now(UTC),
            model_version=versions.model_version,
            weights_sha256=versions.weights_sha256,
            index_version=versions.index_version,
        )
        with self.engine.begin() as connection:
            new_id = connection.execute(
                feedback_table.insert().values(**values)
            ).inserted_primary_key[0]
        return self.rows(ids=[new_id])[0]

    # ------------------------------------------------------------------ reading

    def rows(self, kind: Kind | None = None, ids: Sequence[int] | None = None) -> list[FeedbackRow]:
        query = sa.select(feedback_table).order_by(feedback_table.c.id)
        if kind is not None:
            query = query.where(feedback_table.c.kind == kind)
        if ids is not None:
            query = query.where(feedback_table.c.id.in_(list(ids)))
        with self.engine.connect() as connection:
            return [_row(mapping) for mapping in connection.execute(query).mappings()]

    def training_corrections(self) -> list[FeedbackRow]:
        """Corrections whose face may be trained on: consented, with the file present."""
        return [
            row
            for row in self.rows("correction")
            if row.consent and row.face_file and (self.faces_dir / row.face_file).is_file()
        ]

    def face_path(self, row: FeedbackRow) -> Path:
        if not row.face_file:
            raise FeedbackError(f"feedback {row.id} has no stored face (no consent)")
        return self.faces_dir / row.face_file

    def unhelpful_counts(self) -> dict[str, int]:
        """Per review id, how many times it was voted unhelpful."""
        query = (
            sa.select(feedback_table.c.review_id, sa.func.count())
            .where(feedback_table.c.kind == "review_vote", feedback_table.c.helpful.is_(False))
            .group_by(feedback_table.c.review_id)
        )
        with self.engine.connect() as connection:
            return {str(review): int(n) for review, n in connection.execute(query)}

    # ------------------------------------------------------------------ deleting

    def purge(self, older_than: timedelta | None = None, everything: bool = False) -> PurgeResult:
        """Delete rows older than ``older_than`` (or all), then every face file no remaining
        row refers to."""
        if older_than is None and not everything:
            raise FeedbackError("purge needs an age (--older-than 90d) or --all")
        query = feedback_table.delete()
        if not everything:
            query = query.where(feedback_table.c.created_at < datetime.now(UTC) - older_than)
        with self.engine.begin() as connection:
            deleted = connection.execute(query).rowcount
            kept = {
                name
                for (name,) in connection.execute(
                    sa.select(feedback_table.c.face_file).where(
                        feedback_table.c.face_file.is_not(None)
                    )
                )
            }
        removed = 0
        if self.faces_dir.is_dir():
            for path in self.faces_dir.glob("*/*.png"):
                if path.relative_to(self.faces_dir).as_posix() not in kept:
                    path.unlink(missing_ok=True)
                    removed += 1
        return PurgeResult(rows=int(deleted or 0), files=removed)


def _predicted(probabilities: dict[str, float] | None) -> tuple[str | None, str | None]:
    if not probabilities:
        return None, None
    clean = {normalize_emotion(name): float(p) for name, p in probabilities.items()}
    if set(clean) != set(EMOTIONS):
        raise FeedbackError(
            f"predicted probabilities must name all 7 emotions, not {sorted(clean)}"
        )
    return max(clean, key=clean.__getitem__), json.dumps(clean, sort_keys=True)


def _row(mapping: Any) -> FeedbackRow:
    values = dict(mapping)
    created = values["created_at"]
    if created.tzinfo is None:  # SQLite returns naive datetimes
        values["created_at"] = created.replace(tzinfo=UTC)
    probabilities = values["predicted_probabilities"]
    values["predicted_probabilities"] = json.loads(probabilities) if probabilities else None
    return FeedbackRow(**values)


def unhelpful_reviews(settings: Settings) -> list[str]:
    """The reviews the next index build leaves out: voted unhelpful at least
    ``feedback.exclude_unhelpful_after`` times (none, and no database opened, when off)."""
    from components.feedback.report import reviews_voted_unhelpful

    threshold = settings.feedback.exclude_unhelpful_after
    if threshold is None:
        return []
    with FeedbackStore.from_settings(settings) as store:
        return reviews_voted_unhelpful(store.unhelpful_counts(), threshold)
