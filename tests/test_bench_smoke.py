"""The benchmark (``python -m bench``) runs end to end at a tiny size, so it cannot rot.

No thresholds on its ratios: at this size and on shared CI machines they are noise. What is checked
is that every case ran and reported numbers, and that no secret reached the outputs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from .jobs import run_python

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.lane2]

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    "credentials",
    "connections",
    "read",
    "balance",
    "write",
    "upsert",
    "scaling",
    "herd",
    "jarfree",
    "reads",
    "changes",
    "copyread",
    "sqlinsert",
]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_the_benchmark_runs_quick_and_reports_every_case(tmp_path: Path) -> None:
    # bench/ lives in the repository, next to tests/
    done = run_python(
        "-m", "bench", "--rows", "20000", "--smoke", "--out", str(tmp_path), cwd=ROOT, timeout=900
    )

    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["cases"]) == CASES
    for key, case in results["cases"].items():
        assert is_number(case["ratio"]), (key, case["ratio"])
        assert is_number(case["baseline"]["median"]), key
        assert is_number(case["ours"]["median"]), key
        for comparison in case["comparisons"]:
            assert is_number(comparison["ratio"]["median"]), (key, comparison["label"])
        assert case["method"], key  # each case says what it measured and how
    assert results["cases"]["credentials"]["ours"]["median"] == 1  # deterministic: one mint per job
    assert results["settings"]["quick"] is True
    assert results["settings"]["smoke"] is True
    assert results["machine"]["cores"] >= 1
    assert {"python", "pyspark", "java", "postgres", "lakebase-spark"} <= results["versions"].keys()

    markdown = (tmp_path / "results.md").read_text()
    assert all(f"## {i}. " in markdown for i in range(1, len(CASES) + 1))
    assert (tmp_path / "scaling.png").read_bytes().startswith(b"\x89PNG")

    everything = markdown + json.dumps(results) + done.stdout + done.stderr
    assert "lbtok_" not in everything  # no database token printed or written
