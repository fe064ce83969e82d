"""The TorchServe handler: adapts TorchServe's batches to :mod:`serving.service`.

No business logic lives here. ``initialize`` builds the settings once from the archive's
``settings.json`` (the archive folder is the workspace) and loads the endpoint named in
the archive's model-config.yaml (``emoreview: {endpoint: ...}``), on one torch thread.
TorchServe's own ``BaseHandler.handle`` runs each batch (so its ``HandlerTime`` metric
reaches the Prometheus output): ``preprocess`` takes the request bodies, ``inference``
answers them, and ``postprocess`` sets each response's HTTP status.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from ts.torch_handler.base_handler import BaseHandler

if TYPE_CHECKING:
    from serving.service import Response

log = logging.getLogger(__name__)
FACES_HEADER = "X-Emoreview-Faces"  # "all" or "largest"; the client sends it (serving.client)


def request_header(context: Any, index: int, name: str) -> str | None:
    """Request ``index``'s header ``name``, whatever its case on the wire."""
    properties = context.request_processor[index].get_request_properties() or {}
    wanted = name.lower()
    for key, value in properties.items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    return None


class EmoreviewHandler(BaseHandler):
    def __init__(self) -> None:
        super().__init__()
        self.service: Any = None

    def initialize(self, context: Any) -> None:
        from components.settings import Settings
        from serving.service import EndpointService

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the model log is a file
        bundle = Path(context.system_properties["model_dir"])
        data = json.loads((bundle / "settings.json").read_text(encoding="utf-8"))
        data["workspace"] = str(bundle)
        settings = Settings.from_dict(data)
        endpoint = (context.model_yaml_config or {}).get("emoreview", {}).get("endpoint")
        # TorchServe starts every endpoint's worker at once; loading on one torch thread
        # each, their OpenMP threads do not spin-wait for cores the other workers are
        # loading on (cold start 10.9 -> 10.1 s on 2 cores, README "Round two"). Answers
        # use every thread again.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self.service = EndpointService.load(endpoint or context.model_name, bundle, settings)
        finally:
            torch.set_num_threads(threads)
        self.initialized = True
        log.info("emoreview endpoint %s ready: %s", self.service.endpoint, self.service.versions)

    def preprocess(self, data: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
        """Each request's body, and its ``X-Emoreview-Faces`` header (TorchServe forwards a
        request's headers to the worker, but not its URL's query parameters)."""
        return [
            (
                row.get("data") if row.get("data") is not None else row.get("body"),
                request_header(self.context, index, FACES_HEADER),
            )
            for index, row in enumerate(data)
        ]

    def inference(self, data: list[tuple[Any, Any]], *args: Any, **kwargs: Any) -> list[Response]:
        return self.service.handle([body for body, _ in data], [faces for _, faces in data])

    def describe_handle(self) -> str:
        """``GET /models/<endpoint>/<version>?customized=true``: the versions this worker
        serves. It is queued like a prediction, so a reload uses it to know the worker has
        finished the batch it held (``serving.server.TorchServe._drain``)."""
        return json.dumps({"endpoint": self.service.endpoint, "versions": self.service.versions})

    def postprocess(self, data: list[Response]) -> list[Any]:
        for index, response in enumerate(data):
            self.context.set_response_status(code=response.status, phrase="", idx=index)
        return [response.body for response in data]
