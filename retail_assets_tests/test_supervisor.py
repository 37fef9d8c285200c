"""Stopping a local server that will not stop: killed after its timeout, and the reason
(its threads) left in its log and named in a warning."""

import logging
import os

from retail_assets.servers.supervisor import ManagedServer, alive, free_port

# A JVM serving a port whose shutdown hook never returns: SIGTERM alone cannot stop it.
STUCK_ON_SHUTDOWN = """
public class Stuck {
    public static void main(String[] args) throws Exception {
        var socket = new java.net.ServerSocket(Integer.parseInt(args[0]));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try { Thread.sleep(3_600_000); } catch (InterruptedException e) { }
        }, "stuck-shutdown-hook"));
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
