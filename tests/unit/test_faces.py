"""Decoding untrusted bytes and finding faces."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from components.emotions import EMOTIONS
from components.vision.faces import FaceDetector, ImageInputError, decode_image


def _encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    from skimage import data

    return _encode(Image.fromarray(data.astronaut()))


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector.load()


def recording(detector: FaceDetector, seen: list[tuple[int, ...]]) -> object:
    """``detector``'s Haar cascade, noting the shape of every image it is asked to search."""
    cascade = detector._cascade

    class Recording:
        def detectMultiScale(self, image, **kwargs):  # noqa: N802 - OpenCV's name
            seen.append(image.shape)
            return cascade.detectMultiScale(image, **kwargs)

    return Recording()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "empty"),
        (b"definitely not an image", "not_an_image"),
        (b"%PDF-1.4 a pdf", "not_an_image"),
    ],
)
def test_bad_bytes(payload: bytes, reason: str) -> None:
    with pytest.raises(ImageInputError) as caught:
        decode_image(payload)
    assert caught.value.reason == reason


def test_truncated_image(astronaut_png: bytes) -> None:
    with pytest.raises(ImageInputError, match="truncated") as caught:
        decode_image(astronaut_png[: len(astronaut_png) // 3])
    assert caught.value.reason == "truncated"


def test_pixel_limit_and_decompression_bomb() -> None:
    big = _encode(Image.new("L", (3000, 3000), 0))  # tiny file, 9 M pixels
    with pytest.raises(ImageInputError, match="above the limit") as caught:
        decode_image(big, max_pixels=1_000_000)
    assert caught.value.reason == "too_large"
    assert decode_image(big, max_pixels=10_000_000).shape == (3000, 3000)


def test_exif_orientation_is_honoured() -> None:
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (0, 0, 10, 20))  # white band on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    gray = decode_image(_encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert gray.shape == (40, 20)
    assert gray[:5].mean() > 200 and gray[-5:].mean() < 50  # band is now at the top


@pytest.mark.parametrize("mode", ["RGBA", "P", "I;16", "CMYK", "1", "LA"])
def test_any_mode_converts_to_gray(mode: str) -> None:
    base = Image.fromarray(np.tile(np.arange(0, 256, 4, dtype=np.uint8), (16, 1)))
    image = (
        base.convert(mode)
        if mode != "I;16"
        else Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    )
    fmt = "TIFF" if mode in ("CMYK", "I;16") else "PNG"
    gray = decode_image(_encode(image, fmt))
    assert gray.dtype == np.uint8 and gray.shape == (16, 64)
    assert gray[:, -1].mean() > gray[:, 0].mean()


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert decode_image(_encode(image)).min() == 255


def test_finds_the_face_in_a_real_photo(astronaut_png: bytes, detector: FaceDetector) -> None:
    gray = decode_image(astronaut_png)
    boxes = detector.detect(gray)
    assert boxes, "no face found in skimage's astronaut()"
    box = boxes[0]
    # Eileen Collins's face sits around x 180-270, y 60-160 in the 512x512 photo.
    assert 150 < box.x + box.width / 2 < 300 and 50 < box.y + box.height / 2 < 180
    crops = detector.crop_faces(gray).crops
    assert len(crops) == 1 and crops[0].detected


def test_no_face_falls_back_to_whole_image(detector: FaceDetector) -> None:
    gray = np.full((100, 80), 128, dtype=np.uint8)
    crops = detector.crop_faces(gray).crops
    assert len(crops) == 1 and not crops[0].detected
    assert crops[0].box.as_dict() == {"x": 0, "y": 0, "width": 80, "height": 100}


def test_detection_runs_downscaled_and_maps_boxes_back(
    detector: FaceDetector, astronaut_png: bytes
) -> None:
    """A 4x upscaled astronaut (2048 px) is searched at <= 1024 px; the box comes back in
    the big image's pixels, where the face really is."""
    import cv2

    small = decode_image(astronaut_png)
    big = cv2.resize(small, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    seen: list[tuple[int, ...]] = []
    bounded = FaceDetector(recording(detector, seen), max_side=1024)
    box = bounded.detect(big)[0]
    assert seen == [(1024, 1024)], "the cascade saw the full-resolution image"
    reference = detector.detect(small)[0]
    assert abs(box.x - 4 * reference.x) <= 24 and abs(box.width - 4 * reference.width) <= 40
    assert 600 < box.x + box.width / 2 < 1200 and 200 < box.y + box.height / 2 < 720


def test_faces_per_image_are_capped_and_the_answer_says_so(
    detector: FaceDetector, astronaut_png: bytes
) -> None:
    from components.settings import VisionSettings
    from components.vision.model import EmotionResNet
    from components.vision.predict import EmotionPredictor

    face = decode_image(astronaut_png)[:320, 64:384]
    grid = np.vstack([np.hstack([face] * 4)] * 3)  # 12 faces
    capped = FaceDetector(detector._cascade, max_side=2048, max_faces=8)
    found = capped.crop_faces(grid, mode="all")
    assert found.found >= 10 and len(found.crops) == 8
    assert len(capped.crop_faces(grid, mode="largest").crops) == 1
    predictor = EmotionPredictor(EmotionResNet(), capped, VisionSettings(face_detection="all"))
    prediction = predictor.predict_decoded([grid])[0]
    assert len(prediction.faces) == 8
    assert prediction.note and "the 8 largest were classified" in prediction.note


def test_each_image_of_a_batch_gets_its_own_every_face_choice(
    astronaut_png: bytes, random_classifier_weights
) -> None:
    """One forward pass, but the X-Emoreview-Faces choice is per request: the same two-face
    photo gives every face where asked, the largest only where not."""
    from components.settings import VisionSettings
    from components.vision.predict import EmotionPredictor

    pixels = np.asarray(Image.open(io.BytesIO(astronaut_png)))
    buffer = io.BytesIO()
    Image.fromarray(np.concatenate([pixels, pixels[:, ::-1]], axis=1)).save(buffer, "PNG")
    two = buffer.getvalue()
    predictor = EmotionPredictor.from_weights(random_classifier_weights, VisionSettings())
    every, largest, default = predictor.predict_each([two, two, two], [True, False, None])
    assert len(every.faces) >= 2 and len(largest.faces) == 1 and len(default.faces) == 1
    bad = predictor.predict_each([b"not an image", two], [False, True])
    assert isinstance(bad[0], ImageInputError) and len(bad[1].faces) >= 2


def test_an_image_at_the_classifiers_input_size_is_classified_whole_as_in_training(
    detector: FaceDetector, astronaut_png: bytes, random_classifier_weights
) -> None:
    """A 48x48 face (FER-2013's format, what the classifier trained on and `evaluate`
    scores) is not searched: the detector finds a smaller face in it, whose crop enlarged
    to 48x48 is not what the classifier was trained on. A larger image still is."""
    import cv2

    from components.settings import VisionSettings
    from components.vision.evaluate import predict_probabilities
    from components.vision.predict import EmotionPredictor

    photo = decode_image(astronaut_png)
    box = detector.detect(photo)[0]
    face48 = cv2.resize(
        photo[box.y : box.y + box.height, box.x : box.x + box.width], (48, 48),
        interpolation=cv2.INTER_AREA,
    )  # fmt: skip
    assert detector.detect(face48), "the detector finds a face inside the 48x48 crop"
    searched: list[tuple[int, ...]] = []
    predictor = EmotionPredictor.from_weights(random_classifier_weights, VisionSettings())
    predictor.detector = FaceDetector(recording(detector, searched))
    whole, larger = predictor.predict_decoded([face48, cv2.resize(face48, (96, 96))])
    assert searched == [(96, 96)], "only the image larger than the input was searched"
    face = whole.primary
    assert face.face_crop_input and not face.face_detected
    assert face.box == {"x": 0, "y": 0, "width": 48, "height": 48}
    assert whole.note and "48x48 image is taken as a face crop" in whole.note
    expected = predict_probabilities(predictor.model, face48[None], batch_size=1)[0]
    assert [face.probabilities[e] for e in EMOTIONS] == pytest.approx(expected.tolist(), abs=1e-6)
    assert larger.primary.face_detected and not larger.primary.face_crop_input
    assert larger.note is None
