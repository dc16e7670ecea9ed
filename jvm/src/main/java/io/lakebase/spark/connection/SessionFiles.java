package io.lakebase.spark.connection;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import org.apache.spark.SparkFiles;

/**
 * Secrets a Spark Connect session ships as session files ({@code spark.addArtifacts(path, file=True)}) instead of
 * options: the Connect server logs some plans whole and unredacted, options included.
 *
 * <p>Spark puts a session's files in a directory of that session under the node's SparkFiles root (executors:
 * {@code <root>/<session uuid>/}; the driver fetches them there too), or in the root itself for the default session.
 * The name is unique (a random UUID), so the first match under the root and its sub-directories is the file.
 */
final class SessionFiles {

    /** What {@code _session_files.ship_secret} names its files: checked, so an option cannot name any other file. */
    static final String NAME_PATTERN = "lakebase-secret-[0-9a-f]{32}";

    private SessionFiles() {}

    /** The file's content, or null when this node has no such session file. */
    static String read(String name) {
        File root = new File(SparkFiles.getRootDirectory());
        File found = find(root, name);
        if (found == null) {
            return null;
        }
        try {
            return new String(Files.readAllBytes(found.toPath()), StandardCharsets.UTF_8).trim();
        } catch (IOException e) {
            return null;
        }
    }

    static File find(File root, String name) {
        File direct = new File(root, name);
        if (direct.isFile()) {
            return direct;
        }
        File[] sessions = root.listFiles(File::isDirectory);
        if (sessions != null) {
            for (File session : sessions) {
                File candidate = new File(session, name);
                if (candidate.isFile()) {
                    return candidate;
                }
            }
        }
        return null;
    }
}
