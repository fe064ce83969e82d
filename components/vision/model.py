"""ResNet-50 for 7 FER-2013 emotions on grayscale faces.

The network takes (N, 1, S, S) float tensors in [0, 1]: grayscale is handled by a 1-channel
first convolution (ImageNet weights, when given, are summed over RGB, which is the same as
replicating gray to 3 channels). Input normalisation lives inside the module, so a saved
``state_dict`` plus this class is everything serving needs (no pickled objects).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from components.emotions import EMOTIONS
from components.files import unique_temp_path

# ImageNet mean/std of RGB folded to one gray channel (luma weights).
GRAY_MEAN = 0.299 * 0.485 + 0.587 * 0.456 + 0.114 * 0.406
GRAY_STD = 0.299 * 0.229 + 0.587 * 0.224 + 0.114 * 0.225


class EmotionResNet(nn.Module):
    """torchvision ResNet-50 with a 1-channel stem and a 7-class head."""

    def __init__(
        self,
        num_classes: int = len(EMOTIONS),
        stem: Literal["standard", "compact"] = "standard",
        input_size: int = 48,
    ) -> None:
        # Imported here: a process that runs a saved frozen graph (a serving worker) uses
        # this module's helpers without building the network (components.vision.inference).
        from torchvision.models import resnet50

        super().__init__()
        self.stem = stem
        self.input_size = input_size
        # zero_init_residual: each block starts as identity, which trains much faster from
        # scratch; ImageNet weights, when loaded, overwrite it.
        net = resnet50(weights=None, zero_init_residual=True)
        if stem == "compact":
            net.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        else:
            net.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Linear(net.fc.in_features, num_classes)
        self.net = net
        # Made on the CPU explicitly: they are not saved, so a network built on the meta
        # device to receive saved weights (build_with_state) must still have them.
        mean = torch.tensor(GRAY_MEAN, device="cpu").view(1, 1, 1, 1)
        std = torch.tensor(GRAY_STD, device="cpu").view(1, 1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 7) for (N, 1, S, S) inputs in [0, 1]."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = nn.functional.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return self.net((x - self.mean) / self.std)

    def architecture(self) -> dict[str, object]:
        return {
            "arch": "resnet50",
            "stem": self.stem,
            "input_size": self.input_size,
            "classes": list(EMOTIONS),
        }


def load_imagenet_weights(model: EmotionResNet, path: Path) -> None:
    """Initialise from a local torchvision ResNet-50 ImageNet ``state_dict`` (not downloaded)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    conv1 = state["conv1.weight"]  # (64, 3, 7, 7)
    if model.stem == "standard":
        state["conv1.weight"] = conv1.sum(dim=1, keepdim=True)
    else:
        state.pop("conv1.weight")
    state.pop("fc.weight", None)
    state.pop("fc.bias", None)
    missing, unexpected = model.net.load_state_dict(state, strict=False)
    allowed = {"fc.weight", "fc.bias", "conv1.weight"}
    if set(missing) - allowed or unexpected:
        raise ValueError(
            f"{path} is not a ResNet-50 state_dict (missing {missing}, unexpected {unexpected})"
        )


class TemperatureScaled(nn.Module):
    """A classifier whose logits are divided by a fitted temperature (calibration).

    The arg-max, and so every predicted emotion, is unchanged; the probabilities a softmax
    makes of the scaled logits match how often the model is right (see
    :mod:`components.vision.calibration`).
    """

    def __init__(self, model: nn.Module, temperature: float) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"a temperature must be positive, not {temperature}")
        self.model = model
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) / self.temperature

    def architecture(self) -> dict[str, object]:
        return self.model.architecture()  # type: ignore[operator]


def temperature_of(model: nn.Module) -> float:
    """The calibration temperature a model applies (1.0: uncalibrated)."""
    return model.temperature if isinstance(model, TemperatureScaled) else 1.0


def save_weights(model: nn.Module, path: Path) -> None:
    """Save architecture + weights (+ the calibration temperature of a
    :class:`TemperatureScaled` model) as plain tensors/primitives (loadable with
    weights_only)."""
    temperature = temperature_of(model)
    inner = model.model if isinstance(model, TemperatureScaled) else model
    payload = {"architecture": inner.architecture(), "state_dict": inner.state_dict()}
    if temperature != 1.0:
        payload["calibration"] = {"temperature": temperature}
    save_torch_atomic(payload, path)


def save_torch_atomic(payload: object, path: Path) -> None:
    """``torch.save`` to ``path`` all or nothing (a temporary file, then a rename), written
    by Python rather than torch's zip writer, so a full disk is an ``OSError`` with its
    errno and the file's name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    tmp = unique_temp_path(path)  # concurrent writers never share a temporary file
    try:
        with tmp.open("wb") as handle:
            handle.write(buffer.getbuffer())
        tmp.replace(path)
    except OSError as error:
        error.filename = error.filename or str(path)
        raise
    finally:
        tmp.unlink(missing_ok=True)


def read_architecture(path: Path) -> dict[str, object]:
    """The architecture spec saved with the weights (name, input size, crop size, ...)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return dict(payload["architecture"])


def build_architecture(arch: dict[str, object]) -> nn.Module:
    """An untrained module for an architecture spec: architectures are data, so the
    predictor, evaluation, the registry and serving handle every one the same way."""
    if list(arch.get("classes", [])) != list(EMOTIONS):  # type: ignore[call-overload]
        raise ValueError(f"the model's classes {arch.get('classes')} are not FER-2013's")
    if arch.get("arch") == "resnet50":
        return EmotionResNet(stem=arch["stem"], input_size=int(arch["input_size"]))  # type: ignore[arg-type, call-overload]
    if arch.get("arch") == "mini_xception":
        from components.vision.mini_xception import MiniXception

        return MiniXception()
    raise ValueError(
        f"unknown architecture {arch.get('arch')!r}: expected resnet50 or mini_xception"
    )


def build_with_state(arch: dict[str, object], state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """The module for ``arch`` holding ``state_dict`` (its tensors, not copies). Built on
    the meta device: the random initialisation that loading would overwrite is never
    computed (a ResNet-50's: `load_weights` took 0.37 s instead of 0.10 on a 2-core
    machine; it happens at every load and after every training)."""
    with torch.device("meta"):
        model = build_architecture(arch)
    model.load_state_dict(state_dict, assign=True)
    unset = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if unset:
        raise ValueError(f"the {arch.get('arch')} network has tensors no state sets: {unset}")
    return model


def load_weights(path: Path) -> nn.Module:
    """Rebuild the model, on the CPU, from :func:`save_weights` output without unpickling
    objects; a calibrated model comes back as a :class:`TemperatureScaled` with its
    temperature."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model = build_with_state(payload["architecture"], payload["state_dict"])
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path} is not an emoreview emotion model: {error}") from error
    temperature = float(payload.get("calibration", {}).get("temperature", 1.0))
    if temperature != 1.0:
        model = TemperatureScaled(model, temperature)
    return model.eval()


def crop_size(model: nn.Module) -> int:
    """The side of the face crops the model was trained on (48 for FER-2013 ResNets)."""
    arch = model.architecture() if hasattr(model, "architecture") else {}
    return int(arch.get("crop_size", 48))
