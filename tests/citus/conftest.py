"""The Citus group: a coordinator and two workers on loopback, built from Citus 13.2.2 against the
pgserver wheel's Postgres 16. Without the build the group is skipped, saying how to build it;
where MONITOR_REQUIRE_CITUS=1 (CI) a missing build fails it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.citus.cluster import CitusCluster, available, citus_home

HOW = (
    "build Citus for these tests with the build script the project's CI uses "
    "(build.sh PYTHON DEST, with DEST = MONITOR_CITUS_HOME, default .citus-13.2.2 in the checkout)"
)


@pytest.fixture(scope="session")
def cluster() -> Iterator[CitusCluster]:
    if not available():
        if os.environ.get("MONITOR_REQUIRE_CITUS") == "1":
            pytest.fail(f"no Citus build at {citus_home()}: {HOW}")
        pytest.skip(f"no Citus build at {citus_home()}: {HOW}")
    c = CitusCluster(workers=2).start()
    yield c
    c.stop()


@pytest.fixture
def citus_url(cluster: CitusCluster) -> str:
    """A fresh database on every node of the cluster; its SQLAlchemy URL on the coordinator."""
    return cluster.create_database(f"monitor_citus_{uuid.uuid4().hex[:8]}")
