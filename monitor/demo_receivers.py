"""The demo's alerting: its rules, and two webhook receivers on loopback — an on-call channel
and a retraining pipeline — that verify each message's signature and print what they get."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from alerts.signing import WebhookVerificationError, new_secret, verify
from monitor import demo_data
from monitor.services.alerting import alert_config
from monitor.services.infra.context import ServiceContext

M = demo_data.MODEL_NAME

RULES: list[dict[str, Any]] = [
    {
        "name": "dataset-drift",
        "model": M,
        "metric": "dataset_drift",
        "window": "1h",
        "match": {"segment": ""},
        "condition": {"drifted": True},
        "severity": "critical",
        "annotations": {
            "summary": "{model}: {value} of the features drifted over the last hour (threshold {threshold})",
            "description": "dataset drift in the window ending {window_end}, on {sample_size} predictions",
        },
        "receivers": ["demo-oncall"],
        "retrain": {"receiver": "demo-retrain", "cooldown": "1h"},
    },
    {
        "name": "error-rate-change",
        "model": M,
        "metric": "concept_drift.error_stream",
        "window": "1h",
        "match": {"segment": ""},
        "condition": {"drifted": True},
        "severity": "critical",
        "annotations": {
            "summary": "{model}: the error rate changed (ADWIN on the labelled predictions, minute by minute)",
        },
        "receivers": ["demo-oncall"],
        "retrain": {"receiver": "demo-retrain", "cooldown": "1h"},
    },
    {
        "name": "feature-drift",
        "model": M,
        "metric": "feature_drift",
        "window": "1h",
        "match": {"feature": "*", "segment": ""},
        "condition": {"drifted": True},
        "for": "2m",
        "severity": "warning",
        "annotations": {
            "summary": "{model}: {labels[feature]} drifted ({labels[method]} {value}, threshold {threshold})"
        },
        "receivers": ["demo-oncall"],
    },
    {
        "name": "accuracy-drop",
        "model": M,
        "metric": "concept_drift.quality_drop",
        "window": "1h",
        "match": {"segment": ""},  # over all predictions, not per region or channel
        "condition": {"drifted": True},
        "for": "1m",
        "severity": "critical",
        "min_sample_size": 300,
        "annotations": {"summary": "{model}: accuracy {value} worse than the reference's (tolerance {threshold})"},
        "receivers": ["demo-oncall"],
        "retrain": {"receiver": "demo-retrain", "cooldown": "1h"},
    },
    {
        "name": "estimated-accuracy-drop",
        "model": M,
        "metric": "estimated.quality_drop",
        "window": "1h",
        "match": {"segment": ""},
        "condition": {"drifted": True},
        "severity": "critical",
        "annotations": {
            "summary": "{model}: accuracy estimated from the scores {value} worse than the reference's, "
            "before the labels (tolerance {threshold})"
        },
        "receivers": ["demo-oncall"],
        "retrain": {"receiver": "demo-retrain", "cooldown": "1h"},
    },
    {
        "name": "slow-predictions",
        "model": M,
        "metric": "latency.p95",
        "window": "1h",
        "match": {"segment": ""},
        "condition": {"op": ">", "threshold": 40},
        "for": "2m",
        "severity": "warning",
        "annotations": {"summary": "{model}: p95 latency {value} ms over the last hour"},
        "receivers": ["demo-oncall"],
    },
]


class PrintingReceiver:
    """An HTTP receiver on loopback that checks signatures and hands each message to ``show``
    once (a repeated webhook-id is acknowledged and dropped, as receivers should)."""

    def __init__(self, secret: str, show: Callable[[dict[str, Any]], None]) -> None:
        self.secret = secret
        self.seen: set[str] = set()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    msg_id = verify(outer.secret, dict(self.headers), body)
                except WebhookVerificationError as exc:
                    self.send_response(401)
                    self.end_headers()
                    print(f"  [receiver] refused a message: {exc}", flush=True)
                    return
                with lock:
                    new = msg_id not in outer.seen
                    outer.seen.add(msg_id)
                self.send_response(204)
                self.end_headers()
                if new:
                    show(orjson.loads(body))

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, name="demo-receiver", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _when(rfc3339: str | None) -> str:
    """'2026-12-05 19:00 UTC' of a payload's time ('' where it has none)."""
    if not rfc3339 or rfc3339.startswith("0001-"):
        return ""
    at = datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).astimezone(UTC)
    return f"{at:%Y-%m-%d %H:%M} UTC"


class AlertPrinter:
    """Prints each alert when it starts firing and when it resolves, with the time it did. A
    group's message carries every alert of the group each time it is sent (as Alertmanager's
    do), so printing whole messages repeated the alerts still firing at every change."""

    def __init__(self) -> None:
        self.told: dict[str, str] = {}  # fingerprint -> the status printed last
        self.lock = threading.Lock()

    def __call__(self, payload: dict[str, Any]) -> None:
        for a in payload["alerts"]:
            with self.lock:
                if self.told.get(a["fingerprint"]) == a["status"]:
                    continue
                self.told[a["fingerprint"]] = a["status"]
            labels = a["labels"]
            where = f" [{labels['segment']}={labels['segment_value']}]" if "segment" in labels else ""
            # the status says "resolved" already: a resolved summary's own "Resolved: " goes
            summary = a["annotations"].get("summary", labels["alertname"]).removeprefix("Resolved: ")
            when = _when(a["endsAt"] if a["status"] == "resolved" else a["startsAt"])
            status = a["status"].upper()
            print(f"  [on-call {when}] {status} {labels.get('severity', '')}: {summary}{where}", flush=True)


def _show_retrain(event: dict[str, Any]) -> None:
    d = event["data"]
    when = _when(event.get("timestamp"))
    print(f"  [retraining pipeline {when}] {event['type']} for {d['model']} v{d['version']}: {d['reason']}", flush=True)
    print(f"                        evidence: {len(d['evidence'])} metric point(s); {d['link']}", flush=True)


def install(ctx: ServiceContext) -> list[PrintingReceiver]:
    """Start the two receivers and store the demo's receivers and rules; returns the receivers."""
    oncall = PrintingReceiver(new_secret(), AlertPrinter())
    retrain = PrintingReceiver(new_secret(), _show_retrain)
    for name, kind, rec in (("demo-oncall", "webhook", oncall), ("demo-retrain", "retrain", retrain)):
        alert_config.put_receiver(
            ctx,
            {
                "name": name,
                "kind": kind,
                "url": rec.url,
                "secret": rec.secret,
                "group_wait": "10s",
                "group_interval": "1m",
            },
        )
    for rule in RULES:
        alert_config.put_rule(ctx, rule)
    return [oncall, retrain]
