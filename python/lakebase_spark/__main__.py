"""``python -m lakebase_spark``: the ``lakebase-spark`` command."""

import sys

from .cli import main

sys.exit(main())
