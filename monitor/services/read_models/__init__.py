"""What the dashboard, /metrics, look-ups, exports, reports and the audit log read."""
