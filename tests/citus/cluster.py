"""A Citus cluster on loopback for the tests: a coordinator and workers, each an ordinary
Postgres from the Citus build (``build.sh`` builds it against the pgserver wheel's Postgres 16)
with ``shared_preload_libraries = 'citus'``. Postgres refuses to run as root, so as root the
nodes run as the ``pgserver`` user, as the embedded database does."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.servers import free_port

MARKER = ".citus-13.2.2"


# Where the build is: MONITOR_CITUS_HOME, by default beside the checkout's .venv (git ignores it).
DEFAULT_HOME = Path(__file__).resolve().parents[2] / ".citus-13.2.2"


def citus_home() -> Path:
    return Path(os.environ.get("MONITOR_CITUS_HOME", str(DEFAULT_HOME)))


def available() -> bool:
    return (citus_home() / MARKER).exists()


class CitusCluster:
    def __init__(self, workers: int = 2, home: Path | None = None) -> None:
        self.home = home or citus_home()
        self.base = Path(tempfile.mkdtemp(prefix="monitor-citus-"))
        self.ports = [free_port() for _ in range(workers + 1)]  # the coordinator first
        self.user = "pgserver" if os.geteuid() == 0 else None
        if self.user:
            subprocess.run(["useradd", "-s", "/bin/bash", self.user], capture_output=True)  # exists: fine
            shutil.chown(self.base, self.user)
        self.env = {**os.environ, "LD_LIBRARY_PATH": str(self.home / "libs")}

    def _run(self, args: Sequence[str]) -> None:
        cmd = [str(self.home / "bin" / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", "env", f"LD_LIBRARY_PATH={self.env['LD_LIBRARY_PATH']}", *cmd]
        subprocess.run(cmd, env=self.env, check=True, capture_output=True, text=True)

    def data_dir(self, node: int) -> Path:
        return self.base / f"node{node}"

    def url(self, node: int = 0, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports[node]}/{database}"

    def start_node(self, node: int) -> None:
        port = self.ports[node]
        self._run(
            [
                "pg_ctl", "-D", str(self.data_dir(node)), "-w", "-l", str(self.base / f"node{node}.log"),
                "-o", f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base}",
                "start",
            ]
        )  # fmt: skip

    def stop_node(self, node: int, mode: str = "fast") -> None:
        self._run(["pg_ctl", "-D", str(self.data_dir(node)), "-w", "-m", mode, "stop"])

    def start(self) -> CitusCluster:
        for node in range(len(self.ports)):
            self._run(["initdb", "-D", str(self.data_dir(node)), "-U", "postgres", "-A", "trust"])
            with (self.data_dir(node) / "postgresql.conf").open("a") as conf:
                conf.write("shared_preload_libraries = 'citus'\nmax_connections = 200\nfsync = off\n")
            self.start_node(node)
        for node in range(len(self.ports)):
            with psycopg.connect(self.url(node), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        return self

    def create_database(self, name: str) -> str:
        """A database on every node with the extension, the workers added to the coordinator's;
        returns its SQLAlchemy URL on the coordinator."""
        for node in range(len(self.ports)):
            with psycopg.connect(self.url(node), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(self.url(node, name), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION citus")
        with psycopg.connect(self.url(0, name), autocommit=True) as conn:
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (self.ports[0],))
            for port in self.ports[1:]:
                conn.execute("SELECT citus_add_node('127.0.0.1', %s)", (port,))
        return self.url(0, name).replace("postgresql://", "postgresql+psycopg://")

    def stop(self) -> None:
        for node in range(len(self.ports)):
            with contextlib.suppress(subprocess.CalledProcessError):  # already down
                self.stop_node(node, "immediate")
        shutil.rmtree(self.base, ignore_errors=True)
