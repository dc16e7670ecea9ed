"""Sizes and repeat counts of one benchmark run, derived from ``--rows``, ``--quick`` and ``--smoke``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_ROWS", "BenchConfig"]

#: The orders table's rows by default: big enough that a read takes seconds (so a login or a plan
#: is noise next to it), small enough that the whole run, rounds repeated, stays near 12 minutes
#: on 2 cores.
DEFAULT_ROWS = 3_000_000


@dataclass(frozen=True)
class BenchConfig:
    rows: int = DEFAULT_ROWS
    quick: bool = False
    #: One round of everything, no warm-up (implies ``quick``): proves every case runs and reports, as
    #: the test suite's smoke test does; its figures are not measurements.
    smoke: bool = False
    out: Path = Path("bench")
    #: Measured rounds per comparison (after ``warmup`` dropped rounds). A read's wall time varies by
    #: ±15-20% from one round to the next on a shared 2-core machine: medians need several rounds.
    repeats: int = 7
    warmup: int = 1
    #: Spark partitions of the plain reads (cases 3 and 6): one id range each.
    read_partitions: int = 4
    #: Timed reads in each separate Spark process (cases 3 and 6), after a short warm-up read.
    child_repeats: int = 3

    def __post_init__(self) -> None:
        if self.rows < 1_000:
            raise ValueError(f"--rows must be at least 1000, got {self.rows}")
        if self.repeats < 3 and not self.smoke:
            raise ValueError(f"--repeats must be at least 3 (a median needs them), got {self.repeats}")

    @property
    def skewed_rows(self) -> int:
        """Rows of the skewed, sharded table (cases 1 and 4)."""
        return max(self.rows // 2, 1_000)

    @property
    def write_rows(self) -> int:
        """Rows written per run in case 5 (writes are several times slower than reads)."""
        return max(self.rows // 6, 1_000)

    @property
    def connections(self) -> int:
        """Connections opened per measurement in case 2."""
        return 50 if self.quick else 200

    @property
    def scaling_rows(self) -> list[int]:
        """Row counts of the scaling sweep: ``rows``, a quarter, a sixteenth (not with ``quick``)."""
        shifts = (2, 0) if self.quick else (4, 2, 0)
        return [self.rows >> s for s in shifts]

    @property
    def scaling_partitions(self) -> list[int]:
        return [1, self.read_partitions] if self.quick else [1, 2, self.read_partitions, 8]
