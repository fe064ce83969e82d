"""Training the emotion classifier, following the published FER-2013 recipes.

Random translate/scale/rotation, horizontal flip and random erasing; label smoothing;
oversampling of the rare disgust class (the strong recipes do not weight the loss); SGD
with Nesterov momentum or AdamW; plateau or cosine schedule; EMA of weights; early stopping
on validation macro-F1; seeded; resumable checkpoints; AMP and channels-last on a GPU;
optional FER+ soft labels. Per-epoch stats go to a callback (the registry logs them).
"""

from __future__ import annotations

import copy
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision.transforms import v2

from components.emotions import EMOTION_TO_INDEX
from components.progress import Progress
from components.settings import TrainSettings, VisionSettings
from components.vision.evaluate import compute_metrics, predict_probabilities
from components.vision.fer_data import FerDataset, FerSplit
from components.vision.model import (
    EmotionResNet,
    build_with_state,
    load_imagenet_weights,
    save_torch_atomic,
    save_weights,
)

log = logging.getLogger(__name__)

BEST_WEIGHTS = "best.pt"
LAST_CHECKPOINT = "last.pt"


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    val_macro_f1: float
    learning_rate: float
    seconds: float
    images_per_second: float


@dataclass
class TrainResult:
    model: nn.Module
    best_epoch: int
    best_val_macro_f1: float
    history: list[EpochStats] = field(default_factory=list)
    weights_path: Path | None = None
    stopped_early: bool = False

    @property
    def images_per_second(self) -> float:
        rates = [h.images_per_second for h in self.history]
        return float(np.median(rates)) if rates else 0.0


