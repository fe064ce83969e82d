"""int8 (``vision.inference: int8``): a ResNet quantized after calibration on validation
faces answers like its module at every crop size, with its calibration temperature; without
calibration faces, or when it would change predictions, the classifier runs frozen."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from components.vision import inference, quantization
from components.vision.evaluate import predict_probabilities
from components.vision.inference import FrozenClassifier, for_inference
from components.vision.model import load_weights
from components.vision.quantization import (
    calibration_sample,
    load_calibration_faces,
    quantize_int8,
    save_calibration_faces,
)
from components.vision.synthetic_faces import draw_faces
from tests.random_models import save_classifier


def faces(count: int, seed: int) -> np.ndarray:
    return draw_faces(count, seed)[0]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    """A ResNet-50 whose calibration temperature (0.05) makes its probabilities far from
    uniform, so that a forgotten temperature or a wrong input scale shows."""
    folder = tmp_path_factory.mktemp("int8")
    return load_weights(save_classifier(folder / "weights.pt", seed=1, temperature=0.05))


def test_the_int8_graph_answers_like_its_module_at_every_crop_size(calibrated) -> None:
    graph = quantize_int8(calibrated, faces(48, seed=2))
    assert graph is not None
    test = faces(35, seed=5)
    for tta in ("none", "ten_crop"):  # ten-crop classifies 43 px crops: the graph resizes
        expected = predict_probabilities(calibrated, test, tta=tta)
        got = predict_probabilities(graph, test, tta=tta)
        assert (got.argmax(1) == expected.argmax(1)).all(), tta
        assert np.abs(got - expected).max() < 0.1, tta  # int8 moves them a little, not more
        assert expected.max(1).mean() > 0.5, "the temperature makes the module confident"
    crops = torch.rand(4, 1, 43, 43, generator=torch.Generator().manual_seed(0))
    resized = torch.nn.functional.interpolate(crops, size=(48, 48), mode="bilinear")
    with torch.inference_mode():  # a crop is resized to 48 px before the network, as eager
        assert torch.equal(graph(crops), graph(resized))


def test_for_inference_runs_int8_only_with_calibration_faces_that_keep_predictions(
    calibrated, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    int8 = for_inference(calibrated, "int8", calibration=faces(32, seed=2))
    assert isinstance(int8, FrozenClassifier) and int8.mode == "int8"
    assert for_inference(int8, "int8") is int8  # a loaded graph is used as it is

    with caplog.at_level(logging.WARNING):
        uncalibrated = for_inference(calibrated, "int8")
    assert isinstance(uncalibrated, FrozenClassifier) and uncalibrated.mode == "frozen"
    assert "int8 needs calibration faces" in caplog.text

    caplog.clear()
    monkeypatch.setattr(inference, "MIN_AGREEMENT", 1.01)  # no graph can agree enough
    with caplog.at_level(logging.WARNING):
        refused = for_inference(calibrated, "int8", calibration=faces(32, seed=2))
    assert isinstance(refused, FrozenClassifier) and refused.mode == "frozen"
    assert "it runs frozen" in caplog.text


def test_calibration_faces_are_a_fixed_sample_stored_all_or_nothing(tmp_path: Path) -> None:
    images = np.arange(300 * 4 * 4, dtype=np.uint8).reshape(300, 4, 4)
    sample = calibration_sample(images, count=256)
    assert len(sample) == 256 and np.array_equal(sample, calibration_sample(images, count=256))
    assert len(calibration_sample(images[:10], count=256)) == 10
    path = save_calibration_faces(sample, tmp_path / quantization.CALIBRATION_FILE)
    assert np.array_equal(load_calibration_faces(path), sample)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="holds no calibration faces"):
        load_calibration_faces(path)
    with path.open("wb") as handle:
        np.savez_compressed(handle, faces=np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="must be"):
        load_calibration_faces(path)
