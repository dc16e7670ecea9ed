"""Balanced key-range splits from a column's distribution (Postgres statistics or a sample).

A distribution is a sorted list of representative keys with row weights: each most-common value with
its own rows, each histogram bucket ``[b_i, b_i+1)`` as its lower bound with the bucket's rows (or each
sampled key with equal weight). Cut points are chosen among the representative keys, so a histogram
bucket is never split and a partition's estimate is off by at most one bucket (1/100 of the non-MCV
rows with Postgres' default statistics target). One key's rows can never be split by a range: a
single heavier key bounds how even the partitions can be.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from .keys import Key

__all__ = ["Distribution", "allocate", "cut_points"]


@dataclass(frozen=True)
class Distribution:
    """Representative keys (sorted, distinct) and the estimated rows at or after each up to the next."""

    keys: tuple[Key, ...]
    weights: tuple[float, ...]
    #: Where it came from: "pg_stats", "sample" or "none" (no estimate: split evenly is impossible).
    source: str

    @property
    def rows(self) -> float:
        return sum(self.weights)

    @classmethod
    def from_points(cls, points: Sequence[tuple[Key, float]], source: str) -> Distribution:
        merged: dict[Key, float] = {}
        for key, weight in points:
            merged[key] = merged.get(key, 0.0) + weight
        keys = tuple(sorted(merged))
        return cls(keys, tuple(merged[k] for k in keys), source)

    def clip(self, low: Key, high: Key | None) -> Distribution:
        """The part in ``[low, high)``; a bucket that starts below ``low`` is moved to ``low``."""
        start = bisect.bisect_right(self.keys, low)
        points: list[tuple[Key, float]] = []
        if start > 0:
            # The bucket starting at keys[start-1] <= low reaches into the range (its end is unknown).
            points.append((low, self.weights[start - 1]))
        for key, weight in zip(self.keys[start:], self.weights[start:], strict=True):
            if high is not None and not key < high:  # type: ignore[operator]
                break
            points.append((key, weight))
        return Distribution.from_points(points, self.source)


def cut_points(dist: Distribution, low: Key, high: Key | None, parts: int) -> list[Key]:
    """Up to ``parts - 1`` increasing keys strictly inside ``(low, high)`` splitting ``dist`` evenly.

    Greedy on the cumulative weight: the j-th cut is the representative key whose rows-below is
    nearest ``j / parts`` of the total. Fewer cuts come back when there are not enough distinct keys.
    """
    if parts <= 1 or not dist.keys:
        return []
    total = dist.rows
    below: list[float] = []  # rows strictly below keys[i]
    running = 0.0
    for weight in dist.weights:
        below.append(running)
        running += weight
    cuts: list[Key] = []
    for j in range(1, parts):
        target = total * j / parts
        i = bisect.bisect_left(below, target)
        candidates = [c for c in (i - 1, i) if 0 <= c < len(below)]
        best = min(candidates, key=lambda c: abs(below[c] - target))
        key = dist.keys[best]
        if not low < key:  # type: ignore[operator]
            continue
        if high is not None and not key < high:  # type: ignore[operator]
            continue
        if cuts and not cuts[-1] < key:  # type: ignore[operator]
            continue
        cuts.append(key)
    return cuts


def allocate(estimates: Sequence[float], total: int) -> list[int]:
    """Split ``total`` partitions over ranges (at least 1 each) so the largest partition is smallest.

    Greedy, like a highest-averages apportionment: each next partition goes to the range whose rows
    per partition is currently largest. Proportional shares with rounding can leave a range with one
    partition of 1.7x the mean; this cannot do worse than any other whole-number split.
    """
    n = len(estimates)
    counts = [1] * n
    heap = [(-max(e, 0.0), i) for i, e in enumerate(estimates)]
    heapq.heapify(heap)
    for _ in range(max(total - n, 0)):
        _, i = heapq.heappop(heap)
        counts[i] += 1
        heapq.heappush(heap, (-max(estimates[i], 0.0) / counts[i], i))
    return counts
