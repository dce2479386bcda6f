"""The embedded default: no MONITOR_DATABASE_URL, a pgserver Postgres in MONITOR_DATA_DIR, reused on restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = """
import sys
from monitor.config import Settings
from monitor.services.bootstrap import open_context
from monitor.services import ingestion, registry
from monitor.domain.schema import ModelSpec
from sqlalchemy import text

ctx = open_context(Settings(), migrate=True)
assert ctx.engine.url.host is None and "postgres" in str(ctx.engine.url.query.get("host", ""))
if sys.argv[1] == "write":
    registry.register_model(ctx, ModelSpec.model_validate({
        "name": "emb", "task": "regression", "features": [{"name": "x", "type": "numerical"}]}))
    r = ingestion.ingest_predictions(ctx, [{"prediction_id": str(i), "features": {"x": i}, "prediction": i * 2.0}
                                           for i in range(25)], model="emb")
    assert r.accepted == 25, r
with ctx.engine.connect() as conn:
    print(conn.execute(text("SELECT count(*) FROM predictions")).scalar_one())
ctx.close()
"""


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: as root, pgserver runs Postgres as another user, who must be able
    # to reach the folder, and pytest keeps its own base folder private (and re-tightens it).
    path = Path(tempfile.mkdtemp(prefix="monitor-embedded-test-"))
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.embedded
def test_embedded_postgres_starts_migrates_and_is_reused(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["MONITOR_DATA_DIR"] = str(data_dir)

    def run(mode: str) -> str:
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout.strip().splitlines()[-1]

    assert run("write") == "25"
    assert (data_dir / "postgres" / "PG_VERSION").exists()
    # a second process start finds the same data directory and the rows in it
    assert run("read") == "25"


@pytest.mark.embedded
@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_to_monitor_serve_stops_the_embedded_postgres(data_dir: Path, tmp_path: Path, workers: str) -> None:
    """docker stop sends SIGTERM: the server exits cleanly and the embedded Postgres it started
    stops with it (uvicorn re-raises the signal after its shutdown, which skipped the exit hook
    that stops Postgres; SIGINT always worked)."""
    import signal
    import time

    from monitor.server import free_port, wait_ready
    from tests.integration.processes import monitor_process

    env = {"MONITOR_DATA_DIR": str(data_dir), "MONITOR_LOG_FORMAT": "text"}
    port = free_port()
    proc = monitor_process(["serve", "--port", str(port), "--workers", workers], env, tmp_path / "serve.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, timeout=120)
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, (tmp_path / "serve.log").read_text()[-2000:]
        deadline = time.monotonic() + 30
        while _alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(postmaster), "the embedded Postgres outlived monitor serve"
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is as good as gone
        return f.read().split(")")[-1].split()[0] != "Z"
