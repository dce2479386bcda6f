"""The audit trail's data side on a real Postgres: one prediction looked up with its labels, the
windows it counted in and the alerts about them; a window's rows exported as Parquet and CSV,
in order, resumable, one at a time per key, and audited."""

from __future__ import annotations

import gc
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from monitor import demo_data
from monitor.api.app import create_app
from monitor.domain.audit import Actor
from monitor.domain.export_table import ExportFormat
from monitor.domain.schema import ModelSpec
from monitor.errors import TooManyRequests
from monitor.server import ThreadedServer
from monitor.services.alerting import alert_config, alert_ops
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.catalog import keys, registry
from monitor.services.ingest import ingestion
from monitor.services.jobs import maintenance
from monitor.services.jobs.monitoring_run import backfill
from monitor.services.jobs.windows import HOUR, hour_floor
from monitor.services.read_models import audit, export
from tests import bulk
from tests.integration.demo_model import MODEL, register_demo, traffic
from tests.integration.helpers import Api, bearer
from tests.integration.processes import monitor_process, stop_process, wait_ready
from tests.servers import free_port


def _always_firing_rule(ctx: Any) -> None:
    alert_config.put_receiver(ctx, {"name": "retrain", "kind": "webhook", "url": "http://127.0.0.1:9/hook"})
    alert_config.put_rule(
        ctx,
        {
            "name": "traffic",
            "model": MODEL,
            "metric": "throughput.per_minute",
            "match": {"segment": ""},
            "window": "1h",
            "condition": {"op": ">", "threshold": 0},
            "retrain": {"receiver": "retrain"},
        },
        create=True,
    )


def _labels(ctx: Any, pairs: dict[str, str]) -> None:
    records = [{"prediction_id": pid, "label": y} for pid, y in pairs.items()]
    assert not ingestion.ingest_labels(ctx, records, model=MODEL).errors


def test_a_prediction_is_looked_up_with_its_labels_windows_and_alerts(api: Api) -> None:
    ctx = api.ctx
    register_demo(ctx)
    _always_firing_rule(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    old = traffic(ctx, start, 200, "old-", seed=1)
    new = traffic(ctx, start + timedelta(hours=1), 200, "new-", seed=2)
    assert not backfill(ctx, MODEL, start, start + timedelta(hours=2)).failures
    assert evaluate_model(ctx, MODEL) == {"firing": 1}  # about the newest 1h window only
    _labels(ctx, {"new-7": "repaid"})
    _labels(ctx, {"new-7": "default"})  # a correction: the first label becomes a revision

    r = api.http.get("/v1/predictions/new-7", params={"model": MODEL}, headers=api.data)
    assert r.status_code == 200, r.text
    found = r.json()
    row = new[new.prediction_id == "new-7"].iloc[0]
    assert found["version"] == "1" and found["prediction"] == row.prediction
    assert found["label"]["value"] == "default" and found["label"]["revision"] == 2
    assert [(v["revision"], v["label"]) for v in found["label_revisions"]] == [(1, "repaid")]
    hour = start + timedelta(hours=1)
    by_length = {(w["window_start"], w["window_end"]): w for w in found["windows"]}
    one_hour = by_length[(hour.isoformat(), (hour + timedelta(hours=1)).isoformat())]
    assert one_hour["points"] > 0
    # its own region's segment, and no other
    assert one_hour["segments"] and {s["segment_value"] for s in one_hour["segments"] if s["segment"] == "region"} == {
        row.region
    }
    assert [a["to_state"] for a in found["alerts"]] == ["firing"]
    assert found["alerts"][0]["rule"] == "traffic"
    assert len(found["retrain_triggers"]) == 1

    # a prediction of the hour before counted in its own windows; the alert is not about them
    earlier = api.http.get("/v1/predictions/old-3", params={"model": MODEL}, headers=api.data).json()
    assert earlier["windows"] and earlier["alerts"] == [] and earlier["retrain_triggers"] == []
    assert earlier["label"] is None and earlier["label_revisions"] == []
    assert old.prediction_id.iloc[3] == "old-3"

    # an id with a slash in it, as it is or encoded
    traffic(ctx, start + timedelta(hours=2), 5, "s/", seed=9)
    for path in ("/v1/predictions/s/3", "/v1/predictions/s%2F3"):
        slashed = api.http.get(path, params={"model": MODEL}, headers=api.data)
        assert slashed.status_code == 200 and slashed.json()["prediction_id"] == "s/3", slashed.text

    # the look-up is the data scope's, and audited
    for headers in (api.read, api.ingest):
        assert api.http.get("/v1/predictions/new-7", params={"model": MODEL}, headers=headers).status_code == 403
    missing = api.http.get("/v1/predictions/nope", params={"model": MODEL}, headers=api.data)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]["message"]
    assert api.http.get("/v1/predictions/new-7", params={"model": "other"}, headers=api.data).status_code == 404
    viewed = audit.list_entries(ctx, action="prediction.viewed")["entries"]
    assert [e["target"] for e in viewed] == ["s/3", "s/3", "old-3", "new-7"]
    assert viewed[0]["key_name"] == "data" and viewed[0]["via"] == "api"


