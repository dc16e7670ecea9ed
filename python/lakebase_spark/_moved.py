"""Modules that moved when the package was laid out by layer: their old import paths (and
``python -m lakebase_spark.demo``) keep working, with a ``DeprecationWarning`` naming the new home.

The public API is the package's own namespace (``lakebase_spark.TokenBroker``), which did not change;
this is for code that imported a module by its old path."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import CodeType, ModuleType

__all__ = ["MOVED", "install"]

MOVED = {
    "lakebase_spark.broker": "lakebase_spark.tokens.broker",
    "lakebase_spark.credentials": "lakebase_spark.tokens.credentials",
    "lakebase_spark.service": "lakebase_spark.serving.service",
    "lakebase_spark.certificates": "lakebase_spark.serving.certificates",
    "lakebase_spark.options": "lakebase_spark.spark.options",
    "lakebase_spark.session": "lakebase_spark.spark.classpath",
    "lakebase_spark.connection": "lakebase_spark.postgres.connection",
    "lakebase_spark.reading.snapshots": "lakebase_spark.postgres.snapshots",
    "lakebase_spark.doctor": "lakebase_spark.cli.doctor",
    "lakebase_spark.demo": "lakebase_spark.cli.demo",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def exec_module(self, module: ModuleType) -> None:
        # The import system reads sys.modules again after exec_module: the old name becomes the
        # module itself (one module object, one set of globals), not a copy of it.
        sys.modules[module.__name__] = importlib.import_module(self.new)

    def get_code(self, fullname: str) -> CodeType | None:
        # For runpy (`python -m lakebase_spark.demo`): run the module at its new home.
        spec = importlib.util.find_spec(self.new)
        loader = spec.loader if spec else None
        return loader.get_code(self.new) if isinstance(loader, importlib.abc.InspectLoader) else None


class _MovedModules(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = MOVED.get(fullname)
        if new is None:
            return None
        warnings.warn(
            f"{fullname} moved to {new}; import from there, or the name itself from lakebase_spark",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Last on ``sys.meta_path``: consulted only for a name no real module has."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
