"""The scheduler's work on a log the planner has no statistics for, as every new day's partition
and every fresh database is until it is analysed, and the plans its statements ran with.

``run_on_unanalysed_log`` (used on a single Postgres and on Citus) registers two demo models on a
database where nothing was analysed yet, turns autovacuum off for the log's tables, logs an hour
of traffic with labels for both, runs the first model's window jobs with every statement that
reads the log explained just before it runs (with its transaction's settings: the plan it
gets), then analyses and runs the second model's, the same work with statistics.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import Engine, event, text

from monitor.services.infra.context import ServiceContext
from monitor.services.jobs.maintenance import analyse_new_tables, run_maintenance
from monitor.services.jobs.monitoring_run import run_model
from monitor.services.jobs.windows import hour_floor
from tests.integration.demo_model import MODEL, label, register_demo, traffic

OTHER = f"{MODEL}-analysed"
# A relation of the log: a partition of predictions, labels, prediction keys (on Citus with its
# shard's number after the name).
_LOG_RELATION = re.compile(r"^(predictions|labels|prediction_keys)(_\d+)*$")
_READS_LOG = re.compile(r"\b(predictions|labels|prediction_keys)\b")
_EXPLAINABLE = re.compile(r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@dataclass
class Runs:
    plans: list[tuple[str, Any]] = field(default_factory=list)  # (statement, EXPLAIN's JSON plan)
    unanalysed_s: float = 0.0  # the first model's run, without statistics
    analysed_s: float = 0.0  # the second's, after ANALYZE
    analysed_tables: list[str] = field(default_factory=list)  # what analyse_new_tables did
    analysed_again: list[str] = field(default_factory=list)  # and a second time


@contextmanager
def explained(engine: Engine, plans: list[tuple[str, Any]]) -> Iterator[None]:
    """Every statement reading the log run through ``engine`` is explained first into ``plans``,
    with the settings its transaction made so far (``SET LOCAL``: replayed on a connection of the
    explainer's own, so that explaining changes nothing in the transaction explained)."""
    url = engine.url.render_as_string(hide_password=False).replace("postgresql+psycopg://", "postgresql://")
    explainer = psycopg.connect(url)
    settings: dict[int, list[str]] = {}  # a connection's transaction's SET LOCALs so far

    class Explaining(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
            sql = query if isinstance(query, str) else query.as_string(self)
            made = settings.setdefault(id(self.connection), [])
            if self.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                made.clear()  # this statement begins a transaction
            if re.match(r"\s*SET\s+LOCAL\b", sql, re.IGNORECASE):
                made.append(sql)
            elif _EXPLAINABLE.match(sql) and _READS_LOG.search(sql):
                for setting in made:
                    explainer.execute(setting)
                row = explainer.execute("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()
                explainer.rollback()
                assert row is not None
                plans.append((sql, row[0]))
            return super().execute(query, params, **kw)

    def use(dbapi: Any, _record: Any) -> None:
        dbapi.cursor_factory = Explaining

    event.listen(engine, "connect", use)
    engine.dispose()  # connections made from here on explain
    try:
        yield
    finally:
        event.remove(engine, "connect", use)
        engine.dispose()
        explainer.close()


def joins_labels(sql: str) -> bool:
    """A statement that reads the log's predictions with their labels (the window joins)."""
    return bool(re.search(r"\bFROM predictions\b", sql) and re.search(r"\bFROM labels\b", sql))


def relations(node: Any) -> Iterator[str]:
    """The relations a plan (or a part of one) reads, a Citus plan's remote plans too."""
    if isinstance(node, dict):
        if isinstance(node.get("Relation Name"), str):
            yield node["Relation Name"]
        for value in node.values():
            yield from relations(value)
    elif isinstance(node, list):
        for value in node:
            yield from relations(value)


def nested_loops_over_the_log(plan: Any) -> list[str]:
    """The nested loops of a plan (a Citus plan's remote plans too) whose inner side reads a
    relation of the log: once per row of the outer side. A nested loop whose inner side is not
    the log (a row joined to its segments, to a version row) is left alone."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            plans = node.get("Plans")
            if node.get("Node Type") == "Nested Loop" and isinstance(plans, list) and len(plans) == 2:
                inner = sorted({r for r in relations(plans[1]) if _LOG_RELATION.match(r)})
                if inner:
                    found.append(f"nested loop over {', '.join(inner)}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(plan)
    return found


def run_on_unanalysed_log(ctx: ServiceContext, n: int) -> Runs:
    """See the module's docstring; ``n`` predictions a model (a fifth of them labelled), in the
    hour before the current one."""
    now = datetime.now(UTC)
    start = hour_floor(now) - timedelta(hours=1)
    for model in (MODEL, OTHER):
        register_demo(ctx, model=model)
    run_maintenance(ctx, now)  # the days' partitions
    with ctx.engine.begin() as conn:
        children = "SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'predictions'::regclass"
        for table in [*conn.execute(text(children)).scalars(), "labels", "prediction_keys"]:
            conn.execute(text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))
    for i, model in enumerate((MODEL, OTHER)):
        frame = traffic(ctx, start, n, f"p{i}-", seed=i, model=model)
        label(ctx, frame.iloc[: n // 5], model=model)
    runs = Runs()
    with explained(ctx.engine, runs.plans):
        started = time.perf_counter()
        run_model(ctx, MODEL, now)
        runs.unanalysed_s = time.perf_counter() - started
    runs.analysed_tables = analyse_new_tables(ctx, now)
    runs.analysed_again = analyse_new_tables(ctx, now)
    with ctx.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    started = time.perf_counter()
    run_model(ctx, OTHER, now)
    runs.analysed_s = time.perf_counter() - started
    return runs
