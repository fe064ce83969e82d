"""A real TorchServe (Java) on free loopback ports serving the four endpoints from a real
registry champion and index: answers, token, bad inputs, bursts, and a zero-downtime
reload."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from PIL import Image

from components.analysis.index_build import build_index
from components.emotions import EMOTIONS
from components.nlp.sentiment import VaderSentimentScorer
from components.nlp.summarize import ExtractiveSummarizer
from components.settings import Settings
from serving.client import ClientError, EmoreviewClient
from serving.deploy import deploy_champion, package_champion
from serving.package import model_store
from serving.server import ServerError, TorchServe
from serving.service import ENDPOINTS
from tests.cli import run_cli
from tests.random_models import register_champion, save_classifier
from tests.servers import free_serving_ports

pytestmark = pytest.mark.integration


# The served champion is calibrated with this temperature (a sharpening one, so that its
# effect on a random network's near-uniform probabilities is large enough to see).
SERVED_TEMPERATURE = 0.2


def three_reviews(settings: Settings) -> Settings:
    """``settings`` with three reviews per answer instead of four: a settings change, which
    is served as a new version of every endpoint."""
    return Settings.from_dict(
        {
            **settings.model_dump(mode="json"),
            "retrieval": {**settings.retrieval.model_dump(), "k": 3},
        }
    )


def register_random_model(
    settings: Settings, seed: int, folder: Path, temperature: float = 1.0
) -> str:
    """A real registered version (random weights): logged, registered, made champion."""
    weights = save_classifier(folder / f"weights-{seed}.pt", seed, temperature)
    return register_champion(settings, weights)


@pytest.fixture(scope="module")
def served(tmp_path_factory, reviews_700, minilm):
    folder = tmp_path_factory.mktemp("serving")
    config = {
        "workspace": str(folder / "ws"),
        "serving": {
            **free_serving_ports(),
            "batch_size": 8,
            "max_batch_delay_ms": 20,
            "drain_seconds": 2,
        },
    }
    config_file = folder / "settings.yaml"
    config_file.write_text(yaml.safe_dump(config))
    settings = Settings.load(config_file)
    build_index(
        reviews_700, "5" * 64, minilm, settings, sentiment=VaderSentimentScorer(),
        summarizer=ExtractiveSummarizer(minilm), progress=False,
    )  # fmt: skip
    register_random_model(settings, seed=1, folder=folder, temperature=SERVED_TEMPERATURE)
    server = TorchServe(settings)
    try:
        deployment = deploy_champion(settings)
        assert deployment.action == "started"
        yield settings, config_file, server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(served) -> EmoreviewClient:
    settings, _, server = served
    return EmoreviewClient(server.inference_url, settings.paths.serving_dir / "key_file.json")


def face_png(side: int = 512) -> bytes:
    """The astronaut photo (a face the detector finds), ``side`` pixels square. The
    concurrent burst sends it at 128 (24 ms of a worker's CPU against 141 at 512); the
    reload's burst keeps 512, whose slow requests fill the old version's queue when the
    defaults switch (at 128, a reload that dropped that queue passed the test)."""
    from skimage import data

    photo = Image.fromarray(data.astronaut())
    buffer = io.BytesIO()
    (photo if side == photo.width else photo.resize((side, side))).save(buffer, format="PNG")
    return buffer.getvalue()


def test_all_four_endpoints_answer(served, client) -> None:
    settings, _, _ = served
    image = face_png()
    faces = client.emotion(image)
    assert faces["faces"][0]["face_detected"], "the astronaut's face is found"
    assert set(faces["faces"][0]["probabilities"]) == set(EMOTIONS)
    assert faces["versions"]["model_version"] == "1"
    assert len(faces["versions"]["model_sha256"]) == 64

    answer = client.emotion_reviews(image)
    assert answer["emotion"] == faces["faces"][0]["emotion"]
    assert len(answer["reviews"]) == 4 and answer["summary"]
    assert {r["emotion"] for r in answer["reviews"]} == {answer["emotion"]}
    assert answer["source"] == "precomputed"
    # The why, over all of the emotion's reviews: themes with their shares, and a summary
    # that states them.
    themes = answer["themes"]
    assert themes and {t["emotion"] for t in themes} == {answer["emotion"]}
    assert themes[0]["share"] >= themes[-1]["share"] > 0 and themes[0]["quotes"]
    assert answer["summary"].startswith(f"Customers who feel {answer['emotion']} mostly mention")
    versions = answer["versions"]
    assert versions["model_version"] == "1" and versions["index_version"]
    assert versions["summarizer"].startswith("extractive:")
    assert versions["sentiment"] == "vader:vadersentiment"

    reviews = client.reviews("the parcel arrived broken", emotion="sad", k=3)
    assert len(reviews["reviews"]) == 3 and reviews["emotion"] == "sad"
    assert reviews["themes"] and {t["emotion"] for t in reviews["themes"]} == {"sad"}
    assert all(
        r["sentiment"]["label"] in ("negative", "neutral", "positive") for r in reviews["reviews"]
    )

    scored = client.sentiment(["I love it, wonderful!", "Terrible, it broke."])
    assert [r["label"] for r in scored["results"]] == ["positive", "negative"]


def test_served_probabilities_are_the_versions_calibrated_ones(served, client) -> None:
    """The served 7 probabilities are softmax(logits / T) with the champion's temperature:
    they sum to 1, match the calibrated model run here, and differ from the raw ones."""
    from components.vision.model import TemperatureScaled, load_weights, temperature_of
    from components.vision.predict import EmotionPredictor
    from registry.models import open_registry

    settings, _, _ = served
    source = open_registry(settings).fetch("champion", settings.paths.models_dir)
    assert temperature_of(load_weights(source.weights)) == pytest.approx(SERVED_TEMPERATURE)
    served_probs = client.emotion(face_png())["faces"][0]["probabilities"]
    assert sum(served_probs.values()) == pytest.approx(1.0, abs=1e-5)

    calibrated = EmotionPredictor.from_weights(source.weights, settings.vision)
    weights = load_weights(source.weights)
    assert isinstance(weights, TemperatureScaled)
    raw = EmotionPredictor(weights.model, calibrated.detector, settings.vision)
    here = calibrated.predict(face_png()).faces[0].probabilities
    uncalibrated = raw.predict(face_png()).faces[0].probabilities
    assert max(abs(served_probs[e] - here[e]) for e in EMOTIONS) < 1e-4
    assert max(abs(served_probs[e] - uncalibrated[e]) for e in EMOTIONS) > 1e-2


def test_torchserve_reports_its_handler_time_for_our_endpoints(served, client) -> None:
    """Our handler keeps TorchServe's own batch handling, so its HandlerTime metric reaches
    the Prometheus output like for any TorchServe model."""
    _, _, server = served
    client.sentiment(["metrics, please"])
    deadline, lines = time.monotonic() + 20, []
    while time.monotonic() < deadline:
        text = requests.get(f"{server.metrics_url}/metrics", timeout=30).text
        lines = [line for line in text.splitlines() if line.startswith("HandlerTime{")]
        if any('ModelName="sentiment"' in line for line in lines):
            break
        time.sleep(0.5)
    assert any('ModelName="sentiment"' in line for line in lines), lines


def test_the_token_is_required(served) -> None:
    _, _, server = served
    response = requests.post(f"{server.inference_url}/predictions/emotion", data=face_png())
    assert response.status_code in (400, 401)
    assert "Token Authorization failed" in response.text
    wrong = EmoreviewClient(server.inference_url)
    with pytest.raises(ClientError):
        wrong.sentiment(["hello"])


def test_bad_input_gets_a_4xx_json_error_and_the_server_keeps_answering(served) -> None:
    settings, _, server = served
    key = json.loads((settings.paths.serving_dir / "key_file.json").read_text())["inference"]["key"]
    auth = {"Authorization": f"Bearer {key}"}
    octet = {**auth, "Content-Type": "application/octet-stream"}
    as_json = {**auth, "Content-Type": "application/json"}
    bomb = io.BytesIO()
    Image.new("L", (9000, 9000)).save(bomb, format="PNG")
    truncated = face_png()[:500]
    url = f"{server.inference_url}/predictions"
    cases = [
        ("emotion", b"definitely not an image", octet, 400),
        ("emotion", b"", octet, 400),
        ("emotion_reviews", truncated, octet, 400),
        ("emotion", bomb.getvalue(), octet, 413),
        ("reviews", b"{not json", as_json, 400),
        ("reviews", json.dumps({"query": "why?", "emotion": "grumpy"}).encode(), as_json, 400),
        ("reviews", json.dumps({"query": "why?", "k": 0}).encode(), as_json, 400),
        ("reviews", json.dumps({"query": "why?", "k": 1000}).encode(), as_json, 400),
        ("reviews", json.dumps({"query": ""}).encode(), as_json, 400),
        ("sentiment", b"[]", as_json, 400),
        ("sentiment", json.dumps([1, 2]).encode(), as_json, 400),
    ]
    for model, body, headers, status in cases:
        response = requests.post(f"{url}/{model}", data=body, headers=headers, timeout=60)
        assert response.status_code == status, (model, body[:40], response.text)
        assert response.json()["error"], response.text
    too_big = requests.post(
        f"{url}/emotion", data=b"0" * (11 * 1024 * 1024), headers=octet, timeout=60
    )
    assert too_big.status_code == 413
    ok = requests.post(f"{url}/emotion", data=face_png(), headers=octet, timeout=60)
    assert ok.status_code == 200 and ok.json()["faces"]


def test_a_concurrent_burst_all_succeeds(client) -> None:
    image = face_png(side=128)
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: client.emotion(image), range(48)))
    assert len(results) == 48 and all(r["faces"] for r in results)
    first = np.array(list(results[0]["faces"][0]["probabilities"].values()))
    for result in results[1:]:
        probabilities = np.array(list(result["faces"][0]["probabilities"].values()))
        np.testing.assert_allclose(probabilities, first, atol=1e-4)  # batched == single


def test_cli_predict_and_ask_through_the_server(served) -> None:
    settings, config_file, _ = served
    image = settings.workspace.parent / "face.png"
    image.write_bytes(face_png())
    predicted = run_cli(settings.workspace, "--config", str(config_file), "predict", str(image))
    assert predicted.returncode == 0, predicted.stderr
    assert (
        "Summary (extractive:" in predicted.stdout and "served model version 1" in predicted.stdout
    )
    assert "Themes (share of the emotion's reviews" in predicted.stdout
    url = f"http://127.0.0.1:{settings.serving.inference_port}"
    asked = run_cli(
        settings.workspace,
        "--config",
        str(config_file),
        "ask",
        "late delivery",
        "--url",
        url,
        "--json",
    )
    assert asked.returncode == 0, asked.stderr
    assert len(json.loads(asked.stdout)["reviews"]) == 4
    status = run_cli(settings.workspace, "--config", str(config_file), "serve", "status", "--json")
    assert json.loads(status.stdout)["running"] is True


def test_reload_during_a_burst_loses_no_request(served, client) -> None:
    settings, _, server = served
    new_version = register_random_model(settings, seed=2, folder=settings.workspace)
    image = face_png()
    stop = threading.Event()
    seen: list[str] = []
    failures: list[str] = []

    def burst() -> None:
        # Paced, so that requests are always in flight without the four threads taking the
        # cores the new version's workers load on (unpaced, this test took 58 s in
        # `make test`, paced 25 s).
        while not stop.wait(0.05):
            for call in (client.emotion, client.emotion_reviews):
                try:
                    seen.append(call(image)["versions"]["model_version"])
                except Exception as error:  # any failure is what this test looks for
                    failures.append(repr(error))

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deployment = deploy_champion(settings)
    finally:
        # Keep the burst going briefly on the new version, then stop.
        threading.Event().wait(2)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    assert deployment.action == "reloaded" and deployment.previous is not None
    assert failures == []
    assert "1" in seen and new_version in seen
    assert seen[-1] == new_version
    models = server.status()["models"]
    for endpoint in ("emotion", "emotion_reviews", "reviews", "sentiment"):
        assert [v["version"] for v in models[endpoint]] == [deployment.bundle.version]


def test_packaging_the_served_version_again_leaves_its_folders_alone(served) -> None:
    settings, _, server = served
    served_now = server.served()
    assert served_now is not None
    store = model_store(settings)
    handler = store / served_now.archives["emotion"] / "handler.py"
    before = (handler.stat().st_ino, handler.stat().st_mtime_ns)
    bundle = package_champion(settings)
    assert bundle.version == served_now.version
    assert (handler.stat().st_ino, handler.stat().st_mtime_ns) == before


def test_a_reload_that_fails_on_the_third_endpoint_leaves_every_endpoint_as_it_was(
    served, client
) -> None:
    settings, _, server = served
    before = server.served()
    assert before is not None
    fewer = three_reviews(settings)
    bundle = package_champion(fewer)
    assert bundle.version != before.version, "a settings change must be served as a new version"
    assert list(bundle.archives)[2] == "reviews"
    shutil.rmtree(model_store(fewer) / bundle.archives["reviews"])  # its registration fails
    with pytest.raises(ServerError, match=f"still serves {before.version}"):
        TorchServe(fewer).reload(bundle)
    assert server.served() == before
    models = server.status()["models"]
    for endpoint in ENDPOINTS:
        assert [v["version"] for v in models[endpoint]] == [before.version], endpoint
    image = face_png()
    assert len(client.emotion_reviews(image)["reviews"]) == 4
    assert len(client.reviews("late delivery")["reviews"]) == 4
    assert client.sentiment(["fine"])["results"] and client.emotion(image)["faces"]

    # Packaging again builds only the missing archive; the next test serves the result.
    repaired = package_champion(fewer)
    assert repaired.version == bundle.version
    assert (model_store(fewer) / bundle.archives["reviews"]).is_dir()


def test_a_request_inside_an_old_worker_is_answered_before_the_reload_retires_it(
    served, client
) -> None:
    """The old version's queue is empty but its worker is still running a long batch: the
    reload must wait for it (TorchServe drops a running batch unanswered when its model is
    unregistered), even with no grace period at all.

    The new version is the previous test's repaired one (three reviews per answer), so this
    reload also proves that a repaired package serves; run alone, it packages it whole."""
    settings, _, server = served
    fewer = three_reviews(settings)
    bundle = package_champion(fewer)
    old = server.served()
    assert old is not None and bundle.version != old.version
    # The new versions registered beforehand (as an interrupted reload leaves them, which
    # reload reuses), so the switch and the retirement follow within a second.
    for name in bundle.archives.values():
        requests.post(
            f"{server.management_url}/models",
            params={"url": name, "synchronous": "true", "initial_workers": "1"},
            headers={"Authorization": f"Bearer {server.key('management')}"},
            timeout=300,
        ).raise_for_status()
    texts = ["The parcel arrived broken and support never answered. " * 160] * 128
    outcome: dict[str, object] = {}

    def long_request() -> None:  # ~10 s of VADER inside the old sentiment worker
        try:
            response = requests.post(
                f"{server.inference_url}/predictions/sentiment",
                json=texts,
                headers={"Authorization": f"Bearer {server.key()}"},
                timeout=90,
            )
            outcome["status"] = response.status_code
            outcome["version"] = response.json().get("versions", {}).get("model_version")
        except requests.RequestException as error:
            outcome["error"] = repr(error)

    thread = threading.Thread(target=long_request)
    thread.start()
    time.sleep(1.0)  # taken from the queue by the old worker
    no_grace = Settings.from_dict(
        {
            **fewer.model_dump(mode="json"),
            "serving": {**fewer.serving.model_dump(), "drain_seconds": 0},
        }
    )
    TorchServe(no_grace).reload(bundle)
    thread.join(timeout=120)
    assert outcome.get("status") == 200, outcome
    models = server.status()["models"]
    for endpoint in ENDPOINTS:
        assert [v["version"] for v in models[endpoint]] == [bundle.version], endpoint
    assert len(client.emotion_reviews(face_png())["reviews"]) == 3
