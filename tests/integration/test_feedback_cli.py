"""``emoreview feedback`` end to end through the real command line: add (with and without
consent), refusals that store nothing, vote, list, export, report and purge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.emotions import EMOTIONS
from tests.cli import run_cli

pytestmark = pytest.mark.integration


def astronaut(path: Path) -> Path:
    from skimage import data

    Image.fromarray(data.astronaut()).save(path)
    return path


def stored_faces(ws: Path) -> list[Path]:
    return sorted((ws / "feedback" / "faces").glob("*/*.png"))


def test_feedback_commands(tmp_path: Path, random_classifier_weights: Path) -> None:
    ws = tmp_path / "ws"
    photo = astronaut(tmp_path / "astronaut.png")
    weights = ("--checkpoint", str(random_classifier_weights))

    not_image = tmp_path / "notes.jpg"
    not_image.write_text("this is text, not a photo")
    refused = run_cli(
        ws, "feedback", "add", str(not_image), "--emotion", "sad", "--consent", *weights
    )
    assert refused.returncode == 2 and "not an image" in refused.stderr
    assert "Traceback" not in refused.stderr
    unknown = run_cli(ws, "feedback", "add", str(photo), "--emotion", "hangry", *weights)
    assert unknown.returncode == 2 and "hangry" in unknown.stderr
    listed = run_cli(ws, "feedback", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)["feedback"] == []
    assert stored_faces(ws) == [], "a refused correction stores nothing"

    kept = run_cli(ws, "feedback", "add", str(photo), "-e", "sad", "--consent", *weights, "--json")
    assert kept.returncode == 0, kept.stderr
    row = json.loads(kept.stdout)
    assert row["corrected_emotion"] == "sad" and row["consent"] and row["source"] == "cli"
    assert row["predicted_emotion"] in EMOTIONS
    assert set(row["predicted_probabilities"]) == set(EMOTIONS)
    assert len(row["weights_sha256"]) == 64
    [face_file] = stored_faces(ws)
    with Image.open(face_file) as crop:
        assert crop.size == (48, 48) and crop.mode == "L", "the classifier's crop, not the photo"
        pixels = np.asarray(crop)
    with Image.open(photo) as original:
        assert original.size != (48, 48)
    assert pixels.std() > 0

    anonymous = run_cli(ws, "feedback", "add", str(photo), "-e", "fear", *weights, "--json")
    assert anonymous.returncode == 0, anonymous.stderr
    assert json.loads(anonymous.stdout)["face_file"] is None
    assert stored_faces(ws) == [face_file], "no file without --consent"

    for helpful in ("--unhelpful", "--unhelpful", "--helpful"):
        voted = run_cli(ws, "feedback", "vote", "r-00042", helpful, "--emotion", "angry")
        assert voted.returncode == 0, voted.stderr

    exported = tmp_path / "feedback.json"
    done = run_cli(ws, "feedback", "export", "--json", "--out", str(exported))
    assert done.returncode == 0, done.stderr
    document = json.loads(exported.read_text())
    assert [r["kind"] for r in document["feedback"]] == ["correction"] * 2 + ["review_vote"] * 3

    report = json.loads(run_cli(ws, "feedback", "report", "--json").stdout)
    assert report["corrections"] == 2 and report["corrections_with_consent"] == 1
    angry = report["per_emotion"]["angry"]
    assert angry["most_unhelpful_reviews"] == [{"review_id": "r-00042", "unhelpful_votes": 2}]
    assert angry["helpful_votes"] == 1
    table = run_cli(ws, "feedback", "report")
    assert table.returncode == 0 and "r-00042" in table.stdout

    nothing = run_cli(ws, "feedback", "purge")
    assert nothing.returncode == 2 and "--older-than" in nothing.stderr
    bad_age = run_cli(ws, "feedback", "purge", "--older-than", "soon")
    assert bad_age.returncode == 2 and "90d" in bad_age.stderr
    young = json.loads(run_cli(ws, "feedback", "purge", "--older-than", "90d", "--json").stdout)
    assert young == {"rows": 0, "files": 0}
    purged = json.loads(run_cli(ws, "feedback", "purge", "--all", "--json").stdout)
    assert purged == {"rows": 5, "files": 1}
    assert stored_faces(ws) == [] and json.loads(
        run_cli(ws, "feedback", "list", "--json").stdout
    ) == {"feedback": []}
