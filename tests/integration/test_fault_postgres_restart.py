"""Postgres crashes and comes back while a serving system ships predictions through the SDK.

The API runs as its own process (two uvicorn workers) on a Postgres cluster of the test's own,
which the test stops with ``pg_ctl -m immediate`` (a crash: backends killed mid-transaction) and
starts again. Every record the API acknowledged must be stored exactly once; while the database
is away the API must answer 503 with Retry-After, never 500 and never a false acknowledgement.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest

from monitor.client import MonitorClient
from monitor.config import Settings
from monitor.domain.schema import ModelSpec
from monitor.services.bootstrap import open_context
from monitor.services.catalog import keys, registry
from tests.integration.helpers import BINARY_SPEC, prediction
from tests.integration.processes import PostgresCluster, monitor_process, stop_process, wait_ready
from tests.servers import free_port

pytestmark = pytest.mark.timeout(240)

RATE = 300  # predictions per second, logged from the serving thread
BEFORE, DOWN, AFTER = 2.0, 4.0, 2.0  # seconds of traffic before the crash, of outage, after the restart


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    c = PostgresCluster()
    c.start()
    yield c
    c.destroy()


def _access_statuses(log_text: str) -> list[int]:
    """HTTP statuses from the server's JSON access lines (``monitor.access``: "POST /path 200 ...")."""
    statuses = []
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        entry = orjson.loads(line)
        if entry.get("logger") == "monitor.access":
            statuses.append(int(entry["message"].split()[2]))
    return statuses


def test_every_acknowledged_record_survives_a_postgres_crash_exactly_once(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    settings = Settings(database_url=cluster.url, data_dir=tmp_path)
    ctx = open_context(settings, migrate=True)  # the new cluster
    registry.register_model(ctx, ModelSpec.model_validate(BINARY_SPEC))
    key = keys.create_key(ctx, "sdk", [keys.Scope.ingest])[0]
    ctx.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "api.log"
    env = {
        "MONITOR_DATABASE_URL": cluster.url,
        "MONITOR_LOG_FORMAT": "json",
        "MONITOR_RATE_LIMIT_PER_SECOND": "0",
        "MONITOR_API_KEY_CACHE_SECONDS": "0",  # every request touches the database, authentication too
    }
    api = monitor_process(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"], env, log_path)
    try:
        wait_ready(url, api)
        client = MonitorClient(url, key, model="churn", batch_size=50, flush_interval=0.05, timeout=5.0)
        sent: list[str] = []
        stop_sending = threading.Event()

        def serve_traffic() -> None:  # the serving system: log_prediction never blocks on the monitor
            i = 0
            while not stop_sending.is_set():
                pid = f"r{i}"
                client.log_prediction({"tenure": i % 60, "plan": "basic"}, "stay", scores=0.3, prediction_id=pid)
                sent.append(pid)
                i += 1
                time.sleep(1 / RATE)

        sender = threading.Thread(target=serve_traffic)
        sender.start()
        time.sleep(BEFORE)
        cluster.stop("immediate")
        crashed_at = len(sent)
        time.sleep(0.5)
        # while the database is away: an honest 503 with Retry-After in the one error shape
        probe = httpx.post(
            f"{url}/v1/predictions",
            json={"model": "churn", "records": [prediction("probe")]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert probe.status_code == 503, probe.text
        assert int(probe.headers["retry-after"]) >= 1
        assert probe.json()["error"]["code"] == "database_unavailable"
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 503
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200  # alive: no restart wanted
        time.sleep(DOWN - 0.5)
        cluster.start()
        time.sleep(AFTER)
        stop_sending.set()
        sender.join()
        client.close(timeout=90)
    finally:
        assert stop_process(api) == 0
    log_text = log_path.read_text(errors="replace")

    assert len(sent) > crashed_at > 0 and client.stats.retries > 0  # the outage was felt
    assert client.stats.dropped == 0 and client.stats.rejected == 0, client.stats
    with psycopg.connect(cluster.url) as conn:
        rows = conn.execute("SELECT prediction_id, count(*) FROM predictions GROUP BY prediction_id").fetchall()
    stored = dict(rows)
    assert "probe" not in stored  # refused with 503, and indeed not stored
    assert {pid for pid, n in stored.items() if n > 1} == set()  # exactly once...
    assert set(stored) == set(sent)  # ...and every one of them
    assert client.stats.sent == len(sent)
    statuses = _access_statuses(log_text)
    assert 503 in statuses
    assert [s for s in statuses if s >= 500 and s != 503] == []  # never a 500
    assert "Traceback" not in log_text
