"""DataFrame comparisons the tests share."""

from __future__ import annotations

from typing import Any

from chispa import assert_df_equality


def assert_same_rows(actual: Any, expected: Any, **options: bool) -> None:
    """Same schema (up to nullability and JDBC column metadata) and the same rows in any order;
    ``options`` go to chispa (e.g. ``allow_nan_equality=True``)."""
    assert_df_equality(
        actual, expected, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True, **options
    )
