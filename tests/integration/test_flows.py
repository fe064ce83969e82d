"""The Prefect flows under a real temporary Prefect API (``prefect_test_harness``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from components.index.store import IndexNotFoundError, current_version, load_index
from components.settings import Settings
from registry.models import open_registry
from tests.integration.test_registry import SHORT_RECIPE, WEAK_RECIPE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory):
    """A real temporary Prefect API, with task results (the caches) in a fresh folder."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect-results")
    with (
        temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: storage}),
        prefect_test_harness(server_startup_timeout=120),
    ):
        yield storage


def _settings(workspace: Path, **sections: Any) -> dict[str, Any]:
    base = {
        "workspace": str(workspace),
        "reviews": {"per_emotion": 30, "min_per_emotion": 20},
        "flows": {"embed_shard_size": 60},
        "train": SHORT_RECIPE,
    }
    base.update(sections)
    return Settings.from_dict(base).model_dump(mode="json")


def _task_states(flow_state: Any) -> dict[str, list[str]]:
    """Task run name prefix -> state names, for every task of the flow run and subflows."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_ids = [flow_state.state_details.flow_run_id]
    out: dict[str, list[str]] = {}
    with get_client(sync_client=True) as client:
        while flow_run_ids:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_ids.pop()]))
            )
            for run in runs:
                out.setdefault(run.name.rsplit("-", 1)[0], []).append(run.state.name)
                child = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(parent_task_run_id={"any_": [run.id]})
                )
                flow_run_ids += [c.id for c in child]
    return out


def test_reviews_flow_builds_the_index_and_caches_embeddings(prefect_api, tmp_path) -> None:
    from flows.reviews import reviews_flow

    settings = _settings(tmp_path / "ws")
    state = reviews_flow(settings=settings, return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    assert result["changed"] and result["reviews"]["rows"] == 210
    root = Path(settings["workspace"]) / "indexes" / "reviews"
    assert current_version(root) == result["index_version"]
    stored = load_index(root)
    assert {"sentiment_label", "sentiment_score"} <= set(stored.metadata.columns)
    assert (stored.directory / "emotion_answers.json").is_file()
    assert _task_states(state)["embed shard"] == ["Completed"] * 4  # 210 reviews / 60
    # The themes are where a person running the flow looks: a Prefect markdown artifact.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["review-themes"]))
        )
    assert artifacts and artifacts[-1].type == "markdown"
    assert f"index {result['index_version']}" in artifacts[-1].data
    assert "## angry" in artifacts[-1].data and "| share |" in artifacts[-1].data

    unchanged = reviews_flow(settings=settings, return_state=True).result()
    assert not unchanged["changed"] and unchanged["index_version"] == result["index_version"]
    rebuilt = reviews_flow(settings=settings, force=True, return_state=True)
    assert rebuilt.result()["changed"]
    assert _task_states(rebuilt)["embed shard"] == ["Cached"] * 4

    # The index holds exactly the shard files' vectors, in row order.
    shards = sorted(rebuilt.result()["shards"], key=lambda shard: shard["start"])
    assert all(Path(s["path"]).parent == Path(settings["workspace"]) / "cache" / "embeddings"
               for s in shards)  # fmt: skip
    from_files = np.concatenate([np.load(s["path"], allow_pickle=False) for s in shards])
    latest = load_index(root)
    np.testing.assert_array_equal(latest.index.reconstruct_n(0, latest.index.ntotal), from_files)

    # Another shard size never reuses shards of the old length.
    resized = {**settings, "flows": {**settings["flows"], "embed_shard_size": 100}}
    again = reviews_flow(settings=resized, force=True, return_state=True)
    assert again.is_completed(), again.message
    assert _task_states(again)["embed shard"] == ["Completed"] * 3  # 210 reviews / 100

    # Task and flow results are persisted as JSON: nothing is unpickled on a cache hit.
    records = [p for p in prefect_api.rglob("*") if p.is_file()]
    assert records
    for record in records:
        document = json.loads(record.read_text(encoding="utf-8"))  # a pickle is no JSON
        if isinstance(document, dict) and "metadata" in document:  # a task's result record
            assert document["metadata"]["serializer"]["type"] == "json", record


def test_a_planted_review_defect_fails_the_flow_at_validation(prefect_api, tmp_path) -> None:
    from components.reviews.generate import generate_reviews
    from flows.reviews import reviews_flow

    frame = generate_reviews(per_emotion=30, seed=1)
    frame.loc[5, "emotion"] = "grumpy"
    csv = tmp_path / "reviews.csv"
    frame[["review_id", "text", "emotion"]].to_csv(csv, index=False)
    settings = _settings(tmp_path / "ws")
    state = reviews_flow(settings=settings, source=str(csv), return_state=True)
    assert state.is_failed()
    assert "reviews validation failed" in state.message and "emotion" in state.message
    states = _task_states(state)
    assert states["validate reviews"] == ["Failed"]
    assert "embed shard" not in states and "build index" not in states
    with pytest.raises(IndexNotFoundError):
        current_version(Path(settings["workspace"]) / "indexes" / "reviews")


def test_retrain_flow_gate_cache_and_defects(prefect_api, synthetic_faces, tmp_path) -> None:
    from flows.retrain import retrain_flow
    from flows.training import training_flow

    ws = tmp_path / "ws"
    strong = _settings(ws)
    state = retrain_flow(settings=strong, data=str(synthetic_faces), return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    assert first["index"]["changed"] and first["training"]["promoted"]
    assert first["training"]["champion"] == "1" and first["training"]["new_champion"]
    assert first["serving"]["action"] == "packaged"  # no server running: archives ready
    assert first["training"]["test_macro_f1"] >= 0.8

    again = retrain_flow(settings=strong, data=str(synthetic_faces), return_state=True)
    states = _task_states(again)
    assert states["train and evaluate"] == ["Cached"] and states["register model"] == ["Cached"]
    assert again.result()["training"]["version"] == "1" and again.result()["serving"] is None

    # Feedback before the next retraining: a consented correction (merged into train), a
    # consented copy of a test image (dropped and reported) and one without consent.
    offered = add_feedback(Settings.from_dict(strong), synthetic_faces)
    worse_state = retrain_flow(
        settings=_settings(ws, train=WEAK_RECIPE), data=str(synthetic_faces), return_state=True
    )
    worse = worse_state.result()
    assert worse["training"]["version"] == "2" and not worse["training"]["promoted"]
    assert worse["training"]["champion"] == "1" and worse["serving"] is None
    registry = open_registry(Settings.from_dict(strong))
    assert registry.champion_version() == "1"
    check_feedback_lineage(registry, offered, worse_state, tmp_path / "artifacts")
    check_model_cards(registry)

    leaky = tmp_path / "leaky"
    shutil.copytree(synthetic_faces, leaky)
    shutil.copy(leaky / "train/angry/angry_00003.png", leaky / "test/angry/copied.png")
    failed = training_flow(settings=strong, data=str(leaky), return_state=True)
    assert failed.is_failed() and "leaks_into_train_from" in failed.message
    assert _task_states(failed)["validate image data"] == ["Failed"]
    assert registry.versions() == ["1", "2"], "a failed validation registers nothing"


def add_feedback(settings: Settings, faces: Path) -> dict[str, Any]:
    from components.feedback.store import FeedbackStore, ServedVersions
    from components.vision.fer_data import read_gray

    store = FeedbackStore.open(settings.feedback.url, settings.paths.feedback_dir)
    versions = ServedVersions(model_version="1")

    def correct(face: np.ndarray, emotion: str, consent: bool) -> int:
        return store.add_correction(
            face=face, corrected_emotion=emotion, predicted_probabilities=None,
            versions=versions, consent=consent, source="app",
        ).id  # fmt: skip

    fresh = np.random.default_rng(7).integers(0, 255, (48, 48), dtype=np.uint8)
    offered = {
        "kept": correct(fresh, "sad", consent=True),
        "test_copy": correct(read_gray(faces / "test/happy/happy_00000.png"), "sad", True),
        "no_consent": correct(fresh[::-1].copy(), "fear", consent=False),
    }
    store.close()
    return offered


def check_feedback_lineage(
    registry: Any, offered: dict[str, Any], flow_state: Any, folder: Path
) -> None:
    """The consented correction is in train (manifest and lineage); the test copy was
    dropped and reported; the unconsented one never left the store."""
    import pandas as pd
    from prefect.artifacts import Artifact

    tags = registry.record("2").tags
    assert (tags["feedback_rows"], tags["feedback_dropped"]) == ("1", "1")
    assert len(tags["feedback_sha256"]) == 64
    report = json.loads(registry.run_artifact("2", "feedback.json", folder).read_text())
    assert report["kept_ids"] == [offered["kept"]]
    assert [d["feedback_id"] for d in report["dropped_as_test_duplicates"]] == [
        offered["test_copy"]
    ]
    manifest = pd.read_csv(registry.run_artifact("2", "data_manifest.csv", folder))
    from_feedback = manifest[manifest["file"].str.startswith("feedback/")]
    assert from_feedback[["label", "split"]].values.tolist() == [["sad", "train"]]
    assert registry.record("1").tags["feedback_rows"] == "0"
    artifact = Artifact.get("training-feedback")
    assert artifact is not None and "merged into **train** (never val or test): 1" in str(
        artifact.data
    )
    assert flow_state.is_completed()


def check_model_cards(registry: Any) -> None:
    """Every trained version has a card with its run's own numbers."""
    from registry.cards import read_model_card

    for version in registry.versions():
        record = registry.record(version)
        markdown, facts = read_model_card(registry, version)
        accuracy = record.metrics["test_accuracy"]
        assert facts["evaluation"]["accuracy"] == pytest.approx(accuracy)
        assert f"accuracy **{accuracy:.4f}**" in markdown
        temperature = facts["calibration"]["temperature"]
        assert temperature == pytest.approx(record.metrics["temperature"])
        assert f"temperature {temperature:.4f}" in markdown
        assert "must not be used for" in markdown and "no demographic labels" in markdown
        assert facts["gate"]["decision"] == record.tags["promotion_decision"]
        client = registry.client
        assert client.get_model_version(registry.name, version).description == markdown


