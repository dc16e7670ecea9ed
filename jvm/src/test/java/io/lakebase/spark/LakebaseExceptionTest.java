package io.lakebase.spark;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.sql.SQLException;
import org.junit.Test;

/** Each kind of provider error reports a condition of its own, under both Spark versions' names. */
public class LakebaseExceptionTest {

    @SuppressWarnings("deprecation")
    private static void assertCondition(String expected, LakebaseException.Condition error) {
        assertEquals(expected, error.getCondition());
        assertEquals(expected, error.getErrorClass());
    }

    @Test
    public void everyKindHasItsOwnCondition() {
        assertCondition("LAKEBASE_INVALID_OPTION", new LakebaseException.Options("bad"));
        assertCondition("LAKEBASE_WORKSPACE_REFUSED", new LakebaseException.Refused("refused", null));
        assertCondition("LAKEBASE_CONNECTION", new LakebaseException.Sql("login", "28P01"));
        assertCondition("LAKEBASE_SNAPSHOT_LOST", new LakebaseException.SnapshotLost("gone", "22023", 0, null));
        assertCondition("LAKEBASE_WRITE_FAILED", new CopyDataWriter.WriteFailure("copy", "57014", null));
    }

    @Test
    public void sqlStatesAreKept() {
        assertEquals("22023", new LakebaseException.Options("bad").getSqlState());
        assertEquals("08004", new LakebaseException.Refused("refused", null).getSqlState());
        assertEquals("28P01", new LakebaseException.Sql("login", "28P01").getSqlState());
        SQLException lost = SharedSnapshot.lost(new SQLException("invalid snapshot identifier", "22023"),
                LakebaseOptions.parse(java.util.Map.of(
                        "url", "jdbc:postgresql://db.example.com:5432/shop?sslmode=require", "user", "u",
                        LakebaseOptions.CONNECTION_PROVIDER, "lakebase",
                        LakebaseOptions.ENDPOINT, "projects/p/branches/b/endpoints/e",
                        LakebaseOptions.BROKER_URL, "http://127.0.0.1:1", LakebaseOptions.BROKER_SECRET, "s",
                        LakebaseOptions.SNAPSHOT, "00000003-00000002-1")));
        assertEquals("22023", lost.getSQLState());
        assertTrue(lost instanceof LakebaseException.SnapshotLost);
        assertTrue(lost.getMessage().contains("00000003-00000002-1"));
    }
}
