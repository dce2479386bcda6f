"""The error-stream detectors (monitor.metrics.error_stream): the same changes as River's on the
same rows, state that survives JSON, and batches of a minute's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from river import drift as river_drift

from monitor.metrics.error_stream import ADWIN, DDM, Adwin, StreamDDM, detector_from_state, new_detector, run_minutes


def _stream(seed: int, rate_after: float, rows: int = 5000, change: int = 3000) -> np.ndarray:
    r = np.random.default_rng(seed)
    e = np.concatenate([r.random(change) < 0.1, r.random(rows - change) < rate_after]).astype(int)
    e[:30:10] = 1  # an error in the warm-up: River's DDM would otherwise anchor on a zero deviation
    return e


def _river(detector: object, errors: np.ndarray) -> list[int]:
    found = []
    for i, e in enumerate(errors):
        detector.update(int(e))  # type: ignore[attr-defined]
        if detector.drift_detected:  # type: ignore[attr-defined]
            found.append(i)
    return found


def _ours(detector: Adwin | StreamDDM, errors: np.ndarray) -> list[int]:
    n = len(errors)
    return [d.minute for d in run_minutes(detector, list(range(n)), [1] * n, [int(e) for e in errors])]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize(("ours", "theirs"), [(Adwin, river_drift.ADWIN), (StreamDDM, river_drift.binary.DDM)])
def test_one_row_a_minute_finds_what_river_finds(seed: int, ours: type, theirs: type) -> None:
    errors = _stream(seed, rate_after=[0.1, 0.15, 0.2][seed % 3])
    assert _ours(ours(), errors) == _river(theirs(), errors)


@pytest.mark.parametrize("method", [ADWIN, DDM])
def test_state_through_json_goes_on_where_it_stopped(method: str) -> None:
    """A scheduler that stores the state after each hour and restarts finds the same changes as
    one that never stopped."""
    errors = _stream(7, rate_after=0.25)
    whole = _ours(new_detector(method), errors)
    found, state = [], None
    for hour in range(0, len(errors), 60):
        det = detector_from_state(method, state)
        part = errors[hour : hour + 60]
        found += [d.minute for d in run_minutes(det, list(range(hour, hour + len(part))), [1] * len(part), list(part))]
        state = json.loads(json.dumps(det.to_state()))
    assert found == whole and whole and min(whole) >= 3000


def test_adwin_buckets_keep_the_rows_error_count_and_variance() -> None:
    r = np.random.default_rng(3)
    det = Adwin(clock=10**9)  # never checks: the window keeps every minute
    rows = r.integers(1, 50, 300)
    errs = np.array([r.binomial(n, 0.2) for n in rows])
    run_minutes(det, list(range(300)), list(rows), list(errs))
    values = np.concatenate([np.r_[np.ones(e), np.zeros(n - e)] for n, e in zip(rows, errs, strict=True)])
    merged = [0.0, 0.0, 0.0]
    for b in det._buckets():
        merged = det._merge(merged, b)
    assert merged[0] == len(values) == det.rows
    assert merged[1] == values.sum()
    assert merged[2] == pytest.approx(((values - values.mean()) ** 2).sum())
    assert max(len(level) for level in det.levels) <= det.max_buckets
    assert len(det.levels) <= 8  # 300 minutes in buckets of 1, 2, 4, ... minutes


@pytest.mark.parametrize(("method", "rate_after", "within"), [(ADWIN, 0.14, 60), (DDM, 0.2, 120)])
def test_minutes_of_many_rows_find_a_change(method: str, rate_after: float, within: int) -> None:
    """ADWIN finds 10 % -> 14 % within the hour after ten calm hours; DDM, whose minimum is
    anchored on early estimates, misses that one and takes over an hour for 10 % -> 20 % (one
    reason ADWIN is the default)."""
    r = np.random.default_rng(11)
    per_minute = 200
    calm = [int(r.binomial(per_minute, 0.1)) for _ in range(600)]  # ten hours at 10 %
    worse = [int(r.binomial(per_minute, rate_after)) for _ in range(120)]
    errors = calm + worse
    found = run_minutes(new_detector(method), list(range(720)), [per_minute] * 720, errors)
    assert found and 600 <= found[0].minute < 600 + within
    assert found[0].error_rate_before < found[0].error_rate_after


@pytest.mark.calibration
@pytest.mark.parametrize("method", [ADWIN, DDM])
def test_few_false_alarms_on_stable_streams(method: str) -> None:
    """A week of a steady 10 % error rate at 20 labelled rows a minute, 30 seeds: ADWIN's bound
    makes false alarms rare (River's does the same); DDM's running minimum alarms more."""
    alarms = 0
    for seed in range(30):
        r = np.random.default_rng(seed)
        minutes = 7 * 24 * 60
        errors = list(r.binomial(20, 0.1, minutes))
        alarms += bool(run_minutes(new_detector(method), list(range(minutes)), [20] * minutes, errors))
    assert alarms <= (1 if method == ADWIN else 30)


def test_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown error-stream detector"):
        new_detector("page_hinkley")


def test_ddm_one_error_after_a_perfect_start_is_no_change() -> None:
    """Where River's DDM differs on purpose: a zero deviation (no error yet) is no minimum."""
    stream = np.zeros(600, dtype=int)
    stream[400] = 1
    assert _ours(StreamDDM(), stream) == []
    assert _river(river_drift.binary.DDM(), stream) == [400]
