"""The Dagster UI journey in a real browser: `retail ui` (webserver + daemon) driven through
Debian's Chromium with Playwright, as a user runs the platform.

The UI gets its own landing folder, lake, exports, databases, topic and Dagster instance; it
shares the session's Spark server and broker (their pid files are under the session's
RETAIL_HOME, so `retail ui` finds them running and leaves them running). Every step saves a
screenshot (to $RETAIL_UI_SCREENSHOTS if set, else the test's folder).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from retail_assets.dev.generator import generate
from retail_assets.dev.replay import land
from retail_assets.servers.kafka_broker import LocalBroker
from retail_assets.servers.supervisor import alive, children, free_port
from retail_assets.settings import Settings
from retail_assets.storage.hours import key_of
from retail_assets_tests.helpers import environment, retail

pytestmark = [pytest.mark.e2e, pytest.mark.debian("chromium")]  # installed when missing

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1600, "height": 1000}
ALL_ASSETS = {
    "lake": ["raw_files", "silver_transactions", "new_transactions"],
    "warehouse": ["dim_customer", "dim_product", "dim_branch", "dim_sales_agent", "dim_date",
                  "fact_branch_sales", "fact_online_sales"],
    "outputs": ["insight_top_products", "insight_top_offers", "insight_offers_per_product",
                "insight_lowest_online_cities", "b2b_daily_csv"],
    "streaming": ["app_events"],
}  # fmt: skip
DONE = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]


def wait_for(condition: Callable, timeout: float, what: str, every: float = 1.0):
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


class UI:
    """One `retail ui` process on a free port, with the environment it runs in."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root, self.env, self.port = root, env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "ui.log"
        command = [sys.executable, "-m", "retail_assets.cli", "ui", "--port", str(self.port)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)  # fmt: skip

    def wait_ready(self, timeout: float = 240) -> None:
        def answers():
            assert self.process.poll() is None, f"retail ui exited:\n{self.tail()}"
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(answers, timeout, f"the webserver on {self.url}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 90) -> int:
        """Stop `retail ui` by its PID as a user would; kill it if it does not stop in time.
        Killed (SIGKILL: a failed test's cleanup), it cannot stop `dagster dev`, which runs in
        a session of its own: that process group is killed too, or it would run on through
        the rest of the session (seen: 58 minutes, its daemon ticking sensors)."""
        groups = children(self.process.pid)  # dagster dev's group
        killing = signum == signal.SIGKILL
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            killing = True
            self.process.kill()
            self.process.wait()
            message = f"retail ui did not stop within {timeout}s:\n{self.tail()}"
            raise AssertionError(message) from None
        finally:
            for group in groups if killing else []:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(group, signal.SIGKILL)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    @functools.cached_property
    def _instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(self.env["DAGSTER_HOME"])

    def instance(self) -> DagsterInstance:
        """The UI's instance, opened once (its storage is read afresh on every query)."""
        return self._instance


def ui_environment(root: Path, current_hour: datetime) -> dict[str, str]:
    return {
        **environment(root, "ui"),
        "RETAIL_KAFKA_TOPIC": "ui_app_logs",
        # Half a day of partitions: the picker offers the hours a live pipeline has.
        "RETAIL_PARTITIONS_START": key_of(current_hour - timedelta(hours=12)),
    }


@pytest.fixture(scope="module")
def journey(spark, kafka, debian_packages, tmp_path_factory):
    """`retail ui` on the UI's own folders and a browser page on it; both stopped at the end.
    A group is dropped in the landing folder and events are produced first: the daemon's first
    sensor ticks find them, and their runs go on while the first steps look around (test_2 and
    test_6 wait for them)."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("ui")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    shots = Path(os.environ.get("RETAIL_UI_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    env = ui_environment(root, now)
    (group,) = generate(root / "source", groups=1, rows=120, seed=5)
    land(group, Path(env["RETAIL_LANDING_DIR"]), now - timedelta(hours=1))
    produce = retail("produce", "--count", "500", env=env, timeout=120)
    assert produce.returncode == 0, produce.stderr
    ui = UI(root, env)
    try:
        ui.wait_ready()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox"]
            )
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(30_000)
            # Dagster's first-visit dialog, whenever it shows up.
            page.add_locator_handler(
                page.get_by_role("button", name="Skip"), lambda button: button.click()
            )
            try:
                yield Journey(ui, page, shots, now)
            finally:
                browser.close()
    finally:
        ui.stop()


class Journey:
    """The steps' shared state: the UI, the page, where screenshots go, the current hour."""

    def __init__(self, ui: UI, page, shots: Path, now: datetime):
        self.ui, self.page, self.shots, self.now = ui, page, shots, now

    def open(self, path: str) -> None:
        self.page.goto(self.ui.url + path)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=self.shots / f"{name}.png")

    def hour(self, back: int) -> str:
        return key_of(self.now - timedelta(hours=back))

    def finished_runs(self, filters: RunsFilter, count: int, timeout: float = 600) -> list:
        """The runs matching `filters` once `count` of them have finished; all must succeed."""

        def finished():
            records = self.ui.instance().get_run_records(filters)
            done = [r for r in records if r.dagster_run.status in DONE]
            return done if len(done) >= count else None

        runs = [r.dagster_run for r in wait_for(finished, timeout, f"{count} run(s) {filters}", 3)]
        failed = [run.run_id for run in runs if run.status != DagsterRunStatus.SUCCESS]
        assert not failed, f"runs {failed} did not succeed:\n{self.failure_of(failed[0])}"
        return runs

    def failure_of(self, run_id: str) -> str:
        events = self.ui.instance().all_logs(run_id)
        return "\n".join(e.message or "" for e in events if e.is_dagster_event
                         and e.dagster_event.is_failure)[-4000:]  # fmt: skip


