"""Stopping a local server that will not stop: killed after its timeout, and the reason
(its threads) left in its log and named in a warning."""

import logging
import os
import signal
import sys

from retail_assets.servers.supervisor import ManagedServer, alive, free_port

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
    port = free_port()
    serve = (f"import socket, time; s = socket.socket(); s.bind(('127.0.0.1', {port})); "
             "s.listen(); time.sleep(600)")  # fmt: skip
    server = ManagedServer("plain", tmp_path, "127.0.0.1", port, cmdline_marker="socket")
    before = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        server.up([sys.executable, "-c", serve], env=dict(os.environ), timeout=60)
    finally:
        signal.signal(signal.SIGTERM, before)
    try:
        with caplog.at_level(logging.WARNING, logger="retail_assets.servers.supervisor"):
            assert server.down(timeout=10)
    finally:
        server.down(timeout=0)
    assert not caplog.records  # stopped by SIGTERM, not killed at the timeout
