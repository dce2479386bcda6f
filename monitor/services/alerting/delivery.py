"""Delivering the outbox: claim due messages (FOR UPDATE SKIP LOCKED, with a lease), send each
signed the Standard Webhooks way, record the attempt in the delivery log, and schedule the next
attempt with backoff — or mark the message delivered, or failed for good (a 4xx other than 408
and 429, a refused URL, too many attempts). Any number of deliverers may run: a message is held
by one at a time, and taken over when its lease runs out (a deliverer that died mid-attempt).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from apscheduler.schedulers.background import BackgroundScheduler

from alerts import signing
from alerts.notifiers import notifier
from alerts.records import DeliveryAttempt
from alerts.retry import Outcome, backoff_seconds, retry_after_seconds
from alerts.urls import Target, UnsafeURL
from monitor.db import audit_repo
from monitor.db.alert_repo import ClaimedMessage, ReceiverRow
from monitor.domain.audit import SYSTEM, Actor
from monitor.errors import NotFound
from monitor.secret_box import SecretUnavailable
from monitor.services.alerting.resolver import vet_url
from monitor.services.infra.context import ServiceContext

log = logging.getLogger(__name__)

USER_AGENT = "model-monitor-webhooks/1"


def deliver_due(ctx: ServiceContext, client: httpx.Client, now: datetime | None = None, limit: int = 20) -> int:
    """One round: attempt every due message (up to ``limit``); returns how many were attempted."""
    s = ctx.settings
    with ctx.uow() as uow:
        claimed = uow.alerts.claim_due(now or datetime.now(UTC), s.delivery_lease_seconds, limit)
        receivers = {r["name"]: r for r in uow.alerts.list_receivers()}
        uow.commit()
    for m in claimed:
        _attempt(ctx, client, m, receivers.get(m["receiver"]))
    return len(claimed)


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None
    error: str | None = None


def _attempt(ctx: ServiceContext, client: httpx.Client, m: ClaimedMessage, receiver: ReceiverRow | None) -> None:
    s = ctx.settings
    started = time.perf_counter()
    if receiver is None:
        a = Attempt(Outcome.failed, error=f"receiver {m['receiver']!r} no longer exists")
    else:
        a = _send(ctx, client, bytes(m["body"]), m["message_id"], receiver)
    latency_ms = (time.perf_counter() - started) * 1000
    now = datetime.now(UTC)
    outcome, error, next_at = a.outcome, a.error, None
    if outcome is Outcome.retry:
        if m["attempts"] >= s.delivery_max_attempts:
            outcome, error = Outcome.failed, f"gave up after {m['attempts']} attempts; last: {error}"
        else:
            next_at = now + timedelta(seconds=backoff_seconds(m["attempts"], a.retry_after))
    with ctx.uow() as uow:
        uow.alerts.add_delivery(
            DeliveryAttempt(
                message_id=m["message_id"],
                receiver=m["receiver"],
                attempt=m["attempts"],
                at=now,
                status_code=a.status,
                latency_ms=latency_ms,
                outcome=outcome.value,
                error=error,
            )
        )
        uow.alerts.finish_attempt(m["message_id"], outcome.value, next_at, error, now)
        uow.commit()
    log.info(
        "delivery %s to %s, attempt %d: %s%s",
        m["message_id"],
        m["receiver"],
        m["attempts"],
        outcome.value,
        f" ({error})" if error else "",
    )


def _send(ctx: ServiceContext, client: httpx.Client, body: bytes, message_id: str, receiver: ReceiverRow) -> Attempt:
    """One signed POST to the receiver, its result as its notifier judges it."""
    s = ctx.settings
    kind = notifier(receiver["kind"])
    try:
        # To an address checked, not to whatever the name resolves to when connecting.
        targets = vet_url(
            kind.url(receiver["url"]),
            allow_private=s.allow_private_receivers,
            allow_loopback=s.allow_loopback_receivers,
        )
        box = ctx.secrets
        headers = {
            # the receiver's own (Authorization, ...), stored encrypted, cannot override these
            **box.open_headers(receiver.get("headers") or {}),
            **signing.headers(box.open(receiver["secret"]), message_id, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        resp = _post(client, targets, body, headers, s.delivery_timeout_seconds)
    except UnsafeURL as exc:
        return Attempt(Outcome.failed, error=str(exc))
    except SecretUnavailable as exc:  # a key missing from this process's settings: fixable, so retried
        return Attempt(Outcome.retry, error=str(exc))
    except httpx.HTTPError as exc:
        return Attempt(kind.outcome(None), error=f"{type(exc).__name__}: {exc}")
    status = resp.status_code
    return Attempt(
        kind.outcome(status),
        status,
        retry_after_seconds(resp.headers.get("retry-after")),
        None if 200 <= status < 300 else f"HTTP {status}: {resp.text[:300]}",
    )


def _post(
    client: httpx.Client, targets: list[Target], body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST to the first target that accepts the connection; a refused or unreachable address
    moves on to the next (a timeout does not: that would multiply the wait)."""
    for i, target in enumerate(targets):
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        pinned = headers | ({"host": target.host_header} if target.host_header else {})
        try:
            # Redirects are not followed: a receiver cannot bounce the request somewhere internal.
            return client.post(target.url, content=body, headers=pinned, timeout=timeout, extensions=extensions)
        except httpx.ConnectError:
            if i == len(targets) - 1:
                raise
    raise AssertionError("vet_url returns at least one target")


def redeliver(ctx: ServiceContext, message_id: str, actor: Actor = SYSTEM) -> None:
    with ctx.uow() as uow:
        if not uow.alerts.redeliver(message_id, datetime.now(UTC)):
            raise NotFound(f"no message {message_id!r}")
        audit_repo.append(uow.conn, actor, "message.redelivered", message_id)
        uow.commit()


class DeliveryWorker:
    """The outbox delivered in the background, in the scheduler's loop style: an APScheduler
    interval job that, every ``idle_seconds``, delivers until nothing is due (a backlog is drained
    without waiting between rounds). ``stop`` lets the attempt in flight finish."""

    def __init__(self, ctx: ServiceContext, idle_seconds: float = 1.0) -> None:
        self.ctx = ctx
        self.idle_seconds = idle_seconds
        self._stopping = threading.Event()
        self._client: httpx.Client | None = None
        self._scheduler: BackgroundScheduler | None = None

    def start(self) -> None:
        self._client = httpx.Client(follow_redirects=False)
        self._scheduler = BackgroundScheduler(timezone="UTC")
        self._scheduler.add_job(
            self._drain,
            "interval",
            seconds=self.idle_seconds,
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
            id="webhook-delivery",
        )
        self._scheduler.start()

    def _drain(self) -> None:
        assert self._client is not None
        while not self._stopping.is_set():
            try:
                if deliver_due(self.ctx, self._client) == 0:
                    return
            except Exception:
                log.exception("delivery round failed; trying again")
                return

    def stop(self) -> None:
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)  # the round in flight ends with its attempt
        if self._client is not None:
            self._client.close()
