"""What a case reports: comparisons (baseline, ours, ratio, goal), extra tables, and how it measured."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Literal

from .measure import Stat, ratios, stat

__all__ = ["CaseResult", "Comparison", "Goal", "Table", "versus"]


@dataclass(frozen=True)
class Goal:
    """A bound on a ratio, e.g. ``Goal("<=", 1.10)``."""

    op: Literal["<=", ">=", "=="]
    value: float

    def met(self, ratio: float) -> bool:
        compare = {"<=": operator.le, ">=": operator.ge, "==": operator.eq}[self.op]
        return bool(compare(ratio, self.value))

    def __str__(self) -> str:
        symbol = {"<=": "≤", ">=": "≥", "==": "="}[self.op]
        return f"{symbol} {self.value:g}"

    def shortfall(self, ratio: float) -> str:
        """How far ``ratio`` is from the bound, in words."""
        if self.met(ratio):
            return "met"
        return f"missed by {abs(ratio - self.value):.3g} ({abs(ratio / self.value - 1):.1%} of the goal)"


@dataclass(frozen=True)
class Comparison:
    """One side-by-side comparison; the ratio's median is the figure that counts."""

    label: str
    baseline_label: str
    baseline: Stat
    ours_label: str
    ours: Stat
    ratio: Stat
    ratio_meaning: str
    goal: Goal | None = None
    #: What the goal bounds: the ratio, or (for an absolute goal such as "one mint") our figure.
    goal_on: Literal["ratio", "ours"] = "ratio"

    @property
    def judged(self) -> float:
        """The figure the goal is checked against."""
        return self.ratio.median if self.goal_on == "ratio" else self.ours.median

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.goal.met(self.judged)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "baseline_label": self.baseline_label,
            "baseline": self.baseline.to_json(),
            "ours_label": self.ours_label,
            "ours": self.ours.to_json(),
            "ratio": self.ratio.to_json(),
            "ratio_meaning": self.ratio_meaning,
            "goal": None if self.goal is None else str(self.goal),
            "goal_on": self.goal_on,
            "met": self.met,
        }


@dataclass(frozen=True)
class Table:
    """Extra figures of a case, rendered as a Markdown table."""

    title: str
    headers: list[str]
    rows: list[list[Any]]

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "headers": self.headers, "rows": self.rows}


@dataclass
class CaseResult:
    key: str
    title: str
    #: What exactly was measured and how (Markdown paragraphs).
    method: list[str]
    comparisons: list[Comparison]
    tables: list[Table] = field(default_factory=list)
    #: Findings; for a missed goal: by how much, why, and what would close it.
    notes: list[str] = field(default_factory=list)
    #: Raw figures for plots (case 6), kept in results.json.
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: The machine's 1-minute load average when the case started and ended: context for its noise.
    load: tuple[float, float] = (0.0, 0.0)

    @property
    def headline(self) -> Comparison:
        return self.comparisons[0]

    def to_json(self) -> dict[str, Any]:
        head = self.headline
        if not math.isfinite(head.ratio.median):
            raise ValueError(f"case {self.key}: the headline ratio is not a number ({head.ratio.median})")
        return {
            "title": self.title,
            "baseline": {"label": head.baseline_label, **head.baseline.to_json()},
            "ours": {"label": head.ours_label, **head.ours.to_json()},
            "ratio": head.ratio.median,
            "ratio_meaning": head.ratio_meaning,
            "goal": None if head.goal is None else str(head.goal),
            "goal_on": head.goal_on,
            "met": head.met,
            "comparisons": [c.to_json() for c in self.comparisons],
            "tables": [t.to_json() for t in self.tables],
            "method": self.method,
            "notes": self.notes,
            "data": self.data,
            "seconds": round(self.seconds, 1),
            "load_avg_1min": list(self.load),
        }


def versus(
    values: dict[str, list[float]],
    ours: tuple[str, str],
    baseline: tuple[str, str],
    meaning: str,
    goal: Goal | None = None,
    unit: str = "rows/s",
) -> Comparison:
    """Side ``ours`` against side ``baseline`` (each ``(key in values, label)``), per-round ratios."""
    (mine, ours_label), (theirs, baseline_label) = ours, baseline
    return Comparison(
        label=unit,
        baseline_label=baseline_label,
        baseline=stat(values[theirs], unit),
        ours_label=ours_label,
        ours=stat(values[mine], unit),
        ratio=stat(ratios(values[mine], values[theirs]), "x"),
        ratio_meaning=meaning,
        goal=goal,
    )
