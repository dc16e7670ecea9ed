"""Package attributes imported on first use (PEP 562): a package's ``__init__`` names what it exports
and where from, and importing the package stays cheap (no databricks-sdk, psycopg or cryptography
until something needs them)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["exports"]


def exports(
    package: str, origins: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``origins`` comes from the module
    given there (relative to the package), imported when the name is first looked up."""
    listed = set(public)

    def __getattr__(name: str) -> Any:
        origin = origins.get(name)
        if origin is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(origin, package), name)
        setattr(sys.modules[package], name, value)  # once: later look-ups find it directly
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | listed)

    return __getattr__, __dir__
