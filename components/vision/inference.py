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

``int8`` quantizes the network to int8, calibrated on faces from the validation split
(:mod:`components.vision.quantization`); without those faces, or for a network it does not
quantize, or when the graph disagrees with the module on them, the classifier runs
``frozen`` instead, with a warning.

A frozen graph can be saved (:func:`save_frozen_graph`) and run by another process without
the module (:func:`load_frozen_graph`): serving archives carry one, so their workers never
import torchvision (its ``torch._dynamo`` import alone is 0.8 s of CPU) nor compile the
graph again. The probe batch's probabilities of the module travel with it, and a loaded
graph that disagrees with them is not used either (an int8 graph's probe probabilities
are its own at packaging: a loaded one must answer as it did then).
"""

from __future__ import annotations

import copy
import logging
import math
import platform
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

from components.vision.model import crop_size
from components.vision.quantization import (
    CALIBRATION_FILE,
    MIN_AGREEMENT,
    Agreement,
    agreement,
    quantize_int8,
)

log = logging.getLogger(__name__)

InferenceMode = Literal["eager", "frozen", "bf16", "int8"]
GraphMode = Literal["frozen", "bf16", "int8"]
NATIVE_BF16_PROBES = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu
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


def native_bf16() -> bool | None:
    """Whether this x86 CPU computes bfloat16 natively (AVX512-BF16 or AMX); None where
    torch cannot tell (another architecture, or a torch without these probes). Without
    them oneDNN emulates bf16: on a 2-core AVX-512 machine 149 images/s against 282 eager
    and 369 frozen (2026-12-06), where AMX machines ran it at 1.4-2x eager."""
    probes = [getattr(torch.cpu, name, None) for name in NATIVE_BF16_PROBES]
    if platform.machine().lower() not in ("x86_64", "amd64") or None in probes:
        return None
    return any(probe() for probe in probes)  # type: ignore[misc]


def _probe(side: int) -> torch.Tensor:
    return torch.rand(2, 1, side, side, generator=torch.Generator().manual_seed(0))


def _frozen_graph(model: nn.Module, mode: Literal["frozen", "bf16"]) -> torch.jit.ScriptModule:
    """``model`` (left unchanged) scripted and frozen: what can be saved."""
    source = _bf16_copy(model) if mode == "bf16" else model.eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        return torch.jit.freeze(torch.jit.script(source))


def _runnable(
    graph: torch.jit.ScriptModule, spec: dict[str, object], mode: str
) -> FrozenClassifier:
    """A frozen graph ready to run: fp32 weights packed for oneDNN (not saveable)."""
    if mode == "frozen":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
            graph = torch.jit.optimize_for_inference(graph)
    return FrozenClassifier(graph, dict(spec), mode)


def _bf16_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(torch.bfloat16).to(memory_format=torch.channels_last).eval()


@torch.inference_mode()
def largest_probability_difference(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    return float((a(x).float().softmax(dim=1) - b(x).float().softmax(dim=1)).abs().max())


@torch.inference_mode()
def _checked_graph(
    model: nn.Module,
    mode: GraphMode,
    save_to: Path | None = None,
    calibration: np.ndarray | None = None,
) -> tuple[FrozenClassifier | None, Agreement | None]:
    """``model``'s frozen graph for ``mode`` (int8: calibrated on ``calibration``), saved
    to ``save_to`` first when given (the runnable graph cannot be saved), and for int8 its
    agreement with ``model`` on those faces; None, with a warning, when ``model`` must run
    otherwise (eager; int8: frozen)."""
    spec = model.architecture() if hasattr(model, "architecture") else {}
    if mode == "int8":
        graph = None if calibration is None else quantize_int8(model, calibration)
        if graph is None:
            return None, None
    else:
        try:
            graph = _frozen_graph(model, mode)
        except (RuntimeError, torch.jit.Error, torch.jit.frontend.FrontendError) as error:
            log.warning("the classifier cannot be frozen (%s); it runs eager", error)
            return None, None
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
            torch.jit.save(graph, str(save_to))
    frozen = _runnable(graph, spec, mode)
    if mode == "frozen":
        gap = largest_probability_difference(model, frozen, _probe(crop_size(model)))
        if not gap <= FROZEN_TOLERANCE:
            log.warning(
                "the frozen classifier's probabilities differ from the module's by %.2g "
                "(allowed %.0e); it runs eager",
                gap,
                FROZEN_TOLERANCE,
            )
            if save_to is not None:
                save_to.unlink(missing_ok=True)
            return None, None
    if mode == "int8":
        check = agreement(model, frozen, calibration)  # type: ignore[arg-type]
        if not check.top1_agreement >= MIN_AGREEMENT:
            log.warning(
                "the int8 classifier agrees with its module on %.3f of %d calibration faces "
                "(at least %.2f needed); it runs frozen",
                check.top1_agreement,
                check.faces,
                MIN_AGREEMENT,
            )
            if save_to is not None:
                save_to.unlink(missing_ok=True)
            return None, None
        return frozen, check
    return frozen, None


def for_inference(
    model: nn.Module, mode: InferenceMode, calibration: np.ndarray | None = None
) -> nn.Module:
    """``model`` as ``vision.inference`` asks; eager when freezing is impossible or would
    change a frozen fp32 graph's answers; frozen when int8 has no ``calibration`` faces or
    would change predictions. A graph already frozen for ``mode`` (a loaded one, or for
    int8 the frozen graph a version without calibration faces was packaged with) is
    returned as it is."""
    if isinstance(model, FrozenClassifier) and model.mode in graph_modes(mode):
        return model
    if mode == "eager":
        return model.eval()
    frozen, _ = _graph_for(model, mode, calibration=calibration)
    return model.eval() if frozen is None else frozen


def graph_modes(mode: InferenceMode) -> set[str]:
    """The modes of a made graph that serve ``mode``: for int8 also the frozen graph it
    gives way to (a version without calibration faces is packaged with that one)."""
    return {mode, "frozen"} if mode == "int8" else {mode}


def _graph_for(
    model: nn.Module,
    mode: GraphMode,
    save_to: Path | None = None,
    calibration: np.ndarray | None = None,
) -> tuple[FrozenClassifier | None, Agreement | None]:
    """The graph :func:`for_inference` runs for ``mode``: int8 gives way to frozen, with a
    warning, without calibration faces or when it would change predictions."""
    if mode == "bf16" and native_bf16() is False:
        log.warning(
            "this CPU has neither AVX512-BF16 nor AMX: bf16 is emulated here, slower than "
            "frozen fp32 (make bench measures both); vision.inference: frozen is faster"
        )
    if mode == "int8":
        if calibration is None:
            log.warning(
                "int8 needs calibration faces (a trained version's %s, which packaging "
                "uses); the classifier runs frozen",
                CALIBRATION_FILE,
            )
        else:
            int8, check = _checked_graph(model, mode, save_to, calibration)
            if int8 is not None:
                return int8, check
        mode = "frozen"
    return _checked_graph(model, mode, save_to)


@dataclass(frozen=True)
class SavedGraph:
    """What a saved frozen graph needs besides its file: its mode, the module's
    architecture spec and the probabilities on the probe batch (the module's; for int8 the
    graph's own)."""

    mode: GraphMode
    architecture: dict[str, object]
    probe_probabilities: list[list[float]]
    agreement: dict[str, float] | None = None  # int8: against the module, calibration faces


@torch.inference_mode()
def save_frozen_graph(
    model: nn.Module, mode: GraphMode, path: Path, calibration: np.ndarray | None = None
) -> SavedGraph | None:
    """Save the graph :func:`for_inference` would run for ``mode`` to ``path`` (int8:
    calibrated on ``calibration``, else frozen); None (and nothing left at ``path``) when
    it would run ``model`` eager."""
    frozen, check = _graph_for(model, mode, save_to=path, calibration=calibration)
    if frozen is None:
        return None
    probe = _probe(crop_size(model))
    answers = frozen if frozen.mode == "int8" else model.eval()
    return SavedGraph(
        frozen.mode,  # type: ignore[arg-type]
        dict(frozen.spec),
        answers(probe).float().softmax(dim=1).tolist(),
        None if check is None else asdict(check),
    )


@torch.inference_mode()
def load_frozen_graph(path: Path, saved: SavedGraph) -> FrozenClassifier | None:
    """The graph :func:`save_frozen_graph` wrote, ready to run without its module; None,
    with a warning, when it cannot be loaded (another torch) or, in fp32 and int8, its
    probabilities on the probe batch differ from those recorded (fp32: the module's; int8:
    its own at packaging)."""
    side = int(saved.architecture.get("crop_size", 48))  # type: ignore[call-overload]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
            graph = torch.jit.load(str(path), map_location="cpu")
        frozen = _runnable(graph, saved.architecture, saved.mode)
        got = frozen(_probe(side)).float().softmax(dim=1)
    except (RuntimeError, torch.jit.Error, ValueError) as error:
        log.warning("the saved classifier graph %s cannot be loaded (%s)", path, error)
        return None
    if saved.mode in ("frozen", "int8"):
        expected = torch.tensor(saved.probe_probabilities)
        gap = float((got - expected).abs().max()) if got.shape == expected.shape else math.inf
        if not gap <= FROZEN_TOLERANCE:
            log.warning(
                "the saved classifier graph %s differs from its record by %.2g (allowed %.0e)",
                path,
                gap,
                FROZEN_TOLERANCE,
            )
            return None
    return frozen
