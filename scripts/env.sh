# Sourced by scripts/demo and scripts/test: installs what a fresh machine lacks, then the package.
# Java (to build and run the provider), PostgreSQL server binaries (the emulator) and a Postgres
# JDBC driver come from the system's packages; Python packages go into a virtualenv ($VENV).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "missing system packages: $*; install them (Debian/Ubuntu: apt-get install $*)" >&2
    exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v javac >/dev/null || apt_install openjdk-17-jdk-headless
if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt_install postgresql
fi
if [ "${LAKEBASE_SPARK_JUNIT:-}" = 1 ] && [ ! -f /usr/share/java/junit4.jar ]; then
  apt_install junit4  # the JVM unit tests (jvm/test.sh); not needed to run the package
fi
if [ -z "${LAKEBASE_SPARK_JDBC_DRIVER_JAR:-}" ] && [ ! -f /usr/share/java/postgresql.jar ]; then
  apt_install libpostgresql-jdbc-java
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)

WHEELS="$ROOT/build/wheel"

# Build the wheel against the venv's own pyspark (no isolated build env with a second copy).
install_package() {  # $1: extras, e.g. "dev"
  "${PIP[@]}" hatchling "pyspark>=3.5"
  "${PIP[@]}" --no-build-isolation "$ROOT[$1]"
  # The package itself is rebuilt every time, so the jar always matches jvm/; the wheel stays in
  # build/wheel, so a second venv (Spark 3.5) can install the very same jar.
  rm -rf "$WHEELS"
  "$VENV/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-build-isolation --no-deps \
    -w "$WHEELS" "$ROOT"
  "${PIP[@]}" --no-deps --force-reinstall "$WHEELS"/lakebase_spark-*.whl
}

# A second venv with pyspark 3.5 (built from its sdist: it needs wheel and setuptools) and the wheel
# install_package built, for the end-to-end Spark tests on the oldest Spark we support.
VENV35="${VENV35:-$ROOT/.venv-spark35}"
SPARK35="pyspark>=3.5,<3.6"
install_spark35() {
  [ -x "$VENV35/bin/python" ] || "$PYTHON" -m venv "$VENV35"
  local pip35=("$VENV35/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip35[@]}" wheel setuptools
  "${pip35[@]}" "$SPARK35" "databricks-sdk>=0.79" "cryptography>=41" "psycopg[binary]>=3.1" pyyaml \
    "pytest>=8" "chispa>=0.10"
  "${pip35[@]}" --no-deps --force-reinstall "$WHEELS"/lakebase_spark-*.whl
}
