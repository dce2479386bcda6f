from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.services import keys
from monitor.services.context import ServiceContext
from tests.integration.helpers import BINARY_SPEC, Api, bearer


@pytest.fixture
def api(ctx: ServiceContext) -> Iterator[Api]:
    made = {s: keys.create_key(ctx, s.value, [s])[0] for s in keys.Scope}
    with TestClient(create_app(ctx=ctx)) as http:
        yield Api(
            http, bearer(made[keys.Scope.admin]), bearer(made[keys.Scope.ingest]), bearer(made[keys.Scope.read]), ctx
        )


@pytest.fixture
def churn(api: Api) -> Api:
    r = api.http.post("/v1/models", json=BINARY_SPEC, headers=api.admin)
    assert r.status_code == 201, r.text
    return api
