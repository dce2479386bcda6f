"""Client SDK for serving systems.

``log_prediction`` and ``log_label`` never block the caller's request path: records go into a
bounded in-memory queue and a background thread ships them in batches, retrying with the
service's own policy (``monitor_client.retry``: exponential backoff with full jitter, honouring
Retry-After as seconds or an HTTP date). Connection errors, timeouts, 408 and 429 (the service
away or busy) are retried until the client is closed. A 5xx answer is retried at most
``max_attempts`` times; then the batch is split in halves, each sent on its own, so that the
record at fault is isolated and only it is dropped (``stats.dropped``, the reason logged): one
bad record never jams the records behind it. When the queue is full a record is dropped and
counted (``stats.dropped``) and a warning is logged: dropping is reported, never silent. Records
the server rejects as invalid are counted in ``stats.rejected`` with the server's reasons logged.
``close(timeout)`` returns within ``timeout``: what is not sent by then counts as dropped.

The service's certificate is verified (``https://`` URLs) against the system's authorities, or
against ``ca_bundle`` (a PEM file) for a private CA; a certificate that does not verify is never
accepted, and the background sender logs it as an error while it retries.

    client = MonitorClient("https://monitor:8000", api_key, model="credit")
    pid = client.log_prediction({"age": 41, "income": 52000.0}, prediction="approve", latency_ms=12.5)
    ...
    client.log_label(pid, "default")
    client.close()

Receivers of the service's webhooks (alerts, retraining triggers) check them with
``verify_webhook(secret, request.headers, raw_body)``: it returns the ``webhook-id`` to drop
duplicates by, or raises ``WebhookVerificationError``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import ssl
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from monitor_client.retry import backoff_seconds, retry_after_seconds
from monitor_client.signing import WebhookVerificationError
from monitor_client.signing import verify as verify_webhook

__all__ = ["ClientStats", "MonitorAPIError", "MonitorClient", "WebhookVerificationError", "verify_webhook"]

log = logging.getLogger("monitor.client")


def _finite(value: Any) -> Any:
    """``value`` with every NaN and infinity in it as None (what JSON can carry)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays (what a scikit-learn model hands back) as Python values."""
    if hasattr(value, "tolist"):
        return _finite(value.tolist())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> bytes:
    """Compact JSON, non-finite numbers as null (features' infinities are encoded before this,
    see ``_features``). The standard library's encoder: the client depends on nothing but httpx."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_plain).encode()
    except ValueError:  # a NaN or an infinity somewhere
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False, default=_plain).encode()


_BUSY_STATUS = {408, 429}  # the service is busy: retried until close, like a connection error
_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".parquet": "application/vnd.apache.parquet",
    ".pq": "application/vnd.apache.parquet",
    ".json": "application/json",
}


class MonitorAPIError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body
        self.retry_after: float | None = None  # seconds, from the answer's Retry-After


@dataclass
class ClientStats:
    queued: int = 0
    sent: int = 0  # acknowledged by the server (stored or duplicate)
    duplicates: int = 0
    rejected: int = 0  # refused by the server as invalid
    dropped: int = 0  # never sent: queue full, or still unsent when close() gave up
    retries: int = 0


@dataclass(frozen=True, slots=True)
class _Item:
    kind: str  # "prediction" | "label"
    model: str
    version: str | None
    record: dict[str, Any]


def _features(features: Mapping[str, Any]) -> dict[str, Any]:
    """The features as JSON can carry them: JSON has no infinity and no NaN (a plain encoder
    would write null for both, and ±inf would arrive as a missing value), so ±inf goes as the
    strings the server keeps it as ("Infinity", "-Infinity"; protobuf's JSON mapping) and NaN as
    missing. NumPy scalars go as the Python values they hold."""
    out = dict(features)
    for name, v in out.items():
        if hasattr(v, "item") and not isinstance(v, str | bytes):  # a NumPy scalar
            v = out[name] = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            out[name] = None if v != v else ("Infinity" if v > 0 else "-Infinity")
    return out


