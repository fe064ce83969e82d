"""What the classifier says about an image: one description of a face, used by the predictor,
the answer (``Answer.face``) and every surface that shows them; and which classifier said
it (``ClassifierSource``). Light: no torch, so processes that never classify (the text
endpoints, the registry) name the classifier without importing it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from components.hashing import file_sha256


class FacePrediction(BaseModel):
    """One face: its emotion with all 7 probabilities, and where it is in the image."""

    model_config = ConfigDict(frozen=True)

    emotion: str
    confidence: float
    probabilities: dict[str, float]
    box: dict[str, int] = Field(description="x, y, width, height in the uploaded image's pixels")
    face_detected: bool = Field(description="False: no face found, the whole image was used")
    face_crop_input: bool = Field(
        False,
        description="True: the image was no larger than the classifier's input, a face crop "
        "as in training, and was classified whole without face detection",
    )


class ImagePrediction(BaseModel):
    """Every classified face of one image, largest first."""

    model_config = ConfigDict(frozen=True)

    faces: list[FacePrediction] = Field(default_factory=list)
    faces_found: int = 0  # before the ``vision.max_faces`` cap

    @property
    def primary(self) -> FacePrediction:
        """The largest face (or the whole image when no face was found)."""
        return self.faces[0]

    @property
    def note(self) -> str | None:
        if self.faces and self.faces[0].face_crop_input:
            box = self.faces[0].box
            return (
                f"a {box['width']}x{box['height']} image is taken as a face crop (no larger "
                "than the classifier's input): classified whole, without face detection"
            )
        if self.faces and not self.faces[0].face_detected:
            return "no face detected: the whole image was classified"
        if self.faces_found > len(self.faces):
            return (
                f"{self.faces_found} faces found: the {len(self.faces)} largest were classified "
                "(vision.max_faces)"
            )
        return None

    def as_dict(self) -> dict[str, object]:
        return {"faces": [face.model_dump() for face in self.faces], "note": self.note}


@dataclass(frozen=True)
class ClassifierSource:
    """Where the emotion classifier comes from, and how answers name it."""

    weights: Path
    name: str = "emotion-classifier"
    version: str | None = None
    sha256: str | None = None
    calibration_faces: Path | None = None  # its training run's, for int8 (packaging)

    def describe(self) -> dict[str, str]:
        digest = self.sha256 or file_sha256(self.weights)
        out = {"classifier": f"{self.name}/{self.version}" if self.version else str(self.weights)}
        out["classifier_sha256"] = digest
        return out
