"""Dagster's SQLite storage for the embedded profile, its event log on engines that are kept.

Dagster's SQLite event log makes a new SQLAlchemy engine, and a new SQLite connection, for
every read and write: ~600 in an hourly run. Each new engine compiles its SQL again, and each
close of a file's last connection checkpoints and removes its write-ahead log. That was
~1.2 s of the ~2 s Dagster itself spends on a small hour (bench p1's no-op run of the hourly
graph: 1.93 s → 0.75 s). Here each database file keeps its engine and one open connection:
the index, and the newest run files (older ones are closed). The files, their schema and
SQLite's locking are Dagster's own, so the UI and the daemon, in their own processes, read
what a run writes as before.

The instance's dagster.yaml names `EmbeddedStorage` (settings.prepare_dagster_home writes it);
the cluster profile keeps everything in PostgreSQL instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from sqlalchemy.engine import Connection, Engine

OPEN_FILES = 8  # the index and the newest run files; a run writes to its own and the index


class KeptEngineEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage with one engine per database file, kept between calls."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock, self._engine(shard).connect() as conn, conn.begin():
            yield conn

    def _engine(self, shard: str) -> Engine:
        """The file's engine (made, and its schema created, on first use); called under the
        storage's lock, which Dagster holds for each connection's whole use."""
        if shard in self._engines:
            self._engines.move_to_end(shard)
            return self._engines[shard]
        engine = create_engine(
            self.conn_string_for_shard(shard),
            pool_size=1,  # kept open; a second one (creating the schema inspects it) is closed
            max_overflow=4,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        )
        if shard not in self._initialized_dbs:
            self._initdb(engine)
            self._initialized_dbs.add(shard)
        self._engines[shard] = engine
        while len(self._engines) > OPEN_FILES:
            self._engines.popitem(last=False)[1].dispose()
        return engine

    def _close_all(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()

    def wipe(self) -> None:
        self._close_all()  # wipe deletes the run files: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_all()


class EmbeddedStorage(DagsterSqliteStorage):
    """Dagster's `storage: sqlite` (same folders under `base_dir`), with the kept-engine event
    log."""

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data)
        self._event_log_storage = KeptEngineEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> EmbeddedStorage:
        return cls.from_local(inst_data=inst_data, **config_value)
