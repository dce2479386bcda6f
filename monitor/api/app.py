"""The FastAPI application."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from monitor import __version__
from monitor.api.docs import DOCS, install_docs
from monitor.api.errors import install_error_handlers
from monitor.api.guard import BoundedBodies, GuardedRoute
from monitor.api.openapi_errors import document_errors
from monitor.api.routes import (
    alerts,
    health,
    ingest,
    keys,
    kserve,
    metrics,
    models,
    prometheus,
    records,
    reports,
    rules,
    subjects,
)
from monitor.config import Settings, get_settings
from monitor.logs import new_request_id, request_id
from monitor.services.bootstrap import open_for_reading
from monitor.services.catalog.keys import Authenticator
from monitor.services.infra.context import ServiceContext
from monitor.services.ingest.rate_limit import RateLimiter
from monitor.services.read_models.prometheus import new_registries
from monitor.tls import HSTS
from monitor.web_security import API_DOCS_HEADERS, API_HEADERS

log = logging.getLogger(__name__)
# Every module of routes, in the order they are matched.
ROUTE_MODULES = (health, models, ingest, kserve, metrics, reports, keys, rules, alerts, records, subjects, prometheus)
access_log = logging.getLogger("monitor.access")

INGEST_PATHS = {"/v1/predictions": "predictions", "/v1/labels": "labels", "/v1/kserve": "kserve"}


def create_app(settings: Settings | None = None, ctx: ServiceContext | None = None) -> FastAPI:
    """The app. With ``ctx`` given (tests, the demo) it is used as is; otherwise one is opened at start-up."""
    # Served over HTTPS (a certificate in the settings): browsers are told to use nothing else.
    transport_headers = HSTS if (settings or get_settings()).tls else {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = ctx is None
        context = ctx if ctx is not None else await run_in_threadpool(open_for_reading, settings or get_settings())
        app.state.ctx = context
        app.state.authenticator = Authenticator(context)
        app.state.rate_limiter = RateLimiter(context.settings.rate_limit_per_second, context.settings.rate_limit_burst)
        app.state.auth_failures = RateLimiter(
            context.settings.auth_failures_per_second,
            context.settings.auth_failures_burst,
            what="too many failed authentications from this address (at most {rate:g} per second)",
        )
        app.state.metrics = new_registries(context)
        if owned:
            # A server process: everything built at start-up lives as long as it does; keep the
            # cyclic collector from walking it again on every full collection (CPU and tail latency).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if owned:
                context.close()

    app = FastAPI(
        title="Model Monitor",
        version=__version__,
        description="Prediction-log ingestion, drift and quality metrics, alerts and retraining webhooks.",
        lifespan=lifespan,
        docs_url=None,  # served from this process (monitor.api.docs), not from a CDN
        redoc_url=None,
    )
    install_docs(app)
    install_error_handlers(app)
    document_errors(app)
    # Innermost of the middleware, so the request id, access log and security headers wrap its refusals.
    app.add_middleware(BoundedBodies)

    @app.middleware("http")
    async def tag_request(request: Request, call_next: Any) -> Any:
        """Every log line of a request carries its id; the caller gets it back as X-Request-ID."""
        rid = new_request_id(request.headers.get("x-request-id"))
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = await call_next(request)
            # the access log, with the request id (uvicorn's own access lines are turned off); a
            # route by its template, so an id in an address (a prediction's look-up, which may be
            # personal data the log stores only hashed) is not written to the log
            route = request.scope.get("route")
            access_log.info(
                "%s %s %d %.1fms",
                request.method,
                getattr(route, "path_format", None) or request.url.path,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        finally:
            request_id.reset(token)
        response.headers["X-Request-ID"] = rid
        # Security headers; a route that set its own (a sandboxed report) keeps them.
        docs = request.url.path == DOCS or request.url.path.startswith(DOCS + "/")
        for name, value in {**(API_DOCS_HEADERS if docs else API_HEADERS), **transport_headers}.items():
            response.headers.setdefault(name, value)
        return response

    @app.middleware("http")
    async def time_ingestion(request: Request, call_next: Any) -> Any:
        """Ingestion latency per endpoint, until the answer is ready (after the commit)."""
        endpoint = INGEST_PATHS.get(request.url.path)
        if endpoint is None:
            return await call_next(request)
        started = time.perf_counter()
        response = await call_next(request)
        registries = getattr(request.app.state, "metrics", None)
        if registries is not None:
            status = f"{response.status_code // 100}xx"
            registries.ingest_latency.labels(endpoint, status).observe(time.perf_counter() - started)
        return response

    for module in ROUTE_MODULES:
        # Keys, scopes and body limits are checked before a body is read only on guarded routes.
        if module.router.route_class is not GuardedRoute:
            raise TypeError(f"{module.__name__}.router must be APIRouter(route_class=GuardedRoute, ...)")
        app.include_router(module.router)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory monitor.api.app:app_factory``."""
    return create_app()
