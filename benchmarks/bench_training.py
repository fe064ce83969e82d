"""ResNet-50 training speed (images/s) at 48x48 and 224x224, CPU and CUDA when present."""

from __future__ import annotations

import time
from typing import Any

import torch

from components.vision.model import EmotionResNet


def train_images_per_second(
    input_size: int, batch_size: int, steps: int, device: str, warmup: int = 2
) -> float:
    """Forward + backward + SGD step (fused) on random 1-channel faces; AMP and
    channels-last on CUDA (as the training recipe does)."""
    model = EmotionResNet(input_size=input_size).to(device)
    cuda = device.startswith("cuda")
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.01, momentum=0.9, nesterov=True, fused=True
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    images = torch.rand(batch_size, 1, input_size, input_size, device=device)
    if cuda:
        images = images.to(memory_format=torch.channels_last)
    labels = torch.randint(0, 7, (batch_size,), device=device)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return batch_size * steps / (time.perf_counter() - start)


def run(smoke: bool) -> dict[str, Any]:
    rows = []
    # The smoke's batches are small: one 224x224 step of 16 is 4 s of CPU on one thread.
    plans = [(48, 8, 2), (224, 2, 1)] if smoke else [(48, 32, 12), (224, 16, 4)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for size, batch, steps in plans:
            rate = train_images_per_second(size, batch, steps, device, warmup=1 if smoke else 2)
            rows.append({"device": device, "input": size, "batch": batch, "images_per_s": rate})
    return {
        "rows": rows,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "threads": torch.get_num_threads(),
    }
