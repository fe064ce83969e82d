"""A seeded generator of 48x48 grayscale cartoon faces whose features differ per emotion.

It exists so the whole pipeline runs without the real FER-2013 (which cannot be downloaded
here). Mouth, brows and eyes are drawn per emotion; face position, scale, rotation,
brightness, contrast, background and noise are jittered. Written in the FER folder layout
with a ``SYNTHETIC`` marker, so every output made from it is labelled ``synthetic``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from components.emotions import EMOTIONS
from components.progress import Progress

SIZE = 48
_SCALE = 4  # draw at 4x and downsample, for anti-aliased strokes
SYNTHETIC_MARKER = "SYNTHETIC"


def draw_face(emotion: str, rng: random.Random) -> Image.Image:
    """One face showing ``emotion`` as a 48x48 grayscale image."""
    big = SIZE * _SCALE
    background = rng.randint(20, 120)
    image = Image.new("L", (big, big), background)
    draw = ImageDraw.Draw(image)
    skin = rng.randint(150, 235)
    ink = rng.randint(0, 60)
    cx = big / 2 + rng.uniform(-3, 3) * _SCALE
    cy = big / 2 + rng.uniform(-3, 3) * _SCALE
    s = rng.uniform(0.85, 1.1) * _SCALE  # pixels per unit of the 48-unit face design
    w = max(1, int(round(1.6 * s)))

    def p(x: float, y: float) -> tuple[float, float]:
        return (cx + x * s, cy + y * s)

    draw.ellipse([p(-17, -21), p(17, 22)], fill=skin)
    _draw_eyes(draw, emotion, p, s, ink, skin, w, rng)
    _draw_brows(draw, emotion, p, ink, w, rng)
    _draw_mouth(draw, emotion, p, s, ink, skin, w, rng)

    image = image.rotate(
        rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR, fillcolor=background
    )
    image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.3, 0.8)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels = (pixels - 128.0) * rng.uniform(0.8, 1.2) + 128.0 + rng.uniform(-20, 20)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(2, 8), pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8), mode="L")


def _draw_eyes(draw, emotion, p, s, ink, skin, w, rng) -> None:  # noqa: ANN001
    jitter = rng.uniform(-0.5, 0.5)
    for side in (-1, 1):
        x, y = side * 7 + jitter, -5
        if emotion in ("surprise", "fear"):
            draw.ellipse([p(x - 3.5, y - 3.5), p(x + 3.5, y + 3.5)], fill=255, outline=ink, width=w)
            draw.ellipse([p(x - 1.2, y - 1.2), p(x + 1.2, y + 1.2)], fill=ink)
        elif emotion == "happy":
            draw.arc([p(x - 3, y - 2), p(x + 3, y + 3)], start=200, end=340, fill=ink, width=w)
        elif emotion in ("angry", "disgust"):
            draw.line([p(x - 3, y), p(x + 3, y)], fill=ink, width=w)
            draw.ellipse([p(x - 1, y - 1), p(x + 1, y + 1)], fill=ink)
        elif emotion == "sad":
            draw.chord([p(x - 3, y - 2), p(x + 3, y + 2)], start=0, end=180, fill=ink)
        else:
            draw.ellipse([p(x - 2.5, y - 2), p(x + 2.5, y + 2)], fill=255, outline=ink, width=w)
            draw.ellipse([p(x - 1, y - 1), p(x + 1, y + 1)], fill=ink)


def _draw_brows(draw, emotion, p, ink, w, rng) -> None:  # noqa: ANN001
    lift = rng.uniform(-0.7, 0.7)
    for side in (-1, 1):
        inner, outer = side * 3.5, side * 11
        if emotion == "angry":
            ys = (-8.5, -12.5)  # inner ends down: a V
        elif emotion == "sad" or emotion == "fear":
            ys = (-13, -10) if emotion == "sad" else (-14, -12)
        elif emotion == "surprise":
            ys = (-14.5, -14.5)
        elif emotion == "disgust":
            ys = (-9.5, -10.5) if side < 0 else (-12, -13)
        else:
            ys = (-11, -11)
        draw.line([p(inner, ys[0] + lift), p(outer, ys[1] + lift)], fill=ink, width=w + 1)


def _draw_mouth(draw, emotion, p, s, ink, skin, w, rng) -> None:  # noqa: ANN001
    width = rng.uniform(6, 9)
    y = 10 + rng.uniform(-1, 1)
    if emotion == "happy":
        draw.arc([p(-width, y - 6), p(width, y + 4)], start=20, end=160, fill=ink, width=w + 1)
    elif emotion == "sad":
        draw.arc([p(-width, y), p(width, y + 9)], start=200, end=340, fill=ink, width=w + 1)
    elif emotion == "surprise":
        draw.ellipse([p(-3.5, y - 3), p(3.5, y + 5)], fill=ink)
    elif emotion == "fear":
        draw.rectangle([p(-width, y - 1.5), p(width, y + 2.5)], fill=ink)
        draw.line([p(-width, y + 0.5), p(width, y + 0.5)], fill=skin, width=max(1, w // 2))
    elif emotion == "angry":
        draw.line([p(-width * 0.7, y + 1), p(width * 0.7, y + 1)], fill=ink, width=w + 2)
    elif emotion == "disgust":
        points = [p(-width + i * width / 3, y + (1.8 if i % 2 else -1.8)) for i in range(7)]
        draw.line(points, fill=ink, width=w + 1, joint="curve")
    else:
        draw.line([p(-width, y), p(width, y)], fill=ink, width=w)


def draw_faces(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` faces in memory, (N, 48, 48) uint8, and their emotion indices (the
    emotions in turn)."""
    rng = random.Random(seed)
    labels = np.arange(count) % len(EMOTIONS)
    faces = [np.asarray(draw_face(EMOTIONS[i], rng).convert("L")) for i in labels]
    return np.stack(faces).astype(np.uint8), labels


def synthesize_faces(
    out_dir: Path,
    per_class_train: int = 100,
    per_class_test: int = 30,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, int]:
    """Write ``train/<class>/*.png`` and ``test/<class>/*.png`` under ``out_dir``."""
    rng = random.Random(seed)
    counts = {"train": 0, "test": 0}
    total = (per_class_train + per_class_test) * len(EMOTIONS)
    with Progress(total=total, desc="drawing faces", unit="face", enabled=progress) as bar:
        for split, per_class in (("train", per_class_train), ("test", per_class_test)):
            for emotion in EMOTIONS:
                folder = out_dir / split / emotion
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(per_class):
                    draw_face(emotion, rng).save(folder / f"{emotion}_{i:05d}.png", optimize=False)
                    counts[split] += 1
                    bar.update(1)
    marker = {
        "dataset": "synthetic",
        "generator": "emoreview synthetic faces",
        "seed": seed,
        "per_class_train": per_class_train,
        "per_class_test": per_class_test,
    }
    (out_dir / SYNTHETIC_MARKER).write_text(json.dumps(marker, indent=2))
    return counts