def show_graph(journey: Journey, group: str, shot: str, assets: list[str]) -> None:
    """A group's lineage showing `assets` (a tall graph draws only the nodes in view), once
    their status has loaded."""
    see = expect()
    journey.open(f"/locations/retail_assets/asset-groups/{group}/lineage")
    for asset in assets:
        see(journey.page.get_by_text(asset, exact=True).first).to_be_visible()
    see(journey.page.get_by_text("Loading…")).to_have_count(0)
    journey.shot(shot)


def show_run(journey: Journey, run_id: str, shot: str) -> None:
    """The run's page, with its status and its event log loaded."""
    see = expect()
    journey.open(f"/runs/{run_id}")
    see(journey.page.get_by_text("Success").first).to_be_visible()
    see(journey.page.get_by_text("Loading run logs…")).to_be_hidden()
    journey.shot(shot)


def expect():
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # a page of the UI can take a while on 2 busy cores
    return expect


def test_1_the_asset_graph_shows_every_asset_of_the_four_groups(journey):
    page, see = journey.page, expect()
    journey.open("/asset-groups")
    see(page.get_by_text("Global asset lineage")).to_be_visible()
    for group, assets in ALL_ASSETS.items():
        see(page.get_by_text(group, exact=True).last).to_be_visible()
        see(page.get_by_text(str(len(assets)), exact=True).first).to_be_visible()
    show_graph(journey, "lake", "1_graph", ALL_ASSETS["lake"])
    page.set_viewport_size({"width": 1600, "height": 2400})  # the catalog lists rows in view
    journey.open("/assets")
    for asset in sum(ALL_ASSETS.values(), []):
        see(page.get_by_text(asset, exact=True).first).to_be_visible()
    page.set_viewport_size(VIEWPORT)
    journey.open("/locations")
    see(page.get_by_text("retail_assets").first).to_be_visible()
    see(page.get_by_text("Loaded").first).to_be_visible()
    assert page.get_by_text("Error", exact=False).count() == 0, "the code location has an error"


def test_2_the_landing_sensor_ingests_a_dropped_group_under_the_daemon(journey):
    (run,) = journey.finished_runs(
        RunsFilter(job_name="hourly_pipeline", tags={"dagster/sensor_name": "landing_sensor"}), 1
    )
    assert run.tags["dagster/partition"] == journey.hour(1)
    show_run(journey, run.run_id, "2_sensor_run")


