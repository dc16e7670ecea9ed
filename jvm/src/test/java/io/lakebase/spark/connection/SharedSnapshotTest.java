package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import java.sql.SQLException;
import org.junit.Test;
import static io.lakebase.spark.core.LakebaseExceptionTest.assertCondition;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

/** A snapshot that cannot be imported fails with its own condition, naming the snapshot, keeping the SQLSTATE. */
public class SharedSnapshotTest {

    @Test
    public void aLostSnapshotSaysWhichAndKeepsTheSqlState() {
        SQLException lost = SharedSnapshot.lost(new SQLException("invalid snapshot identifier", "22023"),
                LakebaseOptions.parse(java.util.Map.of(
                        "url", "jdbc:postgresql://db.example.com:5432/shop?sslmode=require", "user", "u",
                        LakebaseOptions.CONNECTION_PROVIDER, "lakebase",
                        LakebaseOptions.ENDPOINT, "projects/p/branches/b/endpoints/e",
                        LakebaseOptions.BROKER_URL, "http://127.0.0.1:1", LakebaseOptions.BROKER_SECRET, "s",
                        LakebaseOptions.SNAPSHOT, "00000003-00000002-1")));
        assertEquals("22023", lost.getSQLState());
        assertTrue(lost instanceof LakebaseException.SnapshotLost);
        assertCondition("LAKEBASE_SNAPSHOT_LOST", (LakebaseException.SnapshotLost) lost);
        assertTrue(lost.getMessage().contains("00000003-00000002-1"));
    }
}
