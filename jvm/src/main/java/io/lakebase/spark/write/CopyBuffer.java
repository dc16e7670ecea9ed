package io.lakebase.spark.write;

/** A growable byte buffer; the writer flushes it to the COPY stream whenever it passes a threshold. */
public final class CopyBuffer {
    byte[] bytes;
    int length;

    CopyBuffer(int capacity) {
        bytes = new byte[capacity];
    }

    void reset() {
        length = 0;
    }

    void ensure(int extra) {
        if (length + extra > bytes.length) {
            bytes = java.util.Arrays.copyOf(bytes, Math.max(bytes.length * 2, length + extra));
        }
    }

    void put(byte b) {
        ensure(1);
        bytes[length++] = b;
    }

    void put(byte[] b) {
        ensure(b.length);
        System.arraycopy(b, 0, bytes, length, b.length);
        length += b.length;
    }

    /** ASCII only (numbers, keywords): one byte per char. */
    void putAscii(String s) {
        int n = s.length();
        ensure(n);
        for (int k = 0; k < n; k++) {
            bytes[length++] = (byte) s.charAt(k);
        }
    }

    void putLong(long v) {
        if (v >= 0 && v < 10) {
            put((byte) ('0' + v));
        } else {
            putAscii(Long.toString(v));
        }
    }

    /** Bytes with COPY text's escapes: backslash, newline, carriage return and tab. */
    void putEscaped(byte[] src, int from, int to) {
        ensure(to - from);
        for (int k = from; k < to; k++) {
            byte b = src[k];
            byte escaped;
            switch (b) {
                case '\\': escaped = '\\'; break;
                case '\n': escaped = 'n'; break;
                case '\r': escaped = 'r'; break;
                case '\t': escaped = 't'; break;
                default:
                    if (length == bytes.length) {
                        ensure(1 + to - k);
                    }
                    bytes[length++] = b;
                    continue;
            }
            ensure(2 + to - k);
            bytes[length++] = '\\';
            bytes[length++] = escaped;
        }
    }
}
