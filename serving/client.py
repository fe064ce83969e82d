"""A small ``requests`` client for the served endpoints; sends the inference token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from components.errors import EmoreviewError


class ClientError(EmoreviewError, RuntimeError):
    """The server answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EmoreviewClient:
    def __init__(self, url: str, key_file: Path | None = None, timeout: float = 120) -> None:
        self.url = url.rstrip("/")
        self.key_file = key_file
        self.timeout = timeout
        self.session = requests.Session()

    def _headers(self) -> dict[str, str]:
        if self.key_file is None:
            return {}
        if not self.key_file.is_file():
            raise ClientError(f"token file {self.key_file} not found: is the server running?")
        key = json.loads(self.key_file.read_text(encoding="utf-8"))["inference"]["key"]
        return {"Authorization": f"Bearer {key}"}

    def _post(self, model: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.session.post(
                f"{self.url}/predictions/{model}",
                headers={**self._headers(), **kwargs.pop("headers", {})},
                timeout=self.timeout,
                **kwargs,
            )
        except requests.RequestException as error:
            raise ClientError(f"cannot reach {self.url}: {error}") from error
        try:
            body = response.json()
        except ValueError:
            body = {"error": response.text.strip()}
        if response.status_code >= 400:
            message = body.get("error") or body.get("message") or response.text
            raise ClientError(
                f"{response.status_code} from {model}: {message}", response.status_code
            )
        return body

    def emotion(self, image: bytes) -> dict[str, Any]:
        return self._post("emotion", data=image)

    def emotion_reviews(self, image: bytes) -> dict[str, Any]:
        return self._post("emotion_reviews", data=image)

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
