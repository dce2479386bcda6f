"""Change detection on a model's error stream, run on the stream rather than per window.

The stream is the labelled predictions in prediction-time order, as the hourly quality summaries
keep it: per minute, labelled rows and errors. A detector consumes one minute at a time and keeps
its state between scheduler runs (``monitor.services.jobs.error_stream_job`` stores it per hour), so
a change at a window's edge is found like any other and a long window does not multiply its
false alarms: each minute is tested once, whatever windows hold it.

Two detectors, each a pure object whose state is plain JSON:

- ``Adwin``: ADWIN (Bifet and Gavaldà, 2007), the ADWIN2 exponential histogram. River's element
  is one row; here it is one minute (rows and errors), so each bucket holds whole minutes and the
  cut is tested at minute boundaries with the rows' counts and variance — the same bound River
  uses (its ``_evaluate_cut``), checked once ``clock`` rows have arrived since the last check.
- ``StreamDDM``: DDM (Gama et al., 2004) with its running minimum kept across minutes and reset
  after a detection, as River's DDM does. One difference, on purpose: a deviation of zero (no
  error yet) does not become the minimum, where River's lets the first error after a perfect
  start signal a change.

Fed one row a minute, each finds the changes River's finds, at the same rows
(``tests/unit/test_error_stream.py``).

Why not River itself: its detectors take one value at a time (a minute of 10,000 labels would be
10,000 Python calls, and the order of errors inside a minute is not stored), and their state is a
compiled object, not something to keep in Postgres and replay after a late label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

ADWIN = "adwin"
DDM = "ddm"


@dataclass(frozen=True)
class Detection:
    """A change found after ``minute`` (epoch minute): the error rate before and after it."""

    minute: int
    error_rate_before: float
    error_rate_after: float

    def to_json(self) -> list[float]:
        return [self.minute, self.error_rate_before, self.error_rate_after]

    @classmethod
    def from_json(cls, v: list[float]) -> Detection:
        return cls(int(v[0]), float(v[1]), float(v[2]))


class ErrorStreamDetector(Protocol):
    method: str

    def update(self, minute: int, rows: int, errors: int) -> Detection | None:
        """Consume one minute's labelled rows and errors; the change it reveals, if any."""

    def to_state(self) -> dict[str, Any]: ...

    @property
    def error_rate(self) -> float:
        """The error rate the detector currently holds (since its last change)."""

    @property
    def rows(self) -> int:
        """Labelled rows the detector currently holds."""


def _bernoulli_m2(rows: float, errors: float) -> float:
    """Sum of squared deviations of ``rows`` 0/1 values of which ``errors`` are 1."""
    return errors * (rows - errors) / rows if rows else 0.0


@dataclass
class Adwin:
    """ADWIN over minutes. Buckets are ``[rows, errors, m2]``; ``levels[i]`` holds buckets of
    2**i minutes, oldest first, and every bucket of level i+1 is older than those of level i."""

    delta: float = 0.002
    clock: int = 32  # rows between checks, as River's
    max_buckets: int = 5
    min_window_length: int = 5  # rows on each side of a cut
    grace_period: int = 10  # rows before the first check
    levels: list[list[list[float]]] = field(default_factory=list)
    since_check: int = 0
    method: str = ADWIN

    # --- the window ---------------------------------------------------------------------------
    def _buckets(self) -> list[list[float]]:
        """Every bucket, oldest first."""
        return [b for level in reversed(self.levels) for b in level]

    @property
    def rows(self) -> int:
        return int(sum(b[0] for level in self.levels for b in level))

    @property
    def error_rate(self) -> float:
        n = self.rows
        return sum(b[1] for level in self.levels for b in level) / n if n else 0.0

    @staticmethod
    def _merge(a: list[float], b: list[float]) -> list[float]:
        n = a[0] + b[0]
        if not n:
            return [0.0, 0.0, 0.0]
        d = a[1] / a[0] - b[1] / b[0] if a[0] and b[0] else 0.0
        return [n, a[1] + b[1], a[2] + b[2] + d * d * a[0] * b[0] / n]

    def _insert(self, rows: int, errors: int) -> None:
        if not self.levels:
            self.levels.append([])
        self.levels[0].append([float(rows), float(errors), _bernoulli_m2(rows, errors)])
        i = 0
        while len(self.levels[i]) > self.max_buckets:
            # the two oldest of a full level become one bucket of the next, its newest
            merged = self._merge(self.levels[i].pop(0), self.levels[i].pop(0))
            if i + 1 == len(self.levels):
                self.levels.append([])
            self.levels[i + 1].append(merged)
            i += 1

    # --- detection ----------------------------------------------------------------------------
    def _find_cut(self) -> tuple[float, float] | None:
        """The first split (oldest first) whose two sides differ beyond the bound: the error rates
        of the older and newer sides, or None. River's bound (``epsilon`` below), its terms that do
        not depend on the split worked out once per check: the scan runs every 32 rows."""
        buckets = self._buckets()
        width = sum(b[0] for b in buckets)
        if width <= self.grace_period or width < 2:
            return None
        total = sum(b[1] for b in buckets)
        whole = [0.0, 0.0, 0.0]
        for b in buckets:
            whole = self._merge(whole, b)
        variance = whole[2] / width  # the window's variance, as River's variance_in_window
        delta_prime = math.log(2 * math.log(width) / self.delta)
        least = self.min_window_length
        n0 = u0 = 0.0
        for b in buckets[:-1]:
            n0 += b[0]
            u0 += b[1]
            n1 = width - n0
            if n0 <= least or n1 <= least:
                continue
            m_recip = 1 / (n0 - least + 1) + 1 / (n1 - least + 1)
            epsilon = math.sqrt(2 * m_recip * variance * delta_prime) + 2 / 3 * delta_prime * m_recip
            older, newer = u0 / n0, (total - u0) / n1
            if abs(older - newer) > epsilon:
                return older, newer
        return None

    def update(self, minute: int, rows: int, errors: int) -> Detection | None:
        if rows <= 0:
            return None
        self._insert(rows, errors)
        self.since_check += rows
        if self.since_check < self.clock:
            return None
        self.since_check = 0
        cut = self._find_cut()
        if cut is None:
            return None
        # A change: the window starts again empty from the next minute, as River's ADWIN does
        # after a detection, so that one change is reported once.
        self.levels = []
        return Detection(minute, cut[0], cut[1])

    # --- state --------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {"levels": self.levels, "since_check": self.since_check}

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> Adwin:
        return cls(
            **params,
            levels=[[list(map(float, b)) for b in level] for level in state.get("levels", [])],
            since_check=int(state.get("since_check", 0)),
        )


