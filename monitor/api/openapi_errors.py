"""The one error shape, written into the OpenAPI document: every operation answers its errors
(4XX, 5XX, and the 422 FastAPI documents with its own shape) as ``Error``, so clients and
contract tests (Schemathesis) can hold the API to it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "description": "machine-readable, e.g. validation_error, not_found"},
                "message": {"type": "string", "description": "what went wrong, for a person"},
                "details": {
                    "type": "array",
                    "description": "per record or field: index, field, reason",
                    "items": {"type": "object"},
                },
            },
        }
    },
}
_ERROR_RESPONSE = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_RESPONSES = {
    "4XX": "refused: the request is invalid, unauthorised, too large or too many",
    "5XX": "the service or its database is unavailable (503 with Retry-After: retry)",
}


def document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe every error response as ``Error``."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            schemas["Error"] = ERROR_SCHEMA
            for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's shape, not ours
                schemas.pop(name, None)
            for path in doc.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.setdefault("responses", {})
                    if "422" in responses:
                        responses["422"] = {"description": "the request is invalid", **_ERROR_RESPONSE}
                    for status, description in _RESPONSES.items():
                        responses.setdefault(status, {"description": description, **_ERROR_RESPONSE})
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
