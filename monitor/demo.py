"""``monitor demo``: the whole service on the embedded Postgres with live traffic and drift."""

from __future__ import annotations

import heapq
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np

from monitor import demo_data, demo_receivers
from monitor.api.app import create_app
from monitor.client import MonitorClient
from monitor.config import Settings, get_settings
from monitor.db.embedded import release_embedded
from monitor.domain.monitoring import MonitoringConfig
from monitor.scheduler import BackgroundWork
from monitor.server import ThreadedServer, pin_database_url, port_is_free
from monitor.services.alerting import alert_ops
from monitor.services.alerting.evaluation import evaluate_model
from monitor.services.bootstrap import open_for_writing
from monitor.services.catalog import keys, registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.monitoring_run import backfill

log = logging.getLogger(__name__)


class DemoService(Protocol):
    """Something the demo runs beside the API (the dashboard plugs in this way: ``monitor``
    does not import ``dashboards``)."""

    url: str | None  # where it will listen, known before it starts (links in alerts point there)

    def start(self, ctx: ServiceContext) -> str:
        """Start; return the banner line that says where it is."""
        ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Traffic:
    """What the demo sends: live predictions at ``rate`` a second (for ``duration`` seconds, 0:
    until stopped), drift from ``drift_after`` seconds, labels ~``label_delay`` seconds later for
    ``label_share`` of them, metrics every ``metrics_every`` seconds, after ``history_hours`` of
    replayed past traffic."""

    rate: float = 20.0
    duration: float = 0.0
    drift_after: float = 120.0
    label_delay: float = 20.0
    label_share: float = 0.8
    seed: int = 1
    metrics_every: float = 30.0
    history_hours: int = 48


@dataclass(frozen=True)
class DemoKeys:
    admin: str
    ingest: str
    read: str


def run_demo(
    *,
    port: int | None = None,
    rate: float = 20.0,
    duration: float = 0.0,
    drift_after: float = 120.0,
    label_delay: float = 20.0,
    label_share: float = 0.8,
    seed: int = 1,
    metrics_every: float = 30.0,
    history_hours: int = 48,
    keep_data: bool = False,
    services: Sequence[DemoService] = (),
) -> int:
    traffic = Traffic(rate, duration, drift_after, label_delay, label_share, seed, metrics_every, history_hours)
    settings = get_settings()
    fresh: tempfile.TemporaryDirectory[str] | None = None
    if not settings.database_url and not keep_data:
        # a fresh embedded database per run: no earlier run's data, keys or alerts
        fresh = tempfile.TemporaryDirectory(prefix="monitor-demo-")
        settings = settings.model_copy(update={"data_dir": Path(fresh.name)})
    try:
        port = port or settings.port
        if not port_is_free(settings.host, port):
            print(f"port {port} is in use: pass --port or set MONITOR_PORT")
            return 2
        return _run(_demo_settings(settings, port, services), port, traffic, services)
    finally:
        if fresh is not None:
            # stopped before its directory goes (it noticed 10-35 s later, when it did at all)
            release_embedded(settings.data_dir)
            fresh.cleanup()


def _demo_settings(settings: Settings, port: int, services: Sequence[DemoService]) -> Settings:
    """The database started and pinned; webhooks to loopback allowed (the demo's own receivers
    listen there); links in alerts and retraining requests pointing at this run's API and
    dashboard, wherever they listen (unless set)."""
    where = (settings.database_url and "MONITOR_DATABASE_URL") or f"embedded Postgres in {settings.data_dir}"
    print(f"starting the database ({where}) ...", flush=True)
    urls = {"public_url": f"http://{settings.host}:{port}"}
    dashboard = next((svc.url for svc in services if svc.url), None)
    if dashboard:
        urls["dashboard_url"] = dashboard
    urls = {k: v for k, v in urls.items() if k not in settings.model_fields_set}
    # on loopback, over plain HTTP: a certificate in the settings is for the real service
    plain = {"tls_cert_file": None, "tls_key_file": None}
    return pin_database_url(settings).model_copy(update={"allow_loopback_receivers": True, **plain, **urls})


