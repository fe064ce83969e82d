"""Temperature scaling: fitted on an over-confident validation set it lowers the NLL and
the calibration error, keeps every prediction, and travels with the weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from components.vision.calibration import (
    TEMPERATURE_RANGE,
    CalibrationReport,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    write_reliability_diagram,
)
from components.vision.evaluate import predict_probabilities
from components.vision.model import (
    EmotionResNet,
    TemperatureScaled,
    load_weights,
    save_weights,
    temperature_of,
)


def overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits of a 7-class model that is right ~60 % of the time but claims ~99 %."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    logits = rng.normal(0, 1, (n, 7))
    right = rng.random(n) < 0.6
    predicted = np.where(right, labels, (labels + rng.integers(1, 7, n)) % 7)
    logits[np.arange(n), predicted] += 3.0
    return logits * 4.0, labels  # x4: the over-confidence


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_fitted_temperature_lowers_nll_and_ece_and_keeps_predictions() -> None:
    logits, labels = overconfident()
    temperature = fit_temperature(logits, labels)
    assert temperature > 2.0, "an over-confident model is softened"
    assert negative_log_likelihood(logits, labels, temperature) < 0.8 * negative_log_likelihood(
        logits, labels, 1.0
    )
    before, after = softmax(logits), softmax(logits / temperature)
    held_out_logits, held_out_labels = overconfident(seed=1)
    assert expected_calibration_error(
        softmax(held_out_logits / temperature), held_out_labels
    ) < 0.5 * expected_calibration_error(softmax(held_out_logits), held_out_labels)
    assert (before.argmax(1) == after.argmax(1)).all()
    np.testing.assert_allclose(after.sum(axis=1), 1.0, atol=1e-9)


def test_a_well_calibrated_model_keeps_a_temperature_near_one() -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 2, (5000, 7))
    probabilities = softmax(logits)
    labels = np.array([rng.choice(7, p=p) for p in probabilities])  # drawn from its own probs
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)


def test_a_chance_level_model_gets_a_bounded_temperature() -> None:
    rng = np.random.default_rng(4)
    logits, labels = rng.normal(0, 1, (500, 7)), rng.integers(0, 7, 500)
    assert TEMPERATURE_RANGE[0] <= fit_temperature(logits, labels) <= TEMPERATURE_RANGE[1]
    assert fit_temperature(np.zeros((0, 7)), np.zeros(0, dtype=int)) == 1.0


def test_ece_of_a_perfectly_calibrated_bin_is_zero_and_of_a_liar_is_its_gap() -> None:
    labels = np.zeros(10, dtype=int)
    honest = np.tile([[0.7, 0.3, 0, 0, 0, 0, 0]], (10, 1))
    labels[:3] = 1  # argmax 0 is right 7 times in 10 at confidence 0.7
    assert expected_calibration_error(honest, labels) == pytest.approx(0.0)
    liar = np.tile([[1.0, 0, 0, 0, 0, 0, 0]], (10, 1))
    assert expected_calibration_error(liar, labels) == pytest.approx(0.3)


def test_the_temperature_travels_with_the_weights_and_scales_the_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = EmotionResNet().eval()
    path = tmp_path / "calibrated.pt"
    save_weights(TemperatureScaled(model, 2.5), path)
    assert temperature_of(load_weights(path)) == 2.5
    loaded = load_weights(path)
    assert isinstance(loaded, TemperatureScaled) and loaded.temperature == 2.5
    assert loaded.architecture() == model.architecture()
    faces = np.random.default_rng(0).integers(0, 255, (4, 48, 48), dtype=np.uint8)
    with torch.inference_mode():
        raw = model(torch.from_numpy(faces).unsqueeze(1).float() / 255).numpy()
    np.testing.assert_allclose(
        predict_probabilities(loaded, faces), softmax(raw / 2.5), rtol=1e-4, atol=1e-6
    )
    plain = tmp_path / "plain.pt"
    save_weights(model, plain)
    assert temperature_of(load_weights(plain)) == 1.0
    assert not isinstance(load_weights(plain), TemperatureScaled)


def test_the_reliability_diagram_is_a_png(tmp_path: Path) -> None:
    logits, labels = overconfident(500)
    report = CalibrationReport(
        temperature=3.0, fitted_on="val", fitted_count=500, nll_before=2.0, nll_after=1.0,
        ece_before=0.3, ece_after=0.05, evaluated_on="test",
    )  # fmt: skip
    path = write_reliability_diagram(
        softmax(logits), softmax(logits / 3), labels, report, tmp_path / "r.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
