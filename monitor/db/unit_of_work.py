"""The unit of work: one connection, one transaction, committed only by the service layer."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, text

from monitor.db.alert_repo import AlertRepository


class UnitOfWork:
    """``with UnitOfWork(engine) as uow: ...; uow.commit()`` — anything not committed is rolled back.

    ``snapshot``: the transaction reads one snapshot (repeatable read), taken after the session
    has acquired ``session_locks`` (advisory locks, (int4, int4) keys, held until the unit of work
    ends): a lock taken inside the transaction would be waited for after its snapshot was taken.

    ``read_only``: no transaction at all, each statement on its own (autocommit), for reads that
    need no one snapshot across statements: a transaction cost two more round trips (BEGIN, and
    the ROLLBACK at the end), which for a scheduler run of small models was most of its time."""

    def __init__(
        self,
        engine: Engine,
        *,
        snapshot: bool = False,
        session_locks: tuple[tuple[int, int], ...] = (),
        read_only: bool = False,
    ) -> None:
        self._engine = engine
        self._conn: Connection | None = None
        self._snapshot = snapshot
        self._locks = session_locks
        self._read_only = read_only

    def __enter__(self) -> UnitOfWork:
        self._conn = self._engine.connect()
        if self._read_only:
            self._conn.execution_options(isolation_level="AUTOCOMMIT")
            return self
        for a, b in self._locks:
            self._conn.execute(text("SELECT pg_advisory_lock(CAST(:a AS int4), CAST(:b AS int4))"), {"a": a, "b": b})
            self._conn.commit()
        if self._snapshot:
            self._conn.execution_options(isolation_level="REPEATABLE READ")
        self._conn.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
            for a, b in self._locks:
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(CAST(:a AS int4), CAST(:b AS int4))"), {"a": a, "b": b}
                )
                self._conn.commit()
        finally:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "unit of work not entered"
        return self._conn

    @property
    def alerts(self) -> AlertRepository:
        """The alerting tables in this transaction."""
        return AlertRepository(self.conn)

    @property
    def raw(self) -> Any:
        """The psycopg connection underneath, for COPY inside the same transaction."""
        return self.conn.connection.driver_connection

    def commit(self) -> None:
        assert not self._read_only, "a read-only unit of work commits nothing"
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()
