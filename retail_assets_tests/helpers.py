"""Small builders shared by the tests: source groups written like the source system does."""

import csv
import hashlib
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from retail_assets.assets.catalog import DWH_DB, LAKE_DB
from retail_assets.definitions import batch_definitions, defs
from retail_assets.orchestration.jobs import RANGE_END, RANGE_START
from retail_assets.storage.failpoints import ENV as FAILPOINT
from retail_assets.storage.landing import FILE_KINDS
from retail_assets.storage.resource import StorageResource

REPLAY_START = "2025-09-01-22:00"  # where a scenario's `retail replay` starts by default

# The session's shared replay (conftest's `demo`): 3 groups from 22:00, so it crosses
# midnight; group2 re-delivers group1.
WAREHOUSE_START = datetime(2025, 1, 31, 22, tzinfo=UTC)
WAREHOUSE_GROUPS = 3
DEMO_ARGS = ("--groups", str(WAREHOUSE_GROUPS), "--rows", "150", "--seed", "21",
             "--start", f"{WAREHOUSE_START:%Y-%m-%d-%H}:00")  # fmt: skip

HEADERS = {
    "branches": "branch_id,location,establish_date,class",
    "sales_agents": "sales_person_id,name,hire_date",
    "sales_transactions": (
        "transaction_date,transaction_id,customer_id,customer_fname,cusomter_lname,"
        "cusomter_email,sales_agent_id,branch_id,product_id,product_name,product_category,"
        "offer_1,offer_2,offer_3,offer_4,offer_5,units,unit_price,is_online,payment_method,"
        "shipping_address"
    ),
}


def write_group(
    landing: Path,
    name: str,
    arrival: datetime,
    transactions: bytes | None = None,
    skip: tuple[str, ...] = (),
    bodies: dict[str, bytes] | None = None,
) -> Path:
    """A group folder with the three files (minus `skip`), stamped as arrived at `arrival`;
    header-only files but for `transactions` and `bodies` (kind → bytes)."""
    folder = landing / name
    folder.mkdir(parents=True)
    number = name.removeprefix("group")
    for kind in FILE_KINDS:
        if kind in skip:
            continue
        body = HEADERS[kind].encode() + b"\n"
        if kind == "sales_transactions" and transactions is not None:
            body = transactions
        body = (bodies or {}).get(kind, body)
        path = folder / f"{kind}_SS_raw_{number}.csv"
        path.write_bytes(body)
        os.utime(path, (arrival.timestamp(), arrival.timestamp()))
    return folder


def valid_rows(path: Path) -> list[dict]:
    """The transactions of a source file that docs/rules.md §2 keeps, cleaned — computed here with
    the csv module and Decimal, independently of the Spark transforms under test."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            offers = [k for k in range(1, 6) if row[f"offer_{k}"] == "True"]
            try:
                date = datetime.strptime(row["transaction_date"], "%Y-%m-%d").date()
            except ValueError:
                continue
            units = int(row["units"])
            if len(offers) > 1 or units <= 0:
                continue
            discount = 5 * offers[0] if offers else 0
            total = (units * Decimal(row["unit_price"]) * (100 - discount) / 100).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
            email = re.match(r"[^@]+@[a-z0-9.-]+", row["cusomter_email"].strip().lower())[0]
            email = email[:-1] if email.endswith(".comm") else email
            address = (row.get("shipping_address") or "").rsplit("/", 3)
            city, state, postal = address[1:] if len(address) == 4 else (None, None, None)
            rows.append({
                "transaction_id": row["transaction_id"], "line": line, "date": date,
                "online": row["is_online"] == "yes", "customer_id": row["customer_id"],
                "first_name": row["customer_fname"].strip().title(),
                "last_name": row["cusomter_lname"].strip().title(), "email": email,
                "product_id": row["product_id"], "branch_id": row["branch_id"] or None,
                "sales_agent_id": row["sales_agent_id"] or None, "units": units,
                "product_name": row["product_name"], "category": row["product_category"],
                "offer": offers[0] if offers else None, "total": total, "city": city,
                "state": state, "postal": postal,
            })  # fmt: skip
    return rows


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def make_storage(base, suffix):
    return StorageResource(
        landing_dir=str(base / "landing"),
        lake_root=str(base / "lake"),
        exports_dir=str(base / "exports"),
        lake_database=f"t_lake_{suffix}",
        warehouse_database=f"t_dwh_{suffix}",
    )


def run(settings, storage, keys, one_run=False):
    """The hourly job for each hour (or for all of them in one run), asserting every check;
    the runs' results."""
    job = batch_definitions(storage, settings).resolve_job_def("hourly_pipeline")
    runs = (
        [{"tags": {RANGE_START: keys[0], RANGE_END: keys[-1]}}]
        if one_run else [{"partition_key": key} for key in keys]
    )  # fmt: skip
    results = []
    with DagsterInstance.ephemeral() as instance:
        for arguments in runs:
            result = job.execute_in_process(instance=instance, **arguments)
            checks = [
                e.event_specific_data
                for e in result.all_events
                if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
            ]
            assert checks and all(c.passed for c in checks), [c for c in checks if not c.passed]
            results.append(result)
    return results


def file_of(group, kind):
    (path,) = group.glob(f"{kind}*.csv")
    return path


def first_arrivals(source):
    """Per group: the valid rows whose transaction_id arrives for the first time."""
    seen, per_group = set(), []
    for group in source:
        new = [r for r in valid_rows(file_of(group, "sales_transactions"))
               if r["transaction_id"] not in seen]  # fmt: skip
        seen |= {r["transaction_id"] for r in new}
        per_group.append(new)
    return per_group


