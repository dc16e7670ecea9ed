"""Spark SQL over Lakebase: the catalog's registration (``catalogs.py``) and the driver's side of its
writes (``writes.py``)."""
