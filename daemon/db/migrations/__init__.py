"""Alembic migrations for the edgebill schema (run with :func:`daemon.db.upgrade`)."""
