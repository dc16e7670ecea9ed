"""What the change-stream tests share (here and in the jobs that run them on local-cluster and on a Connect
server): a writer that moves money between accounts (the total never changes) and adds and removes
accounts, and a sink that replays a stream's batches onto a dict, checking the total at every batch."""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from ..conftest import DATABASE, ENDPOINT
from ..jobs import HERE

ACCOUNTS = 300
TOTAL = ACCOUNTS * 1000


def make_accounts(conninfo: str, table: str, role: str, accounts: int = ACCOUNTS) -> None:
    """``accounts`` accounts of 1,000 each (the total: ``accounts * 1000``)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET ROLE "{role}"')
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, bal bigint NOT NULL, note text)")
        conn.execute(f"INSERT INTO {table} SELECT g, 1000, 'a' || g FROM generate_series(1, {accounts}) g")


class Mover(threading.Thread):
    """Transactions that keep the total: a transfer between two accounts; an account opened (balance 0);
    an account emptied into another and closed; a transfer that also renames. Until stopped."""

    def __init__(self, conninfo: str, table: str, seed: int = 7) -> None:
        super().__init__(daemon=True)
        self.conninfo, self.table = conninfo, table
        self.stopping = threading.Event()
        self.transactions = 0
        self.error: BaseException | None = None
        self.rng = random.Random(seed)
        self.next_id = ACCOUNTS

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._move()
            except psycopg.OperationalError:  # the server restarted: its transaction rolled back whole
                self.stopping.wait(0.2)
            except BaseException as e:  # seen by the test
                self.error = e
                return

    def _move(self) -> None:
        t = self.table
        with psycopg.connect(self.conninfo, autocommit=True) as conn:  # each transaction its own
            while not self.stopping.is_set():
                ids = [r[0] for r in conn.execute(f"SELECT id FROM {t} ORDER BY random() LIMIT 2")]
                with conn.transaction():
                    kind = self.rng.random()
                    if kind < 0.1:
                        self.next_id += 1  # before the insert: a crash may leave a gap, never a repeat
                        conn.execute(f"INSERT INTO {t} VALUES (%s, 0, 'new')", (self.next_id,))
                    elif kind < 0.2 and len(ids) == 2:
                        emptied = f"(SELECT bal FROM {t} WHERE id = %s)"
                        conn.execute(f"UPDATE {t} SET bal = bal + {emptied} WHERE id = %s", (ids[0], ids[1]))
                        conn.execute(f"DELETE FROM {t} WHERE id = %s", (ids[0],))
                    elif len(ids) == 2:
                        amount = self.rng.randint(1, 50)
                        conn.execute(f"UPDATE {t} SET bal = bal - %s WHERE id = %s", (amount, ids[0]))
                        conn.execute(
                            f"UPDATE {t} SET bal = bal + %s, note = %s WHERE id = %s",
                            (amount, f"t{self.transactions}", ids[1]),
                        )
                self.transactions += 1
                self.stopping.wait(0.003)  # a few hundred transactions a second


class Replay:
    """A foreachBatch sink: applies each batch's changes, in order, to ``rows`` (id -> (bal, note));
    a batch Spark delivers again must be the same, and is applied once."""

    def __init__(self) -> None:
        #: A batch to fail right after applying it, before Spark records it done (a crash there).
        self.fail_after: int | None = None
        self.rows: dict[int, tuple[int, str | None]] = {}
        self.delivered: dict[int, list[tuple[Any, ...]]] = {}
        self.totals: list[int] = []
        self.replays: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Any, batch_id: int) -> None:
        rows = [tuple(r) for r in batch.select("id", "bal", "note", "_change_type", "_lsn").collect()]
        with self.lock:
            if batch_id in self.delivered:
                same = sorted(map(repr, rows)) == sorted(map(repr, self.delivered[batch_id]))
                assert same, f"batch {batch_id} changed on replay"
                self.replays.append(batch_id)
                return
            self.delivered[batch_id] = rows
            # by commit LSN; the sort is stable, so a transaction's rows keep their order
            for key, bal, note, change, _ in sorted(rows, key=lambda r: r[4]):
                if change in ("insert", "update_postimage"):
                    self.rows[key] = (bal, note)
                elif change in ("delete", "update_preimage"):
                    self.rows.pop(key, None)
            self.totals.append(sum(bal for bal, _ in self.rows.values()))
            if batch_id == self.fail_after:
                self.fail_after = None
                raise RuntimeError(f"injected: the sink applied batch {batch_id}, then the query stopped")


def table_rows(conninfo: str, table: str) -> dict[int, tuple[int, str | None]]:
    with psycopg.connect(conninfo) as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(f"SELECT id, bal, note FROM {table}")}


def run_stream(
    spark: Any, options: dict[str, str], table: str, slot: str | None, checkpoint: str,
    sink: Callable[..., None],
    *, available_now: bool = False, until: Callable[[], bool] | None = None, fails: str | None = None,
    **extra: str,
) -> Any:  # fmt: skip
    """Run the change stream of ``table`` into ``sink`` until caught up (AvailableNow), or until ``until()``
    (checked between batches; two minutes at most); a query that failed fails the test with its error,
    unless it says ``fails``."""
    import time

    reader = spark.readStream.format("lakebase").options(**options).option("dbtable", table)
    if slot is not None:  # None: mode=xmin in ``extra``
        reader = reader.option("slotName", slot)
    df = reader.options(**extra).load()
    writer = df.writeStream.foreachBatch(sink).option("checkpointLocation", checkpoint)
    if available_now:
        query = writer.trigger(availableNow=True).start()
        with contextlib.suppress(Exception):  # the query's exception() says it, checked below
            query.awaitTermination(300)
    else:
        query = writer.trigger(processingTime="500 milliseconds").start()
        deadline = time.monotonic() + 120
        while until is not None and not until() and time.monotonic() < deadline and query.isActive:
            time.sleep(0.2)
        query.stop()
    error = str(query.exception()) if query.exception() is not None else None
    assert (error is None) if fails is None else (fails in str(error)), (error or "no error")[:3000]
    return query


def change_job(
    emulator, workdir: Path, how: str, where: str, table: str, slot: str, action: str, *,
    must_pass: bool = True, during: Callable[[subprocess.Popen[str]], None] | None = None,
) -> int:  # fmt: skip
    """Run jobs/change_job.py (``during(job)`` meanwhile); its exit code (-9: killed as asked). A run that
    should finish must."""
    workdir.mkdir(exist_ok=True)
    env = dict(os.environ, LAKEBASE_TEST_PAT=emulator.pat, PYSPARK_PYTHON=sys.executable)
    args = [how, where, emulator.host, ENDPOINT, DATABASE, str(workdir), table, slot, action]
    job = subprocess.Popen(
        [sys.executable, str(HERE / "change_job.py"), *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if during is not None:
            during(job)
        stdout, stderr = job.communicate(timeout=900)
    finally:
        job.kill()
    if action.startswith("kill"):
        assert job.returncode == -9, stderr[-3000:]
    elif must_pass:
        assert job.returncode == 0, stderr[-3000:]
        result = json.loads(stdout.strip().splitlines()[-1])
        assert result["error"] is None, result["error"]
    return job.returncode


def check_log(conninfo: str, table: str, total: int = TOTAL) -> dict[str, Any]:
    """Replay the sink's log in order; every change once, the total at every batch, the table at the end."""
    with psycopg.connect(conninfo) as conn:
        log = conn.execute(
            f"SELECT _batch, _lsn, _seq, _xid, id, bal, note, _change_type FROM {table}_log "
            "ORDER BY _batch, _lsn, _seq"
        ).fetchall()
    changes = [(lsn, xid, key, bal, note, kind) for batch, lsn, _, xid, key, bal, note, kind in log if xid]
    assert len(changes) == len(set(changes)), "a change was delivered twice"
    rows: dict[int, tuple[int, str | None]] = {}
    totals, batch = [], None
    for number, _, _, _, key, bal, note, kind in log:
        if batch is not None and number != batch:
            totals.append(sum(b for b, _ in rows.values()))
        batch = number
        if kind in ("insert", "update_postimage"):
            rows[key] = (bal, note)
        else:
            rows.pop(key, None)
    totals.append(sum(b for b, _ in rows.values()))
    assert set(totals) == {total}, totals
    assert rows == table_rows(conninfo, table)
    return {"batches": len(totals), "changes": len(changes)}


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