def _run(settings: Settings, port: int, traffic: Traffic, services: Sequence[DemoService]) -> int:
    ctx = open_for_writing(settings, maintain=True)
    made = _demo_keys(ctx)
    server = ThreadedServer(create_app(settings, ctx), settings.host, port, settings).start()
    reference_rows = _register_model(ctx, server.url, made.admin, traffic)
    receivers = demo_receivers.install(ctx)
    if traffic.history_hours > 0:
        _history(ctx, server.url, made.ingest, traffic.history_hours, traffic.rate, traffic.label_share, traffic.seed)
    # The tick, not the schedule, bounds how late a notification group that came due is sent
    # (its group_wait counts from the firing): a tick as long as the schedule held every page
    # back by up to one more run.
    work = BackgroundWork(ctx, tick_seconds=min(traffic.metrics_every, 5.0))
    if traffic.history_hours > 0:
        print("what the replayed history sent on-call and the retraining pipeline (at its times):", flush=True)
    work.start()
    if traffic.history_hours > 0:
        _drain_outbox(ctx)  # the history's messages print above the banner, the live ones below it
    extra_lines = "".join(f"  {svc.start(ctx)}\n" for svc in services)
    print(_banner(server.url, extra_lines, reference_rows, made, traffic), flush=True)

    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client = MonitorClient(server.url, made.ingest, model=demo_data.MODEL_NAME)
    try:
        _stream(client, stop, traffic)
    finally:
        client.close(timeout=10)
        work.stop(final_run=True)  # one last run, so the latest traffic is in the metrics
        for r in receivers:
            r.stop()
        for svc in services:
            svc.stop()
        s = client.stats
        print(f"sent {s.sent} records ({s.duplicates} duplicates, {s.rejected} rejected, {s.dropped} dropped)")
        server.stop()
        ctx.close()
    return 0


def _register_model(ctx: ServiceContext, url: str, admin_key: str, traffic: Traffic) -> int:
    """The demo model registered with its reference (through the API, as a user would) and its
    hourly windows recomputed often, so that the injected drift shows within minutes. Returns
    the reference's row count."""
    admin = MonitorClient(url, admin_key, model=demo_data.MODEL_NAME)
    admin.register_model(demo_data.SPEC)
    with tempfile.TemporaryDirectory() as tmp:
        ref_path = Path(tmp) / "credit_reference.csv"
        demo_data.reference_frame(5000).to_csv(ref_path, index=False)
        print(f"uploading the reference dataset ({ref_path.stat().st_size / 1e6:.1f} MB) ...", flush=True)
        ref = admin.upload_reference(ref_path)
    admin.close()
    schedule = max(10, int(traffic.metrics_every))
    registry.set_monitoring(
        ctx, demo_data.MODEL_NAME, MonitoringConfig(windows=["1h", "1d"], schedule_seconds=schedule)
    )
    return int(ref["rows"])


def _banner(url: str, extra_lines: str, reference_rows: int, made: DemoKeys, t: Traffic) -> str:
    model_url = f"{url}/v1/models/{demo_data.MODEL_NAME}"
    return f"""
Model Monitor demo is running.
  API            {url}          (OpenAPI docs: {url}/docs)
{extra_lines}  model          {demo_data.MODEL_NAME}: {reference_rows} reference rows
  admin key      {made.admin}
  ingest key     {made.ingest}
  read key       {made.read}
  history        {t.history_hours} hours of past traffic, an incident in the last day: the charts start full
  traffic        {t.rate:g} predictions/s, labels after ~{t.label_delay:g}s for {t.label_share:.0%} of them,
                 drift injected after {t.drift_after:g}s (the console says when)
  metrics        drift (feature by feature and multivariate), quality against the labels and estimated
                 from the scores before them, concept drift, latency and data quality, per region
                 and channel too, every {t.metrics_every:g}s over the live 1h and 1d windows
  alerts         {len(demo_receivers.RULES)} rules ({", ".join(r["name"] for r in demo_receivers.RULES)});
                 an on-call webhook and a retraining pipeline on loopback print what they receive below
Try:
  curl -H 'Authorization: Bearer {made.read}' {url}/v1/models/{demo_data.MODEL_NAME}
  curl -H 'Authorization: Bearer {made.read}' '{model_url}/metrics?metric=dataset_drift'
  curl -H 'Authorization: Bearer {made.read}' '{model_url}/metrics?metric=quality.accuracy&label=segment:region'
  curl -H 'Authorization: Bearer {made.read}' '{model_url}/metrics?metric=estimated.accuracy'
  curl -H 'Authorization: Bearer {made.read}' {url}/v1/alerts
Press Ctrl-C to stop.
"""


