"""The landing sensor's decisions, evaluated with build_sensor_context and asserted on cursors."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from dagster import DagsterInstance, build_sensor_context

from retail_assets.definitions import defs
from retail_assets.orchestration.sensors import RANGE_END, RANGE_START, SETTLE_S, landing_sensor
from retail_assets.storage.resource import StorageResource
from retail_assets_tests.helpers import HEADERS, write_group

ARRIVAL = datetime(2025, 3, 4, 5, 42, tzinfo=UTC)
DEFINITIONS = defs()  # the session's home: hours from RETAIL_PARTITIONS_START (2024)


@pytest.fixture
def storage(tmp_path):
    return StorageResource(
        landing_dir=str(tmp_path / "landing"),
        lake_root=str(tmp_path / "lake"),
        exports_dir=str(tmp_path / "exports"),
    )


def tick(storage, cursor=None):
    with (
        DagsterInstance.ephemeral() as instance,
        build_sensor_context(
            cursor=cursor,
            resources={"storage": storage},
            instance=instance,
            definitions=DEFINITIONS,
        ) as context,
    ):
        return landing_sensor(context)


def test_new_complete_group_requests_its_arrival_hour(storage):
    write_group(storage.landing_dir_path, "group1", ARRIVAL)
    result = tick(storage)
    (request,) = result.run_requests
    assert request.partition_key == "2025-03-04-05:00"
    assert request.tags["retail/groups"] == "group1"
    assert list(json.loads(result.cursor)["pending"]) == ["group1"]


def test_requested_group_is_not_requested_again(storage):
    write_group(storage.landing_dir_path, "group1", ARRIVAL)
    first = tick(storage)
    second = tick(storage, first.cursor)
    assert second.run_requests == []
    assert second.skip_reason.skip_message == "no new complete group"
    assert second.cursor == first.cursor


def test_incomplete_group_is_not_ingested_and_the_sensor_says_why(storage):
    write_group(storage.landing_dir_path, "group1", ARRIVAL, skip=("sales_agents",))
    result = tick(storage)
    assert result.run_requests == []
    assert "group1 not ingested: missing the sales_agents file" in result.skip_reason.skip_message


def test_groups_of_one_hour_share_one_run(storage):
    write_group(storage.landing_dir_path, "group1", ARRIVAL)
    write_group(storage.landing_dir_path, "group2", ARRIVAL.replace(minute=59))
    write_group(storage.landing_dir_path, "group3", ARRIVAL.replace(hour=6))
    requests = tick(storage).run_requests
    assert [(r.partition_key, r.tags["retail/groups"]) for r in requests] == [
        ("2025-03-04-05:00", "group1,group2"),
        ("2025-03-04-06:00", "group3"),
    ]


def test_ingested_group_leaves_pending_and_a_redrop_is_reported(storage):
    folder = write_group(storage.landing_dir_path, "group1", ARRIVAL)
    cursor = tick(storage).cursor
    fingerprint = json.loads(cursor)["pending"]["group1"]
    marker = {"group": "group1", "partition": "2025-03-04-05:00", "fingerprint": fingerprint}
    storage.write_group_marker(marker)
    quiet = tick(storage, cursor)
    assert quiet.run_requests == [] and json.loads(quiet.cursor)["pending"] == {}
    assert quiet.skip_reason.skip_message == "no new complete group"

    (folder / "branches_SS_raw_1.csv").write_text("branch_id,location,establish_date,class\n")
    redrop = tick(storage, quiet.cursor)
    assert redrop.run_requests == []
    assert "group1 dropped again after its ingestion in 2025-03-04-05:00" in (
        redrop.skip_reason.skip_message
    )


def test_a_group_folder_renamed_after_its_ingestion_is_reported_not_requested(storage):
    folder = write_group(storage.landing_dir_path, "group1", ARRIVAL)
    cursor = tick(storage).cursor
    fingerprint = json.loads(cursor)["pending"]["group1"]
    storage.write_group_marker(
        {"group": "group1", "partition": "2025-03-04-05:00", "fingerprint": fingerprint}
    )
    folder.rename(folder.with_name("group1_resent"))  # what an operator's tidy-up does
    renamed = tick(storage, cursor)
    assert renamed.run_requests == []
    assert "group1_resent holds the files of group1, ingested in 2025-03-04-05:00" in (
        renamed.skip_reason.skip_message
    )


def test_arrival_outside_the_partitions_is_reported(storage):
    write_group(storage.landing_dir_path, "group1", datetime(2019, 1, 1, tzinfo=UTC))
    result = tick(storage)
    assert result.run_requests == []
    assert "outside the partitions" in result.skip_reason.skip_message


def test_quiet_hours_before_an_arrival_get_one_range_run(storage):
    write_group(storage.landing_dir_path, "group1", ARRIVAL)
    first = tick(storage)
    write_group(storage.landing_dir_path, "group2", ARRIVAL.replace(hour=9))
    quiet, arrival = tick(storage, first.cursor).run_requests
    assert quiet.partition_key is None
    assert (quiet.tags[RANGE_START], quiet.tags[RANGE_END]) == (
        "2025-03-04-06:00",
        "2025-03-04-08:00",
    )
    assert arrival.partition_key == "2025-03-04-09:00"


def test_a_group_whose_files_still_change_waits_until_they_are_still(storage):
    now = datetime.now(UTC)
    folder = write_group(storage.landing_dir_path, "group1", now)  # a file being written now
    waiting = tick(storage)
    assert waiting.run_requests == []
    assert "group1 changed 0s ago: ingested once its files have been still for 60s" in (
        waiting.skip_reason.skip_message
    )
    for path in folder.iterdir():  # the copy ended a minute ago
        stamp = (now - timedelta(seconds=SETTLE_S + 1)).timestamp()
        os.utime(path, (stamp, stamp))
    (request,) = tick(storage, waiting.cursor).run_requests
    assert request.tags["retail/groups"] == "group1"


def test_a_group_with_a_file_cut_short_waits_longer_then_is_ingested(storage):
    """A file without its final line break may be a writer paused mid-record: its group waits
    `unterminated_wait_s`, not SETTLE_S, says so, and is ingested after it."""
    still_a_while = datetime.now(UTC) - timedelta(seconds=SETTLE_S + 5)
    cut = HEADERS["sales_transactions"].encode() + b"\n2023-5-20,1,c1"
    write_group(storage.landing_dir_path, "group1", still_a_while, cut)
    waiting = tick(storage)
    assert waiting.run_requests == []
    message = waiting.skip_reason.skip_message
    assert "sales_transactions_SS_raw_1.csv does not end with a line break" in message
    assert f"ingested once still for {storage.unterminated_wait_s}s" in message
    shorter = StorageResource(**{**storage.model_dump(), "unterminated_wait_s": SETTLE_S})
    (request,) = tick(shorter, waiting.cursor).run_requests
    assert request.tags["retail/groups"] == "group1"
