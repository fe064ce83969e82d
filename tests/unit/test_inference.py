"""vision.inference: the frozen classifier answers as the module does, the bf16 one
nearly so, and a module that cannot be frozen runs eager rather than differently."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from components.settings import VisionSettings
from components.vision import inference
from components.vision.faces import FaceDetector
from components.vision.inference import FrozenClassifier, for_inference
from components.vision.mini_xception import MiniXception
from components.vision.model import EmotionResNet, TemperatureScaled, crop_size
from components.vision.predict import EmotionPredictor


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    model = EmotionResNet()
    # Spread the logits (a random head answers near-uniformly, hiding any difference).
    with torch.no_grad():
        model.net.fc.weight.mul_(40)
    return TemperatureScaled(model, 1.5).eval()


def faces(count: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(count, 1, side, side, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def frozen(resnet) -> nn.Module:
    return for_inference(resnet, "frozen")


@pytest.mark.parametrize(("count", "side"), [(1, 48), (16, 48), (7, 43), (3, 64)])
def test_the_frozen_graph_gives_the_modules_probabilities(resnet, frozen, count, side) -> None:
    """Any batch size, and crops of other sizes (ten-crop TTA, other inputs) take the
    module's own resize branch: scripted, not traced."""
    assert isinstance(frozen, FrozenClassifier) and crop_size(frozen) == crop_size(resnet)
    x = faces(count, side)
    with torch.inference_mode():
        expected, got = resnet(x).softmax(dim=1), frozen(x).softmax(dim=1)
    assert expected.max() > 0.3  # the probabilities are not all near 1/7
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_bf16_is_close_and_keeps_the_spec(resnet) -> None:
    bf16 = for_inference(resnet, "bf16")
    assert isinstance(bf16, FrozenClassifier) and bf16.architecture()["inference"] == "bf16"
    x = faces(16, 48)
    with torch.inference_mode():
        got, expected = bf16(x), resnet(x)
    assert got.dtype == torch.float32
    gap = (got.softmax(dim=1) - expected.softmax(dim=1)).abs().max()
    assert 0 < gap < 0.1  # really bfloat16, and still about the same answer


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_that_emulates_it_says_frozen_is_faster(
    native: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inference.platform, "machine", lambda: "x86_64")
    for probe in inference.NATIVE_BF16_PROBES:  # what torch reads off the CPU
        monkeypatch.setattr(torch.cpu, probe, lambda: native)
    with caplog.at_level(logging.WARNING):
        bf16 = for_inference(MiniXception().eval(), "bf16")  # small: a quick freeze
    assert isinstance(bf16, FrozenClassifier) and bf16.mode == "bf16"  # the user's choice
    assert ("bf16 is emulated here" in caplog.text) is not native


def test_eager_is_the_module_itself(resnet) -> None:
    assert for_inference(resnet, "eager") is resnet


class Unscriptable(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.zeros((x.shape[0], 7), dtype=np.float32))


def test_a_module_torchscript_cannot_compile_runs_eager(caplog) -> None:
    module = Unscriptable()
    with caplog.at_level(logging.WARNING):
        assert for_inference(module, "frozen") is module
    assert "cannot be frozen" in caplog.text


def test_a_frozen_graph_that_disagrees_is_not_used(resnet, monkeypatch, caplog) -> None:
    monkeypatch.setattr(inference, "FROZEN_TOLERANCE", -1.0)  # any difference disagrees
    with caplog.at_level(logging.WARNING):
        assert for_inference(resnet, "frozen") is resnet
    assert "runs eager" in caplog.text


def test_the_predictor_runs_the_setting_and_answers_the_same(resnet) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 60), dtype=np.uint8)).save(
        buffer, "PNG"
    )
    detector = FaceDetector.load()
    frozen = EmotionPredictor(resnet, detector, VisionSettings())  # the default: frozen
    eager = EmotionPredictor(resnet, detector, VisionSettings(inference="eager"))
    assert isinstance(frozen.model, FrozenClassifier) and eager.model is resnet
    for tta in ("none", "ten_crop"):
        frozen.settings = eager.settings = VisionSettings(tta=tta)
        a, b = frozen.predict(buffer.getvalue()).primary, eager.predict(buffer.getvalue()).primary
        assert a.emotion == b.emotion
        for name, p in a.probabilities.items():
            assert p == pytest.approx(b.probabilities[name], abs=1e-5)
