"""Request-body documentation for the ingestion routes, which parse their bodies themselves
(for speed, NDJSON and per-record error reports) and so are described here by hand."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}

PREDICTION_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["features", "prediction"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "description": "Required unless given by the batch"},
        "version": {
            "type": "string",
            "description": "Default: the model's champion, or its newest version where none is declared",
        },
        "prediction_id": {
            "type": "string",
            "maxLength": 256,
            "description": "Your id for the prediction; generated and returned when absent",
        },
        "timestamp": {
            "type": ["string", "number"],
            "description": "ISO 8601 (naive means UTC) or Unix epoch seconds; default: now",
        },
        "features": {"type": "object", "additionalProperties": _SCALAR},
        "prediction": {"type": ["string", "number", "integer", "boolean"]},
        "scores": {
            "type": ["object", "number", "null"],
            "additionalProperties": {"type": "number"},
            "description": "Class probabilities; for binary models also a single probability",
        },
        "latency_ms": {"type": ["number", "null"], "minimum": 0},
        "segments": {"type": ["object", "null"], "additionalProperties": _SCALAR},
        "request_id": {
            "type": ["string", "null"],
            "maxLength": 256,
            "description": "The serving request it answered: the same for every version that scored it (shadows)",
        },
        "subject": {
            "type": ["string", "null"],
            "maxLength": 256,
            "description": "The person it is about: stored only as a keyed hash, by which it can be erased",
        },
        "attributions": {
            "type": ["object", "null"],
            "additionalProperties": {"type": ["number", "null"]},
            "description": "Each feature's contribution to this prediction (SHAP values, say); null is missing",
        },
    },
}

LABEL_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["prediction_id", "label"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "description": "Required unless given by the batch"},
        "prediction_id": {"type": "string", "maxLength": 256},
        "label": {"type": ["string", "number", "integer", "boolean"]},
        "timestamp": {"type": ["string", "number"], "description": "When the outcome was observed"},
    },
}


def _body(record: dict[str, Any], with_version: bool) -> dict[str, Any]:
    batch_props: dict[str, Any] = {"model": {"type": "string"}, "records": {"type": "array", "items": record}}
    if with_version:
        batch_props["version"] = {"type": "string"}
    batch = {
        "type": "object",
        "required": ["model", "records"],
        "properties": batch_props,
        "additionalProperties": False,
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [batch, record, {"type": "array", "items": record}]}},
                "application/x-ndjson": {"schema": {"type": "string", "description": "One record per line"}},
            },
        }
    }


PREDICTION_BODY = _body(PREDICTION_RECORD, with_version=True)
LABEL_BODY = _body(LABEL_RECORD, with_version=False)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` to ``#/$defs/...`` replaced by what it names (the models
    documented this way are not recursive)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def model_body(model: type[BaseModel], description: str, *, from_path: frozenset[str] = frozenset()) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body of ``model``'s shape, for routes that take the
    body as a plain object and validate it themselves (to answer 400 naming the field and the
    reason, as the rules file reports it). ``from_path``: fields the path gives (left out)."""
    schema = model.model_json_schema(by_alias=True)
    body = _inline({k: v for k, v in schema.items() if k != "$defs"}, schema.get("$defs", {}))
    body["properties"] = {k: v for k, v in body.get("properties", {}).items() if k not in from_path}
    body["required"] = [k for k in body.get("required", []) if k not in from_path]
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": body}},
        }
    }
