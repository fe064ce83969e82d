"""The worst case of one request at the input limits: a photo of ``vision.max_image_pixels``
with many faces, `all faces` on, in process (decode + detection + up to ``max_faces``
classifications). Face detection runs on a copy of at most ``vision.detection_max_side``
pixels; the same photo with detection at full resolution is measured beside it."""

from __future__ import annotations

import io
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from components.settings import VisionSettings
from components.vision.predict import EmotionPredictor
from tests.random_models import save_classifier


def crowd_photo(pixels: int) -> bytes:
    """A JPEG of about ``pixels`` pixels tiled with scikit-image's astronaut (many faces)."""
    from skimage import data

    side = int(math.sqrt(pixels))
    tile = Image.fromarray(data.astronaut()).resize((side // 4, side // 4))
    canvas = Image.new("RGB", (side, side))
    for y in range(0, side, tile.height):
        for x in range(0, side, tile.width):
            canvas.paste(tile, (x, y))
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def run(smoke: bool) -> dict[str, Any]:
    defaults = VisionSettings(face_detection="all")
    pixels = 2_000_000 if smoke else defaults.max_image_pixels
    repeat = 1 if smoke else 3
    photo = crowd_photo(pixels)
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as scratch:
        weights = save_classifier(Path(scratch) / "w.pt", seed=0)
        rows = {}
        for name, max_side in (("bounded", defaults.detection_max_side), ("full_resolution", 8192)):
            settings = defaults.model_copy(update={"detection_max_side": max_side})
            predictor = EmotionPredictor.from_weights(weights, settings)
            times, faces = [], 0
            for _ in range(repeat):
                start = time.perf_counter()
                prediction = predictor.predict(photo)
                times.append(time.perf_counter() - start)
                faces = len(prediction.faces)
            rows[name] = {
                "max_side": max_side,
                "worst_ms": float(np.max(times) * 1000),
                "median_ms": float(np.median(times) * 1000),
                "faces_classified": faces,
            }
    return {
        "pixels": pixels,
        "jpeg_bytes": len(photo),
        "max_faces": defaults.max_faces,
        **rows,
        "full_over_bounded": rows["full_resolution"]["median_ms"] / rows["bounded"]["median_ms"],
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(smoke=False), indent=2))
