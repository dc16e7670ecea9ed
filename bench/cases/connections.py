"""Case 2: connection overhead of the ``lakebase`` provider against Spark's ``basic`` provider."""

from __future__ import annotations

import functools
from typing import Any

from ..context import Context
from ..env import say
from ..measure import ratios, stat, timed
from ..results import CaseResult, Comparison, Goal


def scala_options(jvm: Any, options: dict[str, str]) -> Any:
    """The case-insensitive option map Spark hands a provider (``JDBCOptions(...).parameters()``)."""
    java_map = jvm.java.util.HashMap()
    for key, value in {**options, "dbtable": "public.orders"}.items():
        java_map.put(key, value)
    scala_map = jvm.org.apache.spark.api.python.PythonUtils.toScalaMap(java_map)
    return jvm.org.apache.spark.sql.execution.datasources.jdbc.JDBCOptions(scala_map).parameters()


def _uses_tls(provider: Any, driver: Any, options: Any) -> bool:
    conn = provider.getConnection(driver, options)
    try:
        stmt = conn.createStatement()
        rs = stmt.executeQuery("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return bool(rs.next() and rs.getBoolean(1))
    finally:
        conn.close()


def run(ctx: Context) -> CaseResult:
    env, n = ctx.env, ctx.cfg.connections
    jvm: Any = env.spark.sparkContext._jvm
    driver = jvm.org.postgresql.Driver()
    sides = {
        "basic": (
            jvm.org.apache.spark.sql.execution.datasources.jdbc.connection.BasicConnectionProvider(),
            scala_options(jvm, env.basic_options()),
        ),
        "ours": (jvm.io.lakebase.spark.LakebaseConnectionProvider(), scala_options(jvm, env.options())),
    }
    for name, (provider, options) in sides.items():
        if not _uses_tls(provider, driver, options):
            raise RuntimeError(f"the {name} side logged in without TLS: the comparison would be unfair")

    def connect(name: str) -> None:
        provider, options = sides[name]
        conn = provider.getConnection(driver, options)
        stmt = conn.createStatement()
        stmt.execute("SELECT 1")
        stmt.close()
        conn.close()

    def measure_round(round_no: int) -> dict[str, float]:
        """n connections per side, alternating side with every connection: ms per connection."""
        total = dict.fromkeys(sides, 0.0)
        names = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        for i in range(n):
            for name in names if i % 2 == 0 else reversed(names):
                total[name] += timed(functools.partial(connect, name))
        return {name: seconds / n * 1000 for name, seconds in total.items()}

    for round_no in range(ctx.cfg.warmup):
        measure_round(round_no)
    rounds = [measure_round(r) for r in range(ctx.cfg.repeats)]
    times = {name: [r[name] for r in rounds] for name in sides}
    ratio = stat(ratios(times["ours"], times["basic"]), "x")
    say(f"  ms per connection: basic {sorted(times['basic'])}, ours {sorted(times['ours'])}")
    goal = Goal("<=", 1.10)
    notes = []
    if not goal.met(ratio.median):
        notes.append(
            f"Goal {goal} {goal.shortfall(ratio.median)}. Both sides log in to the same server over the "
            "same TLS with the same driver properties; the only extra work of ours per connection is an "
            "option parse and an in-memory token-cache lookup. A miss here means the noise of the run "
            "exceeded the difference: see the spread, and rerun on a quieter machine."
        )
    return CaseResult(
        key="connections",
        title="Connection overhead",
        method=[
            f"Wall time to open a connection, run `SELECT 1` and close it, {n} times per side and round, "
            "on the driver JVM through py4j, calling the provider the way Spark does: "
            "`provider.getConnection(org.postgresql.Driver(), JDBCOptions(options).parameters())`.",
            "**Ours**: `io.lakebase.spark.LakebaseConnectionProvider` with `lakebase_options` (a token "
            "from the JVM's cache per connection). **Baseline**: Spark's `BasicConnectionProvider` with "
            "the same options minus the `lakebase.*` keys and `connectionProvider`, plus a static password "
            "(a token minted once). Same server, same driver, same TLS (`sslmode=require`; checked with "
            "`pg_stat_ssl` on each side). Every login is a full Postgres login: TLS handshake, backend "
            "start, token check.",
            "The py4j round trips (getConnection, createStatement, execute, close, close) are the same "
            "on both sides. The sides alternate with every connection (A B B A A B ...), each timed on "
            "its own, so a slow second of the machine hits both; a round is the mean of its "
            f"{n} connections per side, in milliseconds; the ratio is taken per round.",
        ],
        comparisons=[
            Comparison(
                label="ms per connection (open, SELECT 1, close)",
                baseline_label="`basic` provider, static password",
                baseline=stat(times["basic"], "ms"),
                ours_label="`lakebase` provider",
                ours=stat(times["ours"], "ms"),
                ratio=ratio,
                ratio_meaning="our time ÷ basic's (lower is better)",
                goal=goal,
            )
        ],
        notes=notes,
    )
