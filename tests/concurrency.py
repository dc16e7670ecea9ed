"""Calls raced against each other from threads, for the tests of what must hold under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def run_together(target: Callable[[int], T], count: int, *, timeout: float = 300) -> list[T]:
    """``target(0) ... target(count - 1)``, each in a thread of its own, released together (a barrier) so
    they really race. Their results in order; the first one that raised raises here."""
    barrier = threading.Barrier(count)

    def call(index: int) -> T:
        barrier.wait(timeout)
        return target(index)

    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(call, index) for index in range(count)]
        return [future.result(timeout=timeout) for future in futures]
