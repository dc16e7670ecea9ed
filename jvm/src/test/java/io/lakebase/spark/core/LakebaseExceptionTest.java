package io.lakebase.spark.core;

import org.junit.Test;
import static org.junit.Assert.assertEquals;

/** Each kind of provider error reports a condition of its own, under both Spark versions' names. */
public class LakebaseExceptionTest {

    @SuppressWarnings("deprecation")
    public static void assertCondition(String expected, LakebaseException.Condition error) {
        assertEquals(expected, error.getCondition());
        assertEquals(expected, error.getErrorClass());
    }

    @Test
    public void everyKindHasItsOwnCondition() {
        assertCondition("LAKEBASE_INVALID_OPTION", new LakebaseException.Options("bad"));
        assertCondition("LAKEBASE_WORKSPACE_REFUSED", new LakebaseException.Refused("refused", null));
        assertCondition("LAKEBASE_CONNECTION", new LakebaseException.Sql("login", "28P01"));
        assertCondition("LAKEBASE_SNAPSHOT_LOST", new LakebaseException.SnapshotLost("gone", "22023", 0, null));
    }

    @Test
    public void sqlStatesAreKept() {
        assertEquals("22023", new LakebaseException.Options("bad").getSqlState());
        assertEquals("08004", new LakebaseException.Refused("refused", null).getSqlState());
        assertEquals("28P01", new LakebaseException.Sql("login", "28P01").getSqlState());
    }
}
