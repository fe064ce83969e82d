"""A served worker imports only what its endpoint uses, and loads on one torch thread: every
import is paid again by each worker of each start and reload, all at once (cold start,
README "Round two")."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

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


def test_a_worker_loads_on_one_torch_thread_and_answers_on_all(tmp_path, monkeypatch) -> None:
    """TorchServe starts every endpoint's worker at once: each loads on one thread."""
    import torch

    from serving.handler import EmoreviewHandler
    from serving.service import EndpointService

    loaded_on = []

    def load(endpoint: str, bundle, settings):
        loaded_on.append(torch.get_num_threads())
        return SimpleNamespace(endpoint=endpoint, versions={})

    monkeypatch.setattr(EndpointService, "load", staticmethod(load))
    (tmp_path / "settings.json").write_text("{}")
    context = SimpleNamespace(
        system_properties={"model_dir": str(tmp_path)},
        model_yaml_config={"emoreview": {"endpoint": "sentiment"}},
        model_name="sentiment",
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        EmoreviewHandler().initialize(context)
        assert loaded_on == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
