"""The service layer: every transaction begins and commits here, never in a repository or a route.

Its modules live in rooms (``infra``, ``catalog``, ``jobs``, ``ingest``, ``alerting``,
``read_models``) whose imports point one way (``tests/unit/test_layers.py``); ``bootstrap``,
the composition root, opens the context a process works in."""
