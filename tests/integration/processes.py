"""Real processes for the fault tests: a private Postgres cluster that a test may stop and
start again, and ``monitor`` commands (API server, scheduler) run as their own processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import psycopg

from tests.conftest import SECRET_KEYS
from tests.servers import free_port, wait_ready

__all__ = ["PostgresCluster", "monitor_process", "stop_process", "wait_ready"]


class PostgresCluster:
    """A Postgres cluster of its own (pgserver's binaries, a dependency, so it exists wherever
    the project is installed), listening on a loopback port. Unlike the shared test server it
    can be stopped — crashed, even — and started again in the middle of a test."""

    def __init__(self) -> None:
        import pgserver._commands as pg  # lazily: only the fault tests need the binaries

        self._pg = pg
        # Not under pytest's private base folder: as root, Postgres runs as another user.
        self.root = Path(tempfile.mkdtemp(prefix="monitor-fault-pg-"))
        self.pgdata = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user: str | None = None
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            self._user = "pgserver"  # initdb and postgres refuse to run as root
            ensure_user_exists(self._user)
            self.root.chmod(0o777)
        self.pgdata.mkdir()
        if self._user is not None:
            shutil.chown(self.pgdata, self._user, self._user)
        pg.initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=self.pgdata, user=self._user)

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._pg.pg_ctl(
            ["-w", "-t", "60", "-l", str(self.root / "server.log"), "-o", opts, "start"],
            pgdata=self.pgdata,
            user=self._user,
            timeout=90,
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: backends are killed, the next start runs recovery."""
        self._pg.pg_ctl(["-w", "-m", mode, "stop"], pgdata=self.pgdata, user=self._user, timeout=90)

    def is_up(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def destroy(self) -> None:
        try:
            if self.is_up():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def monitor_process(args: list[str], env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """``monitor <args>`` as its own process, its output (both streams) in ``log_path``, sharing the
    tests' secret keys (``env`` may say otherwise)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    full_env = base | {"MONITOR_SECRET_KEYS": SECRET_KEYS} | dict(env)
    out = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "dashboards.cli", *args], env=full_env, stdout=out, stderr=subprocess.STDOUT
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
