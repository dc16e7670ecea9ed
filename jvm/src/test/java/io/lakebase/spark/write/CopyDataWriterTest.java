package io.lakebase.spark.write;

import org.junit.Test;
import static io.lakebase.spark.core.LakebaseExceptionTest.assertCondition;

/** A failed partition of a COPY write reports a condition of its own. */
public class CopyDataWriterTest {

    @Test
    public void aWriteFailureHasItsOwnCondition() {
        assertCondition("LAKEBASE_WRITE_FAILED", new CopyDataWriter.WriteFailure("copy", "57014", null));
    }
}
