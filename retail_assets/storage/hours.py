"""Hourly partition keys and the lake folders they name. No Dagster here: Spark's Python
workers (the stream's foreachBatch) import the table helpers, and Dagster costs them 0.5 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

KEY_FORMAT = "%Y-%m-%d-%H:%M"


def hour_of(key: str) -> datetime:
    return datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)


def key_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime("%Y-%m-%d-%H:00")


def previous_key(key: str) -> str:
    return key_of(hour_of(key) - timedelta(hours=1))


def hour_values(key: str) -> dict[str, str]:
    """The lake/table partition values of an hourly key: ingest_date and ingest_hour."""
    hour = hour_of(key)
    return {"ingest_date": hour.strftime("%Y-%m-%d"), "ingest_hour": hour.strftime("%H")}


def hour_path(key: str) -> str:
    """`ingest_date=YYYY-MM-DD/ingest_hour=HH`, the folder of an hour in every lake dataset."""
    return "/".join(f"{name}={value}" for name, value in hour_values(key).items())