class FaceDataset(Dataset):
    """Faces as (1, 48, 48) float tensors with hard or soft targets."""

    def __init__(self, split: FerSplit, augment: bool) -> None:
        self.images = torch.from_numpy(np.ascontiguousarray(split.images)).unsqueeze(1)
        self.targets = (
            torch.from_numpy(split.soft_labels).float()
            if split.soft_labels is not None
            else torch.from_numpy(split.labels).long()
        )
        self.transform = (
            v2.Compose(
                [
                    v2.RandomHorizontalFlip(),
                    v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
                    v2.ToDtype(torch.float32, scale=True),
                    v2.RandomErasing(p=0.25, scale=(0.02, 0.12)),
                ]
            )
            if augment
            else v2.ToDtype(torch.float32, scale=True)
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.targets[i]


class WeightEma:
    """Exponential moving average of weights with the usual warm-up of the decay."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        self.updates = 0
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        for name, value in self.model.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(current[name].detach(), alpha=1 - decay)
            else:
                value.copy_(current[name])


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _sampler(split: FerSplit, oversample: float, seed: int) -> WeightedRandomSampler | None:
    if oversample <= 1.0:
        return None
    weights = np.where(split.labels == EMOTION_TO_INDEX["disgust"], oversample, 1.0)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        torch.from_numpy(weights), num_samples=len(split), replacement=True, generator=generator
    )


def build_model(vision: VisionSettings) -> EmotionResNet:
    model = EmotionResNet(stem=vision.stem, input_size=vision.input_size)
    if vision.pretrained_weights is not None:
        load_imagenet_weights(model, vision.pretrained_weights)
        log.info("initialised from ImageNet weights %s", vision.pretrained_weights)
    return model


def train_classifier(
    dataset: FerDataset,
    vision: VisionSettings,
    settings: TrainSettings,
    run_dir: Path,
    resume: bool = False,
    on_epoch: Callable[[EpochStats], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train, early-stop on validation macro-F1, and return the best model (EMA if enabled)."""
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    use_cuda = device.type == "cuda"
    run_dir.mkdir(parents=True, exist_ok=True)

    model = build_model(vision).to(device)
    if use_cuda:
        model = model.to(memory_format=torch.channels_last)
    parameters = [p for p in model.parameters() if p.requires_grad]
    # One kernel over all parameters: a ResNet-50 AdamW step on one CPU thread takes 12 ms
    # instead of the per-tensor loop's 50 (SGD 9 instead of 44), the same update to 1e-7.
    fused = device.type in ("cpu", "cuda")
    if settings.optimizer == "sgd":
        optimizer: torch.optim.Optimizer = torch.optim.SGD(
            parameters,
            lr=settings.learning_rate,
            momentum=settings.momentum,
            nesterov=True,
            weight_decay=settings.weight_decay,
            fused=fused,
        )
    else:
        optimizer = torch.optim.AdamW(
            parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay, fused=fused
        )
    scheduler: (
        torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau | None
    )
    if settings.scheduler == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=0.5, patience=2
        )
    elif settings.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    else:
        scheduler = None
    ema = WeightEma(model, settings.ema_decay) if settings.ema_decay else None
    scaler = torch.amp.GradScaler("cuda", enabled=use_cuda)

    train_data = FaceDataset(dataset.train, augment=settings.augment)
    sampler = _sampler(dataset.train, settings.disgust_oversample, settings.seed)
    loader = DataLoader(
        train_data,
        batch_size=settings.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=settings.num_workers,
        drop_last=len(train_data) > settings.batch_size,
        generator=torch.Generator().manual_seed(settings.seed),
        pin_memory=use_cuda,
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)

    start_epoch, history = 1, []
    best_f1, best_epoch, best_state = -1.0, 0, None
    last_path = run_dir / LAST_CHECKPOINT
    if resume and last_path.is_file():
        state = torch.load(last_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        if ema is not None and state.get("ema"):
            ema.model.load_state_dict(state["ema"])
            ema.updates = int(state["ema_updates"])
        history = [EpochStats(**h) for h in json.loads(state["history"])]
        best_f1, best_epoch = float(state["best_f1"]), int(state["best_epoch"])
        best_state = state.get("best_state")
        start_epoch = int(state["epoch"]) + 1
        log.info("resumed from %s at epoch %d", last_path, start_epoch)

    stopped_early = False
    for epoch in range(start_epoch, settings.epochs + 1):
        model.train()
        started = time.perf_counter()
        seen, correct, loss_sum = 0, 0, 0.0
        batches = (
            len(loader)
            if settings.max_train_batches is None
            else min(len(loader), settings.max_train_batches)
        )
        bar = Progress(
            total=batches,
            desc=f"epoch {epoch}/{settings.epochs}",
            unit="batch",
            enabled=progress,
            log_line=False,  # the epoch's line is logged below, with its validation
            leave=False,
        )
        for step, (inputs, targets) in enumerate(loader):
            if step >= batches:
                break
            inputs = inputs.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            if use_cuda:
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_cuda):
                logits = model(inputs)
                loss = criterion(logits, targets)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            hard = targets.argmax(dim=1) if targets.ndim == 2 else targets
            seen += inputs.shape[0]
            correct += int((logits.argmax(dim=1) == hard).sum())
            loss_sum += float(loss.detach()) * inputs.shape[0]
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
            bar.update(1)
        bar.close()
        seconds = time.perf_counter() - started
        evaluated = ema.model if ema is not None else model
        val_probs = predict_probabilities(
            evaluated, dataset.val.images, batch_size=256, device=device
        )
        val = compute_metrics(dataset.val.labels, val_probs, dataset.name, "val")
        lr = optimizer.param_groups[0]["lr"]
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(val.macro_f1)
        elif scheduler is not None:
            scheduler.step()
        stats = EpochStats(
            epoch=epoch,
            train_loss=loss_sum / max(seen, 1),
            train_accuracy=correct / max(seen, 1),
            val_accuracy=val.accuracy,
            val_macro_f1=val.macro_f1,
            learning_rate=lr,
            seconds=seconds,
            images_per_second=seen / seconds if seconds > 0 else 0.0,
        )
        history.append(stats)
        log.info(
            "epoch %d: loss %.3f, train acc %.3f, val acc %.3f, val macro-F1 %.3f, %.1f img/s",
            epoch,
            stats.train_loss,
            stats.train_accuracy,
            stats.val_accuracy,
            stats.val_macro_f1,
            stats.images_per_second,
        )
        if on_epoch is not None:
            on_epoch(stats)
        if val.macro_f1 > best_f1:
            best_f1, best_epoch = val.macro_f1, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in evaluated.state_dict().items()}
        save_torch_atomic(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "ema": ema.model.state_dict() if ema is not None else None,
                "ema_updates": ema.updates if ema is not None else 0,
                "history": json.dumps([asdict(h) for h in history]),
                "best_f1": best_f1,
                "best_epoch": best_epoch,
                # This epoch's weights when it was the best: ``torch.save`` writes a
                # storage once, so they share "model"'s (or "ema"'s) bytes in the file
                # instead of a second copy (ResNet-50: 377 -> 283 MB an improving epoch).
                "best_state": evaluated.state_dict() if best_epoch == epoch else best_state,
                "epoch": epoch,
            },
            last_path,
        )
        if epoch - best_epoch >= settings.early_stopping_patience:
            log.info(
                "early stopping: no val macro-F1 gain for %d epochs",
                settings.early_stopping_patience,
            )
            stopped_early = True
            break

    if best_state is None:
        best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    best = build_with_state(model.architecture(), best_state).eval()
    weights_path = run_dir / BEST_WEIGHTS
    save_weights(best, weights_path)
    (run_dir / "history.json").write_text(json.dumps([asdict(h) for h in history], indent=2))
    return TrainResult(
        model=best,
        best_epoch=best_epoch,
        best_val_macro_f1=best_f1,
        history=history,
        weights_path=weights_path,
        stopped_early=stopped_early,
    )