def _export(api: Api, **params: Any) -> Any:
    r = api.http.get(f"/v1/models/{MODEL}/export", params=params, headers=api.data)
    assert r.status_code == 200, r.text
    return r


def test_a_window_is_exported_in_order_with_its_labels_and_resumes_after_the_last_row(api: Api) -> None:
    ctx = api.ctx
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    frames = [traffic(ctx, start + timedelta(hours=h), 150, f"h{h}-", seed=h) for h in range(2)]
    _labels(ctx, dict(zip(frames[0].prediction_id[:40], frames[0].label[:40], strict=True)))
    _labels(ctx, {"h0-1": "default" if frames[0].label[1] == "repaid" else "repaid"})  # revised once
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat()}

    r = _export(api, **window)
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    assert "attachment" in r.headers["content-disposition"]
    table = pq.read_table(io.BytesIO(r.content)).to_pandas()
    both = pd.concat(frames)
    assert len(table) == 300
    assert list(zip(table.timestamp, table.prediction_id, strict=True)) == sorted(
        zip(table.timestamp, table.prediction_id, strict=True)
    )
    merged = table.set_index("prediction_id").loc[both.prediction_id]
    assert list(merged.prediction) == list(both.prediction)
    assert list(merged.region) == list(both.region)
    assert merged.label.notna().sum() == 40
    assert merged.loc["h0-1", "label_revision"] == 2 and merged.loc["h0-2", "label_revision"] == 1
    assert set(table.version) == {"1"}

    # CSV holds the same rows
    csv = pd.read_csv(io.BytesIO(_export(api, format="csv", **window).content))
    assert list(csv.prediction_id) == list(table.prediction_id)
    assert csv.income.tolist() == pytest.approx(table.income.tolist(), nan_ok=True)

    # resuming after the 100th row gives exactly the rest
    last = table.iloc[99]
    rest = pq.read_table(
        io.BytesIO(_export(api, start=last.timestamp.isoformat(), end=window["end"], after=last.prediction_id).content)
    ).to_pandas()
    assert list(rest.prediction_id) == list(table.prediction_id[100:])

    # an empty window is a file with no rows; a window that ends before it starts is refused
    empty = _export(api, start=(start - timedelta(days=1)).isoformat(), end=start.isoformat())
    assert pq.read_table(io.BytesIO(empty.content)).num_rows == 0
    bad = api.http.get(
        f"/v1/models/{MODEL}/export", params={"start": window["end"], "end": window["start"]}, headers=api.data
    )
    assert bad.status_code == 400
    for headers in (api.read, api.ingest):
        assert api.http.get(f"/v1/models/{MODEL}/export", params=window, headers=headers).status_code == 403

    # every export is audited when it starts and when it ends, with what it sent
    entries = audit.list_entries(ctx, action="export.")["entries"]
    finished = [e for e in entries if e["action"] == "export.finished"]
    assert sorted(e["details"]["rows"] for e in finished) == [0, 200, 300, 300]
    assert len([e for e in entries if e["action"] == "export.started"]) == 4


