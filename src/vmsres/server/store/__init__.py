"""Persistence: the SQL schema, migrations and the stores that read and write it. Knows no HTTP."""
