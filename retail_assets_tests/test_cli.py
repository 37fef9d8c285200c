"""The `retail` command end to end: the demo replay through Dagster, SQL, and server errors."""

import argparse
import csv
import json
import os
import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retail_assets.cli import PYSPARK_LOG
from retail_assets.servers import java
from retail_assets.servers.spark_connect import LocalSparkServer
from retail_assets.servers.supervisor import ServiceError, free_port
from retail_assets_tests.helpers import WAREHOUSE_GROUPS as GROUPS
from retail_assets_tests.helpers import WAREHOUSE_START, retail, write_group

DEMO_START = f"{WAREHOUSE_START:%Y-%m-%d-%H}:00"  # the shared replay's hours (conftest's `demo`)
SILVER_BY_HOUR = (
    "SELECT ingest_date, ingest_hour, count(*) AS n FROM retail_lake.silver_transactions "
    "WHERE ingest_date IN ('2025-01-31', '2025-02-01') GROUP BY 1, 2 ORDER BY 1, 2"
)


def sql_json(query):
    result = retail("sql", query, "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_demo_replays_its_hours_with_passing_checks(demo):
    assert f"[{GROUPS}/{GROUPS}] 2025-02-01-00:00  group3" in demo
    assert demo.count("check silver_transactions.raw_rows_reconcile: passed") == GROUPS
    assert demo.count("check fact_branch_sales.raw_rows_reconcile: passed") == GROUPS
    assert demo.count("check insight_top_products.totals_agree_with_the_facts: passed") == GROUPS
    assert (
        demo.count("check b2b_daily_csv.units_equal_offline_units_loaded_that_day: passed")
        == GROUPS
    )
    assert "FAILED" not in demo


def test_demo_exports_one_b2b_file_per_ingest_day(demo, settings):
    files = sorted((Path(settings.exports_dir) / "b2b").iterdir())
    assert [f.name for f in files] == [
        "sales_agent_product_units_2025-01-31.csv",
        "sales_agent_product_units_2025-02-01.csv",
    ]
    units = sql_json(
        "SELECT ingest_date, sum(units) AS units FROM retail_dwh.fact_branch_sales "
        "WHERE ingest_date IN ('2025-01-31', '2025-02-01') GROUP BY 1 ORDER BY 1"
    )
    for file, day in zip(files, units, strict=True):
        rows = list(csv.DictReader(file.open(newline="")))
        assert sum(int(r["total_sold_units"]) for r in rows) == day["units"]
        assert rows == sorted(rows, key=lambda r: (r["sales_agent_name"], r["product_name"]))


def test_demo_ends_with_what_it_made_and_what_to_run_next(demo, settings):
    """The summary's figures are the tables' (and raw = facts + duplicates + quarantined)."""
    *_, made, first_file, second_file, ui, sql, down = demo.strip().splitlines()
    days = "ingest_date IN ('2025-01-31', '2025-02-01')"
    (counts,) = sql_json(
        f"SELECT (SELECT count(*) FROM retail_dwh.fact_branch_sales WHERE {days}) AS branch, "
        f"(SELECT count(*) FROM retail_dwh.fact_online_sales WHERE {days}) AS online, "
        f"(SELECT count(*) FROM retail_lake.quarantine_transactions WHERE {days}) AS quarantined, "
        f"(SELECT count(*) FROM retail_lake.silver_transactions WHERE {days}) "
        f"- (SELECT count(*) FROM retail_lake.silver_new_transactions WHERE {days}) AS duplicates"
    )
    facts = counts["branch"] + counts["online"]
    raw = facts + counts["duplicates"] + counts["quarantined"]
    assert made == (
        f"{GROUPS} hour(s) run: {raw:,} transaction rows in, {counts['quarantined']:,} "
        f"quarantined, {counts['duplicates']:,} duplicates dropped, {facts:,} into the facts "
        f"(fact_branch_sales {counts['branch']:,}, fact_online_sales {counts['online']:,})"
    )
    files = sorted((Path(settings.exports_dir) / "b2b").iterdir())
    assert [first_file, second_file] == [f"B2B file: {file}" for file in files]
    assert ui.startswith("next: retail ui ") and "http://127.0.0.1:3000" in ui
    assert sql.split(maxsplit=2)[2].startswith('"SELECT * FROM retail_dwh.fact_branch_sales')
    assert down.split()[:3] == ["retail", "spark", "down"]


def test_sql_reads_the_warehouse_and_the_redelivery_added_nothing(demo):
    rows = sql_json(
        "SELECT ingest_hour, count(*) AS n FROM retail_dwh.fact_branch_sales "
        "WHERE ingest_date = '2025-01-31' GROUP BY 1 ORDER BY 1"
    )
    hours = {r["ingest_hour"]: r["n"] for r in rows}
    assert "23" not in hours  # group2 re-delivered group1: zero fact rows
    assert hours["22"] > 30
    tables = {r["tableName"] for r in sql_json("SHOW TABLES IN retail_dwh")}
    assert {"dim_customer", "dim_date", "fact_branch_sales", "fact_online_sales"} <= tables


def test_sql_json_reads_the_silver_table(demo):
    rows = sql_json(SILVER_BY_HOUR)
    assert [(r["ingest_date"], r["ingest_hour"]) for r in rows] == [
        ("2025-01-31", "22"),
        ("2025-01-31", "23"),
        ("2025-02-01", "00"),
    ]
    assert all(r["n"] > 120 for r in rows)
    # group2 is the source re-delivering group1: silver keeps both deliveries.
    assert rows[0]["n"] == rows[1]["n"]


def test_a_query_error_is_one_console_line_and_pyspark_logs_to_its_file(spark, settings):
    """pyspark prints a JSON line to stderr for every error with a query context; the console
    gets the project's one line, the JSON goes to run/pyspark-client.log."""
    result = retail("sql", "SELECT 1 / 0 AS ratio")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("retail: ") and "DIVIDE_BY_ZERO" in line, result.stderr
    assert "DIVIDE_BY_ZERO" in (settings.home / PYSPARK_LOG).read_text()


def test_replaying_an_hour_again_leaves_identical_silver(demo, settings):
    query = (
        "SELECT * FROM retail_lake.silver_transactions "
        "WHERE ingest_date = '2025-02-01' AND ingest_hour = '00' ORDER BY transaction_id"
    )
    before = sql_json(query)
    source = settings.home / "demo_source"
    result = retail("replay", str(source), "--start", DEMO_START, "--groups", "group3", "--rerun")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2025-02-01-00:00  group3" in result.stdout
    assert sql_json(query) == before


def test_replay_fails_loudly_on_a_missing_group(demo, settings):
    result = retail(
        "replay", str(settings.home / "demo_source"), "--start", DEMO_START, "--groups", "group99"
    )
    assert result.returncode != 0
    assert "no such group" in result.stderr


def test_spark_status_reports_the_running_server(spark):
    result = retail("spark", "status")
    assert result.returncode == 0
    status = json.loads(result.stdout)
    assert status["running"] is True and status["metastore"]["running"] is True


def test_a_classic_session_shares_the_metastore_with_the_connect_server(spark):
    """With RETAIL_SPARK_MASTER, a process builds its own Spark: it is a client of the same
    metastore service as the Connect server (an embedded Derby would admit one of them)."""
    spark.sql("CREATE DATABASE IF NOT EXISTS made_on_connect")
    classic = {**os.environ, "RETAIL_SPARK_MASTER": "local[1]"}
    classic.pop("SPARK_CONNECT_MODE_ENABLED", None)  # set by pyspark in this Connect process
    result = retail("sql", "SHOW DATABASES", "--format", "json", env=classic)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"namespace": "made_on_connect"} in json.loads(result.stdout)


