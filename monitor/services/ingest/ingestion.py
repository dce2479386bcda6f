"""Ingesting prediction logs and delayed ground-truth labels.

The contract a serving system relies on:
- validated against the model version's schema; every bad record reported by index, field, reason;
- by default a request with any bad record stores nothing; ``on_error="skip"`` stores the good ones;
- idempotent by (model, prediction id): a retried batch counts its records as duplicates;
- the function returns only after the commit, so an acknowledgement means the data is durable.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

import psycopg.errors
from sqlalchemy import Connection

from monitor.db import log_repo, partitions, reference_repo
from monitor.db.registry_repo import VersionRow
from monitor.domain.fast_batch import peek_batch
from monitor.domain.payloads import parse_records
from monitor.domain.personal_data import PersonalData
from monitor.domain.records import LabelRow, PredictionRow, RecordValidator, TimeBounds, time_bounds
from monitor.domain.unstorable import text_problem
from monitor.errors import Conflict, InvalidRecords, LogBusy, PayloadTooLarge, RecordError
from monitor.services.catalog import registry
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs import summary_deltas

log = logging.getLogger(__name__)


class OnError(StrEnum):
    reject = "reject"
    skip = "skip"


@dataclass
class PredictionResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    # One entry per input record, in order: its prediction id (generated when absent), None if rejected.
    ids: list[str | None] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


@dataclass
class LabelResult:
    accepted: int = 0
    new: int = 0
    replaced: int = 0
    matched: int = 0
    waiting: int = 0
    rejected: int = 0
    errors: list[RecordError] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


def _clock(ctx: ServiceContext) -> tuple[datetime, TimeBounds]:
    """Now, and the timestamps a record may carry: within retention, not beyond the clock skew."""
    s = ctx.settings
    now = _now()
    return now, time_bounds(now, s.retention_days, s.max_future_skew_seconds)


def _check_size(ctx: ServiceContext, n_records: int) -> None:
    limit = ctx.settings.max_batch_records
    if n_records > limit:
        raise PayloadTooLarge(f"{n_records} records in one request; the limit is {limit} (MONITOR_MAX_BATCH_RECORDS)")


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


# A prediction for an hour that a scheduler run may already have closed (computed the window
# ending at its boundary without it) marks that hour, so the scheduler summarises it again and
# recomputes the windows that hold it. The minute of margin covers a request still committing as
# the hour turns and small clock differences between API and scheduler hosts. Traffic logged as
# it happens marks nothing outside that minute.
LATE_MARGIN = timedelta(minutes=1)
PARTITION_RETRY_SECONDS = 5.0  # a new day's partition waited for a long read of the log


def _late_hours(rows: list[tuple[int, PredictionRow]], now: datetime) -> list[datetime]:
    open_from = _hour(now + LATE_MARGIN)
    return sorted({_hour(r.ts) for _, r in rows if r.ts < open_from})


def _violation_counts(errors: list[RecordError]) -> Counter[str]:
    """Schema violations by field, with unknown names folded so a bad client cannot grow the table."""
    counts: Counter[str] = Counter()
    for e in errors:
        if e.reason.startswith("unknown"):
            head = e.field.split(".", 1)[0] if "." in e.field else ""
            counts[f"{head}.<unknown>" if head else "<unknown>"] += 1
        else:
            counts[e.field or "<record>"] += 1
    return counts


def _group_by_model(
    records: list[Any], model: str | None, version: str | None, errors: list[RecordError]
) -> dict[tuple[str, str | None], list[int]]:
    """Indices of the records per (model, version): a record names its own or inherits the batch's."""
    groups: dict[tuple[str, str | None], list[int]] = {}
    for i, rec in enumerate(records):
        if type(rec) is not dict:
            errors.append(RecordError(i, "", "expected a JSON object"))
            continue
        m = rec.get("model", model)
        v = rec.get("version", version)
        if type(m) is not str:
            errors.append(RecordError(i, "model", "is required (in the record or the batch)"))
            continue
        if model is not None and m != model:
            errors.append(RecordError(i, "model", f"{m!r} differs from the batch's model {model!r}"))
            continue
        if v is not None and type(v) is not str:
            v = str(v)
        for name, value in (("model", m), ("version", v)):
            if value is not None and (reason := text_problem(value)):
                errors.append(RecordError(i, name, reason))
                break
        else:
            groups.setdefault((m, v), []).append(i)
    return groups


