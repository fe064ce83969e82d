"""Evaluation: batched probabilities (optional flip / ten-crop TTA), metrics and charts."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel

from components.emotions import EMOTIONS

Tta = Literal["none", "flip", "ten_crop"]


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).unsqueeze(1).float().div_(255.0)


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    images: np.ndarray,
    batch_size: int = 64,
    tta: Tta = "none",
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Softmax probabilities (N, 7) for (N, H, W) uint8 faces, one forward per batch."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = to_tensor(images[start : start + batch_size]).to(device)
        out.append(_tta_probabilities(model, batch, tta).cpu())
    if not out:
        return np.zeros((0, len(EMOTIONS)), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def _tta_probabilities(model: torch.nn.Module, batch: torch.Tensor, tta: Tta) -> torch.Tensor:
    if tta == "none":
        return model(batch).softmax(dim=1)
    if tta == "flip":
        return (model(batch).softmax(dim=1) + model(batch.flip(-1)).softmax(dim=1)) / 2
    side = batch.shape[-1]
    crop = int(round(side * 0.9))
    views = []
    for top, left in (
        (0, 0),
        (0, side - crop),
        (side - crop, 0),
        (side - crop, side - crop),
        ((side - crop) // 2, (side - crop) // 2),
    ):
        view = batch[..., top : top + crop, left : left + crop]
        views.extend((view, view.flip(-1)))
    n = batch.shape[0]
    logits = model(torch.cat(views))
    return logits.softmax(dim=1).view(len(views), n, -1).mean(dim=0)


class ClassMetrics(BaseModel):
    support: int
    accuracy: float
    accuracy_ci95: tuple[float, float]
    precision: float
    f1: float


class EvaluationReport(BaseModel):
    dataset: str
    split: str
    count: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: dict[str, ClassMetrics]
    confusion_matrix: list[list[int]]
    tta: str = "none"

    def summary(self) -> str:
        return (
            f"{self.dataset}/{self.split}: accuracy {self.accuracy:.3f}, "
            f"macro-F1 {self.macro_f1:.3f}, weighted-F1 {self.weighted_f1:.3f} "
            f"on {self.count} images"
        )


def wilson_interval(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sane for small classes like disgust)."""
    if total == 0:
        return (0.0, 0.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def compute_metrics(
    labels: np.ndarray, probabilities: np.ndarray, dataset: str, split: str, tta: str = "none"
) -> EvaluationReport:
    """Accuracy, macro/weighted F1, per-class accuracy with 95% CI and the confusion matrix."""
    k = len(EMOTIONS)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    correct = np.diag(confusion)
    recall = np.divide(correct, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(correct, predicted_count, out=np.zeros(k), where=predicted_count > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0
    per_class = {
        name: ClassMetrics(
            support=int(support[i]),
            accuracy=float(recall[i]),
            accuracy_ci95=wilson_interval(int(correct[i]), int(support[i])),
            precision=float(precision[i]),
            f1=float(f1[i]),
        )
        for i, name in enumerate(EMOTIONS)
    }
    total = int(support.sum())
    return EvaluationReport(
        dataset=dataset,
        split=split,
        count=total,
        accuracy=float(correct.sum() / total) if total else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        weighted_f1=float((f1 * support).sum() / total) if total else 0.0,
        per_class=per_class,
        confusion_matrix=confusion.tolist(),
        tta=tta,
    )


def write_evaluation(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    """Write ``evaluation.json``, ``confusion_matrix.png`` and ``per_class_accuracy.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "evaluation": out_dir / "evaluation.json",
        "confusion_matrix": out_dir / "confusion_matrix.png",
        "per_class_accuracy": out_dir / "per_class_accuracy.png",
    }
    paths["evaluation"].write_text(json.dumps(report.model_dump(mode="json"), indent=2))

    matrix = np.array(report.confusion_matrix, dtype=float)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(EMOTIONS)):
        for j in range(len(EMOTIONS)):
            ax.text(
                j,
                i,
                f"{int(matrix[i, j])}",
                ha="center",
                va="center",
                color="white" if rows[i, j] > 0.5 else "black",
                fontsize=8,
            )
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45)
    ax.set_yticks(range(len(EMOTIONS)), EMOTIONS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"Confusion matrix: {report.dataset} {report.split} (accuracy {report.accuracy:.1%})"
    )
    fig.tight_layout()
    fig.savefig(paths["confusion_matrix"], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    accuracy = [report.per_class[e].accuracy for e in EMOTIONS]
    low = [
        a - report.per_class[e].accuracy_ci95[0] for a, e in zip(accuracy, EMOTIONS, strict=True)
    ]
    high = [
        report.per_class[e].accuracy_ci95[1] - a for a, e in zip(accuracy, EMOTIONS, strict=True)
    ]
    ax.bar(EMOTIONS, accuracy, yerr=[low, high], capsize=4, color="#4c72b0")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title(f"Per-class accuracy: {report.dataset} {report.split}")
    fig.tight_layout()
    fig.savefig(paths["per_class_accuracy"], dpi=120)
    plt.close(fig)
    return paths
