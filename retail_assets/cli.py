"""`retail`: the command line for people and CI (servers, data, replays, SQL, the demo)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import json
import os
import signal
import sys
from pathlib import Path

from retail_assets.assets.retries import one_line
from retail_assets.dev.replay import ReplayError
from retail_assets.servers.supervisor import ServiceError
from retail_assets.settings import (
    CHECKOUT_DIR,
    PACKAGE_DIR,
    PROFILES,
    Settings,
    load_secrets,
    prepare_dagster_home,
    record_partitions_start,
)
from retail_assets.storage.hours import hour_of, key_of
from retail_assets.storage.resource import storage_resource


def serve(server, action: str) -> int:
    """up / down / status of a local server (LocalSparkServer, LocalBroker)."""
    if action == "up":
        print(json.dumps(server.up()))
    elif action == "down":
        print("stopped" if server.down() else "not running")
    else:
        status = server.status()
        print(json.dumps(status))
        return 0 if status["running"] else 3
    return 0


def cmd_spark(args, settings: Settings) -> int:
    from retail_assets.servers.spark_connect import LocalSparkServer

    return serve(LocalSparkServer.of(settings), args.action)


def cmd_kafka(args, settings: Settings) -> int:
    from retail_assets.servers.kafka_broker import LocalBroker

    return serve(LocalBroker.of(settings), args.action)


def cmd_stack(args, settings: Settings) -> int:
    """Every local server of the profile: up in order, down in reverse, or their status."""
    from retail_assets.servers import stack

    if args.action == "up":
        settings = stack.choose(settings, args.profile)
        for status in stack.up(settings):
            print(json.dumps(status))
        return 0
    if args.profile and args.profile != settings.profile:
        print(f"retail: this home runs the {settings.profile} profile", file=sys.stderr)
        return 2
    if args.action == "down":
        print(json.dumps({"stopped": stack.down(settings)}))
        return 0
    report = stack.status(settings)
    print(json.dumps(report))
    return 0 if report["running"] else 3


def cmd_produce(args, settings: Settings) -> int:
    from retail_assets.resources import kafka_resource
    from retail_assets.streaming.events import events, produce

    extra = dict(field.split("=", 1) for field in args.extra_field)
    kafka = kafka_resource(settings).process_config_and_initialize()  # starts a local broker
    topic = args.topic or kafka.topic
    try:
        report = produce(kafka.client_config(), topic, events(args.count, args.seed, extra=extra),
                         rate=args.rate)  # fmt: skip
    except KeyboardInterrupt:
        return 130
    print(json.dumps({"topic": topic, **report}))
    return 0 if report["failed"] == 0 else 1


def cmd_stream(args, settings: Settings) -> int:
    """One pass of the stream through Dagster (recorded in the instance, like the UI's runs)."""
    from retail_assets.definitions import defs
    from retail_assets.dev.replay import QUIET, open_instance
    from retail_assets.servers import kafka_broker, spark_connect

    spark_connect.ensure(settings)
    kafka_broker.ensure(settings)
    job = defs().resolve_job_def("app_events_job")

    cap = args.max_per_batch  # None: the asset's own default
    config = {} if cap is None else {"max_per_batch": cap}
    run_config = {"ops": {"app_events": {"config": config}}, **QUIET}
    result = job.execute_in_process(
        instance=open_instance(), raise_on_error=False, run_config=run_config
    )
    for materialization in result.asset_materializations_for_node("app_events"):
        print(json.dumps({k: v.value for k, v in materialization.metadata.items()
                          if k != "latest_events"}, default=str))  # fmt: skip
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(event.event_specific_data.error.message.strip(), file=sys.stderr)
    return 0 if result.success else 1


def cmd_jars(args, settings: Settings) -> int:
    """Fetch every pinned jar set (jvm/pom.xml) now, so that later starts work offline."""
    from retail_assets.servers import jars

    jars.fetch(settings.home)
    print(jars.jars_dir(settings.home))
    return 0


def cmd_generate(args, settings: Settings) -> int:
    from retail_assets.dev.generator import generate

    for folder in generate(args.out, args.groups, args.rows, args.seed):
        print(folder)
    return 0


def cmd_replay(args, settings: Settings) -> int:
    from retail_assets.dev.replay import replay
    from retail_assets.servers import spark_connect

    spark_connect.ensure(settings)  # server problems surface before any run starts
    names = args.groups.split(",") if args.groups else None
    complete = replay(
        Path(args.source_dir),
        args.start,
        names,
        skip_incomplete=args.skip_incomplete,
        rerun=args.rerun,
    )
    return 0 if complete else 1


UI_PORT = 3000  # `retail ui`'s default


def cmd_demo(args, settings: Settings) -> int:
    from retail_assets.dev.generator import generate
    from retail_assets.dev.replay import recent_start, replay
    from retail_assets.servers import spark_connect

    spark_connect.ensure(settings)  # server problems surface before any run starts
    source = settings.home / "demo_source"
    generate(source, args.groups, args.rows, args.seed)
    print(f"generated {args.groups} groups of {args.rows} rows in {source}")
    start = args.start or recent_start(args.groups, dt.datetime.now(dt.UTC))
    if not replay(source, start, None):
        return 1
    warehouse = storage_resource(settings).warehouse_database
    print(f"next: retail ui    (the Dagster UI on http://127.0.0.1:{UI_PORT})")
    print(f'      retail sql "SELECT * FROM {warehouse}.fact_branch_sales LIMIT 5"')
    print("      retail spark down    (stops the Spark server and metastore it left running)")
    return 0


def _jsonable(value):
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def cmd_sql(args, settings: Settings) -> int:
    from retail_assets.resources import spark_session

    frame = spark_session(settings).sql(args.query)
    if args.format == "json":
        rows = [row.asDict(recursive=True) for row in frame.collect()]
        print(json.dumps(rows, default=_jsonable))
    elif args.format == "csv":
        frame.toPandas().to_csv(sys.stdout, index=False)
    else:
        print(frame.toPandas().to_string(index=False))
    return 0


def cmd_ui(args, settings: Settings) -> int:
    """dagster dev (webserver + daemon) until Ctrl-C / SIGTERM; then it stops, and so do the
    embedded servers its runs started (a server running before `retail ui` is left running)."""
    import subprocess

    workspace = PACKAGE_DIR / "workspace.yaml"  # the checkout's, shipped in the package
    dagster = str(Path(sys.executable).with_name("dagster"))  # the venv's, PATH or not
    command = [dagster, "dev", "-w", str(workspace), "-h", args.host, "-p", str(args.port)]
    from retail_assets.servers import stack

    started_here = [server for server in stack.servers(settings) if not server.status()["running"]]
    stopping, children = [], []

    def stop(signum, _frame):
        """Ctrl-C / SIGTERM: dagster dev shuts down cleanly; a second one kills it."""
        stopping.append(signum)
        for child in children:
            child.send_signal(signal.SIGINT if len(stopping) == 1 else signal.SIGKILL)

    # Handled here before the child starts, so it starts with the default dispositions (a
    # shell's background job ignores SIGINT, and an ignored signal is inherited); in its own
    # session, so the terminal's Ctrl-C reaches it once, through here.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)
    child = subprocess.Popen(command, start_new_session=True)
    children.append(child)
    if stopping:  # a signal came while it was starting
        child.send_signal(signal.SIGINT)
    try:
        code = child.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):  # what dagster dev left of its group
            os.killpg(child.pid, signal.SIGKILL)
        for server in started_here:
            if server.status()["running"]:
                server.down()
    return 0 if stopping else code


