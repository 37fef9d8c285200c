"""Stopping a local server that will not stop: killed after its timeout, and the reason
(its threads) left in its log and named in a warning. And a test session stopped by SIGTERM
stops the servers its fixtures started."""

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from retail_assets.servers.supervisor import ManagedServer, alive, free_port, wait_until

# A JVM serving a port whose shutdown hook never returns: SIGTERM alone cannot stop it.
STUCK_ON_SHUTDOWN = """
public class Stuck {
    public static void main(String[] args) throws Exception {
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try { Thread.sleep(3_600_000); } catch (InterruptedException e) { }
        }, "stuck-shutdown-hook"));
        var socket = new java.net.ServerSocket(Integer.parseInt(args[0]));  // then: ready
        while (true) socket.accept().close();
    }
}
"""


def test_a_jvm_stuck_in_its_shutdown_is_killed_with_its_threads_in_its_log(tmp_path, caplog):
    source = tmp_path / "Stuck.java"
    source.write_text(STUCK_ON_SHUTDOWN)
    port = free_port()
    server = ManagedServer("stuck", tmp_path, "127.0.0.1", port, cmdline_marker="Stuck.java")
    server.up(["java", str(source), str(port)], env=dict(os.environ), timeout=60)
    pid = server.pid()
    try:
        with caplog.at_level(logging.WARNING, logger="retail_assets.servers.supervisor"):
            assert server.down(timeout=1)
    finally:
        server.down(timeout=0)
    assert not alive(pid)
    assert [f"stuck (pid {pid}) did not exit within 1s"] == [
        record.getMessage().split(" of its stop")[0] for record in caplog.records
    ]
    assert '"stuck-shutdown-hook"' in server.log_file.read_text()  # the thread dump


def test_a_server_started_while_sigterm_is_ignored_still_stops_on_it(tmp_path, caplog):
    """As in a process that ran Dagster in-process with SIGINT ignored (a background job):
    Dagster gives SIGTERM SIGINT's handler, SIG_IGN, and children inherit it."""
    server, command = plain_server(tmp_path, free_port())
    before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        server.up(command, env=dict(os.environ), timeout=60)
    finally:
        signal.signal(signal.SIGTERM, before)
    try:
        with caplog.at_level(logging.WARNING, logger="retail_assets.servers.supervisor"):
            assert server.down(timeout=10)
    finally:
        server.down(timeout=0)
    assert not caplog.records  # stopped by SIGTERM, not killed at the timeout


def plain_server(home: Path, port: int) -> tuple[ManagedServer, list[str]]:
    """A Python process listening on `port` until stopped, and the command that starts it."""
    serve = (f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); "
             "s.listen(); time.sleep(600)")  # fmt: skip
    server = ManagedServer("plain", home, "127.0.0.1", port, cmdline_marker="socket")
    return server, [sys.executable, "-c", serve]


# A test session whose fixture starts a server, and a test that runs until it is stopped.
SESSION = """
import os, threading
from pathlib import Path
import pytest
from retail_assets_tests.test_supervisor import plain_server

HOME = Path(os.environ["PROBE_HOME"])

@pytest.fixture(scope="session")
def server():
    server, command = plain_server(HOME, int(os.environ["PROBE_PORT"]))
    try:
        server.up(command, env=dict(os.environ), timeout=60)
        yield
    finally:
        server.down()

def test_runs_until_stopped(server):
    from dagster import asset, materialize

    @asset
    def one():
        return 1

    # An in-process run maps SIGTERM to SIGINT's handler when it ends (dagster's interrupts).
    assert materialize([one]).success
    (HOME / "testing").touch()
    threading.Event().wait()
"""


def test_a_test_session_stopped_by_sigterm_stops_its_servers(tmp_path):
    """A CI timeout or a `kill` sends SIGTERM: the session ends as on Ctrl-C, so its fixtures'
    teardown stops their servers by PID (on Python's default, the session would exit on the
    spot and leave them running). Also as a background job (SIGINT ignored) after a Dagster
    run in-process, which hands SIGTERM SIGINT's handler."""
    (tmp_path / "test_session.py").write_text(SESSION)
    port = free_port()
    server, _ = plain_server(tmp_path, port)
    repository = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PROBE_HOME": str(tmp_path), "PROBE_PORT": str(port),
           "PYTHONPATH": repository}  # fmt: skip
    session = subprocess.Popen(
        ["env", "--ignore-signal=INT", sys.executable, "-m", "pytest", "-q",
         "-p", "retail_assets_tests.conftest",
         "-p", "no:cacheprovider", "test_session.py"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        testing = tmp_path / "testing"
        wait_until(testing.exists, 60, "the session's test did not start")
        pid = server.pid()
        session.send_signal(signal.SIGTERM)
        output = session.communicate(timeout=30)[0].decode()
        assert session.returncode != 0, output
        assert not alive(pid), output
    finally:
        session.kill()
        server.down(timeout=0)
