"""Plain timers with warm-up and repetitions, percentiles, and a concurrent load driver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Latency:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def latency(samples_s: list[float]) -> Latency:
    if not samples_s:
        return Latency(0, *[float("nan")] * 4)
    ms = np.asarray(samples_s) * 1000
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])  # linear interpolation
    return Latency(len(ms), float(p50), float(p95), float(p99), float(ms.mean()))


def measure(call: Callable[[int], Any], repeat: int, warmup: int = 3) -> tuple[Latency, list[Any]]:
    """Sequential latency of ``call(i)`` after ``warmup`` untimed calls."""
    for i in range(warmup):
        call(-1 - i)
    samples, results = [], []
    for i in range(repeat):
        start = time.perf_counter()
        results.append(call(i))
        samples.append(time.perf_counter() - start)
    return latency(samples), results


def throughput(call: Callable[[int], Any], requests: int, concurrency: int) -> dict[str, Any]:
    """Answers per second with ``concurrency`` callers sharing ``requests`` calls."""
    counter = iter(range(requests))
    lock = threading.Lock()
    samples: list[float] = []
    errors: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            start = time.perf_counter()
            try:
                call(i)
            except Exception as error:  # counted, reported
                errors.append(repr(error))
            samples.append(time.perf_counter() - start)

    start, cpu_start = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    elapsed = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": requests,
        "answers_per_s": (requests - len(errors)) / elapsed,
        "errors": len(errors),
        # The load generator's own CPU (this process), in cores: on one machine it is
        # taken from the server it measures.
        "client_cores": (time.process_time() - cpu_start) / elapsed,
        "latency": latency(samples).as_dict(),
    }
