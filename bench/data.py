"""The benchmark's tables, generated inside Postgres with generate_series (no rows cross the wire).

Every column is a deterministic function of the series number ``g`` (``hashint8`` stands in for
``random()``), so the sharded copy and the single-table copy of the skewed data hold the same rows,
and every run reads the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from lakebase_spark.sharding import RangeShardMap, Shard

from .env import DATABASE, ENDPOINT, SHARDS, BenchEnv, say

__all__ = ["ORDERS", "SKEWED", "TARGET", "Dataset", "describe_columns", "seed", "skewed_id"]

ORDERS = "public.orders"  # ids 1..rows, in the bench database
SKEWED = "public.orders_skewed"  # skewed ids: split over the shards, and all of them in the bench database
TARGET = "public.orders_target"  # empty copy of orders: case 5 writes here

_TABLE = """CREATE TABLE {table} (
    id bigint NOT NULL,
    customer bigint NOT NULL,
    amount numeric(12,2) NOT NULL,
    note text NOT NULL,
    ordered_at timestamptz NOT NULL
)"""

# customer: 1/u^1.2 for u uniform in (0, 1], capped: Zipf-like, customer 1 places ~44% of orders.
# note: 'order <g> <16 hex>' is ~30 characters. Numbers are literals: no placeholders to escape.
_ROWS = """INSERT INTO {table}
SELECT {id},
    least(floor(1 / power((hashint8(g)::float8 + 2147483649) / 4294967298, 1.2)), 1000000)::bigint,
    (mod(hashint8(g + 1000003)::bigint + 2147483648, 100000) / 100.0 + 1)::numeric(12,2),
    'order ' || g || ' ' || left(md5(g::text), 16),
    timestamptz '2025-01-01 00:00:00+00' + g * interval '7 seconds'
FROM generate_series({low}::bigint, {high}::bigint) AS g"""


def describe_columns() -> str:
    return (
        "`id bigint` primary key, `customer bigint` (⌊1/u^1.2⌋ capped at 10⁶ for u uniform in (0, 1]: "
        "Zipf-like, customer 1 places ~44% of the orders), `amount numeric(12,2)`, `note text` (~30 chars), "
        "`ordered_at timestamptz`"
    )


def skewed_id(g: int, n: int) -> int:
    """The skewed key of row ``g`` of ``n``: ``g + ⌊g³/n⌋``, dense at the low end.

    Half of the rows have keys below 1/8 of the largest key (g = n/2 gives ~n²/8 of ~n²).
    """
    return g + g**3 // n


def _skewed_id_sql(n: int) -> sql.Composable:
    # numeric: g³ overflows bigint from g ≈ 2.1M; div() truncates like Python's // for positives.
    return sql.SQL("g + div(g::numeric * g * g, {n})::bigint").format(n=sql.Literal(n))


@dataclass(frozen=True)
class Dataset:
    rows: int
    skewed_rows: int
    shard_map: RangeShardMap
    #: Smallest and largest skewed key: what a user gives Spark as lowerBound / upperBound.
    skewed_min: int
    skewed_max: int
    orders_bytes: int

    def shard_rows(self) -> dict[str, int]:
        n = self.skewed_rows
        cuts = _shard_cuts(n)
        return {name: cuts[i + 1] - cuts[i] for i, name in enumerate(SHARDS)}


def _shard_cuts(n: int) -> list[int]:
    """Series numbers where the shards start: a quarter, a quarter, half of the rows."""
    return [1, n // 4 + 1, n // 2 + 1, n + 1]


def _create(env: BenchEnv, database: str, table: str, id_sql: sql.Composable, low: int, high: int) -> None:
    ident = sql.Identifier(*table.split("."))
    with env.admin(database) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        conn.execute(sql.SQL(_TABLE).format(table=ident))
        conn.execute(
            sql.SQL(_ROWS).format(table=ident, id=id_sql, low=sql.Literal(low), high=sql.Literal(high))
        )
        conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(ident))
        # Sets hint bits and the visibility map now, so no timed read pays for them; and statistics.
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(ident))


def seed(env: BenchEnv, rows: int, skewed_rows: int) -> Dataset:
    """Create every table; return what the cases need to know about them."""
    _create(env, DATABASE, ORDERS, sql.SQL("g"), 1, rows)
    with env.admin() as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*TARGET.split("."))))
        target = sql.Identifier(*TARGET.split("."))
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
                target, sql.Identifier(*ORDERS.split("."))
            )
        )
        # Writes land here over and over: an autovacuum starting mid-run would time itself, not us.
        conn.execute(sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(target))
        size = conn.execute("SELECT pg_total_relation_size('public.orders')").fetchone()
    say(f"seeded {ORDERS}: {rows:,} rows")

    n = skewed_rows
    id_sql = _skewed_id_sql(n)
    _create(env, DATABASE, SKEWED, id_sql, 1, n)
    cuts = _shard_cuts(n)
    shard_map = RangeShardMap("orders_by_id", "bigint")
    for i, name in enumerate(SHARDS):
        shard_map.add_shard(Shard(name, endpoint=ENDPOINT, database=name))
        _create(env, name, SKEWED, id_sql, cuts[i], cuts[i + 1] - 1)
        low = 0 if i == 0 else skewed_id(cuts[i], n)
        high = None if i == len(SHARDS) - 1 else skewed_id(cuts[i + 1], n)
        shard_map.add_range(low, high, name)
    say(f"seeded {SKEWED}: {n:,} skewed rows in {DATABASE} and over {len(SHARDS)} shards")
    return Dataset(
        rows=rows,
        skewed_rows=n,
        shard_map=shard_map,
        skewed_min=skewed_id(1, n),
        skewed_max=skewed_id(n, n),
        orders_bytes=int(size[0]) if size else 0,
    )
