"""Where the hourly partitions start: the home's data, recorded once and only moved earlier, or
the user's RETAIL_PARTITIONS_START; and the demo's recent hours."""

from datetime import UTC, datetime

import pytest

from retail_assets.dev.replay import recent_start
from retail_assets.settings import PARTITIONS_START_FILE, Settings, record_partitions_start
from retail_assets_tests.helpers import make_storage


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("RETAIL_PARTITIONS_START")
    monkeypatch.setenv("RETAIL_HOME", str(tmp_path))
    return tmp_path


def recorded(home) -> str:
    return (home / PARTITIONS_START_FILE).read_text().strip()


def test_a_new_home_starts_today_and_moves_only_earlier(home):
    today = f"{datetime.now(UTC):%Y-%m-%d}-00:00"
    assert Settings.from_env().partitions_start == today  # not recorded yet
    assert record_partitions_start(Settings.from_env()) == today
    assert recorded(home) == today
    assert record_partitions_start(Settings.from_env(), "2025-06-01-22:00") == "2025-06-01-22:00"
    assert record_partitions_start(Settings.from_env(), "2025-07-01-00:00") == "2025-06-01-22:00"
    assert Settings.from_env().partitions_start == recorded(home) == "2025-06-01-22:00"


def test_a_start_the_user_set_is_never_written_and_an_older_hour_is_an_error(home, monkeypatch):
    monkeypatch.setenv("RETAIL_PARTITIONS_START", "2025-06-01-00:00")
    assert record_partitions_start(Settings.from_env(), "2025-06-03-00:00") == "2025-06-01-00:00"
    with pytest.raises(ValueError, match="RETAIL_PARTITIONS_START=2025-06-01-00:00"):
        record_partitions_start(Settings.from_env(), "2025-05-31-23:00")
    assert not (home / PARTITIONS_START_FILE).exists()


def test_the_lake_s_first_raw_hour_is_the_earliest_day_and_hour(tmp_path):
    storage = make_storage(tmp_path, "first")
    assert storage.first_raw_hour() is None
    for folder in ("ingest_date=2025-06-02/ingest_hour=01", "ingest_date=2025-06-01/ingest_hour=23",
                   "ingest_date=2025-06-01/ingest_hour=22", "ingest_date=2025-05-31"):  # fmt: skip
        (tmp_path / "lake" / "raw" / folder).mkdir(parents=True)
    assert storage.first_raw_hour() == "2025-06-01-22:00"


@pytest.mark.parametrize(
    ("now", "start"),
    [
        (datetime(2026, 12, 2, 18, 30, tzinfo=UTC), "2026-12-01-22:00"),
        (datetime(2026, 12, 2, 3, 10, tzinfo=UTC), "2026-12-01-22:00"),  # the sixth at 03:00
        (datetime(2026, 12, 2, 2, 59, tzinfo=UTC), "2026-11-30-22:00"),
        (datetime(2026, 12, 2, 23, 0, tzinfo=UTC), "2026-12-01-22:00"),
    ],
)
def test_the_demo_replays_recent_hours_across_midnight_none_in_the_future(now, start):
    assert recent_start(6, now) == start
