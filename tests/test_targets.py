"""Target: the one place that knows the kinds of Lakebase target, their names and their APIs."""

from __future__ import annotations

import pytest

from lakebase_spark import InvalidEndpointNameError
from lakebase_spark.targets import Target

ENDPOINT = "projects/p/branches/main/endpoints/primary"


def test_exactly_one_of_endpoint_and_instance() -> None:
    assert Target.of(endpoint=ENDPOINT) == Target("endpoint", ENDPOINT)
    assert Target.of(instance="inst-1") == Target("instance", "inst-1")
    for bad in ({}, {"endpoint": ENDPOINT, "instance": "inst-1"}):
        with pytest.raises(ValueError, match="exactly one of endpoint="):
            Target.of(**bad)


def test_each_kind_knows_its_api_and_keywords() -> None:
    endpoint, instance = Target.of(endpoint=ENDPOINT), Target.of(instance="inst-1")
    assert (endpoint.api, instance.api) == ("postgres", "database")
    assert endpoint.keywords() == {"endpoint": ENDPOINT, "instance": None}
    assert instance.keywords() == {"endpoint": None, "instance": "inst-1"}
    assert str(endpoint) == f"endpoint {ENDPOINT!r}"


@pytest.mark.parametrize(
    ("kind", "name"),
    [("endpoint", "primary"), ("endpoint", f"{ENDPOINT}/x"), ("instance", "a/b"), ("instance", "")],
)
def test_names_are_checked_when_made(kind, name) -> None:
    with pytest.raises(InvalidEndpointNameError):
        Target(kind, name)


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown Lakebase target kind"):
        Target("replica", "x")  # type: ignore[arg-type]
