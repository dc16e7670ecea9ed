"""``lakebase_spark.catalog``: a Lakebase database as a Spark SQL catalog, so ``%sql`` cells, dbt and
``spark.sql`` reach its tables by name (``SELECT * FROM lb.public.orders``).

The catalog is the jar's ``io.lakebase.spark.LakebaseCatalog`` (Spark's JDBC catalog for DDL and
reads, the COPY writer for writes), configured with the options ``lakebase_options`` builds, except
the broker's secret: Spark keeps a catalog's options in the session's SQL conf, where ``SET`` and
``spark.conf.get`` show them, so the conf names a session file that holds the secret instead (the JVM
reads it where it runs). The driver's broker also plans the catalog's reads (``sql/reads.py``) and
plans and finishes its writes (``sql/writes.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import InvalidArgumentError
from ..serving.service import BrokerService, shared_broker_service
from ..sessions import LOOPBACK, active_session
from ..spark import classpath
from ..spark._session_files import secret_file, ship_secret
from ..spark.options import BROKER_SECRET, BROKER_SECRET_FILE, ENDPOINT, INSTANCE, lakebase_options
from ..targets import DEFAULT_DATABASE, Target
from .reads import serve_reads
from .writes import serve_writes

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["CATALOG_CLASS", "catalog", "catalog_confs", "configure"]

#: The catalog class in the jar (jvm/.../LakebaseCatalog.java).
CATALOG_CLASS = "io.lakebase.spark.LakebaseCatalog"
#: What Spark accepts as a catalog name without quoting, and what we register.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
if TYPE_CHECKING:
    from pyspark.sql import SparkSession

B = TypeVar("B", bound="SparkSession.Builder")


def catalog(
    spark: Any,
    name: str,
    endpoint: str | None = None,
    *,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    **extra: Any,
) -> str:
    """Register ``database`` of a Lakebase endpoint (or instance) as catalog ``name`` of ``spark``.

    Then ``spark.sql(f"SELECT * FROM {name}.public.orders")``, ``INSERT INTO`` (COPY, exactly once),
    ``INSERT OVERWRITE`` (atomic), ``CREATE TABLE ... AS SELECT``, ``DELETE FROM ... WHERE``,
    ``SHOW TABLES IN {name}.public`` and the rest of Spark's DDL work on it. One catalog per endpoint
    and database: a branch or a read replica is another endpoint, registered under another name.
    Returns ``name``. ``extra`` options are passed on as for :func:`lakebase_options`.

    Works on classic and Spark Connect sessions. Spark keeps a catalog for the session's life: a name
    already registered for another database is refused.
    """
    _check_name(name)
    confs = catalog_confs(
        name,
        endpoint,
        instance=instance,
        database=database,
        broker=broker,
        workspace_client=workspace_client,
        spark=spark,
        **extra,
    )
    _check_free(spark, name, confs)
    for key, value in confs.items():
        spark.conf.set(key, value)
    return name


def catalog_confs(
    name: str,
    endpoint: str | None = None,
    *,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    spark: Any | None = None,
    **extra: Any,
) -> dict[str, str]:
    """The ``spark.sql.catalog.<name>*`` confs of a Lakebase catalog. With ``spark=None`` (a builder)
    the secret's file is not shipped: key ``spark.files`` holds its path (see :func:`configure`)."""
    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    options = dict(lakebase_options(endpoint, instance=instance, database=database, broker=service, **extra))
    secret = service.secret.reveal()
    options.pop(BROKER_SECRET, None)
    out: dict[str, str] = {}
    if spark is None:
        file_name, path = secret_file(secret)
        out["spark.files"] = path
    elif BROKER_SECRET_FILE not in options:
        file_name = ship_secret(spark, secret)
    else:
        file_name = options[BROKER_SECRET_FILE]
    options[BROKER_SECRET_FILE] = file_name
    serve_writes(service)
    serve_reads(service)
    out[f"spark.sql.catalog.{name}"] = CATALOG_CLASS
    out.update({f"spark.sql.catalog.{name}.{key}": value for key, value in options.items()})
    return out


