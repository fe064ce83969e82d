"""README's screenshots of the web app, made by the app itself (`make screenshots`).

Starts nothing: it needs TorchServe and the app running (``make screenshots`` starts both on
the demo's workspace). Candidate photos are real photos shipped offline by scikit-image and
matplotlib: the astronaut, Grace Hopper, the cameraman and the 100 faces of scikit-image's
Labeled Faces in the Wild subset (25×25, upscaled). For each of happy, angry and sad, the
first photo whose detected face the served classifier calls that emotion with probability
at least CLEAR (else the one it calls so most confidently) is uploaded in Debian's
Chromium and the page is saved as a PNG.

    python -m serving.app.screenshots --app-url http://127.0.0.1:8501 --out DIR
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from components.settings import Settings
from serving.client import ClientError, EmoreviewClient

TARGETS = ("happy", "angry", "sad")
LFW_SCALE = 8  # 25×25 -> 200×200, large enough for the face detector
CLEAR = 0.8


@dataclass(frozen=True)
class Candidate:
    name: str
    png: bytes


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def candidates() -> list[Candidate]:
    """Real photos that ship inside installed packages (no download)."""
    import matplotlib.cbook
    from skimage import data

    found = [
        Candidate("scikit-image astronaut", _png(data.astronaut())),
        Candidate("scikit-image cameraman", _png(data.camera())),
    ]
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        found.append(Candidate("matplotlib Grace Hopper", handle.read()))
    faces = data.lfw_subset()[:100]  # the first 100 are faces, the rest are not
    for number, face in enumerate(faces):
        pixels = (np.clip(face, 0, 1) * 255).astype(np.uint8)
        big = Image.fromarray(pixels).resize((25 * LFW_SCALE,) * 2, Image.Resampling.BICUBIC)
        found.append(Candidate(f"scikit-image LFW subset face {number}", _png(np.asarray(big))))
    return found


def choose(client: EmoreviewClient, pool: list[Candidate]) -> dict[str, tuple[Candidate, float]]:
    """For each target emotion, the first candidate (full photos come first) whose detected
    face the served classifier calls that emotion with probability at least CLEAR; failing
    that, the one it calls so most confidently."""
    clear: dict[str, tuple[Candidate, float]] = {}
    best: dict[str, tuple[Candidate, float]] = {}
    for candidate in pool:
        face = client.emotion(candidate.png)["faces"][0]
        emotion, confidence = face["emotion"], face["confidence"]
        if emotion not in TARGETS or not face["face_detected"]:
            continue
        if confidence >= CLEAR and emotion not in clear:
            clear[emotion] = (candidate, confidence)
        if confidence > best.get(emotion, (candidate, -1.0))[1]:
            best[emotion] = (candidate, confidence)
    return {emotion: clear.get(emotion) or best[emotion] for emotion in TARGETS if emotion in best}


def shoot(app_url: str, chosen: dict[str, tuple[Candidate, float]], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is missing: `make browser` installs it")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for emotion, (candidate, _) in chosen.items():
            page = browser.new_page(viewport={"width": 1300, "height": 1150})
            page.set_default_timeout(120_000)
            page.goto(app_url)
            page.get_by_text("No photo yet").wait_for()
            staged = out / f"{candidate.name.replace(' ', '-')}.png"
            staged.write_bytes(candidate.png)
            page.locator("input[type=file]").first.set_input_files(str(staged))
            page.locator(".st-key-photo-face-0-versions").wait_for()
            page.wait_for_timeout(1500)  # the charts draw after the footer
            path = out / f"app-{emotion}.png"
            page.screenshot(path=str(path))
            staged.unlink()
            written.append(path)
            page.close()
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--app-url", required=True, help="The running app, e.g. http://127.0.0.1:8501"
    )
    parser.add_argument("--settings", type=Path, help="The app's settings.json (endpoint, token)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("screenshots"))
    arguments = parser.parse_args(argv)
    settings = (
        Settings.model_validate_json(arguments.settings.read_text())
        if arguments.settings
        else Settings.load()
    )
    client = EmoreviewClient.from_settings(settings)
    try:
        chosen = choose(client, candidates())
    except ClientError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for emotion in TARGETS:
        if emotion in chosen:
            candidate, confidence = chosen[emotion]
            print(f"{emotion}: {candidate.name} ({confidence:.1%})")
        else:
            print(f"{emotion}: no candidate photo is classified {emotion}", file=sys.stderr)
    written = shoot(arguments.app_url, chosen, arguments.out)
    record = {e: {"photo": c.name, "probability": round(p, 4)} for e, (c, p) in chosen.items()}
    (arguments.out / "screenshots.json").write_text(json.dumps(record, indent=2) + "\n")
    print("\n".join(str(path) for path in written))
    return 0 if len(chosen) == len(TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
