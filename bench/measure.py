"""Measuring on a noisy machine: warm up, interleave the sides, repeat, report medians and spreads."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Stat",
    "cpu_split",
    "interleave",
    "metered",
    "peak_python_worker_mib",
    "peak_rss_kib",
    "process_cpu_seconds",
    "ratios",
    "stat",
    "timed",
]


@dataclass(frozen=True)
class Stat:
    """Repeated measurements of one quantity: the median is the figure, min and max its spread."""

    values: tuple[float, ...]
    unit: str

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def spread(self) -> float:
        """(max - min) / median: how much the repeats disagree."""
        return (self.high - self.low) / self.median if self.median else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "spread": round(self.spread, 4),
            "n": len(self.values),
            "unit": self.unit,
            "values": list(self.values),
        }


def stat(values: Sequence[float], unit: str) -> Stat:
    if not values:
        raise ValueError(f"no measurements of {unit!r} to summarise")
    return Stat(tuple(float(v) for v in values), unit)


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes (monotonic clock)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleave(
    sides: Mapping[str, Callable[[], float]], *, repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Run every side once per round and collect what each returns (usually seconds).

    ``warmup`` rounds run first and are dropped (JIT, caches, first connections). Then ``repeats``
    rounds, in alternating order (A B C, C B A, A B C, ...), so a drift of the machine during the
    run (another process, thermal throttling, a growing cache) hits every side alike and the per-round
    ratios (see :func:`ratios`) compare measurements taken seconds apart.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    names = list(sides)
    for _ in range(warmup):
        for name in names:
            sides[name]()
    out: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(repeats):
        for name in names if round_no % 2 == 0 else reversed(names):
            out[name].append(sides[name]())
    return out


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-round ratios of two sides measured in the same rounds."""
    if len(numerators) != len(denominators):
        raise ValueError("both sides must have the same number of rounds")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def peak_rss_kib(pid: int) -> int:
    """Peak resident set size (``VmHWM``) of a process, in KiB, from ``/proc/<pid>/status``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line (not Linux?)")


def _python_workers() -> list[Path]:
    """/proc entries of Spark's Python workers (forked from ``pyspark.daemon``, so they share its command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"pyspark.daemon" in (entry / "cmdline").read_bytes():
                    found.append(entry)
            except OSError:  # gone meanwhile
                continue
    return found


def peak_python_worker_mib(fn: Callable[[], object], *, every: float = 0.02) -> float:
    """The largest resident set (MiB) any Spark Python worker had while ``fn`` ran, sampled from /proc
    every ``every`` seconds (outside the workers: nothing in the measured code changes)."""
    import threading

    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for worker in _python_workers():
                try:
                    for line in (worker / "status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
                except (OSError, ValueError):
                    continue
            stop.wait(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        stop.set()
        sampler.join()
    return peak[0] / 1024


def process_cpu_seconds(pid: int, *, reaped: bool = True) -> float:
    """User + system CPU seconds of a process from ``/proc/<pid>/stat``; with ``reaped``, plus those of
    its children it has waited for (Postgres' backends end up in the postmaster's, as they exit)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 is fields[0]
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    ticks = utime + stime + (cutime + cstime if reaped else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_split(pids: Mapping[str, int]) -> Callable[[], dict[str, float]]:
    """A meter of CPU seconds by party: each named process (with its reaped children), ``clients``
    (this process's finished children: psql, say) and ``this process``. Read before and after; subtract."""
    import resource

    def read() -> dict[str, float]:
        out = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        out["clients"] = children.ru_utime + children.ru_stime
        own = resource.getrusage(resource.RUSAGE_SELF)
        out["this process"] = own.ru_utime + own.ru_stime
        return out

    return read


def metered(
    meter: Callable[[], dict[str, float]], log: list[dict[str, float]], side: Callable[[], float]
) -> Callable[[], float]:
    """``side`` (a timed run returning its seconds), also appending to ``log`` the wall time and the CPU
    seconds each party of ``meter`` (:func:`cpu_split`) spent in it."""

    def measured() -> float:
        before = meter()
        seconds = side()
        after = meter()
        log.append({"wall": seconds, **{k: after[k] - before[k] for k in after}})
        return seconds

    return measured
