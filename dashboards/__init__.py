"""The Dash dashboard. Reads through `monitor`'s query functions only, never the raw prediction log."""
