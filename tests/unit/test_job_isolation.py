"""Which failures of an hour or a window are isolated (skipped, recorded, the run going on) and
which fail the run: only what the data causes is isolated; a bug or the database away is not."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DataError, OperationalError

from monitor.services.jobs import job_log


class _Orig(Exception):
    pass


DATA = [
    pytest.param(DataError("SELECT sum(x)", {}, _Orig("numeric field overflow")), id="postgres-data-error"),
    pytest.param(ZeroDivisionError("division by zero"), id="zero-division"),
    pytest.param(OverflowError("math range error"), id="overflow"),
    pytest.param(FloatingPointError("invalid value"), id="floating-point"),
    pytest.param(ValueError("array must not contain infs or NaNs"), id="value-refused-by-the-maths"),
]

NOT_DATA = [
    pytest.param(TypeError("unsupported operand type(s)"), id="type-error-is-a-bug"),
    pytest.param(KeyError("feature"), id="key-error-is-a-bug"),
    pytest.param(IndexError("list index out of range"), id="index-error-is-a-bug"),
    pytest.param(AttributeError("'NoneType' object has no attribute 'x'"), id="attribute-error-is-a-bug"),
    pytest.param(OperationalError("SELECT 1", {}, _Orig("server closed the connection")), id="database-away"),
    pytest.param(RuntimeError("unexpected"), id="runtime-error"),
]


@pytest.mark.parametrize("error", DATA)
def test_a_failure_the_data_causes_is_recorded_and_the_run_goes_on(error: Exception) -> None:
    failures: list[str] = []
    after = []
    with job_log.isolated("window [a, b)", failures):
        raise error
    after.append("went on")
    assert after == ["went on"]
    assert len(failures) == 1 and failures[0].startswith(f"window [a, b): {type(error).__name__}: ")


@pytest.mark.parametrize("error", NOT_DATA)
def test_a_failure_the_data_does_not_cause_fails_the_run(error: Exception) -> None:
    failures: list[str] = []
    with pytest.raises(type(error)), job_log.isolated("window [a, b)", failures):
        raise error
    assert failures == []


@pytest.mark.parametrize("error", DATA)
def test_without_a_failure_list_nothing_is_isolated(error: Exception) -> None:
    with pytest.raises(type(error)), job_log.isolated("window [a, b)", None):
        raise error


def test_a_block_that_succeeds_records_nothing() -> None:
    failures: list[str] = []
    with job_log.isolated("hour", failures):
        pass
    assert failures == []


def test_the_recorded_reason_is_its_first_line_bounded() -> None:
    failures: list[str] = []
    with job_log.isolated("hour", failures):
        raise ValueError("x" * 1000 + "\nsecond line")
    assert failures == ["hour: ValueError: " + "x" * 300]
