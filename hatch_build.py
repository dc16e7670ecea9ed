"""Hatch build hook: compiles the JVM connection provider in ``jvm/`` into the jar the wheel ships.

The jar is compiled with ``javac --release 8`` against the jars inside the installed pyspark, so one
jar serves Spark 3.5 (Scala 2.12) and 4.x (Scala 2.13): the provider only touches APIs whose erased
signatures are the same in both. The jar is a build output and is never committed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

JAR_NAME = "lakebase-spark-provider.jar"
# -Xlint:-classfile: Spark 4's class files carry @Deprecated(since=...), which Java 8's annotation lacks;
# javac warns about the missing method when reading them under --release 8. Nothing in our code.
JAVAC_FLAGS = ["--release", "8", "-Xlint:all", "-Xlint:-classfile", "-Werror", "-encoding", "UTF-8"]


def spark_jars_dir() -> Path:
    """The ``jars/`` folder of pyspark in the build environment (or ``$SPARK_HOME/jars``)."""
    spark_home = os.environ.get("SPARK_HOME")
    candidates = [Path(spark_home) / "jars"] if spark_home else []
    try:
        import pyspark

        candidates.append(Path(pyspark.__file__).parent / "jars")
    except ImportError:
        pass
    for candidate in candidates:
        if any(candidate.glob("spark-sql_*.jar")):
            return candidate
    raise RuntimeError(
        "lakebase-spark build: no Spark jars found to compile the JVM provider against "
        f"(looked in {[str(c) for c in candidates] or 'nothing: pyspark is not installed'}). "
        "Install pyspark in the build environment or set SPARK_HOME."
    )


#: The only jars the provider links against: JdbcConnectionProvider and DriverWrapper (spark-sql), the
#: DataSource V2 write API and InternalRow (spark-catalyst), Spark's data types (spark-sql-api),
#: UTF8String (spark-unsafe, which needs kryo), TaskContext (spark-core), SparkThrowable (spark-common-utils),
#: Map/Option/Tuple2 (scala-library), Jackson and slf4j (logging into Spark's log4j). The whole
#: jars/ folder would also bring derby's manifest Class-Path entries, which javac reports as [path]
#: warnings (fatal under -Werror).
LINK_JARS = (
    "spark-sql_*.jar",
    "spark-catalyst_*.jar",
    "spark-sql-api_*.jar",
    "spark-unsafe_*.jar",
    "spark-core_*.jar",
    "kryo-shaded-*.jar",
    "spark-common-utils_*.jar",
    "scala-library-*.jar",
    "jackson-databind-*.jar",
    "jackson-core-*.jar",
    "jackson-annotations-*.jar",
    "slf4j-api-*.jar",
)


def link_jars(jars_dir: Path) -> list[str]:
    found = []
    for pattern in LINK_JARS:
        matches = sorted(jars_dir.glob(pattern))
        if not matches:
            raise RuntimeError(f"lakebase-spark build: no {pattern} in {jars_dir}")
        found.append(str(matches[0]))
    return found


def build_jar(root: Path, out: Path) -> Path:
    """Compile ``jvm/src/main/java`` and zip the classes with ``META-INF/services`` into ``out``."""
    javac = shutil.which("javac")
    if javac is None:
        raise RuntimeError(
            "lakebase-spark build: javac not found; install a JDK (8 or newer, 17 recommended)"
        )
    sources = sorted(str(p) for p in (root / "jvm" / "src" / "main" / "java").rglob("*.java"))
    if not sources:
        raise RuntimeError(f"lakebase-spark build: no Java sources under {root / 'jvm'}")
    classpath = os.pathsep.join(link_jars(spark_jars_dir()))
    with tempfile.TemporaryDirectory() as classes:
        subprocess.run(  # noqa: S603 - fixed argv, no shell
            [javac, *JAVAC_FLAGS, "-cp", classpath, "-d", classes, *sources], check=True
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr(
                "META-INF/MANIFEST.MF",
                "Manifest-Version: 1.0\r\nCreated-By: lakebase-spark\r\n\r\n",
            )
            for path in sorted(Path(classes).rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
            for path in sorted((root / "META-INF" / "services").iterdir()):
                jar.write(path, f"META-INF/services/{path.name}")
        tmp.replace(out)  # atomic: a failed build never leaves a half-written jar behind
    return out


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name not in ("wheel",):
            return
        root = Path(self.root)
        if version == "editable":
            # Editable installs import from python/: put the jar where jar_path() looks.
            build_jar(root, root / "python" / "lakebase_spark" / "jars" / JAR_NAME)
            return
        jar = build_jar(root, root / "build" / "jvm" / JAR_NAME)
        build_data["force_include"][str(jar)] = f"lakebase_spark/jars/{JAR_NAME}"
