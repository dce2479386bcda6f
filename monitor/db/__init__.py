"""Database access: engine and embedded server, table definitions, partitions, repositories."""
