"""The jar-free reader's read-ahead: batches in order, an error where it happened, a consumer that
stops early stops the thread (before the reader closes its connection)."""

from __future__ import annotations

import threading
import time

import pytest

from lakebase_spark.datasource.reader import read_ahead


def test_batches_come_in_order_and_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def batches():
        for i in range(50):
            produced.append(i)
            yield i

    got = []
    for item in read_ahead(batches(), 2):
        time.sleep(0.001)
        assert len(produced) - len(got) <= 2 + 2  # the queue, the one in hand, the one being put
        got.append(item)
    assert got == list(range(50))


def test_an_error_is_raised_after_the_batches_before_it() -> None:
    def batches():
        yield 1
        yield 2
        raise ValueError("the server went away")

    reader = read_ahead(batches(), 2)
    assert [next(reader), next(reader)] == [1, 2]
    with pytest.raises(ValueError, match="went away"):
        next(reader)


def test_stopping_early_stops_the_thread() -> None:
    def endless():
        i = 0
        while True:
            i += 1
            yield i

    reader = read_ahead(endless(), 2)
    assert next(reader) == 1
    reader.close()
    assert not [t for t in threading.enumerate() if t.name == "lakebase-read-ahead"]


def test_depth_zero_reads_in_lock_step() -> None:
    assert list(read_ahead(iter([1, 2, 3]), 0)) == [1, 2, 3]