def last_attributes(rows, key, fields):
    """The attributes of each id from its last row in file order (as of one group)."""
    return {r[key]: tuple(r[f] for f in fields) for r in sorted(rows, key=lambda r: r["line"])}


def declared_columns(asset: str) -> list[tuple[str, str]]:
    """(name, type) of the columns the code location declares for `asset` (the UI's schema)."""
    schema = defs().resolve_asset_graph().get(AssetKey(asset)).metadata["dagster/column_schema"]
    return [(column.name, column.type) for column in schema.columns]


def written_columns(spark, storage: StorageResource, asset: str) -> list[tuple[str, str]]:
    """(name, type) of the columns of `asset`'s table as Spark wrote it, in `storage`'s
    databases (the tests' own, where the code location names the default ones)."""
    database, table = (
        defs().resolve_asset_graph().get(AssetKey(asset)).metadata["dagster/table_name"].split(".")
    )
    ours = {StorageResource.model_fields[field].default: getattr(storage, field)
            for field in (LAKE_DB, DWH_DB)}  # fmt: skip
    schema = spark.table(f"{ours[database]}.{table}").schema
    return [(field.name, field.dataType.simpleString()) for field in schema]


def messages(error) -> str:
    """A Dagster error's message and its causes' (a step's own error is the cause of the
    RetryRequestedFromPolicy of its STEP_UP_FOR_RETRY event)."""
    return error.message + (messages(error.cause) if error.cause else "")


def environment(root: Path, name: str) -> dict[str, str]:
    """This process's environment with a scenario's own folders (under `root`), databases
    (`<name>_lake`, `<name>_dwh`) and Dagster instance, for a `retail` process."""
    return {
        **os.environ,
        "RETAIL_LANDING_DIR": str(root / "landing"),
        "RETAIL_LAKE_ROOT": str(root / "lake"),
        "RETAIL_EXPORTS_DIR": str(root / "exports"),
        "DAGSTER_HOME": str(root / "dagster"),
        "RETAIL_LAKE_DB": f"{name}_lake",
        "RETAIL_DWH_DB": f"{name}_dwh",
    }


def demo_environment(settings) -> dict[str, str]:
    """`environment` of the shared replay: the session home's default folders and databases."""
    return {
        **os.environ,
        "RETAIL_LANDING_DIR": str(settings.landing_dir),
        "RETAIL_LAKE_ROOT": str(settings.lake_root),
        "RETAIL_EXPORTS_DIR": str(settings.exports_dir),
        "RETAIL_LAKE_DB": StorageResource.model_fields[LAKE_DB].default,
        "RETAIL_DWH_DB": StorageResource.model_fields[DWH_DB].default,
    }


def retail(*args: str, env: dict | None = None, timeout: float = 900,
           program: str = "retail_assets.cli", venv: Path | None = None):  # fmt: skip
    """The `retail` command (or another `python -m` program, such as dagster) as a user runs
    it, in a process of its own; with `venv`, that install's `retail`, run from its folder."""
    command = [venv / "bin" / "retail"] if venv else [sys.executable, "-m", program]
    return subprocess.run([*command, *args], env=env or dict(os.environ), cwd=venv,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def replay(
    env: dict, source: Path, failpoint: str | None = None, start: str = REPLAY_START, *more: str
) -> subprocess.Popen:
    """`retail replay` of `source` (its options `more`) as its own process, RETAIL_FAILPOINT
    armed when given."""
    command = [sys.executable, "-m", "retail_assets.cli", "replay", str(source), "--start", start,
               *more]  # fmt: skip
    env = {**env, FAILPOINT: failpoint} if failpoint else env
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def finish(process: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:  # a test that fails never leaves its replay running
            process.kill()
            process.wait()
    return process.returncode, output


def wait_for_pause(path: Path, process: subprocess.Popen, timeout: float = 600) -> None:
    """Until `process` paused at its failpoint (RETAIL_FAILPOINT_PAUSE's file appeared)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"the run ended first:\n{process.communicate()[0][-3000:]}"
        assert time.monotonic() < deadline, f"{path} did not appear in {timeout}s"
        time.sleep(0.2)


EMPTY = hashlib.sha256(b"").hexdigest()  # a table created, its hour not yet published


def contents(spark, env: dict) -> dict[str, str]:
    """Every table and view of the scenario's databases → a hash of its sorted rows (the
    scenario's own folder, in source_file paths, written as <root>)."""
    root, found = str(Path(env["RETAIL_LAKE_ROOT"]).parent), {}
    for database in (env["RETAIL_LAKE_DB"], env["RETAIL_DWH_DB"]):
        if not spark.catalog.databaseExists(database):
            continue
        for table in spark.catalog.listTables(database):
            frame = spark.table(f"{database}.{table.name}")
            rows = sorted(repr(tuple(row)).replace(root, "<root>") for row in frame.collect())
            found[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return found


def exports(env: dict) -> dict[str, bytes]:
    """Every file a partner could see in the exports folder (hidden temporary files too)."""
    folder = Path(env["RETAIL_EXPORTS_DIR"])
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def install_debian_packages(packages: list[str], why: str) -> None:
    """Debian packages tests need, installed here when missing (CI never skips such a test).
    PostgreSQL is installed without Debian's system cluster: the cluster profile runs its own,
    and the tests leave no process they did not start by PID."""
    if os.geteuid() != 0:
        pytest.fail(f"{why}: sudo apt-get install -y {' '.join(packages)}")
    if "postgresql" in packages:
        settings = Path("/etc/postgresql-common/createcluster.d")
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "retail-no-main-cluster.conf").write_text("create_main_cluster = false\n")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