def _errors_by_model(errors: list[RecordError], index_model: dict[int, int]) -> dict[int, list[RecordError]]:
    """The errors of each model's records (errors of records without a resolved model are dropped)."""
    out: dict[int, list[RecordError]] = {}
    for e in errors:
        if e.index is not None and e.index in index_model:
            out.setdefault(index_model[e.index], []).append(e)
    return out


def _record_rejections(
    ctx: ServiceContext,
    kind: str,
    errors: list[RecordError],
    index_model: dict[int, int],
    now: datetime,
) -> None:
    """Count rejected records for data quality, in their own transaction (the data itself is not stored)."""
    per_model = _errors_by_model(errors, index_model)
    try:
        with ctx.uow() as uow:
            for mid, errs in per_model.items():
                n_rows = len({e.index for e in errs})
                log_repo.add_ingest_stats(uow.raw, mid, _hour(now), kind, 0, 0, n_rows)
                log_repo.add_schema_violations(uow.conn, mid, _hour(now), dict(_violation_counts(errs)))
            uow.commit()
    except Exception:  # counting must never turn a 422 into a 500
        log.exception("could not record rejected %s records", kind)


def count_rejected(ctx: ServiceContext, kind: str, model_id: int, errors: list[RecordError]) -> None:
    """Count records refused before validation (a KServe instance that cannot be read) like the
    ones validation refuses: in the rejected total and as schema violations."""
    _record_rejections(
        ctx, kind, errors, dict.fromkeys((e.index for e in errors if e.index is not None), model_id), _now()
    )


def _settle_errors(
    ctx: ServiceContext,
    kind: str,
    errors: list[RecordError],
    n_records: int,
    index_model: dict[int, int],
    now: datetime,
    on_error: OnError,
) -> int:
    """Order the errors by record; in reject mode, count them and refuse the whole request.
    Returns the number of rejected records."""
    errors.sort(key=lambda e: e.index if e.index is not None else -1)
    rejected = len({e.index for e in errors})
    if errors and on_error is OnError.reject:
        _record_rejections(ctx, kind, errors, index_model, now)
        raise InvalidRecords(
            f"{rejected} of {n_records} {kind}s are invalid; nothing was stored "
            "(use ?on_error=skip to store the valid ones)",
            errors,
        )
    return rejected


def _ensure_partitions(ctx: ServiceContext, rows: list[tuple[int, PredictionRow]]) -> None:
    days = {partitions.day_of(r.ts) for _, r in rows}
    missing = ctx.partitions.missing(days)
    if missing:
        try:
            with ctx.uow() as uow:
                partitions.create_partitions(uow.conn, missing)
                uow.commit()
        except Exception as exc:
            if not partitions.is_lock_timeout(exc):
                raise
            first, last = min(missing), max(missing)
            span = f"{first}" if first == last else f"{first} to {last}"
            raise LogBusy(
                f"the log's partition for {span} could not be made now: a long read of the log holds it; "
                "nothing was stored, retry",
                PARTITION_RETRY_SECONDS,
            ) from exc
        ctx.partitions.add(missing)


