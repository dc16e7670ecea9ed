"""The ``lakebase-spark`` command (``commands``), its ``doctor`` checks and the ``demo`` job: the top
layer, free to use every other."""

from .commands import main, submit_args

__all__ = ["main", "submit_args"]
