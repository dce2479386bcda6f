"""Request-body documentation for the ingestion routes, which parse their bodies themselves
(for speed, NDJSON and per-record error reports) and so are described here by hand."""

from __future__ import annotations

from typing import Any

_SCALAR = {"type": ["string", "number", "integer", "boolean", "null"]}

PREDICTION_RECORD: dict[str, Any] = {
    "type": "object",
    "required": ["features", "prediction"],
    "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "description": "Required unless given by the batch"},
        "version": {"type": "string", "description": "Default: the model's newest version"},
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
