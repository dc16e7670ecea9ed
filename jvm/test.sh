#!/usr/bin/env bash
# JUnit tests of the provider's Java classes (jvm/src/test), against the jar the package build made.
# JUnit 4 comes from the system's packages (Debian: junit4); Spark's own jars are on the class path.
#
#   jvm/test.sh [path/to/python]     # default: the python of $VENV, else python3
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${1:-${VENV:-$root/.venv}/bin/python}"
[ -x "$python" ] || python=python3
junit=/usr/share/java/junit4.jar
hamcrest=/usr/share/java/hamcrest-core.jar
for jar in "$junit" "$hamcrest"; do
  [ -f "$jar" ] || { echo "missing $jar: install JUnit 4 (Debian: apt-get install junit4)" >&2; exit 1; }
done
read -r provider spark_jars < <("$python" - <<'PY'
import importlib.resources, pathlib, pyspark
jar = next(importlib.resources.files("lakebase_spark").joinpath("jars").iterdir())
print(jar, pathlib.Path(pyspark.__file__).parent / "jars")
PY
)
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
classpath="$provider:$spark_jars/*:$junit:$hamcrest"
mapfile -t sources < <(find "$root/jvm/src/test/java" -name '*Test.java' | sort)
javac -encoding UTF-8 -Xlint:all,-path,-processing -Werror -proc:none -cp "$classpath" -d "$out" "${sources[@]}"
classes=()
for source in "${sources[@]}"; do
  rel="${source#"$root/jvm/src/test/java/"}"
  classes+=("$(echo "${rel%.java}" | tr / .)")
done
# Spark opens this to its own code (JavaModuleOptions); the encoder calls Spark's date conversions, which need it.
exec java --add-opens=java.base/sun.util.calendar=ALL-UNNAMED -cp "$out:$classpath" org.junit.runner.JUnitCore \
  "${classes[@]}"
