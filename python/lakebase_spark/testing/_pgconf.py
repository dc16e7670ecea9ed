"""The emulator's Postgres configuration: server settings and the login rules (pg_hba.conf) that make
it behave like Lakebase (TLS only, a token checked by LDAP bind at login, password roles apart)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

__all__ = ["PASSWORD_ROLES", "SETTINGS", "conf_value", "write_config"]

# Durability buys nothing for a throwaway test server and costs start-up and commit time:
# no fsync, no full-page writes, small buffers. max_connections leaves room for Spark executors.
SETTINGS: Final[dict[str, str]] = {
    "listen_addresses": "127.0.0.1",
    "ssl": "on",
    "ssl_cert_file": "server.crt",
    "ssl_key_file": "server.key",
    "ssl_min_protocol_version": "TLSv1.2",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "max_wal_size": "256MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    # As Lakebase: logical decoding on (change streams read a table's changes from a replication slot).
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
}


def conf_value(value: str) -> str:
    """A postgresql.conf string value, quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


#: Members of this group log in with a password (scram-sha-256) instead of a token.
PASSWORD_ROLES = "lakebase_password_roles"  # noqa: S105 - a role name


def _hba_value(value: str) -> str:
    if '"' in value:
        raise ValueError(f"LDAP DN part {value!r} must not contain a double quote")
    return f'"{value}"'


def write_config(
    data_dir: Path, settings: Mapping[str, str], *, ldap_port: int, ldap_prefix: str, ldap_suffix: str
) -> None:
    """Append ``settings`` to postgresql.conf and write pg_hba.conf (the server's key and certificate
    are already in ``data_dir``)."""
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("\n# Lakebase emulator\n")
        for name, value in settings.items():
            conf.write(f"{name} = {conf_value(value)}\n")
    ldap = (
        f"ldap ldapserver=127.0.0.1 ldapport={ldap_port}"
        f" ldapprefix={_hba_value(ldap_prefix)} ldapsuffix={_hba_value(ldap_suffix)}"
    )
    # First match wins. Lakebase requires TLS, so plain TCP is rejected before any password is sent.
    (data_dir / "pg_hba.conf").write_text(
        "# Lakebase emulator: admin over the private Unix socket, principals over TLS with a token\n"
        "local     all  all                 trust\n"
        "local     replication  all         trust\n"
        "hostnossl all  all  0.0.0.0/0      reject\n"
        "hostnossl all  all  ::/0           reject\n"
        f"hostssl   all  +{PASSWORD_ROLES}  127.0.0.1/32  scram-sha-256\n"
        f"hostssl   all  all  127.0.0.1/32   {ldap}\n"
        "host      all  all  0.0.0.0/0      reject\n"
        "host      all  all  ::/0           reject\n"
    )
