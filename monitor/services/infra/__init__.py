"""The service context and its unit of work, the database's own state (reachable, migrated), and
the Citus layout. Imports no other room."""
