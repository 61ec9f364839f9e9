"""Alembic revisions, oldest first: ``0001_baseline`` is the schema legacy version 11 left."""
