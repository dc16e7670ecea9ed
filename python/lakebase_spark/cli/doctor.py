"""``lakebase-spark doctor``: every step from Databricks auth to a Postgres login, each checked in
order, with the fix for the first that fails (the Lakebase guides' own verification steps)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..errors import LakebaseSparkError
from ..postgres.connection import connect
from ..spark.classpath import jar_path, postgres_driver_jar
from ..targets import DEFAULT_DATABASE, Address, Target
from ..tokens.broker import TokenBroker

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["Check", "run_checks"]

Status = Literal["pass", "fail", "warn"]
#: DNS labels longer than this fail to resolve (RFC 1035); long branch and endpoint ids can make one.
MAX_DNS_LABEL = 63


@dataclass
class Check:
    """One row of the report."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def run_checks(
    *,
    endpoint: str | None = None,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    workspace: WorkspaceClient | None = None,
    jvm: bool = True,
) -> list[Check]:
    """Run the checks in order; later checks that need an earlier one's result are skipped if it failed."""
    checks: list[Check] = []
    if jvm:
        checks.extend(_jars())
    try:
        target = Target.of(endpoint, instance)
    except (ValueError, LakebaseSparkError) as e:
        checks.append(
            Check("target", "fail", str(e), "pass --endpoint projects/<p>/branches/<b>/endpoints/<e>")
        )
        return checks
    try:
        if workspace is None:
            from databricks.sdk import WorkspaceClient

            workspace = WorkspaceClient()
        config = workspace.config
        checks.append(Check("Databricks auth", "pass", f"{config.auth_type} auth on {config.host}"))
    except Exception as e:  # the SDK's config errors list what it tried
        checks.append(Check("Databricks auth", "fail", _first_line(e), _AUTH_FIX))
        return checks
    broker = TokenBroker(workspace)
    if not _step(
        checks, "principal", lambda: f"the workspace knows the caller as {broker.principal}", _AUTH_FIX
    ):
        return checks
    address: Address | None = None

    def find() -> str:
        nonlocal address
        address = target.resolve(workspace)
        return f"{target} has host {address.host}:{address.port}{_state(workspace, target)}"

    if not _step(
        checks, "target", find, "check the name in the Lakebase UI (Compute tab) and your CAN USE grant"
    ):
        return checks
    assert address is not None

    def mint() -> str:
        credential = broker.credential(**target.keywords())
        return f"minted a database credential valid for {credential.lifetime() / 60:.0f} min"

    if not _step(checks, "credential", mint, "see the message: entitlement, grant or workspace credentials"):
        return checks
    checks.append(_dns(address))
    if "pooler" in address.host:
        checks.append(
            Check(
                "host",
                "warn",
                f"{address.host} looks like the pooled (PgBouncer) host",
                "use the endpoint's direct host: the pooled one does not take OAuth logins",
            )
        )

    def login() -> str:
        with connect(**target.keywords(), database=database, tokens=broker, address=address) as conn:
            row = conn.execute("SELECT current_user, current_database(), version()").fetchone()
        assert row is not None
        return f"TLS login as {row[0]} to database {row[1]} ({str(row[2]).split(' on ')[0]})"

    if _step(
        checks,
        "login",
        login,
        f"create the Postgres role for {broker.principal} (databricks_create_role, or the Lakebase UI), "
        f"and check that database {database!r} exists",
    ):
        with connect(**target.keywords(), database=database, tokens=broker, address=address) as conn:
            checks.append(_slots(conn, target))
    return checks


def _slots(conn: Any, target: Target) -> Check:
    """Idle logical replication slots: each keeps the server's WAL until a reader advances it."""
    from ..postgres.slots import list_slots

    idle = [s for s in list_slots(conn) if s.active_pid is None]
    if not idle:
        return Check("replication slots", "pass", "no idle logical replication slot keeps WAL")
    shown = ", ".join(f"{s.name} ({_size(s.retained_bytes)} of WAL, {s.wal_status})" for s in idle)
    flag = f"--endpoint {target.name}" if target.kind == "endpoint" else f"--instance {target.name}"
    return Check(
        "replication slots",
        "warn",
        f"{len(idle)} idle slot(s) keep WAL on the server: {shown}",
        "restart the change streams that own them, or drop those no stream needs: lakebase-spark slots drop "
        f"<name> {flag} (Lakebase drops slots idle for about 40 hours)",
    )


