"""A served worker imports only what its endpoint uses: every import is paid again by each
worker of each start and reload (cold start, README "Round two")."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
from serving.service import EndpointService  # what every worker imports
import components.nlp.sentiment  # the sentiment endpoint
sentiment = sorted(m for m in ("pandas", "torchvision", "langchain_core") if m in sys.modules)
import components.vision.predict  # the emotion endpoint
emotion = sorted(m for m in ("pandas", "langchain_core") if m in sys.modules)
print(json.dumps({"sentiment": sentiment, "emotion": emotion}))
"""


def test_the_emotion_and_sentiment_workers_import_no_table_or_chain_library() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    imported = json.loads(result.stdout.splitlines()[-1])
    assert imported == {"sentiment": [], "emotion": []}
