"""The unit of work: one connection, one transaction, committed only by the service layer."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine


class UnitOfWork:
    """``with UnitOfWork(engine) as uow: ...; uow.commit()`` — anything not committed is rolled back."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        self._conn = self._engine.connect()
        self._conn.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
        finally:
            self._conn.close()
            self._conn = None

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "unit of work not entered"
        return self._conn

    @property
    def raw(self) -> Any:
        """The psycopg connection underneath, for COPY inside the same transaction."""
        return self.conn.connection.driver_connection

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()
