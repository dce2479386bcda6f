"""Over its rate a key gets 429 with Retry-After, in the one error shape; other keys go on."""

from __future__ import annotations

from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.services.catalog import keys
from monitor.services.infra.context import ServiceContext


def test_a_key_over_its_rate_gets_429_with_retry_after(ctx: ServiceContext) -> None:
    limited = ctx.settings.model_copy(update={"rate_limit_per_second": 0.5, "rate_limit_burst": 2})
    object.__setattr__(ctx, "settings", limited)
    try:
        busy, _ = keys.create_key(ctx, "busy", [keys.Scope.read])
        calm, _ = keys.create_key(ctx, "calm", [keys.Scope.read])
        with TestClient(create_app(ctx=ctx)) as http:
            codes = [http.get("/v1/models", headers={"Authorization": f"Bearer {busy}"}).status_code for _ in range(3)]
            r = http.get("/v1/models", headers={"Authorization": f"Bearer {busy}"})
            other = http.get("/v1/models", headers={"Authorization": f"Bearer {calm}"})
    finally:
        object.__setattr__(ctx, "settings", limited.model_copy(update={"rate_limit_per_second": 0}))
    assert codes == [200, 200, 429]
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    assert other.status_code == 200
