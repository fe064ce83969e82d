"""The classifier in int8: post-training static quantization (``vision.inference: int8``).

A ResNet's network is quantized with torch.ao's FX graph mode: int8 weights per output
channel, and int8 activations whose ranges are observed (by histogram) on calibration faces
from the validation split, over the full 8 bits (oneDNN's recipe; the default x86 recipe
keeps 7 bits for CPUs without VNNI and moved probabilities 2.7x more). Resizing,
normalisation and the calibration temperature stay in float around it, and the whole is
scripted and frozen like ``frozen``. In `make bench` on this project's 2-core CPU it ran
4.3x eager, kept every one of 1,000 predictions and moved probabilities by up to 0.05: so
it is opt-in, and the model card reports its test accuracy next to fp32's.

Each training run stores a sample of its validation faces (:data:`CALIBRATION_FILE`);
packaging quantizes from it, as it freezes ``frozen``. A quantized graph that disagrees
with its module on those faces is not used.
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from torch import nn

from components.files import atomic_writer
from components.vision.model import EmotionResNet, TemperatureScaled, temperature_of

log = logging.getLogger(__name__)

CALIBRATION_FACES = 256
CALIBRATION_FILE = "calibration_faces.npz"
MIN_AGREEMENT = 0.99
"""Least top-1 agreement with its module, on the calibration faces, of an int8 graph that
is used (measured 1.000 on 1,000 test faces of a trained ResNet-50)."""


def calibration_sample(
    images: np.ndarray, count: int = CALIBRATION_FACES, seed: int = 0
) -> np.ndarray:
    """At most ``count`` of ``images`` (N, H, W), drawn with a fixed seed, in their order."""
    if len(images) <= count:
        return np.ascontiguousarray(images)
    chosen = np.random.default_rng(seed).choice(len(images), count, replace=False)
    return np.ascontiguousarray(images[np.sort(chosen)])


def save_calibration_faces(faces: np.ndarray, path: Path) -> Path:
    """Write ``faces`` (N, H, W uint8) all or nothing."""
    with atomic_writer(path) as handle:
        np.savez_compressed(handle, faces=faces)
    return path


def load_calibration_faces(path: Path) -> np.ndarray:
    """The faces :func:`save_calibration_faces` wrote; ValueError for anything else."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            faces = stored["faces"]
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path} holds no calibration faces: {error}") from error
    if faces.dtype != np.uint8 or faces.ndim != 3 or len(faces) == 0:
        raise ValueError(f"{path}: calibration faces must be (N, H, W) uint8, not {faces.shape}")
    return faces


class Int8Classifier(nn.Module):
    """A quantized network with the float steps around it: resize to the input size,
    normalise, and divide the logits by the calibration temperature."""

    def __init__(self, net: nn.Module, model: EmotionResNet, temperature: float) -> None:
        super().__init__()
        self.net = net
        self.input_size = model.input_size
        self.temperature = temperature
        self.register_buffer("mean", model.mean.detach().cpu().clone())
        self.register_buffer("std", model.std.detach().cpu().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = nn.functional.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return self.net((x - self.mean) / self.std) / self.temperature


@dataclass(frozen=True)
class Agreement:
    """How an int8 graph answers against its module on the same faces."""

    faces: int
    top1_agreement: float
    max_probability_difference: float


class Int8Report(BaseModel):
    """The int8 graph against the fp32 model on the test split (the model card's line)."""

    calibration_faces: int
    test_accuracy: float
    test_macro_f1: float
    fp32_test_accuracy: float
    fp32_test_macro_f1: float
    top1_agreement: float
    max_probability_difference: float
    mean_probability_difference: float

    def summary(self) -> str:
        return (
            f"int8 (calibrated on {self.calibration_faces} validation faces): test accuracy "
            f"{self.test_accuracy:.4f} (fp32 {self.fp32_test_accuracy:.4f}), macro-F1 "
            f"{self.test_macro_f1:.4f} (fp32 {self.fp32_test_macro_f1:.4f}); the same "
            f"prediction on {self.top1_agreement:.1%} of test faces, probabilities moved by "
            f"{self.mean_probability_difference:.4f} on average and "
            f"{self.max_probability_difference:.4f} at most"
        )


@torch.inference_mode()
def agreement(module: nn.Module, graph: nn.Module, faces: np.ndarray) -> Agreement:
    x = torch.from_numpy(faces).unsqueeze(1).float().div_(255.0)
    expected, got = module.eval()(x).softmax(dim=1), graph(x).softmax(dim=1)
    return Agreement(
        faces=len(faces),
        top1_agreement=float((expected.argmax(1) == got.argmax(1)).float().mean()),
        max_probability_difference=float((expected - got).abs().max()),
    )


def quantize_int8(model: nn.Module, faces: np.ndarray) -> torch.jit.ScriptModule | None:
    """``model``'s int8 graph (scripted, frozen; saveable) calibrated on ``faces`` (N, H, W
    uint8); None, with a warning, for a network this does not quantize (only ResNets:
    mini-Xception runs ``frozen``). The graph runs on the CPU wherever ``model`` is, and
    ``model`` stays where it is."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    inner = model.model if isinstance(model, TemperatureScaled) else model
    if not isinstance(inner, EmotionResNet):
        log.warning("int8 quantizes ResNets only, not %s", type(inner).__name__)
        return None
    x = torch.from_numpy(faces).unsqueeze(1).float().div_(255.0)
    side = inner.input_size
    with warnings.catch_warnings():  # torch.ao.quantization's and TorchScript's deprecations
        warnings.simplefilter("ignore")
        observed = prepare_fx(
            copy.deepcopy(inner.net).cpu().eval(),
            get_default_qconfig_mapping("onednn"),
            example_inputs=(torch.zeros(1, 1, side, side),),
        )
        wrapped = Int8Classifier(observed, inner, temperature_of(model)).eval()
        with torch.no_grad():
            for start in range(0, len(x), 32):
                wrapped(x[start : start + 32])  # the observers record activation ranges
        wrapped.net = convert_fx(observed)
        return torch.jit.freeze(torch.jit.script(wrapped))
