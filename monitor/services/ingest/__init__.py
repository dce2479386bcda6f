"""Predictions and labels taken in (JSON, NDJSON, KServe's CloudEvents): validated, stored,
summarised once, acknowledged after the commit."""
