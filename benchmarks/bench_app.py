"""The web app's cost over the raw endpoint, in one run: a real TorchServe serving the
workspace's champion and index, the real Streamlit app, Debian's Chromium driven by
Playwright. Upload -> rendered answer (the answer's versions footer laid out, on the
browser's clock) p50 over N uploads, next to the `emotion_reviews` endpoint's own p50 for
the same photo."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_serving import Caller, serving_settings
from benchmarks.harness import latency, measure
from benchmarks.workspace import BenchWorkspace
from components.processes import local_server
from components.settings import Settings
from serving.app.launch import app_url, streamlit_command, write_settings
from serving.deploy import deploy_champion
from serving.server import TorchServe
from tests.servers import free_port

BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


ANSWER = ".st-key-photo-face-0-versions"  # the answer's last part: its versions footer
WATCH_ANSWER = """selector => { window.emoreviewAnswered = new Promise(resolve => {
  const shown = () => {
    const element = document.querySelector(selector);
    return element !== null && element.getBoundingClientRect().height > 0;
  };
  new MutationObserver((_, observer) => {
    if (shown()) { observer.disconnect(); resolve(performance.now()); }
  }).observe(document.body, {subtree: true, childList: true, attributes: true});
}); }"""
"""Sets ``window.emoreviewAnswered``: a promise of the browser's clock when the element is
on the page and laid out (a Playwright wait polls at growing intervals, which would add up
to 500 ms of its own)."""


def browser_uploads(
    url: str, photo: Path, n: int, settled: bool = True, warmup: int = 2
) -> list[float]:
    """Seconds from choosing the file to the rendered answer, on the browser's clock, one
    fresh page (no cached scripts) per upload; the page load itself is not timed. With
    ``settled`` the file is chosen once the page has finished loading (no request for
    500 ms), as a person picking a file does; without, the moment the uploader is drawn."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("Debian's chromium is missing: `make browser` installs it")
    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        for i in range(warmup + n):
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_text("No photo yet").wait_for()
            if settled:
                page.wait_for_load_state("networkidle")
            page.evaluate(WATCH_ANSWER, ANSWER)
            chosen = page.evaluate("performance.now()")
            page.locator("input[type=file]").first.set_input_files(str(photo))
            shown = page.evaluate("window.emoreviewAnswered")
            if i >= warmup:
                samples.append((shown - chosen) / 1000)
            page.close()
        browser.close()
    return samples


def run(workspace: BenchWorkspace, smoke: bool, served: Settings | None = None) -> dict[str, Any]:
    """The app against ``served``, a TorchServe already serving the workspace's champion
    (`benchmarks.run` passes the serving benchmark's restarted one), or against a server of
    its own, started and stopped here."""
    n, warmup, endpoint_warmup = (2, 0, 1) if smoke else (20, 2, 3)
    settings = (served or serving_settings(workspace)).model_copy(deep=True)
    settings.app.port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="bench-app-"))
    photo = folder / "photo.jpg"
    photo.write_bytes(workspace.photo)
    server = TorchServe(settings)
    try:
        if served is None:
            deploy_champion(settings)
        caller = Caller(server)
        request = {"data": workspace.photo, "headers": {"Content-Type": "application/octet-stream"}}
        endpoint, _ = measure(
            lambda i: caller.post("emotion_reviews", **request), n, endpoint_warmup
        )
        command = streamlit_command(settings, write_settings(settings))
        url = app_url(settings)
        with local_server(command, f"{url}/_stcore/health", folder / "app.log"):
            app = latency(browser_uploads(url, photo, n, warmup=warmup))
            unsettled = latency(browser_uploads(url, photo, n, settled=False, warmup=warmup))
    finally:
        if served is None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "uploads": n,
        "endpoint_emotion_reviews_c1": endpoint.as_dict(),
        "app_upload_to_rendered_answer": app.as_dict(),
        "app_upload_as_the_page_appears": unsettled.as_dict(),
        "app_adds_p50_ms": app.p50_ms - endpoint.p50_ms,
    }


def summary(r: dict[str, Any]) -> str:
    """The app's line of the benchmark table."""
    return (
        f"Web app ({r['uploads']} uploads, Chromium): upload -> rendered answer p50 "
        f"{r['app_upload_to_rendered_answer']['p50_ms']:.0f} ms on a settled page "
        f"({r['app_upload_as_the_page_appears']['p50_ms']:.0f} ms when the file is chosen "
        "as the page appears, its loading still running); the `emotion_reviews` endpoint "
        f"alone {r['endpoint_emotion_reviews_c1']['p50_ms']:.0f} ms."
    )


if __name__ == "__main__":
    import json
    import os

    from benchmarks.workspace import prepare

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench-app-ws-") as scratch:
        small = prepare(Path(scratch), smoke=True, int8=False)
        print(json.dumps(run(small, smoke="--smoke" in sys.argv), indent=2))
