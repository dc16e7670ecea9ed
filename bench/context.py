"""What every case gets: the running world, the sizes, the tables and the read-job runner."""

from __future__ import annotations

from dataclasses import dataclass

from .config import BenchConfig
from .data import Dataset
from .env import BenchEnv
from .readjob import ReadJobs

__all__ = ["Context"]


@dataclass
class Context:
    env: BenchEnv
    cfg: BenchConfig
    data: Dataset
    jobs: ReadJobs
