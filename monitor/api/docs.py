"""``/docs``: Swagger UI served from this process, not from a CDN, so an air-gapped install has
working API docs. The assets come packaged (``swagger-ui-py``, Swagger UI 5, which reads
OpenAPI 3.1); the page loads nothing else, and its start-up script is a file of its own, so the
page's Content-Security-Policy allows scripts from this origin only (no inline script)."""

from __future__ import annotations

import html
from pathlib import Path

import swagger_ui
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS = "/docs"
ASSETS = f"{DOCS}/assets"
ASSET_DIR = Path(swagger_ui.__file__).parent / "static"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} — API</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{docs}/start.js"></script>
</body>
</html>
"""

_START = """window.ui = SwaggerUIBundle({{
  url: {openapi},
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  persistAuthorization: false
}});
"""


def install_docs(app: FastAPI, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI at ``/docs`` (the app is made with ``docs_url=None``, ``redoc_url=None``)."""
    page = _PAGE.format(title=html.escape(app.title), assets=ASSETS, docs=DOCS)
    start = _START.format(openapi=f'"{openapi_url}"')

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get(f"{DOCS}/start.js", include_in_schema=False)
    async def docs_start() -> Response:
        return Response(start, media_type="text/javascript")

    app.mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="docs-assets")
