"""Self-hosted model monitoring: ingestion, metrics, alerts and retraining triggers."""

__version__ = "0.1.0"
