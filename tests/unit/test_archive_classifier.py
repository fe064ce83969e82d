"""An image archive's classifier: the frozen graph packaged from the registered weights is
what its workers run, without building the network (no torchvision import, README "Round
two": cold start), and with the same answers; a graph that is not the packaged one is
refused, one that no longer answers as its module did gives way to the weights."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from components.hashing import file_sha256
from components.settings import Settings, VisionSettings
from components.vision.inference import FrozenClassifier
from components.vision.predict import EmotionPredictor
from components.vision.prediction import ClassifierSource
from components.vision.quantization import CALIBRATION_FILE, save_calibration_faces
from components.vision.synthetic_faces import draw_faces
from serving.package import GRAPH_FILE, save_classifier_graph, write_classifier_files
from serving.service import CLASSIFIER_FILE, load_predictor, read_classifier
from tests.random_models import save_classifier

FACES = torch.rand(5, 1, 48, 48, generator=torch.Generator().manual_seed(3))


def packaged(root: Path, mode: str = "frozen", calibration_faces: Path | None = None) -> Path:
    """An archive folder holding what package_archives writes for an image endpoint. The
    model is calibrated to a low temperature: its probabilities are far from uniform."""
    weights = save_classifier(root / "registry" / "weights.pt", seed=1, temperature=0.05)
    source = ClassifierSource(
        weights, version="4", sha256=file_sha256(weights), calibration_faces=calibration_faces
    )
    settings = Settings.from_dict({"workspace": str(root), "vision": {"inference": mode}})
    graph = save_classifier_graph(settings, source, root / "graph.pt")
    bundle = root / "bundle"
    bundle.mkdir()
    write_classifier_files(bundle, source, graph)
    return bundle


def probabilities(predictor: EmotionPredictor) -> torch.Tensor:
    with torch.inference_mode():
        return predictor.model(FACES).softmax(dim=1)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packaged(tmp_path_factory.mktemp("archive"))


def test_the_worker_runs_the_packaged_graph_without_torchvision(bundle: Path) -> None:
    probe = f"""
import json, sys, torch
from pathlib import Path
from components.settings import VisionSettings
from serving.service import load_predictor, read_classifier
bundle = Path({str(bundle)!r})
predictor = load_predictor(bundle, *read_classifier(bundle), VisionSettings())
faces = torch.rand(5, 1, 48, 48, generator=torch.Generator().manual_seed(3))
with torch.inference_mode():
    got = predictor.model(faces).softmax(dim=1).tolist()
print(json.dumps({{"torchvision": "torchvision" in sys.modules,
                  "model": type(predictor.model).__name__, "probabilities": got}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    worker = json.loads(result.stdout.splitlines()[-1])
    assert worker["torchvision"] is False and worker["model"] == "FrozenClassifier"
    source, _ = read_classifier(bundle)
    expected = probabilities(EmotionPredictor.from_weights(source.weights, VisionSettings()))
    assert expected.max() > 0.5  # not near-uniform: a wrong graph would show
    torch.testing.assert_close(torch.tensor(worker["probabilities"]), expected, atol=1e-5, rtol=0)


def test_a_graph_that_is_not_the_packaged_one_is_refused(tmp_path: Path) -> None:
    bundle = packaged(tmp_path)
    graph = bundle / GRAPH_FILE
    data = graph.read_bytes()
    graph.unlink()  # a hard link to the packaging copy: replace, never edit in place
    graph.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(RuntimeError, match="refusing to serve it"):
        load_predictor(bundle, *read_classifier(bundle), VisionSettings())


def test_a_graph_that_answers_otherwise_gives_way_to_the_weights(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bundle = packaged(tmp_path)
    info = json.loads((bundle / CLASSIFIER_FILE).read_text())
    info["frozen_graph"]["probe_probabilities"][0][0] += 0.01  # as if another torch ran it
    (bundle / CLASSIFIER_FILE).write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        predictor = load_predictor(bundle, *read_classifier(bundle), VisionSettings())
    assert "differs from its record" in caplog.text
    assert "loading the registered weights instead" in caplog.text
    source, _ = read_classifier(bundle)
    expected = probabilities(EmotionPredictor.from_weights(source.weights, VisionSettings()))
    torch.testing.assert_close(probabilities(predictor), expected, atol=1e-5, rtol=0)


def test_an_eager_archive_has_no_graph_and_runs_its_weights(tmp_path: Path) -> None:
    bundle = packaged(tmp_path, mode="eager")
    source, info = read_classifier(bundle)
    assert "frozen_graph" not in info and not (bundle / GRAPH_FILE).exists()
    predictor = load_predictor(bundle, source, info, VisionSettings(inference="eager"))
    assert not isinstance(predictor.model, FrozenClassifier)


def test_weights_that_are_not_the_registered_ones_are_never_packaged(tmp_path: Path) -> None:
    weights = save_classifier(tmp_path / "weights.pt", seed=1)
    source = ClassifierSource(weights, version="4", sha256="0" * 64)
    settings = Settings.from_dict({"workspace": str(tmp_path)})
    with pytest.raises(RuntimeError, match="refusing to package it"):
        save_classifier_graph(settings, source, tmp_path / "graph.pt")
    assert not (tmp_path / "graph.pt").exists()


def test_an_int8_archive_carries_the_graph_calibrated_on_the_versions_faces(
    tmp_path: Path,
) -> None:
    stored = save_calibration_faces(draw_faces(32, seed=2)[0], tmp_path / CALIBRATION_FILE)
    bundle = packaged(tmp_path, mode="int8", calibration_faces=stored)
    source, info = read_classifier(bundle)
    record = info["frozen_graph"]
    assert record["mode"] == "int8"
    assert record["agreement"]["faces"] == 32 and record["agreement"]["top1_agreement"] == 1.0
    predictor = load_predictor(bundle, source, info, VisionSettings(inference="int8"))
    assert isinstance(predictor.model, FrozenClassifier) and predictor.model.mode == "int8"
    expected = probabilities(EmotionPredictor.from_weights(source.weights, VisionSettings()))
    got = probabilities(predictor)
    assert torch.equal(got.argmax(1), expected.argmax(1))
    assert 0 < float((got - expected).abs().max()) < 0.1  # int8: close, not identical


def test_an_int8_archive_of_a_version_without_calibration_faces_runs_frozen(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        bundle = packaged(tmp_path, mode="int8")
    assert f"int8 needs calibration faces (a trained version's {CALIBRATION_FILE}" in caplog.text
    source, info = read_classifier(bundle)
    assert info["frozen_graph"]["mode"] == "frozen"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        predictor = load_predictor(bundle, source, info, VisionSettings(inference="int8"))
    assert isinstance(predictor.model, FrozenClassifier) and predictor.model.mode == "frozen"
    # The packaged graph, not the weights frozen again (which would warn of int8 too).
    assert "registered weights instead" not in caplog.text and "int8" not in caplog.text
