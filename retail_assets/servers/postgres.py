"""The cluster profile's PostgreSQL (docs/profiles.md): one server under RETAIL_HOME that
holds the Hive metastore and Dagster's storage, each in its own database.

It is Debian's `postgresql` server run on a data folder of our own (not the system cluster),
on loopback TCP only, with password authentication. The password comes from the
environment (RETAIL_PG_PASSWORD); `retail stack up` makes one on first use and keeps it in
RETAIL_HOME's secrets file. PostgreSQL refuses to run as root, so as root it runs as the
`postgres` user the Debian package creates.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from retail_assets.servers.supervisor import LocalServer, ServiceError, secret
from retail_assets.settings import PG_PASSWORD_VARIABLE, Settings

START_TIMEOUT_S = 60
DATABASES = ("metastore", "dagster")
INSTALL_HINT = "apt-get install -y postgresql"


def bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them per major version)."""
    installed = Path("/usr/lib/postgresql").glob("*/bin/postgres")
    found = sorted(installed, key=lambda path: int(path.parts[-3]))
    if found:
        return found[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise ServiceError(f"The cluster profile needs PostgreSQL; on Debian: {INSTALL_HINT}")


class LocalPostgres(LocalServer):
    """The profile's PostgreSQL: data under RETAIL_HOME/postgres, one superuser role."""

    NAME = "postgres"
    CMDLINE_MARKER = "bin/postgres"
    STOP_SIGNAL = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to leave

    user: str = "retail"

    @classmethod
    def of(cls, settings: Settings) -> LocalPostgres:
        return cls(home=str(settings.home), port=settings.pg_port)

    @property
    def data_dir(self) -> Path:
        return Path(self.home) / "postgres" / "data"

    def jdbc_url(self, database: str) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{database}"

    def up(self) -> dict:
        """Create the data folder on first use, start the server, create its databases."""
        password = secret(PG_PASSWORD_VARIABLE)
        programs = bin_dir()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(programs, password)
        cmd = [str(programs / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
               "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="]  # fmt: skip
        status = self.start(as_owner() + cmd, dict(os.environ), START_TIMEOUT_S)
        with self.connect("postgres") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            existing = {row[0] for row in cursor.fetchall()}
            for database in DATABASES:
                if database not in existing:
                    cursor.execute(f'CREATE DATABASE "{database}"')
        return status

    def _initdb(self, programs: Path, password: str) -> None:
        """A new cluster whose only role is `user`, authenticated by SCRAM over TCP."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        owned_by_server(self.data_dir.parent)
        if subprocess.run(as_owner() + ["test", "-w", str(self.data_dir)]).returncode != 0:
            raise ServiceError(
                f"the postgres user cannot write {self.data_dir}: as root, every folder above "
                "it must be open to others (chmod o+x), or put RETAIL_HOME elsewhere"
            )
        password_file = self.data_dir.parent / ".initdb_password"
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
        owned_by_server(password_file)
        try:
            done = subprocess.run(
                as_owner()
                + [str(programs / "initdb"), "-D", str(self.data_dir), "-U", self.user,
                   f"--pwfile={password_file}", "-A", "scram-sha-256", "-E", "UTF8",
                   "--locale=C"],
                capture_output=True, text=True,
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")

    @contextlib.contextmanager
    def connect(self, database: str) -> Iterator:
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=os.environ[PG_PASSWORD_VARIABLE],
            dbname=database,
        )
        connection.autocommit = True
        try:
            yield connection
        finally:
            connection.close()


def as_owner() -> list[str]:
    """PostgreSQL will not run as root: as root, run it as the `postgres` system user."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid", "postgres", "--regid", "postgres", "--init-groups"]


def owned_by_server(path: Path) -> None:
    if os.geteuid() == 0:
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceError(
                f"running as root needs the `postgres` system user; on Debian: {INSTALL_HINT}"
            ) from None
        os.chown(path, account.pw_uid, account.pw_gid)
        for folder, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.chown(os.path.join(folder, name), account.pw_uid, account.pw_gid)
