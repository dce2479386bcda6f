"""Pure domain logic: model schemas and record validation. No database, no HTTP."""
