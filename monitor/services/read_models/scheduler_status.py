"""Who runs what: the scheduler processes and the models' leases, for ``monitor scheduler
--status``, the dashboard and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.leases import FleetStatus, fleet_status

# The models the text status lists when not asked for all of them: the most overdue first.
OVERDUE_SHOWN = 20


@dataclass(frozen=True)
class ProcessRow:
    process_id: str
    live: bool
    leader: bool
    models_held: int
    lag_seconds: float
    runs: int
    heartbeat_age_seconds: float
    started_at: datetime


@dataclass(frozen=True)
class LeaseRow:
    model: str
    owner: str | None  # None: no live process holds it
    due_in_seconds: float  # negative: overdue by that much
    last_run_at: datetime | None
    last_run_seconds: float | None
    last_run_by: str | None


@dataclass(frozen=True)
class SchedulerView:
    at: datetime
    processes: list[ProcessRow]
    leases: list[LeaseRow]

    @property
    def live(self) -> list[ProcessRow]:
        return [p for p in self.processes if p.live]

    @property
    def unheld(self) -> list[LeaseRow]:
        return [lease for lease in self.leases if lease.owner is None]


def scheduler_view(ctx: ServiceContext, now: datetime | None = None) -> SchedulerView:
    return view_of(fleet_status(ctx, now or datetime.now(UTC)))


def view_of(status: FleetStatus) -> SchedulerView:
    at = status.at
    processes = [
        ProcessRow(
            p["process_id"],
            status.live(p),
            bool(p["leader"]) and status.live(p),
            int(p["models_held"]),
            float(p["lag_seconds"]),
            int(p["runs"]),
            (at - p["heartbeat_at"]).total_seconds(),
            p["started_at"],
        )
        for p in status.processes
    ]
    leases = [
        LeaseRow(
            lease["model"],
            lease["owner"] if lease["owner"] is not None and lease["expires_at"] > at else None,
            (lease["due_at"] - at).total_seconds(),
            lease["last_run_at"],
            lease["last_run_seconds"],
            lease["last_run_by"],
        )
        for lease in status.leases
    ]
    return SchedulerView(at, processes, leases)


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{timedelta(seconds=round(seconds))} ago"


def render_text(view: SchedulerView, *, all_models: bool = False) -> str:
    """The status as a terminal shows it: the processes, then the models' leases (the most overdue
    ones, or every one with ``all_models``)."""
    lines = [f"scheduler processes: {len(view.live)} live, {len(view.processes) - len(view.live)} dead"]
    if view.processes:
        lines.append(f"  {'process':<40} {'state':<5} {'lead':<4} {'models':>6} {'lag':>8} {'runs':>8}  heartbeat")
    for p in view.processes:
        lines.append(
            f"  {p.process_id:<40} {'live' if p.live else 'dead':<5} {'yes' if p.leader else '':<4} "
            f"{p.models_held:>6} {p.lag_seconds:>7.1f}s {p.runs:>8}  {_ago(p.heartbeat_age_seconds)}"
        )
    overdue = [lease for lease in view.leases if lease.due_in_seconds < 0]
    lines.append(
        f"models: {len(view.leases)}, {len(view.leases) - len(view.unheld)} held, {len(view.unheld)} not held "
        f"by a live process, {len(overdue)} due now"
    )
    shown = view.leases if all_models else sorted(overdue, key=lambda lease: lease.due_in_seconds)[:OVERDUE_SHOWN]
    if shown:
        lines.append(f"  {'model':<30} {'owner':<40} {'due':>10}  last run")
    for lease in shown:
        due = f"in {lease.due_in_seconds:.0f} s" if lease.due_in_seconds >= 0 else f"{-lease.due_in_seconds:.0f} s late"
        last = "never"
        if lease.last_run_at is not None:
            took = f", took {lease.last_run_seconds:.2f} s" if lease.last_run_seconds is not None else ""
            last = f"{_ago((view.at - lease.last_run_at).total_seconds())} by {lease.last_run_by}{took}"
        lines.append(f"  {lease.model:<30} {lease.owner or '(none)':<40} {due:>10}  {last}")
    if not all_models and len(overdue) > len(shown):
        lines.append(f"  ... and {len(overdue) - len(shown)} more due now (--all lists every model)")
    return "\n".join(lines)


def as_json(view: SchedulerView) -> dict[str, Any]:
    return {
        "at": view.at.isoformat(),
        "processes": [{**p.__dict__, "started_at": p.started_at.isoformat()} for p in view.processes],
        "models": [
            {**lease.__dict__, "last_run_at": lease.last_run_at.isoformat() if lease.last_run_at else None}
            for lease in view.leases
        ],
    }
