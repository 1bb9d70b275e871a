"""The store layer: persistence in SQL, through SQLAlchemy Core, for SQLite and PostgreSQL.

schema.py declares the one schema; the Alembic migrations under migrations/ create and upgrade it
(migrate.py runs them); database.py executes statements with little per-query overhead. The other
modules (accounts, resources, uploads, events, hardening, holds, operators) hold the statements of
one kind of row each and return plain rows. The store knows neither HTTP nor the service's rules,
and imports nothing above it: only the service calls it.
"""
