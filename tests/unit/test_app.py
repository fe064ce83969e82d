"""The web app's pieces without a browser: the size check, the face boxes, the messages for
each way a call fails, the settings hand-over, and the script itself under Streamlit's
AppTest (errors shown, never raised; nothing listening on the endpoint's port)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from components.settings import Settings
from serving.app.context import SETTINGS_ENV, settings_file
from serving.app.errors import client_error_message
from serving.app.launch import SCRIPT, streamlit_command, write_settings
from serving.app.pictures import UploadTooLarge, check_upload_size, draw_faces, upright
from serving.client import ClientError, EmoreviewClient
from tests.servers import free_port

FACE = {"emotion": "happy", "confidence": 0.9, "box": {"x": 10, "y": 20, "width": 30, "height": 40}}


def test_a_photo_over_the_servers_limit_is_refused_with_its_size_and_the_limit() -> None:
    check_upload_size(b"x" * (1024 * 1024), max_request_mb=1)
    with pytest.raises(UploadTooLarge, match=r"1\.5 MB: the server accepts photos of at most 1 MB"):
        check_upload_size(b"x" * (1024 * 1024 * 3 // 2), max_request_mb=1)


def test_face_boxes_are_drawn_where_the_server_found_them_and_only_there() -> None:
    image = Image.new("RGB", (100, 100), "black")
    drawn = np.asarray(draw_faces(image, [{**FACE, "face_detected": True}]))
    assert drawn[40, 10].any() and drawn[40, 40].any(), "left and right edges of the box"
    assert not drawn[40, 25].any(), "inside the box stays as it was"
    assert not drawn[90, 90].any() and not np.asarray(image).any()
    whole = draw_faces(image, [{**FACE, "face_detected": False}])
    assert not np.asarray(whole).any(), "no box when the whole image was classified"


def test_the_photo_is_shown_upright_per_its_exif_orientation() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    Image.new("RGB", (40, 20)).save(buffer, format="JPEG", exif=exif)
    assert upright(buffer.getvalue()).size == (20, 40)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ClientError("cannot reach"), "emotion endpoint is not answering at http://h:1: start it"),
        (ClientError("no key", 400, problem="no_token"), "No inference token at /k.json"),
        (ClientError("400 from emotion: x", 400, problem="token_refused"), "emoreview serve token"),
        (ClientError("400 from emotion: not an image", 400), "refused this request: not an image"),
        (ClientError("500 from emotion: internal", 500), "failed (500): internal"),
    ],
)
def test_each_failure_has_a_sentence_that_says_what_to_do(error, expected) -> None:
    assert expected in client_error_message(error, "emotion", "http://h:1", "/k.json")


def test_a_closed_port_reads_as_unreachable_even_without_a_key_file(tmp_path: Path) -> None:
    client = EmoreviewClient(f"http://127.0.0.1:{free_port()}", tmp_path / "missing.json", 5)
    with pytest.raises(ClientError) as raised:
        client.sentiment(["fine"])
    assert raised.value.problem == "unreachable"


def test_the_cli_hands_its_resolved_settings_to_the_script(tmp_path: Path, monkeypatch) -> None:
    settings = Settings.from_dict({"workspace": str(tmp_path / "ws"), "app": {"port": 8999}})
    path = write_settings(settings)
    assert Settings.model_validate_json(path.read_text()).app.port == 8999
    command = streamlit_command(settings, path)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8999"
    assert command[-2:] == ["--settings", str(path)] and str(SCRIPT) in command
    assert command[command.index("--runner.postScriptGC") + 1] == "false"
    assert settings_file(["--settings", str(path)]) == path
    monkeypatch.setenv(SETTINGS_ENV, "/elsewhere.json")
    assert settings_file([]) == Path("/elsewhere.json")


def test_the_app_process_never_imports_torch() -> None:
    """The app is a light client of the endpoints: no model library in its process (and a
    smaller heap for Python's collector to walk between answers)."""
    script = (
        "import sys, streamlit, serving.app.tabs, serving.app.models_view, serving.app.context;"
        "print(sorted(m for m in ('torch', 'transformers', 'mlflow', 'faiss') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stdout


def test_bars_are_largest_first_scaled_and_escaped() -> None:
    from streamlit.testing.v1 import AppTest

    def page() -> None:
        from serving.app.answer_view import bar_chart

        bar_chart([("b", 0.2), ("<a>", 0.5), ("c", 0.3)], "bars", highlight="<a>", full=1.0)

    test = AppTest.from_function(page).run()
    html = test.markdown[0].value
    assert html.index("&lt;a&gt;") < html.index(">c<") < html.index(">b<")
    assert "<a>" not in html and "width:50.0%;background:#ff4b4b" in html
    assert "width:20.0%;background:#9ea7b3" in html


@pytest.fixture
def app_test(tmp_path: Path, monkeypatch):
    """The real script under AppTest, its endpoint URL a loopback port nobody listens on."""
    from streamlit.testing.v1 import AppTest

    settings = Settings.from_dict(
        {"workspace": str(tmp_path / "ws"), "serving": {"url": f"http://127.0.0.1:{free_port()}"}}
    )
    monkeypatch.setenv(SETTINGS_ENV, str(write_settings(settings)))
    test = AppTest.from_file(str(SCRIPT), default_timeout=60)
    test.run()
    assert not test.exception, test.exception
    return test


def _by_key(elements, key: str):
    return next(element for element in elements if element.key == key)


def test_an_empty_question_is_refused_and_an_unreachable_endpoint_is_explained(app_test) -> None:
    ask = next(button for button in app_test.button if button.label == "Ask")
    ask.click().run()
    assert any("Type a question first" in error.value for error in app_test.error)
    _by_key(app_test.text_input, "ask-question").input("why are customers angry?")
    next(button for button in app_test.button if button.label == "Ask").click().run()
    assert not app_test.exception
    messages = " ".join(error.value for error in app_test.error)
    assert "reviews endpoint is not answering" in messages and "emoreview serve start" in messages


def test_empty_texts_are_refused_in_the_sentiment_tab(app_test) -> None:
    score = next(button for button in app_test.button if button.label == "Score")
    score.click().run()
    assert any("Paste at least one text" in error.value for error in app_test.error)


def test_the_models_tab_reads_the_registry_only_when_open(app_test) -> None:
    assert not any("has no versions yet" in info.value for info in app_test.info)
    app_test.session_state["tab"] = "Models"
    app_test.run()
    assert any("has no versions yet" in info.value for info in app_test.info)
    assert json.dumps([error.value for error in app_test.error]) == "[]"
