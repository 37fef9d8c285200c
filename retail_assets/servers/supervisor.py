"""Long-lived local servers (Spark Connect, the Kafka broker) started and stopped by PID.

Each server gets a pid file and a log under RETAIL_HOME/run, its own session (setsid) so a
terminal's Ctrl-C does not kill it, a readiness wait on its TCP port, and a stop that only
ever signals the PID it recorded — never pkill.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from dagster import Config

LOG = logging.getLogger(__name__)
CHILD_TIMEOUT_S = 10  # a server's leftover child (a Python worker) after SIGTERM
# A server starts with SIGTERM at its default action, whatever its starter ignores: after an
# in-process Dagster run, a process started with SIGINT ignored (a background job, some CI
# runners) ignores SIGTERM too (Dagster gives SIGTERM SIGINT's handler), children inherit
# that, and a JVM that starts with SIGTERM ignored never stops on it.
DEFAULT_SIGTERM = ("env", "--default-signal=TERM")
Causes = Sequence[tuple[str, str]]  # (a sign in a server's log, the cause in one line)


class ServiceError(RuntimeError):
    """A server could not be started, reached or stopped; the message says what to do."""


def secret(variable: str) -> str:
    """A password from the environment, where every `retail` command puts the home's secrets
    file (made by `retail stack up`); a clear error naming the variable when it is missing."""
    value = os.environ.get(variable)
    if not value:
        raise ServiceError(
            f"{variable} is not set: `retail stack up` makes one and keeps it in "
            "RETAIL_HOME/secrets.env (retail commands read it from there)"
        )
    return value


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port the OS says is free now (for tests and throw-away servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ManagedServer:
    """One local server: how to start it, where its pid and log live, how to tell it is ours."""

    name: str
    home: Path  # RETAIL_HOME; the pid file, lock and log go under its run/
    host: str
    port: int
    cmdline_marker: str  # a string in /proc/PID/cmdline proving the pid is still our server

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def log_settings(self, text: str) -> Path:
        """The server's log4j2 settings file in its run folder, holding `text`."""
        path = self.run_dir / f"{self.name}-log4j2.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def rolling_log_settings(self, size_kb: int, kept: int, levels: dict[str, str]) -> Path:
        """log4j2 settings that write the server's log file, rolled over at `size_kb` with
        `kept` rolled files (a log that grew with history would not stay flat), at INFO except
        the loggers of `levels` ({logger: level})."""
        lines = [
            "status = error",
            "rootLogger.level = info",
            "rootLogger.appenderRef.file.ref = file",
            "appender.file.type = RollingFile",
            "appender.file.name = file",
            f"appender.file.fileName = {self.log_file}",
            f"appender.file.filePattern = {self.log_file}.%i",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex",
            "appender.file.policy.type = SizeBasedTriggeringPolicy",
            f"appender.file.policy.size = {size_kb}KB",
            "appender.file.strategy.type = DefaultRolloverStrategy",
            f"appender.file.strategy.max = {kept}",
        ]
        for number, (logger, level) in enumerate(levels.items()):
            lines += [f"logger.l{number}.name = {logger}", f"logger.l{number}.level = {level}"]
        return self.log_settings("\n".join(lines) + "\n")

    def _lock(self) -> contextlib.AbstractContextManager[None]:
        """Serialises up/down across processes (parallel runs may all ask for the server)."""
        return file_lock(self.run_dir / f"{self.name}.lock")

    def pid(self) -> int | None:
        """The recorded pid if that process is alive and still our server, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if self.cmdline_marker in cmdline else None

    def status(self) -> dict:
        pid = self.pid()
        return {
            "name": self.name,
            "running": pid is not None and port_is_open(self.host, self.port),
            "pid": pid,
            "address": f"{self.host}:{self.port}",
            "log": str(self.log_file),
        }

    def up(self, cmd: list[str], env: dict[str, str], timeout: float, causes: Causes = ()) -> dict:
        """Start the server unless ours is already running; wait until its port accepts.
        `causes`: (what its log says, the one line to tell) for a start that fails."""
        with self._lock():
            if self.pid() is not None:
                self._wait_ready(self.pid(), timeout)
                return self.status()
            self.check_port()
            self.log_file.parent.mkdir(parents=True, exist_ok=True)
            logged_before = self.log_file.stat().st_size if self.log_file.exists() else 0
            with open(self.log_file, "ab") as log:
                process = subprocess.Popen(
                    [*DEFAULT_SIGTERM, *cmd],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.pid_file.write_text(str(process.pid))
            try:
                self._wait_ready(process.pid, timeout, process)
            except ServiceError:
                if cause := self._known_cause(causes, logged_before):
                    raise ServiceError(f"{self.name} did not start: {cause}") from None
                raise
            return self.status()

    def _known_cause(self, causes: Causes, since: int) -> str | None:
        """The first of `causes` whose sign the log shows after byte `since`."""
        with contextlib.suppress(FileNotFoundError), open(self.log_file, "rb") as log:
            log.seek(since)
            written = log.read().decode(errors="replace")
            return next((told for seen, told in causes if seen in written), None)
        return None

    def check_port(self) -> None:
        """A clear error when our server is not running and another process has its port."""
        if self.pid() is None and not port_is_free(self.host, self.port):
            raise ServiceError(
                f"{self.name}: port {self.host}:{self.port} is taken by another process; "
                f"stop it or choose another port (see README, settings)."
            )

    def _wait_ready(self, pid: int, timeout: float, process: subprocess.Popen | None = None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_is_open(self.host, self.port):
                return
            exited = process.poll() is not None if process else not alive(pid)
            if exited:
                self.pid_file.unlink(missing_ok=True)
                raise ServiceError(
                    f"{self.name} exited during start-up; last log lines:\n{self.tail_log()}"
                )
            time.sleep(0.25)
        raise ServiceError(
            f"{self.name} did not accept connections on {self.host}:{self.port} within "
            f"{timeout:.0f}s (pid {pid} left running; `down` stops it). Log: {self.log_file}"
        )

    def down(self, timeout: float = 60, stop_signal: int = signal.SIGTERM) -> bool:
        """Signal our pid, SIGKILL after the timeout; the processes it started (a Spark
        worker's executors) are waited for too. False when nothing of ours was running."""
        with self._lock():
            pid = self.pid()
            if pid is None:
                self.pid_file.unlink(missing_ok=True)
                return False
            started = children(pid)
            os.kill(pid, stop_signal)
            if not stop(pid, timeout):
                LOG.warning("%s (pid %d) did not exit within %.0fs of its stop signal and was "
                            "killed; a JVM writes its threads at the end of its log %s",
                            self.name, pid, timeout, self.log_file,
                            extra={"log_file": self.log_file})  # fmt: skip
            leftover = [child for child in started if alive(child)]  # not stopped by the server
            for child in leftover:
                with contextlib.suppress(ProcessLookupError):  # it may end on its own now
                    os.kill(child, signal.SIGTERM)
            for child in leftover:
                stop(child, CHILD_TIMEOUT_S)
            self.pid_file.unlink(missing_ok=True)
            return True

    def tail_log(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class LocalServer(Config):
    """A local server's configuration, as a resource field: where its state lives, its port.

    Subclasses name the server and say how to start it (`up`); pid file, log, stop and
    status are the same for every server.
    """

    NAME: ClassVar[str]
    CMDLINE_MARKER: ClassVar[str]
    STOP_SIGNAL: ClassVar[int] = signal.SIGTERM

    home: str  # RETAIL_HOME: the server's state, pid file and log live under it
    port: int

    @property
    def name(self) -> str:
        """Names its pid file and log; unique among the servers of one home."""
        return self.NAME

    @property
    def server(self) -> ManagedServer:
        return ManagedServer(
            name=self.name,
            home=Path(self.home),
            host="127.0.0.1",
            port=self.port,
            cmdline_marker=self.CMDLINE_MARKER,
        )

    def start(
        self, cmd: list[str], env: dict[str, str], timeout: float, causes: Causes = ()
    ) -> dict:
        Path(self.home).mkdir(parents=True, exist_ok=True)
        return self.server.up(cmd, env, timeout, causes)

    def down(self) -> bool:
        return self.server.down(stop_signal=self.STOP_SIGNAL)

    def status(self) -> dict:
        return self.server.status()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` across processes, held until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def wait_until(ready: Callable[[], bool], timeout: float, failure: str) -> None:
    """Return once `ready()` is true; a ServiceError saying `failure` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ServiceError(failure)
        time.sleep(0.25)


def children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except FileNotFoundError:
        return []


def stop(pid: int, timeout: float) -> bool:
    """Wait for a signalled process to exit; SIGKILL it after the timeout (a JVM first gets
    SIGQUIT, which writes its threads to its log: what it was stuck on). False when killed."""
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if not alive(pid):
        return True
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        if Path(f"/proc/{pid}/exe").resolve().name == "java":
            os.kill(pid, signal.SIGQUIT)
            time.sleep(1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while alive(pid):
        time.sleep(0.1)
    return False


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
