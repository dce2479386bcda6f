"""The rules engine and the notifiers.

Knows metric points and labels, not tables or HTTP routes: `monitor` feeds it plain data
(see ../shared/DESIGN.md, "Alerts"). Filled in by the rules-engine issue.
"""