def _size(count: int | None) -> str:
    if count is None:
        return "no"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}"
        count //= 1024
    return f"{count} TiB"


_AUTH_FIX = (
    "set DATABRICKS_HOST with DATABRICKS_TOKEN, or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET for a "
    "service principal, or DATABRICKS_CONFIG_PROFILE (in a notebook, auth is automatic)"
)


def _step(checks: list[Check], name: str, run: Any, fix: str) -> bool:
    try:
        checks.append(Check(name, "pass", run()))
        return True
    except Exception as e:  # every failure becomes a row with its fix
        checks.append(Check(name, "fail", _first_line(e), fix))
        return False


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:500]


def _state(workspace: WorkspaceClient, target: Target) -> str:
    if target.kind != "endpoint":
        return ""
    try:
        found = workspace.postgres.get_endpoint(name=target.name)
        state = found.status.current_state if found.status else None
    except Exception:  # the state is context; the host lookup above already succeeded
        return ""
    name = getattr(state, "value", state)
    return f", state {name}" + (" (a login wakes it)" if name and "IDLE" in str(name) else "") if name else ""


def _dns(address: Address) -> Check:
    long_labels = [label for label in address.host.split(".") if len(label) > MAX_DNS_LABEL]
    if long_labels:
        return Check(
            "DNS",
            "fail",
            f"{address.host} has a label of {len(long_labels[0])} characters (DNS allows {MAX_DNS_LABEL})",
            "use shorter project, branch or endpoint ids, or connect through the host the Lakebase UI shows",
        )
    try:
        infos = socket.getaddrinfo(address.host, address.port, proto=socket.IPPROTO_TCP)
    except OSError as e:
        return Check("DNS", "fail", f"{address.host} does not resolve: {e}", "check the network and DNS")
    return Check("DNS", "pass", f"{address.host} resolves to {infos[0][4][0]}")


def _jars() -> list[Check]:
    checks: list[Check] = []
    try:
        provider = jar_path()
        checks.append(Check("provider jar", "pass", provider))
    except LakebaseSparkError as e:
        return [
            Check("provider jar", "fail", _first_line(e), "reinstall: pip install . (a JDK must be on PATH)")
        ]
    driver = postgres_driver_jar()
    if driver is None:
        checks.append(
            Check(
                "JDBC driver",
                "warn",
                "no local Postgres JDBC driver jar: configure() has Spark fetch org.postgresql:postgresql",
                "on a machine without Maven Central, install one (Debian: libpostgresql-jdbc-java) or set "
                "LAKEBASE_SPARK_JDBC_DRIVER_JAR",
            )
        )
    else:
        checks.append(Check("JDBC driver", "pass", driver))
    checks.append(_jvm(provider, driver))
    return checks


def _jvm(provider: str, driver: str | None) -> Check:
    """Load the provider and the driver in a JVM with a Spark driver's class path."""
    name = "Spark JVM"
    java = shutil.which(
        "java",
        path=os.path.join(os.environ.get("JAVA_HOME", ""), "bin") + os.pathsep + os.environ.get("PATH", ""),
    )
    try:
        import pyspark
    except ImportError:
        return Check(name, "fail", "pyspark is not installed", "pip install pyspark")
    if java is None:
        return Check(name, "fail", "no java on PATH or in JAVA_HOME", "install a JDK 17 (Spark 3.5 and 4.x)")
    spark_jars = Path(pyspark.__file__).parent / "jars"
    classpath = os.pathsep.join([provider, *([driver] if driver else []), str(spark_jars / "*")])
    try:
        done = subprocess.run(  # noqa: S603 - our own argv
            [java, "-cp", classpath, "io.lakebase.spark.ProviderCheck"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return Check(name, "fail", f"could not run java: {e}", "check the JDK install")
    found = " / ".join(line for line in done.stdout.splitlines() if line)
    if done.returncode == 0:
        return Check(name, "pass", found)
    return Check(
        name,
        "fail",
        found or _first_line(Exception(done.stderr)),
        "start Spark with both jars: lakebase_spark.configure(builder), or spark-submit "
        "$(lakebase-spark submit-args); a provider Spark cannot load is silently replaced by 'basic'",
    )
