"""The cluster profile's Spark standalone cluster (docs/profiles.md): a master and workers
started from the pyspark distribution, to which the Spark Connect server submits its work.

Each worker offers one core, so the Connect server's executors (one per worker) do the work
in their own JVMs, as on a real cluster; the driver only plans. Finished applications' work
folders and executor logs are cleaned by the workers themselves, so they do not grow with
history.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pyspark

from retail_assets.servers.supervisor import LocalServer, ServiceError
from retail_assets.settings import Settings

START_TIMEOUT_S = 90
WORKERS = 2
WORKER_CORES = 1
WORKER_MEMORY = "3g"  # one executor of EXECUTOR_MEMORY plus headroom
EXECUTOR_MEMORY = "2g"
# A finished application's folder on a worker (executor logs, fetched files) is removed
# after a day; the check runs every half hour.
WORKER_OPTS = ("-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.interval=1800 "
               "-Dspark.worker.cleanup.appDataTtl=86400")  # fmt: skip


def spark_class(main_class: str, *args: str) -> list[str]:
    return [str(Path(pyspark.__file__).parent / "bin" / "spark-class"), main_class, *args]


def spark_env(home: str) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_WORKER_OPTS": WORKER_OPTS,
        "SPARK_LOCAL_DIRS": str(Path(home) / "spark-tmp"),
    }


class SparkMaster(LocalServer):
    """The standalone master: it hands the workers' cores to the Connect server's app."""

    NAME = "spark-master"
    CMDLINE_MARKER = "org.apache.spark.deploy.master.Master"

    @classmethod
    def of(cls, settings: Settings) -> SparkMaster:
        return cls(home=str(settings.home), port=settings.cluster_port)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    @property
    def web_port(self) -> int:
        return self.port + 1000

    def up(self) -> dict:
        cmd = spark_class(self.CMDLINE_MARKER, "--host", "127.0.0.1", "--port", str(self.port),
                          "--webui-port", str(self.web_port))  # fmt: skip
        return self.start(cmd, spark_env(self.home), START_TIMEOUT_S)

    def state(self) -> dict:
        """The master's own JSON status: workers, cores in use, applications."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.web_port}/json/", timeout=5) as r:
            return json.load(r)

    def wait_for_workers(self, count: int, timeout: float = START_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if state.get("aliveworkers", 0) >= count:
                return state
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{count} Spark workers did not register with {self.url} within "
                    f"{timeout:.0f}s (alive: {state.get('aliveworkers')}); see RETAIL_HOME/run"
                )
            time.sleep(0.5)


class SparkWorker(LocalServer):
    """One worker of one core; its executors run the tasks."""

    NAME = "spark-worker"
    CMDLINE_MARKER = "org.apache.spark.deploy.worker.Worker"

    index: int
    master_url: str

    @classmethod
    def all_of(cls, settings: Settings) -> list[SparkWorker]:
        master = SparkMaster.of(settings)
        return [
            cls(home=str(settings.home), port=master.port + i, index=i, master_url=master.url)
            for i in range(1, WORKERS + 1)
        ]

    @property
    def name(self) -> str:
        return f"{self.NAME}-{self.index}"

    def up(self) -> dict:
        work_dir = Path(self.home) / "spark-cluster" / self.name
        work_dir.mkdir(parents=True, exist_ok=True)
        cmd = spark_class(
            self.CMDLINE_MARKER,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--webui-port", str(self.port + 1000),
            "--cores", str(WORKER_CORES), "--memory", WORKER_MEMORY,
            "--work-dir", str(work_dir),
            self.master_url,
        )  # fmt: skip
        return self.start(cmd, spark_env(self.home), START_TIMEOUT_S)
