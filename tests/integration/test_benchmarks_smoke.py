"""Every benchmark script at tiny sizes, so they never rot (timings are not asserted:
benchmarks report ratios, `make bench` runs them in full)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_the_benchmark_suite_runs_at_tiny_sizes(tmp_path_factory: pytest.TempPathFactory) -> None:
    # A short folder: TorchServe's worker sockets go under <work>/.../serving/tmp only when
    # that path fits a Unix socket's (serving.server.SOCKET_PATH_MAX), else into /tmp.
    folder = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--smoke",
            "--out",
            str(folder / "out"),
            "--work",
            str(folder / "work"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (report,) = (folder / "out").glob("*-smoke.json")
    results = json.loads(report.read_text())
    for section in ("training", "index", "ivfpq", "chain", "serving", "app"):
        assert section in results, section
    assert {t["target"] for t in results["targets"]} >= {
        "photo -> answer p50 / classifier-only p50 (served, c=1)",
        "index build reviews/s / plain encode reviews/s",
    }
    serving = results["serving"]
    assert serving["emotion_c16"]["errors"] == 0 and serving["emotion_reviews_c8"]["errors"] == 0
    # The load generator (http.client) and the previous one (requests), on the same faces.
    for row in ("emotion_face48_c16", "emotion_face48_c16_requests"):
        assert serving[row]["errors"] == 0 and serving[row]["client_cores"] > 0, row
    assert serving["emotion_reviews_versions"]["model_version"] == "1"
    table = report.with_suffix(".md").read_text()
    assert "| target | measured | bar | met |" in table and "recall@10" in table
    (ivfpq,) = results["ivfpq"]["rows"]
    assert ivfpq["all"]["recall_at_10"] > 0.5 and "| ivfpq vectors |" in table
    int8 = results["classifier"]["modes"]["int8"]  # calibrated on validation faces
    assert int8["top1_agreement"] > 0.5 and "| int8 (" in table
    native = results["classifier"]["native_bf16"]  # bf16's speed depends on it: said beside
    kind = {True: "native", False: "emulated", None: "unknown"}[native]  # None: not x86
    assert f"this CPU's bf16: {kind})" in table
