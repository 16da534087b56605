"""A real MariaDB server for integration tests: a fresh data directory, 127.0.0.1, a free port.

Used by the session fixture ``mariadb`` in ``tests/integration/conftest.py``. The server runs
Debian's ``mariadbd`` (installed by ``scripts/setup``) with its own socket, so it never meets a
system MariaDB. Root's password is ``password``, as in Bookinfo's Kubernetes secret.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pymysql
from pymysql.constants import CLIENT

from tests.support.processes import free_port

ROOT_PASSWORD = "password"
# Keep the server small: the defaults allocate ~100 MB of redo log and a 128 MB buffer pool.
_SMALL = ("--innodb-log-file-size=4M", "--innodb-buffer-pool-size=16M", "--skip-name-resolve")


class MariaDBUnavailable(RuntimeError):
    """mariadbd or mariadb-install-db is not installed."""


def _binary(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((p for p in fallbacks if os.access(p, os.X_OK)), None)
    if found is None:
        raise MariaDBUnavailable(
            f"{name} not found: run scripts/setup (it installs Debian's mariadb-server)"
        )
    return found


@dataclass
class MariaDB:
    """A running server; :meth:`stop` shuts it down and returns the exit code."""

    port: int
    socket: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    user: str = "root"
    password: str = ROOT_PASSWORD

    def connect(self, database: str | None = None) -> pymysql.Connection[pymysql.cursors.Cursor]:
        """A client connection over TCP, the way ratings connects."""
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            client_flag=CLIENT.MULTI_STATEMENTS,
            autocommit=True,
            connect_timeout=2,
        )

    def run_sql(self, script: str) -> None:
        """Run a script of one or more statements (an init file, a DROP TABLE)."""
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(script)
                while cursor.nextset():
                    pass
        finally:
            conn.close()

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_mariadb(base: Path, init_sql: Path | None = None, timeout: float = 30.0) -> MariaDB:
    """Initialise a data directory under ``base``, start the server, load ``init_sql``."""
    mariadbd = _binary("mariadbd", "/usr/sbin/mariadbd")
    install_db = _binary("mariadb-install-db", "/usr/bin/mariadb-install-db")
    as_root = ("--user=root",) if os.geteuid() == 0 else ()
    datadir, log_path, socket = base / "data", base / "mariadbd.log", base / "mariadbd.sock"
    # A unix socket path is limited to 107 bytes; a deep basetemp would fail obscurely later.
    if len(str(socket)) > 100:
        raise MariaDBUnavailable(f"socket path too long for a unix socket: {socket}")
    subprocess.run(
        [
            install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            *as_root,
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            *_SMALL,
        ],
        check=True,
        capture_output=True,
        timeout=timeout,
    )
    # mariadb-install-db creates root@localhost and root@127.0.0.1 without a password.
    credentials = base / "credentials.sql"
    credentials.write_text(
        "".join(
            f"ALTER USER 'root'@'{host}' IDENTIFIED BY '{ROOT_PASSWORD}';\n"
            for host in ("localhost", "127.0.0.1")
        )
    )
    port = free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            mariadbd,
            "--no-defaults",
            *as_root,
            f"--datadir={datadir}",
            f"--socket={socket}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={base / 'mariadbd.pid'}",
            "--skip-log-bin",
            f"--init-file={credentials}",
            *_SMALL,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = MariaDB(port, socket, proc, log_path)
    _wait_ready(server, timeout)
    if init_sql is not None:
        server.run_sql(init_sql.read_text())
    return server


def _wait_ready(server: MariaDB, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited with {server.proc.returncode}:\n{_tail(server)}")
        try:
            server.connect().close()
            return
        except pymysql.MySQLError:
            if time.monotonic() > deadline:
                server.stop()
                raise TimeoutError(
                    f"mariadbd not ready after {timeout}s:\n{_tail(server)}"
                ) from None
            time.sleep(0.05)


def _tail(server: MariaDB) -> str:
    return "\n".join(server.log_path.read_text(errors="replace").splitlines()[-20:])
