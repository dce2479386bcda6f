"""Shared fixtures. Integration tests run against a real Postgres: the server named by
MONITOR_TEST_DATABASE_URL, else the one on 127.0.0.1:5432, else an embedded pgserver.
Each test session works in a database of its own, created here and dropped at the end."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.engine import make_url

from monitor.config import Settings
from monitor.db.engine import normalise_url
from monitor.services.bootstrap import open_context
from monitor.services.infra.context import ServiceContext

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "browser", "citus")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test carries its tier's marker (its folder), so that ``pytest -m unit`` runs one tier."""
    for item in items:
        parts = item.path.resolve().relative_to(TESTS).parts
        if parts and parts[0] in TIERS:
            item.add_marker(parts[0])


DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
# The key receiver secrets are encrypted with, in this test process and in every monitor process a
# test starts (tests.integration.processes), as processes of one deployment share it.
SECRET_KEYS = Fernet.generate_key().decode()


def _server_url() -> str:
    url = os.environ.get("MONITOR_TEST_DATABASE_URL", DEFAULT_SERVER)
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.OperationalError:
        if "MONITOR_TEST_DATABASE_URL" in os.environ:
            raise
    from monitor.db.embedded import start_embedded

    # Not under pytest's private base folder: as root, pgserver runs Postgres as another user.
    root = Path(tempfile.mkdtemp(prefix="monitor-test-pg-"))
    return start_embedded(root / "embedded").replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if os.environ.get("MONITOR_TEST_ON_CITUS") == "1":
        # the whole suite on a coordinator and two workers (tests/citus/cluster.py)
        from tests.citus.cluster import CitusCluster

        cluster = CitusCluster().start()
        try:
            yield cluster.create_database("monitor_test")
        finally:
            cluster.stop()
        return
    server = _server_url()
    name = f"monitor_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = normalise_url(make_url(normalise_url(server)).set(database=name).render_as_string(hide_password=False))
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path_factory.mktemp("data"),
        api_key_cache_seconds=0,
        allow_loopback_receivers=True,  # the tests' webhook receivers listen on loopback
        rate_limit_per_second=0,  # off, but where a test turns it on
        secret_keys=SECRET_KEYS,
    )


@pytest.fixture(scope="session")
def session_ctx(settings: Settings) -> Iterator[ServiceContext]:
    ctx = open_context(settings, migrate=True)
    if os.environ.get("MONITOR_TEST_ON_CITUS") == "1":
        from monitor.services.infra import citus

        citus.distribute(ctx)
    yield ctx
    ctx.close()


# Every table the migrations made (partitions go with their parent), read from the catalog so a
# new table is emptied too; the migrations' own bookkeeping and the audit policy they seed stay.
_TABLES_SQL = """
    SELECT string_agg(format('%I', c.relname), ', ' ORDER BY c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname NOT IN ('alembic_version', 'audit_policy')
"""


def empty_database(ctx: ServiceContext) -> None:
    with ctx.engine.begin() as conn:
        tables = conn.execute(text(_TABLES_SQL)).scalar_one()
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    ctx._validators.clear()
    ctx._decoders.clear()
    ctx._personal.clear()
    ctx._references.clear()  # ids restart with the tables
    ctx._plans.clear()
    ctx._active_references.clear()
    ctx.forget_versions()


@pytest.fixture
def ctx(session_ctx: ServiceContext) -> Iterator[ServiceContext]:
    """The service context over an empty database (tables truncated before each test)."""
    empty_database(session_ctx)
    yield session_ctx
