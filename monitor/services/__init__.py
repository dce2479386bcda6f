"""The service layer: every transaction begins and commits here, never in a repository or a route."""
