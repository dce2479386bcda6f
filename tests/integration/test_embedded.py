"""The embedded default: no MONITOR_DATABASE_URL, a pgserver Postgres in MONITOR_DATA_DIR, reused on restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCRIPT = """
import sys
from monitor.config import Settings
from monitor.services.bootstrap import open_context
from monitor.services.ingest import ingestion
from monitor.services.catalog import registry
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

    from tests.integration.processes import monitor_process
    from tests.servers import free_port, wait_ready

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


def _wait_gone(pid: int, seconds: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not _alive(pid)


def _holders(data_dir: Path) -> list[int]:
    import json

    path = data_dir / "postgres" / ".handle_pids.json"
    return json.loads(path.read_text()) if path.exists() else []


def _start_three(data_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """The API, the scheduler and the dashboard on one embedded Postgres, each once it holds it."""
    import time

    from tests.integration.processes import monitor_process
    from tests.servers import free_port, wait_ready

    env = {"MONITOR_DATA_DIR": str(data_dir), "MONITOR_LOG_FORMAT": "text"}
    api, dash = free_port(), free_port()
    procs = {"serve": monitor_process(["serve", "--port", str(api)], env, tmp_path / "serve.log")}
    wait_ready(f"http://127.0.0.1:{api}", procs["serve"], timeout=120)
    procs["scheduler"] = monitor_process(["scheduler"], env, tmp_path / "scheduler.log")
    procs["dashboard"] = monitor_process(["dashboard", "--port", str(dash)], env, tmp_path / "dashboard.log")
    deadline = time.monotonic() + 120
    while not {p.pid for p in procs.values()} <= set(_holders(data_dir)) and time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs.values()), {n: p.poll() for n, p in procs.items()}
        time.sleep(0.2)
    assert {p.pid for p in procs.values()} <= set(_holders(data_dir))
    return procs


@pytest.mark.embedded
def test_the_embedded_postgres_stops_when_serve_scheduler_and_dashboard_are_stopped(
    data_dir: Path, tmp_path: Path
) -> None:
    """SIGTERM to each (docker stop, systemctl stop): the last to exit stops Postgres. The
    dashboard died on SIGTERM without its exit hooks, so its process id stayed among the holders
    and Postgres ran on after all three were gone."""
    import signal

    procs = _start_three(data_dir, tmp_path)
    try:
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        for name, proc in procs.items():
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) in (0, 128 + signal.SIGTERM), (tmp_path / f"{name}.log").read_text()[-2000:]
        assert _wait_gone(postmaster), f"the embedded Postgres outlived its processes; holders {_holders(data_dir)}"
        assert _holders(data_dir) == []
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


@pytest.mark.embedded
def test_a_holder_killed_without_its_exit_hooks_does_not_keep_the_embedded_postgres_running(
    data_dir: Path, tmp_path: Path
) -> None:
    """kill -9 (or a crash) leaves a process id on the holders' list: the last process still
    running stops Postgres when it exits, and a process joining later forgets the dead one."""
    import signal

    procs = _start_three(data_dir, tmp_path)
    try:
        postmaster = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        procs["dashboard"].kill()
        procs["dashboard"].wait(30)
        for name in ("scheduler", "serve"):
            procs[name].send_signal(signal.SIGTERM)
            assert procs[name].wait(60) in (0, 128 + signal.SIGTERM), (tmp_path / f"{name}.log").read_text()[-2000:]
        assert _wait_gone(postmaster), f"the embedded Postgres outlived its processes; holders {_holders(data_dir)}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


@pytest.mark.embedded
def test_the_demo_stops_its_embedded_postgres_before_deleting_its_data(tmp_path: Path) -> None:
    """The demo's fresh database lives in a temporary directory deleted when it ends: Postgres is
    stopped first (it went on running 10-35 s in a deleted directory)."""
    import re

    from tests.servers import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    args = ["demo", "--duration", "2", "--rate", "20", "--history-hours", "2", "--port", str(free_port())]
    args += ["--dashboard-port", str(free_port())]
    out = subprocess.run(
        [sys.executable, "-m", "dashboards.cli", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = re.search(r"embedded Postgres in (\S+?)\)", out.stdout)
    assert found, out.stdout[:2000]
    data_dir = found.group(1)
    assert not Path(data_dir).exists()
    running = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(data_dir.encode() in w for w in words) and words[0].endswith(b"postgres"):
            running.append(cmdline.parent.name)
    assert not running, f"Postgres still runs in the demo's deleted directory: {running}"
