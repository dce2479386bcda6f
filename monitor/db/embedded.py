"""The embedded default: a private Postgres started from the ``pgserver`` wheel.

Used when ``MONITOR_DATABASE_URL`` is not set. The data directory survives restarts, and
several processes (API, scheduler, dashboard) share one server: pgserver keeps a list of the
processes holding it and stops the server when the last one exits.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "monitor"


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]  # not re-exported
    uri = server.get_uri()  # postgresql://postgres:@/postgres?host=/socket/dir
    with psycopg.connect(uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    socket_dir = uri.split("host=", 1)[1]
    return f"postgresql+psycopg://postgres@/{DATABASE_NAME}?host={socket_dir}"
