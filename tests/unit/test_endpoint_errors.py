"""Which failures a served endpoint answers as the user's mistake (4xx) and which as its
own (500, generic message, traceback logged)."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from components.emotions import UnknownEmotionError
from components.settings import Settings
from serving.client import worker_died
from serving.service import INTERNAL_ERROR, EndpointService


class RaisingPipeline:
    """Stands in for the analysis pipeline only to raise the given error from ``from_text``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def from_text(self, query: str, emotion: str | None = None, k: int | None = None):
        raise self.error


def _ask(error: Exception):
    service = EndpointService(
        "reviews", Settings.from_dict({}), {}, pipeline=RaisingPipeline(error)
    )
    return service.handle([json.dumps({"query": "why?"}).encode()])[0]


def test_an_unknown_emotion_is_the_users_mistake() -> None:
    response = _ask(UnknownEmotionError("unknown emotion 'grumpy'"))
    assert response.status == 400 and "grumpy" in response.body["error"]


@pytest.mark.parametrize("error", [ValueError("shapes (3,) and (4,) not aligned"), KeyError("x")])
def test_a_bug_is_a_500_with_a_generic_message_and_a_logged_traceback(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="serving.service"):
        response = _ask(error)
    assert response.status == 500 and response.body == {"error": INTERNAL_ERROR, "code": 500}
    assert "not aligned" not in json.dumps(response.body)
    assert caplog.records and caplog.records[-1].exc_info is not None


def test_any_error_of_the_family_is_a_4xx_with_its_own_status() -> None:
    from components.errors import EmoreviewError
    from components.index.store import IndexNotFoundError
    from components.vision.faces import ImageInputError

    class Gone(EmoreviewError):
        http_status = 410

    assert _ask(IndexNotFoundError("no index under /x")).status == 400
    assert _ask(Gone("that version went")).body == {"error": "that version went", "code": 410}
    too_large = _ask(ImageInputError("too_large", "the image is over 25 MP"))
    assert too_large.status == 413 and "too_large" in too_large.body["error"]


def test_an_error_of_the_family_that_is_not_the_users_is_a_500() -> None:
    from components.errors import EmoreviewError

    class Internal(EmoreviewError):
        user_error = False

    assert _ask(Internal("the stored answers disagree")).status == 500


def test_a_bad_faces_header_is_refused_for_its_request_only() -> None:
    from serving.service import all_faces_flag

    service = EndpointService("emotion", Settings.from_dict({}), {})
    (response,) = service.handle([b"\x89PNG"], ["every"])
    assert response.status == 400 and "X-Emoreview-Faces" in response.body["error"]
    assert [all_faces_flag(v) for v in (None, "all", b"ALL", " largest")] == [
        None, True, True, False,
    ]  # fmt: skip


def _http(status: int, body: dict) -> requests.Response:
    response = requests.Response()
    response.status_code, response._content = status, json.dumps(body).encode()
    return response


def test_the_client_asks_again_after_torchserves_500_worker_died_but_not_after_a_bug() -> None:
    # TorchServe's body for the requests inside a worker that died before it read the exit
    # code (seen in CI: a SIGKILLed worker's batch answered 500 instead of 507).
    dead_worker = {"code": 500, "type": "InternalServerException", "message": "Worker died."}
    assert worker_died(_http(500, dead_worker))
    assert not worker_died(_http(500, _ask(ValueError("a bug")).body))  # the handler's own
    assert not worker_died(_http(507, dead_worker))  # the session's Retry handles the 507
    assert not worker_died(_http(200, {"message": "Worker died."}))
