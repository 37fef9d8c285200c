"""What every benchmark shares: its own home and servers (started, then stopped by PID), the
project's runs on tables of its own, and a results record with the date and the machine.

A benchmark module calls `main(name, measure)`; `measure(bench, quick)` returns its figures,
with `headlines`: the ratios and facts the issue sets goals for.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
START = datetime(2025, 8, 1, 0, tzinfo=UTC)  # the first replayed arrival hour


def machine() -> dict:
    memory = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()[1]
    return {"node": platform.node(), "cpus": os.cpu_count(), "memory_gb": int(memory) // 2**20,
            "python": platform.python_version()}  # fmt: skip


def headline(name: str, value, goal: str, met: bool | None) -> dict:
    """One figure of the table: its value, the goal and whether it is met (None: no goal)."""
    return {"name": name, "value": value, "goal": goal, "met": met}


class Bench:
    """A benchmark's own RETAIL_HOME, ports and Dagster instance (nothing shared with the
    user's home); set before the project's modules read their settings."""

    def __init__(self, name: str):
        self.name = name
        self.home = Path(tempfile.mkdtemp(prefix=f"retail_bench_{name}_"))
        from retail_assets.servers.supervisor import free_port

        os.environ.update(
            RETAIL_HOME=str(self.home),
            RETAIL_SPARK_PORT=str(free_port()),
            RETAIL_METASTORE_PORT=str(free_port()),
            RETAIL_KAFKA_PORT=str(free_port()),
            DAGSTER_HOME=str(self.home / "dagster"),
            RETAIL_PARTITIONS_START=f"{START:%Y-%m-%d}-00:00",  # benchmarks replay from START
        )
        from retail_assets.settings import Settings, prepare_dagster_home

        self.settings = Settings.from_env()
        prepare_dagster_home(self.settings)

    @contextmanager
    def servers(self, kafka: bool = False) -> Iterator[None]:
        from retail_assets.servers.kafka_broker import LocalBroker

        broker = LocalBroker.of(self.settings)
        try:
            self.spark_server.up()
            if kafka:
                broker.up()
            yield
        finally:
            if kafka:
                broker.down()
            self.spark_server.down()

    @property
    def spark_server(self):
        from retail_assets.servers.spark_connect import LocalSparkServer

        return LocalSparkServer.of(self.settings)

    def spark_peak_rss_mb(self) -> int:
        """The Spark server's peak resident memory so far (the JVM: spark-submit execs java)."""
        pid = self.spark_server.server.pid()
        status = Path(f"/proc/{pid}/status").read_text()
        peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(peak.split()[1]) // 1024

    def spark_log_size(self) -> int:
        return self.spark_server.server.log_file.stat().st_size

    def log_marks(self) -> dict[Path, int]:
        """Where the Spark server's and its metastore's logs end now."""
        server = self.spark_server
        logs = (server.server.log_file, server.metastore.server.log_file)
        return {log: log.stat().st_size for log in logs}

    def log_problems(self, marks: dict[Path, int]) -> dict[str, int]:
        """What the servers logged after `marks`: metastore fallbacks (a partition filter the
        metastore could not serve, so every partition was listed) and errors."""
        lines = []
        for path, since in marks.items():
            with open(path, "rb") as log:
                log.seek(since)
                lines += log.read().decode(errors="replace").splitlines()
        return {
            "metastore_fallbacks": sum("Falling back" in line or "42ZA0" in line for line in lines),
            "errors": sum(" ERROR " in line for line in lines),
        }

    def storage(self, name: str):
        """Landing, lake, exports and databases of their own, on the shared server."""
        from retail_assets.storage.resource import StorageResource

        base = self.home / name
        return StorageResource(landing_dir=str(base / "landing"), lake_root=str(base / "lake"),
                               exports_dir=str(base / "exports"), lake_database=f"{name}_lake",
                               warehouse_database=f"{name}_dwh")  # fmt: skip

    def generate(self, name: str, groups: int, rows: int, seed: int) -> list[Path]:
        from retail_assets.dev.generator import generate

        return generate(self.home / "source" / name, groups, rows, seed)

    def run_hours(self, storage, groups: list[Path], one_run: bool = False) -> list:
        """Land `groups` as arrivals of consecutive hours from START and run the hourly job:
        each hour on its own, or all of them in one run (a single-run backfill)."""
        from dagster import DagsterInstance

        from retail_assets.definitions import batch_definitions
        from retail_assets.dev.replay import land, run_hour
        from retail_assets.storage.hours import key_of

        definitions, instance = batch_definitions(storage), DagsterInstance.get()
        keys = [key_of(START + timedelta(hours=i)) for i in range(len(groups))]
        for index, group in enumerate(groups):
            land(group, Path(storage.landing_dir), START + timedelta(hours=index))
        if one_run:
            runs = [run_hour(keys[0], instance, definitions, last=keys[-1])]
        else:
            runs = []
            for key in keys:
                runs.append(run_hour(key, instance, definitions))
                say(f"  {key}: {runs[-1].seconds:.1f}s")
        failed = [run for run in runs if not run.ok]
        if failed:
            raise RuntimeError("\n".join(failed[0].lines))
        return runs

    def second_hour(self, name: str, rows: int):
        """A home `name` whose first hour has run and whose second group has landed: the
        hourly job, the instance and the second hour's key, to run that small hour (again)."""
        from dagster import DagsterInstance

        from retail_assets.definitions import batch_definitions
        from retail_assets.dev.replay import land
        from retail_assets.storage.hours import key_of

        storage = self.storage(name)
        first, second = self.generate(name, 2, rows, seed=3)
        self.run_hours(storage, [first])
        land(second, storage.landing_dir_path, START + timedelta(hours=1))
        job = batch_definitions(storage).resolve_job_def("hourly_pipeline")
        return job, DagsterInstance.get(), key_of(START + timedelta(hours=1))


def say(line: str) -> None:
    print(line, flush=True)


def main(name: str, measure: Callable[[Bench, bool], dict]) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    parser.add_argument("--quick", action="store_true", help="small sizes (the CI-like run)")
    parser.add_argument("--out", type=Path, help="results file (default: bench/results/…)")
    args = parser.parse_args()
    bench = Bench(name)
    try:
        figures = measure(bench, args.quick)
    finally:
        shutil.rmtree(bench.home, ignore_errors=True)
    record = {"benchmark": name, "mode": "quick" if args.quick else "full",
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              **figures}  # fmt: skip
    out = args.out or RESULTS / f"{name}_{datetime.now(UTC):%Y%m%dT%H%M%S}_{platform.node()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str))
    say(f"results: {out}")
