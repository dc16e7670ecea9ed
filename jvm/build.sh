#!/usr/bin/env bash
# Dev convenience: compile the provider and package build/jvm/lakebase-spark-provider.jar (classes + META-INF/services).
# The packaged build (the Python hatch hook) must use the same javac flags and a classpath that gives no [path]
# warnings (see below); keep the two in step.
#
#   SPARK_JARS=/path/to/pyspark/jars jvm/build.sh
#
# SPARK_JARS defaults to the jars of the pyspark importable by python3 (any of 3.5 / 4.x: the API is the same).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${SPARK_JARS:-}" ]]; then
  SPARK_JARS="$(python3 -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
fi
[[ -d "$SPARK_JARS" ]] || { echo "build.sh: no Spark jars at $SPARK_JARS (set SPARK_JARS)" >&2; exit 1; }

out="$root/build/jvm"
classes="$out/classes"
rm -rf "$classes"
mkdir -p "$classes"

# Only the jars the provider links against: spark-sql (JdbcConnectionProvider, DriverWrapper), scala-library
# (Map, Option, Tuple2) and Jackson. The whole jars/* directory would also drag in derby's manifest Class-Path
# entries, which javac reports as [path] warnings (fatal under -Werror).
classpath=""
for pattern in 'spark-sql_*.jar' 'spark-common-utils_*.jar' 'scala-library-*.jar' 'jackson-databind-*.jar' 'jackson-core-*.jar' \
               'jackson-annotations-*.jar'; do
  match=( "$SPARK_JARS"/$pattern )
  [[ -e "${match[0]}" ]] || { echo "build.sh: no $pattern in $SPARK_JARS" >&2; exit 1; }
  classpath="${classpath:+$classpath:}${match[0]}"
done

find "$root/jvm/src/main/java" -name '*.java' | sort >"$out/sources.txt"
javac --release 8 -Xlint:all -Werror -encoding UTF-8 -cp "$classpath" -d "$classes" @"$out/sources.txt"

cp -R "$root/META-INF" "$classes/"
jar --create --file "$out/lakebase-spark-provider.jar" -C "$classes" .
echo "$out/lakebase-spark-provider.jar"