def _demo_keys(ctx: ServiceContext) -> DemoKeys:
    """New admin, ingest and read keys; a reused database's earlier demo keys are revoked."""
    for k in keys.list_keys(ctx):
        if k["name"].startswith("demo-") and not k["revoked_at"]:
            keys.revoke_key(ctx, k["prefix"])
    made = [
        keys.create_key(ctx, f"demo-{scope.value}", [scope])[0]
        for scope in (keys.Scope.admin, keys.Scope.ingest, keys.Scope.read)
    ]
    return DemoKeys(made[0], made[1], made[2])


def _drain_outbox(ctx: ServiceContext, timeout: float = 60.0) -> None:
    """Wait until no message waits in the outbox (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while alert_ops.list_outbox(ctx, "pending", None, 1) and time.monotonic() < deadline:
        time.sleep(0.2)


HISTORY_PER_HOUR = 400  # predictions an hour in the history: enough for every window's tests


def incident_hours(hours_: int) -> range:
    """The hours of the history (0 = the oldest) when a bad upstream release shifted the inputs
    and the model's accuracy fell: a third of the way into the last day (for 48 hours, from 20 to
    12 hours before now), so the alerts fired and resolved before the demo starts."""
    return range(hours_ * 7 // 12, hours_ * 9 // 12)


# The last hours of the history whose labels have not arrived (at most a quarter of it).
UNLABELLED_HOURS = 6


def _history(
    ctx: ServiceContext, url: str, ingest_key: str, hours_: int, rate: float, label_share: float, seed: int
) -> None:
    """``hours_`` hours of past traffic with their labels, sent through the API with past
    timestamps, computed and evaluated hour by hour as the scheduler would have: the model
    page's charts, the overview and the heatmap have days to show on first open, and the alerts
    page the incident of the last day (see ``incident_hours``), with what on-call was sent."""
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours_)
    incident = incident_hours(hours_)
    unlabelled = min(UNLABELLED_HOURS, hours_ // 4)
    print(f"replaying {hours_} hours of past traffic ({HISTORY_PER_HOUR} predictions an hour) ...", flush=True)
    if incident:
        ago = (hours_ - incident.start, hours_ - incident.stop)
        print(
            f"[story] in the history: from {ago[0]} to {ago[1]} hours ago a bad upstream release shifted "
            "applicants' data and the model's accuracy fell; the alerts fired, retraining was asked for, and "
            "all resolved when it was rolled back (the Alerts page shows it)",
            flush=True,
        )
    if unlabelled:
        print(
            f"[story] the labels of the last {unlabelled} hours have not arrived yet: the model page's quality "
            "chart shows the accuracy estimated from the scores there, with its band",
            flush=True,
        )
    rng = np.random.default_rng(seed + 1)
    # an hour at a time, flushed before it is computed: no point waiting to fill a batch
    client = MonitorClient(url, ingest_key, model=demo_data.MODEL_NAME, batch_size=2000, flush_interval=0.02)
    started = time.monotonic()
    windows = 0
    try:
        for h in range(hours_):
            hour = start + timedelta(hours=h)
            drift = 1.0 if h in incident else 0.0
            # the newest hours' labels have not arrived yet: there the model page shows the
            # quality estimated from the scores alone
            _log_hour(client, rng, hour, drift, label_share if h < hours_ - unlabelled else 0.0)
            client.flush(timeout=120)
            report = backfill(ctx, demo_data.MODEL_NAME, hour, hour + timedelta(hours=1), step=timedelta(hours=1))
            windows += sum(report.windows.values())
            # the rules as the scheduler evaluated them at the end of that hour: the window ending
            # then is the newest they see
            evaluate_model(ctx, demo_data.MODEL_NAME, now=hour + timedelta(hours=1) - timedelta(seconds=1))
    finally:
        client.close()
    print(f"  {windows} windows of history computed in {time.monotonic() - started:.0f}s", flush=True)


def _log_hour(client: MonitorClient, rng: np.random.Generator, hour: datetime, drift: float, share: float) -> None:
    """An hour of traffic from ``hour`` on, its labels logged at once (it is the past)."""
    batch = demo_data.applicants(HISTORY_PER_HOUR, rng, drift)
    scores = demo_data.model_scores(batch)
    outcomes = demo_data.true_default(batch, rng, drift)
    channels = rng.choice(demo_data.CHANNELS, len(batch), p=[0.6, 0.25, 0.15])
    explained = demo_data.attribution_records(batch)
    rows = zip(batch.records(), scores, outcomes, channels, explained, strict=True)
    for i, (rec, score, outcome, channel, shap) in enumerate(rows):
        pid = client.log_prediction(
            rec,
            "default" if score >= 0.5 else "repaid",
            scores=round(float(score), 5),
            latency_ms=round(float(rng.gamma(2.0, 6.0 + 10 * drift)), 2),
            segments={"channel": str(channel)},
            timestamp=hour + timedelta(seconds=3600 * i / len(batch)),
            attributions=shap,
        )
        if rng.random() < share:
            client.log_label(pid, "default" if outcome else "repaid")


def _stream(client: MonitorClient, stop: threading.Event, traffic: Traffic) -> None:
    """Live predictions, and their labels when they come due, until ``stop`` (or the duration)."""
    rng = np.random.default_rng(traffic.seed)
    pending: list[tuple[float, str, str]] = []  # (due time, prediction id, label)
    start = time.monotonic()
    tick = 0.25
    n_sent = 0
    last_report = start
    announced = False
    while not stop.is_set():
        now = time.monotonic()
        elapsed = now - start
        if traffic.duration and elapsed >= traffic.duration:
            break
        # Drift comes in over ten seconds after the drift point (data and concept: the world changed).
        drift = min(1.0, max(0.0, (elapsed - traffic.drift_after) / 10.0))
        if drift > 0 and not announced:
            announced = True
            print(
                f"[{elapsed:6.0f}s] [story] drift injected: applicants' incomes, debt and employment shift, and who "
                "defaults changes; watch the on-call channel below",
                flush=True,
            )
        n = int(rng.poisson(traffic.rate * tick))
        if n:
            _send_batch(client, rng, n, drift, now, traffic, pending)
            n_sent += n
        while pending and pending[0][0] <= now:
            _, pid, label = heapq.heappop(pending)
            client.log_label(pid, label)
        if now - last_report >= 10:
            last_report = now
            phase = "drifting" if drift > 0 else "stable"
            print(
                f"[{elapsed:6.0f}s] {n_sent} predictions sent, {len(pending)} labels pending, traffic {phase}",
                flush=True,
            )
        stop.wait(tick)


def _send_batch(
    client: MonitorClient,
    rng: np.random.Generator,
    n: int,
    drift: float,
    now: float,
    traffic: Traffic,
    pending: list[tuple[float, str, str]],
) -> None:
    """``n`` applicants scored and logged; the labels of ``label_share`` of them queued in
    ``pending`` for when they come due."""
    batch = demo_data.applicants(n, rng, drift)
    scores = demo_data.model_scores(batch)
    outcomes = demo_data.true_default(batch, rng, drift)
    channels = rng.choice(demo_data.CHANNELS, n, p=[0.6, 0.25, 0.15])
    latencies = rng.gamma(2.0, 6.0 + 10 * drift, n)
    explained = demo_data.attribution_records(batch)
    for rec, score, outcome, channel, latency, shap in zip(
        batch.records(), scores, outcomes, channels, latencies, explained, strict=True
    ):
        pid = client.log_prediction(
            rec,
            "default" if score >= 0.5 else "repaid",
            scores=round(float(score), 5),
            latency_ms=round(float(latency), 2),
            segments={"channel": str(channel)},
            attributions=shap,
        )
        if rng.random() < traffic.label_share:
            due = now + rng.exponential(traffic.label_delay)
            heapq.heappush(pending, (due, pid, "default" if outcome else "repaid"))
