"""The classifier prepared for inference only (the ``vision.inference`` setting).

``eager`` runs the module as trained. ``frozen`` compiles it with TorchScript, freezes it
(weights become constants, BatchNorm is folded into the convolutions) and lets
``torch.jit.optimize_for_inference`` pack the weights for oneDNN once instead of at every
call: the same fp32 arithmetic, so the same predictions, in less time. ``bf16`` does the
same on a bfloat16 copy in channels-last layout, which CPUs with AMX or AVX512-BF16 run much
faster, at the cost of probabilities that move by up to a few hundredths.

TorchScript is deprecated in favour of ``torch.compile`` as of torch 2.14, and its calls
warn so (silenced here). It stays because on this project's CPUs it is what is faster:
``torch.compile`` (inductor, freezing) ran the 48x48 ResNet-50 batch of 16 at 1.07x eager
after a 25 s compile in every process, the frozen script at about 1.3x after 1 s
(``make bench`` measures the modes against eager each run).

Scripting (not tracing) keeps each module's own resize branch, so crops of any size (the
ten-crop TTA's included) go through the same graph. A frozen graph is checked against the
module on a probe batch when it is made; one that disagrees, or a module TorchScript cannot
compile, falls back to eager with a warning, never to different answers.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Literal

import torch
from torch import nn

from components.vision.model import crop_size

log = logging.getLogger(__name__)

InferenceMode = Literal["eager", "frozen", "bf16"]
FROZEN_TOLERANCE = 1e-4
"""Largest probability difference a frozen fp32 graph may show against its module on the
probe batch (measured ≈1e-6 on ResNet-50 and mini-Xception)."""


class FrozenClassifier(nn.Module):
    """A frozen TorchScript classifier that keeps the architecture spec of the module it
    was made from (the predictor reads its crop size there)."""

    def __init__(self, graph: torch.jit.ScriptModule, spec: dict[str, object], mode: str) -> None:
        super().__init__()
        self.graph = graph
        self.spec = spec
        self.mode = mode
        self.dtype = torch.bfloat16 if mode == "bf16" else torch.float32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dtype is torch.float32:
            return self.graph(x)
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.graph(x).float()

    def architecture(self) -> dict[str, object]:
        return {**self.spec, "inference": self.mode}


def _probe(model: nn.Module) -> torch.Tensor:
    side = crop_size(model)
    return torch.rand(2, 1, side, side, generator=torch.Generator().manual_seed(0))


@torch.inference_mode()
def freeze_classifier(model: nn.Module, mode: Literal["frozen", "bf16"]) -> FrozenClassifier:
    """The frozen graph of ``model`` (left unchanged) for ``mode``.

    Raises ``RuntimeError`` when TorchScript cannot compile the module."""
    spec = model.architecture() if hasattr(model, "architecture") else {}
    source = model.eval()
    if mode == "bf16":
        source = _bf16_copy(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        graph = torch.jit.freeze(torch.jit.script(source))
        if mode == "frozen":
            graph = torch.jit.optimize_for_inference(graph)
    return FrozenClassifier(graph, dict(spec), mode)


def _bf16_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(torch.bfloat16).to(memory_format=torch.channels_last).eval()


@torch.inference_mode()
def largest_probability_difference(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    return float((a(x).float().softmax(dim=1) - b(x).float().softmax(dim=1)).abs().max())


def for_inference(model: nn.Module, mode: InferenceMode) -> nn.Module:
    """``model`` as ``vision.inference`` asks; eager when freezing is impossible or would
    change a frozen fp32 graph's answers."""
    if mode == "eager":
        return model.eval()
    try:
        frozen = freeze_classifier(model, mode)
    except (RuntimeError, torch.jit.Error, torch.jit.frontend.FrontendError) as error:
        log.warning("the classifier cannot be frozen (%s); it runs eager", error)
        return model.eval()
    if mode == "frozen":
        gap = largest_probability_difference(model, frozen, _probe(model))
        if not gap <= FROZEN_TOLERANCE:
            log.warning(
                "the frozen classifier's probabilities differ from the module's by %.2g "
                "(allowed %.0e); it runs eager",
                gap,
                FROZEN_TOLERANCE,
            )
            return model.eval()
    return frozen
