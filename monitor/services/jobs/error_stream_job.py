"""The concept-drift detector on each classification model's error stream, run across windows.

After a run has summarised its hours, ``advance`` feeds the detector every minute from the first
hour whose quality summary changed (the hours the run summarised, and hours that late labels
marked stale) to the end, starting from its state after the hour before, and stores its state
and detections after each hour. A label for an hour the detector already read replays the
stream from that hour; a restarted scheduler goes on from the stored state. The window job only
reads what the detector found inside the window (``detections_in``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from monitor.db import error_stream_repo
from monitor.db.error_stream_repo import HourState
from monitor.db.registry_repo import VersionRow
from monitor.domain.monitoring import MonitoringConfig
from monitor.domain.schema import Task, schema_from_json
from monitor.metrics.error_stream import Detection, StreamInWindow, detector_from_state, new_detector, run_minutes
from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.windows import HOUR, hour_floor


def advance(
    ctx: ServiceContext,
    vrow: VersionRow,
    cfg: MonitoringConfig,
    reference_id: int,
    segments: Iterable[str],
    changed_from: datetime,
    end: datetime,
) -> int:
    """Run the model's detector over the hours from ``changed_from`` to ``end``, for all rows and
    each tracked segment ("" and "column=value"), in one transaction; the number of hours read."""
    if schema_from_json(vrow.schema).task is Task.regression:
        return 0  # regression has no 0/1 error stream; its residuals are tested per window
    method = cfg.concept_drift_detector
    read = 0
    with ctx.uow() as uow:
        conn = uow.conn
        for segment in segments:
            before = error_stream_repo.state_before(conn, vrow.model_id, vrow.version_id, segment, method, changed_from)
            if before is None:  # never run (or its state expired): from the first hour kept
                first = error_stream_repo.first_stream_hour(conn, vrow.model_id, vrow.version_id, reference_id, segment)
                if first is None or first >= end:
                    continue
                start, detector = min(first, changed_from), new_detector(method)
            else:
                start, detector = before.hour + HOUR, detector_from_state(method, before.state)
            hours = error_stream_repo.error_minutes(
                conn, vrow.model_id, vrow.version_id, reference_id, segment, start, end
            )
            states = []
            for hour, minutes in hours.items():
                found = run_minutes(detector, *_columns(minutes))
                states.append(
                    HourState(
                        hour, detector.to_state(), [d.to_json() for d in found], detector.rows, detector.error_rate
                    )
                )
            error_stream_repo.replace_from(conn, vrow.model_id, vrow.version_id, segment, method, start, states)
            read += len(states)
        uow.commit()
    return read


def _columns(minutes: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
    """[[minute, rows, errors], ...] as the three lists ``run_minutes`` takes."""
    return [m for m, _, _ in minutes], [n for _, n, _ in minutes], [e for _, _, e in minutes]


def detections_in(
    ctx: ServiceContext, vrow: VersionRow, cfg: MonitoringConfig, segment: str, start: datetime, end: datetime
) -> StreamInWindow | None:
    """None when the detector has read no hour of the window. A sliding window's part-hours are
    read whole, their detections kept when their minute lies in the window."""
    with ctx.uow() as uow:
        states = error_stream_repo.states_between(
            uow.conn, vrow.model_id, vrow.version_id, segment, cfg.concept_drift_detector, hour_floor(start), end
        )
    if not states:
        return None
    first, last = int(start.timestamp()) // 60, int(end.timestamp()) // 60
    found = [Detection.from_json(d) for s in states for d in s.detections]
    found = [d for d in found if first <= d.minute < last]
    return StreamInWindow(found, states[-1].rows, states[-1].error_rate)
