"""Decoding untrusted image bytes, and finding faces in them.

Decoding rejects bad input with a clear :class:`ImageInputError` (empty, not an image,
truncated, too many pixels), honours EXIF orientation and converts any mode (RGBA,
palette, 16-bit, CMYK) to 8-bit grayscale. Faces are found with OpenCV's Haar cascade
on a copy whose long side is at most ``max_side`` pixels (boxes mapped back to the
original), so one request costs a bounded time whatever its resolution; at most
``max_faces`` faces are kept. When none is found the whole image is used and the result
says so. An image no larger than the classifier's input (48x48 for FER-2013's ResNets) is a
face crop already, as the classifier was trained on: it is classified whole, without
detection (which would crop a smaller face out of it and enlarge that). A face's crop is
resized to the classifier's input (``face_to_input``); OpenCV is imported only where it is
used, so the web app can cut a feedback crop without it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from components.errors import EmoreviewError
from components.vision.fer_data import IMAGE_SIZE

DEFAULT_MAX_PIXELS = 25_000_000  # a 25 MP phone photo


class ImageInputError(EmoreviewError, ValueError):
    """The bytes are not a usable image. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.http_status = 413 if reason == "too_large" else 400


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode image bytes to an (H, W) uint8 grayscale array, upright per EXIF."""
    if not data:
        raise ImageInputError("empty", "empty image: no bytes received")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width == 0 or height == 0:
                raise ImageInputError("zero_size", "image has zero width or height")
            if width * height > max_pixels:
                raise ImageInputError(
                    "too_large",
                    f"image is {width}x{height} = {width * height:,} pixels, above the limit of "
                    f"{max_pixels:,}",
                )
            image.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageInputError(
            "too_large", f"image rejected as a decompression bomb: {error}"
        ) from error
    except UnidentifiedImageError as error:
        raise ImageInputError(
            "not_an_image", "not an image: the bytes are in no known image format"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageInputError("truncated", f"image is truncated or corrupt: {error}") from error
    return to_gray(ImageOps.exif_transpose(image))


def to_gray(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> uint8 grayscale; transparency is composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() if array.size and array.max() > 255 else 255.0
        return np.clip(array * (255.0 / top), 0, 255).astype(np.uint8)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        span = max(array.max() - array.min(), 1e-12)
        return ((array - array.min()) * (255.0 / span)).astype(np.uint8)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.uint8)


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int

    def as_dict(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class FaceCrop:
    """A region to classify: the crop, its box in the image, whether a face was found, and
    whether the image itself was taken as a face crop (no detection ran)."""

    pixels: np.ndarray
    box: Box
    detected: bool
    face_crop_input: bool = False


@dataclass(frozen=True)
class FaceCrops:
    """The crops of one image, and how many faces were found before the cap."""

    crops: list[FaceCrop]
    found: int


FACE_MARGIN = 0.1  # of a face box's size, kept around it when cropping


class FaceDetector:
    """OpenCV Haar cascade frontal-face detector (``opencv-python-headless`` < 5)."""

    def __init__(
        self,
        cascade: object,
        min_size: int = 24,
        margin: float = FACE_MARGIN,
        max_side: int = 1024,
        max_faces: int = 8,
    ) -> None:
        self._cascade = cascade
        self.min_size = min_size
        self.margin = margin
        self.max_side = max_side
        self.max_faces = max_faces

    @classmethod
    def load(
        cls,
        cascade_path: Path | None = None,
        min_size: int = 24,
        margin: float = FACE_MARGIN,
        max_side: int = 1024,
        max_faces: int = 8,
    ) -> FaceDetector:
        import cv2

        path = cascade_path or Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        cascade = cv2.CascadeClassifier(str(path))
        if cascade.empty():
            raise FileNotFoundError(f"cannot load Haar cascade {path}")
        return cls(cascade, min_size, margin, max_side, max_faces)

    def detect(self, gray: np.ndarray) -> list[Box]:
        """Face boxes in ``gray``'s coordinates, largest first, found on a copy whose long
        side is at most ``max_side`` (``detectMultiScale`` returns ``()`` for none)."""
        import cv2

        height, width = gray.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = gray
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if min(small.shape[:2]) < self.min_size:
            return []
        found = self._cascade.detectMultiScale(  # type: ignore[attr-defined]
            small, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size, self.min_size)
        )
        boxes = [_scaled_box(int(x), int(y), int(w), int(h), scale) for (x, y, w, h) in found]
        return sorted(boxes, key=lambda b: b.width * b.height, reverse=True)

    def crop_faces(
        self,
        gray: np.ndarray,
        mode: Literal["largest", "all"] = "largest",
        face_crop_side: int = 0,
    ) -> FaceCrops:
        """Crops to classify: the largest face (or all, at most ``max_faces``), else the
        whole image. An image whose sides are both at most ``face_crop_side`` (the
        classifier's input) is a face crop already: the whole image, without detection."""
        height, width = gray.shape[:2]
        whole_image = Box(0, 0, width, height)
        if max(height, width) <= face_crop_side:
            crop = FaceCrop(gray, whole_image, detected=False, face_crop_input=True)
            return FaceCrops([crop], found=1)
        boxes = self.detect(gray)
        if not boxes:
            return FaceCrops([FaceCrop(gray, whole_image, detected=False)], found=0)
        chosen = boxes[: self.max_faces] if mode == "all" else boxes[:1]
        crops = [FaceCrop(crop_box(gray, box, self.margin), box, detected=True) for box in chosen]
        return FaceCrops(crops, found=len(boxes) if mode == "all" else len(chosen))


def _scaled_box(x: int, y: int, width: int, height: int, scale: float) -> Box:
    """A box found on the downscaled copy, in the original image's pixels."""
    if scale >= 1.0:
        return Box(x, y, width, height)
    return Box(round(x / scale), round(y / scale), round(width / scale), round(height / scale))


def crop_box(gray: np.ndarray, box: Box, margin: float = FACE_MARGIN) -> np.ndarray:
    """The pixels of ``box`` with ``margin`` (a fraction of its size) around it, clipped."""
    pad_x, pad_y = int(box.width * margin), int(box.height * margin)
    height, width = gray.shape[:2]
    top, bottom = max(0, box.y - pad_y), min(height, box.y + box.height + pad_y)
    left, right = max(0, box.x - pad_x), min(width, box.x + box.width + pad_x)
    return gray[top:bottom, left:right]


def face_to_input(pixels: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """A grayscale crop of any size -> size x size uint8 (48: the FER format)."""
    if pixels.shape[:2] == (size, size):
        return pixels
    import cv2

    shrinking = pixels.shape[0] > size or pixels.shape[1] > size
    return cv2.resize(
        pixels,
        (size, size),
        interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
    )


def classified_face(
    gray: np.ndarray, box: dict[str, int], margin: float = FACE_MARGIN, size: int = IMAGE_SIZE
) -> np.ndarray:
    """The size x size grayscale crop the classifier saw for the face at ``box`` of an
    answer (the detector's margin around it): what feedback stores, never the photo."""
    found = Box(int(box["x"]), int(box["y"]), int(box["width"]), int(box["height"]))
    return face_to_input(crop_box(gray, found, margin), size)
