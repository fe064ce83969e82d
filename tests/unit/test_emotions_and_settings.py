from __future__ import annotations

from pathlib import Path

import pytest

from components.emotions import EMOTIONS, UnknownEmotionError, emotion_query, normalize_emotion
from components.settings import ConfigFileError, Settings


def test_fer_order_is_fixed() -> None:
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize(
    ("raw", "name"),
    [("Joy", "happy"), (" anger ", "angry"), ("SAD", "sad"), ("surprised", "surprise")],
)
def test_normalize_emotion_accepts_synonyms(raw: str, name: str) -> None:
    assert normalize_emotion(raw) == name


def test_unknown_emotion_is_a_clear_error() -> None:
    with pytest.raises(UnknownEmotionError, match="expected one of angry"):
        normalize_emotion("joyful")


def test_emotion_query_is_the_original_question() -> None:
    assert emotion_query("fear") == "What are customers saying who feel fear?"


def test_settings_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("index:\n  kind: hnsw\n  hnsw_m: 16\nretrieval:\n  k: 3\n  fetch_k: 30\n")
    assert Settings.load().index.kind == "flat"  # default
    from_yaml = Settings.load(config)
    assert (from_yaml.index.kind, from_yaml.index.hnsw_m, from_yaml.retrieval.k) == ("hnsw", 16, 3)
    monkeypatch.setenv("EMOREVIEW_RETRIEVAL__K", "6")
    monkeypatch.setenv("EMOREVIEW_WORKSPACE", str(tmp_path / "envws"))
    from_env = Settings.load(config)
    assert from_env.retrieval.k == 6 and from_env.retrieval.fetch_k == 30
    assert from_env.workspace == tmp_path / "envws"
    flags = Settings.load(config, {"retrieval": {"k": 8, "fetch_k": None}, "workspace": None})
    assert flags.retrieval.k == 8 and flags.retrieval.fetch_k == 30
    assert flags.workspace == tmp_path / "envws"


def test_settings_round_trip_ignores_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.load(overrides={"index": {"kind": "hnsw"}})
    monkeypatch.setenv("EMOREVIEW_INDEX__KIND", "flat")
    assert Settings.from_dict(settings.model_dump(mode="json")).index.kind == "hnsw"


def test_bad_settings_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="not found"):
        Settings.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigFileError, match="mapping"):
        Settings.load(bad)


def test_unknown_setting_is_rejected() -> None:
    with pytest.raises(ValueError):
        Settings.from_dict({"index": {"kidn": "flat"}})


def test_paths_are_derived_without_creating_anything(tmp_path: Path) -> None:
    settings = Settings.from_dict({"workspace": str(tmp_path / "ws")})
    assert settings.paths.reviews == tmp_path / "ws" / "data" / "reviews.parquet"
    assert not (tmp_path / "ws").exists()


def test_the_settings_example_lists_every_setting_with_its_default() -> None:
    from pathlib import Path

    import yaml

    example = Path(__file__).resolve().parents[2] / "infra" / "settings.example.yaml"
    listed = yaml.safe_load(example.read_text(encoding="utf-8"))
    assert listed == Settings.from_dict({}).model_dump(mode="json")
