"""StorageResource: the one place that knows the layout of the lake, the warehouse and the
exports. Assets, sensors, the replay and the benchmarks ask it; none of them builds a path.

    <lake>/raw/ingest_date=…/ingest_hour=…/<kind>_<date>_<hour>_<group>.csv  + _manifest.json
    <lake>/raw/_groups/<group>.json                  which hour a group was ingested into
    <lake>/<layer>/<name>/ingest_date=…/ingest_hour=…  retail_lake.<layer>_<name>
    <lake>/warehouse/<name>/ingest_date=…/…            retail_dwh.<name>
    <lake>/warehouse/<fact>/hours|months/…              retail_dwh.<fact> (storage/compacted.py)
    <lake>/<layer>/<name>_seen/slot=…                   an index of values seen (storage/seen.py)
    <lake>/streaming/<name>/…                          retail_dwh.<name>, Delta (storage/stream.py)
    <lake>/streaming/_checkpoints/<topic>/<name>       a streaming query's checkpoint
    <exports>/b2b/sales_agent_product_units_<day>.csv  the partner's daily file
"""

from __future__ import annotations

from pathlib import Path

from dagster import ConfigurableResource

from retail_assets.settings import Settings, env_fields
from retail_assets.storage.checkpoints import Commit, last_commit
from retail_assets.storage.compacted import CompactedTable
from retail_assets.storage.hours import hour_of, hour_path, key_at
from retail_assets.storage.lake import CopiedFile, Lake
from retail_assets.storage.landing import LandedGroup
from retail_assets.storage.seen import SeenIndex
from retail_assets.storage.stream import StreamTable
from retail_assets.storage.tables import HourlyTable

RAW = "raw"
MANIFEST = "_manifest.json"


def raw_rows(files: list[tuple[str, dict]]) -> int:
    """Data lines of raw files (as `StorageResource.raw_files` lists them), counted when they
    were copied in."""
    return sum(entry["rows"] for _, entry in files)


