"""The review data plane end to end through the real ``emoreview`` command (its entry
point in process: tests/cli.py; the bad-input test runs it as its own process)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.cli import run_cli, run_cli_process

pytestmark = pytest.mark.integration


def test_generate_validate_build_search(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    generated = run_cli(ws, "reviews", "generate", "--per-emotion", "30", "--json")
    assert generated.returncode == 0, generated.stderr
    summary = json.loads(generated.stdout)
    assert summary["rows"] == 210 and summary["per_emotion"]["angry"] == 30

    validated = run_cli(ws, "reviews", "validate", "--json")
    assert validated.returncode == 0, validated.stderr
    assert json.loads(validated.stdout)["passed"] is True

    built = run_cli(ws, "index", "build", "--json")
    assert built.returncode == 0, built.stderr
    manifest = json.loads(built.stdout)
    assert (
        manifest["count"] == 210
        and manifest["embedder"] == "sentence-transformers/all-MiniLM-L6-v2"
    )
    assert manifest["data_sha256"] == summary["sha256"]
    # Without a terminal (CI, a log file) progress is one line per stage, never the frames
    # of a bar redrawn with carriage returns.
    assert "\r" not in built.stderr
    assert "embedding reviews: 210 review in" in built.stderr, built.stderr
    assert "scoring sentiment: 210 review in" in built.stderr, built.stderr

    searched = run_cli(ws, "search", "--emotion", "angry", "why are customers angry", "--json")
    assert searched.returncode == 0, searched.stderr
    answer = json.loads(searched.stdout)
    assert answer["index_version"] == manifest["version"]
    assert len(answer["results"]) == 4
    assert {r["emotion"] for r in answer["results"]} == {"angry"}
    assert len({r["text"] for r in answer["results"]}) == 4

    readable = run_cli(ws, "search", "-e", "happy", "-k", "2", "why are customers happy")
    assert readable.returncode == 0 and "happy" in readable.stdout

    # Feedback: a review voted unhelpful twice leaves the next build when the setting asks.
    unhelpful = answer["results"][0]["review_id"]
    for _ in range(2):
        assert run_cli(ws, "feedback", "vote", unhelpful, "--unhelpful").returncode == 0
    config = tmp_path / "exclude.yaml"
    config.write_text("feedback:\n  exclude_unhelpful_after: 2\n")
    rebuilt = run_cli(ws, "--config", str(config), "index", "build", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "leaving out 1 reviews voted unhelpful" in rebuilt.stderr
    without = json.loads(rebuilt.stdout)
    assert without["count"] == 209 and without["data_sha256"] != manifest["data_sha256"]
    again = run_cli(ws, "search", "-e", "angry", "-k", "30", "why are customers angry", "--json")
    assert unhelpful not in {r["review_id"] for r in json.loads(again.stdout)["results"]}
    from components.settings import Settings
    from registry.tracking import connect

    settings = Settings.load(None, {"workspace": str(ws)})
    client = connect(settings)
    experiment = client.get_experiment_by_name(settings.registry.index_experiment)
    [run] = client.search_runs(
        [experiment.experiment_id], f"tags.index_version = '{without['version']}'"
    )
    assert run.data.tags["feedback_excluded_reviews"] == "1"
    excluded = Path(
        client.download_artifacts(run.info.run_id, "excluded_reviews.json", str(tmp_path))
    )
    assert json.loads(excluded.read_text())["review_ids"] == [unhelpful]


def test_bad_input_exits_nonzero_with_a_clear_message(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    missing = run_cli_process(ws, "reviews", "validate")
    assert missing.returncode == 2 and "reviews file not found" in missing.stderr
    assert "Traceback" not in missing.stderr

    no_index = run_cli_process(ws, "search", "anything")
    assert no_index.returncode == 2 and "emoreview index build" in no_index.stderr

    bad_emotion = run_cli_process(ws, "search", "-e", "joyful", "anything")
    assert bad_emotion.returncode == 2 and "unknown emotion 'joyful'" in bad_emotion.stderr

    no_file = run_cli_process(ws, "reviews", "ingest", str(tmp_path / "nope.csv"))
    assert no_file.returncode == 2 and "input file not found" in no_file.stderr


def test_invalid_data_blocks_the_index_build(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    source = tmp_path / "shop.csv"
    pd.DataFrame(
        {
            "text": ["Lovely kettle, boils fast.", "Terrible, it leaked everywhere."],
            "emotion": ["happy", ""],
        }
    ).to_csv(source, index=False)
    ingested = run_cli(ws, "reviews", "ingest", str(source), "--json")
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["per_emotion"]["unlabeled"] == 1

    validated = run_cli(ws, "reviews", "validate")
    assert validated.returncode == 1
    assert "expect_column_values_to_not_be_null" in validated.stdout

    built = run_cli(ws, "index", "build")
    assert built.returncode == 2
    assert "reviews validation failed" in built.stderr
    assert not (ws / "indexes" / "reviews" / "current").exists()


def test_tag_analyze_and_ask(tmp_path: Path, random_classifier_weights: Path) -> None:
    from components.reviews.generate import generate_reviews

    ws = tmp_path / "ws"
    reviews = generate_reviews(per_emotion=40, seed=3)
    unlabeled = reviews.index % 4 == 0
    reviews.loc[unlabeled, "emotion"] = None
    csv = tmp_path / "reviews.csv"
    reviews[["review_id", "text", "emotion"]].to_csv(csv, index=False)
    assert run_cli(ws, "reviews", "ingest", str(csv), "--id-column", "review_id").returncode == 0
    build = run_cli(ws, "index", "build")
    assert build.returncode == 2 and "reviews tag" in build.stderr, build.stderr

    tagged = run_cli(ws, "reviews", "tag", "--json")
    assert tagged.returncode == 0, tagged.stderr
    summary = json.loads(tagged.stdout)
    assert summary["tagged"] == int(unlabeled.sum())
    assert summary["tagger"].startswith("prototype:")
    assert "unlabeled" not in summary["per_emotion"]
    assert run_cli(ws, "index", "build").returncode == 0

    image = tmp_path / "face.png"
    from PIL import Image

    Image.new("L", (64, 64), 120).save(image)
    analyzed = run_cli(ws, "analyze", str(image), "--checkpoint", str(random_classifier_weights))
    assert analyzed.returncode == 0, analyzed.stderr
    text = analyzed.stdout
    assert "Emotion:" in text and "Summary (extractive:" in text and "Index " in text
    assert all(f"\n{n}. [" in text for n in range(1, 5))
    assert "classifier_sha256:" in text

    asked = run_cli(ws, "ask", "why are customers angry?", "--emotion", "angry", "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["emotion"] == "angry" and len(answer["reviews"]) == 4
    assert {r["emotion"] for r in answer["reviews"]} == {"angry"}
    assert answer["sentiment_method"] == "vader:vadersentiment"

    bad = run_cli(ws, "analyze", str(csv), "--checkpoint", str(random_classifier_weights))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    unknown = run_cli(ws, "ask", "why?", "--emotion", "grumpy")
    assert unknown.returncode == 2 and "unknown emotion" in unknown.stderr
