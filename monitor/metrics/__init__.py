"""Pure metric maths: drift stat tests and quality metrics. No database, no HTTP."""