def test_3_one_partition_of_one_asset_is_materialized_from_the_partition_picker(journey):
    page, see, hour = journey.page, expect(), journey.hour(6)
    journey.open("/assets/raw_files")
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog")
    picker = dialog.get_by_placeholder("No matching partitions")
    picker.fill(hour)
    picker.press("Enter")
    see(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    journey.shot("3_partition_picker")
    dialog.get_by_role("button", name="Launch 1 run").click()
    (run,) = journey.finished_runs(RunsFilter(tags={"dagster/partition": hour}), 1)
    assert hour in journey.ui.instance().get_materialized_partitions(AssetKey("raw_files"))
    journey.open("/assets/raw_files?view=partitions")
    see(page.get_by_text(hour).first).to_be_visible()
    journey.shot("3_partition_materialized")
    assert run.job_name == "__ASSET_JOB"


def test_4_a_backfill_of_two_hours_runs_as_one_run(journey):
    page, see = journey.page, expect()
    first, last = journey.hour(4), journey.hour(3)
    journey.open("/locations/retail_assets/jobs/hourly_pipeline")
    page.get_by_role("button", name="Materialize all…").first.click()
    dialog = page.get_by_role("dialog")
    picker = dialog.get_by_placeholder("No matching partitions")
    picker.fill(f"[{first}...{last}]")
    picker.press("Enter")
    see(dialog.get_by_text("2 partitions", exact=True)).to_be_visible()
    dialog.get_by_role("button", name="Launch backfill").click()
    (backfill,) = wait_for(journey.ui.instance().get_backfills, 30, "the backfill")
    # Its one run finished well; the daemon marks the backfill itself complete on its next
    # 30 s tick, which is Dagster's bookkeeping, not this project's, and not waited for.
    runs = journey.finished_runs(RunsFilter(tags={"dagster/backfill": backfill.backfill_id}), 1)
    assert len(runs) == 1 and runs[0].tags["dagster/asset_partition_range_start"] == first
    journey.open(f"/runs/b/{backfill.backfill_id}?tab=runs")
    see(page.get_by_text(runs[0].run_id[:8]).first).to_be_visible()
    journey.shot("4_backfill")
    show_run(journey, runs[0].run_id, "4_backfill_run")
    done = journey.ui.instance().get_materialized_partitions(AssetKey("fact_branch_sales"))
    assert {journey.hour(back) for back in (4, 3)} <= done
    journey.open("/assets/fact_branch_sales?view=partitions")
    see(page.get_by_text(f"Materialized ({len(done)})")).to_be_visible()
    journey.shot("4_backfill_partitions")


def test_5_an_insight_shows_its_top_rows_chart_and_passed_checks(journey, spark):
    page, see = journey.page, expect()
    top = spark.sql(
        "SELECT product_id FROM ui_dwh.insight_top_products WHERE as_of_hour = "
        "(SELECT max(as_of_hour) FROM ui_dwh.insight_top_products) AND rank = 1"
    ).collect()[0]["product_id"]
    # The newest hour's snapshot (the backfill's earlier hours were materialized later).
    journey.open(f"/assets/insight_top_products?view=partitions&partition={journey.hour(1)}")
    see(page.get_by_text("top_rows").first).to_be_visible()
    see(page.get_by_text(top, exact=True).first).to_be_visible()
    journey.shot("5_insight")
    page.get_by_text("[Show Markdown]").first.click()  # the chart, rendered in a dialog
    chart = page.get_by_role("dialog").locator("img[src^='data:image/svg+xml']")
    see(chart).to_be_visible()
    assert chart.evaluate("image => image.complete && image.naturalWidth") > 0  # drawn, not broken
    journey.shot("5_insight_chart")
    page.keyboard.press("Escape")
    journey.open("/assets/insight_top_products?view=checks")
    for check in ("ranks_follow_the_totals", "totals_agree_with_the_facts"):
        see(page.get_by_text(check).first).to_be_visible()
    see(page.get_by_text("Passed").first).to_be_visible()
    journey.shot("5_insight_checks")


def test_6_produced_events_start_the_stream_through_the_kafka_sensor(journey):
    (run,) = journey.finished_runs(
        RunsFilter(job_name="app_events_job", tags={"dagster/sensor_name": "kafka_sensor"}), 1
    )
    show_run(journey, run.run_id, "6_stream_run")


def test_7_the_graph_after_the_journey_shows_the_materialized_warehouse(journey):
    show_graph(journey, "warehouse", "7_graph", ["fact_branch_sales", "dim_product"])
    expect()(journey.page.get_by_text("2 / 2 Passed").first).to_be_visible()


def test_stopping_retail_ui_stops_what_it_started(settings, tmp_path):
    """SIGINT to `retail ui` ends dagster dev and its processes, and the embedded broker started
    while it ran (as a run's Kafka resource starts it)."""
    env = {
        **os.environ,
        "RETAIL_HOME": str(tmp_path / "home"),
        "RETAIL_SPARK_REMOTE": f"sc://127.0.0.1:{settings.spark_port}",  # the session's
        "RETAIL_KAFKA_PORT": str(free_port()),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
    }
    ui = UI(tmp_path, env)
    try:
        try:
            ui.wait_ready()
            up = subprocess.run([sys.executable, "-m", "retail_assets.cli", "kafka", "up"],
                                env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
            assert up.returncode == 0, up.stderr
            broker = json.loads(up.stdout)["pid"]
            # dagster dev runs in a process group of its own, with the webserver and the daemon.
            (group,) = children(ui.process.pid)
            assert len(members(group)) >= 3, "dagster dev, its webserver and its daemon"
            assert ui.stop(signal.SIGINT) == 0, ui.tail()
        finally:
            ui.stop(signal.SIGKILL)
        assert not alive(broker), "the broker started under retail ui still runs"
        assert not members(group), f"processes of dagster dev still run:\n{ui.tail()}"
    finally:  # what a failed run of this test left: the broker a sensor tick may have started
        LocalBroker.of(Settings.from_env(env)).down()
        shutil.rmtree(tmp_path / "home", ignore_errors=True)


def members(group: int) -> list[int]:
    """The live processes of process group `group`."""
    found = []
    for pid in (int(entry) for entry in os.listdir("/proc") if entry.isdigit()):
        try:
            if os.getpgid(pid) == group and alive(pid):
                found.append(pid)
        except ProcessLookupError:
            continue
    return found
