"""Schemathesis against the API's own OpenAPI document, over real HTTP on loopback: generated
requests to every operation (valid and invalid ones) never get a 5xx, and every error comes in
the documented shape (``Error``: ``{"error": {"code", "message", "details"}}``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance

from monitor.api.app import create_app
from monitor.server import ThreadedServer, free_port
from tests.integration.helpers import Api

# The document is built without a database (the app opens its context at start-up, not here).
schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture
def live_api(churn: Api) -> Iterator[str]:
    # churn: a real model in a real database, so that some generated paths reach real objects
    server = ThreadedServer(create_app(ctx=churn.ctx), "127.0.0.1", free_port()).start()
    yield server.url
    server.stop()


@schema.parametrize()
# Parquet reference uploads are binary: Schemathesis cannot generate them (tested in test_reference_api).
@pytest.mark.filterwarnings("ignore:Skipped test cases with unsupported payload media types")
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same cases on every run: a CI failure can be replayed
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_every_error_in_the_documented_shape(
    case: schemathesis.Case, churn: Api, live_api: str
) -> None:
    response = case.call(base_url=live_api, headers=churn.admin)
    reproduce = case.as_curl_command()
    assert response.status_code < 500, f"{response.status_code} {response.text[:500]}\n{reproduce}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, reproduce
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str), reproduce
        assert isinstance(body["error"]["details"], list), reproduce
    # and the response conforms to what the document says of it (errors: the Error schema)
    case.validate_response(response, checks=[response_schema_conformance])
