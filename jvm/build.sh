#!/usr/bin/env bash
# Dev convenience: build/jvm/lakebase-spark-provider.jar from jvm/ without installing the package. It runs the
# package build's own function (hatch_build.build_jar), so the javac flags and the jars linked live in one place.
#
#   SPARK_HOME=/path/to/spark jvm/build.sh     # default: the jars of the pyspark importable by python3
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
cd "$root"
"$PYTHON" - <<'PY'
import importlib.util, pathlib, sys, types

# hatch_build imports hatchling's hook interface; stub it when hatchling is not installed.
try:
    import hatchling.builders.hooks.plugin.interface  # noqa: F401
except ImportError:
    iface = types.ModuleType("hatchling.builders.hooks.plugin.interface")
    iface.BuildHookInterface = object
    for name in ("hatchling", "hatchling.builders", "hatchling.builders.hooks", "hatchling.builders.hooks.plugin"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules[iface.__name__] = iface
spec = importlib.util.spec_from_file_location("hatch_build", "hatch_build.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
root = pathlib.Path(".").resolve()
print(module.build_jar(root, root / "build" / "jvm" / module.JAR_NAME))
PY
