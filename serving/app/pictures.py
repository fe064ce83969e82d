"""What the app does to an uploaded picture before and after the endpoint sees it: the size
check (the server's limit, before upload) and the face boxes drawn on the photo. PIL only."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps

from components.errors import EmoreviewError

BOX_COLOURS = ("#ff4b4b", "#1c83e1", "#21c354", "#ffa421", "#803df5", "#00c0f2", "#ff8700")


class UploadTooLarge(EmoreviewError, ValueError):
    """The photo is larger than the server accepts (``serving.max_request_mb``)."""


def check_upload_size(data: bytes, max_request_mb: int) -> None:
    """Refuse a photo TorchServe would refuse, before sending it."""
    limit = max_request_mb * 1024 * 1024
    if len(data) > limit:
        raise UploadTooLarge(
            f"This file is {len(data) / 1024 / 1024:.1f} MB: the server accepts photos of at "
            f"most {max_request_mb} MB (serving.max_request_mb). Send a smaller photo."
        )


def upright(data: bytes) -> Image.Image:
    """The photo as the classifier saw it: EXIF orientation applied, RGB."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    return image.convert("RGB")


def draw_faces(image: Image.Image, faces: Sequence[dict[str, Any]]) -> Image.Image:
    """A copy of ``image`` with each detected face's box and emotion drawn on it."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    line = max(2, round(max(out.size) / 250))
    font = ImageFont.load_default(size=max(12, round(max(out.size) / 45)))
    for number, face in enumerate(faces):
        if not face.get("face_detected"):
            continue
        box = face["box"]
        x, y, w, h = box["x"], box["y"], box["width"], box["height"]
        colour = BOX_COLOURS[number % len(BOX_COLOURS)]
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=line)
        label = f"{number + 1}: {face['emotion']} {face['confidence']:.0%}"
        text_box = draw.textbbox((x, y), label, font=font)
        top = max(0, y - (text_box[3] - text_box[1]) - 2 * line)
        draw.rectangle((x, top, x + text_box[2] - text_box[0] + 2 * line, y), fill=colour)
        draw.text((x + line, top + line // 2), label, fill="white", font=font)
    return out
