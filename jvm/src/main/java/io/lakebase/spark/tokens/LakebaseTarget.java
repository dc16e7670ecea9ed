package io.lakebase.spark.tokens;

import java.io.UnsupportedEncodingException;
import java.net.URLEncoder;

/** The Lakebase database a token is for: an Autoscaling endpoint or a Provisioned instance. */
public final class LakebaseTarget {

    /** Which Lakebase API the name belongs to; the lower-case name is the broker's query parameter. */
    public enum Kind {
        ENDPOINT("endpoint"),
        INSTANCE("instance");

        final String param;

        Kind(String param) {
            this.param = param;
        }
    }

    final Kind kind;
    final String name;

    public LakebaseTarget(Kind kind, String name) {
        this.kind = kind;
        this.name = name;
    }

    /** The broker's query string for this target, e.g. {@code endpoint=projects%2Fp%2F...}. */
    String brokerQuery() {
        try {
            return kind.param + "=" + URLEncoder.encode(name, "UTF-8");
        } catch (UnsupportedEncodingException e) {
            throw new AssertionError("UTF-8 is always supported", e);
        }
    }

    /** The broker's JSON form of this target: {@code {"endpoint": name}} or {@code {"instance": name}}. */
    public java.util.Map<String, String> fields() {
        return java.util.Collections.singletonMap(kind.param, name);
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof LakebaseTarget)) {
            return false;
        }
        LakebaseTarget other = (LakebaseTarget) o;
        return kind == other.kind && name.equals(other.name);
    }

    @Override
    public int hashCode() {
        return 31 * kind.hashCode() + name.hashCode();
    }

    @Override
    public String toString() {
        return kind.param + " " + name;
    }
}