def test_one_export_at_a_time_per_key_and_a_stopped_one_is_recorded(ctx: Any) -> None:
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    traffic(ctx, start, 300, "a-", seed=3)
    req = export.ExportRequest(MODEL, start, start + timedelta(hours=1), format=ExportFormat.csv)
    alice, bob = Actor("api", key_id=1, key_name="alice"), Actor("api", key_id=2, key_name="bob")
    first = export.start_export(ctx, req, alice)
    next(first.body)  # streaming: the key's lock is held
    with pytest.raises(TooManyRequests):
        export.start_export(ctx, req, alice)
    other = export.start_export(ctx, req, bob)  # another key may
    head = next(other.body)
    with pytest.raises(TooManyRequests):  # two exports run in this process at once: the cap
        export.start_export(ctx, req, Actor("api", key_id=3))
    assert (head + b"".join(other.body)).count(b"\n") == 301
    first.body.close()  # the client went away
    again = export.start_export(ctx, req, alice)
    assert b"".join(again.body).count(b"\n") == 301
    actions = [e["action"] for e in audit.list_entries(ctx, action="export.")["entries"]][::-1]
    assert actions.count("export.stopped") == 1 and actions.count("export.finished") == 2


def test_the_retraining_request_links_to_the_export_of_its_window(api: Api) -> None:
    ctx = api.ctx
    register_demo(ctx)
    _always_firing_rule(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    traffic(ctx, start, 120, "r-", seed=4)
    assert not backfill(ctx, MODEL, start, start + timedelta(hours=1)).failures
    evaluate_model(ctx, MODEL)
    (message,) = alert_ops.list_outbox(ctx, None, "retrain", 10)
    link = message["body"]["data"]["export"]
    path = link.removeprefix(ctx.settings.public_url.rstrip("/"))
    r = api.http.get(path, headers=api.data)
    assert r.status_code == 200, r.text
    assert pq.read_table(io.BytesIO(r.content)).num_rows == 120


def _peak_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def test_a_million_row_window_streams_from_a_real_server_in_bounded_memory(ctx: Any, tmp_path: Path) -> None:
    """The API server's peak memory grows by a fraction of what the window holds (the rows
    decoded whole would take gigabytes; the obvious pandas way peaks at 2.9 GB, see
    benchmarks/export.py), and every row arrives once, in order, with its label."""
    rows = 1_000_000
    registry.register_model(ctx, ModelSpec.model_validate(demo_data.SPEC))
    vrow = registry.resolve_version(ctx, MODEL, None)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    with ctx.uow() as uow:
        bulk.demo_predictions(uow.conn, vrow.model_id, vrow.version_id, start, HOUR / rows, 0, rows - 1)
        uow.conn.execute(
            text(
                "INSERT INTO labels (model_id, prediction_id, label, label_ts, received_at, first_received_at, "
                "revision, prediction_ts) SELECT model_id, prediction_id, '\"default\"', ts, ts, ts, 1, ts "
                "FROM predictions WHERE model_id = :m AND substr(prediction_id, 2)::int % 7 = 0"
            ),
            {"m": vrow.model_id},
        )
        uow.commit()
        uow.conn.execute(text("ANALYZE predictions, labels"))
    key, _ = keys.create_key(ctx, "pipeline", [keys.Scope.data])
    port = free_port()
    server = monitor_process(
        ["serve", "--port", str(port)], {"MONITOR_DATABASE_URL": ctx.settings.database_url}, tmp_path / "serve.log"
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, server)
        before = _peak_kib(server.pid)
        path = tmp_path / "window.parquet"
        params_ = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
        with (
            httpx.stream(
                "GET", f"{base}/v1/models/{MODEL}/export", params=params_, headers=bearer(key), timeout=300
            ) as r,
            path.open("wb") as f,
        ):
            assert r.status_code == 200, r.read()
            for piece in r.iter_bytes():
                f.write(piece)
        grew_mb = (_peak_kib(server.pid) - before) / 1024
    finally:
        stop_process(server)
    table = pq.read_table(path, columns=["prediction_id", "timestamp", "label"])
    assert table.num_rows == rows
    ts = table.column("timestamp").to_numpy()
    assert (ts[1:] >= ts[:-1]).all()
    assert len(set(table.column("prediction_id").to_pylist())) == rows
    assert table.column("label").null_count == rows - len(range(0, rows, 7))
    assert grew_mb < 256, f"the server's peak memory grew by {grew_mb:.0f} MB"


class _BreaksOnce(httpx.BaseTransport):
    """Real HTTP, but the ``nth`` answer's body breaks off after its first bytes."""

    def __init__(self, nth: int) -> None:
        self.inner, self.nth, self.calls = httpx.HTTPTransport(), nth, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.calls += 1
        if self.calls != self.nth:
            return response

        class Broken(httpx.SyncByteStream):
            def __iter__(self) -> Any:
                for piece in response.stream:
                    yield piece[:200]
                    raise httpx.ReadError("connection reset by peer")

            def close(self) -> None:
                response.close()

        return httpx.Response(response.status_code, headers=response.headers, stream=Broken())


def test_the_sdk_downloads_a_window_slice_by_slice_and_takes_a_broken_slice_again(api: Api, tmp_path: Path) -> None:
    from monitor_client import MonitorClient

    ctx = api.ctx
    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=3)
    for h in range(2):
        traffic(ctx, start + timedelta(hours=h), 150, f"h{h}-", seed=h)
    end = start + timedelta(hours=2)
    whole = _export(api, start=start.isoformat(), end=end.isoformat(), format="csv").content
    server = ThreadedServer(create_app(ctx=ctx), "127.0.0.1", free_port()).start()
    try:
        flaky = _BreaksOnce(nth=3)  # the second of four half-hour slices breaks off
        client = MonitorClient(server.url, api.data["Authorization"].split()[1], model=MODEL, transport=flaky)
        client.backoff_base = client.backoff_max = 0.05
        path = tmp_path / "window.csv"
        # The broken export must end when its response does, not when the garbage collector
        # finds its abandoned body: with the collector off, a lock freed only by it stays held.
        gc.disable()
        try:
            assert client.export_window(start, end, path, slice_hours=0.5) == len(whole)
        finally:
            gc.enable()
        client.close()
    finally:
        server.stop()
    assert flaky.calls == 5 and path.read_bytes() == whole


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (f"/v1/models/{MODEL}/export", {"after": "r\x001"}, "query.after"),  # was a 500 (psycopg DataError)
        (f"/v1/models/{MODEL}/export", {"version": "1\x00"}, "query.version"),
        ("/v1/models/cred%00it/export", {}, "path.name"),
        (
            f"/v1/models/{MODEL}/metrics",
            {"metric": "dataset_drift", "label": ["segment:a", "feature:\x00"]},
            "query.label",
        ),
        (f"/v1/predictions/{MODEL}/p%00", {}, "path."),
    ],
)
def test_a_parameter_postgres_cannot_hold_is_refused_by_name_on_every_route(
    api: Api, path: str, params: dict[str, Any], field: str
) -> None:
    register_demo(api.ctx)
    window = {"start": (datetime.now(UTC) - timedelta(hours=2)).isoformat(), "end": datetime.now(UTC).isoformat()}
    query = {**window, **params} if path.endswith("/export") else params
    r = api.http.get(path, params=query, headers=api.admin)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"]["code"] == "unstorable_value" and body["error"]["details"][0]["field"].startswith(field)
    assert "NUL" in body["error"]["details"][0]["reason"]