def configure(
    builder: B,
    *,
    driver_jar: str | None = None,
    catalogs: Mapping[str, Mapping[str, Any]] | None = None,
) -> B:
    """:func:`lakebase_spark.spark.classpath.configure` (the jars), plus ``catalogs``: name ->
    :func:`catalog`'s keyword arguments, registered as the session starts. For example::

        spark = lakebase_spark.configure(
            SparkSession.builder, catalogs={"lb": {"endpoint": ENDPOINT, "database": "shop"}}
        ).getOrCreate()
        spark.sql("SELECT count(*) FROM lb.public.orders")

    The catalogs' broker listens on loopback for a ``local`` master and on ``spark.driver.host``
    otherwise; a Spark Connect builder cannot ship the secret before its session exists: call
    :func:`catalog` after ``getOrCreate()`` there.
    """
    classpath.configure(builder, driver_jar=driver_jar)
    if not catalogs:
        return builder
    current = dict(getattr(builder, "_options", {}))
    if current.get("spark.remote"):
        raise InvalidArgumentError(
            "configure(catalogs=...) cannot ship the broker's secret to a Spark Connect server before the "
            "session exists: build the session, then call lakebase_spark.catalog(spark, name, endpoint=...)",
            argument="catalogs",
        )
    if active_session() is not None:
        raise InvalidArgumentError(
            "a Spark session is already running, so getOrCreate() would ignore these confs: call "
            "lakebase_spark.catalog(spark, name, endpoint=...) instead",
            argument="catalogs",
        )
    files = [f for f in str(current.get("spark.files", "")).split(",") if f]
    for name, spec in catalogs.items():
        _check_name(name)
        spec = dict(spec)
        if spec.get("broker") is None:
            spec["broker"] = shared_broker_service(
                spec.pop("workspace_client", None), host=_bind_host(current)
            )
        confs = catalog_confs(name, **spec)
        files.append(confs.pop("spark.files"))
        for key, value in confs.items():
            builder.config(key, value)
    builder.config("spark.files", ",".join(files))
    return builder


def _bind_host(options: Mapping[str, Any]) -> str:
    """Where a broker started before the session must listen (``sessions.broker_bind_host``'s rule)."""
    master = str(options.get("spark.master") or os.environ.get("MASTER") or "local")
    if master.startswith("local"):
        return LOOPBACK
    host = options.get("spark.driver.host")
    if not host:
        raise InvalidArgumentError(
            f"with master {master!r}, the broker must listen on the driver's address: set "
            "spark.driver.host on the builder, or call lakebase_spark.catalog(spark, name, "
            "endpoint=...) after getOrCreate()",
            argument="catalogs",
        )
    return str(host)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"catalog name must be letters, digits and underscores, not starting with a digit; got {name!r}",
            argument="name",
        )
    if name.lower() == "spark_catalog":
        raise InvalidArgumentError(
            "spark_catalog is Spark's session catalog: name the Lakebase catalog something else, e.g. 'lb'",
            argument="name",
        )


def _check_free(spark: Any, name: str, confs: Mapping[str, str]) -> None:
    """Spark keeps the first catalog it loads under a name: refuse to point the name elsewhere."""
    prefix = f"spark.sql.catalog.{name}"
    for key in (prefix, *(f"{prefix}.{k}" for k in ("url", ENDPOINT, INSTANCE))):
        try:
            old = spark.conf.get(key, None)
        except Exception:
            old = None
        if old is not None and old != confs.get(key):
            where = Target.of(confs.get(f"{prefix}.{ENDPOINT}"), confs.get(f"{prefix}.{INSTANCE}"))
            raise InvalidArgumentError(
                f"catalog {name!r} is already registered in this session for another database "
                f"({key} differs); Spark keeps a catalog for the session's life: register {where} "
                "under another name",
                argument="name",
            )
