"""A small ``requests`` client for the served endpoints; sends the inference token."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.errors import EmoreviewError

if TYPE_CHECKING:
    from components.settings import Settings


TOKEN_REFUSED = "Token Authorization failed"  # TorchServe's 400 for a wrong or expired key

ClientProblem = Literal["unreachable", "no_token", "token_refused", "rejected", "server"]


class ClientError(EmoreviewError, RuntimeError):
    """The server answered with an error, or could not be reached.

    ``problem`` says which, for surfaces that explain it to a person: ``unreachable`` (no
    answer at the URL), ``no_token`` (no key file), ``token_refused`` (wrong or expired
    key), ``rejected`` (a 4xx: the request itself was wrong) or ``server`` (a 5xx)."""

    def __init__(
        self, message: str, status: int | None = None, problem: ClientProblem | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem: ClientProblem = problem or (
            "unreachable" if status is None else "rejected" if status < 500 else "server"
        )


FACES_HEADER = "X-Emoreview-Faces"  # read by serving.handler
# Answers worth asking again: 503 (TorchServe's queue is full, or no worker is up yet) and
# "Worker died." (TorchServe's answer to the requests inside a worker that died; it
# restarts the worker). Every endpoint is a pure function of its request, so a retry is
# safe. TorchServe sends "Worker died." as 507 when it has already read the dead
# process's exit code 137 (SIGKILL), and as a plain 500 when it has not yet (a race; a CI
# run lost 5 requests to it): that 500 is told from a handler's own 500 by its message.
RETRIED_STATUSES = (503, 507)
WORKER_DIED = "Worker died."
BACKOFF_S = 0.5


def retrying_session(retries: int, backoff_s: float = BACKOFF_S) -> requests.Session:
    """A session that retries a 503 or 507 answer ``retries`` times, backing off
    ``backoff_s``, 2×, 4×… (or as long as ``Retry-After`` says); a refused connection or a
    timeout is never retried (a stopped server is reported at once)."""
    retry = Retry(
        total=retries,
        connect=0,
        read=0,
        status=retries,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=None,  # POST too: the endpoints are idempotent
        backoff_factor=backoff_s,
        raise_on_status=False,  # the last answer comes back as it is
    )
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def worker_died(response: requests.Response) -> bool:
    """Whether ``response`` is TorchServe's 500 "Worker died." (not a handler's own 500)."""
    if response.status_code != 500:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("message") == WORKER_DIED


def _faces_header(all_faces: bool | None) -> dict[str, str]:
    return {} if all_faces is None else {FACES_HEADER: "all" if all_faces else "largest"}


class EmoreviewClient:
    def __init__(
        self, url: str, key_file: Path | None = None, timeout: float = 120, retries: int = 2
    ) -> None:
        self.url = url.rstrip("/")
        self.key_file = key_file
        self.timeout = timeout
        self.retries = retries
        self.session = retrying_session(retries)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        url: str | None = None,
        key_file: Path | None = None,
        timeout: float | None = None,
    ) -> EmoreviewClient:
        """A client of the served endpoints at ``serving.url`` (default: host and inference
        port), with the token from ``app.key_file`` (default: the workspace's key file)."""
        serving = settings.serving
        target = url or serving.url or f"http://{serving.host}:{serving.inference_port}"
        keys = key_file or settings.app.key_file or settings.paths.serving_dir / "key_file.json"
        return cls(target, keys, timeout or serving.response_timeout_s, serving.client_retries)

    def _token(self) -> str | None:
        """The inference key from the key file; ``None`` when there is no key file."""
        if self.key_file is None or not self.key_file.is_file():
            return None
        return json.loads(self.key_file.read_text(encoding="utf-8"))["inference"]["key"]

    def _post(self, model: str, **kwargs: Any) -> dict[str, Any]:
        """POST to an endpoint. Without a key file the request still goes out (without a
        token), so a stopped server reads as ``unreachable`` and a running one as
        ``no_token``."""
        token = self._token()
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        headers = {**auth, **kwargs.pop("headers", {})}
        for attempt in range(self.retries + 1):
            try:
                response = self.session.post(
                    f"{self.url}/predictions/{model}",
                    headers=headers,
                    timeout=self.timeout,
                    **kwargs,
                )
            except requests.RequestException as error:
                raise ClientError(f"cannot reach {self.url}: {error}") from error
            if attempt == self.retries or not worker_died(response):
                break
            time.sleep(BACKOFF_S * 2**attempt)  # the 500 "Worker died." the session lets by
        if self.key_file is not None and token is None and response.status_code >= 400:
            raise ClientError(
                f"token file {self.key_file} not found: is the server running?",
                response.status_code,
                problem="no_token",
            )
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text.strip()}
        if response.status_code >= 400:
            message = body.get("error") or body.get("message") or response.text
            refused = response.status_code in (400, 401) and TOKEN_REFUSED in response.text
            raise ClientError(
                f"{response.status_code} from {model}: {message}",
                response.status_code,
                problem="token_refused" if refused else None,
            )
        return body

    def emotion(self, image: bytes, all_faces: bool | None = None) -> dict[str, Any]:
        """Every face's emotion (``all_faces``; ``None``: the server's setting decides)."""
        return self._post("emotion", data=image, headers=_faces_header(all_faces))

    def emotion_reviews(self, image: bytes, all_faces: bool | None = None) -> dict[str, Any]:
        """The answer for the largest face; with ``all_faces`` its ``faces`` lists them all."""
        return self._post("emotion_reviews", data=image, headers=_faces_header(all_faces))

    def reviews(
        self, query: str, emotion: str | None = None, k: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query}
        if emotion:
            body["emotion"] = emotion
        if k is not None:
            body["k"] = k
        return self._post("reviews", json=body)

    def sentiment(self, texts: list[str]) -> dict[str, Any]:
        return self._post("sentiment", json=texts)
