"""``python -m bench.profile``: where the Spark JVM's CPU goes when ``lakebase_spark.read`` reads the
orders table, per reader (the binary-COPY reader and the JDBC reader), on the pyspark this Python has.

Two measurements of the same reads, taken together:

- **Threads** (from ``/proc/<jvm>/task/*``): the JVM's CPU seconds per million rows by thread kind:
  Spark's task threads, the garbage collector, the JIT compilers, the rest.
- **Frames** (Java Flight Recorder, started and stopped on the running JVM with ``jcmd``): the task
  threads' execution samples, each counted under the first frame from the top of its stack that falls in
  a category (TLS, socket, pgjdbc, our decoder, Spark's JDBC getters, decimals, strings, Spark's
  columnar and generated code, ...). The task threads' CPU is split in those proportions.

Writes ``results.md`` and ``results.json`` into ``--out`` (default ``bench/profile``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["FRAME_CATEGORIES", "frame_split", "main", "thread_cpu"]

HERE = Path(__file__).resolve().parent
#: Reads of each reader before any is measured (the JIT compiles TLS, pgjdbc and Spark's code once).
WARMUP = 3

#: (category, frame prefixes): the first category any frame of a sample matches, from the top of the stack.
FRAME_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "TLS (decrypt, MAC, handshakes)",
        ("sun.security.ssl.", "com.sun.crypto.", "sun.security.provider.", "javax.crypto."),
    ),
    ("socket reads", ("sun.nio.ch.", "java.net.", "sun.nio.cs.StreamDecoder")),
    (
        "Spark's per-row timing (nanoTime)",
        ("java.lang.System.nanoTime", "jdk.internal.misc.VM.getNanoTimeAdjustment"),
    ),
    (
        "decimals (BigDecimal, Decimal)",
        ("java.math.", "org.apache.spark.sql.types.Decimal", "scala.math.BigDecimal"),
    ),
    (
        "strings (String, UTF8String)",
        (
            "java.lang.String",
            "java.lang.StringLatin1",
            "java.lang.StringCoding",
            "java.lang.StringUTF16",
            "org.apache.spark.unsafe.types.UTF8String",
            "sun.nio.cs.",
        ),
    ),
    (
        "dates and timestamps",
        (
            "java.util.Calendar",
            "java.util.GregorianCalendar",
            "sun.util.calendar.",
            "java.sql.Timestamp",
            "java.time.",
            "org.apache.spark.sql.catalyst.util.DateTimeUtils",
            "org.apache.spark.sql.catalyst.util.SparkDateTimeUtils",
            "org.apache.spark.sql.catalyst.util.RebaseDateTime",
        ),
    ),
    ("our COPY decoder", ("io.lakebase.spark.",)),
    ("pgjdbc (protocol, rows, getters)", ("org.postgresql.",)),
    ("Spark's JDBC getters", ("org.apache.spark.sql.execution.datasources.jdbc.",)),
    (
        "Spark's column vectors",
        ("org.apache.spark.sql.execution.vectorized.", "org.apache.spark.sql.vectorized."),
    ),
    ("Spark's generated code and rows", ("org.apache.spark.sql.catalyst.", "org.apache.spark.unsafe.")),
    (
        "memory (copies, allocation)",
        ("java.util.Arrays.copyOf", "jdk.internal.misc.Unsafe", "java.lang.System.arraycopy"),
    ),
)
#: Thread kinds by the start of their name (Linux keeps 15 characters of it).
THREAD_KINDS = (
    ("Spark's task threads", ("Executor task",)),
    ("garbage collector", ("GC Thread", "G1 ", "VM Thread", "VM Periodic")),
    ("JIT compilers", ("C1 CompilerThre", "C2 CompilerThre")),
)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a JVM's live threads, by kind (threads that ended are in ``other``: the
    process total minus the live threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        kind = next((k for k, prefixes in THREAD_KINDS if name.startswith(prefixes)), "other threads")
        out[kind] += seconds
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    total = (int(fields[11]) + int(fields[12])) / ticks
    out["other threads"] += max(0.0, total - sum(out.values()))
    return dict(out)


def frame_split(recording: Path) -> Counter[str]:
    """Execution samples of Spark's task threads in a JFR recording, counted by category."""
    jfr = shutil.which("jfr") or str(Path(os.environ.get("JAVA_HOME", "/usr")) / "bin" / "jfr")
    text = subprocess.run(  # noqa: S603 - our own argv
        [jfr, "print", "--events", "jdk.ExecutionSample", "--stack-depth", "64", str(recording)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts: Counter[str] = Counter()
    for event in text.split("jdk.ExecutionSample {")[1:]:
        thread = re.search(r'sampledThread = "([^"]*)"', event)
        if thread is None or not thread.group(1).startswith("Executor task"):
            continue
        frames = re.findall(r"^\s+([\w$.<>]+)\(", event, re.MULTILINE)
        counts[_category(frames)] += 1
    return counts


def _category(frames: list[str]) -> str:
    for frame in frames:
        for category, prefixes in FRAME_CATEGORIES:
            if frame.startswith(prefixes):
                return category
    return "other"


def _jcmd(pid: int, *args: str) -> None:
    jcmd = shutil.which("jcmd") or "jcmd"
    subprocess.run([jcmd, str(pid), *args], check=True, capture_output=True)  # noqa: S603


def profile(env: Any, rows: int, readers: list[str], rounds: int, partitions: int) -> dict[str, Any]:
    """Read the orders table ``rounds`` times per reader after a warm-up; measure threads and frames."""
    from lakebase_spark import read

    from .data import ORDERS
    from .env import DATABASE, ENDPOINT, say
    from .readjob import noop_write

    pid = int(env.spark.sparkContext._gateway.proc.pid)
    results: dict[str, Any] = {}

    def once(reader: str) -> float:
        df = read(
            env.spark, ORDERS, endpoint=ENDPOINT, database=DATABASE, key="id", partitions=partitions,
            broker=env.broker, reader=reader,
        )  # fmt: skip
        started = time.perf_counter()
        noop_write(df)
        return time.perf_counter() - started

    for _ in range(WARMUP):
        for reader in readers:  # every reader warms up before any is measured: the JIT's work is shared
            once(reader)
    threads: dict[str, Counter[str]] = {reader: Counter() for reader in readers}
    frames: dict[str, Counter[str]] = {reader: Counter() for reader in readers}
    walls: dict[str, list[float]] = {reader: [] for reader in readers}
    folder = Path(tempfile.mkdtemp())
    for round_ in range(rounds):  # interleaved, order alternating: what the JIT still does hits every reader
        for reader in readers if round_ % 2 == 0 else readers[::-1]:
            env.settle()
            recording = folder / f"{reader}-{round_}.jfr"
            _jcmd(pid, "JFR.start", "name=lakebase-profile", "settings=profile", f"filename={recording}")
            before = thread_cpu(pid)
            walls[reader].append(once(reader))
            after = thread_cpu(pid)
            _jcmd(pid, "JFR.stop", "name=lakebase-profile")
            threads[reader].update({k: after.get(k, 0.0) - before.get(k, 0.0) for k in after})
            frames[reader].update(frame_split(recording))
    for reader in readers:
        per_million = {k: v * 1e6 / (rows * rounds) for k, v in threads[reader].items()}
        total = sum(frames[reader].values()) or 1
        task_cpu = per_million.get("Spark's task threads", 0.0)
        results[reader] = {
            "wall_s_per_million": statistics.median(walls[reader]) * 1e6 / rows,
            "threads_cpu_s_per_million": per_million,
            "samples": dict(frames[reader]),
            "task_cpu_s_per_million_by_frame": {
                k: task_cpu * v / total for k, v in frames[reader].most_common()
            },
        }
        say(f"  {reader}: JVM {sum(per_million.values()):.2f} CPU s per million rows; {total} samples")
    return results


def render(payload: dict[str, Any]) -> str:
    lines = [
        "# Where the Spark JVM's CPU goes in a read",
        "",
        f"Generated by `{payload['command']}` on {payload['finished_at']}: pyspark {payload['pyspark']}, "
        f"{payload['rows']:,} rows of `public.orders` (bigint, bigint, numeric(12,2), text ~30 chars, "
        f"timestamptz) in {payload['partitions']} partitions into the `noop` sink, {payload['rounds']} reads "
        f"per reader, interleaved (order alternating), after {WARMUP} warm-up reads of every reader, "
        "local[2], TLS to the emulator's Postgres. "
        "CPU seconds per million "
        "rows of the Spark JVM (driver = executor): by thread from /proc, and the task threads' share split "
        "by the top-most categorised frame of Java Flight Recorder's execution samples (`settings=profile`, "
        "~20 ms per thread).",
        "",
    ]
    readers = list(payload["readers"])
    kinds = sorted({k for r in readers for k in payload["readers"][r]["threads_cpu_s_per_million"]})
    lines += ["| JVM threads | " + " | ".join(readers) + " |", "|---|" + "---|" * len(readers)]
    for kind in kinds:
        cells = [f"{payload['readers'][r]['threads_cpu_s_per_million'].get(kind, 0.0):.3f}" for r in readers]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    totals = [f"**{sum(payload['readers'][r]['threads_cpu_s_per_million'].values()):.3f}**" for r in readers]
    lines.append("| **all** | " + " | ".join(totals) + " |")
    walls = [f"{payload['readers'][r]['wall_s_per_million']:.3f}" for r in readers]
    lines += ["| wall seconds per million rows (median) | " + " | ".join(walls) + " |", ""]
    categories = [c for c, _ in FRAME_CATEGORIES] + ["other"]
    lines += ["| task threads, by frame | " + " | ".join(readers) + " |", "|---|" + "---|" * len(readers)]
    for category in categories:
        values = [
            payload["readers"][r]["task_cpu_s_per_million_by_frame"].get(category, 0.0) for r in readers
        ]
        if any(v >= 0.0005 for v in values):
            lines.append(f"| {category} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    samples = [str(sum(payload["readers"][r]["samples"].values())) for r in readers]
    lines += ["| (samples) | " + " | ".join(samples) + " |", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--readers", default="copy,jdbc")
    parser.add_argument("--out", type=Path, default=HERE / "profile")
    args = parser.parse_args(argv)
    import pyspark

    from .data import seed
    from .env import BenchEnv, say

    with BenchEnv.running() as env:
        say(f"generating {args.rows:,} rows")
        seed(env, args.rows, 1000)
        readers = profile(env, args.rows, args.readers.split(","), args.rounds, args.partitions)
    payload = {
        "command": " ".join(["python -m bench.profile", *(sys.argv[1:] if argv is None else argv)]),
        "finished_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "pyspark": pyspark.__version__,
        "rows": args.rows,
        "rounds": args.rounds,
        "partitions": args.partitions,
        "readers": readers,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = (
        "" if pyspark.__version__.startswith("4") else "-spark" + ".".join(pyspark.__version__.split(".")[:2])
    )
    (args.out / f"results{suffix}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (args.out / f"results{suffix}.md").write_text(render(payload) + "\n")
    say(f"wrote {args.out / f'results{suffix}.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
