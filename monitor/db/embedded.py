"""The embedded default: a private Postgres started from the ``pgserver`` wheel.

Used when ``MONITOR_DATABASE_URL`` is not set. The data directory survives restarts, and
several processes (API, scheduler, dashboard) share one server: pgserver keeps a list of the
processes holding it and stops the server when the last one exits, from an exit hook.

Two ways that hook never ran, and the server outlived every process: SIGTERM (docker stop,
systemd, kill), whose default action ends Python without exit hooks, and a holder that died
without them (kill -9, a crash), whose process id stayed on the list, so no later process was
ever the last. So a process that starts or joins the server turns SIGTERM into a normal exit
(where nothing else handles it), and the list is cleared of processes no longer running when a
process joins and when it leaves.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "monitor"
HOLDERS_FILE = ".handle_pids.json"  # pgserver's list of the processes holding a server
_servers: dict[Path, Any] = {}  # this process's handles, by data directory


def _forget_dead_holders(pgdata: Path) -> None:
    """Drop from pgserver's list of holders the processes no longer running (call under its lock)."""
    path = pgdata / HOLDERS_FILE
    if not path.exists():
        return
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if pid == os.getpid() or _running(pid)]
    if alive != pids:
        log.info("embedded Postgres: forgetting holders no longer running: %s", sorted(set(pids) - set(alive)))
        path.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: running
        return True
    return True


def _exit_on_sigterm() -> None:
    """SIGTERM ends the process through its exit hooks (pgserver's stops the server), unless the
    program already handles it (uvicorn, the scheduler's and the demo's own handlers)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def release_embedded(data_dir: Path) -> None:
    """Let go of the embedded server in ``data_dir`` now rather than at exit: stopped if this was
    its last holder (before a caller deletes the directory under it)."""
    server = _servers.pop(Path(data_dir).expanduser().resolve() / "postgres", None)
    if server is not None:
        with server._lock:
            _forget_dead_holders(server.pgdata)
        server.cleanup()


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server; return a SQLAlchemy URL for the ``monitor`` database."""
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); pgserver copes.
        warnings.simplefilter("ignore")
        import pgserver  # imported lazily: only the embedded path needs it

    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # pgserver runs Postgres as an unprivileged user when started by root; it must reach the folder.
        data_dir.chmod(0o755)
    pgdata = data_dir / "postgres"
    log.info("starting embedded Postgres in %s", pgdata)
    from pgserver.postgres_server import PostgresServer

    lock = PostgresServer._lock  # the lock pgserver takes around its list of holders
    if pgdata.exists():
        with lock:
            _forget_dead_holders(pgdata)
    _exit_on_sigterm()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]  # not re-exported
    _servers[pgdata] = server

    def forget_dead_holders_at_exit() -> None:  # registered after pgserver's exit hook: runs before it
        with lock:
            _forget_dead_holders(pgdata)

    atexit.register(forget_dead_holders_at_exit)
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    socket_dir = uri.split("host=", 1)[1]
    return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={socket_dir}"
