"""The ``lakebase-spark`` command: doctor against the emulator (passing and failing at each step),
jar and submit-args. Run as a user would, in a process of its own with the SDK's environment."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

import lakebase_spark
from lakebase_spark.cli import submit_args

from ..conftest import DATABASE, ENDPOINT
from ..jobs import run_python

pytestmark = pytest.mark.postgres


def cli(emulator, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    env.update(DATABRICKS_HOST=emulator.host, DATABRICKS_TOKEN=token or emulator.pat)
    return run_python("-m", "lakebase_spark", *args, env=env, timeout=180, must_pass=False)


def rows(done: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(done.stdout)}


def test_doctor_passes_every_step_against_a_working_setup(emulator) -> None:
    done = cli(emulator, "doctor", "--endpoint", ENDPOINT, "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = rows(done)
    assert list(checks) == [
        "provider jar",
        "JDBC driver",
        "Spark JVM",
        "Databricks auth",
        "principal",
        "target",
        "credential",
        "DNS",
        "login",
        "replication slots",
    ]
    assert {c["status"] for c in checks.values()} == {"pass"}
    assert "lakebase" in checks["Spark JVM"]["detail"]  # Spark's ServiceLoader really found it
    assert "pat auth" in checks["Databricks auth"]["detail"]
    assert f"TLS login as {emulator.user_name}" in checks["login"]["detail"]
    assert "valid for 60 min" in checks["credential"]["detail"]


def test_doctor_names_a_missing_endpoint_and_stops_there(emulator) -> None:
    done = cli(emulator, "doctor", "--endpoint", "projects/test/branches/main/endpoints/nope", "--no-jvm")
    assert done.returncode == 1
    assert "FAIL  target" in done.stdout
    assert "fix: check the name in the Lakebase UI" in done.stdout
    assert "login" not in done.stdout  # later steps need the target


def test_doctor_shows_the_fix_for_a_refused_credential(emulator) -> None:
    emulator.faults.fail_mints(
        5, status=403, message="Service principal 1234 does not have the workspace-access entitlement."
    )
    try:
        done = cli(emulator, "doctor", "--endpoint", ENDPOINT, "--no-jvm", "--json")
    finally:
        emulator.faults.clear()
    assert done.returncode == 1
    credential = rows(done)["credential"]
    assert credential["status"] == "fail"
    assert 'enable the "Workspace access" entitlement' in credential["detail"]


def test_doctor_names_the_missing_postgres_role(emulator) -> None:
    token = emulator.add_user("no-role@example.com", role=False)
    done = cli(emulator, "doctor", "--endpoint", ENDPOINT, "--no-jvm", "--json", token=token)
    assert done.returncode == 1
    login = rows(done)["login"]
    assert login["status"] == "fail"
    assert "create the Postgres role for no-role@example.com" in login["fix"]
    assert token not in done.stdout + done.stderr


def test_doctor_refuses_bad_arguments(emulator) -> None:
    assert cli(emulator, "doctor").returncode == 2
    done = cli(emulator, "doctor", "--endpoint", "primary", "--no-jvm")
    assert done.returncode == 1
    assert "malformed Lakebase endpoint name" in done.stdout


def test_jar_and_submit_args(emulator) -> None:
    assert cli(emulator, "jar").stdout.strip() == lakebase_spark.jar_path()
    printed = cli(emulator, "submit-args").stdout.split()
    assert printed == submit_args()
    assert printed[0] == "--jars"
    assert lakebase_spark.jar_path() in printed[1].split(",")
    assert printed[2] == "--driver-class-path"


def test_doctor_warns_of_an_idle_slot_and_slots_lists_and_drops_it(emulator, admin) -> None:
    admin.execute("SELECT pg_create_logical_replication_slot('cli_idle', 'pgoutput')")
    try:
        done = cli(emulator, "doctor", "--endpoint", ENDPOINT, "--database", DATABASE, "--json", "--no-jvm")
        check = rows(done)["replication slots"]
        assert check["status"] == "warn"
        assert "cli_idle (" in check["detail"]
        assert f"lakebase-spark slots drop <name> --endpoint {ENDPOINT}" in check["fix"]
        listed = cli(emulator, "slots", "list", "--endpoint", ENDPOINT, "--database", DATABASE)
        assert listed.returncode == 0, listed.stderr
        assert f"cli_idle  database {DATABASE}  idle  keeps" in listed.stdout
        dropped = cli(emulator, "slots", "drop", "cli_idle", "--endpoint", ENDPOINT, "--database", DATABASE)
        assert (dropped.returncode, dropped.stdout.strip()) == (0, "dropped slot cli_idle")
    finally:
        admin.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = 'cli_idle'"
        )
    again = cli(emulator, "slots", "drop", "cli_idle", "--endpoint", ENDPOINT, "--database", DATABASE)
    assert (again.returncode, again.stdout.strip()) == (1, "no slot cli_idle")
