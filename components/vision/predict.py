"""Image bytes -> faces -> emotion with all 7 probabilities and the face box.

``EmotionPredictor`` loads once (weights, Haar cascade) and is cheap per call. Many images
are classified in one forward pass (``predict_many``): TorchServe's batches and the
pipeline use that.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from components.emotions import EMOTIONS
from components.settings import VisionSettings
from components.vision.evaluate import predict_probabilities
from components.vision.faces import (
    FaceCrops,
    FaceDetector,
    ImageInputError,
    decode_image,
    face_to_input,
)
from components.vision.inference import for_inference
from components.vision.model import crop_size, load_weights
from components.vision.prediction import FacePrediction, ImagePrediction

AllFaces = bool | Sequence[bool | None] | None
"""Whether to classify every face: one flag for all images, one per image, or ``None`` for
the ``vision.face_detection`` setting."""


class EmotionPredictor:
    def __init__(
        self,
        model: nn.Module,
        detector: FaceDetector,
        settings: VisionSettings,
        device: str = "cpu",
    ) -> None:
        # vision.inference: a frozen graph on the CPU; elsewhere the module as trained.
        mode = settings.inference if torch.device(device).type == "cpu" else "eager"
        self.model = for_inference(model.to(device), mode)
        self.crop_size = crop_size(model)  # from the model's architecture spec
        self.detector = detector
        self.settings = settings
        self.device = device

    @classmethod
    def from_weights(
        cls, path: Path, settings: VisionSettings, device: str = "cpu"
    ) -> EmotionPredictor:
        return cls.from_model(load_weights(path), settings, device)

    @classmethod
    def from_model(
        cls, model: nn.Module, settings: VisionSettings, device: str = "cpu"
    ) -> EmotionPredictor:
        """``model`` (a module, or a graph already frozen for ``vision.inference``) with the
        face detector ``settings`` ask for."""
        detector = FaceDetector.load(
            min_size=settings.min_face_size,
            max_side=settings.detection_max_side,
            max_faces=settings.max_faces,
        )
        return cls(model, detector, settings, device)

    def predict(self, data: bytes, all_faces: bool | None = None) -> ImagePrediction:
        return self.predict_many([data], all_faces=all_faces)[0]

    def predict_many(
        self, images: Sequence[bytes], all_faces: AllFaces = None
    ) -> list[ImagePrediction]:
        """Decode, detect and classify every face of every image in one forward pass.

        Raises :class:`~components.vision.faces.ImageInputError` for the first bad image;
        callers that must isolate bad inputs decode first with :meth:`decode`.
        """
        return self.predict_decoded([self.decode(data) for data in images], all_faces=all_faces)

    def predict_each(
        self, images: Sequence[bytes], all_faces: AllFaces = None
    ) -> list[ImagePrediction | ImageInputError]:
        """Like :meth:`predict_many` (one forward pass), but a bad image is returned as its
        :class:`ImageInputError` in place instead of failing the others."""
        decoded: list[np.ndarray | ImageInputError] = []
        for data in images:
            try:
                decoded.append(self.decode(data))
            except ImageInputError as error:
                decoded.append(error)
        modes = self._modes(all_faces, len(images))
        good = [d for d in decoded if not isinstance(d, ImageInputError)]
        good_modes = [
            m for d, m in zip(decoded, modes, strict=True) if not isinstance(d, ImageInputError)
        ]
        predictions = iter(self.predict_decoded(good, all_faces=good_modes))
        return [d if isinstance(d, ImageInputError) else next(predictions) for d in decoded]

    def _modes(self, all_faces: AllFaces, count: int) -> list[bool]:
        """One "every face?" flag per image; ``None`` falls back to the setting."""
        default = self.settings.face_detection == "all"
        flags = (
            [all_faces] * count if all_faces is None or isinstance(all_faces, bool) else all_faces
        )
        if len(flags) != count:
            raise ValueError(f"{len(flags)} all_faces flags for {count} images")
        return [default if flag is None else bool(flag) for flag in flags]

    def decode(self, data: bytes) -> np.ndarray:
        return decode_image(data, max_pixels=self.settings.max_image_pixels)

    def predict_decoded(
        self, images: Sequence[np.ndarray], all_faces: AllFaces = None
    ) -> list[ImagePrediction]:
        modes = self._modes(all_faces, len(images))
        found: list[FaceCrops] = [
            self.detector.crop_faces(
                gray, mode="all" if every else "largest", face_crop_side=self.crop_size
            )
            for gray, every in zip(images, modes, strict=True)
        ]
        flat = [crop for per_image in found for crop in per_image.crops]
        if not flat:
            return []
        batch = np.stack([face_to_input(crop.pixels, self.crop_size) for crop in flat])
        probabilities = predict_probabilities(
            self.model,
            batch,
            batch_size=max(len(batch), 1),
            tta=self.settings.tta,
            device=self.device,
        )
        results, cursor = [], 0
        for per_image in found:
            faces = []
            for crop in per_image.crops:
                probs = probabilities[cursor]
                cursor += 1
                best = int(probs.argmax())
                faces.append(
                    FacePrediction(
                        emotion=EMOTIONS[best],
                        confidence=float(probs[best]),
                        probabilities={name: float(probs[i]) for i, name in enumerate(EMOTIONS)},
                        box=crop.box.as_dict(),
                        face_detected=crop.detected,
                        face_crop_input=crop.face_crop_input,
                    )
                )
            results.append(ImagePrediction(faces=faces, faces_found=per_image.found))
        return results