@dataclass
class StreamDDM:
    """DDM whose running rate and minimum carry over from minute to minute and run to run; after a
    detection it starts again from the next minute (River's DDM does the same)."""

    min_instances: int = 30
    warning_level: float = 2.0
    drift_level: float = 3.0
    n: int = 0
    errors: int = 0
    p_min: float | None = None
    s_min: float | None = None
    warning: bool = False
    method: str = DDM

    @property
    def rows(self) -> int:
        return self.n

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    def update(self, minute: int, rows: int, errors: int) -> Detection | None:
        if rows <= 0:
            return None
        self.n += rows
        self.errors += errors
        if self.n <= self.min_instances:
            return None
        p = self.errors / self.n
        s = math.sqrt(p * (1 - p) / self.n)
        # A deviation of zero (no error yet, or only errors) cannot anchor the minimum: one error
        # after a perfect start would otherwise count as drift.
        if s > 0 and (self.p_min is None or self.s_min is None or p + s <= self.p_min + self.s_min):
            self.p_min, self.s_min = p, s
        if self.p_min is None or self.s_min is None:
            return None
        self.warning = p + s > self.p_min + self.warning_level * self.s_min
        if p + s > self.p_min + self.drift_level * self.s_min:
            before = self.p_min
            self.n = self.errors = 0
            self.p_min = self.s_min = None
            self.warning = False
            return Detection(minute, before, p)
        return None

    def to_state(self) -> dict[str, Any]:
        return {"n": self.n, "errors": self.errors, "p_min": self.p_min, "s_min": self.s_min, "warning": self.warning}

    @classmethod
    def from_state(cls, state: dict[str, Any], **params: Any) -> StreamDDM:
        return cls(
            **params,
            n=int(state.get("n", 0)),
            errors=int(state.get("errors", 0)),
            p_min=state.get("p_min"),
            s_min=state.get("s_min"),
            warning=bool(state.get("warning", False)),
        )


_DETECTORS: dict[str, type[Adwin] | type[StreamDDM]] = {ADWIN: Adwin, DDM: StreamDDM}


def detector_from_state(method: str, state: dict[str, Any] | None) -> ErrorStreamDetector:
    """The ``method`` detector, going on from ``state`` (None: a new one)."""
    kind = _DETECTORS.get(method)
    if kind is None:
        raise ValueError(f"unknown error-stream detector {method!r}; known: {', '.join(_DETECTORS)}")
    return kind() if state is None else kind.from_state(state)


def new_detector(method: str) -> ErrorStreamDetector:
    return detector_from_state(method, None)


def run_minutes(
    detector: ErrorStreamDetector, minutes: Sequence[int], rows: Sequence[int], errors: Sequence[int]
) -> list[Detection]:
    """Feed minutes in time order; the changes found."""
    found = []
    for m, n, e in zip(minutes, rows, errors, strict=True):
        d = detector.update(int(m), int(n), int(e))
        if d is not None:
            found.append(d)
    return found


@dataclass(frozen=True)
class StreamInWindow:
    """What the detector found in a window, and where it stood at the window's end."""

    detections: list[Detection]
    rows: int  # labelled rows it held at the end
    error_rate: float