def cmd_bench(args, settings: Settings) -> int:
    """bench/ of this checkout; each benchmark has its own home and servers (not `settings`)."""
    if not (CHECKOUT_DIR / "bench" / "run.py").exists():
        print(f"retail: no bench/ in {CHECKOUT_DIR} (benchmarks run from a checkout)",
              file=sys.stderr)  # fmt: skip
        return 2
    import subprocess

    flags = ["--quick"] * args.quick + ["--json"] * args.json
    flags += ["--only", args.only] if args.only else []
    # Run from the checkout in its own process: the installed package never imports bench/.
    return subprocess.call([sys.executable, "-m", "bench.run", *flags], cwd=CHECKOUT_DIR)


class WithDefaults(argparse.HelpFormatter):
    """Every option's help says its default, where it has one and does not say it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in help:
            return help
        return f"{help} (default: %(default)s)"


def hour_key(value: str) -> str:
    """An hour as partition keys spell it, checked before anything runs."""
    try:
        return key_of(hour_of(value))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an hour: write YYYY-MM-DD-HH:00 (UTC), e.g. 2025-06-02-00:00"
        ) from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="retail", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="on an error, print the full trace, not one line")  # fmt: skip

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        found = sub.add_parser(name, help=help, description=help, parents=[common],
                               formatter_class=WithDefaults)  # fmt: skip
        found.set_defaults(func=func)
        return found

    for name, func, what in [
        ("spark", cmd_spark, "the local Spark Connect server"),
        ("kafka", cmd_kafka, "the local Apache Kafka broker (KRaft)"),
    ]:
        command(name, func, what).add_argument(
            "action", choices=["up", "down", "status"], help="start, stop, or report it"
        )

    stack = command("stack", cmd_stack, "every local server of a profile (docs/profiles.md)")
    stack.add_argument("action", choices=["up", "down", "status"], help="start, stop, or report")
    stack.add_argument("--profile", choices=PROFILES,
                       help="up: the profile this home runs from now on (default: the one "
                            "recorded, else RETAIL_PROFILE, else embedded)")  # fmt: skip

    command("jars", cmd_jars, "fetch the pinned JVM jars (jvm/pom.xml) with mvn, once")

    prod = command("produce", cmd_produce, "send app-log events to Kafka")
    amount = prod.add_mutually_exclusive_group(required=True)
    amount.add_argument("--count", type=int, help="send N events, then stop")
    amount.add_argument("--rate", type=float, help="events per second until Ctrl-C")
    prod.add_argument("--seed", type=int, default=7, help="the same seed sends the same events")
    prod.add_argument("--topic", help="default: RETAIL_KAFKA_TOPIC or app_logs")
    prod.add_argument("--extra-field", action="append", default=[], metavar="K=V",
                      help="add a field no schema knows to every event (repeatable)")  # fmt: skip

    stream = command("stream", cmd_stream, "one pass of the stream: Kafka → app_events")
    stream.add_argument("--max-per-batch", type=int,
                        help="records one micro-batch reads at most, all partitions together "
                             "(default: the app_events asset's own)")  # fmt: skip

    def source_shape(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--groups", type=int, default=6, help="how many groups")
        parser.add_argument("--rows", type=int, default=1500, help="transactions per group")
        parser.add_argument("--seed", type=int, default=42, help="the same seed, the same bytes")

    gen = command("generate", cmd_generate, "write source groups in the exact source format")
    gen.add_argument("--out", required=True, help="folder to write the group folders into")
    source_shape(gen)

    rep = command("replay", cmd_replay, "land groups as hourly arrivals and run each hour")
    rep.add_argument("source_dir", help="folder of group folders (group1, group2, …)")
    rep.add_argument("--start", required=True, type=hour_key,
                     help="first arrival hour, YYYY-MM-DD-HH:00 (UTC)")  # fmt: skip
    rep.add_argument("--groups", help="comma-separated group folder names (default: all)")
    rep.add_argument("--skip-incomplete", action="store_true",
                     help="go on with the complete groups and list the incomplete ones, "
                          "instead of refusing them all")  # fmt: skip
    rep.add_argument("--rerun", action="store_true",
                     help="run again the hours whose last run ended well (else they are "
                          "skipped: the same command after a crash finishes the rest)")  # fmt: skip

    demo = command("demo", cmd_demo, "generate groups and replay them")
    source_shape(demo)
    demo.add_argument("--start", type=hour_key,
                      help="first arrival hour, YYYY-MM-DD-HH:00 (UTC) (default: the latest "
                           "22:00 from which every group has arrived by now)")  # fmt: skip

    sql = command("sql", cmd_sql, "run Spark SQL on the warehouse")
    sql.add_argument("query", help="one Spark SQL statement, e.g. 'SHOW TABLES IN retail_dwh'")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table",
                     help="how the rows are printed")  # fmt: skip

    bench = command("bench", cmd_bench, "the benchmarks in bench/ (ratios, results file)")
    bench.add_argument("--quick", action="store_true", help="small sizes, under ~10 minutes")
    bench.add_argument("--json", action="store_true", help="end with one line of JSON figures")
    bench.add_argument("--only", help="comma-separated benchmark prefixes, e.g. p1,p5")

    ui = command("ui", cmd_ui, "the Dagster UI and daemon (dagster dev) on this project")
    ui.add_argument("--host", default="127.0.0.1", help="address the webserver listens on")
    ui.add_argument("--port", type=int, default=UI_PORT, help="port of the webserver")
    return root


PYSPARK_LOG = "run/pyspark-client.log"  # under RETAIL_HOME
# pyspark's loggers that print JSON lines to stderr: every error with a query context, and
# the Connect client's gRPC errors (the client's logger, off by default, is on in Dagster runs).
PYSPARK_LOGGERS = (
    "SQLQueryContextLogger",
    "DataFrameQueryContextLogger",
    "pyspark.sql.connect.logging",
)


def pyspark_logs_to(path: Path) -> None:
    """pyspark's own log lines go to `path`, not the console: the console tells each event in
    the project's one line (an error, a retry of a step whose server went away)."""
    import logging

    from pyspark.logger import PySparkLogger

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, delay=True)
    for name in PYSPARK_LOGGERS:
        logger = PySparkLogger.getLogger(name)
        for console in list(logger.handlers):
            logger.removeHandler(console)
        logger.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    pyspark_logs_to(settings.home / PYSPARK_LOG)
    load_secrets(settings.home)
    prepare_dagster_home(settings)
    try:  # a home made before the start was recorded has older hours: they stay partitions
        record_partitions_start(settings, storage_resource(settings).first_raw_hour())
    except ValueError as error:
        print(f"retail: warning: the lake's {error}", file=sys.stderr)
    try:
        return args.func(args, settings)
    except (ServiceError, ReplayError) as error:
        print(f"retail: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.verbose:
            raise
        print(f"retail: {one_line(error)}  (--verbose: the full trace)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
