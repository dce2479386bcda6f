"""Which predictions mark their hour for the scheduler to do again (see ``tests/integration/test_late_data.py``)."""

from __future__ import annotations

from datetime import datetime

import pytest

from monitor.domain.records import PredictionRow
from monitor.services.ingest import ingestion


@pytest.mark.parametrize(
    ("clock", "ts", "marked"),
    [
        ("10:30:00", "10:05:00", False),  # the hour still open
        ("10:30:00", "09:59:59", True),  # the hour before: a run may have closed it
        ("10:59:30", "10:20:00", True),  # the last minute: the request may commit after the boundary
        ("10:58:59", "10:20:00", False),
        ("10:30:00", "03:00:00", True),
    ],
)
def test_which_predictions_mark_their_hour(clock: str, ts: str, marked: bool) -> None:
    day = "2026-11-20T"
    now = datetime.fromisoformat(day + clock + "+00:00")
    row = PredictionRow("x", datetime.fromisoformat(day + ts + "+00:00"), {}, 1, None, None, None)
    assert bool(ingestion._late_hours([(1, row)], now)) is marked
