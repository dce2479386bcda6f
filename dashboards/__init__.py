"""The Dash dashboard. Reads through `monitor`'s query functions only (filled in by the dashboard issue)."""
