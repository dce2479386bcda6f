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