class StorageResource(ConfigurableResource):
    """Where files are: the landing folder (local), the lake (local, hdfs:// or s3a://), exports.
    The project's runs use it as orchestration/runs.CoordinatedStorage (one writer at a time)."""

    landing_dir: str
    lake_root: str
    exports_dir: str
    lake_database: str = "retail_lake"  # silver, quarantine
    warehouse_database: str = "retail_dwh"  # dimensions, facts, insights, app events
    # How long the landing sensor waits for a group with a file that does not end with a line
    # break (its writer may be paused) before ingesting it, where other groups wait SETTLE_S.
    unterminated_wait_s: int = 900

    @property
    def lake(self) -> Lake:
        return Lake(self.lake_root)

    @property
    def exports(self) -> Lake:
        """The exports folder (a partner's drop folder may be remote too)."""
        return Lake(self.exports_dir)

    @property
    def landing_dir_path(self) -> Path:
        return Path(self.landing_dir)

    # ------------------------------------------------------------------ raw files

    def raw_hour_uri(self, key: str) -> str:
        return self.lake.uri(RAW, hour_path(key))

    def first_raw_hour(self) -> str | None:
        """The earliest hour the lake holds raw files of (None: none yet)."""
        days = [name for name in self.lake.list_names(RAW) if name.startswith("ingest_date=")]
        for day in days:  # in order; a day folder without hours is skipped
            hours = [n for n in self.lake.list_names(RAW, day) if n.startswith("ingest_hour=")]
            if hours:
                return key_at(day.split("=", 1)[1], hours[0].split("=", 1)[1])
        return None

    def raw_manifest(self, key: str) -> dict:
        """What hour `key` holds: its groups and, per file, name, size, sha256, rows, header."""
        manifest = self.lake.read_json(RAW, hour_path(key), MANIFEST)
        return manifest or {"partition": key, "groups": []}

    def write_raw_manifest(self, manifest: dict) -> None:
        self.lake.write_json(manifest, RAW, hour_path(manifest["partition"]), MANIFEST)

    def copy_into_raw(
        self, source: Path, key: str, kind: str, group: str
    ) -> tuple[str, CopiedFile]:
        """Copy a landed file into hour `key`, named by kind, date, hour and group."""
        lake_file = f"{kind}_{hour_of(key):%Y-%m-%d_%H}_{group}.csv"
        return lake_file, self.lake.copy_in(source, RAW, hour_path(key), lake_file)

    def raw_files(self, key: str, kind: str) -> list[tuple[str, dict]]:
        """(uri, manifest entry) of every file of one kind ingested in hour `key`; the entry
        also says the day the group was first copied in (`received_on`, ISO date)."""
        return [
            (self.lake.uri(RAW, hour_path(key), group["files"][kind]["lake_file"]),
             {**group["files"][kind], "received_on": group["ingested_at"][:10]})
            for group in self.raw_manifest(key)["groups"]
        ]  # fmt: skip

    def group_marker(self, group: str) -> dict | None:
        """Which hour group `group` was ingested into (None: never ingested)."""
        return self.lake.read_json(RAW, "_groups", f"{group}.json")

    def ingested_as(self, group: LandedGroup) -> dict | None:
        """The marker of the ingestion a landed group is: its own, or, for a folder renamed
        after landing (the same files, so the same fingerprint), the one of its first name."""
        return self.group_marker(group.name) or self.lake.read_json(
            RAW, "_fingerprints", f"{group.fingerprint}.json"
        )

    def write_group_marker(self, marker: dict) -> None:
        """Markers by group name and by fingerprint: one read answers either question."""
        self.lake.write_json(marker, RAW, "_groups", f"{marker['group']}.json")
        self.lake.write_json(marker, RAW, "_fingerprints", f"{marker['fingerprint']}.json")

    # ------------------------------------------------------------------ tables

    def lake_table(self, layer: str, name: str) -> HourlyTable:
        """retail_lake.<layer>_<name> at lake/<layer>/<name> (silver, quarantine)."""
        return HourlyTable(f"{self.lake_database}.{layer}_{name}", self.lake.uri(layer, name))

    def warehouse_table(self, name: str) -> HourlyTable:
        """retail_dwh.<name> at lake/warehouse/<name>."""
        return HourlyTable(f"{self.warehouse_database}.{name}", self.lake.uri("warehouse", name))

    def fact_table(self, name: str) -> CompactedTable:
        """A fact: by ingest hour; closed months compacted by transaction month, so date
        filters skip folders (one file per hour before that, sorted by date)."""
        location = self.lake.uri("warehouse", name)
        return CompactedTable(f"{self.warehouse_database}.{name}", location,
                              sub="transaction_month", sort_by="transaction_date")  # fmt: skip

    def seen_transaction_ids(self) -> SeenIndex:
        """Every transaction id that arrived, by hour: what first arrivals are checked against."""
        return self._seen("silver", self.lake_table("silver", "new_transactions"), "transaction_id")

    def seen_dates(self) -> SeenIndex:
        """Every date of dim_date, by the hour it was added: what a new date is checked against."""
        return self._seen("warehouse", self.warehouse_table("dim_date"), "date")

    def _seen(self, layer: str, source: HourlyTable, column: str) -> SeenIndex:
        database, table = source.name.split(".")
        name = table.removeprefix(f"{layer}_")
        return SeenIndex(f"{database}.{table}_seen", self.lake.uri(layer, f"{name}_seen"),
                         source, column)  # fmt: skip

    # ------------------------------------------------------------------ streaming

    def stream_table(self, name: str) -> StreamTable:
        """A streaming table (app_events or app_event_counts): Delta, by day."""
        return StreamTable(f"{self.warehouse_database}.{name}", self.lake.uri("streaming", name),
                           STREAM_DAYS[name])  # fmt: skip

    def delta_tables(self) -> dict[str, str]:
        """The Delta tables the maintenance job keeps, with the column naming their day."""
        return {self.stream_table(name).name: day for name, day in STREAM_DAYS.items()}

    def checkpoint_uri(self, topic: str, query: str) -> str:
        return self.lake.uri(*_checkpoint(topic, query))

    def last_commit(self, topic: str, query: str) -> Commit | None:
        """The newest batch query `query` committed on `topic` (None: none yet)."""
        return last_commit(self.lake, *_checkpoint(topic, query))

    # ------------------------------------------------------------------ exports

    def b2b_file(self, day: str) -> tuple[str, str]:
        """The B2B file of ingest day `day` (YYYY-MM-DD), inside the exports folder."""
        return "b2b", f"sales_agent_product_units_{day}.csv"


STREAM_DAYS = {  # each streaming table's partition column: the day of its rows
    "app_events": "event_date",
    "app_event_counts": "window_date",
}


def _checkpoint(topic: str, query: str) -> tuple[str, ...]:
    """Per topic: offsets of one topic mean nothing in another."""
    return ("streaming", "_checkpoints", topic, query)


def storage_resource(settings: Settings) -> StorageResource:
    return StorageResource(
        landing_dir=str(settings.landing_dir),
        lake_root=settings.lake_root,
        exports_dir=settings.exports_dir,
        **env_fields(
            lake_database="RETAIL_LAKE_DB",
            warehouse_database="RETAIL_DWH_DB",
            unterminated_wait_s="RETAIL_UNTERMINATED_WAIT_S",
        ),
    )
