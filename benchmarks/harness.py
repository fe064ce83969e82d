"""Plain timers with warm-up and repetitions, percentiles, and a concurrent load driver."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    n: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(samples_s: list[float]) -> Latency:
    ms = [s * 1000 for s in samples_s]
    return Latency(
        n=len(ms),
        p50_ms=percentile(ms, 0.50),
        p95_ms=percentile(ms, 0.95),
        p99_ms=percentile(ms, 0.99),
        mean_ms=statistics.fmean(ms) if ms else float("nan"),
    )


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

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in range(concurrency):
            pool.submit(worker)
    elapsed = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": requests,
        "answers_per_s": (requests - len(errors)) / elapsed,
        "errors": len(errors),
        "latency": latency(samples).as_dict(),
    }
