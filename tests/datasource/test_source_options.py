"""The ``lakebase`` source's options: an unknown one is refused before anything moves, naming the
closest known one (Spark's JDBC source ignores unknown options; ours change what is written)."""

from __future__ import annotations

import pytest

from lakebase_spark.datasource.options import KNOWN_OPTIONS, SourceOptionsError, check_known


@pytest.mark.parametrize(
    ("use", "given", "hint"),
    [
        ("write", "upsert_key", "did you mean 'upsertKey'?"),
        ("write", "writeID2", "did you mean 'writeId'?"),
        ("read", "partitionColumns", "did you mean 'partitionColumn'?"),
        ("read", "numpartition", "did you mean 'numPartitions'?"),
        ("read", "upsertKey", "it is an option of a write"),
        ("write", "partitionColumn", "it is an option of a read"),
        ("stream write", "atomic", "it is an option of a write"),
        ("read", "path", "no option of that name exists"),
    ],
)
def test_an_unknown_option_is_refused_naming_the_closest(use: str, given: str, hint: str) -> None:
    with pytest.raises(SourceOptionsError) as info:
        check_known({"endpoint": "projects/p/branches/b/endpoints/e", given: "x"}, use)
    message = str(info.value)
    assert f"takes no option {given!r} for a {use}" in message
    assert hint in message
    assert "nothing was read or written" in message


def test_known_options_pass_in_any_case() -> None:
    check_known({"NUMPARTITIONS": "4", "partitioncolumn": "id", "dbtable": "t"}, "read")
    check_known({"upsertKey": "id", "WriteId": "w", "atomic": "true"}, "write")
    check_known({"checkpointlocation": "/tmp/c", "dbtable": "t"}, "stream write")


@pytest.mark.spark
@pytest.mark.postgres
def test_every_option_the_helpers_build_is_known_to_every_use(spark, opts, broker_service) -> None:
    from lakebase_spark.datasource import source_options

    from ..conftest import DATABASE, ENDPOINT

    built = source_options(ENDPOINT, database=DATABASE, broker=broker_service, credentials="broker")
    token = source_options(ENDPOINT, database=DATABASE, broker=broker_service, credentials="token")
    for use in KNOWN_OPTIONS:
        for options in (opts, built, token):  # lakebase_options' (the JDBC helper) work here too
            check_known(options, use)
