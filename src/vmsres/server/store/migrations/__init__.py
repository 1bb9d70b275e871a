"""The Alembic migrations that create and upgrade the store's schema (run by store/migrate.py)."""