def test_scheduled_deployments_are_visible_through_the_client(prefect_api) -> None:
    from prefect.client.orchestration import get_client

    from flows.deployments import build_deployments

    settings = Settings.from_dict(
        {"flows": {"retrain_cron": "15 4 * * 2", "timezone": "Europe/Paris"}}
    )
    for deployment in build_deployments(settings, config_file="infra/demo.yaml"):
        deployment.apply()
    with get_client(sync_client=True) as client:
        retrain = client.read_deployment_by_name("retrain/retrain-scheduled")
        rebuild = client.read_deployment_by_name("reviews/index-rebuild-scheduled")
    schedule = retrain.schedules[0].schedule
    assert schedule.cron == "15 4 * * 2" and schedule.timezone == "Europe/Paris"
    assert retrain.parameters == {"config_file": "infra/demo.yaml"}
    assert rebuild.schedules[0].schedule.cron == settings.flows.reviews_cron


def test_dask_index_build_equals_the_threaded_build(prefect_api, tmp_path, monkeypatch) -> None:
    """The flow honours ``flows.task_runner`` by itself (as a scheduled deployment runs it),
    the shards are embedded in the Dask workers, and the flow process embeds no review."""
    import os

    import dask
    from dask.distributed import LocalCluster

    from components.index.embedder import SentenceTransformerEmbedder
    from flows.reviews import reviews_flow

    threaded = _settings(tmp_path / "threads")
    assert reviews_flow(settings=threaded, return_state=True).is_completed()
    encoded_here: list[str] = []
    real_encode = SentenceTransformerEmbedder.encode

    def recording_encode(self, texts, *args, **kwargs):
        encoded_here.extend(texts)
        return real_encode(self, texts, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformerEmbedder, "encode", recording_encode)
    # One worker process: the shards leave the flow's process all the same (a second
    # worker loaded MiniLM again for 6 s of CPU and proved nothing more).
    scratch = str(tmp_path / "dask-scratch")  # not /tmp/dask-scratch-space, left after the run
    with (
        dask.config.set({"temporary-directory": scratch}),
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, local_directory=scratch
        ) as cluster,
    ):
        on_dask = _settings(
            tmp_path / "dask",
            flows={
                "embed_shard_size": 60,
                "task_runner": "dask",
                "dask_address": cluster.scheduler_address,
            },
        )
        state = reviews_flow(settings=on_dask, refresh_cache=True, return_state=True)
        assert state.is_completed(), state.message
    shards = state.result()["shards"]
    assert len(shards) == 4 and os.getpid() not in {s["worker_pid"] for s in shards}
    reviews = set(load_index(Path(on_dask["workspace"]) / "indexes" / "reviews").metadata["text"])
    assert not reviews & set(encoded_here), "the flow process embedded the reviews again"
    one = load_index(Path(threaded["workspace"]) / "indexes" / "reviews")
    other = load_index(Path(on_dask["workspace"]) / "indexes" / "reviews")
    assert one.metadata["review_id"].tolist() == other.metadata["review_id"].tolist()
    a = one.index.reconstruct_n(0, one.index.ntotal)
    b = other.index.reconstruct_n(0, other.index.ntotal)
    np.testing.assert_allclose(a, b, atol=1e-5)
