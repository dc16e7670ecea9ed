"""The pgoutput decoder against real server output (the emulator's Postgres, wal_level logical): every
message kind a change stream meets, old rows under both replica identities, unchanged TOAST values."""

from __future__ import annotations

import uuid

import pytest

from lakebase_spark.postgres import pgoutput as pg
from lakebase_spark.postgres.slots import peek

pytestmark = pytest.mark.postgres


@pytest.fixture
def slot(admin):
    """A fresh slot and publication over public.pgo_a and public.pgo_b, dropped afterwards."""
    name = f"pgo_{uuid.uuid4().hex[:8]}"
    admin.execute("DROP TABLE IF EXISTS public.pgo_a, public.pgo_b")
    admin.execute("CREATE TABLE public.pgo_a (id int PRIMARY KEY, n numeric(8,2), big text, tags text[])")
    admin.execute("CREATE TABLE public.pgo_b (id int, note text)")
    admin.execute("ALTER TABLE public.pgo_b REPLICA IDENTITY FULL")
    admin.execute(f"CREATE PUBLICATION {name} FOR TABLE public.pgo_a, public.pgo_b")
    admin.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
    yield name
    admin.execute("SELECT pg_drop_replication_slot(%s)", (name,))
    admin.execute(f"DROP PUBLICATION {name}")


def messages(admin, slot):
    admin.execute("SELECT pg_switch_wal()")  # flush what was written (the emulator commits asynchronously)
    return [pg.decode(data) for _, data in peek(admin, slot, slot, None, None)]


def test_every_message_kind_decodes_as_the_server_wrote_it(admin, slot) -> None:
    big = "".join(uuid.uuid4().hex for _ in range(400))  # 12,800 incompressible characters: TOASTed
    admin.execute("INSERT INTO public.pgo_a VALUES (1, 12.5, %s, ARRAY['x', NULL, 'y z'])", (big,))
    admin.execute("UPDATE public.pgo_a SET n = 13 WHERE id = 1")  # big unchanged: not sent
    admin.execute("UPDATE public.pgo_a SET id = 2 WHERE id = 1")  # the key changes: the old key is sent
    admin.execute("DELETE FROM public.pgo_a WHERE id = 2")
    admin.execute("INSERT INTO public.pgo_b VALUES (7, 'seven')")
    admin.execute("UPDATE public.pgo_b SET note = 'SEVEN'")  # REPLICA IDENTITY FULL: the whole old row
    admin.execute("DELETE FROM public.pgo_b")
    admin.execute("TRUNCATE public.pgo_a")
    got = messages(admin, slot)
    kinds = [type(m).__name__ for m in got]
    changes = [m for m in got if isinstance(m, pg.Insert | pg.Update | pg.Delete | pg.Truncate)]
    assert kinds.count("Begin") == kinds.count("Commit") == 8
    relations = {m.name: m for m in got if isinstance(m, pg.Relation)}
    a, b = relations["pgo_a"], relations["pgo_b"]
    assert [(c.name, c.type_oid, c.key) for c in a.columns] == [
        ("id", 23, True), ("n", 1700, False), ("big", 25, False), ("tags", 1009, False)
    ]  # fmt: skip
    assert a.columns[1].type_modifier == (8 << 16 | 2) + 4  # numeric(8,2)
    assert (a.replica_identity, b.replica_identity) == ("d", "f")
    insert, update, rekey, delete, b_insert, b_update, b_delete, truncate = changes
    assert insert == pg.Insert(a.oid, ("1", "12.50", big, '{x,NULL,"y z"}'))
    assert update == pg.Update(a.oid, ("1", "13.00", pg.UNCHANGED, '{x,NULL,"y z"}'), None, None)
    assert (rekey.old_kind, rekey.old) == ("K", ("1", None, None, None))
    assert rekey.new[:3] == ("2", "13.00", pg.UNCHANGED)
    assert delete == pg.Delete(a.oid, ("2", None, None, None), "K")
    assert b_insert == pg.Insert(b.oid, ("7", "seven"))
    assert b_update == pg.Update(b.oid, ("7", "SEVEN"), ("7", "seven"), "O")
    assert b_delete == pg.Delete(b.oid, ("7", "SEVEN"), "O")
    assert truncate == pg.Truncate((a.oid,), cascade=False, restart_identity=False)
    # Commit order and LSNs: each Begin's final LSN is its Commit's commit LSN; commits ascend.
    begins = [m for m in got if isinstance(m, pg.Begin)]
    commits = [m for m in got if isinstance(m, pg.Commit)]
    assert [b.final_lsn for b in begins] == [c.commit_lsn for c in commits]
    assert [c.commit_lsn for c in commits] == sorted(c.commit_lsn for c in commits)
    assert all(c.end_lsn > c.commit_lsn for c in commits)


def test_malformed_messages_are_refused_not_misread() -> None:
    with pytest.raises(pg.PgoutputError, match="unknown pgoutput message kind"):
        pg.decode(b"Z\x00")
    with pytest.raises(pg.PgoutputError, match="ends early"):
        pg.decode(b"B\x00\x00")
    with pytest.raises(pg.PgoutputError, match="left after"):
        pg.decode(b"O" + b"\x00" * 8 + b"name\x00extra")
    assert pg.lsn_text(pg.parse_lsn("16/B374D848")) == "16/B374D848"
    with pytest.raises(pg.PgoutputError, match="not an LSN"):
        pg.parse_lsn("16B374D848")
