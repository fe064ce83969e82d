"""The web app end to end in a real browser: a real TorchServe serving a registered champion
and an index, the real Streamlit server started by `emoreview app`, and Debian's Chromium
driven by Playwright. Each state is saved as a screenshot (``build/screenshots/tests``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from components.analysis.index_build import build_index
from components.emotions import EMOTIONS
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.processes import local_server
from components.settings import Settings
from serving.deploy import deploy_champion
from serving.server import TorchServe
from tests.random_models import register_champion, save_classifier
from tests.servers import free_port, free_serving_ports

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(
    os.environ.get("EMOREVIEW_SCREENSHOTS", Path(__file__).parents[2] / "build/screenshots/tests")
)
ANSWER_TIMEOUT_MS = 90_000
PERCENT = re.compile(r"(\w+) (\d+\.\d)%")


def log_evaluation_pictures(settings: Settings, version: str, folder: Path) -> None:
    """The champion's run gets a real evaluation report's pictures (seeded predictions on
    seeded labels), as a training run logs them."""
    from components.vision.evaluate import compute_metrics, write_evaluation
    from registry.models import open_registry

    rng = np.random.default_rng(0)
    labels = rng.integers(0, len(EMOTIONS), 140)
    probabilities = rng.dirichlet(np.ones(len(EMOTIONS)), 140)
    report = compute_metrics(labels, probabilities, dataset="seeded", split="test")
    from registry.cards import publish_model_card

    registry = open_registry(settings)
    run_id = registry.record(version).run_id
    for path in write_evaluation(report, folder / "evaluation").values():
        registry.client.log_artifact(run_id, str(path))
    publish_model_card(registry, version)


@pytest.fixture(scope="module")
def served_app(tmp_path_factory, reviews_700, minilm) -> Iterator[dict]:
    """TorchServe with a random-weights champion (with evaluation pictures) and the 700
    reviews' index, and the app started by the CLI, both on free loopback ports."""
    folder = tmp_path_factory.mktemp("app")
    app_port = free_port()
    config = {
        "workspace": str(folder / "ws"),
        # 1 MB: the size-limit test needs only a small file to go over it.
        "serving": {**free_serving_ports(), "max_request_mb": 1, "drain_seconds": 1},
        "app": {"port": app_port, "timeout_s": 60},
    }
    config_file = folder / "settings.yaml"
    config_file.write_text(yaml.safe_dump(config))
    settings = Settings.load(config_file)
    build_index(
        reviews_700, "7" * 64, minilm, settings, sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm), progress=False,
    )  # fmt: skip
    version = register_champion(settings, save_classifier(folder / "weights.pt", 3), "app test")
    log_evaluation_pictures(settings, version, folder)
    server = TorchServe(settings)
    command = [
        str(Path(sys.executable).with_name("emoreview")),
        "--config",
        str(config_file),
        "app",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMOREVIEW_")}
    url = f"http://127.0.0.1:{app_port}"
    try:
        deploy_champion(settings)
        with local_server(command, f"{url}/_stcore/health", folder / "app.log", env=env):
            yield {"url": url, "settings": settings, "server": server, "folder": folder}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "Debian's chromium is missing: `make browser` installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def browser_context(browser):
    """One browser profile for the module: its tabs share the HTTP and compiled-script
    caches, so a tab loads the app's JavaScript without fetching and compiling it again."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context
    context.close()


@pytest.fixture
def page(browser_context, served_app):
    """A fresh browser tab on the app (a new Streamlit session), loaded (the Photo tab's
    prompt is shown)."""
    tab = browser_context.new_page()
    tab.set_default_timeout(ANSWER_TIMEOUT_MS)
    tab.goto(served_app["url"])
    tab.get_by_text("No photo yet").wait_for()
    yield tab
    tab.close()


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let the charts finish drawing
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def face_file(folder: Path, name: str = "astronaut.jpg", twice: bool = False) -> Path:
    from skimage import data

    pixels = data.astronaut()
    if twice:
        pixels = np.concatenate([pixels, pixels[:, ::-1]], axis=1)
    path = folder / name
    Image.fromarray(pixels).save(path)
    return path


def upload(page, path: Path) -> None:
    page.locator("input[type=file]").first.set_input_files(str(path))


def wait_answer(page, key: str):
    """Wait for an answer's versions footer (the last part drawn) and return its text."""
    footer = page.locator(f".st-key-{key}-versions")
    try:
        footer.wait_for()
    except Exception:
        shoot(page, f"failed-waiting-for-{key}")
        raise
    return footer.inner_text()


def settled(page) -> None:
    """Wait until the script run is over (Streamlit's running indicator is gone): a widget
    opened while a rerun is still drawing can be redrawn closed."""
    page.locator("[data-testid=stStatusWidget]").wait_for(state="hidden")


def pick(page, selectbox: str, option: str) -> None:
    """Choose ``option`` in a selectbox: open it from its own input (its label takes no
    clicks) once the page has settled, and choose the option. A click that lands while a
    rerun is still drawing leaves it closed (in most runs the first one did, and waited 10
    s for an option that could not appear); the list opens in the browser alone, so a
    few seconds tell that the click must be made again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(5):
        settled(page)
        page.locator(f"{selectbox} input").click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=3_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    shoot(page, "failed-picking")
    raise AssertionError(f"the {option!r} option of {selectbox} never appeared")


def shown_error(page, words: str) -> str:
    alert = page.locator("[data-testid=stAlert]:visible", has_text=words).first
    alert.wait_for()
    return alert.inner_text()


def test_a_photo_gets_its_emotion_7_probabilities_4_review_cards_and_versions(
    page, served_app, tmp_path
) -> None:
    upload(page, face_file(tmp_path))
    footer = wait_answer(page, "photo-face-0")
    heading = page.locator(".st-key-photo-emotion h2").inner_text()
    assert heading.split()[-2] in EMOTIONS, heading
    shown = dict(PERCENT.findall(page.locator(".st-key-photo-primary-probabilities").inner_text()))
    assert set(shown) == set(EMOTIONS)
    assert abs(sum(float(value) for value in shown.values()) - 100) < 1.0
    values = [float(value) for value in shown.values()]
    assert values == sorted(values, reverse=True), "probabilities are listed largest first"
    cards = page.locator("[class*='st-key-photo-face-0-review-']")
    assert cards.count() == 4
    for number in range(4):
        assert re.search(
            r"(positive|neutral|negative) \d\.\d\d · similarity", cards.nth(number).inner_text()
        )
    assert page.get_by_text("Why customers feel").first.is_visible()
    assert (
        page.locator(".st-key-photo-face-0-summary").inner_text().startswith("Customers who feel")
    )
    from registry.models import open_registry

    sha = open_registry(served_app["settings"]).record("1").tags["weights_sha256"]
    assert f"v1 · weights sha256 {sha[:12]}" in footer and "index " in footer
    assert "summarizer extractive:" in footer and "sentiment vader:" in footer
    assert page.locator("[data-testid=stImage] img").first.is_visible()
    page.get_by_role("button", name="Download the answer (JSON)").wait_for()
    shoot(page, "01-photo-answer")


def test_all_faces_gives_one_card_per_face(page, tmp_path) -> None:
    page.get_by_text("all faces").click()
    upload(page, face_file(tmp_path, "two.png", twice=True))
    wait_answer(page, "photo-face-1")
    cards = page.locator("[class*='st-key-photo-face-']").filter(has_text="Face ")
    assert page.locator(".st-key-photo-face-1 h3").first.inner_text().startswith("Face 2:")
    assert cards.count() >= 2
    shoot(page, "02-all-faces")


def test_the_ask_tab_answers_a_question_and_refuses_an_empty_one(page) -> None:
    page.get_by_role("tab", name="Ask").click()
    page.get_by_role("button", name="Ask").click()
    shown_error(page, "Type a question first")
    page.get_by_label("Question").fill("the parcel arrived late and damaged")
    page.get_by_label("Emotion").click()
    page.get_by_role("option", name="sad").click()
    page.get_by_role("button", name="Ask").click()
    wait_answer(page, "ask")
    assert page.locator(".st-key-ask-summary").inner_text().strip()
    assert page.locator("[class*='st-key-ask-review-']").count() == 4
    assert "(sad)" in page.get_by_role("heading", name="the parcel arrived").inner_text()
    shoot(page, "03-ask")


def test_the_sentiment_tab_scores_each_line(page) -> None:
    page.get_by_role("tab", name="Sentiment").click()
    page.get_by_label("Texts, one per line").fill("I love it, wonderful!\nTerrible, it broke.")
    page.get_by_role("button", name="Score").click()
    table = page.locator(".st-key-sentiment-table")
    table.wait_for()
    rows = table.locator("tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert "positive" in rows.nth(0).inner_text() and "negative" in rows.nth(1).inner_text()
    page.get_by_role("button", name="Download as CSV").wait_for()
    shoot(page, "04-sentiment")


def test_the_models_tab_shows_the_registry_and_the_champions_pictures(page) -> None:
    page.get_by_role("tab", name="Models").click()
    page.get_by_text("champion v1").wait_for()
    page.locator(".st-key-models-table [data-testid=stDataFrame]").wait_for()
    pictures = page.locator("[data-testid=stImage]", has_text="v1:")
    pictures.first.wait_for()
    captions = " ".join(pictures.all_inner_texts())
    assert "confusion matrix" in captions and "per class accuracy" in captions
    page.locator(".st-key-models-card summary").click()
    card = page.locator(".st-key-models-card")
    card.get_by_text("Model card: emotion-classifier version 1").wait_for()
    assert "It must not be used for" in card.inner_text()
    shoot(page, "05-models")


def test_a_correction_and_a_vote_in_the_app_reach_the_store_and_the_next_training(
    page, served_app, tmp_path
) -> None:
    """ "Wrong emotion?" with consent stores the classifier's 48x48 crop (what the next
    training merges into train); a 👎 on a review stores a vote for that emotion."""
    from components.feedback.store import FeedbackStore
    from components.vision.faces import classified_face, decode_image
    from components.vision.fer_data import read_gray
    from registry.training import training_feedback
    from serving.client import EmoreviewClient

    settings = served_app["settings"]
    photo = face_file(tmp_path)
    upload(page, photo)
    wait_answer(page, "photo-face-0")
    predicted = page.locator(".st-key-photo-emotion h2").inner_text().split()[-2]
    right = next(e for e in EMOTIONS if e != predicted)
    pick(page, ".st-key-photo-face-0-right-emotion", right)
    page.locator(".st-key-photo-face-0-consent label").click()
    page.get_by_role("button", name="Send").first.click()
    saved = page.locator(".st-key-photo-face-0-correction-saved")
    saved.wait_for()
    assert f"({right}; its face crop is kept for training)" in saved.inner_text()
    page.locator(".st-key-photo-face-0-vote-0-down").get_by_role("button").click()
    page.locator(".st-key-photo-face-0-vote-0-voted").wait_for()
    shoot(page, "10-feedback")

    store = FeedbackStore.open(settings.feedback.url, settings.paths.feedback_dir)
    corrections, votes = store.rows("correction"), store.rows("review_vote")
    assert len(corrections) == 1 and len(votes) == 1
    row = corrections[0]
    assert (row.predicted_emotion, row.corrected_emotion, row.consent) == (predicted, right, True)
    assert row.model_version == "1" and row.source == "app" and row.index_version
    served = EmoreviewClient.from_settings(settings).emotion(photo.read_bytes())["faces"][0]
    expected = classified_face(decode_image(photo.read_bytes()), served["box"])
    np.testing.assert_array_equal(read_gray(store.face_path(row)), expected)
    assert (votes[0].helpful, votes[0].predicted_emotion) == (False, predicted)
    assert votes[0].review_id
    store.close()
    merged = training_feedback(settings)
    assert merged is not None and merged.ids == [row.id] and merged.labels == [right]


def test_a_text_file_named_jpg_is_refused_and_the_next_photo_is_answered(page, tmp_path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo at all\n")
    upload(page, fake)
    message = shown_error(page, "refused this request")
    assert "not an image" in message
    assert page.locator(".st-key-photo-face-0-versions").count() == 0
    shoot(page, "06-not-an-image")
    # The next photo is a 48x48 face crop (FER-2013's format): classified whole, and said so.
    astronaut = Image.open(face_file(tmp_path)).convert("L")
    astronaut.crop((170, 60, 280, 170)).resize((48, 48)).save(tmp_path / "face48.png")
    upload(page, tmp_path / "face48.png")
    wait_answer(page, "photo-face-0")
    shown = page.locator(".st-key-photo-emotion").inner_text()
    assert "a 48x48 image is taken as a face crop" in shown, shown


def test_a_file_over_the_size_limit_is_refused_before_upload(page, served_app, tmp_path) -> None:
    big = tmp_path / "big.png"
    noise = np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big)  # ~1.4 MB of noise: over the 1 MB limit
    assert big.stat().st_size > 1024 * 1024
    log = served_app["settings"].paths.serving_dir / "logs" / "access_log.log"
    before = log.read_text(encoding="utf-8") if log.exists() else ""
    upload(page, big)
    assert "at most 1 MB" in shown_error(page, "the server accepts photos")
    after = log.read_text(encoding="utf-8") if log.exists() else ""
    assert after.count("emotion_reviews") == before.count("emotion_reviews"), "nothing was sent"
    shoot(page, "07-too-large")


def test_a_refused_token_says_how_to_get_a_new_one(page, served_app, tmp_path) -> None:
    key_file = served_app["settings"].paths.serving_dir / "key_file.json"
    original = key_file.read_text(encoding="utf-8")
    keys = json.loads(original)
    keys["inference"]["key"] = "wrongkey"
    key_file.write_text(json.dumps(keys), encoding="utf-8")
    try:
        upload(page, face_file(tmp_path))
        assert "emoreview serve token" in shown_error(page, "refused the app's token")
        shoot(page, "08-token-refused")
    finally:
        key_file.write_text(original, encoding="utf-8")


def test_with_torchserve_stopped_the_app_says_it_is_not_answering(page, served_app, tmp_path):
    """Last in the module: it stops the server."""
    served_app["server"].stop()
    upload(page, face_file(tmp_path))
    message = shown_error(page, "is not answering")
    assert "emoreview serve start" in message
    shoot(page, "09-not-answering")
    page.get_by_role("tab", name="Ask").click()
    page.get_by_label("Question").fill("why are customers angry?")
    page.get_by_role("button", name="Ask").click()
    assert "emoreview serve start" in shown_error(page, "The reviews endpoint is not answering")