def ingest_prediction_body(
    ctx: ServiceContext, body: bytes, content_type: str, *, on_error: OnError = OnError.reject
) -> PredictionResult:
    """Ingest a request body. A JSON batch for one model version is decoded and validated in one
    pass in C (``monitor.domain.fast_batch``); any other body, and any batch with a record that
    needs converting or explaining, goes through the full Python path with the same outcome."""
    # A NUL (only ever written \u0000 in JSON) cannot be stored: the Python path names its record.
    if content_type == "application/json" and body[:1] == b"{" and b"\\u0000" not in body:
        rows = _decode_fast(ctx, body)
        if rows is not None:
            vrow, decoded = rows
            result = PredictionResult(ids=[None] * len(decoded))
            _require_references(ctx, [vrow])
            valid = {vrow.model_id: [(i, vrow.version_id, r) for i, r in enumerate(decoded)]}
            _store_valid(ctx, result, valid, [], {}, _now(), {vrow.version_id: _personal(ctx, vrow)})
            return result
    records, model, version = parse_records(body, content_type)
    return ingest_predictions(ctx, records, model=model, version=version, on_error=on_error)


def _decode_fast(ctx: ServiceContext, body: bytes) -> tuple[VersionRow, list[PredictionRow]] | None:
    batch = peek_batch(body)
    if batch is None:
        return None
    model, version, records = batch
    vrow = registry.resolve_cached(ctx, [(model, version)])[(model, version)]
    decoder = ctx.batch_decoder(vrow.version_id, vrow.schema)
    if decoder is None:
        return None
    rows = decoder.decode(records, model, version, _clock(ctx)[1])
    if rows is None:
        return None
    _check_size(ctx, len(rows))
    return vrow, rows


def ingest_predictions(
    ctx: ServiceContext,
    records: list[Any],
    *,
    model: str | None = None,
    version: str | None = None,
    on_error: OnError = OnError.reject,
) -> PredictionResult:
    """Ingest decoded records, each validated and, when bad, explained by index, field and reason."""
    _check_size(ctx, len(records))
    now, bounds = _clock(ctx)
    result = PredictionResult(ids=[None] * len(records))
    errors = result.errors

    groups = _group_by_model(records, model, version, errors)
    versions = registry.resolve_cached(ctx, list(groups))
    index_model: dict[int, int] = {}
    # model id -> [(index, version id, row)]
    valid: dict[int, list[tuple[int, int, PredictionRow]]] = {}
    for key, indices in groups.items():
        vrow = versions[key]
        validator: RecordValidator = ctx.validator(vrow.version_id, vrow.schema)
        bucket = valid.setdefault(vrow.model_id, [])
        for i in indices:
            index_model[i] = vrow.model_id
            row = validator.prediction(i, records[i], bounds, errors)
            if row is not None:
                bucket.append((i, vrow.version_id, row))

    result.rejected = _settle_errors(ctx, "prediction", errors, len(records), index_model, now, on_error)
    _require_references(ctx, list(versions.values()))
    personal = {vrow.version_id: _personal(ctx, vrow) for vrow in versions.values()}
    _store_valid(ctx, result, valid, errors, index_model, now, personal)
    return result


def _require_references(ctx: ServiceContext, versions: list[VersionRow]) -> None:
    """A version that keeps summaries only has its features summarised at ingestion, against its
    reference, and stored nowhere: without a reference they would be lost, so its predictions
    are refused (409, nothing stored) until one is uploaded. Read again where this process knew
    of none: one may have been uploaded through another."""

    def load(version_id: int) -> int | None:
        with ctx.uow() as uow:
            return reference_repo.measured_reference_id(uow.conn, version_id)

    for vrow in versions:
        if not _personal(ctx, vrow).summaries_only:
            continue
        vid = vrow.version_id
        if ctx.active_reference(vid, partial(load, vid)) is None:
            ctx.forget_active_reference(vid)
            if ctx.active_reference(vid, partial(load, vid)) is None:
                raise Conflict(
                    f"model {vrow.model_name!r} version {vrow.version!r} keeps summaries only "
                    "(personal_data.rows): its predictions are summarised at ingestion against its "
                    "reference and not stored, so upload the reference first; nothing was stored"
                )