def _mapping_params(mapping: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A column mapping as the reference upload's query parameters."""
    out: list[tuple[str, str]] = []
    for key, value in mapping.items():
        if key in ("scores", "features", "attributions"):
            param = {"scores": "scores", "features": "feature", "attributions": "attribution"}[key]
            out += [(param, f"{k}:{v}") for k, v in value.items()]
        elif key == "ignore":
            out += [("ignore", str(c)) for c in value]
        elif key == "ignore_unknown":
            out.append(("ignore_unknown", "true" if value else "false"))
        elif key in ("prediction", "label", "score", "timestamp", "id"):
            out.append((key, str(value)))
        else:
            raise ValueError(f"unknown column mapping key {key!r}")
    return out


def _progress(total: int, desc: str) -> Any:
    """A tqdm progress bar where tqdm is installed (the client does not need it), else None."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc)


def _iso(ts: datetime | str | float | None) -> str | float | None:
    return ts.isoformat() if isinstance(ts, datetime) else ts


def _untrusted(exc: BaseException) -> bool:
    """Whether a request failed because the server's certificate did not verify."""
    cause = exc.__cause__ or exc.__context__
    return isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc)


class MonitorClient:
    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        model: str | None = None,
        version: str | None = None,
        max_queue: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.5,
        timeout: float = 10.0,
        backoff_base: float = 0.2,
        backoff_max: float = 30.0,
        max_attempts: int = 8,
        transport: httpx.BaseTransport | None = None,
        ca_bundle: str | os.PathLike[str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.version = version
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_attempts = max(1, max_attempts)
        self.timeout = timeout
        self.stats = ClientStats()
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "model-monitor-client"},
            timeout=timeout,
            transport=transport,
            verify=ssl.create_default_context(cafile=os.fspath(ca_bundle)) if ca_bundle is not None else True,
        )
        self._told_untrusted = False
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=max_queue)
        self._closing = threading.Event()
        self._deadline: float | None = None
        self._last_drop_warning = 0.0
        self._stats_lock = threading.Lock()
        # records the sender holds and has not counted yet; once close() gave up on them (counted
        # dropped), ``_abandoned``: what the sender learns of them later counts nothing
        self._in_flight = 0
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="monitor-client-sender", daemon=True)
        self._thread.start()

    # -- the non-blocking logging calls -----------------------------------------------------------

    def log_prediction(
        self,
        features: Mapping[str, Any],
        prediction: Any,
        *,
        prediction_id: str | None = None,
        timestamp: datetime | str | float | None = None,
        scores: Mapping[str, float] | float | None = None,
        latency_ms: float | None = None,
        segments: Mapping[str, Any] | None = None,
        model: str | None = None,
        version: str | None = None,
        request_id: str | None = None,
        subject: str | None = None,
        attributions: Mapping[str, float] | None = None,
    ) -> str:
        """Queue a prediction; returns its id (generated here when not given, so a retry is idempotent).
        ``version``: the model version that made it (champion, canary, shadow...); ``request_id``:
        the serving request it answered, the same for every version that scored that request (a
        shadow's prediction is paired with the champion's by it); ``subject``: the person it is
        about (the service stores only a keyed hash of it, so that ``erase_subject`` can find it);
        ``attributions``: each feature's contribution to this prediction (SHAP values, say; NumPy
        scalars taken, NaN sent as missing)."""
        pid = prediction_id or uuid.uuid4().hex
        record: dict[str, Any] = {"prediction_id": pid, "features": _features(features), "prediction": prediction}
        if timestamp is not None:
            record["timestamp"] = _iso(timestamp)
        if scores is not None:
            record["scores"] = scores if isinstance(scores, int | float) else dict(scores)
        if latency_ms is not None:
            record["latency_ms"] = latency_ms
        if segments:
            record["segments"] = dict(segments)
        if request_id is not None:
            record["request_id"] = request_id
        if subject is not None:
            record["subject"] = subject
        if attributions:
            record["attributions"] = _features(attributions)
        self._enqueue(_Item("prediction", self._model(model), version or self.version, record))
        return pid

    def log_label(
        self,
        prediction_id: str,
        label: Any,
        *,
        timestamp: datetime | str | float | None = None,
        model: str | None = None,
    ) -> None:
        """Queue the ground truth for a prediction id."""
        record: dict[str, Any] = {"prediction_id": prediction_id, "label": label}
        if timestamp is not None:
            record["timestamp"] = _iso(timestamp)
        self._enqueue(_Item("label", self._model(model), None, record))

    def log_labels(self, labels: Mapping[str, Any], *, model: str | None = None) -> None:
        for pid, label in labels.items():
            self.log_label(pid, label, model=model)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was sent (or given up on). True when the queue drained."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining if remaining is not None else 0.5)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Send what is queued for at most ``timeout`` seconds, then stop; returns within it. What
        is still unsent then counts as dropped."""
        self._deadline = time.monotonic() + timeout
        self._closing.set()
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        with self._stats_lock:  # a request still waiting on a silent server: its records are dropped
            held, self._in_flight, self._abandoned = self._in_flight, 0, True
            self.stats.dropped += held
        if held:
            log.error("monitor client closed with %d records in a request still unanswered", held)
        self._drop_unsent()
        self._http.close()

    def _drop_unsent(self) -> None:
        n = 0
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
            self._queue.task_done()
            n += 1
        if n:
            with self._stats_lock:
                self.stats.dropped += n
            log.error("monitor client closed with %d records never sent", n)

    def __enter__(self) -> MonitorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- synchronous admin calls --------------------------------------------------------------------

    def register_model(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/v1/models", content=dumps(dict(spec)))

    def erase_subject(self, subject: str) -> dict[str, Any]:
        """Erase every prediction that named ``subject``, in every model, with its labels (admin key)."""
        return self._call("POST", "/v1/erasures", json={"subject": subject})

    def get_model(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/models/{name}")

    def upload_reference(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        version: str | None = None,
        progress: bool = True,
        mapping: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upload a CSV, Parquet or JSON reference file, streaming it with a progress bar.
        ``mapping`` names the file's own columns: ``prediction``, ``label``, ``score``,
        ``scores`` ({class: column}), ``features`` ({feature: column}), ``timestamp``, ``id``,
        ``ignore`` ([columns]), ``ignore_unknown`` (True)."""
        path = Path(path)
        content_type = _CONTENT_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise ValueError(f"{path.name}: expected a .csv, .parquet or .json file")
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            bar = _progress(size, f"uploading {path.name}") if progress else None
            with path.open("rb") as fh:
                while chunk := fh.read(256 * 1024):
                    if bar is not None:
                        bar.update(len(chunk))
                    yield chunk
            if bar is not None:
                bar.close()

        params: list[tuple[str, str]] = [("version", version)] if version else []
        params += _mapping_params(mapping or {})
        return self._call(
            "POST",
            f"/v1/models/{self._model(model)}/reference",
            content=chunks(),
            params=params,
            headers={"Content-Type": content_type, "Content-Length": str(size)},
        )

    def get_prediction(self, prediction_id: str, *, model: str | None = None) -> dict[str, Any]:
        """A stored prediction with its label and label revisions, the windows it counted in and
        the alerts and retraining requests about them (a key with the `data` scope)."""
        path = f"/v1/predictions/{quote(prediction_id, safe='')}"
        return self._call("GET", path, params={"model": self._model(model)})

    def export_window(
        self,
        start: datetime,
        end: datetime,
        path: str | Path,
        *,
        model: str | None = None,
        version: str | None = None,
        slice_hours: float = 1.0,
        attempts: int = 5,
    ) -> int:
        """Download a window's predictions with their labels as one CSV file (a key with the
        `data` scope); returns the bytes written. The window is fetched a slice of ``slice_hours``
        at a time, so a download that breaks off is taken again from the slice it broke in, the
        file cut back to where that slice began: up to ``attempts`` tries a slice, with backoff."""
        path = Path(path)
        params = {"format": "csv", **({"version": version} if version else {})}
        url = f"/v1/models/{self._model(model)}/export"
        with path.open("wb") as out:
            at = start
            while at < end:
                until = min(end, at + timedelta(hours=slice_hours))
                mark = out.tell()
                for attempt in range(1, attempts + 1):
                    try:
                        self._export_slice(url, params | {"start": at.isoformat(), "end": until.isoformat()}, out)
                        break
                    except (httpx.TransportError, MonitorAPIError) as exc:
                        retryable = (
                            not isinstance(exc, MonitorAPIError) or exc.status in (408, 429) or exc.status >= 500
                        )
                        if attempt == attempts or not retryable:
                            raise
                        out.seek(mark)
                        out.truncate()
                        # a 429 says when: the server frees a broken download's slot once it sees it gone
                        wait = exc.retry_after if isinstance(exc, MonitorAPIError) else None
                        time.sleep(backoff_seconds(attempt, wait, base=self.backoff_base, cap=self.backoff_max))
                at = until
            return out.tell()

    def _export_slice(self, url: str, params: dict[str, str], out: Any) -> None:
        """One slice appended to ``out`` (its header line only when ``out`` is empty)."""
        in_header = out.tell() > 0  # the header line is dropped from every slice but the first
        with self._http.stream("GET", url, params=params, timeout=None) as resp:
            if resp.status_code >= 400:
                resp.read()
                error = MonitorAPIError(resp.status_code, resp.json() if resp.content else {})
                error.retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                raise error
            for piece in resp.iter_bytes():
                if in_header:
                    end_of_header = piece.find(b"\n")
                    if end_of_header < 0:
                        continue
                    piece, in_header = piece[end_of_header + 1 :], False
                out.write(piece)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        resp = self._http.request(method, path, headers=headers, **kwargs)
        body = resp.json() if resp.content else {}
        if resp.status_code >= 400:
            raise MonitorAPIError(resp.status_code, body)
        return body

    # -- the sender thread -------------------------------------------------------------------------

    def _model(self, model: str | None) -> str:
        m = model or self.model
        if not m:
            raise ValueError("no model: pass model= here or to MonitorClient(...)")
        return m

    def _enqueue(self, item: _Item) -> None:
        if self._closing.is_set():
            raise RuntimeError("the client is closed")
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._stats_lock:
                self.stats.dropped += 1
                dropped = self.stats.dropped
            now = time.monotonic()
            if now - self._last_drop_warning > 10:
                self._last_drop_warning = now
                log.warning("monitor client queue full: %d records dropped so far", dropped)
            return
        with self._stats_lock:
            self.stats.queued += 1

    def _run(self) -> None:
        while True:
            batches = self._next_batches()
            for batch in batches:
                with self._stats_lock:
                    if self._abandoned:  # close() counted what is left: nothing more goes
                        return
                    self._in_flight += len(batch)
                self._send_batch(batch)
                for _ in batch:
                    self._queue.task_done()
            if not batches and self._closing.is_set():
                return

    def _next_batches(self) -> list[list[_Item]]:
        """Up to ``batch_size`` items, waiting at most ``flush_interval``, as one batch per
        destination (kind, model, version): a server that logs each prediction and then the label
        of an earlier one sends two batches, not a request per record. Predictions go before
        labels: the service joins a label that comes first once its prediction arrives, but in
        this order it is joined at once."""
        try:
            first = self._queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return []
        by_destination: dict[tuple[str, str, str | None], list[_Item]] = {
            (first.kind, first.model, first.version): [first]
        }
        end = time.monotonic() + self.flush_interval
        for _ in range(self.batch_size - 1):
            try:
                item = self._queue.get(timeout=max(0.0, end - time.monotonic()) if not self._closing.is_set() else 0)
            except queue.Empty:
                break
            by_destination.setdefault((item.kind, item.model, item.version), []).append(item)
        return sorted(by_destination.values(), key=lambda batch: batch[0].kind != "prediction")

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _send_batch(self, batch: list[_Item]) -> None:
        """Send ``batch``; after ``max_attempts`` server errors, split it and send each half, down
        to the one record at fault, which is dropped."""
        outcome = self._send_once(batch)
        if outcome is None or self._past_deadline():
            if outcome is not None:  # closed before the batch could go
                self._settle(len(batch), "dropped")
                log.error("monitor client closed with %d unsent %ss", len(batch), batch[0].kind)
            return
        if len(batch) == 1:
            self._settle(1, "dropped")
            log.error(
                "monitor client dropped %s %s after %d failed attempts: %s",
                batch[0].kind,
                batch[0].record.get("prediction_id"),
                self.max_attempts,
                outcome,
            )
            return
        half = len(batch) // 2
        self._send_batch(batch[:half])
        self._send_batch(batch[half:])

    def _send_once(self, batch: list[_Item]) -> str | None:
        """Try ``batch`` until it is answered, counting its outcome; None when done with it, else
        why it failed ``max_attempts`` times (server errors) or could not go before close()."""
        first = batch[0]
        path = "/v1/predictions" if first.kind == "prediction" else "/v1/labels"
        body: dict[str, Any] = {"model": first.model, "records": [i.record for i in batch]}
        if first.version:
            body["version"] = first.version
        payload = dumps(body)
        server_errors = 0
        attempt = 0
        while True:
            retry_after: float | None = None
            remaining = None if self._deadline is None else self._deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return "the client was closed"
            try:
                resp = self._http.post(
                    path,
                    content=payload,
                    params={"on_error": "skip"},
                    headers={"Content-Type": "application/json"},
                    timeout=self.timeout if remaining is None else min(self.timeout, max(remaining, 0.05)),
                )
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
                if _untrusted(exc) and not self._told_untrusted:
                    self._told_untrusted = True  # once: it is retried, in case the server's certificate is fixed
                    log.error("monitor client: the service's certificate is not trusted (ca_bundle=...?): %s", why)
                log.debug("monitor client: %s failed: %s", path, why)
            else:
                if resp.status_code < 300:
                    self._account(resp.json(), len(batch))
                    return None
                if resp.status_code < 500 and resp.status_code not in _BUSY_STATUS:
                    self._settle(len(batch), "rejected")
                    status, text = resp.status_code, resp.text[:2000]
                    log.error("monitor rejected %d %ss: HTTP %d %s", len(batch), first.kind, status, text)
                    return None
                why = f"HTTP {resp.status_code}: {resp.text[:300]}"
                retry_after = retry_after_seconds(resp.headers.get("retry-after"))
                if resp.status_code >= 500:
                    server_errors += 1
                    if server_errors >= self.max_attempts:
                        return why
            attempt += 1
            with self._stats_lock:
                self.stats.retries += 1
            sleep = backoff_seconds(attempt, retry_after, base=self.backoff_base, cap=self.backoff_max)
            if self._deadline is not None:
                sleep = min(sleep, max(0.0, self._deadline - time.monotonic()))
            if self._deadline is None:
                self._closing.wait(sleep)  # close() cuts the wait short
            else:
                time.sleep(sleep)

    def _settle(self, n: int, outcome: str, duplicates: int = 0) -> None:
        """Count ``n`` records the sender held as sent, rejected or dropped (and ``duplicates`` of
        the sent), unless close() counted them dropped already."""
        with self._stats_lock:
            if self._abandoned:
                return
            setattr(self.stats, outcome, getattr(self.stats, outcome) + n)
            self.stats.duplicates += duplicates
            self._in_flight -= n

    def _account(self, result: dict[str, Any], n: int) -> None:
        rejected = int(result.get("rejected", 0))
        self._settle(n - rejected, "sent", int(result.get("duplicates", 0)))
        self._settle(rejected, "rejected")
        if rejected:
            log.warning("monitor rejected %d records: %s", rejected, result.get("errors", [])[:20])
