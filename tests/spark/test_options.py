"""Option helpers: the full JDBC option set from an endpoint name, and clear errors for bad input."""

from __future__ import annotations

import pytest

from lakebase_spark import (
    EndpointNotFoundError,
    InvalidEndpointNameError,
    LakebaseOptions,
    lakebase_options,
)
from lakebase_spark.targets import Address

from ..conftest import DATABASE, ENDPOINT

pytestmark = pytest.mark.postgres


def test_full_option_set(emulator, broker_service) -> None:
    opts = lakebase_options(ENDPOINT, database=DATABASE, broker=broker_service)
    host = emulator.create_endpoint(ENDPOINT)  # idempotent: returns the endpoint's host
    assert opts["url"] == f"jdbc:postgresql://{host}/{DATABASE}?sslmode=require"
    assert opts["driver"] == "org.postgresql.Driver"
    assert opts["user"] == emulator.user_name
    assert opts["connectionProvider"] == "lakebase"
    assert opts["lakebase.endpoint"] == ENDPOINT
    assert opts["lakebase.broker.url"] == broker_service.url
    assert opts["lakebase.broker.secret"] == broker_service.secret.reveal()
    assert "lakebase.broker.fingerprint" not in opts  # loopback broker: plain HTTP
    assert opts["fetchsize"] == "10000"
    assert opts["reWriteBatchedInserts"] == "true"
    assert opts["prepareThreshold"] == "-1"  # binary results from the first execution
    assert "password" not in opts
    assert all(isinstance(v, str) for v in opts.values())


def test_repr_hides_the_secret(broker_service) -> None:
    opts = lakebase_options(ENDPOINT, database=DATABASE, broker=broker_service)
    assert isinstance(opts, LakebaseOptions)
    assert isinstance(opts, dict)
    for text in (repr(opts), str(opts), f"{opts}"):
        assert broker_service.secret.reveal() not in text
        assert "***" in text


def test_extras_are_stringified_and_none_drops(broker_service) -> None:
    opts = lakebase_options(
        ENDPOINT, database=DATABASE, broker=broker_service, fetchsize=None, queryTimeout=30, tcpKeepAlive=True
    )
    assert "fetchsize" not in opts
    assert opts["queryTimeout"] == "30"
    assert opts["tcpKeepAlive"] == "true"


def test_database_names_are_url_encoded(broker_service) -> None:
    opts = lakebase_options(ENDPOINT, database="odd name/x?y", broker=broker_service)
    assert "/odd%20name%2Fx%3Fy?sslmode=require" in opts["url"]


def test_provisioned_instance(emulator, broker_service) -> None:
    dns = emulator.create_instance("opts-instance")
    opts = lakebase_options(instance="opts-instance", database=DATABASE, broker=broker_service)
    assert opts["url"] == f"jdbc:postgresql://{dns}/{DATABASE}?sslmode=require"
    assert opts["lakebase.instance"] == "opts-instance"
    assert "lakebase.endpoint" not in opts


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "exactly one"),
        ({"endpoint": ENDPOINT, "instance": "x"}, ValueError, "exactly one"),
        ({"endpoint": "primary"}, InvalidEndpointNameError, "malformed Lakebase endpoint name 'primary'"),
        ({"instance": "a/b"}, InvalidEndpointNameError, "malformed Lakebase instance name"),
        ({"endpoint": "projects/p/branches/b/endpoints/nope"}, EndpointNotFoundError, "no such resource"),
        ({"endpoint": ENDPOINT, "database": ""}, ValueError, "database"),
    ],
)
def test_bad_input(broker_service, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        lakebase_options(broker=broker_service, **kwargs)


@pytest.mark.parametrize(
    ("text", "port", "expected"),
    [
        ("ep-1.database.cloud.databricks.com", None, Address("ep-1.database.cloud.databricks.com", 5432)),
        ("127.0.0.1:6543", None, Address("127.0.0.1", 6543)),
        ("127.0.0.1:6543", 7000, Address("127.0.0.1", 7000)),
        ("[::1]:6543", None, Address("::1", 6543)),
        ("host", 15432, Address("host", 15432)),
    ],
)
def test_address_parse(text: str, port: int | None, expected: Address) -> None:
    assert Address.parse(text, port=port) == expected
