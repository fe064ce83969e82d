"""The classifier's inference modes (`vision.inference`) against today's eager code.

Throughput: 48x48 faces, batch 16, through `predict_probabilities` (what the served
handler calls), each mode against `eager` in the same run. Agreement: a ResNet-50 trained
for a few epochs on synthetic faces (a random one answers near-uniformly and would hide
any difference) classifies 1,000 fresh faces in each mode; top-1 agreement and the largest
probability difference are taken against the plain module.
``int8`` is calibrated on a separate validation set of faces, as packaging calibrates it
on the ones a training run stores from its validation split.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from components.settings import VisionSettings
from components.vision.evaluate import predict_probabilities
from components.vision.inference import for_inference, native_bf16
from components.vision.model import EmotionResNet
from components.vision.quantization import quantize_int8
from components.vision.synthetic_faces import draw_faces

MODES = ("eager", "frozen", "bf16", "int8")
BATCH = 16


def trained_resnet(faces: np.ndarray, labels: np.ndarray, epochs: int) -> EmotionResNet:
    torch.manual_seed(0)
    model = EmotionResNet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.from_numpy(faces).unsqueeze(1).float() / 255
    y = torch.from_numpy(labels)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 32):
            batch = order[start : start + 32]
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def images_per_s(model: torch.nn.Module, faces: np.ndarray, rounds: int) -> float:
    predict_probabilities(model, faces, batch_size=len(faces))  # warm-up (graph profiling)
    predict_probabilities(model, faces, batch_size=len(faces))
    start = time.perf_counter()
    for _ in range(rounds):
        predict_probabilities(model, faces, batch_size=len(faces))
    return len(faces) * rounds / (time.perf_counter() - start)


def run(smoke: bool) -> dict[str, Any]:
    train_faces, train_labels = draw_faces(70 if smoke else 1400, seed=0)
    test_faces, test_labels = draw_faces(70 if smoke else 1000, seed=1)
    validation_faces, _ = draw_faces(35 if smoke else 280, seed=2)
    started = time.perf_counter()
    model = trained_resnet(train_faces, train_labels, epochs=1 if smoke else 3)
    result: dict[str, Any] = {
        "training_s": time.perf_counter() - started,
        "served_mode": VisionSettings().inference,  # the shipped default
        "modes": {},
    }
    reference = predict_probabilities(model, test_faces, batch_size=BATCH)
    result["plain_module_accuracy"] = float((reference.argmax(1) == test_labels).mean())
    batch = test_faces[:BATCH]
    rounds = 3 if smoke else 40
    for mode in MODES:
        prepared_start = time.perf_counter()
        # int8 without the agreement check serving applies (a smoke run's barely trained
        # model answers near-uniformly, and would fall back to frozen).
        prepared = (
            quantize_int8(model, validation_faces) if mode == "int8" else for_inference(model, mode)
        )
        prepare_s = time.perf_counter() - prepared_start
        probabilities = predict_probabilities(prepared, test_faces, batch_size=BATCH)
        result["modes"][mode] = {
            "prepare_s": prepare_s,
            "images_per_s": images_per_s(prepared, batch, rounds),
            "top1_agreement": float((probabilities.argmax(1) == reference.argmax(1)).mean()),
            "max_probability_difference": float(np.abs(probabilities - reference).max()),
            "accuracy": float((probabilities.argmax(1) == test_labels).mean()),
        }
    result["int8_calibration_faces"] = len(validation_faces)
    eager = result["modes"]["eager"]["images_per_s"]
    for row in result["modes"].values():
        row["speedup"] = row["images_per_s"] / eager
    result["faces"] = len(test_faces)
    result["native_bf16"] = native_bf16()  # AVX512-BF16 or AMX: bf16's speed depends on it
    return result


def unchanged(row: dict[str, Any]) -> bool:
    """The issue's bar for "predictions unchanged"."""
    return row["top1_agreement"] >= 0.995 and row["max_probability_difference"] <= 1e-3


BF16_KIND = {True: "native", False: "emulated", None: "unknown"}


def table(c: dict[str, Any]) -> str:
    rows = [
        f"Classifier inference modes (`vision.inference`; ResNet-50, 48x48, batch {BATCH}, "
        f"{c['faces']:,} synthetic faces, trained model's accuracy "
        f"{c['plain_module_accuracy']:.3f}; this CPU's bf16: {BF16_KIND[c.get('native_bf16')]}):",
        "",
        "| mode | images/s | ÷ eager | top-1 agreement | max prob diff | unchanged "
        "| accuracy | prepare s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode, row in c["modes"].items():
        name = f"int8 ({c['int8_calibration_faces']} calibration faces)" if mode == "int8" else mode
        rows.append(
            f"| {name} | {row['images_per_s']:.0f} | {row['speedup']:.2f} | "
            f"{row['top1_agreement']:.4f} | {row['max_probability_difference']:.1e} | "
            f"{'yes' if unchanged(row) else 'no'} | {row['accuracy']:.3f} | "
            f"{row['prepare_s']:.2f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    import json
    import sys

    measured = run(smoke="--smoke" in sys.argv)
    print(json.dumps(measured, indent=2))
    print(table(measured), file=sys.stderr)
