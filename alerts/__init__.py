"""The rules engine and the notifiers.

Knows metric points and labels, not tables or HTTP routes: `monitor` feeds it plain data
(rules, samples, alert states) and stores the plans it returns.
"""
