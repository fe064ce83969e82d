"""mini-Xception, the FER-2013 classifier of the face_classification work (MIT licence),
as a PyTorch module, and the one-time conversion of its Keras HDF5 weights.

The layers mirror the Keras graph stored in the file: a conv + BN + ReLU stem (two 3x3
"valid" convolutions of 8 filters), four residual blocks (two 3x3 separable convolutions
with BN, a 3x3 stride-2 max-pool, plus a 1x1 stride-2 convolution + BN shortcut) of 16,
32, 64 and 128 filters, a 3x3 convolution to 7 channels, global average pooling.
TensorFlow's "same" padding is reproduced exactly: a stride-2 max-pool pads the bottom
and right more than the top and left, with -inf, never 0.

Like :class:`~components.vision.model.EmotionResNet`, the module takes (N, 1, S, S)
faces in [0, 1] and owns its preprocessing: resize to 64x64 and scale to [-1, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.emotions import EMOTIONS

INPUT_SIZE = 64
STEM_FILTERS = 8
BLOCK_FILTERS = (16, 32, 64, 128)
BN_EPSILON = 1e-3  # Keras' default, stored in the file's config


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON)


class SeparableConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias), 3x3, stride 1, "same"."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def max_pool_same(x: torch.Tensor, size: int = 3, stride: int = 2) -> torch.Tensor:
    """MaxPooling2D(padding="same"): TensorFlow's asymmetric padding, with -inf."""
    pads: list[int] = []  # (written so that TorchScript compiles it: see vision.inference)
    for length in (x.shape[-1], x.shape[-2]):  # F.pad wants the last dimension first
        out = -(-length // stride)  # ceil
        total = max((out - 1) * stride + size - length, 0)
        pads.append(total // 2)
        pads.append(total - total // 2)
    padded = nn.functional.pad(x, pads, value=float("-inf"))
    return nn.functional.max_pool2d(padded, size, stride)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # A 1x1 stride-2 convolution needs no padding for "same" at any input size.
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(out_channels)
        self.sep1 = SeparableConv(in_channels, out_channels)
        self.bn1 = _bn(out_channels)
        self.sep2 = SeparableConv(out_channels, out_channels)
        self.bn2 = _bn(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = torch.relu(self.bn1(self.sep1(x)))
        y = max_pool_same(self.bn2(self.sep2(y)))
        return y + residual


class MiniXception(nn.Module):
    """mini-Xception for the 7 FER-2013 classes (about 58 k parameters)."""

    def __init__(self, num_classes: int = len(EMOTIONS)) -> None:
        super().__init__()
        self.input_size = INPUT_SIZE
        self.conv1 = nn.Conv2d(1, STEM_FILTERS, 3, bias=False)
        self.bn1 = _bn(STEM_FILTERS)
        self.conv2 = nn.Conv2d(STEM_FILTERS, STEM_FILTERS, 3, bias=False)
        self.bn2 = _bn(STEM_FILTERS)
        channels = (STEM_FILTERS, *BLOCK_FILTERS)
        self.blocks = nn.Sequential(
            *(ResidualBlock(a, b) for a, b in zip(channels, channels[1:], strict=False))
        )
        self.head = nn.Conv2d(BLOCK_FILTERS[-1], num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, 7) for (N, 1, S, S) faces in [0, 1]."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = nn.functional.interpolate(
                x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False
            )
        return self.logits_of_normalized(x * 2.0 - 1.0)

    def logits_of_normalized(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for 64x64 inputs already scaled to [-1, 1] (the Keras model's input)."""
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.head(x).mean(dim=(2, 3))

    def architecture(self) -> dict[str, object]:
        return {
            "arch": "mini_xception",
            "input_size": self.input_size,
            "crop_size": self.input_size,
            "channels": 1,
            "normalisation": "x / 255 * 2 - 1",
            "classes": list(EMOTIONS),
        }


# Keras layer names in the file, in the order of the module's layers.
_STEM = (
    ("conv1", "conv2d_1", "batch_normalization_1"),
    ("conv2", "conv2d_2", "batch_normalization_2"),
)
_BLOCKS = (  # shortcut conv, shortcut BN, separable 1, BN 1, separable 2, BN 2
    ("conv2d_3", "batch_normalization_3", 1, 4, 2, 5),
    ("conv2d_4", "batch_normalization_6", 3, 7, 4, 8),
    ("conv2d_5", "batch_normalization_9", 5, 10, 6, 11),
    ("conv2d_6", "batch_normalization_12", 7, 13, 8, 14),
)


def convert_keras_hdf5(path: Path) -> MiniXception:
    """Build the module from the Keras 2 HDF5 file's ``model_weights`` (h5py, no Keras)."""
    import h5py

    with h5py.File(path, "r") as file:
        weights = file["model_weights"]

        def tensor(layer: str, name: str) -> torch.Tensor:
            group = weights[layer]
            (inner,) = list(group.keys())
            return torch.from_numpy(np.asarray(group[inner][f"{name}:0"], dtype=np.float32))

        def conv(layer: str) -> torch.Tensor:  # HWIO -> OIHW
            return tensor(layer, "kernel").permute(3, 2, 0, 1).contiguous()

        def bn(layer: str, prefix: str) -> dict[str, torch.Tensor]:
            return {
                f"{prefix}.weight": tensor(layer, "gamma"),
                f"{prefix}.bias": tensor(layer, "beta"),
                f"{prefix}.running_mean": tensor(layer, "moving_mean"),
                f"{prefix}.running_var": tensor(layer, "moving_variance"),
            }

        def separable(index: int, prefix: str) -> dict[str, torch.Tensor]:
            layer = f"separable_conv2d_{index}"
            depthwise = tensor(layer, "depthwise_kernel")  # (k, k, in, 1) -> (in, 1, k, k)
            pointwise = tensor(layer, "pointwise_kernel")  # (1, 1, in, out) -> (out, in, 1, 1)
            return {
                f"{prefix}.depthwise.weight": depthwise.permute(2, 3, 0, 1).contiguous(),
                f"{prefix}.pointwise.weight": pointwise.permute(3, 2, 0, 1).contiguous(),
            }

        state: dict[str, torch.Tensor] = {}
        for module, conv_layer, bn_layer in _STEM:
            state[f"{module}.weight"] = conv(conv_layer)
            bn_prefix = module.replace("conv", "bn")
            state.update(bn(bn_layer, bn_prefix))
        for i, (short, short_bn, sep1, bn1, sep2, bn2) in enumerate(_BLOCKS):
            prefix = f"blocks.{i}"
            state[f"{prefix}.shortcut.weight"] = conv(short)
            state.update(bn(short_bn, f"{prefix}.shortcut_bn"))
            state.update(separable(sep1, f"{prefix}.sep1"))
            state.update(bn(f"batch_normalization_{bn1}", f"{prefix}.bn1"))
            state.update(separable(sep2, f"{prefix}.sep2"))
            state.update(bn(f"batch_normalization_{bn2}", f"{prefix}.bn2"))
        state["head.weight"] = conv("conv2d_7")
        state["head.bias"] = tensor("conv2d_7", "bias")
    model = MiniXception()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if [m for m in missing if not m.endswith("num_batches_tracked")] or unexpected:
        raise ValueError(f"{path}: weights do not fit mini-Xception ({missing}, {unexpected})")
    return model.eval()
