"""The feedback store on SQLite (the default) and on a real PostgreSQL: consent rules,
refusals that store nothing, purge, votes, and the project's schema versioning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from components.emotions import EMOTIONS, UnknownEmotionError
from components.feedback.store import (
    SCHEMA_VERSION,
    FeedbackError,
    FeedbackStore,
    ServedVersions,
    feedback_table,
)
from tests.servers import postgres_server

pytestmark = pytest.mark.integration

VERSIONS = ServedVersions(model_version="3", weights_sha256="ab" * 32, index_version="v7")
PROBABILITIES = {e: (0.4 if e == "happy" else 0.1) for e in EMOTIONS}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FeedbackStore]:
    if request.param == "sqlite":
        opened = FeedbackStore.open(None, tmp_path / "feedback")
    else:
        url = request.getfixturevalue("postgresql_database")
        opened = FeedbackStore(url, tmp_path / "feedback" / "faces")
    yield opened
    opened.close()


@pytest.fixture
def postgresql_database(postgres_url: str) -> Iterator[str]:
    """A fresh database per test on the module's PostgreSQL server."""
    name = f"feedback_{datetime.now(UTC).strftime('%H%M%S%f')}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
    admin.dispose()


def face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (48, 48), dtype=np.uint8)


def correction(store: FeedbackStore, seed: int, consent: bool, emotion: str = "sad"):
    return store.add_correction(
        face=face(seed), corrected_emotion=emotion, predicted_probabilities=PROBABILITIES,
        versions=VERSIONS, consent=consent, source="app",
    )  # fmt: skip


def stored_faces(store: FeedbackStore) -> list[Path]:
    return sorted(store.faces_dir.glob("*/*.png")) if store.faces_dir.is_dir() else []


def test_a_correction_with_consent_keeps_the_face_crop_and_without_keeps_none(store) -> None:
    kept = correction(store, 1, consent=True)
    assert kept.kind == "correction" and kept.consent
    assert kept.predicted_emotion == "happy" and kept.corrected_emotion == "sad"
    assert kept.predicted_probabilities == pytest.approx(PROBABILITIES)
    assert (kept.model_version, kept.weights_sha256, kept.index_version) == ("3", "ab" * 32, "v7")
    assert kept.created_at.tzinfo is not None
    path = store.face_path(kept)
    assert stored_faces(store) == [path]
    from PIL import Image

    with Image.open(path) as image:
        assert image.size == (48, 48) and image.mode == "L"

    anonymous = correction(store, 2, consent=False)
    assert anonymous.face_file is None and anonymous.image_sha256
    assert stored_faces(store) == [path], "no file without consent"
    assert [row.id for row in store.training_corrections()] == [kept.id]
    assert [row.id for row in store.rows()] == [kept.id, anonymous.id]


def test_an_unknown_emotion_or_a_non_face_is_refused_and_nothing_is_stored(store) -> None:
    with pytest.raises(UnknownEmotionError):
        correction(store, 1, consent=True, emotion="hangry")
    with pytest.raises(FeedbackError, match="48x48"):
        store.add_correction(
            face=np.zeros((10, 10, 3), dtype=np.uint8), corrected_emotion="sad",
            predicted_probabilities=None, versions=VERSIONS, consent=True, source="cli",
        )  # fmt: skip
    with pytest.raises(FeedbackError, match="7 emotions"):
        store.add_correction(
            face=face(), corrected_emotion="sad", predicted_probabilities={"happy": 1.0},
            versions=VERSIONS, consent=True, source="cli",
        )  # fmt: skip
    with pytest.raises(FeedbackError, match="review"):
        store.add_vote(review_id=" ", helpful=False, emotion="sad", versions=VERSIONS, source="app")
    assert store.rows() == [] and stored_faces(store) == []


def test_purge_removes_old_rows_and_the_files_only_they_referred_to(store) -> None:
    old = correction(store, 1, consent=True)
    recent = correction(store, 2, consent=True)
    twin = correction(store, 2, consent=True)  # the same face again: one file, two rows
    assert store.face_path(recent) == store.face_path(twin) and len(stored_faces(store)) == 2
    with store.engine.begin() as connection:
        connection.execute(
            feedback_table.update()
            .where(feedback_table.c.id == old.id)
            .values(created_at=datetime.now(UTC) - timedelta(days=120))
        )
    with pytest.raises(FeedbackError, match="--all"):
        store.purge()
    result = store.purge(older_than=timedelta(days=90))
    assert (result.rows, result.files) == (1, 1)
    assert [row.id for row in store.rows()] == [recent.id, twin.id]
    assert stored_faces(store) == [store.face_path(recent)]
    result = store.purge(everything=True)
    assert (result.rows, result.files) == (2, 1)
    assert store.rows() == [] and stored_faces(store) == []


def test_review_votes_count_per_review(store) -> None:
    for helpful in (False, False, True):
        store.add_vote(review_id="r-12", helpful=helpful, emotion="Angry", versions=VERSIONS,
                       source="app")  # fmt: skip
    store.add_vote(review_id="r-40", helpful=False, emotion=None, versions=VERSIONS, source="cli")
    assert store.unhelpful_counts() == {"r-12": 2, "r-40": 1}
    votes = store.rows("review_vote")
    assert [v.predicted_emotion for v in votes] == ["angry", "angry", "angry", None]


def test_the_schema_is_versioned_and_reopening_keeps_the_rows(store) -> None:
    row = correction(store, 1, consent=False)
    assert store.schema_version == SCHEMA_VERSION
    again = FeedbackStore(store.url, store.faces_dir)
    assert again.schema_version == SCHEMA_VERSION and [r.id for r in again.rows()] == [row.id]
    with again.engine.begin() as connection:
        versions = connection.execute(sa.text("SELECT version FROM feedback_schema")).all()
        assert [v for (v,) in versions] == list(range(1, SCHEMA_VERSION + 1)), "migrated once"
        connection.execute(
            sa.text("INSERT INTO feedback_schema (version, upgraded_at) VALUES (99, :t)"),
            {"t": datetime.now(UTC)},
        )
    again.close()
    with pytest.raises(FeedbackError, match="newer than this emoreview"):
        FeedbackStore(store.url, store.faces_dir)


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FeedbackError, match="cannot open the feedback database"):
        FeedbackStore("postgresql+psycopg://emo@127.0.0.1:1/none", tmp_path / "faces")
    with pytest.raises(FeedbackError, match="cannot open"):
        FeedbackStore("not a url", tmp_path / "faces")
