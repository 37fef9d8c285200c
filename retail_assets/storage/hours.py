"""Hourly partition keys and the lake folders they name (no Dagster: storage/__init__.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# How a partition key spells an hour (UTC), e.g. 2025-06-02-00:00: Dagster's hourly keys, and
# what the command line accepts.
KEY_FORMAT = "%Y-%m-%d-%H:00"


def hour_of(key: str) -> datetime:
    return datetime.strptime(key, KEY_FORMAT).replace(tzinfo=UTC)


def key_of(hour: datetime) -> str:
    return hour.astimezone(UTC).strftime(KEY_FORMAT)


def key_at(day: str, hour: str) -> str:
    """The key of hour `hour` (HH) of day `day` (YYYY-MM-DD)."""
    return key_of(datetime.strptime(f"{day} {hour}", "%Y-%m-%d %H").replace(tzinfo=UTC))


def previous_key(key: str) -> str:
    return key_of(hour_of(key) - timedelta(hours=1))


def hour_values(key: str) -> dict[str, str]:
    """The lake/table partition values of an hourly key: ingest_date and ingest_hour."""
    hour = hour_of(key)
    return {"ingest_date": hour.strftime("%Y-%m-%d"), "ingest_hour": hour.strftime("%H")}


def hour_path(key: str) -> str:
    """`ingest_date=YYYY-MM-DD/ingest_hour=HH`, the folder of an hour in every lake dataset."""
    return "/".join(f"{name}={value}" for name, value in hour_values(key).items())


# A month is compacted (storage/seen.py, storage/compacted.py) once the hours written are
# this many days past its end, so re-runs of the last days (the common case) stay hour-sized.
GRACE_DAYS = 3


def month_of(key: str) -> str:
    """YYYY-MM of an hourly key."""
    return key[:7]


def closed_before(key: str) -> str:
    """The first month not yet closed at hour `key`: earlier months may be compacted."""
    return month_of(key_of(hour_of(key) - timedelta(days=GRACE_DAYS)))


def month_range(month: str) -> tuple[str, str]:
    """The first day of `month` (YYYY-MM) and of the month after it."""
    year, number = (int(part) for part in month.split("-"))
    after = f"{year + number // 12:04d}-{number % 12 + 1:02d}"
    return f"{month}-01", f"{after}-01"
