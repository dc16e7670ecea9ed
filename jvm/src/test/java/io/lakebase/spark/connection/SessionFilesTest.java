package io.lakebase.spark.connection;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

/** A shipped secret is found in the SparkFiles root or in a session's directory under it, and nowhere else. */
public class SessionFilesTest {

    @Rule
    public TemporaryFolder root = new TemporaryFolder();

    private static final String NAME = "lakebase-secret-0123456789abcdef0123456789abcdef";

    @Test
    public void foundInTheRootOrInASessionDirectory() throws IOException {
        assertNull(SessionFiles.find(root.getRoot(), NAME));
        File session = root.newFolder("5f0b9c3e-session-uuid");
        root.newFolder("another-session");
        File file = new File(session, NAME);
        Files.write(file.toPath(), "s3cret".getBytes(StandardCharsets.UTF_8));
        assertEquals(file, SessionFiles.find(root.getRoot(), NAME));
        File direct = new File(root.getRoot(), NAME);
        Files.write(direct.toPath(), "other".getBytes(StandardCharsets.UTF_8));
        assertEquals(direct, SessionFiles.find(root.getRoot(), NAME));
    }

    @Test
    public void onlyShippedNamesAreAccepted() {
        assertTrue(NAME.matches(SessionFiles.NAME_PATTERN));
        assertFalse("../../etc/passwd".matches(SessionFiles.NAME_PATTERN));
        assertFalse("lakebase-secret-xyz".matches(SessionFiles.NAME_PATTERN));
    }
}
