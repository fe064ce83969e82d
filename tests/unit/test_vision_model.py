"""Model, metrics and prediction plumbing (tiny inputs; no training)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from components.emotions import EMOTIONS
from components.settings import VisionSettings
from components.vision import model as model_module
from components.vision.evaluate import (
    compute_metrics,
    predict_probabilities,
    wilson_interval,
    write_evaluation,
)
from components.vision.faces import FaceDetector
from components.vision.model import EmotionResNet, load_weights, save_weights
from components.vision.predict import EmotionPredictor


@pytest.fixture(scope="module")
def model() -> EmotionResNet:
    torch.manual_seed(0)
    return EmotionResNet().eval()


def test_model_shapes_for_both_stems_and_sizes() -> None:
    x = torch.rand(2, 1, 48, 48)
    assert EmotionResNet(stem="standard", input_size=48).eval()(x).shape == (2, 7)
    assert EmotionResNet(stem="compact", input_size=32).eval()(x).shape == (2, 7)


def test_weights_round_trip_without_pickled_objects(model: EmotionResNet, tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    save_weights(model, path)
    restored = load_weights(path)
    x = torch.rand(3, 1, 48, 48)
    with torch.inference_mode():
        assert torch.allclose(model(x), restored(x), atol=1e-6)
    torch.load(path, weights_only=True)  # loadable by the safe loader


def test_loading_weights_never_computes_a_random_initialisation(
    model: EmotionResNet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The network that receives saved weights is built on the meta device: torchvision's
    initialisers run on tensors without storage (0.27 s of CPU saved per load)."""
    path = tmp_path / "best.pt"
    save_weights(model, path)
    initialised: list[torch.device] = []
    kaiming = torch.nn.init.kaiming_normal_

    def recording(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        initialised.append(tensor.device)
        return kaiming(tensor, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(torch.nn.init, "kaiming_normal_", recording)
    restored = load_weights(path)
    assert initialised and {device.type for device in initialised} == {"meta"}
    assert all(t.device.type == "cpu" for t in (*restored.parameters(), *restored.buffers()))
    x = torch.rand(2, 1, 48, 48)
    with torch.inference_mode():
        assert torch.equal(model(x), restored(x))


def test_a_network_whose_state_leaves_a_tensor_unset_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Unsaved(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)
            self.register_buffer("scale", torch.ones(2), persistent=False)  # no device: meta

    monkeypatch.setattr(model_module, "build_architecture", lambda arch: Unsaved())
    state = torch.nn.Linear(2, 2).state_dict()
    with pytest.raises(ValueError, match=r"tensors no state sets: \['scale'\]"):
        model_module.build_with_state(
            {"arch": "unsaved"}, {f"linear.{k}": v for k, v in state.items()}
        )


def test_metrics_on_a_known_confusion() -> None:
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6])
    predicted = np.array([0, 0, 1, 0, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6])
    report = compute_metrics(labels, np.eye(7)[predicted], "toy", "test")
    assert report.accuracy == pytest.approx(13 / 14)
    assert report.per_class["disgust"].accuracy == 0.5
    assert report.per_class["angry"].precision == pytest.approx(2 / 3)
    assert report.confusion_matrix[1][0] == 1
    f1_angry, f1_disgust = 2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5
    assert report.macro_f1 == pytest.approx((f1_angry + f1_disgust + 5) / 7)
    low, high = report.per_class["disgust"].accuracy_ci95
    assert low < 0.5 < high


def test_wilson_interval_is_wide_for_small_classes() -> None:
    low, high = wilson_interval(53, 111)  # disgust-sized test class
    assert 0.38 < low < 0.40 and 0.56 < high < 0.58
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_evaluation_files_are_written(tmp_path: Path) -> None:
    labels = np.arange(14) % 7
    report = compute_metrics(labels, np.eye(7)[labels], "toy", "test")
    paths = write_evaluation(report, tmp_path)
    assert {p.name for p in paths.values()} == {
        "evaluation.json",
        "confusion_matrix.png",
        "per_class_accuracy.png",
    }
    for path in paths.values():
        assert path.stat().st_size > 0
    assert Image.open(paths["confusion_matrix"]).size[0] > 300


@pytest.mark.parametrize("tta", ["none", "flip", "ten_crop"])
def test_tta_probabilities_are_distributions(model: EmotionResNet, tta: str) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probs = predict_probabilities(model, images, batch_size=2, tta=tta)  # type: ignore[arg-type]
    assert probs.shape == (5, 7) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_batched_prediction_equals_one_by_one(model: EmotionResNet) -> None:
    predictor = EmotionPredictor(model, FaceDetector.load(), VisionSettings())
    images = []
    for seed in range(3):
        buffer = io.BytesIO()
        Image.fromarray(
            np.random.default_rng(seed).integers(0, 256, (60, 50), dtype=np.uint8)
        ).save(buffer, "PNG")
        images.append(buffer.getvalue())
    together = predictor.predict_many(images)
    for data, batched in zip(images, together, strict=True):
        alone = predictor.predict(data).primary
        assert alone.emotion == batched.primary.emotion
        for name in EMOTIONS:
            assert alone.probabilities[name] == pytest.approx(
                batched.primary.probabilities[name], abs=1e-5
            )
    assert together[0].note and "no face" in together[0].note
    assert set(together[0].primary.probabilities) == set(EMOTIONS)
