"""What every tab of the app gets: the settings (built once, from the file `emoreview app`
wrote) and the served endpoints' client; and the one way a tab calls an endpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import streamlit as st

from components.settings import Settings
from serving.app.errors import client_error_message
from serving.client import ClientError, EmoreviewClient

SETTINGS_ENV = "EMOREVIEW_APP_SETTINGS_FILE"  # for runs without a command line (AppTest)
T = TypeVar("T")


def settings_file(argv: Sequence[str]) -> Path | None:
    """``--settings FILE`` after Streamlit's ``--``, else the environment's file."""
    arguments = list(argv)
    if "--settings" in arguments:
        position = arguments.index("--settings")
        if position + 1 < len(arguments):
            return Path(arguments[position + 1])
    value = os.environ.get(SETTINGS_ENV)
    return Path(value) if value else None


def load_settings(argv: Sequence[str]) -> Settings:
    """The settings `emoreview app` resolved (a JSON dump), or the defaults."""
    path = settings_file(argv)
    if path is None:
        return Settings.load()
    return Settings.from_dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class AppContext:
    settings: Settings
    client: EmoreviewClient

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        client = EmoreviewClient.from_settings(settings, timeout=settings.app.timeout_s)
        return cls(settings, client)

    def call(self, endpoint: str, request: Callable[[], T]) -> T | None:
        """Run one endpoint request; on failure show why (never a traceback) and give None."""
        try:
            with st.spinner(f"Asking the {endpoint} endpoint…"):
                return request()
        except ClientError as error:
            st.error(
                client_error_message(error, endpoint, self.client.url, str(self.client.key_file)),
                icon="⚠️",
            )
            return None