def _hashed_label_ids(
    ctx: ServiceContext, conn: Connection, model_id: int, personal: PersonalData, rows: list[LabelRow]
) -> list[LabelRow]:
    """Labels of a model that stores its prediction ids hashed name them by their hash: under
    the first secret key, or under an older one where the prediction was stored before a
    rotation (so a label still joins a prediction logged before it)."""
    hashes = {r.prediction_id: personal.stored_ids(r.prediction_id, ctx.secrets.value_hashes) for r in rows}
    older = [h for candidates in hashes.values() for h in candidates[1:]]
    found = log_repo.stored_prediction_ids(conn, model_id, older) if older else set()

    def stored_as(pid: str) -> str:
        return next((h for h in hashes[pid][1:] if h in found), hashes[pid][0])

    return [dataclasses.replace(r, prediction_id=stored_as(r.prediction_id)) for r in rows]


def _personal(ctx: ServiceContext, vrow: VersionRow) -> PersonalData:
    return ctx.personal_data(vrow.version_id, vrow.schema)


def _store_valid(
    ctx: ServiceContext,
    result: PredictionResult,
    valid: dict[int, list[tuple[int, int, PredictionRow]]],
    errors: list[RecordError],
    index_model: dict[int, int],
    now: datetime,
    personal: dict[int, PersonalData],
) -> None:
    """Store validated rows (model id -> [(index, version id, row)]) and fill in ``result``.
    ``personal``: each version's policies for personal data, applied to its rows before anything
    is stored or summarised; the answer names ids as they were sent."""
    # Repeats of an id inside one request are duplicates of its first occurrence.
    to_store: dict[int, list[tuple[int, int, PredictionRow]]] = {}
    sent: dict[str, str] = {}  # an id as stored (hashed) -> as sent
    hasher = ctx.secrets.value_hash
    for mid, rows in valid.items():
        seen: set[str] = set()
        keep = to_store.setdefault(mid, [])
        for i, vid, row in rows:
            result.ids[i] = row.prediction_id
            if row.prediction_id in seen:
                result.duplicate_ids.append(row.prediction_id)
            else:
                seen.add(row.prediction_id)
                stored = personal[vid].prediction(row, hasher)
                if stored.prediction_id != row.prediction_id:
                    sent[stored.prediction_id] = row.prediction_id
                keep.append((i, vid, stored))

    all_rows = [(vid, row) for rows in to_store.values() for _, vid, row in rows]
    _ensure_partitions(ctx, all_rows)
    stored_dupes = _store_predictions(ctx, to_store, errors, index_model, now, personal)
    result.duplicate_ids.extend(sent.get(pid, pid) for pid in stored_dupes)
    result.duplicates = len(result.duplicate_ids)
    result.accepted = len(all_rows) - len(stored_dupes)


def _store_predictions(
    ctx: ServiceContext,
    to_store: dict[int, list[tuple[int, int, PredictionRow]]],
    errors: list[RecordError],
    index_model: dict[int, int],
    now: datetime,
    personal: dict[int, PersonalData],
) -> list[str]:
    """Optimistic first: COPY the keys, as new ids are the common case (about three times cheaper
    than INSERT ... ON CONFLICT). If any id exists (a client retry), that transaction has written
    nothing else yet; it is rolled back and the request is stored again claiming ids one by one."""
    try:
        return _store_predictions_once(ctx, to_store, errors, index_model, now, personal, optimistic=True)
    except psycopg.Error as exc:
        if not log_repo.is_duplicate_key(exc):
            raise
        return _store_predictions_once(ctx, to_store, errors, index_model, now, personal, optimistic=False)