def test_an_export_whose_process_dies_mid_stream_is_recorded_interrupted(ctx: Any, tmp_path: Path) -> None:
    """kill -9 while an export streams: its start stays without an end, until maintenance finds
    its key's lock free (Postgres released it with the dead process's connection) and writes
    ``export.interrupted`` naming the start; while the process lives, nothing is written, nor for
    exports that ended, including one ended before ends named their start."""
    import signal
    import subprocess
    import sys

    from monitor.services.jobs.maintenance import run_maintenance

    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    traffic(ctx, start, 300, "k-", seed=5)
    with ctx.engine.begin() as conn:  # an export that ended before ends named their start
        for action in ("export.started", "export.finished"):
            conn.execute(
                text("INSERT INTO audit_log (via, key_id, action, target, details) VALUES ('api', 1, :a, 'm', '{}')"),
                {"a": action},
            )
    finished = export.start_export(ctx, export.ExportRequest(MODEL, start, start + HOUR), Actor("api", key_id=2))
    b"".join(finished.body)
    script = f"""
import os, signal, sys
from datetime import datetime
from pathlib import Path
from monitor.config import Settings
from monitor.domain.audit import Actor
from monitor.domain.export_table import ExportFormat
from monitor.services.read_models import export
from monitor.services.bootstrap import open_context

settings = Settings(database_url={ctx.settings.database_url!r}, data_dir=Path({str(tmp_path)!r}))
ctx = open_context(settings, migrate=False)
req = export.ExportRequest({MODEL!r}, datetime.fromisoformat({start.isoformat()!r}),
                           datetime.fromisoformat({(start + HOUR).isoformat()!r}), format=ExportFormat.csv)
body = export.start_export(ctx, req, Actor("api", key_id=1, key_name="alice")).body
next(body)
print("streaming", flush=True)
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "streaming"
        assert run_maintenance(ctx)["exports_interrupted"] == 0  # alive: its lock is held
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
    deadline = datetime.now(UTC) + timedelta(seconds=10)  # Postgres notices the closed connection
    while run_maintenance(ctx)["exports_interrupted"] == 0:
        assert datetime.now(UTC) < deadline, "the dead export's lock was never released"
    entries = audit.list_entries(ctx, action="export.")["entries"]
    (interrupted,) = [e for e in entries if e["action"] == "export.interrupted"]
    started = [e for e in entries if e["action"] == "export.started" and e["key_id"] == 1]
    assert interrupted["details"]["started_id"] == max(e["id"] for e in started)
    assert interrupted["key_id"] == 1 and interrupted["key_name"] == "alice" and interrupted["model"] == MODEL
    assert interrupted["details"]["reason"] == maintenance.INTERRUPTED and interrupted["details"]["format"] == "csv"
    assert run_maintenance(ctx)["exports_interrupted"] == 0  # once
    (done,) = [e for e in entries if e["action"] == "export.finished" and e["key_id"] == 2]
    assert done["details"]["started_id"] == next(
        e["id"] for e in entries if e["action"] == "export.started" and e["key_id"] == 2
    )


def test_an_exports_reader_may_pause_longer_than_an_idle_transaction_otherwise_lives(ctx: Any) -> None:
    """Between the client's reads the export's connection idles in its transaction: the engine's
    bound for that (60 s) would end an export whose reader paused a minute; the export's own
    transaction allows its reader's pauses."""
    from monitor.db import record_repo

    register_demo(ctx)
    start = hour_floor(datetime.now(UTC)) - timedelta(hours=2)
    traffic(ctx, start, 50, "p-", seed=8)
    with ctx.engine.connect() as conn:
        idle = "SHOW idle_in_transaction_session_timeout"
        assert conn.exec_driver_sql(idle).scalar() == "1min"  # any other transaction
        conn.rollback()
        conn.begin()
        vrow = registry.resolve_version(ctx, MODEL, None)
        chunks = record_repo.export_rows(conn, vrow.model_id, [vrow.version_id], start, start + HOUR, None, 100)
        assert len(next(chunks)) == 50
        assert conn.exec_driver_sql(idle).scalar() == record_repo.EXPORT_READER_PAUSE == "15min"
