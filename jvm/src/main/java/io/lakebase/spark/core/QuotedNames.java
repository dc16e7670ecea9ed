package io.lakebase.spark.core;

import java.util.regex.Pattern;

/**
 * Names the Python side quoted (the reader's and the writer's table, column lists): checked to be nothing but
 * quoted identifiers before they go into SQL, so no option can smuggle SQL into a statement built from them.
 */
public final class QuotedNames {

    private static final String IDENT = "\"(?:[^\"\\x00]|\"\")+\"";
    /** {@code "schema"."table"} or {@code "table"}. */
    public static final Pattern QUALIFIED = Pattern.compile(IDENT + "(?:\\." + IDENT + ")?");
    /** {@code "a","b"}. */
    public static final Pattern COLUMN_LIST = Pattern.compile(IDENT + "(?:," + IDENT + ")*");

    private QuotedNames() {}
}