def _store_predictions_once(
    ctx: ServiceContext,
    to_store: dict[int, list[tuple[int, int, PredictionRow]]],
    errors: list[RecordError],
    index_model: dict[int, int],
    now: datetime,
    personal: dict[int, PersonalData],
    *,
    optimistic: bool,
) -> list[str]:
    """One transaction for the whole request. Returns the ids that were stored already."""
    duplicates: list[str] = []
    rejected_by_model = _errors_by_model(errors, index_model)
    with ctx.uow() as uow:
        for mid in set(to_store) | set(rejected_by_model):
            rows = [(vid, r) for _, vid, r in to_store.get(mid, [])]
            if optimistic:
                if rows:
                    log_repo.copy_prediction_keys(uow.raw, mid, rows)
                new = rows
            else:
                new_ids = log_repo.claim_prediction_ids(uow.raw, mid, rows) if rows else set()
                new = [(vid, r) for vid, r in rows if r.prediction_id in new_ids]
                duplicates.extend(r.prediction_id for _, r in rows if r.prediction_id not in new_ids)
            if new:
                # the keys are read only if a row names its data subject
                # stored without what is only summarised; summarised whole, just below
                stored = [(vid, personal[vid].stored(r)) for vid, r in new]
                log_repo.copy_predictions(uow.raw, mid, stored, lambda subject: ctx.secrets.subject_hash(subject))
                # each row summarised once, here, committed with it (monitor.services.jobs.summary_deltas)
                summary_deltas.write_batch_deltas(ctx, uow.conn, uow.raw, mid, new)
                log_repo.attach_waiting_labels(uow.raw, mid, [r.prediction_id for _, r in new])
                # the clock read last, just before the commit: the margin covers only the commit
                late = _late_hours(new, _now())
                if late:
                    log_repo.mark_stale_hours(uow.raw, mid, late, "predictions")
            errs = rejected_by_model.get(mid, [])
            log_repo.add_ingest_stats(
                uow.raw, mid, _hour(now), "prediction", len(new), len(rows) - len(new), len({e.index for e in errs})
            )
            if errs:
                log_repo.add_schema_violations(uow.conn, mid, _hour(now), dict(_violation_counts(errs)))
        uow.commit()
    return duplicates


def ingest_labels(
    ctx: ServiceContext,
    records: list[Any],
    *,
    model: str | None = None,
    on_error: OnError = OnError.reject,
) -> LabelResult:
    """Store ground truth by prediction id. A label may arrive before its prediction; it joins later."""
    _check_size(ctx, len(records))
    now, bounds = _clock(ctx)
    result = LabelResult()
    errors = result.errors
    groups = _group_by_model(records, model, None, errors)
    # Labels belong to the model, not a version: checked against the newest version's classes.
    versions = registry.resolve_cached(ctx, [(name, None) for name, _ in groups])
    index_model: dict[int, int] = {}
    valid: dict[int, dict[str, LabelRow]] = {}
    personal: dict[int, PersonalData] = {}  # by model: its newest version's
    for (name, _), indices in groups.items():
        vrow = versions[(name, None)]
        personal[vrow.model_id] = _personal(ctx, vrow)
        validator = ctx.validator(vrow.version_id, vrow.schema)
        by_id = valid.setdefault(vrow.model_id, {})
        for i in indices:
            index_model[i] = vrow.model_id
            row = validator.label(i, records[i], bounds, errors)
            if row is not None:
                by_id[row.prediction_id] = row  # a later label for the same id in one request wins

    result.rejected = _settle_errors(ctx, "label", errors, len(records), index_model, now, on_error)
    with ctx.uow() as uow:
        for mid, by_id in valid.items():
            if not by_id:
                continue
            rows = list(by_id.values())
            if personal[mid].hashed_ids:
                rows = _hashed_label_ids(ctx, uow.conn, mid, personal[mid], rows)
            stored = log_repo.upsert_labels(uow.conn, mid, rows, now)
            result.new += stored.new
            result.replaced += stored.replaced
            result.matched += stored.matched
            # new labels' quality summarised once, here, committed with them (summary_deltas)
            summary_deltas.write_label_deltas(ctx, uow.conn, uow.raw, mid, stored.new_matched)
            log_repo.add_ingest_stats(uow.raw, mid, _hour(now), "label", stored.new + stored.replaced, 0, 0)
        uow.commit()
    result.accepted = result.new + result.replaced
    result.waiting = result.accepted - result.matched
    return result