def test_port_taken_by_another_process_is_a_clear_error(settings, tmp_path):
    with socket.socket() as squatter:
        port = free_port()
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        other = replace(settings, home=tmp_path, spark_port=port, metastore_port=free_port())
        server = LocalSparkServer.of(other)
        with pytest.raises(ServiceError, match=f"port 127.0.0.1:{port} is taken"):
            server.up()
        assert server.metastore.status()["pid"] is None  # not started for a server that can't


def test_missing_java_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServiceError, match="Java 17 is required"):
        java.java_major_version()


def test_bench_names_the_benchmarks_when_only_matches_none():
    """`retail bench` runs bench/ from the checkout in its own process; a wrong --only is an
    error that lists the names, not an empty results file."""
    result = retail("bench", "--only", "p9")
    assert result.returncode == 2
    assert "names no benchmark" in result.stderr and "p5_stream_vs_plain_consume" in result.stderr


def test_a_mistyped_query_is_one_line_and_verbose_gives_the_trace(spark):
    result = retail("sql", "SELEC 1")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PARSE_SYNTAX_ERROR" in lines[0] and "--verbose" in lines[0], lines
    verbose = retail("sql", "SELEC 1", "--verbose")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_a_start_that_is_not_an_hour_is_a_usage_error(tmp_path):
    result = retail("replay", str(tmp_path), "--start", "2025-06-02")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'2025-06-02' is not an hour: write YYYY-MM-DD-HH:00" in result.stderr


@pytest.mark.parametrize("command", ["replay", "demo", "generate", "sql", "produce", "stream"])
def test_every_option_has_help_and_its_default(command):
    from retail_assets.cli import parser

    (commands,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for action in commands.choices[command]._actions:
        assert action.help, (command, action.dest)
    shown = commands.choices[command].format_help()  # what `retail COMMAND --help` prints
    for action in commands.choices[command]._actions:
        if action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"default: {action.default}" in " ".join(shown.split()), (command, action.dest)


def test_skip_incomplete_replays_the_complete_groups_and_names_the_rest(tmp_path):
    from retail_assets.dev.replay import ReplayError, source_groups

    write_group(tmp_path, "group1", datetime.now(UTC))
    write_group(tmp_path, "group2", datetime.now(UTC), skip=("sales_transactions",))
    with pytest.raises(ReplayError, match="incomplete source groups: group2.*--skip-incomplete"):
        source_groups(tmp_path, None)
    said = []
    assert source_groups(tmp_path, None, skip_incomplete=True, say=said.append) == [
        tmp_path / "group1"
    ]
    assert said and "group2" in said[0]


def test_a_group_another_replay_landed_meanwhile_is_compared_not_an_error(tmp_path, monkeypatch):
    """Two replays of one source at once: both copy the group to a staging folder and the
    second rename finds the first one's group in place."""
    from retail_assets.dev import replay

    arrival = datetime(2025, 9, 1, 22, tzinfo=UTC)
    group = write_group(tmp_path / "source", "group1", arrival)
    landing, copy = tmp_path / "landing", replay.shutil.copytree

    def copy_while_the_other_lands(source, staging, **options):
        copy(source, landing / "group1")  # the other replay's rename comes first
        return copy(source, staging, **options)

    monkeypatch.setattr(replay.shutil, "copytree", copy_while_the_other_lands)
    assert replay.land(group, landing, arrival) == landing / "group1"
    assert sorted(p.name for p in landing.iterdir()) == ["group1"]  # no staging folder left
