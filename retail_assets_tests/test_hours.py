"""Hour keys (storage/hours.py), the one place their format is written."""

from datetime import UTC, datetime

from retail_assets.storage.hours import hour_path, hour_values, key_at, key_of, previous_key


def test_keys_name_utc_hours_in_dagsters_format():
    assert key_of(datetime(2025, 6, 1, 23, 59, tzinfo=UTC)) == "2025-06-01-23:00"
    assert key_at("2025-06-01", "07") == "2025-06-01-07:00"
    assert hour_values("2025-06-01-07:00") == {"ingest_date": "2025-06-01", "ingest_hour": "07"}
    assert hour_path("2025-06-01-07:00") == "ingest_date=2025-06-01/ingest_hour=07"


def test_the_previous_hour_crosses_midnight_and_months():
    assert previous_key("2025-06-01-00:00") == "2025-05-31-23:00"
    assert previous_key("2025-01-01-00:00") == "2024-12-31-23:00"
