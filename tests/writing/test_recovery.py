"""The README's recovery steps for failed staged writes lose and duplicate nothing: a job that failed with
some partitions staged, the staging table (or only its commit log) dropped by hand as the error and the
README allow, then a rerun with the same write id; on executors in their own JVMs, Spark retrying tasks.

(It used to empty the target on overwrite, report success with 0 rows for upsert and atomic appends,
and apply every row twice when only the stage's commit log was dropped.)
"""

from __future__ import annotations

import re

import pytest

from ..conftest import DATABASE, ENDPOINT
from ..jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.faults, pytest.mark.lane2]

SCENARIOS = (
    "overwrite-drop-stage",
    "overwrite-drop-stage-log",
    "overwrite-truncate-stage",
    "upsert-drop-stage",
    "atomic-append-drop-stage",
    "overwrite-resume",
)


@pytest.fixture(scope="module")
def recovered(emulator, tmp_path_factory) -> dict:
    env = {"LAKEBASE_TEST_PAT": emulator.pat, "LAKEBASE_TEST_ADMIN": emulator.admin_conninfo(DATABASE)}
    args = ["local-cluster[2,1,1024]", emulator.host, ENDPOINT, DATABASE, *SCENARIOS]
    result, _ = run_job(
        "recovery_job.py", args, env=env, signal=tmp_path_factory.mktemp("recovery") / "signal"
    )
    return result


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_failed_staged_write_recovers_exactly_after_the_readmes_steps(recovered, scenario) -> None:
    outcome = recovered[scenario]
    # The first run failed on the last partition, on every attempt, and said where its rows were staged.
    assert "upstream broke" in outcome["first_error"]
    assert "The target is unchanged" in outcome["first_error"]
    assert outcome["stage"], outcome["first_error"]
    # After the user's step and a rerun with the same write id: every row once, nothing lost.
    expected = outcome["expected"]
    assert (outcome["rows"], outcome["distinct"]) == (expected, expected), outcome
    assert outcome["new"] == 4000
    assert outcome["stage_tables_left"] == 0  # the stage and its commit log went with the final apply
    rerun = outcome["rerun"]
    if scenario == "overwrite-truncate-stage":
        # A stage emptied by hand cannot be resumed: the rerun refuses to apply it, drops it, and the next
        # rerun stages every row again.
        assert re.search(r"holds 1000 rows, but its commit log .* says 4000 rows were staged", rerun["error"])
        assert rerun["again"] == 4000
    else:
        assert rerun == {"rows": 4000, "skipped": False}
